// The scheduler's replicated per-canister state (scheduler.ts), kept so that a round costs in
// proportion to the canisters it changes, not to the subnet's size.
//
// Why: every round every canister's accumulated priority (AP) changes — all gain the free share,
// and an idle canister is charged a full round ("ran out of work"). Stored as plain values, that is
// O(n) bigint work and allocation per round (100,000 canisters: ~100 ms). But all "ordinary"
// canisters (no compute allocation, no priority credit, not prioritized, charged this round) change
// by the same amount, so APs are stored relative to a subnet-wide offset:
//     effective AP of canister i = relative[i] + offset.
// A round adds that common change to `offset` and rewrites `relative` only for the canisters it
// treated differently. Credits and prioritized modes are rare (long executions), so they live in a
// short list ordered by index; every other canister has credit 0 and mode "opportunistic".
//
// What is observed — the state encoding and hash (round.ts encodeRoundMetadata), reconcile, tests —
// sees the effective values through `list()` / iteration / `get`, exactly as before the offset: the
// representation is not part of the replicated state, only the values are.
//
// Immutable: every operation returns a new version and leaves this one valid (round states are
// shared between replicas and re-executed by audits). The per-canister data that changes only when
// canisters come or go (ids, allocations) is one shared Roster.
import { assert } from "../assert.ts";
import { compareCanisterIds } from "../state/canister-order.ts";
import type { CanisterId } from "./interfaces.ts";
import { PersistentVector } from "./persistent-vector.ts";

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

/** A canister's new values, by its index in id order. */
export interface SchedulingChange {
  readonly index: number;
  readonly accumulatedPriority: bigint;
  readonly priorityCredit: bigint;
  readonly longExecutionMode: LongExecutionMode;
}

/** Credit and mode of a canister whose values differ from the default (0, "opportunistic"). */
interface LongExecutionEntry {
  readonly index: number;
  readonly priorityCredit: bigint;
  readonly longExecutionMode: LongExecutionMode;
}

/** The canisters of the subnet in id order and their allocations: unchanged between rounds. */
class Roster {
  readonly indexById: ReadonlyMap<CanisterId, number>;
  /** Indices of canisters with a compute allocation, ascending. */
  readonly allocated: readonly number[];
  readonly totalAllocationPercent: bigint;

  constructor(
    readonly ids: readonly CanisterId[],
    readonly allocationsPercent: readonly number[],
  ) {
    assert(ids.length === allocationsPercent.length, "one allocation per canister");
    for (let i = 1; i < ids.length; i++) assert(compareCanisterIds(ids[i - 1]!, ids[i]!) < 0, "scheduling states must be sorted by id, without duplicates");
    this.indexById = new Map(ids.map((id, i) => [id, i]));
    const allocated: number[] = [];
    // Percentages ≤ 100 summed as numbers stay exact far beyond any subnet's canister count.
    let total = 0;
    allocationsPercent.forEach((a, i) => {
      assert(Number.isInteger(a) && a >= 0 && a <= 100, `compute allocation ${a}% out of range`);
      total += a;
      if (a > 0) allocated.push(i);
    });
    this.allocated = allocated;
    this.totalAllocationPercent = BigInt(total);
  }
}

const DEFAULT_MODE: LongExecutionMode = "opportunistic";

type CanisterList = readonly { readonly id: CanisterId; readonly computeAllocationPercent: number }[];

/** Canister arrays known to match a roster (same ids in order, same allocations): checked once. */
const matchedRosters = new WeakMap<CanisterList, Roster>();
const isDefault = (credit: bigint, mode: LongExecutionMode): boolean => credit === 0n && mode === DEFAULT_MODE;

export class SchedulingStates implements Iterable<CanisterSchedulingState> {
  private constructor(
    private readonly roster: Roster,
    /** AP − offset, by index. */
    private readonly relative: PersistentVector<bigint>,
    /** Added to every relative value; see the file comment. */
    readonly offset: bigint,
    /** Canisters with a credit or the prioritized mode, ascending index. */
    private readonly longExecutions: readonly LongExecutionEntry[],
  ) {}

