// npm run bench:scheduler — the round scheduler (harness/execution/scheduler.ts: planRound, then
// finishRound) on a subnet of many canisters, of which a small fraction has work each round
// (canister per user: most users are idle). Side by side in one run: the same rounds planned by a
// naive scheduler that sorts every canister by priority each round, the textbook way. Issue 14
// item 2's goal is ≤ 5 ms per round at 100,000 canisters (the IC's own takes hundreds of ms).
// Then the whole round driver (harness/execution/round.ts executeRound) on the same sizes: every
// round an ingress message to `roundActivePercent` (default 0.5 %) of the canisters — below the
// subnet's capacity (the IC's per-execution and per-canister overheads let 4 cores run about 800
// canisters a round), so queues do not grow from round to round — a trivial executor (1,000
// instructions, reply), every 1,000th canister exports canister_heartbeat and every 500th has a
// global timer that comes due once in the run — what the driver does besides executing.
// Prints per size the median milliseconds per round; last line JSON.
//
//   BENCH_CANISTERS=10000,100000 BENCH_ACTIVE_PERCENT=1 BENCH_ROUND_ACTIVE_PERCENT=0.5 npm run bench:scheduler
import { canisterIdFromU64 } from "../harness/execution/interfaces.ts";
import {
  APP_SUBNET_SCHEDULER_CONFIG,
  compareCanisterIds,
  finishRound,
  planRound,
  reconcileSchedulingStates,
  SchedulingStates,
  type CanisterSchedulingState,
  type CanisterWork,
} from "../harness/execution/scheduler.ts";
import type { CanisterExecutor, CanisterId, CanisterMessage, CanisterState, ExecutionResult } from "../harness/execution/interfaces.ts";
import { APP_SUBNET_ROUND_CONFIG, executeRound, initialRoundState, type ExecutionRoundState, type InductedMessage } from "../harness/execution/round.ts";
import { makeCanister } from "../test/state/fixtures.ts";
import { Rng } from "../harness/sim/rng.ts";

const sizes = (process.env.BENCH_CANISTERS ?? "10000,100000").split(",").map(Number);
const activePercent = Number(process.env.BENCH_ACTIVE_PERCENT ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
/** Rounds run before the timed ones (JIT warm-up, the setup's garbage collected), for every row. */
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 5);
const roundActivePercent = Number(process.env.BENCH_ROUND_ACTIVE_PERCENT ?? 0.5);
const config = APP_SUBNET_SCHEDULER_CONFIG;

