// A persistent sorted map from labels to certified subtrees, the building block of the certified
// state tree (research/ic-protocol.md §5.1, §5.2). Updating one entry and recomputing the map's
// hash costs O(log n) hashes, where a rebuild of the node with `buildHashTree` costs O(n).
//
// Why the fork shape differs from the replica's for big nodes. The replica pairs a node's sorted
// children level by level; inserting one child shifts the pairing of every later child, so that
// shape cannot be maintained incrementally. A node's hash tree only has to be well formed (forks
// over labeled children whose labels strictly increase left to right) for lookups and witnesses
// to work; agents never compare shapes, only the signed root hash. So:
//
// - a node with at most REPLICA_SHAPE_MAX_CHILDREN children uses the replica's shape exactly
//   (root, canister/<id>, small maps): for small states our root hash equals the replica's
//   construction (`buildHashTree`);
// - a bigger node uses the shape of a crit-bit (PATRICIA) trie over the labels: every fork
//   splits its labels at the first bit where they differ, labels with a 0 there on the left.
//   A trie's shape is a function of its key set alone, so replicas that applied the same changes
//   in any order, or removed and re-inserted an entry, agree on the hash. Each fork of the trie
//   is one Fork of the hash tree and each leaf one Labeled child, so an update rehashes one fork
//   per level: about log2(n) + 2 for random labels such as message ids (≈ 20 for 300,000), and a
//   balanced trie for consecutive labels such as stream indices and canister ids. The depth is
//   bounded by the label length, whatever the labels.
//
// Both shapes are functions of the key set, and the switch between them depends only on the
// number of children, so the whole hash is a function of the map's content.
//
// Bits of a label. Labels order bytewise with a proper prefix first; to make that the trie's
// left-to-right order, a label is read as the bit string "1 b7..b0" per byte followed by a final
// "0". These strings order like the labels, and none is a prefix of another.
//
// Hashes are computed lazily and cached in the immutable nodes: a batch of updates between two
// root hashes rehashes the union of the changed paths once.
import { assert } from "../assert.ts";
import { compareLabels, empty, fork, labeled, pruned, type HashTree, type Label, type Path } from "../crypto/hash-tree.ts";
import { EMPTY_DIGEST, digestBytes, forkDigest, labeledDigest, type Digest } from "./tree-hash.ts";

/** A node of the certified state tree that knows its hash and can prove paths below it. */
export interface CertifiedSubtree {
  /** Root hash of the node's full hash tree (the spec's reconstruct). */
  hash(): Digest;
  /** The node's full hash tree, nothing pruned. */
  reveal(): HashTree;
  /**
   * A pruned hash tree with the same root hash that proves each path (relative to this node, each
   * non-empty): the value(s) under it, or the neighbouring labels that show it absent.
   */
  witness(paths: readonly Path[]): HashTree;
}

/** Nodes with at most this many children hash exactly as the replica's `buildHashTree` does. */
export const REPLICA_SHAPE_MAX_CHILDREN = 16;

// ---------------------------------------------------------------------------------------------
// Label bits (see the file comment)

const BITS_PER_BYTE = 9;

/** Bit `i` of the label's bit string; past its end, 0 (only ever used to choose a way down). */
function bitAt(label: Label, i: number): 0 | 1 {
  const index = (i / BITS_PER_BYTE) | 0;
  const offset = i - index * BITS_PER_BYTE;
  if (offset === 0) return index < label.length ? 1 : 0;
  const byte = label[index];
  return byte === undefined ? 0 : (((byte >> (8 - offset)) & 1) as 0 | 1);
}

/** The first bit where two distinct labels' bit strings differ. */
function critBit(a: Label, b: Label): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const diff = (a[i] as number) ^ (b[i] as number);
    if (diff !== 0) return i * BITS_PER_BYTE + 1 + (Math.clz32(diff) - 24);
  }
  assert(a.length !== b.length, "crit bit of equal labels");
  return n * BITS_PER_BYTE; // the shorter label's final 0 against the longer one's 1
}

// ---------------------------------------------------------------------------------------------
// Trie nodes

class Leaf<V extends CertifiedSubtree> {
  readonly size = 1;
  private entryHashCache: Digest | undefined;

  constructor(
    readonly key: Label,
    readonly value: V,
  ) {}

  /** Hash of labeled(key, value). */
  hash(): Digest {
    return (this.entryHashCache ??= labeledDigest(this.key, this.value.hash()));
  }
}

class Branch<V extends CertifiedSubtree> {
  readonly size: number;
  private hashCache: Digest | undefined;

