// Issue 12 item 1 ("bytes at every boundary"): the P2P wire codec (harness/p2p/codec.ts) is exact
// and canonical on every valid value of every item kind, and decoding untrusted bytes gives a typed
// failure — never an exception, never a hang, never an allocation the bytes cannot back.
import test from "ava";
import fc from "fast-check";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  beacon,
  beaconShare,
  catchUpPackage,
  cupShare,
  makeBlock,
  notarization,
  notarizationShare,
  proposalOf,
  signedBeacon,
  signedCup,
  signedNotarization,
  signedProposal,
  type ConsensusArtifact,
} from "../../harness/consensus/artifacts.ts";
import { blsSubnetKeys } from "../../harness/crypto/bls-backend.ts";
import type { SubnetKeys } from "../../harness/crypto/interfaces.ts";
import { simSubnetKeys } from "../../harness/crypto/sim-backend.ts";
import { bundleCodec, decodeArtifact, decodeBundle, decodeWireItem, decodeXNetMessage, encodeArtifact, encodeBundle, encodeWireItem, encodeXNetMessage, readHashTree, writeHashTree } from "../../harness/p2p/codec.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { height, replicaId, timeUs, type HashHex } from "../../harness/types.ts";
import { decodeWith, encodeWith, WireDecodeError, WireWriter } from "../../harness/wire.ts";
import type { Codec } from "../../harness/real/env.ts";
import { certifiedSlice } from "../../harness/routing/xnet.ts";
import type { SubnetId } from "../../harness/routing/registry.ts";
import type { Bundle } from "../../harness/p2p/messages.ts";
import { artifactsByType, bundle, hashTree, itemsByKind, slice, wireItem } from "./arbitraries.ts";

const RUNS = 200;

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

for (const [kind, arbitrary] of Object.entries(itemsByKind)) {
  test(`item 1: a ${kind} item comes back from its bytes exactly`, (t) => {
    fc.assert(
      fc.property(arbitrary, (item) => {
        const decoded = decodeWireItem(encodeWireItem(item));
        t.true(decoded.ok, decoded.ok ? "" : decoded.reason);
        if (decoded.ok) t.deepEqual(decoded.value, item);
      }),
      { numRuns: RUNS },
    );
  });
}

for (const [type, arbitrary] of Object.entries(artifactsByType)) {
  test(`item 1: a ${type} comes back from its bytes exactly, derived fields included`, (t) => {
    fc.assert(
      fc.property(arbitrary, (artifact) => {
        const decoded = decodeArtifact(encodeArtifact(artifact));
        if (!decoded.ok) return t.fail(decoded.reason);
        t.deepEqual(decoded.value, artifact);
        t.is(decoded.value.id, artifact.id);
        t.is(decoded.value.sizeBytes, artifact.sizeBytes);
      }),
      { numRuns: RUNS / 2 },
    );
  });
}

test("item 1: bundles come back exactly, and their model size is recomputed", (t) => {
  fc.assert(
    fc.property(bundle, (b) => {
      const decoded = decodeBundle(encodeBundle(b));
      if (!decoded.ok) return t.fail(decoded.reason);
      t.deepEqual(decoded.value, b);
    }),
    { numRuns: RUNS },
  );
});

test("item 1: XNet requests and certified slices come back exactly", (t) => {
  fc.assert(
    fc.property(slice, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (s, fromIndex) => {
      const response = decodeXNetMessage(encodeXNetMessage({ kind: "xnet-response", slice: s }));
      t.deepEqual(response.ok ? response.value : response.reason, { kind: "xnet-response", slice: s });
      const request = decodeXNetMessage(encodeXNetMessage({ kind: "xnet-request", destination: s.destination, fromIndex }));
      t.deepEqual(request.ok ? request.value : request.reason, { kind: "xnet-request", destination: s.destination, fromIndex });
    }),
    { numRuns: RUNS },
  );
});

test("item 1: hash trees come back exactly", (t) => {
  fc.assert(
    fc.property(hashTree, (tree) => {
      const decoded = decodeWith(encodeWith((w) => writeHashTree(w, tree)), (r) => readHashTree(r), "tree");
      t.deepEqual(decoded.ok ? decoded.value : decoded.reason, tree);
    }),
    { numRuns: RUNS },
  );
});

