// The IC's certified hash tree (interface specification, "Certification" → "Certificate",
// "Lookup" and "Encoding of certificates"; research/ic-protocol.md §5.2).
//
// - `HashTree` is the spec's Empty | Fork | Labeled | Leaf | Pruned with its root hash
//   (`reconstruct`) under the domain separators ic-hashtree-{empty,fork,labeled,leaf};
// - `buildHashTree` turns a labeled tree (sorted children per node) into a hash tree whose fork
//   shape is the replica's (dfinity/ic rs/crypto/tree_hash: pair adjacent subtrees left to right,
//   level by level, an odd last one carried up), so root hashes match the replica's;
// - `lookupPath` is the spec's lookup_path with Found / Absent / Unknown / Error;
// - `prune` keeps what proves a set of paths (values under each path, or the neighbouring labels
//   that prove absence) and replaces every other maximal subtree by its hash: the root hash is
//   unchanged.
// Labels and values are bytes; labels compare bytewise (a proper prefix is smaller).
import { decode, encode } from "@dfinity/cbor";
import { sha256 } from "./sha256.ts";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";

export type Label = Uint8Array;
export type Path = readonly Label[];

export type HashTree =
  | { readonly kind: "empty" }
  | { readonly kind: "fork"; readonly left: HashTree; readonly right: HashTree }
  | { readonly kind: "labeled"; readonly label: Label; readonly subtree: HashTree }
  | { readonly kind: "leaf"; readonly value: Uint8Array }
  | { readonly kind: "pruned"; readonly hash: Uint8Array };

const EMPTY: HashTree = { kind: "empty" };

/** Text labels and values are UTF-8; byte strings are taken as they are. */
export const bytesOf = (x: Uint8Array | string): Uint8Array => (typeof x === "string" ? utf8ToBytes(x) : x);

export const empty = (): HashTree => EMPTY;
export const fork = (left: HashTree, right: HashTree): HashTree => ({ kind: "fork", left, right });
export const labeled = (label: Label | string, subtree: HashTree): HashTree => ({
  kind: "labeled",
  label: bytesOf(label),
  subtree,
});
export const leaf = (value: Uint8Array | string): HashTree => ({ kind: "leaf", value: bytesOf(value) });
export const pruned = (hash: Uint8Array): HashTree => {
  assert(hash.length === 32, `a pruned node holds a 32-byte hash, not ${hash.length} bytes`);
  return { kind: "pruned", hash };
};

