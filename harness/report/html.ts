// report.html: one self-contained page (no network: inline CSS, SVG and a few lines of script) for
// a person reading a run. At the top the verdict in one line and the exact replay command; then
// the timeline (one lane per replica with fault bands and the first violation), the violations with
// the facts that prove them, height over time, ingress latency, block rate and payload sizes, the
// state-hash table with divergent cells marked, the faults, network and event counts.
import { writeFileSync } from "node:fs";
import type { Violation } from "../checks/checks.ts";
import type { RunReport } from "../scenario/runner.ts";
import { blockRateSvg, CATEGORY_COLORS, heightChartSvg, latencyHistogramSvg, payloadSvg, replicaColor, timelineLegend, timelineSvg, updateLatencySvg } from "./charts.ts";
import { columnMajority, faultRowsOf, hashPrefixes, laneOf, stateHashVerdicts, subnetOf, violationTimeMs } from "./facts.ts";
import { esc, formatBytes, formatMs, int, num, percent } from "./format.ts";
import { candidValuesIn, type CandidNames } from "./candid-view.ts";

export type HtmlReportInput = RunReport & {
  readonly replayCommand: string;
  readonly scenarioPath: string;
  readonly scenarioContentHash?: string;
  /** Candid field and case names by label hash (the scenario's `.did` files), for decoded answers. */
  readonly candidNames?: CandidNames;
  /** Set for `run --real`: real processes, wall-clock times, no reproducible digest. */
  readonly real?: { readonly replayScenario: string };
};

export { esc as escapeHtml } from "./format.ts";

const PROPERTY_TEXT: Record<string, string> = {
  safety: "safety violated: two honest replicas finalized different blocks at one height",
  "state-divergence": "state divergence: a replica's state hash differs from the others' after the same blocks",
  validity: "validity violated: invalid or duplicate ingress was finalized",
  liveness: "liveness violated: no progress, or ingress not finalized, after the last heal",
};

/** The one-line verdict: "PASS — every check held" or "SAFETY VIOLATED — <first message>". */
export function verdictLine(report: Pick<RunReport, "verdict" | "violations">): string {
  if (report.verdict === "pass") return "PASS — every check held";
  const first = report.violations.find((v) => v.property === report.verdict);
  return `${report.verdict.toUpperCase()} VIOLATED${first === undefined ? "" : ` — ${first.message}`}`;
}

/** "scenario expects safety (r2, r3): as expected" — or NOT as expected. */
export function expectationLine(report: Pick<RunReport, "expected" | "asExpected">): string {
  const verdict = report.expected?.verdict ?? "pass";
  const replicas = report.expected?.replicas ?? [];
  const what = `${verdict}${replicas.length === 0 ? "" : ` naming ${replicas.join(", ")}`}`;
  return `scenario expects ${what}${report.expected === undefined ? " (default)" : ""}: ${report.asExpected ? "as expected" : "NOT as expected"}`;
}

function chip(text: string, cls: string, title?: string): string {
  return `<span class="chip ${cls}"${title === undefined ? "" : ` title="${esc(title)}"`}>${esc(text)}</span>`;
}

function replicaChip(name: string, report: RunReport): string {
  const r = laneOf(report, name);
  const role = r === undefined ? undefined : report.replicas[r]?.role;
  const color = r === undefined ? "#6b7280" : replicaColor(r);
  return `<span class="rchip" style="border-color:${color}" title="${esc(`${name}${role === undefined ? "" : ` (${role})`}`)}"><span class="dot" style="background:${color}"></span>${esc(name)}${role === undefined || role === "honest" ? "" : ` <small>${esc(role)}</small>`}</span>`;
}

