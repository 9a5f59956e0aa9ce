import { api } from "../api.js";
import { html } from "../html.js";
import { usePoll } from "../hooks.js";

const KIND_ORDER = { route: 0, schedule: 1, topic: 2, queue: 3 };
const EDGE_COLOR = { http: "#2563eb", schedule: "#9333ea", topic: "#16a34a", queue: "#ea580c", call: "#4b5563" };
const KIND_LABEL = { route: "HTTP", schedule: "schedule", topic: "topic", queue: "queue" };
const SOURCE_X = 20;
const SOURCE_W = 230;
const SERVICE_X = SOURCE_X + SOURCE_W + 190;
const SERVICE_W = 270;
const NODE_H = 32;
const GAP = 12;
const HEAD_H = 30;
const FN_H = 36;

/** Positions: sources in one column (by kind), services as boxes of their functions. */
function layout(map) {
  // Functions first; each source then sits in the order of the functions it triggers (fewer
  // crossing lines), kinds breaking ties.
  const order = {};
  map.services.flatMap((s) => s.functions).forEach((fn, i) => (order[fn.id] = i));
  const rank = {};
  for (const e of map.edges) if (e.kind !== "call" && e.to in order) rank[e.from] = Math.min(rank[e.from] ?? 1e9, order[e.to]);
  const sources = [...map.sources].sort(
    (a, b) => (rank[a.id] ?? 1e9) - (rank[b.id] ?? 1e9) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind],
  );
  const at = {};
  let y = 20;
  for (const s of sources) {
    at[s.id] = { x: SOURCE_X, y, mid: y + NODE_H / 2 };
    y += NODE_H + GAP;
  }
  const sourcesBottom = y;
  y = 20;
  const boxes = [];
  for (const service of map.services) {
    const height = HEAD_H + service.functions.length * FN_H + 10;
    boxes.push({ service, y, height });
    service.functions.forEach((fn, i) => {
      const top = y + HEAD_H + i * FN_H;
      at[fn.id] = { x: SERVICE_X + 10, y: top, mid: top + (FN_H - 6) / 2 };
    });
    y += height + 24;
  }
  return { sources, boxes, at, height: Math.max(sourcesBottom, y) + 10 };
}

export function ServiceMap() {
  const map = usePoll(() => api("/map"), [], 10_000);
  const status = usePoll(() => api("/status"), []);
  if (map.unavailable) return html`<p class="muted">The map is not available on this platform.</p>`;
  if (map.error) return html`<p class="error" role="alert">${map.error.message}</p>`;
  if (!map.data) return html`<p class="muted">Loading…</p>`;
  const live = Object.fromEntries((status.data?.functions ?? []).map((f) => [f.id, f]));
  const { sources, boxes, at, height } = layout(map.data);
  const triggers = map.data.edges.filter((e) => e.kind !== "call" && at[e.from] && at[e.to]);
  const calls = map.data.edges.filter((e) => e.kind === "call" && at[e.from] && at[e.to]);
  const width = SERVICE_X + SERVICE_W + (calls.length ? 130 + 24 * calls.length : 30);

  return html`
    <div class="toolbar">
      <h2>Map <small class="muted">${map.data.app}</small></h2>
      <div class="legend">
        ${Object.entries(EDGE_COLOR).map(([kind, c]) => html`<span><i style=${`background:${c}`}></i>${kind === "call" ? "observed call" : kind}</span>`)}
      </div>
    </div>
    <div class="map-box">
      <svg width=${width} height=${height} viewBox=${`0 0 ${width} ${height}`} data-testid="service-map" role="img" aria-label="Services and their triggers">
        <defs>
          ${Object.entries(EDGE_COLOR).map(
            ([kind, c]) => html`<marker id=${`arrow-${kind}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" fill=${c} /></marker>`,
          )}
        </defs>
        ${boxes.map(
          ({ service, y, height: h }) => html`<g data-testid=${`map-service-${service.name}`}>
            <rect x=${SERVICE_X} y=${y} width=${SERVICE_W} height=${h} rx="8" class="service-box" />
            <text x=${SERVICE_X + 12} y=${y + 20} class="service-name">${service.name}</text>
            ${service.tables.length ? html`<text x=${SERVICE_X + SERVICE_W - 10} y=${y + 20} text-anchor="end" class="muted-text">${service.tables.length} table${service.tables.length > 1 ? "s" : ""}</text>` : ""}
          </g>`,
        )}
        ${triggers.map((e) => {
          const a = at[e.from];
          const b = at[e.to];
          const x1 = a.x + SOURCE_W;
          const x2 = b.x;
          const mx = (x1 + x2) / 2;
          return html`<path d=${`M ${x1} ${a.mid} C ${mx} ${a.mid}, ${mx} ${b.mid}, ${x2 - 2} ${b.mid}`} fill="none"
            stroke=${EDGE_COLOR[e.kind]} stroke-width="1.8" marker-end=${`url(#arrow-${e.kind})`} />`;
        })}
        ${calls.map((e, i) => {
          const a = at[e.from];
          const b = at[e.to];
          const x = SERVICE_X + SERVICE_W - 10;
          const bulge = SERVICE_X + SERVICE_W + 40 + 24 * i;
          return html`<g data-testid="map-call" data-from=${e.from} data-to=${e.to}>
            <path d=${`M ${x} ${a.mid} C ${bulge} ${a.mid}, ${bulge} ${b.mid}, ${x + 2} ${b.mid}`} fill="none"
              stroke=${EDGE_COLOR.call} stroke-width="1.6" stroke-dasharray="5 4" marker-end="url(#arrow-call)" />
            <text x=${x + 0.75 * (bulge - x) + 6} y=${(a.mid + b.mid) / 2 + 4} class="muted-text call-label">${e.trigger} ×${e.count}</text>
          </g>`;
        })}
        ${sources.map((s) => {
          const p = at[s.id];
          return html`<g class=${`source ${s.kind}`} data-testid=${`map-source-${s.id}`}>
            <rect x=${p.x} y=${p.y} width=${SOURCE_W} height=${NODE_H} rx="6" />
            <text x=${p.x + 10} y=${p.y + 20} class="kind">${KIND_LABEL[s.kind]}</text>
            <text x=${p.x + 88} y=${p.y + 20} class="label">${s.label.length > 20 ? s.label.slice(0, 19) + "…" : s.label}</text>
          </g>`;
        })}
        ${map.data.services.flatMap((service) =>
          service.functions.map((fn) => {
            const p = at[fn.id];
            const f = live[fn.id];
            return html`<g class="fn" data-testid=${`map-function-${fn.id}`}>
              <rect x=${p.x} y=${p.y} width=${SERVICE_W - 20} height=${FN_H - 6} rx="5" />
              <text x=${p.x + 10} y=${p.y + 19} class="label">${fn.name}</text>
              <text x=${p.x + SERVICE_W - 30} y=${p.y + 19} text-anchor="end" class="muted-text">
                ${f ? `${f.instances} instance${f.instances === 1 ? "" : "s"}` : ""}
              </text>
            </g>`;
          }),
        )}
      </svg>
    </div>
    ${calls.length === 0 && html`<p class="muted small">Calls between functions appear here once traced invocations call each other.</p>`}
  `;
}