/** Bytes derived from a valid encoding by one of the ways a peer (or a flipped bit) spoils them. */
const spoiled = (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.tuple(valid, fc.nat(), fc.nat(7)).map(([b, at, bit]) => {
      const out = b.slice();
      if (out.length > 0) out[at % out.length] = (out[at % out.length] as number) ^ (1 << bit);
      return out;
    }),
    fc.tuple(valid, fc.nat()).map(([b, at]) => b.slice(0, at % (b.length + 1))),
    fc.tuple(valid, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([b, at, extra]) => {
      const cut = at % (b.length + 1);
      return new Uint8Array([...b.slice(0, cut), ...extra, ...b.slice(cut)]);
    }),
    fc.tuple(valid, fc.nat(), fc.nat(255)).map(([b, at, value]) => {
      const out = b.slice();
      if (out.length > 0) out[at % out.length] = value;
      return out;
    }),
  );

test("item 1: random and spoiled bytes give a typed failure, never an exception; whatever decodes re-encodes to the same bytes (canonical)", (t) => {
  const bundles = bundle.map(encodeBundle);
  let decodedSome = 0;
  let refused = 0;
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), spoiled(bundles), spoiled(bundles)), (bytes) => {
      const decoded = decodeBundle(bytes);
      if (!decoded.ok) {
        refused++;
        t.regex(decoded.reason, /^bundle: /);
        return;
      }
      decodedSome++;
      t.true(equalBytes(encodeBundle(decoded.value), bytes), "decodes only from its one encoding");
    }),
    { numRuns: 2_000 },
  );
  t.true(refused > 0 && decodedSome > 0, `refused ${refused}, decoded ${decodedSome}`);
});

test("item 1: spoiled artifacts and items: typed failures or canonical values", (t) => {
  fc.assert(
    fc.property(spoiled(wireItem.map(encodeWireItem)), spoiled(fc.oneof(...Object.values(artifactsByType)).map(encodeArtifact)), (item, artifact) => {
      const i = decodeWireItem(item);
      if (i.ok) t.true(equalBytes(encodeWireItem(i.value), item));
      const a = decodeArtifact(artifact);
      if (a.ok) t.true(equalBytes(encodeArtifact(a.value), artifact));
    }),
    { numRuns: 1_000 },
  );
});

test("item 1: a claimed length or count larger than the bytes is refused before anything is allocated", (t) => {
  const claim = (write: (w: WireWriter) => void): Uint8Array => encodeWith(write);
  // "SLW1", then 999,999 items with 4 bytes to back them (and more than the bound).
  const items = decodeBundle(claim((w) => w.u8(0x53).u8(0x4c).u8(0x57).u8(0x31).u32(999_999).u32(0)));
  t.false(items.ok);
  t.regex(items.ok ? "" : items.reason, /cannot fit/);
  const tooMany = decodeBundle(claim((w) => w.u8(0x53).u8(0x4c).u8(0x57).u8(0x31).u32(0xffff_ffff).u32(0)));
  t.regex(tooMany.ok ? "" : tooMany.reason, /exceeds 1000000/);
  // A state response whose data claims 2 GiB.
  const data = decodeWireItem(claim((w) => w.u8(6).uint(1).hex("aa").uint(10).u32(0x7fff_ffff)));
  t.false(data.ok);
  t.regex(data.ok ? "" : data.reason, /bytes needed/);
  // A hash tree nested deeper than the bound: labeled nodes all the way down.
  const deep = claim((w) => {
    for (let i = 0; i < 10_000; i++) w.u8(2).u32(0);
    w.u8(0);
  });
  const tree = decodeWith(deep, (r) => readHashTree(r), "tree");
  t.false(tree.ok);
  t.regex(tree.ok ? "" : tree.reason, /deeper than/);
});

