// Execution round driver (research/ic-protocol.md §4.2, §4.4) with a model executor (contract of
// harness/execution/interfaces.ts). Expected numbers are derived from the round rules: the core
// budget X = R − S + 1 (§4.2), a message starts while the core budget is > 0 and costs its
// instructions + the per-execution overhead, + the per-canister overhead once per turn (§4.4).
import test from "ava";
import type { CanisterId, CanisterMessage, CanisterState } from "../../harness/execution/interfaces.ts";
import {
  decodeRoundMetadata,
  encodeRoundMetadata,
  executeAndCommit,
  executeQuery,
  executeRound,
  heapDeltaScheduledLimitBytes,
  initialRoundState,
  type ExecutionRoundState,
  type RoundConfig,
} from "../../harness/execution/round.ts";
import { coreRoundBudget } from "../../harness/execution/scheduler.ts";
import { canisterStateHash } from "../../harness/state/canister-codec.ts";
import { StateManager, diffStates } from "../../harness/state/state-manager.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { makeCanister } from "../state/fixtures.ts";
import { ModelExecutor, costArg, counterOf } from "../state/model-executor.ts";
import { smallConfig } from "./small-round-config.ts";


let seq = 0;
const ingress = (method: string, cost: bigint, extra: Uint8Array = new Uint8Array([1])): CanisterMessage => ({
  kind: "ingress",
  messageId: `m${seq++}`,
  caller: "2vxsx-fae" as never,
  method,
  arg: costArg(cost, extra),
});

const canister = (s: ExecutionRoundState, id: CanisterId): CanisterState => s.canisters.find((c) => c.id === id)!;

test("budget: X = R − S + 1 = 2001; messages of 300 (+10 overhead) ⇒ 7 run in round 1, 3 in round 2", (t) => {
  t.is(coreRoundBudget(smallConfig.scheduler), 2001n);
  const a = makeCanister(1);
  let state = initialRoundState([a]);
  const exec = new ModelExecutor();
  const msgs = Array.from({ length: 10 }, () => ({ canister: a.id, message: ingress("add", 300n) }));
  const r1 = executeRound(exec, smallConfig, state, { round: 1, timeNs: 1n, messages: msgs, isCheckpointRound: false });
  t.is(r1.executed.length, 7); // 2001 − 6·310 = 141 > 0 lets the 7th start
  t.is(r1.instructionsPerCore.reduce((x, y) => x + y, 0n), 7n * 310n + 20n);
  state = r1.state;
  t.is(counterOf(canister(state, a.id)), 7n);
  const r2 = executeRound(exec, smallConfig, state, { round: 2, timeNs: 2n, messages: [], isCheckpointRound: false });
  t.is(r2.executed.length, 3);
  t.is(counterOf(canister(r2.state, a.id)), 10n);
  t.is(r2.ingressResponses.length, 3);
  t.deepEqual(r2.state.queues, []);
});

test("same-subnet call: request and response are inducted between iterations of the same round (§4.4 step 6)", (t) => {
  const a = makeCanister(1);
  const b = makeCanister(2);
  const exec = new ModelExecutor();
  const state = initialRoundState([a, b]);
  const r = executeRound(exec, smallConfig, state, {
    round: 1,
    timeNs: 1n,
    messages: [{ canister: a.id, message: ingress("ping", 100n, new TextEncoder().encode(b.id)) }],
    isCheckpointRound: false,
  });
  t.deepEqual(
    r.executed.map((e) => `${e.canister === a.id ? "A" : "B"}:${e.message.kind}`),
    ["A:ingress", "B:request", "A:response"],
  );
  t.true(r.iterations >= 3);
  t.is(counterOf(canister(r.state, b.id)), 1n);
  t.deepEqual(r.remoteCalls, []);
});

test("a call to a canister on another subnet goes to remoteCalls, not to a queue", (t) => {
  const a = makeCanister(1);
  const r = executeRound(new ModelExecutor(), smallConfig, initialRoundState([a]), {
    round: 1,
    timeNs: 1n,
    messages: [{ canister: a.id, message: ingress("ping", 100n, new TextEncoder().encode(makeCanister(77).id)) }],
    isCheckpointRound: false,
  });
  t.is(r.remoteCalls.length, 1);
  t.is(r.remoteCalls[0]?.call.callee, makeCanister(77).id);
});

