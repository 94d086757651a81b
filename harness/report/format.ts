// Small text and SVG helpers shared by the HTML report and the index page: escaping, number
// formatting, linear scales, "nice" axis ticks. Everything here is pure and deterministic.

/** Escapes text for HTML element content and attribute values (single or double quoted). */
export function esc(text: string | number): string {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** Integer with thousands separators, independent of the locale. */
export function int(value: number): string {
  const rounded = Math.round(value);
  const sign = rounded < 0 ? "-" : "";
  return sign + String(Math.abs(rounded)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A number with at most `digits` decimals and no trailing zeros. */
export function num(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return String(value);
  const fixed = value.toFixed(digits);
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${int(bytes)} B`;
  if (bytes < 1024 * 1024) return `${num(bytes / 1024, 1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${num(bytes / (1024 * 1024), 1)} MiB`;
  return `${num(bytes / (1024 * 1024 * 1024), 2)} GiB`;
}

/** Milliseconds as a short duration: "750 ms", "1.5 s", "2 min". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${num(ms, 0)} ms`;
  if (ms < 120_000) return `${num(ms / 1000, 2)} s`;
  return `${num(ms / 60_000, 1)} min`;
}

/** Simulated seconds on an axis or in a window: "12.5 s". */
export function formatS(seconds: number): string {
  return `${num(seconds, 2)} s`;
}

export function percent(part: number, whole: number): string {
  return whole <= 0 ? "–" : `${num((100 * part) / whole, 1)} %`;
}

/** Linear map from [d0, d1] onto [r0, r1]; a degenerate domain maps to r0. */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0;
  return (v) => (span === 0 ? r0 : r0 + ((v - d0) / span) * (r1 - r0));
}

/** About `target` round tick values covering [0, max] (1, 2 or 5 times a power of ten). */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0)) return [0];
  const raw = max / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power);
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** The smallest tick-aligned upper bound ≥ max (so that the axis ends on a labelled tick). */
export function niceMax(max: number, target = 5): number {
  const ticks = niceTicks(max, target);
  const last = ticks[ticks.length - 1] ?? 0;
  if (last >= max) return Math.max(last, 1e-9);
  return last + ((ticks[1] ?? 1) - (ticks[0] ?? 0));
}

/** Round byte ticks: nice steps in the unit (B, KiB, MiB) that fits `max`. Returns the ticks and their top. */
export function byteTicks(max: number, target = 4): { ticks: number[]; top: number } {
  const unit = max >= 1024 * 1024 ? 1024 * 1024 : max >= 1024 ? 1024 : 1;
  const top = niceMax(max / unit, target);
  return { ticks: niceTicks(top, target).map((t) => t * unit), top: top * unit };
}

/** The largest value (at least `floor`), without spreading a possibly huge array into arguments. */
export function maxOf(values: Iterable<number>, floor = Number.NEGATIVE_INFINITY): number {
  let max = floor;
  for (const v of values) if (v > max) max = v;
  return max;
}

/** An SVG number: short, no exponent, no "-0". */
export function px(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return Object.is(rounded, -0) ? "0" : String(rounded);
}
