// The round scheduler: which canisters run on which of the subnet's cores in one execution round,
// and how the priorities they accumulate are charged afterwards. Pure functions over plain data.
//
// Sources: the paper's credit-based scheduler (USENIX ATC'23, Appendix A) and the implementation
// digest in research/ic-protocol.md §4.1 (configuration), §4.3 (algorithm), §4.5 (DTS).
//
// Units. Priorities are bigint "percent × multiplier" with multiplier = cores × #canisters, so all
// shares below divide exactly (no rounding, no floats):
//   - every round each canister gains  alloc·mult + free,  free = (D − Σalloc·mult) / n,
//     where D = 100·mult·(#canisters charged this round) is what the round charged in total;
//     D − Σalloc·mult = mult·(100k − Σalloc) = cores·n·(…), so the division by n is exact;
//   - a canister that had a full round (ran out of work, was first on its core, or finished a full
//     slice of a long execution) is charged 100·mult — as "priority credit" first, subtracted from
//     its accumulated priority once it has no paused execution left.
// Invariant (checked): Σ over canisters of (accumulatedPriority − priorityCredit) = 0.
// Ordering: prioritized long executions first, then canisters with a long (paused/aborted)
// execution, then higher accumulated priority, then smaller canister id (principal byte order,
// like the IC's BTreeMap). Everything is a total order, so a plan is a function of its inputs.
// Modelling choices (where the sources leave room):
//   - a canister without work at the end of the round counts as "ran out of work" and is charged,
//     so idle canisters do not hoard priority while idle (the round driver decides this);
//   - the periodic reset sets AP = alloc·mult − cores·Σalloc, the IC's alloc·mult centred so that
//     the invariant holds exactly; new canisters start at 0, removed ones leave their balance to
//     the rest (reconcileSchedulingStates);
//   - the free share is distributed exactly (it may be negative when fewer than Σalloc/100
//     canisters were charged), instead of saturating at 0, which would break the invariant.
import { assert } from "../assert.ts";
import { paranoid } from "../paranoia.ts";
import { compareCanisterIds } from "../state/canister-order.ts";
import type { CanisterId } from "./interfaces.ts";

export interface SchedulerConfig {
  /** Execution threads. App subnet: 4. */
  readonly cores: number;
  /** Instructions of one round (per core, see coreRoundBudget). App subnet: 7 B. */
  readonly maxInstructionsPerRound: bigint;
  /** One DTS slice. 2 B. */
  readonly maxInstructionsPerSlice: bigint;
  /** Limit of one update message with DTS. 40 B. */
  readonly maxInstructionsPerMessage: bigint;
  /** Limit of one message that is not sliced. 5 B. */
  readonly maxInstructionsPerMessageWithoutDts: bigint;
  /** Charged per executed message / per canister that ran in an iteration. 2 M / 8 M. */
  readonly instructionOverheadPerExecution: bigint;
  readonly instructionOverheadPerCanister: bigint;
  /** Paused executions beyond this many (lowest priority first) are aborted at round end. 4. */
  readonly maxPausedExecutions: number;
  /** Accumulated priorities are reset every this many rounds. 86,400. */
  readonly accumulatedPriorityResetInterval: number;
}

/** research/ic-protocol.md §4.1, application subnet column. */
export const APP_SUBNET_SCHEDULER_CONFIG: SchedulerConfig = {
  cores: 4,
  maxInstructionsPerRound: 7_000_000_000n,
  maxInstructionsPerSlice: 2_000_000_000n,
  maxInstructionsPerMessage: 40_000_000_000n,
  maxInstructionsPerMessageWithoutDts: 5_000_000_000n,
  instructionOverheadPerExecution: 2_000_000n,
  instructionOverheadPerCanister: 8_000_000n,
  maxPausedExecutions: 4,
  accumulatedPriorityResetInterval: 86_400,
};

/**
 * Budget of one core in one round (§4.2): X = R − S + 1 with S = max(slice, without-DTS limit), so
 * that a message started while the budget is still positive cannot overrun the round.
 */
