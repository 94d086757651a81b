// The certified state tree (research/ic-protocol.md §5.1; interface specification "The system
// state tree"; dfinity/ic rs/canonical_state/src/lazy_tree_conversion.rs), as an immutable value
// that a replica updates after each executed height and whose root hash it certifies:
//
//   /canister/<canister id>/{certified_data, controllers, metadata/<name>, module_hash}
//   /request_status/<32-byte message id>/{status, reply | error_code, reject_code, reject_message}
//   /streams/<subnet id>/{header, messages/<u64 big-endian index>}
//   /subnet/<subnet id>/{canister_ranges, node/<node id>/public_key, public_key}
//   /time                                   LEB128 nanoseconds
//
// Each big node (canisters, request statuses, streams, stream messages, subnets) is a persistent
// LabelMap (label-map.ts), so one update plus a new root hash costs O(log n) hashes; nodes of at
// most REPLICA_SHAPE_MAX_CHILDREN children hash exactly as the replica does, bigger ones use a
// crit-bit trie shape that depends only on the key set (label-map.ts explains why that is sound).
// Measured with scripts/bench-certified-tree.ts: 1,000 request-status changes plus the root hash
// of a 300,000-entry tree take about 14 ms, a full rebuild with buildHashTree about 7 s.
//
// Left out (not modelled yet): /api_boundary_nodes, /metadata, /canister_ranges (certification
// version ≥ 21; only agents checking a delegation read it), /subnet/<id>/{metrics, type} and the
// canister timestamps of certification versions ≥ 27.
import { encodeWithSelfDescribedTag } from "@dfinity/cbor";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { encodeCanisterRanges, type CanisterRange } from "../crypto/certificate.ts";
import {
  buildHashTree,
  bytesOf,
  compareLabels,
  leaf,
  lookupPath,
  prune,
  subtree,
  value,
  type HashTree,
  type Label,
  type LabeledTree,
  type LookupResult,
  type Path,
} from "../crypto/hash-tree.ts";
import { encodeUleb128 } from "../crypto/request-id.ts";
import { LabelMap, type CertifiedSubtree } from "./label-map.ts";
import { digestBytes, leafDigest, reconstructDigest, type Digest } from "./tree-hash.ts";

// ---------------------------------------------------------------------------------------------
// What callers put in

/** An ingress message's status (spec "Request status"); "unknown" is never stored. */
export type RequestStatus =
  | { readonly status: "received" }
  | { readonly status: "processing" }
  | { readonly status: "replied"; readonly reply: Uint8Array }
  | {
      readonly status: "rejected";
      readonly rejectCode: number;
      readonly rejectMessage: string;
      /** The IC's error code text, e.g. "IC0503"; shown since certification version 8. */
      readonly errorCode: string;
    }
  | { readonly status: "done" };

export interface CanisterEntry {
  /** Principal bytes of the controllers; stored sorted bytewise (a set, as in the replica). */
  readonly controllers: readonly Uint8Array[];
  /**
   * SHA-256 of the installed module; undefined for an empty canister, whose entry then shows
   * only `controllers` (as the replica does: certified_data, metadata and module_hash belong to
   * the execution state).
   */
  readonly moduleHash?: Uint8Array;
  /** At most 32 bytes, set by ic0.certified_data_set. */
  readonly certifiedData: Uint8Array;
  /** Custom sections `icp:public|private <name>` by name (access control is read_state's job). */
  readonly metadata?: readonly (readonly [string, Uint8Array])[];
}

export interface SubnetEntry {
  /** The subnet's threshold public key in DER (133 bytes for BLS). */
  readonly publicKeyDer: Uint8Array;
  readonly canisterRanges: readonly CanisterRange[];
  /** Own subnet only: node id bytes → Ed25519 DER public key (agents check query signatures). */
  readonly nodes?: readonly (readonly [Uint8Array, Uint8Array])[];
}

export interface StreamEntry {
  /** Encoded stream header (message routing's encoding, opaque here). */
  readonly header: Uint8Array;
  /** Encoded messages by stream index (opaque here); indices distinct. */
  readonly messages: readonly (readonly [bigint, Uint8Array])[];
}

// ---------------------------------------------------------------------------------------------
// Tree nodes

