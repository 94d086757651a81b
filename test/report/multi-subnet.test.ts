// report.html of a multi-subnet run (issue 11, item 10): states are compared within a subnet,
// subnet faults touch their own subnet's lanes, XNet partitions are listed and drawn.
import test from "ava";
import { renderHtmlReport, type HtmlReportInput } from "../../harness/report/html.ts";
import { faultRowsOf, stateHashVerdicts } from "../../harness/report/facts.ts";
import { syntheticReport } from "./fixture.ts";

const A = ["a/r0", "a/r1", "a/r2", "a/r3"];
const B = ["b/r0", "b/r1", "b/r2", "b/r3", "b/r4", "b/r5", "b/r6"];

/** A passing run of subnets a (4 replicas) and b (7): each subnet agrees with itself, never with the other. */
function twoSubnetReport(overrides: Partial<HtmlReportInput> = {}): HtmlReportInput {
  const heights = [20, 40, 60, 208, 210];
  const hashOf = (subnet: string, h: number): string => `${subnet === "a" ? "a" : "b"}${String(h).padStart(15, "0")}`;
  const rowsOf = (names: readonly string[], subnet: string, top: number) =>
    names.map((replica) => ({ replica, hashes: heights.map((h) => (h <= top ? hashOf(subnet, h) : null)) }));
  return syntheticReport({
    verdict: "pass",
    violations: [],
    expected: { verdict: "pass" },
    asExpected: true,
    n: 4,
    replicas: [...A, ...B].map((replica) => ({ replica, role: "honest" as const, finalizedHeight: 210, deliveredHeight: 210, stateHash: "ab".repeat(32) })),
    progress: [...A, ...B].map((_, r) => Array.from({ length: 20 }, (_, h) => [h * 1000 + r, h + 1] as [number, number])),
    stateHashTable: { heights, rows: [...rowsOf(A, "a", 210), ...rowsOf(B, "b", 208)] },
    faults: [{ kind: "crash", replicas: [2], atS: 3, restartS: 8 }],
    faultSubnets: ["b"],
    xnetFaults: [{ kind: "partition-subnets", groups: [["a"], ["b"]], fromS: 15, toS: 35 }],
    ...overrides,
  });
}

const redCells = (html: string): number => (html.match(/<td class="div">/g) ?? []).length;

test("item 10: a passing two-subnet run shows no divergent state-hash cell", (t) => {
  const html = renderHtmlReport(twoSubnetReport());
  t.is(redCells(html), 0);
  t.regex(html, /All replicas agree at every sampled height/);
  t.regex(html, /<tr class="subnet"><th colspan="6">subnet a<\/th><\/tr>/);
  t.regex(html, /<tr class="subnet"><th colspan="6">subnet b<\/th><\/tr>/);
});

test("item 10: a replica is judged against its own subnet only", (t) => {
  const report = twoSubnetReport();
  const rows = report.stateHashTable.rows.map((row) => (row.replica === "b/r5" ? { ...row, hashes: row.hashes.map((h, c) => (c === 1 ? "ffffffffffffffff" : h)) } : row));
  const verdicts = stateHashVerdicts({ ...report.stateHashTable, rows });
  const divergent = verdicts.flatMap((col, c) => col.divergent.flatMap((d, r) => (d ? [`${rows[r]?.replica}@${report.stateHashTable.heights[c]}`] : [])));
  t.deepEqual(divergent, ["b/r5@40"]);
  // b/r5 is measured against b's majority, not a's.
  t.is(verdicts[1]?.majority[A.length + 5], "b000000000000040");
  t.is(verdicts[1]?.majority[0], "a000000000000040");
  t.is(redCells(renderHtmlReport({ ...report, stateHashTable: { ...report.stateHashTable, rows } })), 1);
});

test("item 10: subnet faults touch their subnet's lanes; XNet partitions are faults on the cut subnets' lanes", (t) => {
  const report = twoSubnetReport();
  const rows = faultRowsOf(report);
  t.deepEqual(rows.map((r) => r.text), ["b: crash r2, restarts at 8 s", "XNet partition {a} | {b}"]);
  t.deepEqual(rows[0]?.lanes, [A.length + 2], "b/r2's lane, not a/r2's");
  t.deepEqual(rows[1]?.lanes, Array.from({ length: A.length + B.length }, (_, i) => i));
  t.is(rows[1]?.category, "partition");
  t.is(rows[1]?.window, "15 s → 35 s");

  const html = renderHtmlReport(report);
  const faultTable = /<table id="fault-table"[\s\S]*?<\/table>/.exec(html)?.[0] ?? "";
  t.regex(faultTable, /XNet partition \{a\} \| \{b\}/);
  t.regex(faultTable, /partition-subnets/);
  t.regex(html, /<h2>Faults \(2\)<\/h2>/);
  // On the timeline: a fault row for the partition, and a band on every lane it cuts.
  const timeline = /<svg id="timeline-chart"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? "";
  t.regex(timeline, /<g class="fault-row"><title>XNet partition \{a\} \| \{b\} · 15 s → 35 s/);
  const lanes = [...timeline.matchAll(/<g class="lane" data-replica="([^"]+)">([\s\S]*?)<\/g>/g)];
  t.is(lanes.length, A.length + B.length);
  for (const [, name, body] of lanes) {
    t.true(body?.includes("#2 XNet partition {a} | {b}"), `${name} shows the XNet partition`);
    t.is(body?.includes("#1 b: crash r2"), name === "b/r2", `${name}: the crash band only on b/r2`);
  }
});
