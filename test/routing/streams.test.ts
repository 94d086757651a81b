// Stream building, induction and garbage collection (harness/routing/streams.ts) against the
// IC's rules in ../shared/research/ic-protocol.md §3.3 and the interface spec's ordering guarantees.
import test from "ava";
import fc from "fast-check";
import { canisterIdFromU64, RejectCode, type CallbackId, type CanisterId, type OutgoingCall } from "../../harness/execution/interfaces.ts";
import { Registry } from "../../harness/routing/registry.ts";
import {
  buildStreams,
  decodeRoutingState,
  emptyRoutingState,
  encodeRoutingState,
  inductSlice,
  INPUT_QUEUE_CAPACITY,
  sliceOf,
  streamTo,
  type InductionHost,
  type RoutingState,
} from "../../harness/routing/streams.ts";

const registry = Registry.of([{ name: "a", size: 4 }, { name: "b", size: 13 }]);
const A = registry.byName("a")!;
const B = registry.byName("b")!;
const onA = (k: number): CanisterId => registry.canisterId(A, k);
const onB = (k: number): CanisterId => registry.canisterId(B, k);
const call = (callee: CanisterId, n: number): OutgoingCall => ({ callee, method: "ping", arg: new Uint8Array([n]), cycles: 0n, callbackId: BigInt(n) as CallbackId });
const hostWith = (...ids: CanisterId[]): InductionHost => ({ hasCanister: (id) => ids.includes(id), queuedRequests: () => 0 });

test("the registry routes canister ids by range; the management canister and foreign principals have no route", (t) => {
  t.is(registry.route(onA(0))?.name, "a");
  t.is(registry.route(onB(12))?.name, "b");
  t.is(registry.route(canisterIdFromU64(3n << 20n)), undefined);
  t.is(registry.route("aaaaa-aa"), undefined);
  t.is(registry.route("2vxsx-fae"), undefined);
});

test("the stream builder appends remote calls in order and rejects unroutable ones locally with code 3", (t) => {
  const built = buildStreams(emptyRoutingState(), A.id, registry, [
    { from: onA(0), call: call(onB(0), 1) },
    { from: onA(0), call: call(canisterIdFromU64(5n << 20n), 2) },
    { from: onA(0), call: call(onA(9), 3) },
    { from: onA(0), call: call(onB(0), 4) },
  ], []);
  const toB = streamTo(built.state, B.id);
  t.deepEqual(toB.messages.map((m) => (m.kind === "request" ? m.arg[0] : -1)), [1, 4]);
  t.deepEqual(built.state.loopback.map((m) => (m.message.kind === "response" && m.message.response.kind === "reject" ? m.message.response.code : 0)), [RejectCode.DestinationInvalid, RejectCode.DestinationInvalid]);
  t.is(built.rejectedLocally, 2);
});

test("induction takes each index once and in order, skips duplicates, stops at a gap, and answers a missing canister with reject 3", (t) => {
  const source = buildStreams(emptyRoutingState(), A.id, registry, [1, 2, 3].map((n) => ({ from: onA(0), call: call(n === 2 ? onB(7) : onB(0), n) })), []).state;
  const host = hostWith(onB(0));
  const later = sliceOf(source, A.id, B.id, 2n);
  const gap = inductSlice(emptyRoutingState(), later, host);
  t.is(gap.inducted.length, 0, "index 2 cannot come before 0 and 1");
  const first = inductSlice(emptyRoutingState(), sliceOf(source, A.id, B.id, 0n), host);
  t.deepEqual(first.inducted.map((m) => (m.message.kind === "request" ? m.message.arg[0] : -1)), [1, 3]);
  t.is(first.rejected, 1);
  const back = streamTo(first.state, A.id);
  t.is(back.signalsEnd, 3n);
  t.is(back.messages[0]?.kind === "response" && back.messages[0].response.kind === "reject" ? back.messages[0].response.code : 0, RejectCode.DestinationInvalid);
  const again = inductSlice(first.state, sliceOf(source, A.id, B.id, 0n), host);
  t.is(again.inducted.length, 0);
  t.is(again.skipped, 3);
});