const label = (text: string): Label => utf8ToBytes(text);
const CANISTER = label("canister");
const REQUEST_STATUS = label("request_status");
const STREAMS = label("streams");
const SUBNET = label("subnet");
const TIME = label("time");
const HEADER = label("header");
const MESSAGES = label("messages");

const MESSAGE_ID_BYTES = 32;
const MAX_PRINCIPAL_BYTES = 29;
const MAX_CERTIFIED_DATA_BYTES = 32;

/** A value leaf (stream messages, headers, /time). */
class LeafValue implements CertifiedSubtree {
  constructor(readonly bytes: Uint8Array) {}
  hash(): Digest {
    return leafDigest(this.bytes);
  }
  reveal(): HashTree {
    return leaf(this.bytes);
  }
  witness(): HashTree {
    return leaf(this.bytes); // a leaf proves that nothing lies below it
  }
}

/**
 * A small node with fixed labels, kept as the caller's record and hashed with the replica's
 * shape on demand: 300,000 request statuses would otherwise hold 300,000 hash trees in memory.
 * Its hash is cached by the map entry that holds it.
 */
class RecordValue<T> implements CertifiedSubtree {
  constructor(
    readonly record: T,
    private readonly shape: (record: T) => LabeledTree,
  ) {}
  hash(): Digest {
    return reconstructDigest(this.reveal());
  }
  reveal(): HashTree {
    return buildHashTree(this.shape(this.record));
  }
  witness(paths: readonly Path[]): HashTree {
    return prune(this.reveal(), paths);
  }
}

function requestStatusTree(status: RequestStatus): LabeledTree {
  switch (status.status) {
    case "replied":
      return subtree([["reply", value(status.reply)], ["status", value("replied")]]);
    case "rejected":
      return subtree([
        ["error_code", value(status.errorCode)],
        ["reject_code", value(encodeUleb128(status.rejectCode))],
        ["reject_message", value(status.rejectMessage)],
        ["status", value("rejected")],
      ]);
    case "received":
    case "processing":
    case "done":
      return subtree([["status", value(status.status)]]);
  }
}

function canisterTree(canister: CanisterEntry): LabeledTree {
  const controllers: [string, LabeledTree] = ["controllers", value(encodeControllers(canister.controllers))];
  if (canister.moduleHash === undefined) return subtree([controllers]);
  return subtree([
    ["certified_data", value(canister.certifiedData)],
    controllers,
    ["metadata", subtree((canister.metadata ?? []).map(([name, section]) => [name, value(section)] as const))],
    ["module_hash", value(canister.moduleHash)],
  ]);
}

/** CBOR (tag 55799) array of principal byte strings, sorted: the replica encodes a set. */
export function encodeControllers(controllers: readonly Uint8Array[]): Uint8Array {
  const sorted = [...controllers].sort(compareLabels);
  for (let i = 1; i < sorted.length; i++) {
    assert(compareLabels(sorted[i - 1] as Uint8Array, sorted[i] as Uint8Array) < 0, "duplicate controller");
  }
  return encodeWithSelfDescribedTag(sorted);
}

function subnetTree(subnet: SubnetEntry): LabeledTree {
  const children: [string, LabeledTree][] = [
    ["canister_ranges", value(encodeCanisterRanges(subnet.canisterRanges))],
    ["public_key", value(subnet.publicKeyDer)],
  ];
  if (subnet.nodes !== undefined) {
    children.push(["node", subtree(subnet.nodes.map(([id, key]) => [id, subtree([["public_key", value(key)]])] as const))]);
  }
  return subtree(children);
}

/** A stream's messages may be many: they live in their own LabelMap under a two-label node. */
class StreamValue implements CertifiedSubtree {
  private nodeCache: LabelMap<CertifiedSubtree> | undefined;

  constructor(
    readonly header: LeafValue,
    readonly messages: LabelMap<LeafValue>,
  ) {}

  private node(): LabelMap<CertifiedSubtree> {
    return (this.nodeCache ??= LabelMap.fromEntries<CertifiedSubtree>([
      [HEADER, this.header],
      [MESSAGES, this.messages],
    ]));
  }
  hash(): Digest {
    return this.node().hash();
  }
  reveal(): HashTree {
    return this.node().reveal();
  }
  witness(paths: readonly Path[]): HashTree {
    return this.node().witness(paths);
  }
}

