// Deterministic time slicing by deferred commit (DESIGN.md; research/ic-protocol.md §4.5).
// Expected rounds follow from the slice rule: one slice (1000 instructions in this config) per
// round in which the canister gets a core, commit in the round whose slice reaches the message's
// total; a message above maxInstructionsPerMessage (5000 = 5 slices here; 40 B = 20 × 2 B on the
// IC) traps after the limit's slices; a checkpoint round aborts and the message restarts.
import test from "ava";
import fc from "fast-check";
import type { CanisterMessage, CanisterState, CanisterId } from "../../harness/execution/interfaces.ts";
import { continueSliced, slicesNeeded, startSliced } from "../../harness/execution/dts.ts";
import { executeQuery, executeRound, initialRoundState, type ExecutionRoundState, type RoundConfig, type RoundOutput } from "../../harness/execution/round.ts";
import { makeCanister } from "../state/fixtures.ts";
import { ModelExecutor, costArg, counterOf } from "../state/model-executor.ts";
import { smallConfig } from "./small-round-config.ts";

const config = smallConfig;

let n = 0;
const add = (cost: bigint, by = 1): CanisterMessage => ({ kind: "ingress", messageId: `d${n++}`, caller: "2vxsx-fae" as never, method: "add", arg: costArg(cost, new Uint8Array([by])) });
const get: Extract<CanisterMessage, { kind: "query" }> = { kind: "query", caller: "2vxsx-fae" as never, method: "get", arg: costArg(1n) };
const find = (s: ExecutionRoundState, id: CanisterId): CanisterState => s.canisters.find((c) => c.id === id)!;

interface Run {
  readonly outputs: RoundOutput[];
  /** Counter a query sees after each round. */
  readonly queried: bigint[];
}

function drive(canisters: CanisterState[], rounds: number, messagesAt: (round: number) => { canister: CanisterId; message: CanisterMessage }[], checkpointAt: (round: number) => boolean, exec = new ModelExecutor(), cfg = config): Run {
  let state = initialRoundState(canisters);
  const outputs: RoundOutput[] = [];
  const queried: bigint[] = [];
  for (let round = 1; round <= rounds; round++) {
    const out = executeRound(exec, cfg, state, { round, timeNs: BigInt(round), messages: messagesAt(round), isCheckpointRound: checkpointAt(round) });
    outputs.push(out);
    state = out.state;
    const q = executeQuery(exec, cfg, state, canisters[0]!.id, get, BigInt(round));
    const data = q.responses[0]?.response.kind === "reply" ? q.responses[0].response.data : new Uint8Array(8);
    queried.push(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0));
  }
  return { outputs, queried };
}

test("slice arithmetic: 3500 instructions need 4 slices of 1000; the last charges the remaining 500", (t) => {
  t.is(slicesNeeded(3500n, 1000n), 4);
  t.is(slicesNeeded(40_000_000_000n, 2_000_000_000n), 20); // §4.5: ≤ 20 slices per update
  const result = { canister: makeCanister(1), outcome: { kind: "completed" as const }, instructionsUsed: 3500n, responses: [], outgoingCalls: [], heapDeltaPages: 0, debugLog: [], readTime: false };
  let step = startSliced(makeCanister(1).id, add(3500n), result, 1000n, 1);
  const charged: bigint[] = [step.instructionsThisRound];
  while (step.kind === "paused") {
    step = continueSliced(step.paused, 1000n);
    charged.push(step.instructionsThisRound);
  }
  t.deepEqual(charged, [1000n, 1000n, 1000n, 500n]);
  t.is(step.kind === "finished" ? step.slices : 0, 4);
});

