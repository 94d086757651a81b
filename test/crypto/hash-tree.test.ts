import { readFileSync } from "node:fs";
import test from "ava";
import fc from "fast-check";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  buildHashTree,
  decodeHashTree,
  empty,
  encodeHashTree,
  fork,
  labeled,
  leaf,
  lookupPath,
  prune,
  reconstruct,
  subtree,
  value,
  wellFormed,
  type HashTree,
  type LabeledTree,
  type LookupResult,
} from "../../harness/crypto/hash-tree.ts";

// Expected values: IC interface specification, "Certification" → "Example" (copied as data into
// fixtures/vectors/ic-spec-hash-tree-example.json; see fixtures/vectors/README.md).
const spec = JSON.parse(readFileSync(new URL("../../fixtures/vectors/ic-spec-hash-tree-example.json", import.meta.url), "utf8")) as {
  fullTreeCbor: string;
  rootHash: string;
  prunePaths: string[][];
  prunedTreeCbor: string;
  prunedLookups: { path: string[]; result: string; value?: string }[];
};

// The spec's example tree, written out as the spec draws it.
const specTree = fork(
  fork(labeled("a", fork(fork(labeled("x", leaf("hello")), empty()), labeled("y", leaf("world")))), labeled("b", leaf("good"))),
  fork(labeled("c", empty()), labeled("d", leaf("morning"))),
);

const parse = (hex: string): HashTree => {
  const tree = decodeHashTree(hexToBytes(hex));
  if (tree === undefined) throw new Error("not a hash tree");
  return tree;
};
const show = (r: LookupResult): string => (r.status === "found" ? `found:${new TextDecoder().decode(r.value)}` : r.status);

test("spec example: CBOR encoding and root hash", (t) => {
  t.is(bytesToHex(encodeHashTree(specTree)), spec.fullTreeCbor, "encoding matches the spec byte for byte");
  t.is(bytesToHex(reconstruct(parse(spec.fullTreeCbor))), spec.rootHash);
  t.is(bytesToHex(reconstruct(specTree)), spec.rootHash);
  t.true(wellFormed(specTree));
});

test("spec example: pruning /a/y, /ax, /d gives the spec's witness, and its lookups", (t) => {
  const witness = prune(specTree, spec.prunePaths);
  t.is(bytesToHex(encodeHashTree(witness)), spec.prunedTreeCbor, "same witness as the spec");
  t.is(bytesToHex(reconstruct(witness)), spec.rootHash);
  const specWitness = parse(spec.prunedTreeCbor);
  for (const { path, result, value: v } of spec.prunedLookups) {
    t.is(show(lookupPath(path, specWitness)), v === undefined ? result : `${result}:${v}`, `lookup ${path.join("/")}`);
  }
});

test("domain separators are length-prefixed (Empty = H(0x11 ‖ 'ic-hashtree-empty'))", (t) => {
  const ds = new Uint8Array([17, ...utf8ToBytes("ic-hashtree-empty")]);
  t.is(bytesToHex(reconstruct(empty())), bytesToHex(sha256(ds)));
});

test("lookup distinguishes error (path ends at a subtree) from absent and unknown", (t) => {
  t.is(lookupPath(["a"], specTree).status, "error");
  t.is(lookupPath(["c"], specTree).status, "absent", "an empty subtree is absent");
  t.is(lookupPath(["a", "x", "z"], specTree).status, "absent", "below a leaf is absent");
  t.is(lookupPath(["a", "x"], prune(specTree, [["d"]])).status, "unknown");
});

test("buildHashTree pairs siblings left to right level by level (replica fork shape)", (t) => {
  const tree = buildHashTree(subtree([["k1", value("1")], ["k2", value("2")], ["k3", value("3")]]));
  // 3 children: Fork(Fork(k1, k2), k3) — the odd last child is carried up.
  const expected = fork(fork(labeled("k1", leaf("1")), labeled("k2", leaf("2"))), labeled("k3", leaf("3")));
  t.is(bytesToHex(reconstruct(tree)), bytesToHex(reconstruct(expected)));
  t.is(buildHashTree(subtree([])).kind, "empty");
  // Children are sorted bytewise whatever order they were given in.
  const unsorted = buildHashTree(subtree([["k3", value("3")], ["k1", value("1")], ["k2", value("2")]]));
  t.is(bytesToHex(reconstruct(unsorted)), bytesToHex(reconstruct(expected)));
});

test("well-formedness: labels strictly increase and are not mixed with leaves", (t) => {
  t.false(wellFormed(fork(labeled("b", leaf("1")), labeled("a", leaf("2")))), "decreasing labels");
  t.false(wellFormed(fork(labeled("a", leaf("1")), labeled("a", leaf("2")))), "repeated label");
  t.false(wellFormed(fork(labeled("a", leaf("1")), leaf("x"))), "leaf beside a label");
  t.true(wellFormed(fork(labeled("a", leaf("1")), labeled("ab", leaf("2")))), "a prefix sorts first");
  t.is(decodeHashTree(hexToBytes("8205")), undefined, "unknown node kind");
  t.is(decodeHashTree(hexToBytes("820443010203")), undefined, "pruned hash must be 32 bytes");
});

// ---------------------------------------------------------------------------------------------
// Properties

const labelArb = fc.uint8Array({ minLength: 0, maxLength: 3, max: 3 });
const labeledTreeArb: fc.Arbitrary<LabeledTree> = fc.letrec<{ tree: LabeledTree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.uint8Array({ maxLength: 4 }).map((v) => value(v)),
    fc.uniqueArray(fc.tuple(labelArb, tie("tree")), { maxLength: 5, selector: ([l]) => bytesToHex(l) }).map((cs) => subtree(cs)),
  ),
})).tree;
const pathArb = fc.array(labelArb, { minLength: 0, maxLength: 3 });

/** Paths that exist in the labeled tree, so that properties also exercise found values. */
function pathsOf(tree: LabeledTree, prefix: Uint8Array[] = []): Uint8Array[][] {
  if (tree.kind === "value") return [prefix];
  return [prefix, ...tree.children.flatMap(([l, c]) => pathsOf(c, [...prefix, l]))];
}

test("property: pruning keeps the root hash; witness lookups agree with the full tree on kept paths", (t) => {
  fc.assert(
    fc.property(labeledTreeArb, fc.array(pathArb, { maxLength: 4 }), fc.nat(), (lt, randomPaths, pick) => {
      const full = buildHashTree(lt);
      const existing = pathsOf(lt);
      const paths = [...randomPaths, existing[pick % existing.length] as Uint8Array[]];
      const witness = prune(full, paths);
      if (bytesToHex(reconstruct(witness)) !== bytesToHex(reconstruct(full))) return false;
      if (!wellFormed(witness)) return false;
      return paths.every((p) => show(lookupPath(p, witness)) === show(lookupPath(p, full)));
    }),
    { numRuns: 400, seed: 4 },
  );
  t.pass();
});

test("property: CBOR encoding round-trips and pruning a witness again is stable", (t) => {
  fc.assert(
    fc.property(labeledTreeArb, fc.array(pathArb, { maxLength: 3 }), (lt, paths) => {
      const full = buildHashTree(lt);
      const back = decodeHashTree(encodeHashTree(full));
      if (back === undefined || bytesToHex(reconstruct(back)) !== bytesToHex(reconstruct(full))) return false;
      const w = prune(full, paths);
      return bytesToHex(reconstruct(prune(w, paths))) === bytesToHex(reconstruct(full));
    }),
    { numRuns: 200, seed: 5 },
  );
  t.pass();
});