function header(report: HtmlReportInput): string {
  const ok = report.verdict === "pass";
  const expect = expectationLine(report);
  const meta: [string, string][] = [
    ["scenario", `<code>${esc(report.scenarioPath)}</code>${report.scenarioContentHash ? ` <span class="muted" title="${esc(report.scenarioContentHash)}">content ${esc(report.scenarioContentHash.slice(0, 12))}</span>` : ""}`],
    ["seed", esc(report.seed)],
    ["subnet", subnetsFact(report)],
    ["simulated", `${esc(num(report.durationS))} s${report.stoppedAt === undefined ? "" : ` (stopped at ${esc(num(report.stoppedAt.timeMs / 1000))} s, event ${int(report.stoppedAt.event)})`}`],
    report.real !== undefined
      ? ["trace digest", `none: a real run is not reproducible (${int(report.traceEvents)} replica events, ${int(report.maliciousEvents)} malicious)`]
      : ["trace digest", `<code title="${esc(report.traceDigest)}">${esc(report.traceDigest.slice(0, 16))}</code> over ${int(report.traceEvents)} events (${int(report.maliciousEvents)} malicious)`],
    ["liveness", report.livenessChecked ? "checked" : "not checked (see notes)"],
    ...executionFact(report),
  ];
  return `<header>
<div class="eyebrow">subnetlab run report</div>
<h1>${esc(report.scenario)} <span class="seed">seed ${esc(report.seed)}</span></h1>
<p class="desc">${esc(report.description)}</p>
<div id="verdict" class="verdict ${ok ? "pass" : "fail"}"><span class="badge">${ok ? "PASS" : "FAIL"}</span><span class="line">${esc(verdictLine(report))}</span>${ok || report.violations.length === 0 ? "" : `<a class="jump" href="#violation-1">evidence ↓</a>`}</div>
<div id="expectation" class="expectation ${report.asExpected ? "ok" : "bad"}">${report.asExpected ? "✓" : "✗"} ${esc(expect)}</div>
<div class="replay"><span class="label">${report.real === undefined ? "Replay bit for bit" : "Replay the recorded timeline in the simulator"}</span><code id="replay-command">${esc(report.replayCommand)}</code><button type="button" class="copy" data-copy="replay-command" title="copy the command">Copy</button></div>
<dl class="meta">${meta.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join("")}</dl>
${report.stoppedAt === undefined ? "" : `<p class="warn">This run stopped early (replay --until or a replay mismatch): charts end at ${esc(num(report.stoppedAt.timeMs / 1000))} s and the checks saw only that prefix.</p>`}
</header>`;
}

/**
 * How many batches replicas executed (canister subnets) or applied (key-value subnets) themselves,
 * adopted from another replica, and audited.
 */
function executionFact(report: HtmlReportInput): [string, string][] {
  const e = report.execution;
  if (e === undefined) return [];
  const sharing = e.sharing ? `${int(e.shared)} shared, ${int(e.audited)} audited, ${int(e.mismatches)} audit mismatches` : "sharing off";
  if (e.stateMachine === "key-value") return [["batches", `${int(e.executions)} applied by replicas themselves (${sharing})`]];
  return [["executions", `${int(e.executions)} run by replicas (${sharing})`]];
}

