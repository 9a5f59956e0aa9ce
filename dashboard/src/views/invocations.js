import { useState } from "preact/hooks";
import { NotAvailable, api, query } from "../api.js";
import { ms, time } from "../format.js";
import { html } from "../html.js";
import { usePoll } from "../hooks.js";
import { Waterfall } from "./waterfall.js";

const STATUSES = ["", "ok", "error", "timeout", "crashed", "out_of_memory", "init_error", "throttled", "cancelled"];

export function Invocations() {
  const [fn, setFn] = useState("");
  const [status, setStatus] = useState("");
  const [requestId, setRequestId] = useState("");
  const [live, setLive] = useState(true);
  const [selected, setSelected] = useState(null);
  const functions = usePoll(() => api("/status"), [], 0);
  const list = usePoll(
    () => api(`/invocations${query({ function: fn, status, request_id: requestId.trim(), limit: 100 })}`),
    [fn, status, requestId],
    live ? 3000 : 0,
  );
  const records = list.data ?? [];

  return html`
    <div class="toolbar">
      <h2>Invocations</h2>
      <select value=${fn} onChange=${(e) => setFn(e.target.value)} data-testid="filter-function" aria-label="Function">
        <option value="">all functions</option>
        ${(functions.data?.functions ?? []).map((f) => html`<option value=${f.id}>${f.id}</option>`)}
      </select>
      <select value=${status} onChange=${(e) => setStatus(e.target.value)} data-testid="filter-status" aria-label="Status">
        ${STATUSES.map((s) => html`<option value=${s}>${s || "any status"}</option>`)}
      </select>
      <input placeholder="request id" value=${requestId} onInput=${(e) => setRequestId(e.target.value)} data-testid="filter-request" aria-label="Request id" />
      <label class="check"><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.target.checked)} /> live</label>
    </div>
    ${list.error && html`<p class="error" role="alert">${list.error.message}</p>`}
    <div class="split">
      <div class="scroll">
        <table class="grid clickable" data-testid="invocations-table">
          <thead>
            <tr><th>Start</th><th>Function</th><th>Request id</th><th>Trigger</th><th class="num">Duration</th><th>Status</th></tr>
          </thead>
          <tbody>
            ${records.length === 0 && html`<tr><td colspan="6" class="muted">No invocations recorded ${fn || status || requestId ? "that match" : "yet"}.</td></tr>`}
            ${records.map(
              (r) => html`<tr key=${r.request_id + r.start_ms} class=${selected?.request_id === r.request_id ? "selected" : ""}
                  onClick=${() => setSelected(r)} data-testid="invocation-row" data-request-id=${r.request_id}>
                <td>${time(r.start_ms)}</td>
                <td>${r.function_id}</td>
                <td class="mono" title=${r.request_id}>…${r.request_id.slice(-12)}</td>
                <td>${r.trigger}</td>
                <td class="num">${ms(r.duration_ms)}</td>
                <td>
                  <span class=${`status ${r.status}`}>${r.status}</span>${r.error_type ? html` <small>${r.error_type}</small>` : ""}
                  ${r.cold ? html` <span class="tag" title=${`init ${ms(r.init_ms)}`}>cold</span>` : ""}
                </td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${selected && html`<${Detail} record=${selected} onClose=${() => setSelected(null)} />`}
    </div>
  `;
}

function Detail({ record, onClose }) {
  // Both polled while open: a child span or a line recorded after the click still appears.
  const logs = usePoll(() => api(`/logs${query({ request_id: record.request_id, limit: 1000 })}`), [record.request_id]);
  const trace = usePoll(() => loadTrace(record), [record.request_id]);
  return html`
    <aside class="detail" data-testid="invocation-detail">
      <div class="detail-head">
        <h3 class="mono">${record.request_id}</h3>
        <button class="link" onClick=${onClose} aria-label="Close">✕</button>
      </div>
      <dl class="facts">
        <dt>Function</dt><dd>${record.function_id}</dd>
        <dt>Status</dt><dd><span class=${`status ${record.status}`}>${record.status}</span> ${record.error_type ?? ""}</dd>
        <dt>Trigger</dt><dd>${record.trigger}</dd>
        <dt>Started</dt><dd>${record.start}</dd>
        <dt>Duration</dt><dd>${ms(record.duration_ms)} (billed ${record.billed_ms} ms)</dd>
        <dt>Cold start</dt><dd>${record.cold ? `yes, init ${ms(record.init_ms)}` : "no"}</dd>
        <dt>Memory</dt><dd>${record.max_memory_mb ?? "–"} MB used of ${record.memory_mb} MB</dd>
        <dt>Instance</dt><dd class="mono">${record.instance_id ?? "–"}</dd>
        <dt>Trace</dt><dd class="mono">${record.trace_id ?? "–"}</dd>
      </dl>
      <h4>Trace</h4>
      ${trace.error && html`<p class="error">${trace.error.message}</p>`}
      ${trace.data && html`<${Waterfall} spans=${trace.data.spans} note=${trace.data.note} focus=${record.request_id} />`}
      <h4>Logs</h4>
      ${logs.error && html`<p class="error">${logs.error.message}</p>`}
      <pre class="logs" data-testid="invocation-logs">${(logs.data ?? []).map(
        (line) => html`<div class=${`line ${line.stream} ${line.level}`}><span class="muted">${time(line.time_ms)}</span> ${line.message}</div>`,
      )}${logs.data && logs.data.length === 0 ? html`<span class="muted">No log lines.</span>` : ""}</pre>
    </aside>
  `;
}

/** The record's trace from `/traces/{id}`; where the platform has no such endpoint, the records
 *  that share its trace id drawn side by side (no nesting), or the record alone. */
async function loadTrace(record) {
  if (record.trace_id) {
    try {
      return await api(`/traces/${encodeURIComponent(record.trace_id)}`);
    } catch (error) {
      if (!(error instanceof NotAvailable)) throw error;
    }
    const records = await api(`/invocations${query({ trace_id: record.trace_id, limit: 200 })}`);
    return { spans: records.map(spanOf), note: "Nesting needs tracing (GET /traces), not available on this platform." };
  }
  return { spans: [spanOf(record)], note: "This invocation carries no trace id." };
}

function spanOf(r) {
  return {
    span_id: r.request_id,
    parent_span_id: null,
    name: r.function_id,
    function: r.function_id,
    request_id: r.request_id,
    trigger: r.trigger,
    start_ms: r.start_ms,
    duration_ms: r.duration_ms,
    status: r.status,
    error_type: r.error_type,
    cold: r.cold,
  };
}
