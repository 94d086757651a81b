// The offset-based scheduler (scheduler.ts over scheduling-states.ts: priorities relative to a
// subnet-wide offset, only the canisters a round treats differently rewritten) against a
// straightforward reference: the same rules over plain arrays, every canister recomputed every
// round (the scheduler as it was before the offset). Random sequences of rounds (work, long
// executions, rate limits, any report of who was not fully executed and who keeps a long
// execution), periodic resets, allocation changes, canisters added and removed (reconcile) and
// dropped (without) must give exactly the same plans (order, cores, prioritized), the same states
// after planning and after charging, and leave every earlier version unchanged.
import test from "ava";
import fc from "fast-check";
import { canisterIdFromU64, type CanisterId } from "../../harness/execution/interfaces.ts";
import {
  APP_SUBNET_SCHEDULER_CONFIG,
  compareCanisterIds,
  finishRound,
  multiplierOf,
  planRound,
  reconcileSchedulingStates,
  SchedulingStates,
  type CanisterSchedulingState,
  type CanisterWork,
  type LongExecutionMode,
  type SchedulerConfig,
} from "../../harness/execution/scheduler.ts";

const POOL = 10;
const ids = Array.from({ length: POOL }, (_, i) => canisterIdFromU64(BigInt(i * 7919)));

// ---------------------------------------------------------------------------------------------
// Reference: every rule applied to every canister, in plain arrays sorted by id.

type Ref = readonly CanisterSchedulingState[];

interface RefPlan {
  readonly states: Ref;
  readonly order: CanisterId[];
  readonly cores: CanisterId[][];
  readonly prioritized: CanisterId[];
  readonly longExecutionCores: number;
}

const sumAlloc = (states: Ref): bigint => BigInt(states.reduce((s, c) => s + c.computeAllocationPercent, 0));

function refReconcile(previous: Ref, canisters: readonly { id: CanisterId; computeAllocationPercent: number }[]): Ref {
  const keep = new Set(canisters.map((c) => c.id));
  let orphaned = 0n;
  for (const s of previous) if (!keep.has(s.id)) orphaned += s.accumulatedPriority - s.priorityCredit;
  const out = [...canisters]
    .sort((a, b) => compareCanisterIds(a.id, b.id))
    .map((c): CanisterSchedulingState => {
      const s = previous.find((p) => p.id === c.id);
      return s === undefined ? { id: c.id, computeAllocationPercent: c.computeAllocationPercent, accumulatedPriority: 0n, priorityCredit: 0n, longExecutionMode: "opportunistic" } : { ...s, computeAllocationPercent: c.computeAllocationPercent };
    });
  const n = BigInt(out.length);
  if (orphaned === 0n || n === 0n) return out;
  const q = orphaned / n;
  let r = orphaned - q * n;
  const unit = r < 0n ? -1n : 1n;
  return out.map((s) => {
    const extra = r !== 0n ? unit : 0n;
    r -= extra;
    return { ...s, accumulatedPriority: s.accumulatedPriority + q + extra };
  });
}

function refPlan(config: SchedulerConfig, round: number, statesIn: Ref, work: readonly CanisterWork[]): RefPlan {
  const mult = multiplierOf(config, statesIn.length);
  const total = sumAlloc(statesIn);
  const reset = round > 0 && round % config.accumulatedPriorityResetInterval === 0;
  const states = reset ? statesIn.map((s) => ({ ...s, accumulatedPriority: BigInt(s.computeAllocationPercent) * mult - BigInt(config.cores) * total, priorityCredit: 0n })) : statesIn;
  // (workOf lists every canister once)
  const candidates = states.filter((s) => work.some((w) => w.id === s.id && (w.hasWork || w.hasLongExecution) && w.rateLimited !== true));
  const isLong = (id: CanisterId): boolean => work.some((w) => w.id === id && w.hasLongExecution);
  const key = (s: CanisterSchedulingState): [number, number] => [s.longExecutionMode === "prioritized" && isLong(s.id) ? 1 : 0, isLong(s.id) ? 1 : 0];
  const ordered = [...candidates].sort((a, b) => {
    const [pa, la] = key(a);
    const [pb, lb] = key(b);
    if (pa !== pb) return pb - pa;
    if (la !== lb) return lb - la;
    if (a.accumulatedPriority !== b.accumulatedPriority) return a.accumulatedPriority > b.accumulatedPriority ? -1 : 1;
    return compareCanisterIds(a.id, b.id);
  });
  const long = ordered.filter((s) => isLong(s.id));
  const fresh = ordered.filter((s) => !isLong(s.id));
  let longCores = 0;
  if (long.length > 0) {
    const freePerCanister = BigInt(config.cores) * (BigInt(100 * config.cores) - total);
    const share = long.reduce((s, c) => s + BigInt(c.computeAllocationPercent) * mult + freePerCanister, 0n);
    const unit = 100n * mult;
    const cap = fresh.length > 0 && config.cores > 1 ? config.cores - 1 : config.cores;
    longCores = Math.max(1, Math.min(Number((share + unit - 1n) / unit), cap, long.length));
  }
  const prioritized = long.slice(0, longCores).map((s) => s.id);
  const cores: CanisterId[][] = Array.from({ length: config.cores }, () => []);
  prioritized.forEach((id, i) => cores[i]!.push(id));
  const first = longCores < config.cores ? longCores : 0;
  fresh.forEach((s, i) => cores[first + (i % (config.cores - first))]!.push(s.id));
  long.slice(longCores).forEach((s, i) => cores[i % config.cores]!.push(s.id));
  const withModes = states.map((s): CanisterSchedulingState => ({ ...s, longExecutionMode: prioritized.includes(s.id) ? "prioritized" : "opportunistic" }));
  return { states: withModes, order: ordered.map((s) => s.id), cores, prioritized, longExecutionCores: longCores };
}

