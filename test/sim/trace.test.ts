// issue 13 item 2: the trace hashes binary records (no per-event strings), builds text lines only
// for a sink, and its digest still tells every event field apart.
import test from "ava";
import { Trace, type TraceRecord } from "../../harness/sim/trace.ts";
import type { TraceEvent } from "../../harness/sim/env.ts";
import type { TimeUs } from "../../harness/types.ts";

const at = (us: number): TimeUs => us as TimeUs;
const EVENTS: readonly [number, number, TraceEvent][] = [
  [0, -1, { kind: "workload.submit", detail: { id: "00ab", to: 2 } }],
  [15, 2, { kind: "deliver", detail: { from: 1, items: 3, ok: true } }],
  [15, 3, { kind: "fault.equivocate", malicious: true, detail: { height: 7 } }],
  [20, 0, { kind: "replica.crash" }],
  [21, 1, { kind: "deliver", detail: { from: 0, items: 1, ok: false, note: "ünïcødé ✓" } }],
];

function digestOf(events: readonly [number, number, TraceEvent][], trace = new Trace()): string {
  for (const [time, replica, event] of events) trace.record(at(time), replica, event);
  return trace.digest();
}

test("issue 13 item 2: the digest does not depend on a sink; the sink gets the same lines as before", (t) => {
  const lines: string[] = [];
  const records: TraceRecord[] = [];
  const withSink = digestOf(EVENTS, new Trace((record, line) => (records.push(record), lines.push(line))));
  t.is(withSink, digestOf(EVENTS));
  t.deepEqual(lines, [
    "0|0|-1|workload.submit|id=00ab,to=2\n",
    "1|15|2|deliver|from=1,items=3,ok=true\n",
    "2|15|3|fault.equivocate|height=7|MALICIOUS\n",
    "3|20|0|replica.crash|\n",
    "4|21|1|deliver|from=0,items=1,ok=false,note=ünïcødé ✓\n",
  ]);
  t.deepEqual(records[2], { index: 2, timeUs: at(15), replica: 3, kind: "fault.equivocate", detail: "height=7", malicious: true });
});

test("issue 13 item 2: every field of an event changes the digest", (t) => {
  const base = digestOf(EVENTS);
  const variant = (k: number, change: (e: [number, number, TraceEvent]) => [number, number, TraceEvent]): string =>
    digestOf(EVENTS.map((e, i) => (i === k ? change([...e]) : e)));
  const variants = [
    variant(1, ([, r, e]) => [16, r, e]),
    variant(1, ([time, , e]) => [time, 1, e]),
    variant(1, ([time, r, e]) => [time, r, { ...e, kind: "deliverx" }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, malicious: true }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { from: 1, items: 4, ok: true } }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { from: 1, items: "3", ok: true } }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { from: 1, items: 3, ok: "true" } }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { from: 1, items: 3, ok: false } }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { from: 1, itemz: 3, ok: true } }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { items: 3, from: 1, ok: true } }]),
    variant(1, ([time, r, e]) => [time, r, { ...e, detail: { from: 1, items: 3 } }]),
    variant(1, ([time, r, e]) => [time, r, { kind: e.kind }]),
    variant(0, ([time, r, e]) => [time, r, { ...e, detail: { id: "00ab\u0000", to: 2 } }]),
    digestOf(EVENTS.slice(0, 4)),
    digestOf([...EVENTS.slice(0, 3), EVENTS[4]!, EVENTS[3]!]),
  ];
  t.is(new Set([base, ...variants]).size, variants.length + 1);
});

test("issue 13 item 2: counts by kind come out sorted, kinds only (names also number detail keys)", (t) => {
  const trace = new Trace();
  digestOf(EVENTS, trace);
  t.deepEqual(trace.countsByKind(), { deliver: 2, "fault.equivocate": 1, "replica.crash": 1, "workload.submit": 1 });
  t.is(trace.maliciousCount, 1);
  t.is(trace.length, 5);
});

test("issue 13 item 2: records larger than the hashing chunk and many chunks hash like any other", (t) => {
  const big = "x".repeat(200_000);
  const checkpoints: string[] = [];
  const trace = new Trace(undefined, { every: 1000, onCheckpoint: (_n, digest) => checkpoints.push(digest) });
  const events: [number, number, TraceEvent][] = Array.from({ length: 3000 }, (_, i) => [i, i % 4, { kind: "deliver", detail: { i, note: i === 1500 ? big : "n" } }]);
  const final = digestOf(events, trace);
  t.is(checkpoints.length, 3);
  t.is(checkpoints[2], final, "the digest at a checkpoint is the digest of that prefix");
  t.is(digestOf(events.slice(0, 1000)), checkpoints[0] as string);
  t.not(digestOf(events.map((e, i) => (i === 1500 ? [e[0], e[1], { kind: "deliver", detail: { i, note: `${big}y` } }] : e))), final);
});
