// The report's hand-written SVG charts: the per-replica timeline with fault bands, finalized height
// over virtual time, the ingress latency histogram, block rate and payload size over time. Every
// mark carries a <title> tooltip; every text goes through esc().
import type { RunReport } from "../scenario/runner.ts";
import { blockRate, binWidthMs, CATEGORY_LABEL, faultRowsOf, laneOf, stallsOf, typicalIntervalMs, violationTimeMs, type FaultCategory } from "./facts.ts";
import { byteTicks, esc, formatBytes, formatMs, int, linear, maxOf, niceMax, niceTicks, num, px } from "./format.ts";

export const REPLICA_COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#be185d", "#854d0e", "#4b5563", "#65a30d", "#c2410c"];
export const CATEGORY_COLORS: Record<FaultCategory, string> = {
  byzantine: "#dc2626",
  partition: "#7c3aed",
  crash: "#374151",
  slow: "#d97706",
  network: "#0d9488",
};
const VIOLATION = "#b91c1c";
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"';

export const replicaColor = (r: number): string => REPLICA_COLORS[r % REPLICA_COLORS.length] ?? "#333";

type ChartInput = Pick<RunReport, "n" | "durationS" | "progress" | "faults" | "faultSubnets" | "xnetFaults" | "violations" | "replicas" | "blocks" | "latencyHistogram" | "stoppedAt">;

/** The most advanced replica's height over time: every sample that raised the maximum. */
export function frontOf(progress: readonly (readonly (readonly [number, number])[])[]): [number, number][] {
  const all: (readonly [number, number])[] = [];
  for (const samples of progress) for (const s of samples) all.push(s);
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const front: [number, number][] = [];
  let max = 0;
  for (const [t, h] of all) {
    if (h > max) {
      front.push([t, h]);
      max = h;
    }
  }
  return front;
}

/**
 * How many heights a replica is behind the most advanced one, over time, less one (replicas a
 * single block apart are in step): [time, lag] at every change.
 */
export function lagSeries(own: readonly (readonly [number, number])[], front: readonly (readonly [number, number])[]): [number, number][] {
  const out: [number, number][] = [];
  let i = 0;
  let j = 0;
  let ownH = 0;
  let frontH = 0;
  let last = 0;
  while (i < own.length || j < front.length) {
    const ti = own[i]?.[0] ?? Number.POSITIVE_INFINITY;
    const tj = front[j]?.[0] ?? Number.POSITIVE_INFINITY;
    const t = Math.min(ti, tj);
    while (i < own.length && (own[i]?.[0] ?? 0) === t) ownH = own[i++]?.[1] ?? ownH;
    while (j < front.length && (front[j]?.[0] ?? 0) === t) frontH = front[j++]?.[1] ?? frontH;
    const lag = Math.max(0, frontH - ownH - 1);
    if (lag !== last) {
      out.push([t, lag]);
      last = lag;
    }
  }
  return out;
}

function maxProgressHeight(report: ChartInput): number {
  let max = 1;
  for (const samples of report.progress) max = maxOf(samples.map(([, h]) => h), max);
  return max;
}

export function endMsOf(report: ChartInput): number {
  return Math.max(1, report.stoppedAt?.timeMs ?? report.durationS * 1000);
}

/**
 * Drops samples that would not change the drawn step line: one whose height lands on the same
 * vertical pixel as the last kept one, and, within one horizontal pixel, all but the last.
 */
function thin(samples: readonly (readonly [number, number])[], xOf: (t: number) => number, yOf: (h: number) => number): (readonly [number, number])[] {
  const kept: (readonly [number, number])[] = [];
  let lastX = Number.NEGATIVE_INFINITY;
  let lastY = Math.round(yOf(0));
  for (const s of samples) {
    const py = Math.round(yOf(s[1]));
    if (py === lastY) continue;
    const pxl = Math.round(xOf(s[0]));
    if (pxl === lastX && kept.length > 0) kept[kept.length - 1] = s;
    else kept.push(s);
    lastX = pxl;
    lastY = py;
  }
  return kept;
}