function refFinish(config: SchedulerConfig, states: Ref, notFully: ReadonlySet<CanisterId>, longAfter: ReadonlySet<CanisterId>): Ref {
  if (states.length === 0) return states;
  const n = BigInt(states.length);
  const mult = multiplierOf(config, states.length);
  const charge = 100n * mult;
  const charged = BigInt(states.filter((s) => !notFully.has(s.id)).length);
  const free = (charge * charged - sumAlloc(states) * mult) / n;
  return states.map((s) => {
    const credit = s.priorityCredit + (notFully.has(s.id) ? 0n : charge);
    const ap = s.accumulatedPriority + BigInt(s.computeAllocationPercent) * mult + free;
    return longAfter.has(s.id)
      ? { ...s, accumulatedPriority: ap, priorityCredit: credit }
      : { ...s, accumulatedPriority: ap - credit, priorityCredit: 0n, longExecutionMode: "opportunistic" as LongExecutionMode };
  });
}

// ---------------------------------------------------------------------------------------------
// Random operation sequences.

type Op =
  | { kind: "round"; work: number[]; notFully: boolean[]; longAfter: boolean[] }
  | { kind: "reconcile"; present: boolean[]; allocs: number[] }
  | { kind: "drop"; gone: boolean[] };

const bits = fc.array(fc.boolean(), { minLength: POOL, maxLength: POOL });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  // work per canister: 0 none, 1 work, 2 long execution, 3 work but rate limited, 4 long + rate limited
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("round" as const), work: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: POOL, maxLength: POOL }), notFully: bits, longAfter: bits }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reconcile" as const), present: bits, allocs: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 60 })), { minLength: POOL, maxLength: POOL }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), gone: bits }) },
);

const show = (x: unknown): string => JSON.stringify(x, (_, v) => (typeof v === "bigint" ? `${v}n` : v));

function workOf(states: Ref, codes: readonly number[]): CanisterWork[] {
  // Listed in reverse id order, with idle entries too: the plan must not depend on either.
  return states
    .map((s) => ({ s, code: codes[ids.indexOf(s.id)]! }))
    .reverse()
    .map(({ s, code }) => ({ id: s.id, hasWork: code === 1 || code === 3, hasLongExecution: code === 2 || code === 4, ...(code >= 3 ? { rateLimited: true } : {}) }));
}