test("signals in the peer's header garbage-collect the acknowledged messages", (t) => {
  const aState = buildStreams(emptyRoutingState(), A.id, registry, [1, 2, 3].map((n) => ({ from: onA(0), call: call(onB(0), n) })), []).state;
  const bState = inductSlice(emptyRoutingState(), sliceOf(aState, A.id, B.id, 0n), hostWith(onB(0))).state;
  const collected = inductSlice(aState, sliceOf(bState, B.id, A.id, 0n), hostWith(onA(0)));
  t.is(collected.collected, 3);
  t.deepEqual({ begin: streamTo(collected.state, B.id).begin, held: streamTo(collected.state, B.id).messages.length }, { begin: 3n, held: 0 });
});

test("a full input queue refuses further requests from that sender with reject 2 (SYS_TRANSIENT)", (t) => {
  const source = buildStreams(emptyRoutingState(), A.id, registry, [1, 2].map((n) => ({ from: onA(0), call: call(onB(0), n) })), []).state;
  const host: InductionHost = { hasCanister: () => true, queuedRequests: () => INPUT_QUEUE_CAPACITY - 1 };
  const result = inductSlice(emptyRoutingState(), sliceOf(source, A.id, B.id, 0n), host);
  t.is(result.inducted.length, 1);
  const reject = streamTo(result.state, A.id).messages[0];
  t.is(reject?.kind === "response" && reject.response.kind === "reject" ? reject.response.code : 0, RejectCode.SysTransient);
});

test("the routing state's canonical encoding round-trips", (t) => {
  const built = buildStreams(emptyRoutingState(), A.id, registry, [{ from: onA(0), call: call(onB(0), 1) }, { from: onA(1), call: call(onA(8), 2) }], []).state;
  const encoded = encodeRoutingState(built);
  t.deepEqual(decodeRoutingState(encoded), built);
});

test("item 4: a best-effort request and its response carry the call's deadline through the stream, its encoding and induction", (t) => {
  const deadlineNs = 1_700_000_010_000_000_000n;
  const calls = [{ from: onA(0), call: { ...call(onB(0), 1), deadlineNs } }];
  const responses = [{ from: onA(2), response: { origin: { kind: "canister" as const, caller: onB(1), callbackId: 9n as CallbackId, deadlineNs }, response: { kind: "reply" as const, data: new Uint8Array([7]) }, refundedCycles: 0n } }];
  const built = buildStreams(emptyRoutingState(), A.id, registry, calls, responses).state;
  t.deepEqual(decodeRoutingState(encodeRoutingState(built)), built);
  t.deepEqual(streamTo(built, B.id).messages.map((m) => m.deadlineNs), [deadlineNs, deadlineNs]);
  const inducted = inductSlice(emptyRoutingState(), sliceOf(built, A.id, B.id, 0n), hostWith(onB(0), onB(1))).inducted;
  t.deepEqual(inducted.map((m) => (m.message.kind === "request" || m.message.kind === "response" ? m.message.deadlineNs : undefined)), [deadlineNs, deadlineNs]);
});

// Interface spec, "Ordering guarantees": requests from one canister to another are delivered in
// the order sent. Here: slices cut anywhere, delivered late, repeated and out of order.
test("property: any sequence of overlapping, repeated and reordered slices inducts the stream exactly once, in order", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.array(fc.nat({ max: 45 }), { minLength: 1, maxLength: 30 }), (count, starts) => {
      const source = buildStreams(emptyRoutingState(), A.id, registry, Array.from({ length: count }, (_, n) => ({ from: onA(n % 3), call: call(onB(0), n) })), []).state;
      let dest: RoutingState = emptyRoutingState();
      const seen: number[] = [];
      const deliver = (from: bigint): void => {
        const r = inductSlice(dest, sliceOf(source, A.id, B.id, from, 7), hostWith(onB(0)));
        dest = r.state;
        for (const m of r.inducted) if (m.message.kind === "request") seen.push(m.message.arg[0]!);
      };
      for (const s of starts) deliver(BigInt(s));
      for (let guard = 0; streamTo(dest, A.id).signalsEnd < BigInt(count) && guard < count; guard++) deliver(streamTo(dest, A.id).signalsEnd);
      return seen.length === count && seen.every((v, i) => v === i);
    }),
    { numRuns: 150 },
  );
  t.pass();
});
