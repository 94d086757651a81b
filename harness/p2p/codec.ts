// The P2P wire format: canonical bytes (harness/wire.ts) for every item replicas send each other,
// so simulation and real mode carry the same bytes and no two replicas ever share a mutable object.
// The same artifact encoding is the record of the validated pool's log (replica/pool-log.ts).
//
// The wire carries content only. What a receiver can compute from the content — artifact ids, a
// block's hash and payload size, a beacon's hash, an XNet slice's id, the model sizes the
// simulated network charges (`sizeBytes`) — is recomputed on decoding, with the same constructors
// the sender used, so a peer cannot make a receiver believe an id, hash or size that does not
// follow from what it sent. Claims that validation checks against the content (an ingress
// message's id and envelope-derived fields) travel as they are. A state snapshot's `data` is
// bytes produced by its state machine; its `sizeBytes` is the model size the state machine
// claims (not derivable from the bytes for every state machine) and travels too.
//
// Layout: a bundle is "SLW1" · u32 item count · per item (u32 length · item); an item is a tag
// byte and its fields in declaration order (see the writers below).
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
  type ArtifactType,
  type Block,
  type CatchUpContent,
  type ConsensusArtifact,
  type RandomBeacon,
} from "../consensus/artifacts.ts";
import { hash as nodeHash } from "node:crypto";
import { assert } from "../assert.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import type { HashTree } from "../crypto/hash-tree.ts";
import type { MultiSignature, Signature } from "../crypto/interfaces.ts";
import type { Certification, CertificationShare } from "../replica/certification.ts";
import type { StateSnapshot, XNetMessage } from "../replica/interfaces.ts";
import type { SubnetId } from "../routing/registry.ts";
import { certifiedSlice, type CertifiedSlice } from "../routing/xnet.ts";
import type { HashHex, Height, ReplicaId, TimeUs } from "../types.ts";
import { decodeWith, encodeWith, WireDecodeError, WireReader, WireWriter, type Decoded } from "../wire.ts";
import { BUNDLE_OVERHEAD_BYTES, wireItemSize, type Bundle, type StatusReport, type WireItem } from "./messages.ts";
import { registerProcessMemo } from "../memo.ts";

/** Bounds beyond which a peer's item is refused (far above anything an honest replica sends). */
export const WIRE_LIMITS = {
  /** Ingress messages per block (the IC's limit is 1,000). */
  blockIngress: 100_000,
  /** An ingress envelope (the IC's limit is 2 MiB of ingress per message). */
  envelopeBytes: 8 * 1024 * 1024,
  /** Nesting of a hash tree (a stream witness is a few labels and forks deep). */
  treeDepth: 256,
  /** Signers of a multi-signature (replicas of a subnet). */
  signers: 100_000,
  /** XNet slices per block (one per source subnet). */
  blockSlices: 10_000,
} as const;

const BUNDLE_MAGIC = [0x53, 0x4c, 0x57, 0x31] as const; // "SLW1"
const XNET_REQUEST_TAG = 0x51; // "Q"
const XNET_RESPONSE_TAG = 0x52; // "R"

// ---- tags ----------------------------------------------------------------------------------------

export const ARTIFACT_TYPES: readonly ArtifactType[] = [
  "proposal",
  "notarization-share",
  "notarization",
  "finalization-share",
  "finalization",
  "beacon-share",
  "beacon",
  "equivocation-proof",
  "cup-share",
  "cup",
];
const ARTIFACT_TAG = new Map(ARTIFACT_TYPES.map((t, i) => [t, i] as const));

const ITEM_KINDS: readonly WireItem["kind"][] = [
  "artifact",
  "advert",
  "request",
  "ingress",
  "status",
  "state-request",
  "state-response",
  "certification-share",
  "certification",
];
const ITEM_TAG = new Map(ITEM_KINDS.map((k, i) => [k, i] as const));