/** Runs the ops on both; returns the first difference, or undefined. */
function firstDifference(cores: number, resetInterval: number, initialAllocs: readonly number[], ops: readonly Op[]): string | undefined {
  const config: SchedulerConfig = { ...APP_SUBNET_SCHEDULER_CONFIG, cores, accumulatedPriorityResetInterval: resetInterval };
  const capped = (allocs: readonly number[], present: (i: number) => boolean): { id: CanisterId; computeAllocationPercent: number }[] => {
    let left = 100 * cores;
    const out: { id: CanisterId; computeAllocationPercent: number }[] = [];
    allocs.forEach((a, i) => {
      if (!present(i)) return;
      const x = Math.min(a, left);
      left -= x;
      out.push({ id: ids[i]!, computeAllocationPercent: x });
    });
    return out;
  };
  const initial = capped(initialAllocs, () => true);
  let ours = reconcileSchedulingStates(SchedulingStates.EMPTY, initial);
  let ref: Ref = refReconcile([], initial);
  let round = 0;
  for (const [step, op] of ops.entries()) {
    if (op.kind === "reconcile") {
      const canisters = capped(op.allocs, (i) => op.present[i]!);
      ours = reconcileSchedulingStates(ours, canisters);
      ref = refReconcile(ref, canisters);
    } else if (op.kind === "drop") {
      const gone = new Set(ids.filter((_, i) => op.gone[i]));
      ours = ours.without(gone);
      ref = ref.filter((s) => !gone.has(s.id));
    } else {
      round++;
      const work = workOf(ref, op.work);
      const plan = planRound(config, round, ours, work);
      const refP = refPlan(config, round, ref, work);
      const planned = show({ order: plan.order, cores: plan.cores, prioritized: plan.prioritized, longExecutionCores: plan.longExecutionCores, states: plan.states.list() });
      const expected = show({ order: refP.order, cores: refP.cores, prioritized: refP.prioritized, longExecutionCores: refP.longExecutionCores, states: refP.states });
      if (planned !== expected) return `step ${step} (round ${round}) plan: ${planned} ≠ ${expected}`;
      const notFully = new Set(ref.filter((s) => op.notFully[ids.indexOf(s.id)]).map((s) => s.id));
      const longAfter = new Set(ref.filter((s) => op.longAfter[ids.indexOf(s.id)]).map((s) => s.id));
      const previousPlan = show(plan.states.list());
      ours = finishRound(config, plan, { notFullyExecuted: notFully, longExecutionAfter: longAfter });
      ref = refFinish(config, refP.states, notFully, longAfter);
      if (show(plan.states.list()) !== previousPlan) return `step ${step}: finishRound changed the planned version`;
    }
    if (show(ours.list()) !== show(ref)) return `step ${step} (${op.kind}): ${show(ours.list())} ≠ ${show(ref)}`;
  }
  return undefined;
}

const scenario = fc.record({
  cores: fc.integer({ min: 1, max: 4 }),
  resetInterval: fc.integer({ min: 2, max: 9 }),
  allocs: fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 80 })), { minLength: POOL, maxLength: POOL }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 40 }),
});

test("property: the offset-based scheduler gives exactly the reference's plans, priorities, credits and modes over random rounds, resets, allocations, added/removed canisters and long executions", (t) => {
  let lastDifference: string | undefined;
  const details = fc.check(
    fc.property(scenario, (s) => {
      lastDifference = undefined;
      lastDifference = firstDifference(s.cores, s.resetInterval, s.allocs, s.ops);
      return lastDifference === undefined;
    }),
    { numRuns: 300, seed: 1414 },
  );
  // After shrinking, the last run is the smallest counterexample: name its first difference (or
  // the assertion it hit).
  t.false(details.failed, `${show(details.counterexample)}\n${lastDifference ?? String(details.errorInstance)}`);
});

test("earlier versions stay valid: finishing the same plan twice gives the same states, and the input is unchanged", (t) => {
  const config = { ...APP_SUBNET_SCHEDULER_CONFIG, cores: 2 };
  const start = reconcileSchedulingStates(SchedulingStates.EMPTY, ids.slice(0, 6).map((id, i) => ({ id, computeAllocationPercent: i === 2 ? 30 : 0 })));
  const work = ids.slice(0, 4).map((id, i) => ({ id, hasWork: true, hasLongExecution: i === 3 }));
  const plan = planRound(config, 1, start, work);
  const startList = show(start.list());
  const a = finishRound(config, plan, { notFullyExecuted: new Set([ids[1]!]), longExecutionAfter: new Set([ids[3]!]) });
  const b = finishRound(config, plan, { notFullyExecuted: new Set([ids[1]!]), longExecutionAfter: new Set([ids[3]!]) });
  t.is(show(a.list()), show(b.list()));
  t.is(show(start.list()), startList);
  // a second round from `a` does not disturb `a`
  const aList = show(a.list());
  finishRound(config, planRound(config, 2, a, work), { notFullyExecuted: new Set(), longExecutionAfter: new Set() });
  t.is(show(a.list()), aList);
});

test("a report naming a canister the subnet does not have is a programmer error", (t) => {
  const config = { ...APP_SUBNET_SCHEDULER_CONFIG, cores: 2 };
  const states = reconcileSchedulingStates(SchedulingStates.EMPTY, ids.slice(0, 3).map((id) => ({ id, computeAllocationPercent: 0 })));
  const plan = planRound(config, 1, states, []);
  t.throws(() => finishRound(config, plan, { notFullyExecuted: new Set([ids[7]!]), longExecutionAfter: new Set() }), { message: /not a canister of this subnet/ });
});
