import { useState } from "preact/hooks";
import { api, query } from "../api.js";
import { TimeChart } from "../chart.js";
import { color, count, money, ms, percent, rate } from "../format.js";
import { html } from "../html.js";
import { usePoll } from "../hooks.js";

export const WINDOWS = [
  { label: "5 min", since: "5m", step: "5s" },
  { label: "15 min", since: "15m", step: "10s" },
  { label: "1 hour", since: "1h", step: "30s" },
];

/** Requests per second over the last minute of a series (the current bucket included). */
function recentRate(stats, fn) {
  const { buckets, until_ms: until } = stats;
  const from = until - 60_000;
  let requests = 0;
  let start = until;
  for (let i = buckets.length - 1; i >= 0 && buckets[i] + stats.step_ms > from; i--) {
    requests += fn.requests[i];
    start = buckets[i];
  }
  const seconds = Math.max(1, (until - start) / 1000);
  return requests / seconds;
}

/** Where a function's instances run on a Ray cluster (`placement` in /status): each node,
 * by the start of its id and its address, with how many instances it holds. */
function Placement({ placement }) {
  if (!placement?.length) return null;
  const nodes = new Map();
  for (const p of placement) {
    const node = nodes.get(p.node_id) ?? { ip: p.node_ip, count: 0, pids: [] };
    node.count += 1;
    node.pids.push(p.pid);
    nodes.set(p.node_id, node);
  }
  return html`<div class="small muted" data-testid="placement">
    ${[...nodes].map(
      ([id, n]) => html`<span class="node" title=${`Ray node ${id}, instance pids ${n.pids.join(", ")}`}
        >${id.slice(0, 8)} ${n.ip}${n.count > 1 ? ` ×${n.count}` : ""}</span
      >`,
    )}
  </div>`;
}

