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
import { SchedulingStates, type CanisterSchedulingState, type LongExecutionMode, type SchedulingChange } from "./scheduling-states.ts";

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

export { SchedulingStates, type CanisterSchedulingState, type LongExecutionMode, type SchedulingChange } from "./scheduling-states.ts";

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
  /** States after the round-start reset (if any) and the long-execution mode update. */
  readonly states: SchedulingStates;
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


/** Σ(accumulatedPriority − priorityCredit); 0 in every reachable state. O(n): checks and tests. */
export function priorityImbalance(states: SchedulingStates | readonly CanisterSchedulingState[]): bigint {
  const list = states instanceof SchedulingStates ? states.list() : states;
  return list.reduce((s, c) => s + c.accumulatedPriority - c.priorityCredit, 0n);
}

/**
 * Scheduling states for a set of canisters: keeps known ones, adds new ones at priority 0,
 * and spreads the (priority − credit) of removed ones over the rest (remainder to the smallest
 * ids), so the invariant survives canister creation and deletion. O(n): runs when canisters come
 * or go or allocations change, not every round.
 */
export function reconcileSchedulingStates(
  previous: SchedulingStates,
  canisters: readonly { readonly id: CanisterId; readonly computeAllocationPercent: number }[],
): SchedulingStates {
  if (previous.matches(canisters)) return previous;
  const previousList = previous.list();
  const byId = new Map(previousList.map((s) => [s.id, s]));
  const keep = new Set(canisters.map((c) => c.id));
  let orphaned = 0n;
  for (const s of previousList) if (!keep.has(s.id)) orphaned += s.accumulatedPriority - s.priorityCredit;
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
  return SchedulingStates.fromList(out);
}

const isResetRound = (config: SchedulerConfig, round: number): boolean => round > 0 && round % config.accumulatedPriorityResetInterval === 0;

/** A canister with something to do this round, as planning sees it. */
interface Candidate {
  readonly id: CanisterId;
  readonly index: number;
  readonly accumulatedPriority: bigint;
  readonly computeAllocationPercent: number;
  readonly longExecutionMode: LongExecutionMode;
}

/** The canisters of `work` that can run this round (with work, not rate limited, known), once each. */
function candidatesOf(states: SchedulingStates, work: readonly CanisterWork[]): Candidate[] {
  const active: Candidate[] = [];
  const seen = new Set<CanisterId>();
  for (const w of work) {
    if (!(w.hasWork || w.hasLongExecution) || w.rateLimited === true || seen.has(w.id)) continue;
    seen.add(w.id);
    const index = states.indexOf(w.id);
    if (index === undefined) continue;
    active.push({
      id: w.id,
      index,
      accumulatedPriority: states.accumulatedPriorityAt(index),
      computeAllocationPercent: states.allocationPercentAt(index),
      longExecutionMode: states.longExecutionModeAt(index),
    });
  }
  return active;
}

/**
 * Plans one round. `states` holds every canister of the subnet; `work` says which have something
 * to do (it may list only those). Long executions get dedicated cores in proportion to their fair
 * share (at least one core if any exists, at most cores − 1 while new executions wait).
 * Cost: O(|work| log |work|), plus O(canisters with an allocation) at a reset round.
 */