test("a time-sliced message spans 4 rounds; queries in between see the old value; it commits in round 4", (t) => {
  const a = makeCanister(1);
  const exec = new ModelExecutor();
  const run = drive([a], 6, (r) => (r === 1 ? [{ canister: a.id, message: add(3500n, 7) }] : []), () => false, exec);
  t.deepEqual(run.queried, [0n, 0n, 0n, 7n, 7n, 7n]);
  const commitRounds = run.outputs.flatMap((o, i) => o.executed.map(() => i + 1));
  t.deepEqual(commitRounds, [4]);
  const e = run.outputs[3]!.executed[0]!;
  t.is(e.startedRound, 1);
  t.is(e.slices, 4);
  t.is(run.outputs[3]!.ingressResponses.length, 1); // the reply appears only when committed
  t.deepEqual(run.outputs.slice(0, 3).map((o) => o.ingressResponses.length), [0, 0, 0]);
  // per-round charge: one slice (+ overheads) in rounds 1–3, the remaining 500 in round 4
  t.deepEqual(run.outputs.slice(0, 4).map((o) => o.instructionsPerCore.reduce((x, y) => x + y, 0n)), [1030n, 1030n, 1030n, 530n]);
  // deferred commit: the executor ran the message once
  t.is(exec.calls.filter((c) => c.kind === "ingress").length, 1);
  // paused state is visible in the round state
  t.is(run.outputs[1]!.state.paused[0]?.instructionsDone, 2000n);
});

test("while paused the canister runs nothing else; the next message runs after the commit", (t) => {
  const a = makeCanister(1);
  const run = drive([a], 6, (r) => (r === 1 ? [{ canister: a.id, message: add(2500n, 1) }, { canister: a.id, message: add(10n, 100) }] : []), () => false);
  // 2500 ⇒ slices in rounds 1, 2, 3 (500); the turn ends at the commit; the short one runs in round 4
  t.deepEqual(run.queried, [0n, 0n, 1n, 101n, 101n, 101n]);
});

test("checkpoint round aborts the paused execution: re-queued, restarted from scratch, committed later", (t) => {
  const a = makeCanister(1);
  const exec = new ModelExecutor();
  const run = drive([a], 8, (r) => (r === 1 ? [{ canister: a.id, message: add(3500n, 7) }] : []), (r) => r === 2, exec);
  t.deepEqual(run.outputs[1]!.aborted, [a.id]);
  t.deepEqual(run.outputs[1]!.state.paused, []);
  t.deepEqual(run.outputs[1]!.state.aborted, [a.id]);
  t.is(run.outputs[1]!.state.queues[0]?.messages[0]?.kind, "ingress"); // back at the front of the queue
  // restart in round 3 needs 4 fresh slices: rounds 3, 4, 5, 6
  t.deepEqual(run.queried, [0n, 0n, 0n, 0n, 0n, 7n, 7n, 7n]);
  const e = run.outputs[5]!.executed[0]!;
  t.is(e.startedRound, 3);
  t.is(e.slices, 4);
  t.is(exec.calls.filter((c) => c.kind === "ingress").length, 2); // executed again from scratch
  t.deepEqual(run.outputs[5]!.state.aborted, []);
});

test("limit trap: a message above maxInstructionsPerMessage traps after 5 slices, state unchanged, reject reply", (t) => {
  const a = makeCanister(1);
  const run = drive([a], 7, (r) => (r === 1 ? [{ canister: a.id, message: add(7000n, 9) }] : []), () => false);
  const committed = run.outputs.flatMap((o, i) => o.executed.map((e) => ({ e, round: i + 1 })));
  t.is(committed.length, 1);
  t.is(committed[0]!.round, 5); // 5000 / 1000 = 5 slices
  t.is(committed[0]!.e.outcome.kind, "trapped");
  t.is(committed[0]!.e.instructionsUsed, 5000n);
  t.deepEqual(run.queried, [0n, 0n, 0n, 0n, 0n, 0n, 0n]);
  t.is(run.outputs[4]!.ingressResponses[0]?.response.kind, "reject");
  t.is(counterOf(find(run.outputs[6]!.state, a.id)), 0n);
});