  constructor(
    /** Labels below differ first at this bit: 0 on the left, 1 on the right. */
    readonly bit: number,
    readonly left: TrieNode<V>,
    readonly right: TrieNode<V>,
  ) {
    this.size = left.size + right.size;
  }

  hash(): Digest {
    return (this.hashCache ??= forkDigest(this.left.hash(), this.right.hash()));
  }

  with(left: TrieNode<V>, right: TrieNode<V>): Branch<V> {
    return left === this.left && right === this.right ? this : new Branch(this.bit, left, right);
  }
}

type TrieNode<V extends CertifiedSubtree> = Leaf<V> | Branch<V>;

/** The leaf a label's bits lead to: the label's own leaf if present, else one sharing its longest prefix. */
function closestLeaf<V extends CertifiedSubtree>(root: TrieNode<V>, key: Label): Leaf<V> {
  let node = root;
  while (node instanceof Branch) node = bitAt(key, node.bit) === 1 ? node.right : node.left;
  return node;
}

function edgeLeaf<V extends CertifiedSubtree>(node: TrieNode<V>, side: "min" | "max"): Leaf<V> {
  while (node instanceof Branch) node = side === "min" ? node.left : node.right;
  return node;
}

function insert<V extends CertifiedSubtree>(root: TrieNode<V>, key: Label, value: V): TrieNode<V> {
  const closest = closestLeaf(root, key);
  if (compareLabels(closest.key, key) === 0) return replace(root, key, value);
  const bit = critBit(key, closest.key);
  const fresh = new Leaf(key, value);
  const place = (node: TrieNode<V>): TrieNode<V> => {
    if (node instanceof Branch && node.bit < bit) {
      return bitAt(key, node.bit) === 1 ? node.with(node.left, place(node.right)) : node.with(place(node.left), node.right);
    }
    return bitAt(key, bit) === 1 ? new Branch(bit, node, fresh) : new Branch(bit, fresh, node);
  };
  return place(root);
}

/** Replaces the value of a present key; the same value returns the same trie. */
function replace<V extends CertifiedSubtree>(node: TrieNode<V>, key: Label, value: V): TrieNode<V> {
  if (node instanceof Leaf) return node.value === value ? node : new Leaf(key, value);
  return bitAt(key, node.bit) === 1 ? node.with(node.left, replace(node.right, key, value)) : node.with(replace(node.left, key, value), node.right);
}

function remove<V extends CertifiedSubtree>(node: TrieNode<V>, key: Label): TrieNode<V> | undefined {
  if (node instanceof Leaf) return compareLabels(node.key, key) === 0 ? undefined : node;
  if (bitAt(key, node.bit) === 1) {
    const right = remove(node.right, key);
    return right === undefined ? node.left : node.with(node.left, right);
  }
  const left = remove(node.left, key);
  return left === undefined ? node.right : node.with(left, node.right);
}

/** The part of a trie with labels ≥ `key` (only the boundary path is visited). */
function dropBelow<V extends CertifiedSubtree>(node: TrieNode<V>, key: Label): TrieNode<V> | undefined {
  if (compareLabels(edgeLeaf(node, "max").key, key) < 0) return undefined;
  if (compareLabels(edgeLeaf(node, "min").key, key) >= 0) return node;
  assert(node instanceof Branch, "a leaf is either below the key or not");
  const left = dropBelow(node.left, key);
  // Once something on the left stays, everything on the right (larger) stays too.
  return left === undefined ? dropBelow(node.right, key) : node.with(left, node.right);
}

/** The trie of sorted, distinct entries. */
function buildSorted<V extends CertifiedSubtree>(entries: readonly (readonly [Label, V])[], lo: number, hi: number): TrieNode<V> {
  assert(hi > lo, "a trie node holds at least one entry");
  const first = entries[lo] as readonly [Label, V];
  if (hi - lo === 1) return new Leaf(first[0], first[1]);
  // Sorted labels share the prefix of the first and the last one, then split 0s | 1s at the next bit.
  const bit = critBit(first[0], (entries[hi - 1] as readonly [Label, V])[0]);
  let low = lo + 1;
  let high = hi - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (bitAt((entries[mid] as readonly [Label, V])[0], bit) === 1) high = mid;
    else low = mid + 1;
  }
  return new Branch(bit, buildSorted(entries, lo, low), buildSorted(entries, low, hi));
}

function* inOrder<V extends CertifiedSubtree>(root: TrieNode<V> | undefined): Generator<Leaf<V>> {
  const stack: TrieNode<V>[] = root === undefined ? [] : [root];
  while (stack.length > 0) {
    const node = stack.pop() as TrieNode<V>;
    if (node instanceof Leaf) yield node;
    else stack.push(node.right, node.left);
  }
}