const tagOf = <K>(tags: ReadonlyMap<K, number>, key: K): number => tags.get(key) as number;

// ---- small pieces --------------------------------------------------------------------------------

const height = (r: WireReader, what = "height"): Height => r.uint(what) as Height;
const replica = (r: WireReader, what = "replica"): ReplicaId => r.u32(what) as ReplicaId;
const hash = (r: WireReader, what = "hash"): HashHex => r.hex(undefined, what) as HashHex;
const signature = (r: WireReader, what = "signature"): Signature => r.hex(undefined, what) as Signature;

function writeMulti(w: WireWriter, m: MultiSignature): void {
  w.list(m.signers, (x, s) => x.u32(s)).hex(m.signature);
}
function readMulti(r: WireReader): MultiSignature {
  const signers = r.list((x) => replica(x, "signer"), { max: WIRE_LIMITS.signers, minItemBytes: 4, what: "signers" });
  return { signers, signature: signature(r) };
}

// ---- ingress -------------------------------------------------------------------------------------

export function writeIngress(w: WireWriter, m: IngressMessage): void {
  w.hex(m.id).str(m.sender).uint(m.nonce).str(m.body).uint(m.sizeBytes).uint(m.expiryUs).hex(m.signature);
  w.optional(m.call, (x, c) => x.str(c.canister).str(c.method).hex(c.argHex));
  w.optional(m.envelope, (x, e) => x.bytes(e));
}

export function readIngress(r: WireReader): IngressMessage {
  const id = hash(r, "ingress id");
  const sender = r.str(undefined, "sender");
  const nonce = r.uint("nonce");
  const body = r.str(undefined, "body");
  const sizeBytes = r.uint("ingress size");
  const expiryUs = r.uint("expiry") as TimeUs;
  const sig = r.hex(undefined, "ingress signature");
  const call = r.optional((x) => ({ canister: x.str(undefined, "canister"), method: x.str(undefined, "method"), argHex: x.hex(undefined, "argument") }), "call");
  const envelope = r.optional((x) => x.bytes(WIRE_LIMITS.envelopeBytes, "envelope"), "envelope");
  return { id, sender, nonce, body, sizeBytes, expiryUs, signature: sig, ...(call === undefined ? {} : { call }), ...(envelope === undefined ? {} : { envelope }) };
}

/** The shortest encodings (empty strings, hex and trees): a claimed count times these must fit in the bytes left. */
const MIN_INGRESS_BYTES = 5 + 4 + 8 + 4 + 8 + 8 + 5 + 1 + 1;
const MIN_SLICE_BYTES = 4 + 4 + (8 + 5 + 5) + 1 + 8;

// ---- hash trees and XNet slices --------------------------------------------------------------------

const TREE_TAGS = ["empty", "fork", "labeled", "leaf", "pruned"] as const;

export function writeHashTree(w: WireWriter, tree: HashTree): void {
  switch (tree.kind) {
    case "empty":
      w.u8(0);
      return;
    case "fork":
      w.u8(1);
      writeHashTree(w, tree.left);
      writeHashTree(w, tree.right);
      return;
    case "labeled":
      w.u8(2).bytes(tree.label);
      writeHashTree(w, tree.subtree);
      return;
    case "leaf":
      w.u8(3).bytes(tree.value);
      return;
    case "pruned":
      w.u8(4).raw(tree.hash);
      return;
  }
}

export function readHashTree(r: WireReader, depth = 0): HashTree {
  if (depth > WIRE_LIMITS.treeDepth) r.fail(`hash tree deeper than ${WIRE_LIMITS.treeDepth}`);
  const tag = r.u8("tree node tag");
  switch (TREE_TAGS[tag]) {
    case "empty":
      return { kind: "empty" };
    case "fork": {
      const left = readHashTree(r, depth + 1);
      return { kind: "fork", left, right: readHashTree(r, depth + 1) };
    }
    case "labeled": {
      const label = r.bytes(undefined, "label");
      return { kind: "labeled", label, subtree: readHashTree(r, depth + 1) };
    }
    case "leaf":
      return { kind: "leaf", value: r.bytes(undefined, "leaf") };
    case "pruned":
      return { kind: "pruned", hash: r.raw(32, "pruned hash") };
    default:
      return r.fail(`unknown tree node tag ${tag}`);
  }
}