test("heap-delta gate: scheduled limit = cap − (cap − reserve)·left/(interval+1); at or above it nothing runs (§4.2 step 3)", (t) => {
  const cfg: RoundConfig = { ...smallConfig, heapDeltaCapacityBytes: 1000, heapDeltaInitialReserveBytes: 100, checkpointIntervalRounds: 10 };
  t.is(heapDeltaScheduledLimitBytes(cfg, 5), 1000 - Math.floor((900 * 5) / 11));
  const a = makeCanister(1);
  const input = { round: 1, timeNs: 1n, messages: [{ canister: a.id, message: ingress("add", 10n) }], isCheckpointRound: false, roundsUntilCheckpoint: 5 };
  const skipped = executeRound(new ModelExecutor(), cfg, initialRoundState([a]), { ...input, heapDeltaEstimateBytes: 591 });
  t.true(skipped.skippedForHeapDelta);
  t.is(skipped.executed.length, 0);
  t.is(skipped.state.queues[0]?.messages.length, 1); // still queued
  const ran = executeRound(new ModelExecutor(), cfg, initialRoundState([a]), { ...input, heapDeltaEstimateBytes: 590 });
  t.is(ran.executed.length, 1);
});

test("scheduler in the loop: with 3 busy canisters on 2 cores, the one with 50 % allocation runs ≥ half the rounds", (t) => {
  const cs = [makeCanister(1), makeCanister(2), makeCanister(3)].map((c, i) => ({ ...c, computeAllocationPercent: i === 2 ? 50 : 0 }));
  let state = initialRoundState(cs);
  const exec = new ModelExecutor();
  const ran = new Map<string, number>();
  for (let round = 1; round <= 40; round++) {
    // 60 messages of 900 each: far more than the 40 rounds can drain, so all three are always busy
    const messages = round === 1 ? cs.flatMap((c) => Array.from({ length: 60 }, () => ({ canister: c.id, message: ingress("add", 900n) }))) : [];
    const r = executeRound(exec, { ...smallConfig, dtsEnabled: false }, state, { round, timeNs: BigInt(round), messages, isCheckpointRound: false });
    for (const e of r.executed) ran.set(e.canister, (ran.get(e.canister) ?? 0) + 1);
    state = r.state;
  }
  // 2 messages of 900 (+10) fit a 2001 budget per turn; first on core ⇒ full round
  const allocated = ran.get(cs[2]!.id) ?? 0;
  t.true(allocated >= 2 * 20, `allocated canister executed ${allocated} messages in 40 rounds`);
});

test("round metadata encodes canonically and decodes back (queues, priorities, aborted)", (t) => {
  const a = makeCanister(1);
  const b = makeCanister(2);
  const exec = new ModelExecutor();
  const r = executeRound(exec, smallConfig, initialRoundState([a, b]), {
    round: 1,
    timeNs: 1n,
    messages: [
      ...Array.from({ length: 9 }, () => ({ canister: a.id, message: ingress("add", 300n) })),
      { canister: b.id, message: { kind: "query", caller: "2vxsx-fae" as never, method: "get", arg: costArg(5n), dataCertificate: new Uint8Array([1]) } },
      { canister: b.id, message: { kind: "response", callbackId: 3n as never, response: { kind: "reject", code: 4, message: "no" }, refundedCycles: 2n } },
    ],
    isCheckpointRound: false,
  });
  const bytes = encodeRoundMetadata(r.state);
  const back = decodeRoundMetadata(bytes, r.state.canisters);
  t.deepEqual(encodeRoundMetadata(back), bytes);
  t.deepEqual(back.queues, r.state.queues);
  t.deepEqual(back.scheduling.list(), r.state.scheduling.list());
});

