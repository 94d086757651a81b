// The XNet stream check (issue 11, C7): each index inducted exactly once, no gaps, the receiver's
// signals equal to the sender's end at quiescence; a violation names the stream and the index.
// The checker is run on observations made by hand, then on whole two-subnet runs: an honest one,
// and ones whose inductor has a known bug switched on (InductionCanary, test-only), which it must
// catch on the first run.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { checkStreams, InductionRecorder, type SubnetStreams } from "../../harness/checks/streams.ts";
import { exitCodeOf, EXIT } from "../../harness/report/exit-codes.ts";
import { runMultiSubnetScenario } from "../../harness/scenario/ic-runner.ts";
import { checkScenario, defineScenario } from "../../harness/scenario/scenario.ts";

type Streams = Record<string, { begin: bigint; end: bigint; signalsEnd: bigint }>;
const subnet = (name: string, height: number, streams: Streams): SubnetStreams => ({ subnet: name, height, streams: new Map(Object.entries(streams)) });

/** b inducted a's stream as `perHeight` (index lists at heights 1, 2, …) on two replicas. */
function inductedByB(perHeight: readonly (readonly bigint[])[]): Map<string, InductionRecorder> {
  const b = new InductionRecorder();
  for (const replica of ["b/r0", "b/r1"]) perHeight.forEach((indices, i) => b.record(replica, i + 1, indices.length === 0 ? [] : [["a", indices]]));
  const a = new InductionRecorder();
  perHeight.forEach((_, i) => a.record("a/r0", i + 1, []));
  return new Map([["a", a], ["b", b]]);
}

const ends = (aEnd: bigint, bSignals: bigint, heights = 3): SubnetStreams[] => [
  subnet("a", heights, { b: { begin: 0n, end: aEnd, signalsEnd: 0n } }),
  subnet("b", heights, { a: { begin: 0n, end: 0n, signalsEnd: bSignals } }),
];

test("C7: a stream inducted once, in order, to its end passes", (t) => {
  const result = checkStreams({ subnets: ends(5n, 5n), inducted: inductedByB([[0n, 1n], [], [2n, 3n, 4n]]), quiescent: true });
  t.deepEqual(result.violations, []);
  t.deepEqual(result.notes, ["stream a→b: 5 message(s), each inducted once and in order, none left in flight"]);
});

test("C7: an index inducted twice is named with both heights", (t) => {
  const result = checkStreams({ subnets: ends(4n, 4n), inducted: inductedByB([[0n, 1n], [1n, 2n], [3n]]), quiescent: true });
  t.deepEqual(result.violations.map((v) => [v.property, v.message, v.height]), [["invariant", "subnet b: stream a→b: index 1 inducted twice by b (at height 1 and again at height 2)", 2]]);
});

test("C7: a gap names the missing index", (t) => {
  const result = checkStreams({ subnets: ends(4n, 4n), inducted: inductedByB([[0n], [2n, 3n], []]), quiescent: true });
  t.deepEqual(result.violations.map((v) => v.message), ["subnet b: stream a→b: index 1 never inducted by b: a gap before index 2, inducted at height 2"]);
});

test("C7: signals that count more than was inducted name the index never inducted", (t) => {
  // The last index skipped: no later index shows a gap, the signals do.
  const result = checkStreams({ subnets: ends(3n, 3n), inducted: inductedByB([[0n], [1n], []]), quiescent: true });
  t.deepEqual(result.violations.map((v) => v.message), ["subnet b: stream a→b: b's signals end at 3 but it inducted 2 message(s) by height 3: index 2 was signalled without being inducted"]);
});

test("C7: at quiescence the receiver's signals must reach the sender's end; before it they need not", (t) => {
  const quiet = checkStreams({ subnets: ends(6n, 3n), inducted: inductedByB([[0n], [1n, 2n], []]), quiescent: true });
  t.deepEqual(quiet.violations.map((v) => v.message), ["subnet b: stream a→b: index 3 never inducted at quiescence: b's signals end at 3, a's stream ends at 6 (indices 3..5 in flight)"]);
  const busy = checkStreams({ subnets: ends(6n, 3n), inducted: inductedByB([[0n], [1n, 2n], []]), quiescent: false });
  t.deepEqual(busy.violations, []);
  t.true(busy.notes.some((n) => n.startsWith("streams not compared with their ends")));
});