  static readonly EMPTY = SchedulingStates.fromList([]);

  /** From materialised states sorted by id (decode, reconcile, tests); offset 0. */
  static fromList(states: readonly CanisterSchedulingState[]): SchedulingStates {
    const roster = new Roster(
      states.map((s) => s.id),
      states.map((s) => s.computeAllocationPercent),
    );
    const longExecutions: LongExecutionEntry[] = [];
    states.forEach((s, index) => {
      if (!isDefault(s.priorityCredit, s.longExecutionMode)) longExecutions.push({ index, priorityCredit: s.priorityCredit, longExecutionMode: s.longExecutionMode });
    });
    return new SchedulingStates(roster, PersistentVector.from(states.map((s) => s.accumulatedPriority)), 0n, longExecutions);
  }

  get size(): number {
    return this.roster.ids.length;
  }

  /** Canister ids in id order. */
  get ids(): readonly CanisterId[] {
    return this.roster.ids;
  }

  get totalAllocationPercent(): bigint {
    return this.roster.totalAllocationPercent;
  }

  /** Indices of the canisters with a compute allocation, ascending. */
  get allocatedIndices(): readonly number[] {
    return this.roster.allocated;
  }

  /** Indices of the canisters with a priority credit or the prioritized mode, ascending. */
  get longExecutionIndices(): readonly number[] {
    return this.longExecutions.map((e) => e.index);
  }

  indexOf(id: CanisterId): number | undefined {
    return this.roster.indexById.get(id);
  }

  idAt(index: number): CanisterId {
    const id = this.roster.ids[index];
    assert(id !== undefined, `no canister at scheduling index ${index}`);
    return id;
  }

  allocationPercentAt(index: number): number {
    return this.roster.allocationsPercent[index]!;
  }

  accumulatedPriorityAt(index: number): bigint {
    return this.relative.get(index) + this.offset;
  }

  longExecutionModeAt(index: number): LongExecutionMode {
    return this.longExecutionAt(index)?.longExecutionMode ?? DEFAULT_MODE;
  }

  /** The materialised state of the canister at `index`. */
  at(index: number): CanisterSchedulingState {
    const entry = this.longExecutionAt(index);
    return {
      id: this.idAt(index),
      computeAllocationPercent: this.allocationPercentAt(index),
      accumulatedPriority: this.accumulatedPriorityAt(index),
      priorityCredit: entry?.priorityCredit ?? 0n,
      longExecutionMode: entry?.longExecutionMode ?? DEFAULT_MODE,
    };
  }

  get(id: CanisterId): CanisterSchedulingState | undefined {
    const index = this.indexOf(id);
    return index === undefined ? undefined : this.at(index);
  }

  /** Every canister's state in id order: O(n), for encodings, reconcile and checks. */
  list(): CanisterSchedulingState[] {
    const out: CanisterSchedulingState[] = [];
    const { ids, allocationsPercent } = this.roster;
    let next = 0; // into longExecutions, which is ordered like the walk
    this.relative.forEach((relative, index) => {
      const entry = this.longExecutions[next]?.index === index ? this.longExecutions[next++] : undefined;
      out.push({
        id: ids[index]!,
        computeAllocationPercent: allocationsPercent[index]!,
        accumulatedPriority: relative + this.offset,
        priorityCredit: entry?.priorityCredit ?? 0n,
        longExecutionMode: entry?.longExecutionMode ?? DEFAULT_MODE,
      });
    });
    assert(next === this.longExecutions.length, "long-execution entries out of range");
    return out;
  }

  [Symbol.iterator](): Iterator<CanisterSchedulingState> {
    return this.list()[Symbol.iterator]();
  }