test("item 4: best-effort messages in input queues keep their deadline (and the expiry reject its mark) through the metadata encoding; guaranteed ones keep their bytes", (t) => {
  const a = makeCanister(1);
  const b = makeCanister(2);
  const guaranteed: CanisterMessage = { kind: "request", caller: a.id, callerCallbackId: 4n as never, method: "get", arg: costArg(5n), cycles: 3n };
  const messages: CanisterMessage[] = [
    { ...guaranteed, deadlineNs: 7_000_000_000n },
    { kind: "response", callbackId: 5n as never, response: { kind: "reply", data: new Uint8Array([1]) }, refundedCycles: 2n, deadlineNs: 8_000_000_000n },
    { kind: "response", callbackId: 6n as never, response: { kind: "reject", code: 6, message: "Call deadline has expired." }, refundedCycles: 0n, deadlineNs: 9_000_000_000n, deadlineExpired: true },
  ];
  const state = { ...initialRoundState([a, b]), queues: [{ id: b.id, messages }] };
  const back = decodeRoundMetadata(encodeRoundMetadata(state), state.canisters);
  t.deepEqual(back.queues, state.queues);
  const plain = { ...state, queues: [{ id: b.id, messages: [guaranteed] }] };
  const withDeadline = { ...state, queues: [{ id: b.id, messages: [messages[0]!] }] };
  t.is(encodeRoundMetadata(withDeadline).length, encodeRoundMetadata(plain).length + 8, "a best-effort request is a guaranteed one plus its 8-byte deadline");
});

test("determinism: two runs of the same inputs give identical metadata and canister hashes every round", (t) => {
  const run = (): string[] => {
    const cs = [1, 2, 3, 4, 5].map((n) => makeCanister(n));
    let state = initialRoundState(cs);
    const exec = new ModelExecutor();
    const trace: string[] = [];
    for (let round = 1; round <= 12; round++) {
      const messages = cs.flatMap((c, i) => (round % (i + 1) === 0 ? [{ canister: c.id, message: ingress(i === 4 ? "add" : "add", BigInt(200 + 700 * i), new Uint8Array([i])) }] : []));
      const r = executeRound(exec, smallConfig, state, { round, timeNs: BigInt(round), messages, isCheckpointRound: round % 5 === 0 });
      state = r.state;
      trace.push(Buffer.from(encodeRoundMetadata(state)).toString("hex") + state.canisters.map(canisterStateHash).join(","));
    }
    return trace;
  };
  seq = 0;
  const first = run();
  seq = 0;
  t.deepEqual(run(), first);
});

test("queries run against committed state through executeQuery", (t) => {
  const a = makeCanister(1);
  const r = executeRound(new ModelExecutor(), smallConfig, initialRoundState([a]), { round: 1, timeNs: 1n, messages: [{ canister: a.id, message: ingress("add", 10n, new Uint8Array([5])) }], isCheckpointRound: false });
  const q = executeQuery(new ModelExecutor(), smallConfig, r.state, a.id, { kind: "query", caller: "2vxsx-fae" as never, method: "get", arg: costArg(1n) }, 2n);
  t.deepEqual(q.responses[0]?.response, { kind: "reply", data: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 5]) });
});

test("with the state manager: restart from a checkpoint continues with the same digests as an uninterrupted run", (t) => {
  const cs = [makeCanister(1), makeCanister(2)];
  const inputs = (round: number) =>
    cs.flatMap((c, i) => (round % 2 === i ? [{ canister: c.id, message: ingress("add", BigInt(400 + 900 * i), new Uint8Array([round])) }] : []));
  const runFrom = (sm: StateManager, start: ExecutionRoundState, from: number, to: number): Map<number, string> => {
    const digests = new Map<number, string>();
    let state = start;
    for (let round = from; round <= to; round++) {
      const r = executeRound(new ModelExecutor(), smallConfig, state, { round, timeNs: BigInt(round), messages: inputs(round), isCheckpointRound: sm.isCheckpointHeight(round) });
      const committed = sm.commit(round, { canisters: r.state.canisters, metadata: encodeRoundMetadata(r.state) });
      state = { ...r.state, canisters: committed.state.canisters };
      digests.set(round, committed.stateDigest);
    }
    return digests;
  };
  const disk = new SimDisk();
  const sm = new StateManager(disk, { checkpointIntervalRounds: 4, keepCheckpoints: 2 });
  seq = 0;
  const straight = runFrom(sm, initialRoundState(cs), 1, 10);
  // crash after round 10; the newest checkpoint is at 8
  const restarted = new StateManager(disk, { checkpointIntervalRounds: 4, keepCheckpoints: 2 });
  const loaded = restarted.loadLatestCheckpoint();
  t.is(loaded?.height, 8);
  t.is(loaded?.stateDigest as string | undefined, straight.get(8));
  const resumed = decodeRoundMetadata(loaded!.state.metadata, loaded!.state.canisters);
  // message ids of the replayed rounds must match the original ones: advance the id counter
  seq = 0;
  for (let r = 1; r <= 8; r++) inputs(r);
  const replayed = runFrom(restarted, resumed, 9, 10);
  t.is(replayed.get(9), straight.get(9));
  t.is(replayed.get(10), straight.get(10));
});