/** A stream index as a label: 8 bytes big-endian. */
export function streamIndexLabel(index: bigint): Label {
  assert(index >= 0n && index < 1n << 64n, `stream index ${index} is not a u64`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, index);
  return out;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a === b || (a.length === b.length && compareLabels(a, b) === 0);

// ---------------------------------------------------------------------------------------------

interface Parts {
  readonly timeNs: bigint;
  readonly canisters: LabelMap<RecordValue<CanisterEntry>>;
  readonly requestStatus: LabelMap<RecordValue<RequestStatus>>;
  readonly streams: LabelMap<StreamValue>;
  readonly subnets: LabelMap<RecordValue<SubnetEntry>>;
}

/**
 * The certified state tree at one height. Immutable: every `with…` returns a new state sharing
 * all unchanged parts, so keeping the trees of recent heights (for read_state and XNet) is cheap.
 */
export class CertifiedState {
  private rootCache: LabelMap<CertifiedSubtree> | undefined;

  private constructor(private readonly parts: Parts) {}

  static empty(): CertifiedState {
    return new CertifiedState({
      timeNs: 0n,
      canisters: LabelMap.empty(),
      requestStatus: LabelMap.empty(),
      streams: LabelMap.empty(),
      subnets: LabelMap.empty(),
    });
  }

  private with(changes: Partial<Parts>): CertifiedState {
    return new CertifiedState({ ...this.parts, ...changes });
  }

  get timeNs(): bigint {
    return this.parts.timeNs;
  }

  get requestStatusCount(): number {
    return this.parts.requestStatus.size;
  }

  get canisterCount(): number {
    return this.parts.canisters.size;
  }

  /** Batch time in ns since the epoch, shown at /time. */
  withTime(timeNs: bigint): CertifiedState {
    assert(timeNs >= 0n, "time is a natural number of nanoseconds");
    return timeNs === this.parts.timeNs ? this : this.with({ timeNs });
  }

  withRequestStatus(messageId: Uint8Array, status: RequestStatus): CertifiedState {
    assert(messageId.length === MESSAGE_ID_BYTES, `a message id has ${MESSAGE_ID_BYTES} bytes, not ${messageId.length}`);
    if (status.status === "rejected") assert(Number.isInteger(status.rejectCode) && status.rejectCode >= 0, "reject codes are naturals");
    return this.with({ requestStatus: this.parts.requestStatus.set(messageId, new RecordValue(status, requestStatusTree)) });
  }

  withoutRequestStatus(messageId: Uint8Array): CertifiedState {
    return this.with({ requestStatus: this.parts.requestStatus.delete(messageId) });
  }

  requestStatusOf(messageId: Uint8Array): RequestStatus | undefined {
    return this.parts.requestStatus.get(messageId)?.record;
  }

  withCanister(canisterId: Uint8Array, canister: CanisterEntry): CertifiedState {
    assert(canisterId.length <= MAX_PRINCIPAL_BYTES, "a canister id is a principal (≤ 29 bytes)");
    assert(canister.certifiedData.length <= MAX_CERTIFIED_DATA_BYTES, "certified data holds at most 32 bytes");
    assert(canister.moduleHash === undefined || canister.moduleHash.length === 32, "a module hash is a SHA-256 digest");
    return this.with({ canisters: this.parts.canisters.set(canisterId, new RecordValue(canister, canisterTree)) });
  }

  withoutCanister(canisterId: Uint8Array): CertifiedState {
    return this.with({ canisters: this.parts.canisters.delete(canisterId) });
  }

  canisterOf(canisterId: Uint8Array): CanisterEntry | undefined {
    return this.parts.canisters.get(canisterId)?.record;
  }

  withSubnet(subnetId: Uint8Array, subnet: SubnetEntry): CertifiedState {
    assert(subnetId.length <= MAX_PRINCIPAL_BYTES, "a subnet id is a principal (≤ 29 bytes)");
    return this.with({ subnets: this.parts.subnets.set(subnetId, new RecordValue(subnet, subnetTree)) });
  }

  withoutSubnet(subnetId: Uint8Array): CertifiedState {
    return this.with({ subnets: this.parts.subnets.delete(subnetId) });
  }

  /**
   * Sets the stream to `subnetId` (never the loopback stream: the replica leaves it out). Only
   * what changed is rehashed: messages below the new first index are dropped in O(log n), a
   * message whose bytes are unchanged keeps its hash, so appending k messages and garbage-
   * collecting a prefix costs O(k·log n) hashes plus an O(m) comparison of the bytes given.
   */
  withStream(subnetId: Uint8Array, stream: StreamEntry): CertifiedState {
    assert(subnetId.length <= MAX_PRINCIPAL_BYTES, "a subnet id is a principal (≤ 29 bytes)");
    const current = this.parts.streams.get(subnetId);
    const header = current !== undefined && sameBytes(current.header.bytes, stream.header) ? current.header : new LeafValue(stream.header);
    const messages = current === undefined ? streamMessages(stream) : updatedStreamMessages(current.messages, stream);
    if (current !== undefined && header === current.header && messages === current.messages) return this;
    return this.with({ streams: this.parts.streams.set(subnetId, new StreamValue(header, messages)) });
  }

  withoutStream(subnetId: Uint8Array): CertifiedState {
    return this.with({ streams: this.parts.streams.delete(subnetId) });
  }

  /** The root node: five labeled children, hashed with the replica's shape. */
  private root(): LabelMap<CertifiedSubtree> {
    return (this.rootCache ??= LabelMap.fromEntries<CertifiedSubtree>([
      [CANISTER, this.parts.canisters],
      [REQUEST_STATUS, this.parts.requestStatus],
      [STREAMS, this.parts.streams],
      [SUBNET, this.parts.subnets],
      [TIME, new LeafValue(encodeUleb128(this.parts.timeNs))],
    ]));
  }

  /** The root hash replicas certify (cached: computing it again is free). */
  rootHash(): Uint8Array {
    return digestBytes(this.root().hash());
  }

  /**
   * A pruned tree proving `paths` with this state's root hash, as read_state returns: /time is
   * always included; a path to a missing label is proven absent by its neighbours' labels; a
   * path ending at a node reveals everything below it.
   */
  witness(paths: readonly (readonly (Label | string)[])[]): HashTree {
    const all: Path[] = [[TIME], ...paths.map((path) => path.map(bytesOf))];
    if (all.some((path) => path.length === 0)) return this.root().reveal();
    return this.root().witness(all);
  }

  /** The spec's lookup_path on this state (Found, Absent or Error; never Unknown). */
  lookup(path: readonly (Label | string)[]): LookupResult {
    return lookupPath(path, this.witness([path]));
  }

  /** The whole tree, nothing pruned: O(n), for tests and debugging. */
  hashTree(): HashTree {
    return this.root().reveal();
  }
}

function streamMessages(stream: StreamEntry): LabelMap<LeafValue> {
  return LabelMap.fromEntries(stream.messages.map(([index, bytes]) => [streamIndexLabel(index), new LeafValue(bytes)] as const));
}

/** The stream's messages as `stream` lists them, reusing every unchanged entry of `current`. */
function updatedStreamMessages(current: LabelMap<LeafValue>, stream: StreamEntry): LabelMap<LeafValue> {
  const wanted = new Set(stream.messages.map(([index]) => index));
  assert(wanted.size === stream.messages.length, "duplicate stream index");
  if (wanted.size === 0) return current.size === 0 ? current : LabelMap.empty();
  let lowest = stream.messages[0]?.[0] as bigint;
  for (const index of wanted) if (index < lowest) lowest = index;
  let messages = current.deleteBelow(streamIndexLabel(lowest));
  for (const [index, bytes] of stream.messages) {
    const key = streamIndexLabel(index);
    const held = messages.get(key);
    if (held === undefined || !sameBytes(held.bytes, bytes)) messages = messages.set(key, new LeafValue(bytes));
  }
  if (messages.size === wanted.size) return messages; // the usual case: nothing beyond the new end
  for (const key of [...messages.keys()]) {
    if (!wanted.has(new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0))) messages = messages.delete(key);
  }
  assert(messages.size === wanted.size, "the stream holds exactly the messages given");
  return messages;
}
