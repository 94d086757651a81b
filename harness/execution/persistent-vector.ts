// A fixed-length immutable vector with cheap batched updates: a tree of 32-way nodes, and an
// update copies only the paths to the entries it changes (path copying). Every version stays valid
// and unchanged, so a round state may be shared between replicas (harness/replica/shared-execution.ts)
// and executed from again (audits) while a newer version is built from it.
//
// Used for the scheduler's per-canister priorities (scheduling-states.ts): a round changes a few
// hundred entries of a 100,000-canister subnet, and copying the whole array each round was what
// made the scheduler O(n) per round.
import { assert } from "../assert.ts";

const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;

/** A leaf holds values, an inner node holds children; depth tells which (leaves are at depth 0). */
type Node<T> = readonly (T | Node<T>)[];

/** Depth of the smallest tree with room for `length` entries (a single leaf holds WIDTH). */
function depthFor(length: number): number {
  // Indices are split with 32-bit shifts.
  assert(Number.isSafeInteger(length) && length >= 0 && length <= 2 ** 31, `invalid vector length ${length}`);
  let depth = 0;
  let capacity = WIDTH;
  while (capacity < length) {
    capacity *= WIDTH;
    depth++;
  }
  return depth;
}

export class PersistentVector<T> {
  private constructor(
    readonly length: number,
    private readonly depth: number,
    private readonly root: Node<T>,
  ) {}

  /** `length` entries equal to `value`; O(depth) nodes, since equal subtrees are one shared node. */
  static filled<T>(length: number, value: T): PersistentVector<T> {
    const depth = depthFor(length);
    let node: Node<T> = new Array<T>(WIDTH).fill(value);
    for (let d = 0; d < depth; d++) node = new Array<Node<T>>(WIDTH).fill(node);
    return new PersistentVector(length, depth, node);
  }

  static from<T>(values: readonly T[]): PersistentVector<T> {
    const depth = depthFor(values.length);
    let level: Node<T>[] = [];
    for (let i = 0; i < Math.max(values.length, 1); i += WIDTH) level.push(values.slice(i, i + WIDTH));
    for (let d = 0; d < depth; d++) {
      const up: Node<T>[] = [];
      for (let i = 0; i < level.length; i += WIDTH) up.push(level.slice(i, i + WIDTH));
      level = up;
    }
    assert(level.length === 1, "a vector tree has one root");
    return new PersistentVector(values.length, depth, level[0]!);
  }

  get(index: number): T {
    assert(Number.isInteger(index) && index >= 0 && index < this.length, `vector index ${index} out of range 0..${this.length - 1}`);
    let node: Node<T> = this.root;
    for (let d = this.depth; d > 0; d--) node = node[(index >>> (d * BITS)) & MASK] as Node<T>;
    return node[index & MASK] as T;
  }

  /**
   * A new version with `values[k]` at `indices[k]`. `indices` must be strictly increasing (one
   * copy per changed path, and the caller's order is the canonical one).
   */
  withUpdates(indices: readonly number[], values: readonly T[]): PersistentVector<T> {
    assert(indices.length === values.length, "one value per index");
    if (indices.length === 0) return this;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      assert(Number.isInteger(i) && i >= 0 && i < this.length, `vector index ${i} out of range 0..${this.length - 1}`);
      assert(k === 0 || indices[k - 1]! < i, "vector updates must be in strictly increasing index order");
    }
    const root = updated(this.root, this.depth, indices, values, 0, indices.length);
    return new PersistentVector(this.length, this.depth, root);
  }

  /** Calls `visit` for every entry in index order. */
  forEach(visit: (value: T, index: number) => void): void {
    const walk = (node: Node<T>, depth: number, base: number): void => {
      if (depth === 0) {
        const end = Math.min(WIDTH, this.length - base);
        for (let k = 0; k < end; k++) visit(node[k] as T, base + k);
        return;
      }
      const span = WIDTH ** depth;
      for (let k = 0; k < WIDTH && base + k * span < this.length; k++) walk(node[k] as Node<T>, depth - 1, base + k * span);
    };
    if (this.length > 0) walk(this.root, this.depth, 0);
  }
}

/** Copy of `node` (at `depth`) with the updates indices[from..to) applied; they all fall inside it. */
function updated<T>(node: Node<T>, depth: number, indices: readonly number[], values: readonly T[], from: number, to: number): Node<T> {
  const copy = node.slice();
  if (depth === 0) {
    for (let k = from; k < to; k++) copy[indices[k]! & MASK] = values[k]!;
    return copy;
  }
  const shift = depth * BITS;
  let k = from;
  while (k < to) {
    const slot = (indices[k]! >>> shift) & MASK;
    let end = k + 1;
    while (end < to && ((indices[end]! >>> shift) & MASK) === slot) end++;
    copy[slot] = updated(node[slot] as Node<T>, depth - 1, indices, values, k, end);
    k = end;
  }
  return copy;
}