test("heartbeat and due global timer run first in a round and are not kept when they do not run (§4.4 step 2)", (t) => {
  const base = makeCanister(1);
  const withTasks: CanisterState = { ...base, globalTimerNs: 5n, execution: { ...base.execution!, exports: [...base.execution!.exports, "canister_global_timer", "canister_heartbeat"].sort() } };
  const quiet = makeCanister(2); // exports neither
  const exec = new ModelExecutor();
  const r1 = executeRound(exec, smallConfig, initialRoundState([withTasks, quiet]), { round: 1, timeNs: 4n, messages: [{ canister: withTasks.id, message: ingress("add", 10n) }], isCheckpointRound: false });
  // timer not due yet (5 > 4): heartbeat, then the message
  t.deepEqual(r1.executed.map((e) => e.message.kind), ["heartbeat", "ingress"]);
  const r2 = executeRound(exec, smallConfig, r1.state, { round: 2, timeNs: 6n, messages: [], isCheckpointRound: false });
  t.deepEqual(r2.executed.map((e) => e.message.kind), ["heartbeat", "global-timer"]);
  t.is(canister(r2.state, withTasks.id).globalTimerNs, 0n); // deactivated once fired
  const r3 = executeRound(exec, smallConfig, r2.state, { round: 3, timeNs: 7n, messages: [], isCheckpointRound: false });
  t.deepEqual(r3.executed.map((e) => e.message.kind), ["heartbeat"]);
  // a gated round drops the tasks instead of queueing them
  const gated = executeRound(exec, { ...smallConfig, heapDeltaCapacityBytes: 0, heapDeltaInitialReserveBytes: 0 }, r3.state, { round: 4, timeNs: 8n, messages: [], isCheckpointRound: false });
  t.true(gated.skippedForHeapDelta);
  t.deepEqual(gated.state.queues, []);
  t.false(exec.calls.some((c) => c.canister === quiet.id));
});

test("a task the caller already queued is not added again (one heartbeat per round)", (t) => {
  const base = makeCanister(1);
  const c: CanisterState = { ...base, execution: { ...base.execution!, exports: [...base.execution!.exports, "canister_heartbeat"].sort() } };
  const r = executeRound(new ModelExecutor(), smallConfig, initialRoundState([c]), { round: 1, timeNs: 1n, messages: [{ canister: c.id, message: { kind: "heartbeat" } }], isCheckpointRound: false });
  t.deepEqual(r.executed.map((e) => e.message.kind), ["heartbeat"]);
});

test("heap delta rate limit (§4.6, §4.2 step 9): debit −= limit per round; skipped while debit ≥ limit", (t) => {
  // limit = 1 page; 3 one-page writes in round 1 ⇒ debit 3 pages → 2 after round 1 → 1 after
  // round 2 (skipped) → 0 after round 3 (skipped) ⇒ the next message runs in round 4
  const cfg: RoundConfig = { ...smallConfig, heapDeltaRateLimitBytes: 4096 };
  const a = makeCanister(1);
  const exec = new ModelExecutor();
  let state = initialRoundState([a]);
  const ranIn: number[] = [];
  for (let round = 1; round <= 5; round++) {
    const messages = round === 1 ? [1, 2, 3].map(() => ({ canister: a.id, message: ingress("add", 10n) })) : round === 2 ? [{ canister: a.id, message: ingress("add", 10n) }] : [];
    const r = executeRound(exec, cfg, state, { round, timeNs: BigInt(round), messages, isCheckpointRound: false });
    for (const _ of r.executed) ranIn.push(round);
    state = r.state;
    if (round === 1) t.deepEqual(state.heapDeltaDebits, [{ id: a.id, bytes: 2 * 4096 }]);
  }
  t.deepEqual(ranIn, [1, 1, 1, 4]);
  t.is(state.heapDeltaDebits, undefined);
  // the debit survives encode/decode (it is replicated state)
  const mid = executeRound(exec, cfg, initialRoundState([a]), { round: 1, timeNs: 1n, messages: [1, 2].map(() => ({ canister: a.id, message: ingress("add", 10n) })), isCheckpointRound: false }).state;
  t.deepEqual(decodeRoundMetadata(encodeRoundMetadata(mid), mid.canisters).heapDeltaDebits, mid.heapDeltaDebits);
});

