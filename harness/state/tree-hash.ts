// The hash tree's node hashes (hash-tree.ts, research/ic-protocol.md §5.2) as the certified state
// tree computes them: tens of thousands per height, hundreds of thousands kept. Two choices make
// that about 2.5× cheaper than hashing with @noble/hashes into Uint8Arrays:
//
// - Node's native one-shot SHA-256 over a reused scratch buffer (no concatenation);
// - digests held as 32-character latin1 strings (`Digest`): a typed array per digest costs a
//   separate backing store that the garbage collector must track, a short string does not.
//
// The bytes are the same as hash-tree.ts's (checked in test/state/certified-tree.test.ts).
import { hash } from "node:crypto";
import { assert } from "../assert.ts";
import { domainSeparator, type HashTree, type Label } from "../crypto/hash-tree.ts";

/** A 32-byte SHA-256 digest as a latin1 string (one char per byte). */
export type Digest = string & { readonly __brand: "Digest" };

const HASH_BYTES = 32;
const DS_EMPTY = domainSeparator("ic-hashtree-empty");
const DS_FORK = domainSeparator("ic-hashtree-fork");
const DS_LABELED = domainSeparator("ic-hashtree-labeled");
const DS_LEAF = domainSeparator("ic-hashtree-leaf");

/** Inputs up to this size are assembled in a reused scratch buffer; larger ones get their own. */
const SCRATCH_BYTES = 1024;
const scratch = Buffer.alloc(SCRATCH_BYTES);

// "binary" is Node's name for latin1: one char per byte.
const sha256 = (data: Uint8Array): Digest => hash("sha256", data, "binary") as Digest;

export const digestOf = (bytes: Uint8Array): Digest => {
  assert(bytes.length === HASH_BYTES, "a digest has 32 bytes");
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1") as Digest;
};

/** A digest as bytes (a fresh Uint8Array, safe to hand out). */
export const digestBytes = (digest: Digest): Uint8Array => new Uint8Array(Buffer.from(digest, "latin1"));

export const EMPTY_DIGEST: Digest = sha256(DS_EMPTY);

export function forkDigest(left: Digest, right: Digest): Digest {
  assert(left.length === HASH_BYTES && right.length === HASH_BYTES, "fork children are 32-byte digests");
  scratch.set(DS_FORK, 0);
  scratch.write(left, DS_FORK.length, "latin1");
  scratch.write(right, DS_FORK.length + HASH_BYTES, "latin1");
  return sha256(scratch.subarray(0, DS_FORK.length + 2 * HASH_BYTES));
}

export function labeledDigest(label: Label, subtree: Digest): Digest {
  assert(subtree.length === HASH_BYTES, "a labeled subtree is a 32-byte digest");
  const length = DS_LABELED.length + label.length + HASH_BYTES;
  const buffer = length <= SCRATCH_BYTES ? scratch : Buffer.alloc(length);
  buffer.set(DS_LABELED, 0);
  buffer.set(label, DS_LABELED.length);
  buffer.write(subtree, DS_LABELED.length + label.length, "latin1");
  return sha256(buffer.subarray(0, length));
}

export function leafDigest(value: Uint8Array): Digest {
  const length = DS_LEAF.length + value.length;
  const buffer = length <= SCRATCH_BYTES ? scratch : Buffer.alloc(length);
  buffer.set(DS_LEAF, 0);
  buffer.set(value, DS_LEAF.length);
  return sha256(buffer.subarray(0, length));
}

/** The spec's reconstruct (root hash of a possibly pruned tree). */
export function reconstructDigest(tree: HashTree): Digest {
  switch (tree.kind) {
    case "empty":
      return EMPTY_DIGEST;
    case "fork":
      return forkDigest(reconstructDigest(tree.left), reconstructDigest(tree.right));
    case "labeled":
      return labeledDigest(tree.label, reconstructDigest(tree.subtree));
    case "leaf":
      return leafDigest(tree.value);
    case "pruned":
      return digestOf(tree.hash);
  }
}
