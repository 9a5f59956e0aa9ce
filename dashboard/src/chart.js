import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { html } from "./html.js";
import { useEffect, useRef } from "preact/hooks";

/**
 * A time chart: `xs` in epoch ms, `lines` = [{ label, color, values, dash? }].
 * The uPlot instance is kept while the set of lines stays the same; new data only redraws.
 */
function clock(seconds, withSeconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${withSeconds ? `:${pad(d.getSeconds())}` : ""}`;
}

/** uPlot points filter: the indexes of values whose neighbours are both missing. */
function isolated(u, seriesIdx) {
  const values = u.data[seriesIdx];
  const missing = (i) => i < 0 || i >= values.length || values[i] === null || values[i] === undefined;
  const out = [];
  for (let i = 0; i < values.length; i++) if (!missing(i) && missing(i - 1) && missing(i + 1)) out.push(i);
  return out;
}

export function TimeChart({ title, xs, lines, legend, unit, testid, height = 220 }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = lines.map((l) => `${l.label}|${l.color}|${l.dash ?? ""}`).join(";");
  const data = [xs.map((x) => x / 1000), ...lines.map((l) => l.values)];

  useEffect(() => {
    const el = box.current;
    const options = {
      width: Math.max(300, el.clientWidth),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
      axes: [
        {
          stroke: "#6b7280",
          grid: { stroke: "#eef0f3" },
          values: (u, ticks, axis, space, incr) => ticks.map((t) => clock(t, incr < 60)),
        },
        { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, size: 60, values: (u, ticks) => ticks.map((t) => `${+t.toFixed(2)}${unit ?? ""}`) },
      ],
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 2,
          dash: l.dash,
          spanGaps: false,
          // A value with no neighbours (one busy bucket) has no line to draw: show it as a dot.
          points: { show: true, size: 6, fill: l.color, filter: isolated },
          value: (u, v) => (v === null || v === undefined ? "–" : `${+v.toFixed(2)}${unit ?? ""}`),
        })),
      ],
    };
    plot.current = new uPlot(options, data, el);
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(300, el.clientWidth), height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, height, unit]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return html`<figure class="chart" data-testid=${testid}>
    <figcaption>${title}</figcaption>
    <div ref=${box}></div>
    <div class="chart-legend">
      ${(legend ?? lines).map((l) => html`<span><i style=${`background:${l.color}`}></i>${l.label}</span>`)}
    </div>
  </figure>`;
}