/** Median of the timed rounds (the warm-up rounds dropped). */
function median(all: number[]): number {
  const xs = all.slice(WARMUP_ROUNDS);
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The work of one round: `percent` of the canisters, drawn from the stream. */
function roundWork(ids: readonly CanisterId[], rng: Rng, percent = activePercent): CanisterWork[] {
  const active = Math.max(1, Math.round((ids.length * percent) / 100));
  const work: CanisterWork[] = [];
  for (let i = 0; i < active; i++) work.push({ id: ids[rng.nextU32() % ids.length]!, hasWork: true, hasLongExecution: false });
  return work;
}

/** The textbook baseline: every canister sorted by (priority desc, id) each round, charged the same way. */
function naiveRound(states: CanisterSchedulingState[], work: readonly CanisterWork[]): CanisterSchedulingState[] {
  const busy = new Set(work.map((w) => w.id));
  const order = [...states].sort((a, b) => (a.accumulatedPriority !== b.accumulatedPriority ? (a.accumulatedPriority > b.accumulatedPriority ? -1 : 1) : compareCanisterIds(a.id, b.id)));
  const first = new Set(order.filter((s) => busy.has(s.id)).slice(0, config.cores).map((s) => s.id));
  const n = BigInt(states.length);
  const mult = BigInt(config.cores) * n;
  const charge = 100n * mult;
  const charged = BigInt([...states].filter((s) => first.has(s.id) || !busy.has(s.id)).length);
  const free = (charge * charged) / n;
  return states.map((s) => ({ ...s, accumulatedPriority: s.accumulatedPriority + free - (first.has(s.id) || !busy.has(s.id) ? charge : 0n) }));
}

/** Executes every message in 1,000 instructions and replies: the round driver's own cost shows. */
class TrivialExecutor implements CanisterExecutor {
  executeMessage(canister: CanisterState, message: CanisterMessage): ExecutionResult {
    const origin = message.kind === "ingress" ? [{ origin: { kind: "ingress" as const, messageId: message.messageId, caller: message.caller }, response: { kind: "reply" as const, data: new Uint8Array(0) }, refundedCycles: 0n }] : [];
    const after = message.kind === "global-timer" ? { ...canister, globalTimerNs: 0n } : canister;
    return { canister: after, outcome: { kind: "completed" }, instructionsUsed: 1_000n, responses: origin, outgoingCalls: [], heapDeltaPages: 0, debugLog: [], readTime: false };
  }
  installCode(): never {
    throw new Error("not used");
  }
}

/** A canister without memory or allocation; every 1,000th exports a heartbeat, every 500th has a timer due at round 7. */
function benchCanister(i: number): CanisterState {
  const c = makeCanister(i, { wasmPages: 0 });
  const exports = [...c.execution!.exports, ...(i % 1000 === 0 ? ["canister_heartbeat"] : []), ...(i % 500 === 0 ? ["canister_global_timer"] : [])];
  return { ...c, computeAllocationPercent: 0, globalTimerNs: i % 500 === 0 ? 7n : 0n, execution: { ...c.execution!, exports } };
}

function benchRounds(n: number): number {
  const executor = new TrivialExecutor();
  let state: ExecutionRoundState = initialRoundState(Array.from({ length: n }, (_, i) => benchCanister(i)));
  const ids = state.canisters.map((c) => c.id);
  const rng = Rng.fromSeed(`bench-round-${n}`);
  const times: number[] = [];
  for (let round = 1; round <= WARMUP_ROUNDS + ROUNDS; round++) {
    const messages: InductedMessage[] = roundWork(ids, rng, roundActivePercent).map((w, k) => ({
      canister: w.id,
      message: { kind: "ingress", messageId: `m-${round}-${k}`, caller: "2vxsx-fae" as never, method: "inc", arg: new Uint8Array(8) },
    }));
    const t = performance.now();
    state = executeRound(executor, APP_SUBNET_ROUND_CONFIG, state, { round, timeNs: BigInt(round), messages, isCheckpointRound: false }).state;
    times.push(performance.now() - t);
  }
  return median(times);
}

const rows = [];
for (const n of sizes) {
  const ids = Array.from({ length: n }, (_, i) => canisterIdFromU64(BigInt(i)));
  let states = reconcileSchedulingStates(SchedulingStates.EMPTY, ids.map((id) => ({ id, computeAllocationPercent: 0 })));
  let naiveStates = states.list();
  const rng = Rng.fromSeed(`bench-scheduler-${n}`);
  const ours: number[] = [];
  const naive: number[] = [];
  // The same work lists for both; each scheduler runs all its rounds in one stretch, so that one's
  // garbage is not collected while the other is being timed.
  const works = Array.from({ length: WARMUP_ROUNDS + ROUNDS }, () => roundWork(ids, rng));
  for (let round = 1; round <= works.length; round++) {
    const work = works[round - 1]!;
    const t = performance.now();
    const schedule = planRound(config, round, states, work);
    // The round's report lists the canisters with work that did not get a full round: here every
    // busy canister except the first on each core (idle ones count as fully executed).
    const notFully = new Set<CanisterId>(work.map((w) => w.id));
    for (const core of schedule.cores) if (core[0] !== undefined) notFully.delete(core[0]);
    states = finishRound(config, schedule, { notFullyExecuted: notFully, longExecutionAfter: new Set() });
    ours.push(performance.now() - t);
  }
  for (const work of works) {
    const t = performance.now();
    naiveStates = naiveRound(naiveStates, work);
    naive.push(performance.now() - t);
  }
  const executeRoundMs = Number(benchRounds(n).toFixed(1));
  const row = { canisters: n, activePercent, msPerRound: Number(median(ours).toFixed(1)), naiveSortMsPerRound: Number(median(naive).toFixed(1)), goalMs: 5, executeRoundMs };
  process.stderr.write(`${n} canisters, ${activePercent} % with work: planRound + finishRound ${row.msPerRound} ms/round (median of ${ROUNDS} after ${WARMUP_ROUNDS} warm-up rounds); naive full sort ${row.naiveSortMsPerRound} ms/round; whole executeRound (${roundActivePercent} % with a message) ${executeRoundMs} ms/round\n`);
  rows.push(row);
}
console.log(JSON.stringify({ benchmark: "scheduler", rows }));
