import { ms, offset as since } from "../format.js";
import { html } from "../html.js";

/** Spans as bars on one time axis, each under its parent (depth from parent_span_id), with its
 *  start offset from the trace's first span and its duration. */
export function Waterfall({ spans, note, focus }) {
  if (!spans?.length) return html`<p class="muted">No spans.</p>`;
  const byId = Object.fromEntries(spans.map((s) => [s.span_id, s]));
  const depth = (s, seen = 0) => (s.parent_span_id && byId[s.parent_span_id] && seen < 32 ? 1 + depth(byId[s.parent_span_id], seen + 1) : 0);
  const ordered = orderTree(spans, byId);
  const t0 = Math.min(...spans.map((s) => s.start_ms));
  const t1 = Math.max(...spans.map((s) => s.start_ms + s.duration_ms));
  const total = Math.max(t1 - t0, 1);
  return html`
    <div class="waterfall" data-testid="waterfall">
      ${ordered.map((s) => {
        const offset = s.start_ms - t0;
        const left = (offset / total) * 100;
        const width = Math.max((s.duration_ms / total) * 100, 0.5);
        const d = depth(s);
        return html`<div class=${`span-row ${s.request_id === focus ? "focus" : ""}`} data-testid="span-row"
            data-function=${s.function ?? s.name} data-depth=${d} data-span-id=${s.span_id}
            title=${`${s.name} ${s.trigger}: starts at ${since(offset)}, takes ${ms(s.duration_ms)}, ${s.status}${s.error_type ? ` (${s.error_type})` : ""}`}>
          <div class="span-label" style=${`padding-left:${d * 14}px`}>${d ? "└ " : ""}${s.function ?? s.name}<small> ${s.trigger}${s.cold ? ", cold" : ""}</small></div>
          <div class="span-offset" data-testid="span-offset">${since(offset)}</div>
          <div class="span-track"><div class=${`span-bar ${s.status === "ok" ? "" : "bad"}`} style=${`left:${left}%;width:${width}%`}></div></div>
          <div class="span-ms">${ms(s.duration_ms)}</div>
        </div>`;
      })}
      <div class="span-row axis"><div class="span-label"></div><div></div><div class="span-track"><span>0</span><span>${ms(total)}</span></div><div class="span-ms"></div></div>
      ${note && html`<p class="muted small">${note}</p>`}
    </div>
  `;
}

/** Depth-first: each span followed by its children, siblings by start time. */
function orderTree(spans, byId) {
  const children = {};
  const roots = [];
  for (const s of [...spans].sort((a, b) => a.start_ms - b.start_ms)) {
    if (s.parent_span_id && byId[s.parent_span_id]) (children[s.parent_span_id] ??= []).push(s);
    else roots.push(s);
  }
  const out = [];
  const visit = (s) => {
    out.push(s);
    for (const c of children[s.span_id] ?? []) visit(c);
  };
  roots.forEach(visit);
  return out;
}
