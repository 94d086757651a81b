// Bounded process-wide memos. The simulated replicas of a subnet share a process, so the same pure
// conversion (a sender's principal, a canister id's canonical text, a compiled module) would
// otherwise run once per replica per message. A hit returns exactly what the computation returned
// for the same input, so no outcome depends on a memo; and a fuzz worker runs thousands of
// scenarios in one process, so every process-wide memo has a capacity (the oldest entry goes
// first when full) — or is a WeakMap keyed by the objects it describes. Each bounded one registers
// here under a name, so a test can list them, check each stays within its capacity, and shrink the
// capacities to show that eviction changes no outcome (test/sim/memo.test.ts).
import { assert } from "./assert.ts";

export interface ProcessMemo {
  readonly name: string;
  readonly size: number;
  capacity: number;
}

const registry: ProcessMemo[] = [];

/** For a process-wide memo with bounds of its own (its `capacity` setter must evict or take effect on the next insert). */
export function registerProcessMemo(memo: ProcessMemo): void {
  registry.push(memo);
}

/** Every bounded process-wide memo created so far (modules create theirs when loaded). */
export function processMemos(): readonly ProcessMemo[] {
  return registry;
}

/** A Map with a capacity: inserting beyond it forgets the oldest entry first. For process-wide memos only (it registers itself for good). */
export class BoundedMap<K, V> implements ProcessMemo {
  private readonly entries = new Map<K, V>();
  private limit: number;

  constructor(
    readonly name: string,
    capacity: number,
  ) {
    this.limit = checkedCapacity(capacity);
    registry.push(this);
  }

  get size(): number {
    return this.entries.size;
  }

  get capacity(): number {
    return this.limit;
  }

  /** Lowering the capacity forgets the oldest entries at once. */
  set capacity(capacity: number) {
    this.limit = checkedCapacity(capacity);
    while (this.entries.size > this.limit) this.forgetOldest();
  }

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): this {
    if (!this.entries.has(key) && this.entries.size >= this.limit) this.forgetOldest();
    this.entries.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  private forgetOldest(): void {
    const oldest = this.entries.keys().next();
    if (oldest.done !== true) this.entries.delete(oldest.value);
  }
}

function checkedCapacity(capacity: number): number {
  assert(Number.isSafeInteger(capacity) && capacity >= 1, `memo capacity must be a positive integer, got ${capacity}`);
  return capacity;
}

/** A pure function of one string, memoised in a BoundedMap named `name`. */
export function memoizeBounded<R>(fn: (input: string) => R, capacity: number, name = fn.name || "memo"): (input: string) => R {
  const results = new BoundedMap<string, R>(name, capacity);
  return (input) => {
    const remembered = results.get(input);
    if (remembered !== undefined) return remembered;
    const result = fn(input); // throws before anything is remembered
    results.set(input, result);
    return result;
  };
}