test("an iteration stops once it produced maxHeapDeltaPerIterationBytes (§4.4): 2 one-page writes with a 2-page cap", (t) => {
  const cfg: RoundConfig = { ...smallConfig, maxHeapDeltaPerIterationBytes: 2 * 4096 };
  const a = makeCanister(1);
  const r = executeRound(new ModelExecutor(), cfg, initialRoundState([a]), { round: 1, timeNs: 1n, messages: [1, 2, 3, 4, 5].map(() => ({ canister: a.id, message: ingress("add", 10n) })), isCheckpointRound: false });
  t.is(r.executed.length, 2);
  t.is(r.state.queues[0]?.messages.length, 3);
});

test("a deleted canister's queue and paused execution are dropped, the others continue", (t) => {
  const a = makeCanister(1);
  const b = makeCanister(2);
  const exec = new ModelExecutor();
  const r1 = executeRound(exec, smallConfig, initialRoundState([a, b]), {
    round: 1,
    timeNs: 1n,
    messages: [
      { canister: a.id, message: ingress("add", 2500n) }, // long: paused after round 1
      { canister: b.id, message: ingress("add", 10n) },
      { canister: b.id, message: ingress("add", 10n) },
    ],
    isCheckpointRound: false,
  });
  t.is(r1.state.paused.length, 1);
  const withoutA: ExecutionRoundState = { ...r1.state, canisters: r1.state.canisters.filter((c) => c.id !== a.id) };
  const r2 = executeRound(exec, smallConfig, withoutA, { round: 2, timeNs: 2n, messages: [], isCheckpointRound: false });
  t.deepEqual(r2.state.paused, []);
  t.deepEqual(r2.state.canisters.map((c) => c.id), [b.id]);
  t.is(r2.state.scheduling.size, 1);
});

test("divergence: a replica whose canister memory is corrupted gets another digest at that height, and diffStates names the canister", (t) => {
  const cs = [makeCanister(1), makeCanister(2), makeCanister(3)];
  const cfg: RoundConfig = { ...smallConfig, checkpointIntervalRounds: 4 };
  const replicas = [0, 1].map(() => ({ sm: new StateManager(new SimDisk(), { checkpointIntervalRounds: 4, keepCheckpoints: 1 }), state: initialRoundState(cs), exec: new ModelExecutor() }));
  const digests: string[][] = [[], []];
  seq = 0;
  const batches = Array.from({ length: 6 }, (_, k) => cs.map((c, i) => ({ canister: c.id, message: ingress("add", 100n, new Uint8Array([k + i])) })));
  for (let round = 1; round <= 6; round++) {
    replicas.forEach((r, i) => {
      if (i === 1 && round === 3) {
        // fault injection (rule 6): flip one byte of canister 2's memory before round 3 executes
        r.state = {
          ...r.state,
          canisters: r.state.canisters.map((c) => {
            if (c.id !== cs[1]!.id) return c;
            const e = c.execution!;
            const p = e.wasmMemory.readPage(9).slice();
            p[0] = p[0]! ^ 0xff;
            return { ...c, execution: { ...e, wasmMemory: e.wasmMemory.withPages(new Map([[9, p]])) } };
          }),
        };
      }
      const res = executeAndCommit(r.exec, cfg, r.sm, r.state, { round, timeNs: BigInt(round), messages: batches[round - 1]! });
      r.state = res.state;
      digests[i]!.push(res.commit.stateDigest);
    });
  }
  t.deepEqual(digests[0]!.slice(0, 2), digests[1]!.slice(0, 2)); // agree before the fault
  t.true(digests[0]!.slice(2).every((d, k) => d !== digests[1]![k + 2])); // differ from the fault on
  const diff = diffStates({ canisters: replicas[0]!.state.canisters, metadata: encodeRoundMetadata(replicas[0]!.state) }, { canisters: replicas[1]!.state.canisters, metadata: encodeRoundMetadata(replicas[1]!.state) });
  t.deepEqual(diff, { canisters: [cs[1]!.id], metadata: false });
});