export function coreRoundBudget(c: SchedulerConfig): bigint {
  const s = c.maxInstructionsPerSlice > c.maxInstructionsPerMessageWithoutDts ? c.maxInstructionsPerSlice : c.maxInstructionsPerMessageWithoutDts;
  const x = c.maxInstructionsPerRound - s + 1n;
  return x > c.maxInstructionsPerSlice ? x : c.maxInstructionsPerSlice;
}

/** Compute allocation the subnet hands out: half of (cores − 1) × 100 % (§4.3). */
export function allocatableComputePercent(c: SchedulerConfig): number {
  return Math.floor(((c.cores - 1) * 100) / 2);
}

export type LongExecutionMode = "opportunistic" | "prioritized";

/** What the scheduler remembers about a canister between rounds (replicated state). */
export interface CanisterSchedulingState {
  readonly id: CanisterId;
  /** 0..100. */
  readonly computeAllocationPercent: number;
  readonly accumulatedPriority: bigint;
  readonly priorityCredit: bigint;
  readonly longExecutionMode: LongExecutionMode;
}

/** What a canister has to do this round (derived from its queues by the round driver). */
export interface CanisterWork {
  readonly id: CanisterId;
  /** Messages or tasks waiting (a paused/aborted execution counts as work). */
  readonly hasWork: boolean;
  /** A paused or aborted long (DTS) execution. */
  readonly hasLongExecution: boolean;
  /** Skipped this round (e.g. heap delta debit over the rate limit, §4.6). */
  readonly rateLimited?: boolean;
}

export interface RoundSchedule {
  readonly round: number;
  readonly multiplier: bigint;
  /** States after the round-start reset (if any) and the long-execution mode update; by id. */
  readonly states: readonly CanisterSchedulingState[];
  /** Every canister with work, in priority order. */
  readonly order: readonly CanisterId[];
  readonly longExecutionCores: number;
  /** Long executions that got a core of their own this round. */
  readonly prioritized: readonly CanisterId[];
  /** Per core, the canisters in the order the core runs them. */
  readonly cores: readonly (readonly CanisterId[])[];
}

// ---------------------------------------------------------------------------------------------

/** Principal byte order, the IC's canister id order (re-exported from the state layer). */
export { compareCanisterIds };

export const multiplierOf = (config: SchedulerConfig, canisterCount: number): bigint => BigInt(config.cores) * BigInt(canisterCount);

function sumAllocation(states: readonly CanisterSchedulingState[]): bigint {
  // Percentages ≤ 100 summed as numbers stay exact far beyond any subnet's canister count.
  let sum = 0;
  for (const c of states) sum += c.computeAllocationPercent;
  return BigInt(sum);
}