export function planRound(config: SchedulerConfig, round: number, statesIn: SchedulingStates, work: readonly CanisterWork[]): RoundSchedule {
  assert(config.cores >= 1, "at least one core");
  const n = statesIn.size;
  const mult = multiplierOf(config, n);
  const totalAlloc = statesIn.totalAllocationPercent;
  assert(totalAlloc <= BigInt(100 * config.cores), `total compute allocation ${totalAlloc}% exceeds ${100 * config.cores}%`);
  const states = isResetRound(config, round) ? statesIn.reset(mult, BigInt(config.cores) * totalAlloc) : statesIn;

  // The canisters with something to do, found from the work list (a small part of a large subnet).
  const active = candidatesOf(states, work);
  const longIds = new Set(work.filter((w) => w.hasLongExecution).map((w) => w.id));
  const ordered = [...active].sort((a, b) => {
    const pa = a.longExecutionMode === "prioritized" && longIds.has(a.id) ? 1 : 0;
    const pb = b.longExecutionMode === "prioritized" && longIds.has(b.id) ? 1 : 0;
    if (pa !== pb) return pb - pa;
    const la = longIds.has(a.id) ? 1 : 0;
    const lb = longIds.has(b.id) ? 1 : 0;
    if (la !== lb) return lb - la;
    if (a.accumulatedPriority !== b.accumulatedPriority) return a.accumulatedPriority > b.accumulatedPriority ? -1 : 1;
    return a.index - b.index; // index order is canister id order (compareCanisterIds), without decoding ids
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

  const cores: CanisterId[][] = Array.from({ length: config.cores }, () => []);
  prioritized.forEach((s, i) => cores[i]!.push(s.id));
  // New executions round-robin over the cores not dedicated to long executions (over all cores
  // when there is only one core, behind its long execution).
  const freshFirst = longCores < config.cores ? longCores : 0;
  const freshCores = config.cores - freshFirst;
  fresh.forEach((s, i) => cores[freshFirst + (i % freshCores)]!.push(s.id));
  opportunistic.forEach((s, i) => cores[i % config.cores]!.push(s.id));

  return {
    round,
    multiplier: mult,
    states: withPrioritizedModes(states, prioritized.map((s) => s.index)),
    order: ordered.map((s) => s.id),
    longExecutionCores: longCores,
    prioritized: prioritized.map((s) => s.id),
    cores,
  };
}

/**
 * Every canister's mode: "prioritized" exactly for the long executions prioritized this round.
 * Only those and the ones prioritized before can change, so only they are visited.
 */
function withPrioritizedModes(states: SchedulingStates, prioritized: readonly number[]): SchedulingStates {
  const visit = new Set(prioritized);
  for (const index of states.longExecutionIndices) if (states.longExecutionModeAt(index) === "prioritized") visit.add(index);
  const prioritizedNow = new Set(prioritized);
  const changes: SchedulingChange[] = [];
  for (const index of ascending(visit)) {
    const s = states.at(index);
    const mode: LongExecutionMode = prioritizedNow.has(index) ? "prioritized" : "opportunistic";
    if (mode !== s.longExecutionMode) changes.push({ index, accumulatedPriority: s.accumulatedPriority, priorityCredit: s.priorityCredit, longExecutionMode: mode });
  }
  return changes.length === 0 ? states : states.advanced(states.offset, changes);
}

const ascending = (indices: Iterable<number>): number[] => Array.from(indices).sort((a, b) => a - b);

export interface RoundOutcome {
  /**
   * Canisters that did NOT have a full round: they still had work and were neither first on a core
   * nor given a full long-execution slice (incl. skipped ones). Every other canister — idle ones,
   * ones that ran out of work, ones first on a core — had a full round and is charged. Listing
   * the exceptions keeps the report proportional to the busy canisters, not to the subnet.
   */
  readonly notFullyExecuted: ReadonlySet<CanisterId>;
  /** Canisters that still have a paused (or aborted, not yet restarted) execution after the round. */
  readonly longExecutionAfter: ReadonlySet<CanisterId>;
}

/** Indices of `ids` in `states`; each id must be a canister of the subnet. */
function indicesOf(states: SchedulingStates, ids: ReadonlySet<CanisterId>, what: string): number[] {
  const out: number[] = [];
  for (const id of ids) {
    const index = states.indexOf(id);
    assert(index !== undefined, `${what}: ${id} is not a canister of this subnet`);
    out.push(index);
  }
  return out;
}

/**
 * End-of-round charging (§4.3 "End of round"). Keeps Σ(AP − credit) unchanged.
 *
 * Every canister gains alloc·mult + free; a fully executed one is charged 100·mult (as credit while
 * its long execution goes on). An ordinary canister (no allocation, no credit, not prioritized,
 * charged, no long execution after) therefore changes by free − 100·mult: that goes to the
 * subnet-wide offset (scheduling-states.ts) and only the others are rewritten.
 * Cost: O(touched · log n), touched = not fully executed ∪ long executions ∪ allocated canisters.
 */
export function finishRound(config: SchedulerConfig, schedule: RoundSchedule, outcome: RoundOutcome): SchedulingStates {
  const states = schedule.states;
  const size = states.size;
  if (size === 0) return states;
  const n = BigInt(size);
  assert(schedule.multiplier === multiplierOf(config, size), "schedule was planned with another configuration");
  const mult = schedule.multiplier;
  const charge = 100n * mult;
  const uncharged = new Set(indicesOf(states, outcome.notFullyExecuted, "not fully executed"));
  const longAfter = new Set(indicesOf(states, outcome.longExecutionAfter, "long execution after the round"));
  const distributed = charge * BigInt(size - uncharged.size) - states.totalAllocationPercent * mult;
  assert(distributed % n === 0n, "free share must divide exactly (multiplier = cores × canisters)");
  const free = distributed / n;
  const ordinaryChange = free - charge;

  const touched = ascending(new Set([...uncharged, ...longAfter, ...states.allocatedIndices, ...states.longExecutionIndices]));
  const changes: SchedulingChange[] = [];
  // Σ(AP − credit) is conserved: the touched canisters' changes balance the ordinary ones'.
  let balance = ordinaryChange * BigInt(size - touched.length);
  for (const index of touched) {
    const before = states.at(index);
    const after = chargedState(before, index, mult, free, uncharged.has(index) ? 0n : charge, longAfter.has(index));
    balance += after.accumulatedPriority - after.priorityCredit - (before.accumulatedPriority - before.priorityCredit);
    changes.push(after);
  }
  assert(balance === 0n, "scheduler invariant Σ(AP − credit) broken");
  const next = states.advanced(states.offset + ordinaryChange, changes);
  // The same on materialised values (O(n)): catches a canister the offset moved by mistake.
  if (paranoid) assert(priorityImbalance(next) === priorityImbalance(states), "scheduler invariant Σ(AP − credit) broken (materialised)");
  return next;
}

/** A touched canister's values after the round (§4.3), from its values before. */
function chargedState(s: CanisterSchedulingState, index: number, mult: bigint, free: bigint, charged: bigint, longExecutionAfter: boolean): SchedulingChange {
  const credit = s.priorityCredit + charged;
  const accumulatedPriority = s.accumulatedPriority + BigInt(s.computeAllocationPercent) * mult + free;
  return longExecutionAfter
    ? { index, accumulatedPriority, priorityCredit: credit, longExecutionMode: s.longExecutionMode }
    : { index, accumulatedPriority: accumulatedPriority - credit, priorityCredit: 0n, longExecutionMode: "opportunistic" };
}
