import { useState } from "preact/hooks";
import { api, query } from "../api.js";
import { age, count, time } from "../format.js";
import { html } from "../html.js";
import { usePoll } from "../hooks.js";

export function Queues() {
  const queues = usePoll(() => api("/queues"), []);
  const letters = usePoll(() => api(`/dlq${query({ limit: 200 })}`), []);
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);

  async function redrive(body, what) {
    setBusy(true);
    try {
      const answer = await api("/dlq/redrive", { method: "POST", body });
      const n = answer.redriven.length;
      const missing = answer.missing.length ? ` (${answer.missing.length} no longer there)` : "";
      setResult({ ok: true, text: `Redrove ${n} message${n === 1 ? "" : "s"} ${what}${missing}.` });
    } catch (error) {
      setResult({ ok: false, text: `Redrive failed: ${error.message}` });
    } finally {
      setBusy(false);
      queues.refresh();
      letters.refresh();
    }
  }

  const rows = queues.data ?? [];
  const dead = letters.data ?? [];
  return html`
    <div class="toolbar">
      <h2>Queues & dead letters</h2>
      <span class="live">live</span>
    </div>
    ${result && html`<p class=${result.ok ? "notice" : "error"} role="status" data-testid="redrive-result">${result.text}</p>`}
    ${queues.error && html`<p class="error" role="alert">${queues.error.message}</p>`}
    <table class="grid" data-testid="queues-table">
      <thead>
        <tr><th>Queue</th><th>Kind</th><th class="num">Depth</th><th class="num">Ready</th><th class="num">In flight</th><th class="num">Oldest</th><th class="num">Dead letters</th><th></th></tr>
      </thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="8" class="muted">This app has no queues.</td></tr>`}
        ${rows.map(
          (q) => html`<tr data-testid=${`queue-row-${q.queue}`}>
            <td>${q.name}</td>
            <td><span class="tag">${q.kind}</span></td>
            <td class="num">${count(q.depth)}</td>
            <td class="num">${count(q.visible)}</td>
            <td class="num">${count(q.in_flight)}</td>
            <td class="num">${age(q.oldest_age_s)}</td>
            <td class="num ${q.dead_letters ? "bad" : ""}" data-testid="dead-letters">${count(q.dead_letters)}</td>
            <td>${q.dead_letters > 0 && html`<button disabled=${busy} onClick=${() => redrive({ source: q.queue }, `back to ${q.queue}`)}
                data-testid=${`redrive-queue-${q.queue}`}>Redrive</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>

    <div class="toolbar">
      <h3>Dead letters <small class="muted">${dead.length}</small></h3>
      ${dead.length > 0 && html`<button disabled=${busy} onClick=${() => redrive({}, "back to their queues")} data-testid="redrive-all">Redrive all</button>`}
    </div>
    ${letters.error && html`<p class="error" role="alert">${letters.error.message}</p>`}
    <table class="grid" data-testid="dead-letters-table">
      <thead>
        <tr><th>Source</th><th>Message id</th><th>Error</th><th class="num">Attempts</th><th>Last attempt</th><th>Payload</th><th></th></tr>
      </thead>
      <tbody>
        ${dead.length === 0 && html`<tr><td colspan="7" class="muted">No dead letters.</td></tr>`}
        ${dead.map(
          (d) => html`<tr key=${d.source + d.id} data-testid="dead-letter-row" data-message-id=${d.id}>
            <td>${d.source}</td>
            <td class="mono">${d.id}</td>
            <td><b>${d.error_type ?? ""}</b> ${d.error_message ?? ""}</td>
            <td class="num">${d.attempts}</td>
            <td>${time(d.last_attempt_ms)}</td>
            <td class="mono payload" title=${JSON.stringify(d.payload)}>${JSON.stringify(d.payload).slice(0, 80)}</td>
            <td><button disabled=${busy} onClick=${() => redrive({ source: d.source, ids: [d.id] }, `back to ${d.source}`)}
                data-testid="redrive-message">Redrive</button></td>
          </tr>`,
        )}
      </tbody>
    </table>
  `;
}