/** The state of `id` in `states` (sorted by id), by binary search; undefined if absent. */
function stateOf(states: readonly CanisterSchedulingState[], id: CanisterId): CanisterSchedulingState | undefined {
  let lo = 0;
  let hi = states.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = states[mid]!;
    const c = compareCanisterIds(s.id, id);
    if (c === 0) return s;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Σ(accumulatedPriority − priorityCredit); 0 in every reachable state. */
export function priorityImbalance(states: readonly CanisterSchedulingState[]): bigint {
  return states.reduce((s, c) => s + c.accumulatedPriority - c.priorityCredit, 0n);
}

/**
 * Scheduling states for a set of canisters: keeps known ones, adds new ones at priority 0,
 * and spreads the (priority − credit) of removed ones over the rest (remainder to the smallest
 * ids), so the invariant survives canister creation and deletion.
 */
export function reconcileSchedulingStates(
  previous: readonly CanisterSchedulingState[],
  canisters: readonly { readonly id: CanisterId; readonly computeAllocationPercent: number }[],
): CanisterSchedulingState[] {
  const byId = new Map(previous.map((s) => [s.id, s]));
  const keep = new Set(canisters.map((c) => c.id));
  let orphaned = 0n;
  for (const s of previous) if (!keep.has(s.id)) orphaned += s.accumulatedPriority - s.priorityCredit;
  const out = [...canisters]
    .sort((a, b) => compareCanisterIds(a.id, b.id))
    .map((c): CanisterSchedulingState => {
      const s = byId.get(c.id);
      return s === undefined
        ? { id: c.id, computeAllocationPercent: c.computeAllocationPercent, accumulatedPriority: 0n, priorityCredit: 0n, longExecutionMode: "opportunistic" }
        : { ...s, computeAllocationPercent: c.computeAllocationPercent };
    });
  if (orphaned !== 0n && out.length > 0) {
    const n = BigInt(out.length);
    const q = orphaned / n; // truncates toward zero
    let r = orphaned - q * n;
    const unit = r < 0n ? -1n : 1n;
    for (let i = 0; i < out.length; i++) {
      const extra = r !== 0n ? unit : 0n;
      r -= extra;
      const s = out[i]!;
      out[i] = { ...s, accumulatedPriority: s.accumulatedPriority + q + extra };
    }
  }
  return out;
}

/** Round-start state at a reset round: AP = alloc·mult − cores·Σalloc (centred, sums to 0). */
function resetPriorities(config: SchedulerConfig, states: readonly CanisterSchedulingState[]): CanisterSchedulingState[] {
  const mult = multiplierOf(config, states.length);
  const centre = BigInt(config.cores) * sumAllocation(states);
  return states.map((s) => ({ ...s, accumulatedPriority: BigInt(s.computeAllocationPercent) * mult - centre, priorityCredit: 0n }));
}

/**
 * Plans one round. `states` holds every canister of the subnet (sorted by id); `work` says which
 * have something to do. Long executions get dedicated cores in proportion to their fair share
 * (at least one core if any exists, at most cores − 1 while new executions wait).
 */
export function planRound(
  config: SchedulerConfig,
  round: number,
  statesIn: readonly CanisterSchedulingState[],
  work: readonly CanisterWork[],
): RoundSchedule {
  assert(config.cores >= 1, "at least one core");
  // An O(n) walk over every canister each round: checked in paranoid runs (npm test, the fuzz
  // gate); reconcileSchedulingStates builds the states sorted.
  if (paranoid) for (let i = 1; i < statesIn.length; i++) assert(compareCanisterIds(statesIn[i - 1]!.id, statesIn[i]!.id) < 0, "scheduling states must be sorted by id");
  const n = statesIn.length;
  const mult = multiplierOf(config, n);
  const totalAlloc = sumAllocation(statesIn);
  assert(totalAlloc <= BigInt(100 * config.cores), `total compute allocation ${totalAlloc}% exceeds ${100 * config.cores}%`);
  const states = round > 0 && round % config.accumulatedPriorityResetInterval === 0 ? resetPriorities(config, statesIn) : statesIn;

  // The canisters with something to do, found from the work list (a small part of a large subnet).
  const active: CanisterSchedulingState[] = [];
  const seen = new Set<CanisterId>();
  for (const w of work) {
    if (!(w.hasWork || w.hasLongExecution) || w.rateLimited === true || seen.has(w.id)) continue;
    seen.add(w.id);
    const s = stateOf(states, w.id);
    if (s !== undefined) active.push(s);
  }
  const longIds = new Set(work.filter((w) => w.hasLongExecution).map((w) => w.id));
  const ordered = [...active].sort((a, b) => {
    const pa = a.longExecutionMode === "prioritized" && longIds.has(a.id) ? 1 : 0;
    const pb = b.longExecutionMode === "prioritized" && longIds.has(b.id) ? 1 : 0;
    if (pa !== pb) return pb - pa;
    const la = longIds.has(a.id) ? 1 : 0;
    const lb = longIds.has(b.id) ? 1 : 0;
    if (la !== lb) return lb - la;
    if (a.accumulatedPriority !== b.accumulatedPriority) return a.accumulatedPriority > b.accumulatedPriority ? -1 : 1;
    return compareCanisterIds(a.id, b.id);
  });
  const long = ordered.filter((s) => longIds.has(s.id));
  const fresh = ordered.filter((s) => !longIds.has(s.id));

  // Dedicated cores for long executions: ceil(Σ_long fair share / 100 %), fair share = alloc + free
  // share of the whole capacity (in multiplier units: alloc·mult + cores·(100·cores − Σalloc)).
  let longCores = 0;
  if (long.length > 0) {
    const freePerCanister = BigInt(config.cores) * (BigInt(100 * config.cores) - totalAlloc);
    const share = long.reduce((s, c) => s + BigInt(c.computeAllocationPercent) * mult + freePerCanister, 0n);
    const unit = 100n * mult;
    longCores = Number((share + unit - 1n) / unit);
    const cap = fresh.length > 0 && config.cores > 1 ? config.cores - 1 : config.cores;
    longCores = Math.max(1, Math.min(longCores, cap, long.length));
  }
  const prioritized = long.slice(0, longCores);
  const opportunistic = long.slice(longCores);
  const prioritizedIds = new Set(prioritized.map((s) => s.id));

  const cores: CanisterId[][] = Array.from({ length: config.cores }, () => []);
  prioritized.forEach((s, i) => cores[i]!.push(s.id));
  // New executions round-robin over the cores not dedicated to long executions (over all cores
  // when there is only one core, behind its long execution).
  const freshFirst = longCores < config.cores ? longCores : 0;
  const freshCores = config.cores - freshFirst;
  fresh.forEach((s, i) => cores[freshFirst + (i % freshCores)]!.push(s.id));
  opportunistic.forEach((s, i) => cores[i % config.cores]!.push(s.id));

  const withModes = states.map((s): CanisterSchedulingState => {
    const mode: LongExecutionMode = prioritizedIds.has(s.id) ? "prioritized" : "opportunistic";
    return mode === s.longExecutionMode ? s : { ...s, longExecutionMode: mode };
  });
  return {
    round,
    multiplier: mult,
    states: withModes,
    order: ordered.map((s) => s.id),
    longExecutionCores: longCores,
    prioritized: prioritized.map((s) => s.id),
    cores,
  };
}

export interface RoundOutcome {
  /** Canisters that had a full round: ran out of work, were first on their core, or completed a full long-execution slice. */
  readonly fullyExecuted: ReadonlySet<CanisterId>;
  /** Canisters that still have a paused (or aborted, not yet restarted) execution after the round. */
  readonly longExecutionAfter: ReadonlySet<CanisterId>;
}

/** End-of-round charging (§4.3 "End of round"). Keeps Σ(AP − credit) = 0. */
export function finishRound(config: SchedulerConfig, schedule: RoundSchedule, outcome: RoundOutcome): CanisterSchedulingState[] {
  const states = schedule.states;
  const n = BigInt(states.length);
  if (n === 0n) return [];
  assert(schedule.multiplier === multiplierOf(config, states.length), "schedule was planned with another configuration");
  const mult = schedule.multiplier;
  const charge = 100n * mult;
  let charged = 0;
  for (const s of states) if (outcome.fullyExecuted.has(s.id)) charged++;
  const distributed = charge * BigInt(charged) - sumAllocation(states) * mult;
  assert(distributed % n === 0n, "free share must divide exactly (multiplier = cores × canisters)");
  const free = distributed / n;
  // One pass: the new states, and Σ(AP − credit) before and after for the invariant.
  let before = 0n;
  let after = 0n;
  const out = new Array<CanisterSchedulingState>(states.length);
  for (let i = 0; i < states.length; i++) {
    const s = states[i]!;
    const credit = s.priorityCredit + (outcome.fullyExecuted.has(s.id) ? charge : 0n);
    const ap = s.accumulatedPriority + (s.computeAllocationPercent === 0 ? free : BigInt(s.computeAllocationPercent) * mult + free);
    const next: CanisterSchedulingState = outcome.longExecutionAfter.has(s.id)
      ? { id: s.id, computeAllocationPercent: s.computeAllocationPercent, accumulatedPriority: ap, priorityCredit: credit, longExecutionMode: s.longExecutionMode }
      : { id: s.id, computeAllocationPercent: s.computeAllocationPercent, accumulatedPriority: ap - credit, priorityCredit: 0n, longExecutionMode: "opportunistic" };
    before += s.accumulatedPriority - s.priorityCredit;
    after += next.accumulatedPriority - next.priorityCredit;
    out[i] = next;
  }
  assert(after === before, "scheduler invariant Σ(AP − credit) broken");
  return out;
}