export function writeCertification(w: WireWriter, c: Certification): void {
  w.uint(c.height).hex(c.hash).hex(c.signature);
}
export function readCertification(r: WireReader): Certification {
  return { height: height(r), hash: hash(r), signature: signature(r) };
}

/** The slice's model size is 160 bytes plus its messages' (xnet.ts certifiedSlice). */
const SLICE_HEADER_BYTES = 160;

export function writeCertifiedSlice(w: WireWriter, s: CertifiedSlice): void {
  w.str(s.source).str(s.destination);
  writeCertification(w, s.certification);
  writeHashTree(w, s.witness);
  w.uint(s.sizeBytes - SLICE_HEADER_BYTES);
}
export function readCertifiedSlice(r: WireReader): CertifiedSlice {
  const source = r.str(undefined, "source subnet") as SubnetId;
  const destination = r.str(undefined, "destination subnet") as SubnetId;
  const certification = readCertification(r);
  const witness = readHashTree(r);
  return certifiedSlice(source, destination, certification, witness, r.uint("slice message bytes"));
}

// ---- consensus artifacts ---------------------------------------------------------------------------

function writeBlock(w: WireWriter, b: Block): void {
  w.hex(b.parent).uint(b.height).u32(b.rank).u32(b.maker).uint(b.context.timeUs).bool(b.isSummary);
  w.list(b.ingress, writeIngress);
  w.optional(b.xnet, (x, slices) => x.list(slices, writeCertifiedSlice));
}
function readBlock(r: WireReader): Block {
  const parent = hash(r, "parent");
  const h = height(r);
  const rank = r.u32("rank");
  const maker = replica(r, "maker");
  const timeUs = r.uint("block time") as TimeUs;
  const isSummary = r.bool("summary flag");
  const ingress = r.list(readIngress, { max: WIRE_LIMITS.blockIngress, minItemBytes: MIN_INGRESS_BYTES, what: "block ingress" });
  const xnet = r.optional((x) => x.list(readCertifiedSlice, { max: WIRE_LIMITS.blockSlices, minItemBytes: MIN_SLICE_BYTES, what: "block slices" }), "block slices");
  return makeBlock({ parent, height: h, rank, maker, context: { timeUs }, isSummary, ingress, ...(xnet === undefined ? {} : { xnet }) });
}

function writeBeaconBody(w: WireWriter, b: RandomBeacon): void {
  w.uint(b.height).hex(b.parent).hex(b.signature);
}
function readBeaconBody(r: WireReader): RandomBeacon {
  const h = height(r);
  const parent = hash(r, "beacon parent");
  return beacon(h, parent, signature(r));
}

function writeCupContent(w: WireWriter, c: CatchUpContent): void {
  w.uint(c.height);
  writeBlock(w, c.block);
  writeBeaconBody(w, c.beacon);
  w.hex(c.stateHash);
}
function readCupContent(r: WireReader): CatchUpContent {
  const h = height(r);
  const block = readBlock(r);
  const beaconOfCup = readBeaconBody(r);
  return { height: h, block, beacon: beaconOfCup, stateHash: hash(r, "state hash") };
}