  /**
   * Same canisters (ids in order) with the same allocations: no reconcile needed. O(n) the first
   * time for an array, O(1) after (arrays are immutable by convention; see rememberMatch).
   */
  matches(canisters: CanisterList): boolean {
    if (matchedRosters.get(canisters) === this.roster) return true;
    const { ids, allocationsPercent } = this.roster;
    if (canisters.length !== ids.length) return false;
    for (let i = 0; i < canisters.length; i++) {
      const c = canisters[i]!;
      if (c.id !== ids[i] || c.computeAllocationPercent !== allocationsPercent[i]) return false;
    }
    matchedRosters.set(canisters, this.roster);
    return true;
  }

  /**
   * Records that `next` matches too: it is `previous` (which matches) with only the entries
   * `changed` replaced, and those kept their ids and allocations — so the next round skips the
   * O(n) comparison.
   */
  rememberMatch(previous: CanisterList, next: CanisterList, changed: readonly { readonly before: CanisterList[number]; readonly after: CanisterList[number] }[]): void {
    if (!this.matches(previous) || previous.length !== next.length) return;
    if (changed.some(({ before, after }) => before.id !== after.id || before.computeAllocationPercent !== after.computeAllocationPercent)) return;
    matchedRosters.set(next, this.roster);
  }

  /**
   * The next version: every canister not in `changes` moves with the offset (its effective AP
   * changes by offset − this.offset, credit and mode unchanged); the ones in `changes` (ascending
   * index, each once) take the given values.
   */
  advanced(offset: bigint, changes: readonly SchedulingChange[]): SchedulingStates {
    const indices = changes.map((c) => c.index);
    const relative = this.relative.withUpdates(
      indices,
      changes.map((c) => c.accumulatedPriority - offset),
    );
    return new SchedulingStates(this.roster, relative, offset, this.mergedLongExecutions(changes));
  }

  /**
   * The periodic reset: AP = alloc·multiplier − centre, credit 0, modes kept. O(canisters with an
   * allocation): the relative values start from one shared all-zero vector.
   */
  reset(multiplier: bigint, centre: bigint): SchedulingStates {
    const allocated = this.roster.allocated;
    const relative = PersistentVector.filled(this.size, 0n).withUpdates(
      allocated,
      allocated.map((i) => BigInt(this.roster.allocationsPercent[i]!) * multiplier),
    );
    const longExecutions = this.longExecutions.filter((e) => e.longExecutionMode !== DEFAULT_MODE).map((e) => ({ ...e, priorityCredit: 0n }));
    return new SchedulingStates(this.roster, relative, -centre, longExecutions);
  }

  /** Without the given canisters, whose balances are dropped (not redistributed). */
  without(gone: ReadonlySet<string>): SchedulingStates {
    return SchedulingStates.fromList(this.list().filter((s) => !gone.has(s.id)));
  }

  private longExecutionAt(index: number): LongExecutionEntry | undefined {
    const entries = this.longExecutions;
    let lo = 0;
    let hi = entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = entries[mid]!;
      if (e.index === index) return e;
      if (e.index < index) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** The long-execution list with `changes` applied (entries that became default dropped). */
  private mergedLongExecutions(changes: readonly SchedulingChange[]): LongExecutionEntry[] {
    const out: LongExecutionEntry[] = [];
    const old = this.longExecutions;
    let k = 0;
    const keep = (c: SchedulingChange): void => {
      if (!isDefault(c.priorityCredit, c.longExecutionMode)) out.push({ index: c.index, priorityCredit: c.priorityCredit, longExecutionMode: c.longExecutionMode });
    };
    changes.forEach((c, j) => {
      assert(j === 0 || changes[j - 1]!.index < c.index, "scheduling changes must be in strictly increasing index order");
      while (k < old.length && old[k]!.index < c.index) out.push(old[k++]!);
      if (k < old.length && old[k]!.index === c.index) k++; // replaced by the change
      keep(c);
    });
    while (k < old.length) out.push(old[k++]!);
    return out;
  }
}