// ---------------------------------------------------------------------------------------------
// Witness pieces: a revealed HashTree, or a hidden subtree given by its hash.

type Piece = HashTree | Digest;

const isHidden = (piece: Piece): piece is Digest => typeof piece === "string";
const asTree = (piece: Piece): HashTree => (isHidden(piece) ? pruned(digestBytes(piece)) : piece);

/** Fork of two pieces; two hidden pieces stay one hidden piece (maximal pruned subtrees). */
function joinPieces(left: Piece, right: Piece): Piece {
  if (isHidden(left) && isHidden(right)) return forkDigest(left, right);
  return fork(asTree(left), asTree(right));
}

/** The replica's shape: pair adjacent items left to right, level by level, an odd last one carried up. */
function pairLevels<T>(items: readonly T[], combine: (left: T, right: T) => T): T {
  assert(items.length > 0, "pairing needs at least one item");
  let level = items;
  while (level.length > 1) {
    const next: T[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as T;
      const right = level[i + 1];
      next.push(right === undefined ? left : combine(left, right));
    }
    level = next;
  }
  return level[0] as T;
}

/** What a witness shows of one entry: its value proven along some paths, or only its label. */
type Reveal = { readonly kind: "descend"; readonly tails: Path[] } | { readonly kind: "label" };

function revealedEntry<V extends CertifiedSubtree>(leaf: Leaf<V>, reveal: Reveal): HashTree {
  if (reveal.kind === "label") return labeled(leaf.key, pruned(digestBytes(leaf.value.hash())));
  if (reveal.tails.some((tail) => tail.length === 0)) return labeled(leaf.key, leaf.value.reveal());
  return labeled(leaf.key, leaf.value.witness(reveal.tails));
}

/** Trie-shaped witness: descends only into subtrees holding planned entries, O(k·depth). */
function trieWitness<V extends CertifiedSubtree>(root: TrieNode<V>, plan: ReadonlyMap<Leaf<V>, Reveal>): Piece {
  const walk = (node: TrieNode<V>, keys: readonly Label[]): Piece => {
    if (keys.length === 0) return node.hash();
    if (node instanceof Leaf) {
      const reveal = plan.get(node);
      assert(reveal !== undefined && keys.length === 1, "planned labels lead to their own leaves");
      return revealedEntry(node, reveal);
    }
    const left = keys.filter((key) => bitAt(key, node.bit) === 0);
    const right = keys.filter((key) => bitAt(key, node.bit) === 1);
    return joinPieces(walk(node.left, left), walk(node.right, right));
  };
  return walk(root, [...plan.keys()].map((leaf) => leaf.key));
}

// ---------------------------------------------------------------------------------------------

export class LabelMap<V extends CertifiedSubtree> implements CertifiedSubtree {
  private hashCache: Digest | undefined;

  private constructor(private readonly root: TrieNode<V> | undefined) {}

  static empty<V extends CertifiedSubtree>(): LabelMap<V> {
    return new LabelMap<V>(undefined);
  }

  /** A map of the given entries (any order; labels must be distinct). */
  static fromEntries<V extends CertifiedSubtree>(entries: Iterable<readonly [Label, V]>): LabelMap<V> {
    const sorted = [...entries].sort((a, b) => compareLabels(a[0], b[0]));
    for (let i = 1; i < sorted.length; i++) {
      const previous = (sorted[i - 1] as readonly [Label, V])[0];
      assert(compareLabels(previous, (sorted[i] as readonly [Label, V])[0]) < 0, "duplicate label in a LabelMap");
    }
    return new LabelMap(sorted.length === 0 ? undefined : buildSorted(sorted, 0, sorted.length));
  }

  get size(): number {
    return this.root?.size ?? 0;
  }

  get(key: Label): V | undefined {
    if (this.root === undefined) return undefined;
    const leaf = closestLeaf(this.root, key);
    return compareLabels(leaf.key, key) === 0 ? leaf.value : undefined;
  }

  has(key: Label): boolean {
    return this.get(key) !== undefined;
  }

  /** Inserts or replaces; setting the value already held returns this map. */
  set(key: Label, value: V): LabelMap<V> {
    const root = this.root === undefined ? new Leaf(key, value) : insert(this.root, key, value);
    return root === this.root ? this : new LabelMap(root);
  }

  delete(key: Label): LabelMap<V> {
    if (this.root === undefined) return this;
    const root = remove(this.root, key);
    return root === this.root ? this : new LabelMap(root);
  }