/** The vertices of a step line (as stepPath draws it), for filling areas between two of them. */
function stepPoints(samples: readonly (readonly [number, number])[], x: (t: number) => number, y: (h: number) => number, endMs: number): [number, number][] {
  const points: [number, number][] = [[x(0), y(0)]];
  let lastY = y(0);
  for (const [t, h] of samples) {
    points.push([x(t), lastY], [x(t), y(h)]);
    lastY = y(h);
  }
  points.push([x(endMs), lastY]);
  return points;
}

/** A step path: height holds until the next sample, then jumps; continues to `endMs`. */
function stepPath(samples: readonly (readonly [number, number])[], x: (t: number) => number, y: (h: number) => number, endMs: number): string {
  let d = `M${px(x(0))},${px(y(0))}`;
  for (const [t, h] of samples) d += `H${px(x(t))}V${px(y(h))}`;
  return `${d}H${px(x(endMs))}`;
}

function timeAxis(x: (t: number) => number, endMs: number, yTop: number, yBottom: number, label: string): string {
  const ticks = niceTicks(endMs / 1000, 10).filter((s) => s * 1000 <= endMs + 1e-6);
  const marks = ticks.map((s) => `<line x1="${px(x(s * 1000))}" x2="${px(x(s * 1000))}" y1="${px(yTop)}" y2="${px(yBottom)}" stroke="#e5e7eb"/>` +
    `<text x="${px(x(s * 1000))}" y="${px(yBottom + 15)}" text-anchor="middle" font-size="11" fill="#4b5563">${esc(num(s))}</text>`).join("");
  return `${marks}<line x1="${px(x(0))}" x2="${px(x(endMs))}" y1="${px(yBottom)}" y2="${px(yBottom)}" stroke="#6b7280"/>` +
    `<text x="${px((x(0) + x(endMs)) / 2)}" y="${px(yBottom + 32)}" text-anchor="middle" font-size="12" fill="#111827">${esc(label)}</text>`;
}

function valueAxis(y: (v: number) => number, ticks: readonly number[], xLeft: number, xRight: number, format: (v: number) => string, label: string, yMid: number): string {
  const marks = ticks.map((v) => `<line x1="${px(xLeft)}" x2="${px(xRight)}" y1="${px(y(v))}" y2="${px(y(v))}" stroke="#eef0f3"/>` +
    `<text x="${px(xLeft - 6)}" y="${px(y(v) + 4)}" text-anchor="end" font-size="11" fill="#4b5563">${esc(format(v))}</text>`).join("");
  return `${marks}<line x1="${px(xLeft)}" x2="${px(xLeft)}" y1="${px(y(ticks[0] ?? 0))}" y2="${px(y(ticks[ticks.length - 1] ?? 0))}" stroke="#6b7280"/>` +
    `<text transform="translate(14 ${px(yMid)}) rotate(-90)" text-anchor="middle" font-size="12" fill="#111827">${esc(label)}</text>`;
}

/** Diagonal hatching for crash windows; one pattern per chart so that ids stay unique in the page. */
const hatch = (chart: string): string => {
  const strong = chart === "timeline";
  return `<pattern id="hatch-crash-${chart}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#374151" fill-opacity="${strong ? 0.1 : 0.04}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#374151" stroke-width="2" stroke-opacity="${strong ? 0.45 : 0.18}"/></pattern>`;
};

function bandFill(category: FaultCategory, chart: string): string {
  return category === "crash" ? `fill="url(#hatch-crash-${chart})"` : `fill="${CATEGORY_COLORS[category]}" fill-opacity="0.13"`;
}

/** First violation with a time we can place, and that time in ms. */
function firstPlacedViolation(report: ChartInput): { index: number; timeMs: number } | undefined {
  let best: { index: number; timeMs: number } | undefined;
  report.violations.forEach((v, index) => {
    const timeMs = violationTimeMs(v, report.progress);
    if (timeMs !== undefined && (best === undefined || timeMs < best.timeMs)) best = { index, timeMs };
  });
  return best;
}