export function Overview() {
  const [windowIndex, setWindowIndex] = useState(0);
  const w = WINDOWS[windowIndex];
  const status = usePoll(() => api("/status"), []);
  const stats = usePoll(() => api(`/stats${query({ since: w.since, step: w.step })}`), [w.since]);
  const cost = usePoll(() => api(`/cost${query({ since: w.since, by: "function" })}`), [w.since], 10_000);

  const functions = status.data?.functions ?? [];
  const series = stats.data?.functions ?? {};
  // Manifest order (as /status lists them), then any function only the records know.
  const ids = [...new Set([...functions.map((f) => f.id), ...Object.keys(series).sort()])];
  const costOf = {};
  for (const row of cost.data?.rows ?? []) costOf[row.name] = row.cost;
  const live = Object.fromEntries(functions.map((f) => [f.id, f]));

  const totals = ids.reduce(
    (t, id) => {
      const s = series[id]?.total;
      const f = live[id];
      t.requests += s?.requests ?? 0;
      t.errors += s?.errors ?? 0;
      t.cold += s?.cold_starts ?? 0;
      t.instances += f?.instances ?? 0;
      t.busy += f?.busy ?? 0;
      t.rate += series[id] && stats.data ? recentRate(stats.data, series[id]) : 0;
      return t;
    },
    { requests: 0, errors: 0, cold: 0, instances: 0, busy: 0, rate: 0 },
  );

  const xs = stats.data?.buckets ?? [];
  const stepS = (stats.data?.step_ms ?? 1000) / 1000;
  const rateLines = ids
    .filter((id) => series[id])
    .map((id) => ({ label: id, color: color(ids.indexOf(id)), values: series[id].requests.map((n) => n / stepS) }));
  const latencyLines = ids
    .filter((id) => series[id])
    .flatMap((id) => [
      { label: `${id} p99`, color: color(ids.indexOf(id)), values: series[id].p99_ms },
      { label: `${id} p50`, color: color(ids.indexOf(id)), values: series[id].p50_ms, dash: [4, 4] },
    ]);

  const services = {};
  for (const id of ids) (services[id.split(".")[0]] ??= []).push(id);

  return html`
    <div class="toolbar">
      <h2>Overview</h2>
      <div class="segmented" role="group" aria-label="Time window">
        ${WINDOWS.map(
          (option, i) => html`<button class=${i === windowIndex ? "on" : ""} onClick=${() => setWindowIndex(i)}>${option.label}</button>`,
        )}
      </div>
      <span class="live" title="Updates every few seconds">live</span>
    </div>
    ${stats.error && html`<p class="error" role="alert">${stats.error.message}</p>`}
    <section class="cards">
      <div class="card"><div class="label">Requests (${w.label})</div><div class="value" data-testid="total-requests">${count(totals.requests)}</div></div>
      <div class="card"><div class="label">Request rate (1 min)</div><div class="value">${rate(totals.rate)}</div></div>
      <div class="card"><div class="label">Errors</div><div class="value ${totals.errors ? "bad" : ""}">${count(totals.errors)} <small>${percent(totals.errors, totals.requests)}</small></div></div>
      <div class="card"><div class="label">Live instances</div><div class="value">${count(totals.instances)} <small>${totals.busy} busy</small></div></div>
      <div class="card"><div class="label">Cold starts</div><div class="value">${count(totals.cold)}</div></div>
      <div class="card"><div class="label">Cost (${w.label})</div><div class="value" data-testid="total-cost">${cost.unavailable ? html`<small class="muted">not available</small>` : money(cost.data?.total?.cost)}</div></div>
    </section>
    <section class="charts">
      <${TimeChart} title="Requests per second" xs=${xs} lines=${rateLines} unit="/s" testid="chart-rate" />
      <${TimeChart} title="Latency: p99 (solid) and p50 (dashed)" xs=${xs} lines=${latencyLines} legend=${rateLines} unit=" ms" testid="chart-latency" />
    </section>
    <table class="grid" data-testid="functions-table">
      <thead>
        <tr>
          <th>Function</th><th class="num">Instances</th><th class="num">Req/s (1 min)</th><th class="num">Requests</th>
          <th class="num">Errors</th><th class="num">Throttles</th><th class="num">p50</th><th class="num">p99</th>
          <th class="num">Cold starts</th><th class="num">Cost</th>
        </tr>
      </thead>
      ${Object.entries(services).map(
        ([service, members]) => html`
          <tbody>
            <tr class="group"><th colspan="10">${service}</th></tr>
            ${members.map((id) => {
              const s = series[id]?.total ?? {};
              const f = live[id];
              return html`<tr data-testid=${`function-row-${id}`}>
                <td><span class="dot" style=${`background:${color(ids.indexOf(id))}`}></span>${id}</td>
                <td class="num" data-testid="instances">${f ? html`${f.instances}${f.busy ? html` <small>(${f.busy} busy)</small>` : ""}<${Placement} placement=${f.placement} />` : "–"}</td>
                <td class="num">${series[id] && stats.data ? rate(recentRate(stats.data, series[id])) : "–"}</td>
                <td class="num" data-testid="requests">${count(s.requests ?? 0)}</td>
                <td class="num ${s.errors ? "bad" : ""}" data-testid="errors">${count(s.errors ?? 0)}</td>
                <td class="num">${count(s.throttles ?? 0)}</td>
                <td class="num">${ms(s.p50_ms)}</td>
                <td class="num">${ms(s.p99_ms)}</td>
                <td class="num">${count(s.cold_starts ?? 0)}</td>
                <td class="num">${cost.unavailable ? html`<small class="muted">n/a</small>` : money(costOf[id] ?? (cost.data ? 0 : null))}</td>
              </tr>`;
            })}
          </tbody>
        `,
      )}
    </table>
    ${cost.unavailable && html`<p class="muted small">Cost is not available on this platform version (no <code>/cost</code> endpoint).</p>`}
  `;
}