export function writeArtifact(w: WireWriter, a: ConsensusArtifact): void {
  w.u8(tagOf(ARTIFACT_TAG, a.type));
  switch (a.type) {
    case "proposal":
      writeBlock(w, a.block);
      w.hex(a.signature);
      return;
    case "notarization-share":
    case "finalization-share":
      w.uint(a.height).hex(a.blockHash).u32(a.signer).hex(a.signature);
      return;
    case "notarization":
    case "finalization":
      w.uint(a.height).hex(a.blockHash);
      writeMulti(w, a.multi);
      return;
    case "beacon-share":
      w.uint(a.height).hex(a.parent).u32(a.signer).hex(a.signature);
      return;
    case "beacon":
      writeBeaconBody(w, a);
      return;
    case "equivocation-proof":
      w.uint(a.height).u32(a.signer).hex(a.hash1).hex(a.signature1).hex(a.hash2).hex(a.signature2);
      return;
    case "cup-share":
      writeCupContent(w, a.content);
      w.u32(a.signer).hex(a.signature);
      return;
    case "cup":
      writeCupContent(w, a.content);
      w.hex(a.signature);
      return;
  }
}

export function readArtifact(r: WireReader): ConsensusArtifact {
  const tag = r.u8("artifact tag");
  const type = ARTIFACT_TYPES[tag];
  switch (type) {
    case "proposal": {
      const block = readBlock(r);
      return proposalOf(block, signature(r));
    }
    case "notarization-share":
    case "finalization-share": {
      const h = height(r);
      const blockHash = hash(r, "block hash");
      const signer = replica(r, "signer");
      const sig = signature(r);
      return type === "notarization-share" ? notarizationShare(h, blockHash, signer, sig) : finalizationShare(h, blockHash, signer, sig);
    }
    case "notarization":
    case "finalization": {
      const h = height(r);
      const blockHash = hash(r, "block hash");
      const multi = readMulti(r);
      return type === "notarization" ? notarization(h, blockHash, multi) : finalization(h, blockHash, multi);
    }
    case "beacon-share": {
      const h = height(r);
      const parent = hash(r, "beacon parent");
      const signer = replica(r, "signer");
      return beaconShare(h, parent, signer, signature(r));
    }
    case "beacon":
      return readBeaconBody(r);
    case "equivocation-proof": {
      const h = height(r);
      const signer = replica(r, "signer");
      const hash1 = hash(r, "hash1");
      const signature1 = signature(r, "signature1");
      const hash2 = hash(r, "hash2");
      return equivocationProofOf(h, signer, hash1, signature1, hash2, signature(r, "signature2"));
    }
    case "cup-share": {
      const content = readCupContent(r);
      const signer = replica(r, "signer");
      return cupShare(content, signer, signature(r));
    }
    case "cup": {
      const content = readCupContent(r);
      return catchUpPackage(content, signature(r));
    }
    default:
      return r.fail(`unknown artifact tag ${tag}`);
  }
}

/**
 * An artifact's bytes, encoded once per artifact object (artifacts are immutable): a replica relays
 * proposals it received and logs every artifact it validates, and recipients of one broadcast hold
 * one interned object (Note [interned items]). The bytes are shared: read them, never change them.
 */
export function encodeArtifact(a: ConsensusArtifact): Uint8Array {
  let bytes = artifactBytes.get(a);
  if (bytes === undefined) {
    bytes = encodeWith((w) => writeArtifact(w, a));
    artifactBytes.set(a, bytes);
  }
  return bytes;
}
const artifactBytes = new WeakMap<ConsensusArtifact, Uint8Array>();
export const decodeArtifact = (bytes: Uint8Array): Decoded<ConsensusArtifact> => decodeWith(bytes, readArtifact, "artifact");

// ---- wire items and bundles --------------------------------------------------------------------------

function writeStatus(w: WireWriter, s: StatusReport): void {
  w.uint(s.finalizedHeight).uint(s.notarizedHeight).uint(s.beaconHeight).uint(s.cupHeight);
  w.optional(s.certifiedHeight, (x, h) => x.uint(h));
}
function readStatus(r: WireReader): StatusReport {
  const finalizedHeight = height(r, "finalized height");
  const notarizedHeight = height(r, "notarized height");
  const beaconHeight = height(r, "beacon height");
  const cupHeight = height(r, "CUP height");
  const certifiedHeight = r.optional((x) => height(x, "certified height"), "certified height");
  return { finalizedHeight, notarizedHeight, beaconHeight, cupHeight, ...(certifiedHeight === undefined ? {} : { certifiedHeight }) };
}

