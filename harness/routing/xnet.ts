// XNet: how a subnet's block makers obtain certified slices of other subnets' streams
// (ic-protocol.md §3.4). A slice travels as a witness — the source's certified state tree pruned
// to `/streams/<destination>/{header, messages/<index>}` — plus the source subnet's certification
// of the tree's root at some height. The destination checks the threshold signature with the source's
// public key from the registry, rebuilds the root from the witness, and reads the messages out of the
// witness itself: nothing in a slice is believed that the source subnet did not sign.
//
// `XNetClient` is the sans-IO client a replica keeps: it says which slices to request and from
// where to resume, keeps the best verified slice per source subnet, and chooses the slices for a
// block payload. The transport (simulated network here, HTTPS on the IC) lives outside.
import { bytesToHex } from "@noble/hashes/utils.js";
import { Principal } from "@dfinity/principal";
import { assert } from "../assert.ts";
import { sha256Hex } from "../crypto/hash.ts";
import { labeledChildren, lookupPath, lookupSubtree, reconstruct, type HashTree } from "../crypto/hash-tree.ts";
import type { SubnetVerifier } from "../crypto/interfaces.ts";
import { verifyCertification, type Certification } from "../replica/certification.ts";
import type { Registry, SubnetId } from "./registry.ts";
import { decodeStreamHeader, decodeStreamMessage, type StreamMessage, type StreamSlice } from "./streams.ts";

export interface CertifiedSlice {
  /** Content id (goes into block hashes). */
  readonly id: string;
  readonly source: SubnetId;
  readonly destination: SubnetId;
  readonly certification: Certification;
  /** The source's certified tree, pruned to this slice. */
  readonly witness: HashTree;
  readonly sizeBytes: number;
}

/** Path labels of a stream in the certified tree. */
export const subnetLabel = (id: SubnetId): Uint8Array => Principal.fromText(id).toUint8Array();
export function indexLabel(index: bigint): Uint8Array {
  const label = new Uint8Array(8);
  new DataView(label.buffer).setBigUint64(0, index);
  return label;
}
const labelIndex = (label: Uint8Array): bigint => new DataView(label.buffer, label.byteOffset, 8).getBigUint64(0);

export function certifiedSlice(source: SubnetId, destination: SubnetId, certification: Certification, witness: HashTree, messageBytes: number): CertifiedSlice {
  const id = sha256Hex(`xnet-slice|${source}|${destination}|${certification.height}|${certification.hash}|${bytesToHex(reconstruct(witness))}|${messageBytes}`);
  return { id, source, destination, certification, witness, sizeBytes: 160 + messageBytes };
}

export type SliceCheck = { readonly ok: true; readonly slice: StreamSlice } | { readonly ok: false; readonly reason: string };

// Note [verification cache] (consensus/ingress.ts): a slice object is checked once.
const checked = new WeakMap<CertifiedSlice, SliceCheck>();

/**
 * Verifies a certified slice against the source subnet's key and decodes it. The witness must prove
 * a header and consecutive messages; anything else is refused.
 */
export function verifyCertifiedSlice(slice: CertifiedSlice, registry: Registry, verifierOf: (subnet: SubnetId) => SubnetVerifier | undefined, checkSignature = true): SliceCheck {
  // The canary's unchecked verdicts are never cached: they must not leak into a checked verify.
  if (!checkSignature) return checkSlice(slice, registry, verifierOf, false);
  const cached = checked.get(slice);
  if (cached !== undefined) return cached;
  const result = checkSlice(slice, registry, verifierOf, true);
  checked.set(slice, result);
  return result;
}

function checkSlice(slice: CertifiedSlice, registry: Registry, verifierOf: (subnet: SubnetId) => SubnetVerifier | undefined, checkSignature: boolean): SliceCheck {
  const fail = (reason: string): SliceCheck => ({ ok: false, reason });
  if (registry.subnet(slice.source) === undefined) return fail(`unknown source subnet ${slice.source}`);
  if (slice.source === slice.destination) return fail("a subnet does not pull its own stream");
  const verifier = verifierOf(slice.source);
  if (verifier === undefined) return fail(`no key for subnet ${slice.source}`);
  if (bytesToHex(reconstruct(slice.witness)) !== slice.certification.hash) return fail("witness does not match the certified root hash");
  if (checkSignature && !verifyCertification(verifier, slice.certification)) return fail("bad certification signature");
  const base = ["streams", subnetLabel(slice.destination)];
  const header = lookupPath([...base, "header"], slice.witness);
  if (header.status !== "found") return fail(`stream header not proven (${header.status})`);
  let decodedHeader: StreamSlice["header"];
  try {
    decodedHeader = decodeStreamHeader(header.value);
  } catch (error) {
    return fail(`bad stream header: ${(error as Error).message}`);
  }
  const messagesNode = lookupSubtree([...base, "messages"], slice.witness);
  const messages: StreamMessage[] = [];
  let firstIndex = decodedHeader.end;
  if (messagesNode.status === "found") {
    const children = labeledChildren(messagesNode.subtree);
    for (const [k, child] of children.entries()) {
      if (child.label.length !== 8) return fail("stream message label is not a u64");
      const index = labelIndex(child.label);
      if (k === 0) firstIndex = index;
      else if (index !== firstIndex + BigInt(k)) return fail("stream messages are not consecutive");
      if (child.subtree.kind !== "leaf") return fail("stream message is not a leaf");
      try {
        messages.push(decodeStreamMessage(child.subtree.value));
      } catch (error) {
        return fail(`bad stream message ${index}: ${(error as Error).message}`);
      }
    }
  }
  if (firstIndex < decodedHeader.begin || firstIndex + BigInt(messages.length) > decodedHeader.end) return fail("messages outside the stream's bounds");
  return { ok: true, slice: { source: slice.source, destination: slice.destination, header: decodedHeader, firstIndex, messages } };
}

