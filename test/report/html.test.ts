// report.html without a browser: every text is escaped, the page is self-contained and
// deterministic, each part is there, and the derived facts (majorities, fault lanes, stalls,
// violation times) are right.
import test from "ava";
import { expectationLine, renderHtmlReport, verdictLine } from "../../harness/report/html.ts";
import { frontOf, lagSeries } from "../../harness/report/charts.ts";
import { blockRate, binWidthMs, columnMajority, describeFault, faultLanes, hashPrefixes, stallsOf, violationTimeMs } from "../../harness/report/facts.ts";
import { esc, niceMax, niceTicks, byteTicks } from "../../harness/report/format.ts";
import { HOSTILE, syntheticReport } from "./fixture.ts";

const withoutScript = (html: string): string => html.replace(/<script>[\s\S]*?<\/script>/g, "");

test("esc escapes every HTML-special character", (t) => {
  t.is(esc(`<a href="x" title='y'>&amp;</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
  t.is(esc(12), "12");
});

test("hostile text from the scenario, violations, notes and events never reaches the page raw", (t) => {
  const html = renderHtmlReport(syntheticReport());
  t.false(html.includes(HOSTILE));
  t.false(html.includes("<img"));
  t.false(html.includes(`alert("pwned")</script>`));
  t.is((html.match(/<script>/g) ?? []).length, 1, "only the page's own script");
  t.true(html.includes(esc(HOSTILE)));
  t.true(html.includes("fork&lt;&amp;&gt;&quot;name&quot;"));
  t.true(html.includes("weird&lt;kind&gt;&amp;"));
  t.true(html.includes(esc(`npx subnetlab replay "reports/<odd> & dir/repro.json"`)));
  // Outside the page's own script, no raw ampersand that is not an entity.
  t.deepEqual(withoutScript(html).match(/&(?!(?:amp|lt|gt|quot|#39|#\d+);)/g), null);
});

test("the page is self-contained: no URL, no external resource", (t) => {
  const html = renderHtmlReport(syntheticReport());
  t.notRegex(html, /https?:\/\//);
  const tags = withoutScript(html).match(/<[a-zA-Z][^>]*>/g) ?? [];
  t.true(tags.length > 100);
  t.deepEqual(tags.filter((tag) => /\s(?:src|href|action|srcset)\s*=\s*(?:"(?!#)|'(?!#)|(?!["'#]))/.test(tag)), []);
  t.notRegex(html, /<link\b|@import|url\((?!#)/);
});

test("element ids are unique and every url(#id) reference resolves", (t) => {
  const html = renderHtmlReport(syntheticReport());
  const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), []);
  for (const m of html.matchAll(/url\(#([^)]+)\)/g)) t.true(ids.includes(m[1]), m[1]);
  for (const m of html.matchAll(/href="#([^"]+)"/g)) t.true(ids.includes(m[1]), m[1]);
});

test("rendering is deterministic", (t) => {
  t.is(renderHtmlReport(syntheticReport()), renderHtmlReport(syntheticReport()));
});

test("the page has the verdict, the replay command and every part", (t) => {
  const html = renderHtmlReport(syntheticReport());
  for (const id of ["verdict", "expectation", "replay-command", "timeline", "timeline-chart", "first-violation", "height-chart", "latency-histogram", "block-rate", "payload-chart", "state-hash-table", "replica-table", "fault-table", "event-counts", "violation-1"]) {
    t.true(html.includes(`id="${id}"`), id);
  }
  t.regex(html, /SAFETY VIOLATED — fork at height 8/);
  t.regex(html, /as expected/);
  // One lane and one progress path per replica; fault bands on the lanes.
  t.is((html.match(/class="lane"/g) ?? []).length, 4);
  t.is((html.match(/class="progress"/g) ?? []).length, 4);
  t.true((html.match(/class="fault-band"/g) ?? []).length >= 4);
  // r2 runs ahead of the others: their lanes show how far behind they are.
  t.is((html.match(/<path class="lag"/g) ?? []).length, 3);
  // The partition touches every lane, the crash only r3's.
  t.true(html.includes("partition {r0,r1} | {r2,r3}"));
});

test("divergent state-hash cells are marked, majority cells are not", (t) => {
  const html = renderHtmlReport(syntheticReport());
  const table = /<table id="state-hash-table"[\s\S]*?<\/table>/.exec(html)?.[0] ?? "";
  t.is((table.match(/<td class="div">/g) ?? []).length, 1);
  t.regex(table, /<td class="div"><code class="hash div" title="dddddddddddddddd differs from the majority bbbbbbbbbbbbbbbb">dddddddd<\/code>/);
  t.regex(table, /title="not reached"/);
});

test("a passing run says so and shows no violation marker", (t) => {
  const html = renderHtmlReport(syntheticReport({ verdict: "pass", violations: [], expected: undefined, asExpected: true }));
  t.regex(html, /PASS — every check held/);
  t.false(html.includes(`id="first-violation"`));
  t.regex(html, /No violations/);
});

test("a run stopped early says so, and its charts end where it stopped", (t) => {
  const html = renderHtmlReport(syntheticReport({ stoppedAt: { event: 5000, timeMs: 10_000 } }));
  t.regex(html, /This run stopped early/);
  t.regex(html, /stopped at 10 s, event 5,000/);
  // The time axis of the timeline ends at 10 s, not at the scenario's 20 s.
  const timeline = /<svg id="timeline-chart"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? "";
  t.regex(timeline, />10<\/text>/);
  t.notRegex(timeline, />20<\/text>/);
});

test("verdict and expectation lines", (t) => {
  const report = syntheticReport();
  t.is(verdictLine(report), `SAFETY VIOLATED — ${report.violations[0]?.message}`);
  t.is(verdictLine({ verdict: "pass", violations: [] }), "PASS — every check held");
  t.is(expectationLine(report), "scenario expects safety naming r2, r3: as expected");
  t.is(expectationLine({ asExpected: false }), "scenario expects pass (default): NOT as expected");
});

test("columnMajority: strict majority, divergent cells, ties and gaps", (t) => {
  t.deepEqual(columnMajority(["a", "a", "b", "a"]), { majority: "a", divergent: [false, false, true, false] });
  t.deepEqual(columnMajority(["a", "a", null, "a"]), { majority: "a", divergent: [false, false, false, false] });
  t.deepEqual(columnMajority(["a", "b", "a", "b"]), { majority: null, divergent: [true, true, true, true] });
  t.deepEqual(columnMajority([null, null]), { majority: null, divergent: [false, false] });
});

test("fault lanes and descriptions", (t) => {
  t.deepEqual(faultLanes({ kind: "partition", groups: [[0, 1]], fromS: 1 }, 4), [0, 1, 2, 3]);
  t.deepEqual(faultLanes({ kind: "partition-oneway", from: [3], to: [1, 0], fromS: 1 }, 4), [0, 1, 3]);
  t.deepEqual(faultLanes({ kind: "network", effect: "loss", percent: 5 }, 3), [0, 1, 2]);
  t.deepEqual(faultLanes({ kind: "crash", replicas: [2], atS: 3 }, 4), [2]);
  t.is(describeFault({ kind: "partition", groups: [[0, 1, 2, 3]], fromS: 1 }, 7), "partition {r0,r1,r2,r3} | {r4,r5,r6}");
  t.is(describeFault({ kind: "crash", replicas: [2], atS: 3 }, 4), "crash r2, stays down");
  t.is(describeFault({ kind: "lag", replicas: [1], delayMs: 200 }, 4), "lag r1: links +200 ms");
});

test("stalls, violation times, hash prefixes, block rate", (t) => {
  t.deepEqual(stallsOf([[100, 1], [200, 2], [9000, 3]], 20_000, 3000), [{ fromMs: 200, toMs: 9000, height: 2 }, { fromMs: 9000, toMs: 20_000, height: 3 }]);
  const progress = [[[100, 1], [500, 5]], [[100, 1], [300, 5]]] as const;
  t.is(violationTimeMs({ property: "safety", message: "", replicas: ["r0", "r1"], height: 5 }, progress), 300);
  t.is(violationTimeMs({ property: "safety", message: "", replicas: ["r0"], height: 5, atUs: 7000 }, progress), 7);
  t.is(violationTimeMs({ property: "liveness", message: "", replicas: [] }, progress), undefined);
  t.deepEqual(hashPrefixes("r3 finalized 130708cf1889; r2 finalized 5bf85b6b6801 at height 8"), ["130708cf1889", "5bf85b6b6801"]);
  t.deepEqual(blockRate([0, 500, 999, 1000, 2500], 3000, 1000).map((b) => b.count), [3, 1, 1]);
  t.is(binWidthMs(40_000), 1000);
  t.is(binWidthMs(120_000), 2000);
});

test("front and lag series", (t) => {
  const a = [[100, 1], [200, 2], [300, 3], [400, 4]] as const;
  const b = [[110, 1], [900, 4]] as const;
  t.deepEqual(frontOf([a, b]), [[100, 1], [200, 2], [300, 3], [400, 4]]);
  t.deepEqual(lagSeries(b, frontOf([a, b])), [[300, 1], [400, 2], [900, 0]]);
  t.deepEqual(lagSeries(a, frontOf([a, b])), []);
});

test("axis ticks are round and cover the maximum", (t) => {
  t.deepEqual(niceTicks(10, 5), [0, 2, 4, 6, 8, 10]);
  t.deepEqual(niceTicks(248, 6), [0, 50, 100, 150, 200]);
  t.is(niceMax(248, 6), 250);
  t.is(niceMax(0.3, 4), 0.3);
  t.deepEqual(byteTicks(200_000).ticks.map((b) => b / 1024), [0, 50, 100, 150, 200]);
});

test("a liveness violation without height or time renders without a marker", (t) => {
  const html = renderHtmlReport(syntheticReport({
    verdict: "liveness",
    violations: [{ property: "liveness", replicas: [], message: "3 valid ingress message(s) not finalized within 30s, e.g. 0123456789ab" }],
  }));
  t.regex(html, /LIVENESS VIOLATED — 3 valid ingress/);
  t.false(html.includes(`id="first-violation"`));
  t.regex(html, /hashes in the message/);
});

test("a large subnet (n = 100, long run) renders compactly", (t) => {
  const n = 100;
  const progress = Array.from({ length: n }, (_, r) => Array.from({ length: 3000 }, (_, h) => [h * 200 + r, h + 1] as [number, number]));
  const report = syntheticReport({
    n,
    f: 33,
    durationS: 600,
    progress,
    replicas: Array.from({ length: n }, (_, r) => ({ replica: `r${r}`, role: "honest" as const, finalizedHeight: 3000, deliveredHeight: 3000, stateHash: "ab".repeat(32) })),
    blocks: Array.from({ length: 3000 }, (_, i) => ({ height: i + 1, timeMs: i * 200, rank: 0, maker: `r${i % n}`, ingress: 3, payloadBytes: 900 })),
    stateHashTable: { heights: [1000, 2000, 3000], rows: Array.from({ length: n }, (_, r) => ({ replica: `r${r}`, hashes: ["a", "b", r === 7 ? "x" : "c"] })) },
    violations: [{ property: "state-divergence", height: 3000, replicas: ["r7"], message: "r7 diverged at height 3000: state 78787878, majority 63636363" }],
    verdict: "state-divergence",
  });
  const html = renderHtmlReport(report);
  t.is((html.match(/class="lane"/g) ?? []).length, n);
  t.true(html.length < 1_000_000, `${html.length} characters`);
  t.is((html.match(/<td class="div">/g) ?? []).length, 1);
});
