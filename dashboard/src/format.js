// Number, time and duration formatting shared by the views.

export function ms(value) {
  if (value === null || value === undefined) return "–";
  if (value < 10) return `${value.toFixed(2)} ms`;
  if (value < 1000) return `${value.toFixed(1)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

/** A start offset in whole milliseconds (record times are whole ms): +0 ms, +17 ms, +1.25 s. */
export function offset(value) {
  return value < 1000 ? `+${Math.round(value)} ms` : `+${(value / 1000).toFixed(2)} s`;
}

export function rate(value) {
  if (!value) return "0/s";
  return value < 10 ? `${value.toFixed(2)}/s` : `${value.toFixed(1)}/s`;
}

export function count(value) {
  return value === null || value === undefined ? "–" : value.toLocaleString("en-US");
}

export function money(value) {
  if (value === null || value === undefined) return "n/a";
  if (value === 0) return "$0";
  // Two significant digits, never an exponent: $0.0000016, not $1.6e-6.
  if (value < 0.01) return `$${value.toLocaleString("en-US", { maximumSignificantDigits: 2, maximumFractionDigits: 20 })}`;
  return `$${value.toFixed(2)}`;
}

export function time(msSinceEpoch) {
  const d = new Date(msSinceEpoch);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function percent(part, whole) {
  if (!whole) return "0%";
  const p = (100 * part) / whole;
  return p < 1 && p > 0 ? `${p.toFixed(2)}%` : `${p.toFixed(1)}%`;
}

const PALETTE = [
  "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
  "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d",
];

export function color(index) {
  return PALETTE[index % PALETTE.length];
}
