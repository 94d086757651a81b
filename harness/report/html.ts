// report.html: one self-contained page (no network) with the verdict and the replay command at
// the top, a chart of delivered height over virtual time per replica with the fault windows as
// bands, the violations and the per-replica table. Hand-written SVG keeps it dependency-free.
import { writeFileSync } from "node:fs";
import type { RunReport } from "../scenario/runner.ts";
import { windowOf, replicasOf } from "../faults/spec.ts";

export type HtmlReportInput = RunReport & { readonly replayCommand: string; readonly scenarioPath: string };

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

const esc = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function heightChart(report: HtmlReportInput): string {
  const width = 900;
  const height = 320;
  const pad = { left: 50, right: 110, top: 16, bottom: 36 };
  const maxT = report.durationS * 1000;
  const maxH = Math.max(1, ...report.progress.flatMap((samples) => samples.map(([, h]) => h)));
  const x = (t: number): number => pad.left + (t / maxT) * (width - pad.left - pad.right);
  const y = (h: number): number => height - pad.bottom - (h / maxH) * (height - pad.top - pad.bottom);
  const bands = (report.faults ?? []).map((fault, i) => {
    const { fromS, toS } = windowOf(fault);
    const x0 = x(fromS * 1000);
    const x1 = x(Math.min(toS ?? report.durationS, report.durationS) * 1000);
    const label = `${fault.kind} ${replicasOf(fault).map((r) => `r${r}`).join(",")}`;
    return `<rect x="${x0}" y="${pad.top + i * 3}" width="${Math.max(1, x1 - x0)}" height="${height - pad.top - pad.bottom - i * 3}" fill="#f4a261" fill-opacity="0.12" stroke="#f4a261" stroke-opacity="0.5"><title>${esc(label)} ${fromS}s–${toS ?? "end"}</title></rect>`;
  });
  const lines = report.progress.map((samples, r) => {
    if (samples.length === 0) return "";
    const step = Math.max(1, Math.floor(samples.length / 400));
    const points = samples.filter((_, i) => i % step === 0 || i === samples.length - 1).map(([t, h]) => `${x(t).toFixed(1)},${y(h).toFixed(1)}`);
    const color = COLORS[r % COLORS.length] ?? "#333";
    const role = report.replicas[r]?.role ?? "honest";
    return `<polyline fill="none" stroke="${color}" stroke-width="1.5" ${role === "honest" ? "" : 'stroke-dasharray="4 3"'} points="${points.join(" ")}"><title>r${r} (${role})</title></polyline>` +
      `<text x="${width - pad.right + 8}" y="${pad.top + 14 * r + 10}" font-size="11" fill="${color}">r${r} ${role === "honest" ? "" : role}</text>`;
  });
  const firstViolation = report.violations.find((v) => v.height !== undefined);
  const marker = firstViolation?.height === undefined ? "" : `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(firstViolation.height)}" y2="${y(firstViolation.height)}" stroke="#d62728" stroke-dasharray="6 4"><title>first violation: height ${firstViolation.height}</title></line>`;
  const axes = `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#333"/><line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#333"/>` +
    `<text x="${(width - pad.right) / 2}" y="${height - 6}" font-size="12">virtual time (s)</text><text x="6" y="${pad.top + 10}" font-size="12">height</text>` +
    [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${x(f * maxT) - 8}" y="${height - pad.bottom + 16}" font-size="11">${Math.round((f * maxT) / 1000)}</text><text x="${pad.left - 34}" y="${y(f * maxH) + 4}" font-size="11">${Math.round(f * maxH)}</text>`).join("");
  return `<svg id="height-chart" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="delivered height per replica over virtual time">${bands.join("")}${axes}${marker}${lines.join("")}</svg>`;
}

export function renderHtmlReport(report: HtmlReportInput): string {
  const ok = report.verdict === "pass";
  const verdictLine = ok ? "PASS — every check held" : `FAIL — ${report.verdict} violated`;
  const expectation = report.expected === undefined ? "" : ` (scenario expects ${esc(report.expected.verdict)}: ${report.asExpected ? "as expected" : "NOT as expected"})`;
  const violations = report.violations.length === 0 ? "<p>None.</p>" : `<ul>${report.violations.map((v) => `<li><b>${esc(v.property)}</b>${v.height === undefined ? "" : ` at height ${v.height}`}: ${esc(v.message)}</li>`).join("")}</ul>`;
  const hashes = new Map<string, number>();
  for (const r of report.replicas) hashes.set(r.stateHash, (hashes.get(r.stateHash) ?? 0) + 1);
  const rows = report.replicas.map((r) => {
    const divergent = report.violations.some((v) => v.property === "state-divergence" && v.replicas.includes(r.replica));
    return `<tr${divergent ? ' class="bad"' : ""}><td>${r.replica}</td><td>${r.role}</td><td>${r.finalizedHeight}</td><td>${r.deliveredHeight}</td><td><code>${esc(r.stateHash.slice(0, 16))}</code></td></tr>`;
  }).join("");
  const faults = (report.faults ?? []).map((f) => `<li><code>${esc(JSON.stringify(f))}</code></li>`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>subnetlab · ${esc(report.scenario)} · seed ${report.seed}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;max-width:1000px;color:#222}h1{font-size:20px}.verdict{font-size:18px;padding:8px 12px;border-radius:6px;background:${ok ? "#e6f4ea" : "#fdecea"};color:${ok ? "#1e7e34" : "#b02a1f"}}pre{background:#f5f5f5;padding:8px;overflow:auto}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}tr.bad td{background:#fdecea}</style></head>
<body><h1>subnetlab · ${esc(report.scenario)} · seed ${report.seed}</h1>
<p class="verdict" id="verdict">${esc(verdictLine)}${expectation}</p>
<p>Replay bit for bit:</p><pre id="replay">${esc(report.replayCommand)}</pre>
<p>${esc(report.description)}</p>
<p>n = ${report.n} (f = ${report.f}), ${report.durationS} s simulated, trace digest <code>${report.traceDigest}</code> over ${report.traceEvents} events (${report.maliciousEvents} malicious).</p>
<h2>Finalized height over virtual time</h2>${heightChart(report)}
<h2>Violations</h2>${violations}
<h2>Replicas</h2><table><tr><th>replica</th><th>role</th><th>finalized</th><th>delivered</th><th>state hash at delivered height</th></tr>${rows}</table>
<h2>Ingress</h2><p>${report.ingress.submitted} submitted, ${report.ingress.valid} valid, ${report.ingress.finalized} finalized; latency p50 ${report.ingress.latencyMsP50 ?? "–"} ms, p99 ${report.ingress.latencyMsP99 ?? "–"} ms.</p>
<h2>Faults</h2>${faults === "" ? "<p>None.</p>" : `<ul>${faults}</ul>`}
<h2>Network</h2><p>${report.network.sent} bundles sent, ${report.network.delivered} delivered, ${report.network.dropped} dropped, ${report.network.duplicated} duplicated, ${(report.network.bytesSent / 1e6).toFixed(1)} MB.</p>
${report.notes.map((n) => `<p><i>${esc(n)}</i></p>`).join("")}
</body></html>
`;
}

export function writeHtmlReport(path: string, report: HtmlReportInput): void {
  writeFileSync(path, renderHtmlReport(report));
}