test("C7: a height no honest replica recorded leaves the stream unchecked, with a note", (t) => {
  const b = new InductionRecorder();
  b.record("b/r0", 1, [["a", [0n]]]);
  b.record("b/r0", 3, [["a", [2n]]]);
  const result = checkStreams({ subnets: ends(3n, 3n), inducted: new Map([["b", b], ["a", new InductionRecorder()]]), quiescent: true });
  t.deepEqual(result.violations, []);
  t.true(result.notes.includes("stream a→b: induction not checked (no honest replica's record of height 2)"));
});

test("C7: a height executed again after a restart replaces its earlier record", (t) => {
  const b = new InductionRecorder();
  b.record("b/r0", 1, [["a", [0n]]]);
  b.record("b/r0", 2, [["a", [1n]]]);
  b.record("b/r0", 2, [["a", [1n]]]); // re-executed from the checkpoint below it
  b.record("b/r0", 3, []);
  t.deepEqual(checkStreams({ subnets: ends(2n, 2n), inducted: new Map([["b", b]]), quiescent: true }).violations, []);
});

// Two small subnets with a ledger each; transfers both ways for 10 s, then 20 s of quiet.
const scenario = defineScenario({
  name: "stream-check",
  description: "two subnets, cross-subnet ledger transfers, then quiet",
  n: 4,
  durationS: 30,
  subnets: [
    { name: "a", n: 4, canisters: [{ name: "ledger-a", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "alice" }, { nat: 1_000_000 }] }] },
    { name: "b", n: 4, canisters: [{ name: "ledger-b", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "bob" }, { nat: 1_000_000 }] }] },
  ],
  workload: {
    ratePerSec: 8,
    stopS: 10,
    calls: [
      { canister: "ledger-a", method: "transfer_remote", args: [{ canister: "ledger-b" }, { text: "alice" }, { oneOf: ["bob", "carol"] }, { nat: [1, 50] }] },
      { canister: "ledger-b", method: "transfer_remote", args: [{ canister: "ledger-a" }, { text: "bob" }, { oneOf: ["alice", "dave"] }, { nat: [1, 50] }] },
    ],
  },
  livenessBoundS: 15,
  consensus: { dkgIntervalLength: 19 },
});

const streamViolations = (report: ReturnType<typeof runMultiSubnetScenario>): string[] => report.violations.filter((v) => /^subnet [ab]: stream /.test(v.message)).map((v) => v.message);

test("C7: an honest two-subnet run passes the stream check, with traffic on both streams", (t) => {
  checkScenario(scenario);
  const report = runMultiSubnetScenario(scenario, { seed: 3 });
  t.is(report.verdict, "pass", report.violations.map((v) => v.message).join("\n"));
  const notes = report.notes.filter((n) => /^stream /.test(n));
  t.is(notes.length, 2, notes.join("\n"));
  for (const note of notes) t.regex(note, /^stream (a→b|b→a): \d+ message\(s\), each inducted once and in order, none left in flight$/);
});

test("C7: an inductor that skips index 3 is caught on the first run, naming the stream and the index", (t) => {
  const report = runMultiSubnetScenario(scenario, { seed: 3, inductionCanary: { bug: "skip-index", index: 3n } });
  const found = streamViolations(report);
  t.true(found.some((m) => /^subnet b: stream a→b: index 3 never inducted by b: a gap before index 4/.test(m)), found.join("\n"));
  // Dated (the report places it on the timeline): when b first executed the height it names.
  const gap = report.violations.find((v) => v.message.startsWith("subnet b: stream a→b:"));
  t.true(gap?.atUs !== undefined && gap.atUs > 0 && gap.atUs < 30_000_000, String(gap?.atUs));
  t.true(found.some((m) => /^subnet a: stream b→a: index 3 never inducted by a/.test(m)), found.join("\n"));
  t.is(exitCodeOf(report.verdict), EXIT.invariant);
});

test("C7: an inductor that inducts index 3 twice is caught on the first run, naming the stream and the index", (t) => {
  const report = runMultiSubnetScenario(scenario, { seed: 3, inductionCanary: { bug: "double-induct", index: 3n } });
  const found = streamViolations(report);
  t.true(found.some((m) => /^subnet b: stream a→b: index 3 inducted twice by b \(at height \d+ and again at height \d+\)$/.test(m)), found.join("\n"));
  t.true(found.some((m) => /^subnet a: stream b→a: index 3 inducted twice by a/.test(m)), found.join("\n"));
  t.is(exitCodeOf(report.verdict), EXIT.invariant);
});