/** The spec's domain_sep(s) = byte(|s|) · s. */
export function domainSeparator(domain: string): Uint8Array {
  const text = utf8ToBytes(domain);
  assert(text.length < 256, "domain separator too long");
  const out = new Uint8Array(text.length + 1);
  out[0] = text.length;
  out.set(text, 1);
  return out;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const DS_EMPTY = domainSeparator("ic-hashtree-empty");
const DS_FORK = domainSeparator("ic-hashtree-fork");
const DS_LABELED = domainSeparator("ic-hashtree-labeled");
const DS_LEAF = domainSeparator("ic-hashtree-leaf");
const EMPTY_HASH = sha256(DS_EMPTY);

export const forkHash = (l: Uint8Array, r: Uint8Array): Uint8Array => sha256(concatBytes(DS_FORK, l, r));
export const labeledHash = (label: Label, sub: Uint8Array): Uint8Array => sha256(concatBytes(DS_LABELED, label, sub));
export const leafHash = (value: Uint8Array): Uint8Array => sha256(concatBytes(DS_LEAF, value));

/** The root hash of a (possibly pruned) tree: the spec's `reconstruct`. */
export function reconstruct(tree: HashTree): Uint8Array {
  switch (tree.kind) {
    case "empty":
      return EMPTY_HASH.slice();
    case "fork":
      return forkHash(reconstruct(tree.left), reconstruct(tree.right));
    case "labeled":
      return labeledHash(tree.label, reconstruct(tree.subtree));
    case "leaf":
      return leafHash(tree.value);
    case "pruned":
      return tree.hash.slice();
  }
}

export const rootHashHex = (tree: HashTree): string => bytesToHex(reconstruct(tree));

/** Bytewise lexicographic order; a proper prefix sorts first. */
export function compareLabels(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// Labeled trees (the state tree before hashing)

export type LabeledTree =
  | { readonly kind: "value"; readonly value: Uint8Array }
  | { readonly kind: "subtree"; readonly children: readonly (readonly [Label, LabeledTree])[] };

export const value = (v: Uint8Array | string): LabeledTree => ({ kind: "value", value: bytesOf(v) });

/** A subtree node; children are sorted by label here and must be distinct. */
export function subtree(children: Iterable<readonly [Label | string, LabeledTree]>): LabeledTree {
  const sorted = [...children]
    .map(([label, child]) => [bytesOf(label), child] as const)
    .sort((a, b) => compareLabels(a[0], b[0]));
  for (let i = 1; i < sorted.length; i++) {
    assert(
      compareLabels((sorted[i - 1] as readonly [Label, LabeledTree])[0], (sorted[i] as readonly [Label, LabeledTree])[0]) < 0,
      "duplicate label in a labeled subtree",
    );
  }
  return { kind: "subtree", children: sorted };
}

/** Hash tree of a labeled tree, with the replica's fork shape. */
export function buildHashTree(tree: LabeledTree): HashTree {
  if (tree.kind === "value") return leaf(tree.value);
  let level: HashTree[] = tree.children.map(([label, child]) => labeled(label, buildHashTree(child)));
  if (level.length === 0) return EMPTY;
  while (level.length > 1) {
    const next: HashTree[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as HashTree;
      const right = level[i + 1];
      next.push(right === undefined ? left : fork(left, right));
    }
    level = next;
  }
  return level[0] as HashTree;
}

// ---------------------------------------------------------------------------------------------
// Lookup (spec "Lookup")

export type LookupResult =
  | { readonly status: "found"; readonly value: Uint8Array }
  | { readonly status: "absent" }
  | { readonly status: "unknown" }
  | { readonly status: "error" };

type LabelSearch =
  | { readonly status: "found"; readonly subtree: HashTree }
  | { readonly status: "absent" }
  | { readonly status: "unknown" };

/** The spec's flatten_forks: the forest under a node, Empty contributing nothing. */
export function flattenForks(tree: HashTree): HashTree[] {
  const out: HashTree[] = [];
  const walk = (t: HashTree): void => {
    if (t.kind === "empty") return;
    if (t.kind === "fork") {
      walk(t.left);
      walk(t.right);
      return;
    }
    out.push(t);
  };
  walk(tree);
  return out;
}

/** The spec's find_label over a flattened forest; also returns the index of the match. */
function findLabel(label: Label, forest: readonly HashTree[]): LabelSearch & { index?: number } {
  if (forest.length === 0) return { status: "absent" };
  if (forest.length === 1 && forest[0]?.kind === "leaf") return { status: "absent" };
  for (let i = 0; i < forest.length; i++) {
    const t = forest[i] as HashTree;
    if (t.kind === "labeled" && compareLabels(t.label, label) === 0) return { status: "found", subtree: t.subtree, index: i };
  }
  const first = forest[0] as HashTree;
  if (first.kind === "labeled" && compareLabels(label, first.label) < 0) return { status: "absent" };
  const last = forest[forest.length - 1] as HashTree;
  if (last.kind === "labeled" && compareLabels(last.label, label) < 0) return { status: "absent" };
  for (let i = 0; i + 1 < forest.length; i++) {
    const a = forest[i] as HashTree;
    const b = forest[i + 1] as HashTree;
    if (a.kind === "labeled" && b.kind === "labeled" && compareLabels(a.label, label) < 0 && compareLabels(label, b.label) < 0) {
      return { status: "absent" };
    }
  }
  return { status: "unknown" };
}

/** The spec's lookup_path. Path labels may be given as text (UTF-8). */
export function lookupPath(path: readonly (Label | string)[], tree: HashTree): LookupResult {
  let node = tree;
  for (const raw of path) {
    const found = findLabel(bytesOf(raw), flattenForks(node));
    if (found.status !== "found") return { status: found.status };
    node = found.subtree;
  }
  switch (node.kind) {
    case "empty":
      return { status: "absent" };
    case "leaf":
      return { status: "found", value: node.value };
    case "pruned":
      return { status: "unknown" };
    case "labeled":
    case "fork":
      return { status: "error" };
  }
}

/** The subtree at `path` (for listing children, the spec's lookup*), or why there is none. */
export function lookupSubtree(path: readonly (Label | string)[], tree: HashTree): LabelSearch {
  let node = tree;
  for (const raw of path) {
    const found = findLabel(bytesOf(raw), flattenForks(node));
    if (found.status !== "found") return { status: found.status };
    node = found.subtree;
  }
  return { status: "found", subtree: node };
}

/** Labeled children directly under a node, in order (pruned parts are skipped). */
export function labeledChildren(tree: HashTree): { label: Label; subtree: HashTree }[] {
  const out: { label: Label; subtree: HashTree }[] = [];
  for (const t of flattenForks(tree)) if (t.kind === "labeled") out.push({ label: t.label, subtree: t.subtree });
  return out;
}

/** The spec's well_formed: labels strictly increase and are not mixed with leaves. */
export function wellFormed(tree: HashTree): boolean {
  if (tree.kind === "leaf") return true;
  const forest = flattenForks(tree);
  let previous: Label | undefined;
  for (const t of forest) {
    if (t.kind === "leaf") return false;
    if (t.kind === "labeled") {
      if (previous !== undefined && compareLabels(previous, t.label) >= 0) return false;
      previous = t.label;
      if (!wellFormed(t.subtree)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Pruning to a witness

type Action = { readonly kind: "descend"; readonly tails: Path[] } | { readonly kind: "label-only" };

/**
 * A witness for `paths`: for each path, the value(s) under it, or the labels that prove it
 * absent; every other maximal subtree becomes Pruned (Empty nodes stay, they flatten to nothing).
 * The root hash is that of `tree`, and lookups of the kept paths give the same result.
 */
export function prune(tree: HashTree, paths: readonly (readonly (Label | string)[])[]): HashTree {
  const result = pruneNode(tree, paths.map((p) => p.map(bytesOf)));
  return result ?? pruned(reconstruct(tree));
}

/** undefined = nothing under this node needs revealing. */
function pruneNode(tree: HashTree, paths: readonly Path[]): HashTree | undefined {
  if (paths.length === 0) return undefined;
  if (paths.some((p) => p.length === 0)) return tree; // a requested prefix: reveal everything below
  if (tree.kind === "empty" || tree.kind === "leaf" || tree.kind === "pruned") return tree; // proves absence (or unknown)
  const forest = flattenForks(tree);
  const actions = new Map<HashTree, Action>();
  const descend = (node: HashTree, tail: Path): void => {
    const current = actions.get(node);
    if (current?.kind === "descend") current.tails.push(tail);
    else actions.set(node, { kind: "descend", tails: [tail] });
  };
  const reveal = (node: HashTree | undefined): void => {
    if (node !== undefined && node.kind === "labeled" && !actions.has(node)) actions.set(node, { kind: "label-only" });
  };
  for (const path of paths) {
    const head = path[0] as Label;
    const found = findLabel(head, forest);
    if (found.status === "found") {
      descend(forest[found.index as number] as HashTree, path.slice(1));
      continue;
    }
    // Absent or unknown: keep the nearest labeled neighbours on both sides.
    let before: HashTree | undefined;
    let after: HashTree | undefined;
    for (const t of forest) {
      if (t.kind !== "labeled") continue;
      if (compareLabels(t.label, head) < 0) before = t;
      else if (after === undefined) after = t;
    }
    reveal(before);
    reveal(after);
  }
  // Actions registered as label-only may later have been upgraded; descend wins (set above).
  return rebuild(tree, actions);
}

function rebuild(node: HashTree, actions: ReadonlyMap<HashTree, Action>): HashTree | undefined {
  if (node.kind === "fork") {
    const left = rebuild(node.left, actions);
    const right = rebuild(node.right, actions);
    if (left === undefined && right === undefined) return undefined;
    return fork(left ?? hidden(node.left), right ?? hidden(node.right));
  }
  const action = actions.get(node);
  if (action === undefined || node.kind !== "labeled") return undefined;
  if (action.kind === "label-only") return labeled(node.label, hidden(node.subtree));
  return labeled(node.label, pruneNode(node.subtree, action.tails) ?? hidden(node.subtree));
}

/** How a subtree that reveals nothing appears in a witness. */
function hidden(node: HashTree): HashTree {
  if (node.kind === "empty" || node.kind === "pruned") return node;
  return pruned(reconstruct(node));
}

// ---------------------------------------------------------------------------------------------
// CBOR data model (spec "Encoding of certificates"): [0] | [1,l,r] | [2,label,t] | [3,v] | [4,h]

export type HashTreeCbor =
  | [0]
  | [1, HashTreeCbor, HashTreeCbor]
  | [2, Uint8Array, HashTreeCbor]
  | [3, Uint8Array]
  | [4, Uint8Array];

export function toCborValue(tree: HashTree): HashTreeCbor {
  switch (tree.kind) {
    case "empty":
      return [0];
    case "fork":
      return [1, toCborValue(tree.left), toCborValue(tree.right)];
    case "labeled":
      return [2, tree.label, toCborValue(tree.subtree)];
    case "leaf":
      return [3, tree.value];
    case "pruned":
      return [4, tree.hash];
  }
}

/** The tree's CBOR bytes (untagged, as inside a certificate). */
export const encodeHashTree = (tree: HashTree): Uint8Array => encode(toCborValue(tree));

/** Parses CBOR bytes of a hash tree (tag 55799 accepted); undefined if malformed. */
export function decodeHashTree(bytes: Uint8Array): HashTree | undefined {
  try {
    return fromCborValue(decode(bytes));
  } catch {
    return undefined;
  }
}

const MAX_TREE_DEPTH = 512;

/** Parses the CBOR data model of a hash tree; undefined if it is not one. */
export function fromCborValue(data: unknown, depth = 0): HashTree | undefined {
  if (depth > MAX_TREE_DEPTH || !Array.isArray(data)) return undefined;
  const tag: unknown = data[0];
  const bytes = (x: unknown): Uint8Array | undefined => (x instanceof Uint8Array ? Uint8Array.from(x) : undefined);
  switch (tag) {
    case 0:
      return data.length === 1 ? EMPTY : undefined;
    case 1: {
      if (data.length !== 3) return undefined;
      const l = fromCborValue(data[1], depth + 1);
      const r = fromCborValue(data[2], depth + 1);
      return l === undefined || r === undefined ? undefined : fork(l, r);
    }
    case 2: {
      const label = bytes(data[1]);
      const sub = data.length === 3 ? fromCborValue(data[2], depth + 1) : undefined;
      return label === undefined || sub === undefined ? undefined : labeled(label, sub);
    }
    case 3: {
      const v = bytes(data[1]);
      return data.length === 2 && v !== undefined ? leaf(v) : undefined;
    }
    case 4: {
      const h = bytes(data[1]);
      return data.length === 2 && h !== undefined && h.length === 32 ? pruned(h) : undefined;
    }
    default:
      return undefined;
  }
}