/** The facts behind one violation: who, where, when, the hashes it names and the state hashes at its height. */
function violationCard(v: Violation, index: number, report: RunReport): string {
  const timeMs = violationTimeMs(v, report.progress);
  const facts: [string, string][] = [];
  if (v.height !== undefined) facts.push(["height", int(v.height)]);
  if (timeMs !== undefined) facts.push(["virtual time", `${esc(num(timeMs / 1000, 3))} s${v.atUs === undefined ? " (when the first named replica reached the height)" : ""}`]);
  facts.push(["replicas named", v.replicas.length === 0 ? "—" : v.replicas.map((r) => replicaChip(r, report)).join(" ")]);
  const evidence: string[] = [];
  if (v.property === "safety") {
    const sides = [...v.message.matchAll(/((?:r\d+,)*r\d+) finalized ([0-9a-f]{6,})/g)];
    if (sides.length > 0) {
      evidence.push(`<table class="mini"><caption>blocks finalized at height ${esc(v.height ?? "?")}</caption><tr><th>replicas</th><th>block hash prefix</th></tr>${sides.map((m) => `<tr><td>${(m[1] ?? "").split(",").map((r) => replicaChip(r, report)).join(" ")}</td><td><code>${esc(m[2] ?? "")}</code></td></tr>`).join("")}</table>`);
    }
  }
  if (v.property === "state-divergence") {
    const m = /state ([0-9a-f]+), majority ([0-9a-f]+)/.exec(v.message);
    if (m !== null) facts.push(["state hash", `<code class="bad">${esc(m[1] ?? "")}</code> where the majority has <code>${esc(m[2] ?? "")}</code>`]);
  }
  if (evidence.length === 0 && !facts.some(([k]) => k === "state hash")) {
    const hashes = hashPrefixes(v.message);
    if (hashes.length > 0) facts.push(["hashes in the message", hashes.map((h) => `<code>${esc(h)}</code>`).join(" ")]);
  }
  const subnet = violationSubnet(v);
  const firstSubnet = subnetOf(report.replicas[0]?.replica ?? "");
  if (v.height !== undefined) {
    // report.blocks is the first subnet's chain: another subnet's height means another block.
    const block = subnet === undefined || subnet === firstSubnet ? report.blocks.find((b) => b.height === v.height) : undefined;
    if (block !== undefined) {
      facts.push(["block on the chain", `height ${int(block.height)} made by ${replicaChip(block.maker, report)} (rank ${block.rank}) at ${esc(num(block.timeMs / 1000, 3))} s, ${int(block.ingress)} ingress, ${esc(formatBytes(block.payloadBytes))} <span class="muted">(as finalized by the most advanced honest replica)</span>`]);
    }
    const all = report.stateHashTable;
    // Only the violation's subnet: other subnets' states at this height are other states.
    const table = subnet === undefined ? all : { ...all, rows: all.rows.filter((row) => subnetOf(row.replica) === subnet) };
    const col = table.heights.indexOf(v.height);
    if (col >= 0 && table.rows.length > 0) {
      const prevCol = col - 1;
      const cells = table.rows.map((row) => row.hashes[col] ?? null);
      const { majority, divergent } = columnMajority(cells);
      const prevCells = prevCol >= 0 ? table.rows.map((row) => row.hashes[prevCol] ?? null) : undefined;
      const prevMajority = prevCells === undefined ? undefined : columnMajority(prevCells);
      const rows = table.rows.map((row, i) => {
        const cell = cells[i] ?? null;
        const named = v.replicas.includes(row.replica);
        const prev = prevCells?.[i] ?? null;
        return `<tr${named ? ' class="named"' : ""}><td>${replicaChip(row.replica, report)}</td>${prevCells === undefined ? "" : `<td>${hashCell(prev, prevMajority?.divergent[i] ?? false, prevMajority?.majority ?? null, 12)}</td>`}<td>${hashCell(cell, divergent[i] ?? false, majority, 12)}</td></tr>`;
      });
      const prevHead = prevCol >= 0 ? `<th>h ${int(table.heights[prevCol] ?? 0)}</th>` : "";
      evidence.push(`<table class="mini"><caption>${subnet === undefined || subnet === "" ? "" : `subnet ${esc(subnet)}: `}state hashes at height ${int(v.height)}${prevCol >= 0 ? " and the sampled height before" : ""}</caption><tr><th>replica</th>${prevHead}<th>h ${int(v.height)}</th></tr>${rows.join("")}</table>`);
    }
  }
  return `<article class="violation" id="violation-${index + 1}">
<h3>${chip(v.property, `p-${v.property}`)} ${v.height === undefined ? "" : `at height ${int(v.height)}`}</h3>
<p class="message">${esc(v.message)}</p>
<p class="muted">${esc(PROPERTY_TEXT[v.property] ?? "")}</p>
<dl class="facts">${facts.map(([k, val]) => `<div><dt>${esc(k)}</dt><dd>${val}</dd></div>`).join("")}</dl>
${evidence.length === 0 ? "" : `<div class="evidence">${evidence.join("")}</div>`}
</article>`;
}

/**
 * The subnet a violation is about, in a multi-subnet run: that of the replicas it names, else the
 * "subnet b: …" its message starts with; undefined when it is about no one subnet (or the run has one).
 */
function violationSubnet(v: Violation): string | undefined {
  const named = new Set(v.replicas.map(subnetOf));
  if (named.size === 1) return [...named][0];
  return /^subnet ([a-z0-9-]+):/.exec(v.message)?.[1];
}

function hashCell(hash: string | null, divergent: boolean, majority: string | null, chars = 8): string {
  if (hash === null) return `<span class="na" title="not reached">—</span>`;
  const title = divergent ? (majority === null ? `${hash}: no majority at this height` : `${hash} differs from the majority ${majority}`) : hash;
  return `<code class="${divergent ? "hash div" : "hash"}" title="${esc(title)}">${esc(hash.slice(0, chars))}</code>`;
}