test("item 1: non-canonical encodings of the same value are refused (bool, presence byte, hex sent as text, trailing bytes)", (t) => {
  const status = { kind: "status" as const, status: { finalizedHeight: height(1), notarizedHeight: height(2), beaconHeight: height(2), cupHeight: height(0) } };
  const bytes = encodeWireItem(status);
  t.deepEqual(decodeWireItem(bytes), { ok: true, value: status });
  const presence2 = bytes.slice();
  presence2[presence2.length - 1] = 2;
  t.false(decodeWireItem(presence2).ok, "an optional's presence byte is 0 or 1");
  t.false(decodeWireItem(new Uint8Array([...bytes, 0])).ok, "trailing bytes");
  const share = { kind: "certification-share" as const, share: { height: height(3), hash: "ab" as HashHex, signer: replicaId(1), signature: "" as never } };
  const asText = encodeWith((w) => w.u8(7).uint(3).u8(1).str("ab").u32(1).hex(""));
  t.deepEqual(decodeWireItem(encodeWireItem(share)), { ok: true, value: share });
  const refused = decodeWireItem(asText);
  t.false(refused.ok, "hex sent as text is not the canonical form");
  t.regex(refused.ok ? "" : refused.reason, /not canonical/);
  const summary = encodeArtifact(proposalOf(makeBlock({ parent: "00" as HashHex, height: height(1), rank: 0, maker: replicaId(0), context: { timeUs: timeUs(5) }, isSummary: true, ingress: [] }), "11" as never));
  // The summary flag is the byte after parent (tag 0, length 1, 1 byte), height, rank, maker and time.
  const flagAt = 1 + 5 + 1 + 8 + 4 + 4 + 8;
  t.is(summary[flagAt], 1);
  const notBool = summary.slice();
  notBool[flagAt] = 2;
  t.false(decodeArtifact(notBool).ok, "a bool is 0 or 1");
});

/** Real artifacts of a 4-replica subnet, signed with one backend's keys. */
function signedArtifacts(keys: SubnetKeys): ConsensusArtifact[] {
  const signer = (i: number) => keys.signerFor(replicaId(i));
  const block = makeBlock({ parent: "aa".repeat(32) as HashHex, height: height(7), rank: 0, maker: replicaId(1), context: { timeUs: timeUs(9_000) }, isSummary: false, ingress: [] });
  const proposal = proposalOf(block, signer(1).signBasic(signedProposal(block.height, block.hash)));
  const shares = new Map([0, 1, 2].map((i) => [replicaId(i), signer(i).signMultiShare(signedNotarization(block.height, block.hash))] as const));
  const multi = keys.verifier.aggregateMulti(signedNotarization(block.height, block.hash), shares);
  const beaconMessage = signedBeacon(block.height, "bb".repeat(32) as HashHex);
  const beaconShares = new Map([0, 1].map((i) => [replicaId(i), signer(i).signThresholdShare("low", beaconMessage)] as const));
  const beaconSignature = keys.verifier.combineThreshold("low", beaconMessage, beaconShares);
  if (multi === undefined || beaconSignature === undefined) throw new Error("test keys do not aggregate");
  const randomBeacon = beacon(block.height, "bb".repeat(32) as HashHex, beaconSignature);
  const content = { height: block.height, block, beacon: randomBeacon, stateHash: "cc".repeat(32) as HashHex };
  const cupShares = new Map([0, 1, 2].map((i) => [replicaId(i), signer(i).signThresholdShare("high", signedCup(content))] as const));
  const cupSignature = keys.verifier.combineThreshold("high", signedCup(content), cupShares);
  if (cupSignature === undefined) throw new Error("test keys do not combine");
  return [
    proposal,
    notarizationShare(block.height, block.hash, replicaId(0), shares.get(replicaId(0))!),
    notarization(block.height, block.hash, multi),
    beaconShare(block.height, randomBeacon.parent, replicaId(0), beaconShares.get(replicaId(0))!),
    randomBeacon,
    cupShare(content, replicaId(2), cupShares.get(replicaId(2))!),
    catchUpPackage(content, cupSignature),
  ];
}