test("without DTS the per-message limit is the non-DTS one (1000 here, 5 B on the IC): 1500 traps at once", (t) => {
  const a = makeCanister(1);
  const run = drive([a], 2, (r) => (r === 1 ? [{ canister: a.id, message: add(1500n) }] : []), () => false, new ModelExecutor(), { ...config, dtsEnabled: false });
  t.is(run.outputs[0]!.executed[0]?.outcome.kind, "trapped");
  t.is(run.outputs[0]!.executed[0]?.instructionsUsed, 1000n);
});

test("more paused executions than maxPausedExecutions: the lowest-priority one is aborted at round end", (t) => {
  const a = makeCanister(1);
  const b = makeCanister(2);
  const cfg: RoundConfig = { ...config, scheduler: { ...config.scheduler, maxPausedExecutions: 1 } };
  const run = drive([a, b], 1, () => [{ canister: a.id, message: add(3000n) }, { canister: b.id, message: add(3000n) }], () => false, new ModelExecutor(), cfg);
  // equal priorities ⇒ canister id order: b (larger id) is the lower priority
  t.deepEqual(run.outputs[0]!.aborted, [b.id]);
  t.deepEqual(run.outputs[0]!.state.paused.map((p) => p.canister), [a.id]);
});

test("a paused long execution gets a prioritized core ahead of a canister with higher priority", (t) => {
  const a = makeCanister(1);
  const b = makeCanister(2);
  const c = makeCanister(3);
  // a starts a long message in round 1; b and c keep one core busy each from round 2 on
  const run = drive(
    [a, b, c],
    4,
    (r) => (r === 1 ? [{ canister: a.id, message: add(2500n, 2) }] : r === 2 ? [b, c].flatMap((x) => Array.from({ length: 20 }, () => ({ canister: x.id, message: add(900n) }))) : []),
    () => false,
  );
  t.deepEqual(run.queried, [0n, 0n, 2n, 2n]); // the long one was never starved: committed in round 3
});

test("property: with random costs and checkpoints, every message commits once, in order, after ceil(min(cost, limit)/slice) consecutive rounds not crossing a checkpoint", (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 7000 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 6, max: 12 }), { minLength: 1, maxLength: 12 }),
      (costs, gaps) => {
        // checkpoint rounds with gaps ≥ 6 > the 5 slices of the longest message (else it would be
        // aborted forever — as on the IC, where 500 ≫ 20)
        const checkpoints = new Set<number>();
        let at = 0;
        for (const g of gaps) checkpoints.add((at += g));
        const a = makeCanister(1);
        const by = (k: number): number => (k % 5) + 1;
        const messages = costs.map((c, k) => ({ canister: a.id, message: add(BigInt(c), by(k)) }));
        const run = drive([a], 150, (r) => (r === 1 ? messages : []), (r) => checkpoints.has(r));
        const commits = run.outputs.flatMap((o, i) => o.executed.map((e) => ({ e, round: i + 1 })));
        if (commits.length !== costs.length) return false;
        const addedInRound = new Map<number, bigint>();
        for (let k = 0; k < commits.length; k++) {
          const { e, round } = commits[k]!;
          if (e.message !== messages[k]!.message) return false; // FIFO, each exactly once
          const charged = BigInt(Math.min(costs[k]!, 5000));
          if (e.instructionsUsed !== charged || e.slices !== slicesNeeded(charged, 1000n)) return false;
          if (e.slices > 1 && round - e.startedRound + 1 !== e.slices) return false; // one slice per round
          for (const c of checkpoints) if (c >= e.startedRound && c < round) return false; // never across a checkpoint
          if (e.outcome.kind === "completed") addedInRound.set(round, (addedInRound.get(round) ?? 0n) + BigInt(by(k)));
          else if (costs[k]! <= 5000) return false; // only over-limit messages trap
        }
        // a query after round r sees exactly the messages committed in rounds ≤ r
        let visible = 0n;
        for (let r = 1; r <= run.queried.length; r++) {
          visible += addedInRound.get(r) ?? 0n;
          if (run.queried[r - 1] !== visible) return false;
        }
        return true;
      },
    ),
    { numRuns: 60, seed: 17 },
  );
  t.pass();
});