function violationsSection(report: RunReport): string {
  if (report.violations.length === 0) return `<p class="none">No violations: safety, state agreement, validity${report.livenessChecked ? " and liveness" : ""} held.</p>`;
  const cards = report.violations.slice(0, FULL_VIOLATIONS).map((v, i) => violationCard(v, i, report)).join("");
  const rest = report.violations.slice(FULL_VIOLATIONS);
  if (rest.length === 0) return cards;
  const rows = rest.map((v, i) => `<tr id="violation-${FULL_VIOLATIONS + i + 1}"><td>${chip(v.property, `p-${v.property}`)}</td><td class="num">${v.height === undefined ? "—" : int(v.height)}</td><td>${v.replicas.map((r) => replicaChip(r, report)).join(" ")}</td><td><code>${esc(v.message)}</code></td></tr>`).join("");
  return `${cards}<h3>${rest.length} more violation${rest.length === 1 ? "" : "s"}</h3><table class="data" id="more-violations"><thead><tr><th>property</th><th class="num">height</th><th>replicas</th><th>message</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Violations shown as full cards with their evidence; the rest are listed one per row. */
const FULL_VIOLATIONS = 3;

function stateHashTable(report: RunReport): string {
  const table = report.stateHashTable;
  if (table.heights.length === 0) return `<p class="none">No heights were sampled.</p>`;
  const columns = stateHashVerdicts(table);
  const multiSubnet = table.rows.some((row) => subnetOf(row.replica) !== "");
  const violationHeights = new Set(report.violations.map((v) => v.height).filter((h) => h !== undefined));
  const head = table.heights.map((h, c) => `<th${columns[c]?.divergent.some((d) => d) ? ' class="divcol"' : ""} title="${esc(violationHeights.has(h) ? `height ${h}: a violation names this height` : `height ${h}`)}">${int(h)}${violationHeights.has(h) ? " ⚠" : ""}</th>`).join("");
  const rows = table.rows.map((row, r) => {
    const cells = row.hashes.map((hash, c) => {
      const col = columns[c];
      const divergent = col?.divergent[r] ?? false;
      return `<td${divergent ? ' class="div"' : ""}>${hashCell(hash, divergent, col?.majority[r] ?? null)}</td>`;
    }).join("");
    const subnet = subnetOf(row.replica);
    const startsSubnet = multiSubnet && subnet !== subnetOf(table.rows[r - 1]?.replica ?? "");
    const separator = startsSubnet ? `<tr class="subnet"><th colspan="${table.heights.length + 1}">subnet ${esc(subnet)}</th></tr>` : "";
    return `${separator}<tr><th>${replicaChip(row.replica, report)}</th>${cells}</tr>`;
  }).join("");
  const divergentCells = columns.reduce((s, c) => s + c.divergent.filter((d) => d).length, 0);
  const scope = multiSubnet ? "the strict majority of its subnet in that column (subnets hold different states); if no value has a majority there, every cell of that subnet in the column is red" : "the strict majority of its column; if no value has a majority, every cell of that column is red";
  return `<p class="muted">State hash prefixes per replica at sampled heights (checkpoints, violation heights, the last height). A red cell differs from ${scope}. — means the replica never delivered that height. ${divergentCells === 0 ? "All replicas agree at every sampled height." : `${divergentCells} divergent cell${divergentCells === 1 ? "" : "s"}.`}</p>
<div class="scroll"><table id="state-hash-table" class="hashes"><thead><tr><th>replica \\ height</th>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** "n = 4, f = 1", or per subnet for multi-subnet runs ("a: n = 4, f = 1 · b: n = 7, f = 2"). */
function subnetsFact(report: RunReport): string {
  const sizes = new Map<string, number>();
  for (const r of report.replicas) {
    const slash = r.replica.indexOf("/");
    if (slash < 0) return `n = ${report.n}, f = ${report.f}`;
    const subnet = r.replica.slice(0, slash);
    sizes.set(subnet, (sizes.get(subnet) ?? 0) + 1);
  }
  return [...sizes].map(([name, n]) => `${name}: n = ${n}, f = ${Math.floor((n - 1) / 3)}`).join(" · ");
}

/**
 * The scenario's probe actions: the replicas that gave each answer (a dissenting answer in red),
 * the answer as hex and, for a Candid reply, its value decoded from the reply's own type table.
 */
function probesTable(report: HtmlReportInput): string {
  const rows = (report.probes ?? []).map((p) => {
    const byAnswer = new Map<string, string[]>();
    for (const [replica, answer] of Object.entries(p.answers)) byAnswer.set(answer, [...(byAnswer.get(answer) ?? []), replica]);
    const top = [...byAnswer].sort((a, b) => b[1].length - a[1].length)[0]?.[0];
    const cells = [...byAnswer].map(([answer, replicas]) => {
      const decoded = candidValuesIn(answer, report.candidNames);
      const value = decoded.length === 0 ? "" : ` <code class="candid" title="${esc(decoded.join(" "))}">${esc(decoded.join(" "))}</code>`;
      return `<div class="answer${answer === top ? "" : " div"}"><span class="who">${replicas.map((r) => replicaChip(r, report)).join(" ")}</span> <code title="${esc(answer)}">${esc(answer.length > 48 ? `${answer.slice(0, 48)}…` : answer)}</code>${value}</div>`;
    }).join("");
    return `<tr><td>${esc(p.label)}</td><td class="num">${int(p.atS)} s</td><td>${cells}</td></tr>`;
  }).join("");
  return `<p class="muted">Queries the scenario ran on every live honest replica: the answer as Candid bytes in hex (or the reject) and, in blue, the value those bytes decode to (field names from the canisters' <code>.did</code> files where known, else label numbers).</p><table id="probe-table" class="data"><thead><tr><th>probe</th><th class="num">at</th><th>answers</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function replicasTable(report: RunReport): string {
  const named = new Set(report.violations.flatMap((v) => v.replicas));
  const rows = report.replicas.map((r) => `<tr><td>${replicaChip(r.replica, report)}</td><td>${chip(r.role, `role-${r.role}`)}</td><td class="num">${int(r.finalizedHeight)}</td><td class="num">${int(r.deliveredHeight)}</td><td><code title="${esc(r.stateHash)}">${esc(r.stateHash.slice(0, 16) || "—")}</code></td><td>${named.has(r.replica) ? chip("named in a violation", "p-bad") : ""}</td></tr>`).join("");
  return `<table id="replica-table" class="data"><thead><tr><th>replica</th><th>role</th><th class="num">finalized</th><th class="num">delivered</th><th>state hash at delivered height</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

function faultsTable(report: RunReport): string {
  const faults = faultRowsOf(report);
  if (faults.length === 0) return `<p class="none">No faults injected.</p>`;
  const rows = faults.map((f, i) => `<tr><td class="num">#${i + 1}</td><td><span class="swatch" style="background:${CATEGORY_COLORS[f.category]}"></span>${esc(f.kind)}</td><td>${esc(f.text)}</td><td>${esc(f.window)}</td><td><code class="spec">${esc(JSON.stringify(f.spec))}</code></td></tr>`).join("");
  return `<table id="fault-table" class="data"><thead><tr><th class="num"></th><th>kind</th><th>what</th><th>window (virtual time)</th><th>spec</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function tiles(items: readonly [string, string, string?][]): string {
  return `<div class="tiles">${items.map(([label, value, title]) => `<div class="tile"${title === undefined ? "" : ` title="${esc(title)}"`}><div class="value">${value}</div><div class="label">${esc(label)}</div></div>`).join("")}</div>`;
}

function ingressAndNetwork(report: RunReport): string {
  const i = report.ingress;
  const n = report.network;
  return `<h3>Ingress</h3>${tiles([
    ["submitted", int(i.submitted)],
    ["valid", int(i.valid)],
    ["finalized", int(i.finalized), `${percent(i.finalized, i.valid)} of the valid messages`],
    ["latency p50", i.latencyMsP50 === null ? "–" : esc(formatMs(i.latencyMsP50))],
    ["latency p99", i.latencyMsP99 === null ? "–" : esc(formatMs(i.latencyMsP99))],
  ])}
<h3>Network</h3>${tiles([
    ["bundles sent", int(n.sent)],
    ["delivered", int(n.delivered), percent(n.delivered, n.sent)],
    ["dropped", `${int(n.dropped)} <small>${esc(percent(n.dropped, n.sent))}</small>`],
    ["duplicated", int(n.duplicated)],
    ["bytes sent", esc(formatBytes(n.bytesSent))],
  ])}`;
}

function eventCounts(report: RunReport): string {
  const entries = Object.entries(report.eventCounts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (entries.length === 0) return `<p class="none">No events recorded.</p>`;
  const max = Math.max(1, ...entries.map(([, c]) => c));
  const rows: string[] = entries.map(([kind, count]) => {
    const malicious = kind.startsWith("fault.");
    return `<tr${malicious ? ' class="malicious"' : ""}><td><code>${esc(kind)}</code></td><td class="num">${int(count)}</td><td class="barcell"><span class="ebar" style="width:${num((100 * count) / max, 1)}%"></span></td></tr>`;
  });
  const half = entries.length > 12 ? Math.ceil(entries.length / 2) : entries.length;
  const table = (part: string[], id: string): string => `<table id="${id}" class="data events"><thead><tr><th>event kind</th><th class="num">count</th><th></th></tr></thead><tbody>${part.join("")}</tbody></table>`;
  const tables = half === entries.length ? table(rows, "event-counts") : table(rows.slice(0, half), "event-counts") + table(rows.slice(half), "event-counts-2");
  return `<p class="muted">${int(report.traceEvents)} trace events in ${entries.length} kinds; <span class="malicious-key">fault.*</span> rows are injected faults and malicious acts.</p><div class="columns">${tables}</div>`;
}

const STYLE = `
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--red:#b91c1c;--green:#15803d;--blue:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1080px;margin:0 auto;padding:28px 28px 60px}
header{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin-bottom:18px}
.eyebrow{font-size:11px;letter-spacing:.08em;text-transform:uppercase;color:var(--muted)}
h1{font-size:26px;margin:2px 0 4px;font-weight:700}
h1 .seed{font-weight:400;color:var(--muted);font-size:18px}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:15px;margin:14px 0 8px}
.desc{margin:0 0 14px;color:#374151;max-width:880px}
.verdict{display:flex;gap:12px;align-items:center;padding:10px 14px;border-radius:8px;font-size:16px;font-weight:600}
.verdict.pass{background:#ecfdf5;color:var(--green);border:1px solid #a7f3d0}
.verdict.fail{background:#fef2f2;color:var(--red);border:1px solid #fecaca}
.verdict .badge{font-size:12px;letter-spacing:.06em;padding:2px 8px;border-radius:4px;color:#fff;background:currentColor}
.verdict.pass .badge{background:var(--green)}.verdict.fail .badge{background:var(--red)}
.verdict .line{overflow-wrap:anywhere;flex:1}
.verdict a.jump{font-size:13px;font-weight:600;color:inherit;white-space:nowrap}
.expectation{margin:8px 0 0;font-weight:600;font-size:13px}
.expectation.ok{color:var(--green)}.expectation.bad{color:var(--red)}
.replay{display:flex;align-items:center;gap:10px;margin:14px 0 4px;flex-wrap:wrap}
.replay .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.replay code{flex:1;min-width:280px;background:#111827;color:#f9fafb;padding:8px 12px;border-radius:6px;font-size:13px;user-select:all;overflow-wrap:anywhere}
button.copy{font:inherit;font-size:12px;padding:6px 12px;border:1px solid #d1d5db;border-radius:6px;background:#fff;cursor:pointer}
button.copy:hover{background:#f3f4f6}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:4px 24px;margin:12px 0 0}
dl.meta div,dl.facts div{display:flex;gap:10px}
dt{color:var(--muted);min-width:92px;font-size:13px}
dd{margin:0;overflow-wrap:anywhere}
nav{position:sticky;top:0;z-index:2;background:rgba(249,250,251,.95);padding:8px 0;margin-bottom:6px;border-bottom:1px solid var(--line);font-size:13px}
nav a{color:var(--blue);text-decoration:none;margin-right:14px}
nav a:hover{text-decoration:underline}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:14px 0}
.chart{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12px;color:#374151;margin:6px 0 0}
.key{display:inline-flex;align-items:center;gap:6px}
.swatch{display:inline-block;width:14px;height:10px;border-radius:2px;margin-right:6px;vertical-align:middle}
.key .swatch{margin-right:0}
.swatch.line{height:2px;background:#2563eb}
.swatch.lag{background:#dc2626;opacity:.35}
.swatch.stall{height:5px;background:#111827;opacity:.8}
.swatch.violation{width:2px;height:14px;background:var(--red)}
.muted{color:var(--muted)}
.none{color:var(--green);font-weight:600}
.warn{background:#fffbeb;border:1px solid #fde68a;padding:8px 12px;border-radius:6px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
code.bad{color:var(--red);font-weight:700}
.chip{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:999px;background:#eef2ff;color:#3730a3}
.chip.p-safety,.chip.p-state-divergence,.chip.p-validity,.chip.p-liveness,.chip.p-bad{background:#fee2e2;color:var(--red)}
.chip.role-byzantine{background:#fee2e2;color:var(--red)}.chip.role-crashed{background:#e5e7eb;color:#374151}.chip.role-honest{background:#ecfdf5;color:var(--green)}
.rchip{display:inline-flex;align-items:center;gap:4px;border:1px solid;border-radius:999px;padding:0 7px;font-size:12px;font-weight:600;background:#fff;white-space:nowrap}
.rchip small{font-weight:400;color:var(--red)}
.dot{width:8px;height:8px;border-radius:50%;display:inline-block}
article.violation{border:1px solid #fecaca;border-left:4px solid var(--red);border-radius:8px;padding:12px 16px;margin:10px 0;background:#fffafa}
article.violation h3{margin:0 0 6px}
article.violation .message{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;margin:4px 0;overflow-wrap:anywhere}
dl.facts{margin:8px 0 0;display:grid;gap:3px}
dl.facts dt{min-width:150px}
.evidence{display:flex;flex-wrap:wrap;gap:16px;margin-top:10px}
table{border-collapse:collapse}
table.mini caption{text-align:left;font-size:12px;color:var(--muted);padding-bottom:4px}
table.mini th,table.mini td{border:1px solid var(--line);padding:3px 10px;text-align:left;font-size:13px}
table.mini tr.named td{background:#fff1f2}
table.data{width:100%}
table.data th,table.data td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top}
table.data th{font-size:12px;color:var(--muted);font-weight:600}
.num{text-align:right!important;font-variant-numeric:tabular-nums}
code.spec{font-size:11.5px;color:#4b5563;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table.hashes th,table.hashes td{border:1px solid var(--line);padding:3px 7px;text-align:left;white-space:nowrap}
table.hashes thead th{font-size:12px;color:var(--muted);background:#f9fafb}
table.hashes thead th.divcol{color:var(--red)}
table.hashes td.div{background:#fee2e2}
table.hashes tr.subnet th{background:#f3f4f6;font-size:12px;color:#374151;text-align:left}
code.hash{color:#374151}
code.hash.div{color:var(--red);font-weight:700}
.na{color:#d1d5db}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile .value{font-size:20px;font-weight:700;font-variant-numeric:tabular-nums}
.tile .value small{font-size:12px;color:var(--muted);font-weight:400}
.tile .label{font-size:12px;color:var(--muted)}
.columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:0 28px;align-items:start}
table.events td{padding:2px 10px}
tr.malicious code{color:var(--red)}
.malicious-key{color:var(--red);font-family:ui-monospace,monospace}
.barcell{width:45%}
.ebar{display:block;height:8px;border-radius:2px;background:#93c5fd}
tr.malicious .ebar{background:#fca5a5}
.two{display:grid;grid-template-columns:1fr;gap:6px}
ul.notes{margin:0;padding-left:20px}
#probe-table .answer{margin:2px 0}
#probe-table td:nth-child(-n+2){white-space:nowrap}
#probe-table .answer.div code{color:var(--red);font-weight:700}
code.candid{color:var(--blue);background:#eff6ff;border-radius:4px;padding:0 5px;overflow-wrap:anywhere}
footer{color:var(--muted);font-size:12px;margin-top:20px}
`;

const SCRIPT = `
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var source = document.getElementById(button.getAttribute("data-copy") || "");
    if (!source) return;
    var text = source.textContent || "";
    var done = function () { button.textContent = "Copied"; window.setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    var fallback = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      if (selection) { selection.removeAllRanges(); selection.addRange(range); }
      try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected for a manual copy */ }
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback); else fallback();
  });
});
`;

const NAV_LABEL: Record<string, string> = {
  timeline: "Timeline", violations: "Violations", height: "Height", latency: "Latency", blocks: "Blocks",
  state: "State hashes", replicas: "Replicas", faults: "Faults", traffic: "Network", events: "Events", probes: "Probes", notes: "Notes",
};

/** Execution subnets: when users could read their answers with a certificate, and the worst pause. */
function updateLatencySection(report: HtmlReportInput): string {
  const u = report.updates;
  if (u === undefined) return "";
  const pause = u.worstPauseMs === null ? "" : ` The subnet's certified height stood still for at most ${formatMs(u.worstPauseMs)} (until height ${u.worstPauseEndHeight ?? "?"}).`;
  const stats = u.latencyMsP50 === null ? "no answer was certified" : `p50 ${formatMs(u.latencyMsP50)}, p99 ${formatMs(u.latencyMsP99 ?? 0)}, max ${formatMs(u.latencyMsMax ?? 0)} over ${int(u.certified)} answers`;
  return `<h3>Certified update latency</h3><p class="muted">From submission until the answer could be read with a valid certificate (simulated runs: the first honest certification covering the answer's height; real runs: the client holding the verified certified reply): ${esc(stats)}.${esc(pause)}</p>${updateLatencySvg(report)}`;
}

export function renderHtmlReport(report: HtmlReportInput): string {
  const sections: [string, string, string][] = [
    ["timeline", "Timeline", `<p class="muted">One lane per replica, the faults above them. In a lane: the replica's delivered height (bottom 0, top the highest height of the run), red from the top for how far it is behind the most advanced replica, shaded bands for the faults that touch it, dark bars for stalls. Hover any mark for details.</p>${timelineSvg(report)}${timelineLegend(report)}`],
    ["violations", `Violations (${report.violations.length})`, violationsSection(report)],
    ["height", "Finalized height over virtual time", `${heightChartSvg(report)}<p class="muted">Delivered (finalized and executed) height per replica; dashed lines are Byzantine replicas, faint bands the fault windows.</p>`],
    ["latency", "Ingress latency", latencyHistogramSvg(report, report.ingress.latencyMsP50, report.ingress.latencyMsP99) + updateLatencySection(report)],
    ["blocks", "Block rate and payload", `<h3>Finalized blocks per simulated second</h3>${blockRateSvg(report)}<h3>Payload bytes per block</h3>${payloadSvg(report)}<div class="legend"><span class="key"><span class="swatch" style="background:#2563eb"></span>block of the rank-0 maker</span><span class="key"><span class="swatch" style="background:#ea580c"></span>block of a higher-rank maker (the leader's block did not make it)</span></div><p class="muted">${int(report.blocks.length)} finalized blocks on the chain of the most advanced honest replica.</p>`],
    ["state", "State hashes", stateHashTable(report)],
    ["replicas", "Replicas", replicasTable(report)],
    ["faults", `Faults (${faultRowsOf(report).length})`, faultsTable(report)],
    ["traffic", "Ingress and network", ingressAndNetwork(report)],
    ["events", "Event counts", eventCounts(report)],
  ];
  if ((report.probes ?? []).length > 0) sections.push(["probes", "Probes", probesTable(report)]);
  if (report.notes.length > 0) sections.push(["notes", "Notes", `<ul class="notes">${report.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>`]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${report.verdict === "pass" ? "PASS" : report.verdict.toUpperCase()} · ${report.scenario} · seed ${report.seed} · subnetlab`)}</title>
<style>${STYLE}</style></head>
<body><main>
${header(report)}
<nav>${sections.map(([id, title]) => `<a href="#${id}">${esc(NAV_LABEL[id] ?? title)}</a>`).join("")}</nav>
${sections.map(([id, title, body]) => `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`).join("\n")}
<footer>${report.real === undefined
    ? "Generated by subnetlab from report.json. Everything on this page comes from the deterministic run; replaying the command above gives the same trace digest."
    : "Generated by subnetlab from report.json of a real run (replica processes, wall-clock seconds from the run's start instead of virtual time). Its digest is not reproducible; the command above runs the applied fault timeline and the observed workload in the simulator, where a failure that reproduces replays bit for bit."}</footer>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}

export function writeHtmlReport(path: string, report: HtmlReportInput): void {
  writeFileSync(path, renderHtmlReport(report));
}