  /** Drops every entry whose label sorts below `key` (stream garbage collection). */
  deleteBelow(key: Label): LabelMap<V> {
    if (this.root === undefined) return this;
    const root = dropBelow(this.root, key);
    return root === this.root ? this : new LabelMap(root);
  }

  *entries(): Generator<readonly [Label, V]> {
    for (const leaf of inOrder(this.root)) yield [leaf.key, leaf.value];
  }

  *keys(): Generator<Label> {
    for (const leaf of inOrder(this.root)) yield leaf.key;
  }

  hash(): Digest {
    if (this.hashCache === undefined) this.hashCache = this.computeHash();
    return this.hashCache;
  }

  private computeHash(): Digest {
    if (this.root === undefined) return EMPTY_DIGEST;
    if (this.usesReplicaShape()) return pairLevels([...inOrder(this.root)].map((leaf) => leaf.hash()), forkDigest);
    return this.root.hash();
  }

  private usesReplicaShape(): boolean {
    return this.size <= REPLICA_SHAPE_MAX_CHILDREN;
  }

  reveal(): HashTree {
    if (this.root === undefined) return empty();
    const revealEntry = (leaf: Leaf<V>): HashTree => labeled(leaf.key, leaf.value.reveal());
    if (this.usesReplicaShape()) return pairLevels([...inOrder(this.root)].map(revealEntry), fork);
    const walk = (node: TrieNode<V>): HashTree => (node instanceof Leaf ? revealEntry(node) : fork(walk(node.left), walk(node.right)));
    return walk(this.root);
  }

  witness(paths: readonly Path[]): HashTree {
    if (this.root === undefined) return empty(); // proves every label absent
    assert(paths.length > 0, "a witness proves at least one path");
    const plan = this.revealPlan(this.root, paths);
    const piece = this.usesReplicaShape() ? this.replicaShapeWitness(plan) : trieWitness(this.root, plan);
    return asTree(piece);
  }

  /**
   * Which entries the witness shows: each path's head entry (descending with the path's tail), or
   * for a head that is absent, its neighbours' labels, which prove the absence.
   */
  private revealPlan(root: TrieNode<V>, paths: readonly Path[]): Map<Leaf<V>, Reveal> {
    const plan = new Map<Leaf<V>, Reveal>();
    for (const path of paths) {
      const head = path[0];
      assert(head !== undefined, "map witnesses take non-empty paths; an empty one reveals the whole node");
      const place = locate(root, head);
      if (place.found !== undefined) {
        const current = plan.get(place.found);
        if (current?.kind === "descend") current.tails.push(path.slice(1));
        else plan.set(place.found, { kind: "descend", tails: [path.slice(1)] });
        continue;
      }
      for (const neighbour of [place.before, place.after]) {
        if (neighbour !== undefined && !plan.has(neighbour)) plan.set(neighbour, { kind: "label" });
      }
    }
    return plan;
  }

  private replicaShapeWitness(plan: ReadonlyMap<Leaf<V>, Reveal>): Piece {
    const pieces = [...inOrder(this.root)].map((leaf): Piece => {
      const reveal = plan.get(leaf);
      return reveal === undefined ? leaf.hash() : revealedEntry(leaf, reveal);
    });
    return pairLevels(pieces, joinPieces);
  }
}

/**
 * The leaf with `key`, or the leaves just below and above it. The absent key would hang where
 * its bits first leave the trie (the first fork splitting at or past its crit bit against the
 * closest leaf): that subtree lies wholly on one side of it, and the nearest subtree passed on the
 * other side along the way holds the other neighbour.
 */
function locate<V extends CertifiedSubtree>(root: TrieNode<V>, key: Label): { found?: Leaf<V>; before?: Leaf<V>; after?: Leaf<V> } {
  const closest = closestLeaf(root, key);
  if (compareLabels(closest.key, key) === 0) return { found: closest };
  const bit = critBit(key, closest.key);
  let node = root;
  let lastLeft: TrieNode<V> | undefined; // the left sibling when we last went right: smaller labels
  let lastRight: TrieNode<V> | undefined; // the right sibling when we last went left: larger labels
  while (node instanceof Branch && node.bit < bit) {
    if (bitAt(key, node.bit) === 1) {
      lastLeft = node.left;
      node = node.right;
    } else {
      lastRight = node.right;
      node = node.left;
    }
  }
  if (bitAt(key, bit) === 1) {
    return { before: edgeLeaf(node, "max"), after: lastRight === undefined ? undefined : edgeLeaf(lastRight, "min") };
  }
  return { before: lastLeft === undefined ? undefined : edgeLeaf(lastLeft, "max"), after: edgeLeaf(node, "min") };
}