/** One lane per replica: its height progress, the fault windows touching it, stalls, the first violation. */
export function timelineSvg(report: ChartInput): string {
  // Multi-subnet runs list every subnet's replicas (a/r0 … b/r6), more than the first subnet's n.
  const n = Math.max(report.n, report.replicas.length);
  const faults = faultRowsOf(report);
  const endMs = endMsOf(report);
  const width = 1000;
  const labelW = 118;
  const right = 18;
  const faultRowH = faults.length <= 14 ? 18 : 8;
  const faultsTop = 26;
  const lanesTop = faultsTop + faults.length * faultRowH + (faults.length > 0 ? 10 : 0);
  const laneH = n <= 10 ? 40 : Math.max(12, Math.floor(420 / n));
  const laneGap = n <= 10 ? 6 : 2;
  const lanesBottom = lanesTop + n * (laneH + laneGap) - laneGap;
  const height = lanesBottom + 44;
  const x = linear(0, endMs, labelW, width - right);
  const maxH = maxProgressHeight(report);
  const interval = typicalIntervalMs(report.progress) ?? 1000;
  const stallMs = Math.max(3000, 5 * interval);
  // Lag is measured against the most advanced replica of the same subnet (subnets' chains are independent).
  const subnetOf = (r: number): string => nameOf(report, r).split("/").slice(0, -1).join("/");
  const fronts = new Map<string, ReturnType<typeof frontOf>>();
  for (const subnet of new Set(report.progress.map((_, r) => subnetOf(r)))) {
    fronts.set(subnet, frontOf(report.progress.filter((_, r) => subnetOf(r) === subnet)));
  }
  const frontFor = (r: number): ReturnType<typeof frontOf> => fronts.get(subnetOf(r)) ?? frontOf(report.progress);
  // Lag areas hang from the top of each lane; a full lane is the worst lag of the run (at least 10).
  const maxLag = Math.max(10, maxOf(report.progress.map((samples, r) => maxOf(lagSeries(samples, frontFor(r)).map(([, l]) => l), 0)), 0));
  const parts: string[] = [`<defs>${hatch("timeline")}</defs>`];

  parts.push(timeAxis(x, endMs, faultsTop - 4, lanesBottom + 4, "virtual time (s)"));

  // The first violation's line runs behind the fault rows (so that their labels stay legible) and
  // over the lanes.
  const first = firstPlacedViolation(report);
  const vx = first === undefined ? 0 : x(Math.min(first.timeMs, endMs));
  if (first !== undefined) parts.push(`<line x1="${px(vx)}" x2="${px(vx)}" y1="${faultsTop - 14}" y2="${lanesTop}" stroke="${VIOLATION}" stroke-width="2" stroke-dasharray="5 3" stroke-opacity="0.6"/>`);

  // Fault rows: one Gantt bar per fault with its description.
  if (faults.length > 0) parts.push(`<text x="8" y="${faultsTop - 10}" font-size="11" font-weight="600" fill="#374151">faults</text>`);
  faults.forEach((fault, i) => {
    const { fromS, toS, open, text } = fault;
    const x0 = x(fromS * 1000);
    const x1 = Math.max(x0 + 2, x(toS * 1000));
    const yTop = faultsTop + i * faultRowH;
    const color = CATEGORY_COLORS[fault.category];
    const tip = `${text} · ${fault.window}${open ? " (until the end)" : ""}`;
    parts.push(`<g class="fault-row"><title>${esc(tip)}</title><rect x="${px(x0)}" y="${px(yTop + 2)}" width="${px(x1 - x0)}" height="${px(faultRowH - 4)}" rx="2" fill="${color}" fill-opacity="0.85"/>`);
    if (faultRowH >= 14) {
      const estW = text.length * 6.2;
      const inside = x1 - x0 >= estW + 8;
      const after = width - right - x1 >= estW + 6;
      const tx = inside ? x0 + 4 : after ? x1 + 4 : x0 - 4;
      const anchor = inside || after ? "start" : "end";
      parts.push(`<text x="${px(tx)}" y="${px(yTop + faultRowH / 2 + 4)}" font-size="11" text-anchor="${anchor}" fill="${inside ? "#fff" : "#1f2937"}">${esc(text)}</text>`);
    }
    parts.push(`<text x="${labelW - 8}" y="${px(yTop + faultRowH / 2 + 4)}" font-size="10" text-anchor="end" fill="#6b7280">#${i + 1} ${esc(fault.kind)}</text></g>`);
  });

  // Lanes.
  for (let r = 0; r < n; r++) {
    const top = lanesTop + r * (laneH + laneGap);
    const bottom = top + laneH;
    const summary = report.replicas[r];
    const role = summary?.role ?? "honest";
    const color = replicaColor(r);
    const lane: string[] = [`<g class="lane" data-replica="${esc(nameOf(report, r))}">`];
    lane.push(`<rect x="${labelW}" y="${top}" width="${px(width - right - labelW)}" height="${laneH}" fill="#f6f7f9"><title>${esc(`${nameOf(report, r)} (${role})`)}</title></rect>`);
    faults.forEach((fault, i) => {
      if (!fault.lanes.includes(r)) return;
      const x0 = x(fault.fromS * 1000);
      const x1 = Math.max(x0 + 2, x(fault.toS * 1000));
      lane.push(`<rect class="fault-band" x="${px(x0)}" y="${top}" width="${px(x1 - x0)}" height="${laneH}" ${bandFill(fault.category, "timeline")}><title>${esc(`#${i + 1} ${fault.text} · ${fault.window}`)}</title></rect>`);
      lane.push(`<rect x="${px(x0)}" y="${top}" width="${px(x1 - x0)}" height="3" fill="${CATEGORY_COLORS[fault.category]}"/>`);
    });
    const samples = report.progress[r] ?? [];
    for (const stall of stallsOf(samples, endMs, stallMs)) {
      lane.push(`<rect class="stall" x="${px(x(stall.fromMs))}" y="${bottom - 5}" width="${px(Math.max(1, x(stall.toMs) - x(stall.fromMs)))}" height="5" rx="1" fill="#111827" fill-opacity="0.8"><title>${esc(`${nameOf(report, r)} stalled at height ${stall.height} for ${formatMs(stall.toMs - stall.fromMs)} (${num(stall.fromMs / 1000)} s → ${num(stall.toMs / 1000)} s)`)}</title></rect>`);
    }
    const y = linear(0, maxH, bottom - 5, top + 5);
    const last = samples[samples.length - 1]?.[1] ?? 0;
    const line = stepPath(thin(samples, x, y), x, y, endMs);
    const lag = lagSeries(samples, frontFor(r));
    if (n > 1 && maxLag >= 3) {
      const yLag = linear(0, maxLag, top, bottom - 2);
      const pts = stepPoints(thin(lag, x, yLag), x, yLag, endMs);
      const worst = maxOf(lag.map(([, l]) => l), 0);
      if (worst > 0) lane.push(`<path class="lag" d="M${pts.map(([gx, gy]) => `${px(gx)},${px(gy)}`).join("L")}L${px(x(endMs))},${top}Z" fill="${CATEGORY_COLORS.byzantine}" fill-opacity="0.3" stroke="none"><title>${esc(`${nameOf(report, r)}: up to ${worst + 1} heights behind the most advanced replica`)}</title></path>`);
    }
    lane.push(`<path d="${line}V${px(y(0))}H${px(x(0))}Z" fill="${color}" fill-opacity="0.08" stroke="none"/>`);
    lane.push(`<path class="progress" d="${line}" fill="none" stroke="${color}" stroke-width="1.8"${role === "byzantine" ? ' stroke-dasharray="5 3"' : ""}><title>${esc(`${nameOf(report, r)} (${role}): delivered height over time, ${last} at the end`)}</title></path>`);
    const big = laneH >= 30;
    lane.push(`<circle cx="10" cy="${px(top + laneH / 2)}" r="4" fill="${color}"/><text x="20" y="${px(big ? top + laneH / 2 - 2 : top + laneH / 2 + 4)}" font-size="${big ? 13 : 10}" font-weight="600" fill="#111827">${esc(nameOf(report, r))}${role === "honest" ? "" : ` <tspan fill="${role === "byzantine" ? CATEGORY_COLORS.byzantine : "#374151"}" font-weight="400" font-size="${big ? 11 : 9}">${esc(role)}</tspan>`}</text>`);
    if (big) lane.push(`<text x="20" y="${px(top + laneH / 2 + 12)}" font-size="10" fill="#6b7280">height ${int(last)}</text>`);
    lane.push("</g>");
    parts.push(lane.join(""));
  }

  // First violation: a line through the lanes, a mark on every named replica's lane.
  if (first !== undefined) {
    const v = report.violations[first.index];
    if (v !== undefined) {
      const label = `first violation: ${v.property}${v.height === undefined ? "" : ` at height ${v.height}`} · ${num(first.timeMs / 1000)} s`;
      const anchor = vx > width / 2 ? "end" : "start";
      parts.push(`<g id="first-violation"><title>${esc(`${label}: ${v.message}`)}</title><line x1="${px(vx)}" x2="${px(vx)}" y1="${lanesTop - 4}" y2="${lanesBottom}" stroke="${VIOLATION}" stroke-width="2" stroke-dasharray="5 3"/>` +
        `<text x="${px(vx + (anchor === "start" ? 5 : -5))}" y="12" font-size="12" font-weight="700" text-anchor="${anchor}" fill="${VIOLATION}">${esc(label)}</text>`);
      for (const name of v.replicas) {
        const r = laneOf(report, name);
        if (r === undefined || r >= n) continue;
        const cy = lanesTop + r * (laneH + laneGap) + laneH / 2;
        const s = Math.min(7, laneH / 2 - 1);
        parts.push(`<path d="M${px(vx)},${px(cy - s)}L${px(vx + s)},${px(cy)}L${px(vx)},${px(cy + s)}L${px(vx - s)},${px(cy)}Z" fill="${VIOLATION}" stroke="#fff" stroke-width="1.5"/>`);
      }
      parts.push("</g>");
    }
  }
  return `<svg id="timeline-chart" class="chart" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="timeline: one lane per replica with height progress, fault windows and the first violation">${parts.join("")}</svg>`;
}

export function timelineLegend(report: ChartInput): string {
  const categories = [...new Set(faultRowsOf(report).map((f) => f.category))];
  const items = categories.map((c) => `<span class="key"><span class="swatch" style="background:${CATEGORY_COLORS[c]}"></span>${esc(CATEGORY_LABEL[c])}</span>`);
  items.push(`<span class="key"><span class="swatch line"></span>delivered height (lane bottom = 0, top = highest)</span>`);
  if (report.n > 1) items.push(`<span class="key"><span class="swatch lag"></span>red from the lane top: heights behind the most advanced replica</span>`);
  items.push(`<span class="key"><span class="swatch stall"></span>stall: no new height for a while</span>`);
  // Only when it is drawn: a violation without a time or a height (and named replicas) has no place.
  if (firstPlacedViolation(report) !== undefined) items.push(`<span class="key"><span class="swatch violation"></span>first violation</span>`);
  return `<div class="legend">${items.join("")}</div>`;
}

/** Delivered (finalized and executed) height over virtual time, one line per replica. */
export function heightChartSvg(report: ChartInput): string {
  const width = 1000;
  const height = 340;
  const pad = { left: 74, right: 130, top: 18, bottom: 46 };
  const endMs = endMsOf(report);
  const maxH = niceMax(maxProgressHeight(report));
  const x = linear(0, endMs, pad.left, width - pad.right);
  const y = linear(0, maxH, height - pad.bottom, pad.top);
  const parts: string[] = [`<defs>${hatch("height")}</defs>`];
  faultRowsOf(report).forEach((fault, i) => {
    const { fromS, toS, category } = fault;
    parts.push(`<rect class="fault-band" x="${px(x(fromS * 1000))}" y="${pad.top}" width="${px(Math.max(2, x(toS * 1000) - x(fromS * 1000)))}" height="${height - pad.top - pad.bottom}" ${category === "crash" ? 'fill="url(#hatch-crash-height)"' : `fill="${CATEGORY_COLORS[category]}" fill-opacity="0.07"`}><title>${esc(`#${i + 1} ${fault.text} · ${fault.window}`)}</title></rect>`);
  });
  parts.push(valueAxis(y, niceTicks(maxH, 6), pad.left, width - pad.right, (v) => int(v), "height", (pad.top + height - pad.bottom) / 2));
  parts.push(timeAxis(x, endMs, pad.top, height - pad.bottom, "virtual time (s)"));
  report.progress.forEach((samples, r) => {
    const role = report.replicas[r]?.role ?? "honest";
    const last = samples[samples.length - 1]?.[1] ?? 0;
    parts.push(`<path class="series" d="${stepPath(thin(samples, x, y), x, y, endMs)}" fill="none" stroke="${replicaColor(r)}" stroke-width="1.8" stroke-linejoin="round"${role === "byzantine" ? ' stroke-dasharray="6 3"' : ""}><title>${esc(`${nameOf(report, r)} (${role}): height ${last} at the end`)}</title></path>`);
  });
  // Legend at the right.
  report.progress.forEach((samples, r) => {
    if (report.progress.length > 16 && r >= 15) return;
    const role = report.replicas[r]?.role ?? "honest";
    const ly = pad.top + 6 + r * 17;
    const last = samples[samples.length - 1]?.[1] ?? 0;
    parts.push(`<g><title>${esc(`${nameOf(report, r)} (${role}), height ${last} at the end`)}</title><line x1="${width - pad.right + 12}" x2="${width - pad.right + 32}" y1="${ly}" y2="${ly}" stroke="${replicaColor(r)}" stroke-width="2.5"${role === "byzantine" ? ' stroke-dasharray="5 3"' : ""}/><text x="${width - pad.right + 38}" y="${ly + 4}" font-size="11" fill="#111827">${esc(nameOf(report, r))} ${role === "honest" ? "" : esc(role)} · ${int(last)}</text></g>`);
  });
  if (report.progress.length > 16) parts.push(`<text x="${width - pad.right + 12}" y="${pad.top + 6 + 15 * 17 + 4}" font-size="11" fill="#6b7280">… ${report.progress.length - 15} more</text>`);
  const first = firstPlacedViolation(report);
  const v = first === undefined ? undefined : report.violations[first.index];
  if (first !== undefined && v !== undefined) {
    const cx = x(Math.min(first.timeMs, endMs));
    const cy = y(v.height ?? 0);
    parts.push(`<g id="violation-point"><title>${esc(`${v.property}: ${v.message}`)}</title><line x1="${px(cx)}" x2="${px(cx)}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="${VIOLATION}" stroke-dasharray="5 3"/>${v.height === undefined ? "" : `<circle cx="${px(cx)}" cy="${px(cy)}" r="6" fill="none" stroke="${VIOLATION}" stroke-width="2.5"/>`}<text x="${px(cx + 8)}" y="${px(Math.max(pad.top + 12, cy - 10))}" font-size="12" font-weight="700" fill="${VIOLATION}">${esc(v.property)}${v.height === undefined ? "" : ` @ h${v.height}`}</text></g>`);
  }
  return `<svg id="height-chart" class="chart" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="delivered height per replica over virtual time">${parts.join("")}</svg>`;
}

function bucketLabel(upToMs: number, previousMs: number | undefined): string {
  if (upToMs < 0) return `> ${formatMs(previousMs ?? 0)}`;
  return `≤ ${formatMs(upToMs)}`;
}

/** Ingress latency histogram: one bar per bucket (bucket widths differ, so bars are categorical). */
export function latencyHistogramSvg(report: ChartInput, p50: number | null, p99: number | null): string {
  const buckets = report.latencyHistogram;
  const width = 1000;
  const height = 250;
  const pad = { left: 74, right: 18, top: 18, bottom: 52 };
  const total = buckets.reduce((s, b) => s + b.count, 0);
  const maxC = niceMax(Math.max(1, ...buckets.map((b) => b.count)));
  const y = linear(0, maxC, height - pad.bottom, pad.top);
  const slot = (width - pad.left - pad.right) / Math.max(1, buckets.length);
  const parts: string[] = [valueAxis(y, niceTicks(maxC, 5), pad.left, width - pad.right, (v) => int(v), "messages", (pad.top + height - pad.bottom) / 2)];
  buckets.forEach((b, i) => {
    const prev = buckets[i - 1]?.upToMs;
    const label = bucketLabel(b.upToMs, prev);
    const range = b.upToMs < 0 ? `more than ${formatMs(prev ?? 0)}` : `${formatMs(prev ?? 0)} – ${formatMs(b.upToMs)}`;
    const x0 = pad.left + i * slot + slot * 0.12;
    const w = slot * 0.76;
    const top = y(b.count);
    const color = b.upToMs < 0 ? "#b91c1c" : "#2563eb";
    parts.push(`<g class="hbar"><title>${esc(`${range}: ${int(b.count)} message${b.count === 1 ? "" : "s"} (${total === 0 ? "–" : num((100 * b.count) / total, 1)} %)`)}</title><rect x="${px(x0)}" y="${px(top)}" width="${px(w)}" height="${px(Math.max(0, height - pad.bottom - top))}" fill="${color}" fill-opacity="${b.count === 0 ? 0.25 : 0.85}"/>` +
      (b.count > 0 ? `<text x="${px(x0 + w / 2)}" y="${px(top - 4)}" font-size="10" text-anchor="middle" fill="#374151">${esc(int(b.count))}</text>` : "") +
      `<text x="${px(x0 + w / 2)}" y="${height - pad.bottom + 15}" font-size="10.5" text-anchor="middle" fill="#4b5563">${esc(label)}</text></g>`);
  });
  parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${height - pad.bottom}" y2="${height - pad.bottom}" stroke="#6b7280"/>`);
  const stats = `p50 ${p50 === null ? "–" : formatMs(p50)} · p99 ${p99 === null ? "–" : formatMs(p99)} · ${int(total)} finalized`;
  parts.push(`<text x="${(pad.left + width - pad.right) / 2}" y="${height - 12}" text-anchor="middle" font-size="12" fill="#111827">latency from submission to first honest finalization (bucket upper bound) — ${esc(stats)}</text>`);
  return `<svg id="latency-histogram" class="chart" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="ingress latency histogram">${parts.join("")}</svg>`;
}

function faultBandsBehind(report: ChartInput, x: (t: number) => number, top: number, bottom: number, chart: string): string {
  return faultRowsOf(report).map((fault, i) => {
    const { fromS, toS, category } = fault;
    return `<rect class="fault-band" x="${px(x(fromS * 1000))}" y="${top}" width="${px(Math.max(2, x(toS * 1000) - x(fromS * 1000)))}" height="${bottom - top}" ${category === "crash" ? `fill="url(#hatch-crash-${chart})"` : `fill="${CATEGORY_COLORS[category]}" fill-opacity="0.07"`}><title>${esc(`#${i + 1} ${fault.text}`)}</title></rect>`;
  }).join("");
}

/** Finalized blocks per simulated second over time (bins of 1 s or more). */
export function blockRateSvg(report: ChartInput): string {
  const width = 1000;
  const height = 220;
  const pad = { left: 74, right: 18, top: 14, bottom: 46 };
  const endMs = endMsOf(report);
  const binMs = binWidthMs(endMs);
  const bins = blockRate(report.blocks.map((b) => b.timeMs), endMs, binMs);
  const rates = bins.map((b) => b.count / (binMs / 1000));
  const maxR = niceMax(maxOf(rates, 0.5));
  const x = linear(0, endMs, pad.left, width - pad.right);
  const y = linear(0, maxR, height - pad.bottom, pad.top);
  const parts: string[] = [`<defs>${hatch("rate")}</defs>`, faultBandsBehind(report, x, pad.top, height - pad.bottom, "rate")];
  parts.push(valueAxis(y, niceTicks(maxR, 4), pad.left, width - pad.right, (v) => num(v), "blocks / s", (pad.top + height - pad.bottom) / 2));
  parts.push(timeAxis(x, endMs, pad.top, height - pad.bottom, `virtual time (s) — bins of ${num(binMs / 1000)} s`));
  bins.forEach((b, i) => {
    const rate = rates[i] ?? 0;
    const x0 = x(b.fromMs);
    const x1 = x(Math.min(endMs, b.fromMs + binMs));
    parts.push(`<rect class="rbar" x="${px(x0 + 0.5)}" y="${px(y(rate))}" width="${px(Math.max(0.5, x1 - x0 - 1))}" height="${px(height - pad.bottom - y(rate))}" fill="#0f766e" fill-opacity="0.8"><title>${esc(`${num(b.fromMs / 1000)}–${num(Math.min(endMs, b.fromMs + binMs) / 1000)} s: ${b.count} block${b.count === 1 ? "" : "s"} (${num(rate)} / s)`)}</title></rect>`);
  });
  return `<svg id="block-rate" class="chart" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="finalized blocks per simulated second">${parts.join("")}</svg>`;
}

/** Payload bytes of each finalized block at its time; blocks of rank > 0 (leader failed) in orange. */
export function payloadSvg(report: ChartInput): string {
  const width = 1000;
  const height = 220;
  const pad = { left: 74, right: 18, top: 14, bottom: 46 };
  const endMs = endMsOf(report);
  const { ticks, top: maxB } = byteTicks(maxOf(report.blocks.map((b) => b.payloadBytes), 1024));
  const x = linear(0, endMs, pad.left, width - pad.right);
  const y = linear(0, maxB, height - pad.bottom, pad.top);
  const parts: string[] = [`<defs>${hatch("payload")}</defs>`, faultBandsBehind(report, x, pad.top, height - pad.bottom, "payload")];
  parts.push(valueAxis(y, ticks, pad.left, width - pad.right, formatBytes, "bytes", (pad.top + height - pad.bottom) / 2));
  parts.push(timeAxis(x, endMs, pad.top, height - pad.bottom, "virtual time (s) — one mark per finalized block"));
  const blocks = report.blocks;
  const stride = Math.max(1, Math.ceil(blocks.length / 2500));
  const stems: string[] = [];
  const dots: string[] = [];
  for (let i = 0; i < blocks.length; i += stride) {
    // With many blocks, each mark stands for the largest of `stride` consecutive blocks.
    let b = blocks[i];
    for (let j = i + 1; j < Math.min(blocks.length, i + stride); j++) {
      const c = blocks[j];
      if (c !== undefined && b !== undefined && c.payloadBytes > b.payloadBytes) b = c;
    }
    if (b === undefined) continue;
    const cx = x(b.timeMs);
    const cy = y(b.payloadBytes);
    stems.push(`M${px(cx)},${px(height - pad.bottom)}V${px(cy)}`);
    const late = b.rank > 0;
    dots.push(`<circle cx="${px(cx)}" cy="${px(cy)}" r="${late ? 3.2 : 2.4}" fill="${late ? "#ea580c" : "#2563eb"}"><title>${esc(`height ${b.height} · ${num(b.timeMs / 1000)} s · maker ${b.maker} (rank ${b.rank}) · ${b.ingress} ingress · ${formatBytes(b.payloadBytes)}`)}</title></circle>`);
  }
  parts.push(`<path d="${stems.join("")}" stroke="#93c5fd" stroke-width="1" fill="none"/>`, dots.join(""));
  return `<svg id="payload-chart" class="chart" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="payload bytes per finalized block over virtual time">${parts.join("")}</svg>`;
}

/** A replica's name in the report (`r3`, or `b/r3` in multi-subnet runs). */
function nameOf(report: Pick<RunReport, "replicas">, r: number): string {
  return report.replicas[r]?.replica ?? `r${r}`;
}

/**
 * Certified update latency over virtual time (issue 14 item 3): one dot per answered message at
 * its submission time, dashed lines where checkpoint heights were first certified, the worst pause
 * of the certified height in the caption. Empty string when the run has no such figures.
 */
export function updateLatencySvg(report: ChartInput & Pick<RunReport, "updates">): string {
  const u = report.updates;
  if (u === undefined || u.samples.length === 0) return "";
  const width = 1000;
  const height = 240;
  const pad = { left: 74, right: 18, top: 14, bottom: 46 };
  const endMs = endMsOf(report);
  const maxL = niceMax(maxOf(u.samples.map(([, l]) => l), 100));
  const x = linear(0, endMs, pad.left, width - pad.right);
  const y = linear(0, maxL, height - pad.bottom, pad.top);
  const parts: string[] = [];
  parts.push(valueAxis(y, niceTicks(maxL, 4), pad.left, width - pad.right, (v) => formatMs(v), "submit → certified answer", (pad.top + height - pad.bottom) / 2));
  parts.push(timeAxis(x, endMs, pad.top, height - pad.bottom, "virtual time of submission (s); dashed: checkpoint heights certified"));
  for (const c of u.checkpoints) {
    parts.push(`<line class="ckpt" x1="${px(x(c.certifiedAtMs))}" x2="${px(x(c.certifiedAtMs))}" y1="${px(pad.top)}" y2="${px(height - pad.bottom)}" stroke="#7c3aed" stroke-dasharray="4 3"><title>${esc(`checkpoint height ${c.height} certified at ${num(c.certifiedAtMs / 1000)} s`)}</title></line>`);
  }
  for (const [t, l] of u.samples) {
    parts.push(`<circle cx="${px(x(t))}" cy="${px(y(l))}" r="2" fill="#2563eb" fill-opacity="0.6"><title>${esc(`submitted at ${num(t / 1000)} s: certified answer after ${formatMs(l)}`)}</title></circle>`);
  }
  return `<svg id="update-latency" class="chart" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="certified update latency over virtual time">${parts.join("")}</svg>`;
}
