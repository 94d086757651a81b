// index.html for a directory of runs (a suite, a fuzz campaign, or any folder of run directories):
// finds every report.json below it (and DIR/summary.json for runs that kept no run directory,
// such as passing fuzz runs), and writes one self-contained page with one row per run and the
// counts per verdict at the top.
import { existsSync, readdirSync, readFileSync, writeFileSync, type Dirent } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { esc, int } from "./format.ts";

/** One row of the index. */
export interface IndexRun {
  /** Run directory relative to the index's directory ("." for the directory itself); "" when the run kept none. */
  readonly dir: string;
  readonly scenario: string;
  readonly seed: number | null;
  readonly verdict: string;
  readonly expected: string;
  readonly asExpected: boolean;
  readonly traceDigest: string;
  /** Finalized height per replica, in replica order. */
  readonly finalizedHeights: readonly number[];
  readonly roles: readonly string[];
  readonly violations: number;
  readonly firstViolation: string;
  /** Link to the report, relative to the index ("" when there is none). */
  readonly link: string;
  /** "run", "fuzz failure", "shrunk repro", "fuzz run" (from summary.json only), "unreadable". */
  readonly kind: string;
}

const SKIP_DIRS = new Set(["node_modules", ".git"]);

/** Every report.json below `root` (depth-first, sorted by path), at most `limit` of them. */
export function findReports(root: string, limit = 20_000): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (found.length >= limit || depth > 12) return;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.isFile() && e.name === "report.json") found.push(join(dir, e.name));
    }
    for (const e of entries) {
      if (e.isDirectory() && !SKIP_DIRS.has(e.name)) walk(join(dir, e.name), depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

interface ReportJson {
  scenario?: string;
  seed?: number;
  verdict?: string;
  expected?: { verdict?: string };
  asExpected?: boolean;
  traceDigest?: string;
  replicas?: { finalizedHeight?: number; role?: string }[];
  violations?: { message?: string }[];
}

function kindOf(relDir: string): string {
  const parts = relDir.split(sep);
  if (parts.includes("shrunk")) return "shrunk repro";
  if (parts.includes("failures")) return "fuzz failure";
  return "run";
}

function runFromReport(root: string, path: string): IndexRun {
  const dir = dirname(path);
  const rel = relative(root, dir) || ".";
  const htmlPath = join(dir, "report.html");
  const link = toUrl(relative(root, existsSync(htmlPath) ? htmlPath : path));
  let report: ReportJson;
  try {
    report = JSON.parse(readFileSync(path, "utf8")) as ReportJson;
    if (typeof report !== "object" || report === null || Array.isArray(report)) throw new Error("not a JSON object");
  } catch (error) {
    return { dir: rel, scenario: rel, seed: null, verdict: "unreadable", expected: "", asExpected: false, traceDigest: "", finalizedHeights: [], roles: [], violations: 0, firstViolation: `report.json: ${(error as Error).message}`, link, kind: "unreadable" };
  }
  const verdict = report.verdict ?? "unknown";
  const expected = report.expected?.verdict ?? "pass";
  return {
    dir: rel,
    scenario: report.scenario ?? rel,
    seed: typeof report.seed === "number" ? report.seed : null,
    verdict,
    expected,
    asExpected: report.asExpected ?? verdict === expected,
    traceDigest: report.traceDigest ?? "",
    finalizedHeights: (report.replicas ?? []).map((r) => r.finalizedHeight ?? 0),
    roles: (report.replicas ?? []).map((r) => r.role ?? "honest"),
    violations: report.violations?.length ?? 0,
    firstViolation: report.violations?.[0]?.message ?? "",
    link,
    kind: kindOf(rel),
  };
}

function toUrl(relPath: string): string {
  return relPath.split(sep).map((p) => encodeURIComponent(p)).join("/");
}

interface FuzzSummaryJson {
  results?: { seed?: number; n?: number; verdict?: string; traceDigest?: string }[];
}

/** Runs listed in a fuzz summary.json that have no report.json of their own (passing runs). */
function summaryOnlyRuns(root: string, known: readonly IndexRun[]): IndexRun[] {
  const path = join(root, "summary.json");
  if (!existsSync(path)) return [];
  let summary: FuzzSummaryJson;
  try {
    summary = JSON.parse(readFileSync(path, "utf8")) as FuzzSummaryJson;
  } catch {
    return [];
  }
  const recorded = new Set(known.filter((r) => r.kind === "fuzz failure").map((r) => r.traceDigest));
  return (summary.results ?? [])
    .filter((r) => !recorded.has(r.traceDigest ?? ""))
    .map((r) => ({
      dir: "",
      scenario: `fuzz seed ${r.seed ?? "?"}${r.n === undefined ? "" : ` (n = ${r.n})`}`,
      seed: typeof r.seed === "number" ? r.seed : null,
      verdict: r.verdict ?? "unknown",
      expected: "pass",
      asExpected: r.verdict === "pass",
      traceDigest: r.traceDigest ?? "",
      finalizedHeights: [],
      roles: [],
      violations: 0,
      firstViolation: "",
      link: "",
      kind: "fuzz run",
    }));
}

/** All runs below `root`: every report.json, plus summary-only fuzz runs. */
export function collectRuns(root: string): IndexRun[] {
  const runs = findReports(root).map((p) => runFromReport(root, p));
  return [...runs, ...summaryOnlyRuns(root, runs)];
}

const VERDICT_COLORS: Record<string, string> = {
  pass: "#15803d",
  safety: "#991b1b",
  "state-divergence": "#a21caf",
  validity: "#c2410c",
  liveness: "#b45309",
};
const verdictColor = (v: string): string => VERDICT_COLORS[v] ?? "#4b5563";

function heightsCell(run: IndexRun): string {
  const hs = run.finalizedHeights;
  if (hs.length === 0) return `<span class="muted">—</span>`;
  const detail = hs.map((h, i) => `r${i}:${h}${run.roles[i] === undefined || run.roles[i] === "honest" ? "" : `(${run.roles[i]})`}`).join(" ");
  const min = Math.min(...hs);
  const max = Math.max(...hs);
  const text = min === max ? `${int(max)} ×${hs.length}` : `${int(min)}–${int(max)}`;
  return `<span title="${esc(detail)}">${esc(text)}</span>`;
}

/** "seed-3" before "seed-10": digit runs compare as numbers. */
export function naturalCompare(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] ?? "";
    const y = pb[i] ?? "";
    if (x === y) continue;
    const numeric = /^\d/.test(x) && /^\d/.test(y);
    if (numeric && Number(x) !== Number(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

function subline(r: IndexRun): string {
  const parts = [r.kind === "run" ? "" : r.kind, r.dir === "" || r.dir === "." || r.dir === r.scenario ? "" : r.dir].filter((p) => p !== "");
  return parts.length === 0 ? "" : `<div class="sub">${parts.map(esc).join(" · ")}</div>`;
}

export function renderIndexHtml(title: string, runs: readonly IndexRun[], subtitle = ""): string {
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  const order = ["pass", "safety", "state-divergence", "validity", "liveness", "invariant"];
  const verdicts = [...counts.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || (a < b ? -1 : 1));
  const unexpected = runs.filter((r) => !r.asExpected).length;
  // Runs that did not behave as expected first, then by path.
  const sorted = [...runs].sort((a, b) => Number(a.asExpected) - Number(b.asExpected) || (a.dir === b.dir ? 0 : a.dir === "" ? 1 : b.dir === "" ? -1 : naturalCompare(a.dir, b.dir)) || (a.seed ?? 0) - (b.seed ?? 0));
  const rows = sorted.map((r) => `<tr class="${r.asExpected ? "ok" : "unexpected"}" data-verdict="${esc(r.verdict)}">
<td>${r.link === "" ? esc(r.scenario) : `<a href="${esc(r.link)}">${esc(r.scenario)}</a>`}${subline(r)}</td>
<td class="num">${r.seed === null ? "—" : esc(r.seed)}</td>
<td><span class="verdict" style="background:${verdictColor(r.verdict)}">${esc(r.verdict)}</span>${r.violations > 1 ? ` <span class="muted">×${r.violations}</span>` : ""}${r.firstViolation === "" ? "" : `<div class="sub" title="${esc(r.firstViolation)}">${esc(r.firstViolation.length > 90 ? `${r.firstViolation.slice(0, 88)}…` : r.firstViolation)}</div>`}</td>
<td class="nowrap">${esc(r.expected)}</td>
<td class="${r.asExpected ? "yes" : "no"}">${r.asExpected ? "✓ yes" : "✗ no"}</td>
<td><code title="${esc(r.traceDigest)}">${esc(r.traceDigest.slice(0, 12) || "—")}</code></td>
<td class="num">${heightsCell(r)}</td>
<td>${r.link === "" ? `<span class="muted">no run directory</span>` : `<a href="${esc(r.link)}">report</a>`}</td>
</tr>`).join("\n");
  const chips = verdicts.map((v) => `<span class="count" style="border-color:${verdictColor(v)}"><b style="color:${verdictColor(v)}">${int(counts.get(v) ?? 0)}</b> ${esc(v)}</span>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${title} · ${runs.length} runs · subnetlab`)}</title>
<style>
*{box-sizing:border-box}
body{margin:0;background:#f9fafb;color:#111827;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px}
h1{font-size:24px;margin:0 0 4px}
.muted,.sub{color:#6b7280}
.sub{font-size:12px;overflow-wrap:anywhere}
.summary{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:14px 0}
.count{border:1px solid;border-radius:8px;padding:6px 12px;background:#fff;font-size:14px}
.count b{font-size:18px;margin-right:4px}
.status{font-weight:600;margin-left:8px}
.status.ok{color:#15803d}.status.bad{color:#b91c1c}
label{font-size:13px;color:#374151;margin-left:auto}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e5e7eb;border-radius:8px}
th,td{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{font-size:12px;color:#6b7280;font-weight:600;background:#f9fafb}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.nowrap,td:first-child a{white-space:nowrap}
tr.unexpected td{background:#fef2f2}
.verdict{display:inline-block;color:#fff;font-size:12px;font-weight:600;padding:1px 8px;border-radius:999px}
td.yes{color:#15803d;font-weight:600}td.no{color:#b91c1c;font-weight:700}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
body.only-unexpected tr.ok{display:none}
</style></head>
<body><main>
<div class="muted">subnetlab runs</div>
<h1>${esc(title)}</h1>
${subtitle === "" ? "" : `<p class="muted" id="subtitle">${esc(subtitle)}</p>`}
<div class="summary" id="counts"><span class="count"><b>${int(runs.length)}</b> runs</span>${chips}<span class="status ${unexpected === 0 ? "ok" : "bad"}">${unexpected === 0 ? "every run behaved as expected" : `${int(unexpected)} run${unexpected === 1 ? "" : "s"} not as expected`}</span>
<label><input type="checkbox" id="only-unexpected"> only runs not as expected</label></div>
<table id="runs"><thead><tr><th>scenario</th><th class="num">seed</th><th>verdict</th><th>expected</th><th>as expected</th><th>trace digest</th><th class="num">finalized heights</th><th>report</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p class="muted">Finalized heights: one number when every replica reached the same height (× replicas), else the range; hover for each replica. Runs not as expected come first.</p>
</main>
<script>
var box = document.getElementById("only-unexpected");
if (box) box.addEventListener("change", function () { document.body.classList.toggle("only-unexpected", box.checked); });
</script>
</body></html>
`;
}

/** Title and one line about the campaign or suite, from DIR/summary.json when there is one. */
function describeDir(dir: string): { title: string; subtitle: string } {
  try {
    const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8")) as {
      seed?: number; scenarios?: unknown[]; failures?: number; results?: unknown[]; runs?: number; seeds?: { first?: number; last?: number };
      elapsedS?: number; runsPerSec?: number; options?: { nodes?: number[]; kinds?: string[]; canary?: string; jobs?: number };
    };
    if (Array.isArray(summary.results)) {
      const o = summary.options ?? {};
      const facts = [
        `${summary.runs ?? summary.results.length} runs`,
        summary.elapsedS === undefined ? "" : `${summary.elapsedS} s`,
        summary.runsPerSec === undefined ? "" : `${summary.runsPerSec} runs/s`,
        o.nodes === undefined ? "" : `n ∈ {${o.nodes.join(", ")}}`,
        o.kinds === undefined ? "" : `faults: ${o.kinds.join(", ")}`,
        o.canary === undefined ? "" : `canary bug: ${o.canary}`,
      ].filter((f) => f !== "");
      return { title: `Fuzz campaign in ${dir} (seeds ${summary.seeds?.first ?? "?"}..${summary.seeds?.last ?? "?"})`, subtitle: facts.join(" · ") };
    }
    if (Array.isArray(summary.scenarios)) {
      return { title: `Scenario suite in ${dir} (seed ${summary.seed ?? "?"})`, subtitle: `${summary.scenarios.length} scenarios, ${summary.failures ?? 0} not as expected` };
    }
  } catch {
    // No summary (or an unreadable one): a plain folder of runs.
  }
  return { title: `Runs in ${dir}`, subtitle: "" };
}

/** Writes DIR/index.html for every run below DIR; returns its path and the runs listed. */
export function writeIndexHtml(dir: string, title?: string): { path: string; runs: IndexRun[] } {
  const runs = collectRuns(dir);
  const path = join(dir, "index.html");
  const described = describeDir(dir);
  writeFileSync(path, renderIndexHtml(title ?? described.title, runs, described.subtitle));
  return { path, runs };
}