function writeSnapshot(w: WireWriter, s: StateSnapshot): void {
  w.uint(s.height).hex(s.stateHash).uint(s.sizeBytes).bytes(s.data);
}
function readSnapshot(r: WireReader): StateSnapshot {
  const h = height(r);
  const stateHash = hash(r, "state hash");
  const sizeBytes = r.uint("snapshot size");
  return { height: h, stateHash, sizeBytes, data: r.bytes(undefined, "snapshot data") };
}

function writeShare(w: WireWriter, s: CertificationShare): void {
  w.uint(s.height).hex(s.hash).u32(s.signer).hex(s.signature);
}
function readShare(r: WireReader): CertificationShare {
  const h = height(r);
  const shareHash = hash(r);
  const signer = replica(r, "signer");
  return { height: h, hash: shareHash, signer, signature: signature(r) };
}

export function writeWireItem(w: WireWriter, item: WireItem): void {
  w.u8(tagOf(ITEM_TAG, item.kind));
  switch (item.kind) {
    case "artifact":
      writeArtifact(w, item.artifact);
      return;
    case "advert":
      w.str(item.id).u8(tagOf(ARTIFACT_TAG, item.type)).uint(item.height).uint(item.sizeBytes);
      return;
    case "request":
      w.str(item.id).uint(item.height);
      return;
    case "ingress":
      writeIngress(w, item.message);
      return;
    case "status":
      writeStatus(w, item.status);
      return;
    case "state-request":
      w.uint(item.height);
      return;
    case "state-response":
      writeSnapshot(w, item.snapshot);
      return;
    case "certification-share":
      writeShare(w, item.share);
      return;
    case "certification":
      writeCertification(w, item.certification);
      return;
  }
}

export function readWireItem(r: WireReader): WireItem {
  const tag = r.u8("item tag");
  const kind = ITEM_KINDS[tag];
  switch (kind) {
    case "artifact":
      return { kind, artifact: readArtifact(r) };
    case "advert": {
      const id = r.str(undefined, "advert id");
      const typeTag = r.u8("advert type");
      const type = ARTIFACT_TYPES[typeTag] ?? r.fail(`unknown artifact tag ${typeTag}`);
      const h = height(r);
      return { kind, id, type, height: h, sizeBytes: r.uint("advert size") };
    }
    case "request": {
      const id = r.str(undefined, "request id");
      return { kind, id, height: height(r) };
    }
    case "ingress":
      return { kind, message: readIngress(r) };
    case "status":
      return { kind, status: readStatus(r) };
    case "state-request":
      return { kind, height: height(r) };
    case "state-response":
      return { kind, snapshot: readSnapshot(r) };
    case "certification-share":
      return { kind, share: readShare(r) };
    case "certification":
      return { kind, certification: readCertification(r) };
    default:
      return r.fail(`unknown item tag ${tag}`);
  }
}

export const encodeWireItem = (item: WireItem): Uint8Array => encodeWith((w) => writeWireItem(w, item));
export const decodeWireItem = (bytes: Uint8Array): Decoded<WireItem> => decodeWith(bytes, readWireItem, "wire item");

/** The size the simulated network charges for a bundle of these items (messages.ts). */
export function bundleSize(items: readonly WireItem[]): number {
  let sizeBytes = BUNDLE_OVERHEAD_BYTES;
  for (const item of items) sizeBytes += wireItemSize(item);
  return sizeBytes;
}

/**
 * Item encodings by item object: a replica broadcasts one item object to all its peers, so it is
 * encoded once, not once per peer; an artifact item is its tag and the artifact's own bytes
 * (encodeArtifact). Items and what they refer to are immutable once sent.
 */
