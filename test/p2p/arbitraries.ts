// fast-check generators of valid values of every wire item kind (harness/p2p/codec.ts), built with
// the constructors the replicas use, so derived fields (ids, hashes, sizes) are what they would be.
import fc from "fast-check";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  beacon,
  beaconShare,
  catchUpPackage,
  cupShare,
  equivocationProofOf,
  finalization,
  finalizationShare,
  makeBlock,
  notarization,
  notarizationShare,
  proposalOf,
  type Block,
  type CatchUpContent,
  type ConsensusArtifact,
} from "../../harness/consensus/artifacts.ts";
import type { IngressMessage } from "../../harness/consensus/ingress.ts";
import type { HashTree } from "../../harness/crypto/hash-tree.ts";
import type { Signature } from "../../harness/crypto/interfaces.ts";
import { ARTIFACT_TYPES, bundleSize } from "../../harness/p2p/codec.ts";
import type { Bundle, StatusReport, WireItem } from "../../harness/p2p/messages.ts";
import type { Certification, CertificationShare } from "../../harness/replica/certification.ts";
import type { StateSnapshot } from "../../harness/replica/interfaces.ts";
import type { SubnetId } from "../../harness/routing/registry.ts";
import { certifiedSlice, type CertifiedSlice } from "../../harness/routing/xnet.ts";
import type { HashHex, Height, ReplicaId, TimeUs } from "../../harness/types.ts";

const hexOf = (length: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: length, maxLength: length }).map(bytesToHex);
/** Any text: full Unicode, hex-looking text included (it must travel as bytes and come back equal). */
const text = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "binary-ascii", maxLength: 40 }), hexOf(3), fc.constant(""));

export const hashHex: fc.Arbitrary<HashHex> = fc.oneof({ weight: 4, arbitrary: hexOf(32) }, { weight: 1, arbitrary: text }).map((h) => h as HashHex);
/**
 * Signatures in both backends' formats (crypto/sim-backend.ts: 32-byte keyed SHA-256; crypto/
 * bls-backend.ts: 48-byte BLS12-381 G1 points and 64-byte Ed25519 signatures), and text a forger
 * might put there.
 */
export const signature: fc.Arbitrary<Signature> = fc.oneof(hexOf(32), hexOf(48), hexOf(64), fc.constant(""), text).map((s) => s as Signature);
export const heightArb: fc.Arbitrary<Height> = fc.oneof(fc.nat(1_000), fc.maxSafeNat()).map((h) => h as Height);
const replica: fc.Arbitrary<ReplicaId> = fc.oneof(fc.nat(40), fc.nat(0xffff_ffff)).map((r) => r as ReplicaId);
const time: fc.Arbitrary<TimeUs> = fc.maxSafeNat().map((t) => t as TimeUs);

export const ingress: fc.Arbitrary<IngressMessage> = fc
  .record({
    id: hashHex,
    sender: text,
    nonce: fc.maxSafeNat(),
    body: text,
    sizeBytes: fc.oneof(fc.nat(4096), fc.maxSafeNat()),
    expiryUs: time,
    signature: fc.oneof(hexOf(32), fc.constant(""), text),
    call: fc.option(fc.record({ canister: text, method: text, argHex: fc.oneof(hexOf(10), text) }), { nil: undefined }),
    envelope: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
  })
  .map(({ call, envelope, ...rest }) => ({ ...rest, ...(call === undefined ? {} : { call }), ...(envelope === undefined ? {} : { envelope }) }));

export const hashTree: fc.Arbitrary<HashTree> = fc.letrec<{ tree: HashTree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant<HashTree>({ kind: "empty" }),
    fc.uint8Array({ maxLength: 16 }).map((value): HashTree => ({ kind: "leaf", value })),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((hash): HashTree => ({ kind: "pruned", hash })),
    fc.record({ label: fc.uint8Array({ maxLength: 12 }), subtree: tie("tree") }).map(({ label, subtree }): HashTree => ({ kind: "labeled", label, subtree })),
    fc.record({ left: tie("tree"), right: tie("tree") }).map(({ left, right }): HashTree => ({ kind: "fork", left, right })),
  ),
})).tree;

export const certification: fc.Arbitrary<Certification> = fc.record({ height: heightArb, hash: hashHex, signature });
export const certificationShare: fc.Arbitrary<CertificationShare> = fc.record({ height: heightArb, hash: hashHex, signer: replica, signature });

export const slice: fc.Arbitrary<CertifiedSlice> = fc
  .record({ source: text, destination: text, certification, witness: hashTree, messageBytes: fc.nat(1_000_000) })
  .map((s) => certifiedSlice(s.source as SubnetId, s.destination as SubnetId, s.certification, s.witness, s.messageBytes));