for (const backend of ["sim", "bls"] as const) {
  test(`item 1: artifacts signed by the ${backend} backend travel as the signature's bytes and still verify after decoding`, (t) => {
    const keys = backend === "sim" ? simSubnetKeys(4, Rng.fromSeed(3)) : blsSubnetKeys(4, Rng.fromSeed(3));
    for (const artifact of signedArtifacts(keys)) {
      const bytes = encodeArtifact(artifact);
      const decoded = decodeArtifact(bytes);
      if (!decoded.ok) return t.fail(decoded.reason);
      t.deepEqual(decoded.value, artifact);
      const sig = artifact.type === "notarization" || artifact.type === "finalization" ? artifact.multi.signature : artifact.type === "equivocation-proof" ? artifact.signature1 : artifact.signature;
      // sim signatures are 32 bytes, BLS G1 points 48, Ed25519 signatures 64: on the wire as bytes, not hex text.
      t.true(bytesToHex(bytes).includes(sig), `${artifact.type}: the signature's bytes are in the encoding`);
      t.true(sig.length / 2 === (backend === "sim" ? 32 : artifact.type === "proposal" ? 64 : 48), `${artifact.type}: ${sig.length / 2} bytes`);
    }
    const [proposal, share, notarized, , randomBeacon, , cup] = signedArtifacts(keys).map((a) => {
      const d = decodeArtifact(encodeArtifact(a));
      if (!d.ok) throw new Error(d.reason);
      return d.value;
    });
    const v = keys.verifier;
    t.true(proposal?.type === "proposal" && v.verifyBasic(proposal.block.maker, signedProposal(proposal.block.height, proposal.block.hash), proposal.signature));
    t.true(share?.type === "notarization-share" && v.verifyMultiShare(share.signer, signedNotarization(share.height, share.blockHash), share.signature));
    t.true(notarized?.type === "notarization" && v.verifyMulti(signedNotarization(notarized.height, notarized.blockHash), notarized.multi, 3));
    t.true(randomBeacon?.type === "beacon" && v.verifyThreshold("low", signedBeacon(randomBeacon.height, randomBeacon.parent), randomBeacon.signature));
    t.true(cup?.type === "cup" && v.verifyThreshold("high", signedCup(cup.content), cup.signature));
  });
}

test("item 1: a peer cannot make a receiver believe an id, hash or size that does not follow from the content", (t) => {
  const block = makeBlock({ parent: "aa".repeat(32) as HashHex, height: height(4), rank: 1, maker: replicaId(2), context: { timeUs: timeUs(1) }, isSummary: false, ingress: [] });
  const lying = { ...proposalOf(block, "11" as never), id: "P-somebody-else", sizeBytes: 1 << 40, block: { ...block, hash: "ff".repeat(32) as HashHex, payloadBytes: 1 << 30 } };
  const decoded = decodeArtifact(encodeArtifact(lying));
  t.deepEqual(decoded.ok ? decoded.value : decoded.reason, proposalOf(block, "11" as never), "what the receiver holds is what the content says");
  const lyingBeacon = { ...beacon(height(3), "aa" as HashHex, "bb" as never), hash: "cc" as HashHex };
  const b = decodeArtifact(encodeArtifact(lyingBeacon));
  t.is(b.ok && b.value.type === "beacon" ? b.value.hash : "", beacon(height(3), "aa" as HashHex, "bb" as never).hash);
});

test("item 1: the bundle codec plugs into the real-mode Env (harness/real/env.ts Codec): same bytes, and bytes that are no bundle throw WireDecodeError", (t) => {
  const codec: Codec<Bundle> = bundleCodec;
  fc.assert(
    fc.property(bundle, (b) => {
      const bytes = codec.encode(b);
      t.true(equalBytes(bytes, encodeBundle(b)));
      t.deepEqual(codec.decode(bytes), b);
    }),
    { numRuns: 50 },
  );
  t.throws(() => codec.decode(new Uint8Array([1, 2, 3])), { instanceOf: WireDecodeError, message: /bad magic|bytes needed/ });
});

test("item 1: the shortest values (empty strings, hashes and trees) decode: a claimed count is checked against the shortest encoding, not a typical one", (t) => {
  const emptyCertification = { height: height(0), hash: "" as HashHex, signature: "" as never };
  const slices = [0, 1, 2].map(() => certifiedSlice("" as SubnetId, "" as SubnetId, emptyCertification, { kind: "empty" }, 0));
  const ingress = [0, 1].map(() => ({ id: "" as HashHex, sender: "", nonce: 0, body: "", sizeBytes: 0, expiryUs: timeUs(0), signature: "" }));
  const block = makeBlock({ parent: "" as HashHex, height: height(0), rank: 0, maker: replicaId(0), context: { timeUs: timeUs(0) }, isSummary: false, ingress, xnet: slices });
  const proposal = proposalOf(block, "" as never);
  const decoded = decodeArtifact(encodeArtifact(proposal));
  t.deepEqual(decoded.ok ? decoded.value : decoded.reason, proposal);
});