const encodedItems = new WeakMap<WireItem, Uint8Array>();
function itemBytes(item: WireItem): Uint8Array {
  if (item.kind === "artifact") return encodeArtifact(item.artifact);
  let bytes = encodedItems.get(item);
  if (bytes === undefined) {
    bytes = encodeWireItem(item);
    encodedItems.set(item, bytes);
  }
  return bytes;
}

export function encodeBundle(bundle: Bundle): Uint8Array {
  const frames = bundle.items.map(itemBytes);
  return encodeWith((w) => {
    for (const b of BUNDLE_MAGIC) w.u8(b);
    w.u32(bundle.items.length);
    bundle.items.forEach((item, i) => {
      const frame = frames[i] as Uint8Array;
      // An artifact's frame is its item tag, then the artifact's bytes.
      if (item.kind === "artifact") w.u32(1 + frame.length).u8(ARTIFACT_ITEM_TAG).raw(frame);
      else w.bytes(frame);
    });
  });
}
const ARTIFACT_ITEM_TAG = tagOf(ITEM_TAG, "artifact");

function readBundle(r: WireReader, readFrame: (frame: Uint8Array) => WireItem): Bundle {
  for (const b of BUNDLE_MAGIC) if (r.u8("bundle magic") !== b) r.fail("not a bundle (bad magic)");
  const items = r.list((x) => readFrame(x.take(x.u32("item length"), "item")), { minItemBytes: 5, what: "bundle items" });
  return { items, sizeBytes: bundleSize(items) };
}

function readFrame(frame: Uint8Array): WireItem {
  const r = new WireReader(frame);
  const item = readWireItem(r);
  r.end("item");
  return item;
}

/** The bundle's items, each decoded into objects of its own. */
export const decodeBundle = (bytes: Uint8Array): Decoded<Bundle> => decodeWith(bytes, (r) => readBundle(r, readFrame), "bundle");

// Note [interned items]: decoding every item for every recipient costs what it saves nothing for —
// and defeats the caches that remember a verdict per object (Note [verification cache] in
// consensus/ingress.ts), so every replica would verify every signature again. An item whose
// decoded value holds no byte array can be deep-frozen, and a frozen value can be shared without
// one replica ever changing what another sees: such items are decoded once per distinct bytes
// (SHA-256 of the item's bytes) and the frozen value is handed to every recipient. Items with byte
// arrays (envelopes, snapshots, XNet witnesses: a typed array cannot be frozen) are decoded for
// each recipient. Sharing changes object identity only, which no outcome depends on.
const INTERNED_MAX_ITEMS = 16_384;
const INTERNED_MAX_BYTES = 64 * 1024 * 1024;
const interned = new Map<string, { readonly item: WireItem; readonly bytes: number }>();
/**
 * The keys of `interned` in insertion order, the oldest at `internedOldest` — the order the Map
 * itself iterates in. Evicting through the Map's iterator, one entry per insert once full, walked
 * every entry deleted since the Map last compacted itself before reaching a live one: ~3 % of a
 * fuzz worker's CPU (issue 13 item 4). Keys leave `interned` only here, oldest first, so the two
 * always hold the same keys.
 */
let internedOrder: string[] = [];
let internedOldest = 0;
let internedBytes = 0;
let internedMaxItems = INTERNED_MAX_ITEMS;
registerProcessMemo({
  name: "p2p.internedItems",
  get size() {
    return interned.size;
  },
  get capacity() {
    return internedMaxItems;
  },
  set capacity(items: number) {
    internedMaxItems = items;
    forgetOldInterned();
  },
});