export const block: fc.Arbitrary<Block> = fc
  .record({
    parent: hashHex,
    height: heightArb,
    rank: fc.nat(0xffff_ffff),
    maker: replica,
    timeUs: time,
    isSummary: fc.boolean(),
    ingress: fc.array(ingress, { maxLength: 3 }),
    xnet: fc.option(fc.array(slice, { maxLength: 2 }), { nil: undefined }),
  })
  // Model sizes stay safe integers (a real block's are bounded by the IC's limits).
  .filter((b) => [...b.ingress, ...(b.xnet ?? [])].reduce((n, x) => n + x.sizeBytes, 0) <= Number.MAX_SAFE_INTEGER - 1024)
  .map(({ timeUs, xnet, ...rest }) => makeBlock({ ...rest, context: { timeUs }, ...(xnet === undefined ? {} : { xnet }) }));

const cupContent: fc.Arbitrary<CatchUpContent> = fc
  .record({ height: heightArb, block, beaconHeight: heightArb, beaconParent: hashHex, beaconSignature: signature, stateHash: hashHex })
  .map((c) => ({ height: c.height, block: c.block, beacon: beacon(c.beaconHeight, c.beaconParent, c.beaconSignature), stateHash: c.stateHash }));

const multi = fc.record({ signers: fc.array(replica, { maxLength: 13 }), signature });

/** One arbitrary per artifact type, in codec.ts ARTIFACT_TYPES order. */
export const artifactsByType: Readonly<Record<ConsensusArtifact["type"], fc.Arbitrary<ConsensusArtifact>>> = {
  proposal: fc.tuple(block, signature).map(([b, s]) => proposalOf(b, s)),
  "notarization-share": fc.tuple(heightArb, hashHex, replica, signature).map(([h, x, r, s]) => notarizationShare(h, x, r, s)),
  notarization: fc.tuple(heightArb, hashHex, multi).map(([h, x, m]) => notarization(h, x, m)),
  "finalization-share": fc.tuple(heightArb, hashHex, replica, signature).map(([h, x, r, s]) => finalizationShare(h, x, r, s)),
  finalization: fc.tuple(heightArb, hashHex, multi).map(([h, x, m]) => finalization(h, x, m)),
  "beacon-share": fc.tuple(heightArb, hashHex, replica, signature).map(([h, p, r, s]) => beaconShare(h, p, r, s)),
  beacon: fc.tuple(heightArb, hashHex, signature).map(([h, p, s]) => beacon(h, p, s)),
  "equivocation-proof": fc.tuple(heightArb, replica, hashHex, signature, hashHex, signature).map(([h, r, a, sa, b, sb]) => equivocationProofOf(h, r, a, sa, b, sb)),
  "cup-share": fc.tuple(cupContent, replica, signature).map(([c, r, s]) => cupShare(c, r, s)),
  cup: fc.tuple(cupContent, signature).map(([c, s]) => catchUpPackage(c, s)),
};
export const artifact: fc.Arbitrary<ConsensusArtifact> = fc.oneof(...Object.values(artifactsByType));

const status: fc.Arbitrary<StatusReport> = fc
  .record({ finalizedHeight: heightArb, notarizedHeight: heightArb, beaconHeight: heightArb, cupHeight: heightArb, certifiedHeight: fc.option(heightArb, { nil: undefined }) })
  .map(({ certifiedHeight, ...rest }) => ({ ...rest, ...(certifiedHeight === undefined ? {} : { certifiedHeight }) }));

const snapshot: fc.Arbitrary<StateSnapshot> = fc.record({ height: heightArb, stateHash: hashHex, sizeBytes: fc.maxSafeNat(), data: fc.uint8Array({ maxLength: 256 }) });

/** One arbitrary per wire item kind. */
export const itemsByKind: Readonly<Record<WireItem["kind"], fc.Arbitrary<WireItem>>> = {
  artifact: artifact.map((a): WireItem => ({ kind: "artifact", artifact: a })),
  advert: fc.record({ id: text, type: fc.constantFrom(...ARTIFACT_TYPES), height: heightArb, sizeBytes: fc.maxSafeNat() }).map((a): WireItem => ({ kind: "advert", ...a })),
  request: fc.record({ id: text, height: heightArb }).map((r): WireItem => ({ kind: "request", ...r })),
  ingress: ingress.map((message): WireItem => ({ kind: "ingress", message })),
  status: status.map((s): WireItem => ({ kind: "status", status: s })),
  "state-request": heightArb.map((h): WireItem => ({ kind: "state-request", height: h })),
  "state-response": snapshot.map((s): WireItem => ({ kind: "state-response", snapshot: s })),
  "certification-share": certificationShare.map((share): WireItem => ({ kind: "certification-share", share })),
  certification: certification.map((c): WireItem => ({ kind: "certification", certification: c })),
};
export const wireItem: fc.Arbitrary<WireItem> = fc.oneof(...Object.values(itemsByKind));

export const bundle: fc.Arbitrary<Bundle> = fc
  .array(wireItem, { maxLength: 5 })
  // The bundle's model size (sum of the items') stays a safe integer, as any real bundle's does.
  .filter((items) => bundleSize(items) <= Number.MAX_SAFE_INTEGER)
  .map((items) => ({ items, sizeBytes: bundleSize(items) }));