/** Where induction of a source's stream stands on this replica (from its executed state). */
export interface XNetCursor {
  /** Next index of the source's stream to induct (our signals end). */
  readonly nextIndex: bigint;
  /** First message of our stream to the source still held (signals below it are known). */
  readonly ownStreamBegin: bigint;
}

/** What the block maker knows about a source from the blocks not executed yet. */
export interface PendingXNet {
  /** Highest stream index + 1 already in those blocks. */
  readonly nextIndex: bigint;
  readonly signalsEnd: bigint;
}

export class XNetClient {
  private readonly best = new Map<SubnetId, { slice: CertifiedSlice; decoded: StreamSlice }>();

  /**
   * `signatureUnchecked`: the canary xnet-slice-signature-unchecked (tests only) — slices are taken
   * without checking the source subnet's signature on their certification.
   */
  constructor(
    readonly self: SubnetId,
    private readonly registry: Registry,
    private readonly verifierOf: (subnet: SubnetId) => SubnetVerifier | undefined,
    private readonly signatureUnchecked = false,
  ) {}

  /** How many replicas a subnet has (a stream is asked of one of them, chosen at random). */
  replicasOf(subnet: SubnetId): number {
    const record = this.registry.subnet(subnet);
    assert(record !== undefined, `subnet ${subnet} is not in the registry`);
    return record.size;
  }

  /** The other subnets, in registry order: each is asked for its stream to us. */
  sources(): SubnetId[] {
    return this.registry.subnets.map((s) => s.id).filter((id) => id !== this.self);
  }

  verify(slice: CertifiedSlice): SliceCheck {
    if (slice.destination !== this.self) return { ok: false, reason: "slice for another subnet" };
    return verifyCertifiedSlice(slice, this.registry, this.verifierOf, !this.signatureUnchecked);
  }

  /** Decoded slices of a finalized block's payload, ordered by source (the validator checked them). */
  decode(slices: readonly CertifiedSlice[]): StreamSlice[] {
    const out: StreamSlice[] = [];
    for (const s of [...slices].sort((a, b) => (a.source < b.source ? -1 : 1))) {
      const check = this.verify(s);
      if (check.ok) out.push(check.slice);
    }
    return out;
  }

  /** Keeps a verified slice if it is newer than the one held for its source; returns the verdict. */
  offer(slice: CertifiedSlice): SliceCheck {
    const check = this.verify(slice);
    if (!check.ok) return check;
    const held = this.best.get(slice.source);
    if (held === undefined || held.slice.certification.height < slice.certification.height || extendsFurther(check.slice, held.decoded)) {
      this.best.set(slice.source, { slice, decoded: check.slice });
    }
    return check;
  }

  /**
   * Slices for a block: per source, the held slice if it brings messages beyond what the state and
   * the pending blocks already hold (without a gap), or newer signals.
   */
  payload(cursorOf: (source: SubnetId) => XNetCursor, pending: ReadonlyMap<SubnetId, PendingXNet>): CertifiedSlice[] {
    const chosen: CertifiedSlice[] = [];
    for (const source of this.sources()) {
      const held = this.best.get(source);
      if (held === undefined) continue;
      const cursor = cursorOf(source);
      const seen = pending.get(source);
      const next = maxBig(cursor.nextIndex, seen?.nextIndex ?? 0n);
      const s = held.decoded;
      const end = s.firstIndex + BigInt(s.messages.length);
      const bringsMessages = s.firstIndex <= next && end > next;
      const bringsSignals = s.header.signalsEnd > maxBig(cursor.ownStreamBegin, seen?.signalsEnd ?? 0n);
      if (bringsMessages || bringsSignals) chosen.push(held.slice);
    }
    return chosen;
  }

  forget(): void {
    this.best.clear();
  }
}

function extendsFurther(a: StreamSlice, b: StreamSlice): boolean {
  return a.firstIndex + BigInt(a.messages.length) > b.firstIndex + BigInt(b.messages.length);
}

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);