function readFrameInterned(frame: Uint8Array): WireItem {
  const key = nodeHash("sha256", frame, "base64");
  const known = interned.get(key);
  if (known !== undefined) return known.item;
  const item = readFrame(frame);
  if (!freezeIfPlain(item)) return item;
  // Relaying or logging the (frozen, so unchanging) artifact needs these bytes again.
  if (item.kind === "artifact") artifactBytes.set(item.artifact, frame.slice(1));
  interned.set(key, { item, bytes: frame.length });
  internedOrder.push(key);
  internedBytes += frame.length;
  forgetOldInterned();
  return item;
}

function forgetOldInterned(): void {
  while (interned.size > internedMaxItems || internedBytes > INTERNED_MAX_BYTES) {
    const oldest = internedOrder[internedOldest++] as string;
    internedBytes -= (interned.get(oldest) as { readonly bytes: number }).bytes;
    interned.delete(oldest);
  }
  // Drop the forgotten keys' slots once they are the larger part of the array.
  if (internedOldest > 1024 && internedOldest * 2 > internedOrder.length) {
    internedOrder = internedOrder.slice(internedOldest);
    internedOldest = 0;
  }
}

/** The bundle's items decoded, frozen items shared between recipients (Note [interned items]). */
export const decodeBundleShared = (bytes: Uint8Array): Decoded<Bundle> => decodeWith(bytes, (r) => readBundle(r, readFrameInterned), "bundle");

/**
 * A user's ingress message as a replica reads it from the wire: decoded from its bytes like a
 * gossiped one, and so the same frozen object the replica's peers get when it gossips the message.
 */
export function roundTripIngress(message: IngressMessage): IngressMessage {
  const decoded = decodeWith(encodeWireItem({ kind: "ingress", message }), (r) => readFrameInterned(r.take(r.remaining, "ingress")), "ingress");
  assert(decoded.ok && decoded.value.kind === "ingress", `an ingress message survives its codec: ${decoded.ok ? decoded.value.kind : decoded.reason}`);
  return decoded.value.message;
}

/** Deep-freezes a decoded value made of plain objects and arrays; false (nothing frozen) if it holds a byte array. */
function freezeIfPlain(value: unknown): boolean {
  if (holdsBytes(value)) return false;
  deepFreeze(value);
  return true;
}

function holdsBytes(value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  if (ArrayBuffer.isView(value)) return true;
  for (const child of Object.values(value)) if (holdsBytes(child)) return true;
  return false;
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return;
  for (const child of Object.values(value)) deepFreeze(child);
  Object.freeze(value);
}

/**
 * Bundles to bytes and back for a transport that wants a throwing decoder (harness/real/env.ts
 * `Codec`): the bytes that are no bundle throw WireDecodeError with the reason.
 */
export const bundleCodec = {
  encode: encodeBundle,
  decode(bytes: Uint8Array): Bundle {
    const decoded = decodeBundle(bytes);
    if (!decoded.ok) throw new WireDecodeError(decoded.reason);
    return decoded.value;
  },
} as const;

// ---- XNet (between subnets) ------------------------------------------------------------------------

export function encodeXNetMessage(m: XNetMessage): Uint8Array {
  return encodeWith((w) => {
    if (m.kind === "xnet-request") w.u8(XNET_REQUEST_TAG).str(m.destination).u64(m.fromIndex);
    else writeCertifiedSlice(w.u8(XNET_RESPONSE_TAG), m.slice);
  });
}

export function decodeXNetMessage(bytes: Uint8Array): Decoded<XNetMessage> {
  return decodeWith(
    bytes,
    (r): XNetMessage => {
      const tag = r.u8("xnet tag");
      if (tag === XNET_REQUEST_TAG) {
        const destination = r.str(undefined, "destination subnet") as SubnetId;
        return { kind: "xnet-request", destination, fromIndex: r.u64("from index") };
      }
      if (tag === XNET_RESPONSE_TAG) return { kind: "xnet-response", slice: readCertifiedSlice(r) };
      return r.fail(`unknown xnet tag ${tag}`);
    },
    "xnet message",
  );
}
