// The placeholder replicated state machine behind the MessageRouting contract: a key-value store
// driven by ingress bodies (`put <key> <value>`, `get <key>`, `append <key> <text>`), with an
// ingress history and checkpoints at summary heights. The Wasm execution environment replaces it
// (issue 3/4) behind the same interface.
//
// The state hash is incremental: XOR of SHA-256(key=value) over entries (keys are unique, so XOR
// is a faithful set hash) and of the ingress-history entries; a write costs one hash, not a
// rehash of the store.
//
// Honest replicas share batches (harness/replica/shared-execution.ts): the first to apply a batch
// on a state records what it wrote to its store and history and the set hashes after it
// (KvBatchOutcome); a later replica on the same state sets those values in its own store, replays
// the history operations on its own history and takes the set hashes, without parsing a command
// or hashing an entry. Checkpoints are written to each replica's own disk either way.
import { createHash } from "node:crypto";
import { IngressHistory, ingressHistoryDataOf, type IngressHistoryData } from "./ingress-history.ts";
import { HistoryJournal, replayHistoryOps } from "./history-journal.ts";
import { executionKey } from "./batch-key.ts";
import type { ExecutionSharing, SharedOutcome } from "./shared-execution.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { HashInput } from "../hash-input.ts";
import { BoundedMap } from "../memo.ts";
import { assert } from "../assert.ts";
import type { Disk } from "../sim/env.ts";
import { Blob, decodeValue, encodeValue, readRecord, writeRecord } from "../sim/disk-records.ts";
import { height, type HashHex, type Height } from "../types.ts";
import type { Batch, IngressStatus, MessageRouting, StateSnapshot } from "./interfaces.ts";

/** Lets a fault injector corrupt this replica's state transition (divergent replica). */
export type TransitionCorruptor = (h: Height, key: string, value: string) => string;

export interface KvMachineOptions {
  /** The canary skip-checksum: a restart adopts its checkpoint without verifying it. */
  readonly skipChecksums?: boolean;
  /** Fault injection (divergent replica): rewrites the values this replica stores. */
  readonly corruptor?: TransitionCorruptor;
  /**
   * The replica's handle on its subnet's shared batches. Used only by a replica without a
   * corruptor or canary (such a replica applies every batch itself, and only counts).
   */
  readonly sharing?: ExecutionSharing<KvBatchOutcome>;
}

/** One replica's application of a batch, as another replica on the same state adopts it. */
export interface KvBatchOutcome extends SharedOutcome {
  /** [key, stored value] per write, in order (a key written twice appears twice). */
  readonly writes: readonly (readonly [string, string])[];
  /** The store's set hash after the batch (32 bytes; adopters copy it). */
  readonly entriesDigest: Uint8Array;
  /** The ingress history's digest after the batch (32 bytes; adopters copy it). */
  readonly historyDigest: Uint8Array;
}

/**
 * The sharing key's configuration part: nothing besides the state and the batch steers a
 * key-value transition (checkpoints follow the batch's own flag, and every replica writes its
 * own), so it only names the machine.
 */
const KV_CONFIGURATION = "kv-state-machine v1";

/**
 * The state as data. A snapshot's bytes (`StateSnapshot.data`) are its encodeValue text — the
 * same bytes as the checkpoint's pages one after the other — and `sizeBytes` is their length.
 */
interface KvSnapshotData {
  readonly entries: readonly (readonly [string, string])[];
  readonly history: IngressHistoryData;
}

/**
 * A checkpoint on the disk (`checkpoint/<h>`, a checksummed record): the snapshot's data is
 * encoded and cut into pages of at most 4 KiB stored under their SHA-256 (`pages/<hash>`), shared
 * between checkpoints that hold the same bytes.
 */
interface KvCheckpointRecord {
  readonly format: "subnetlab-kv-checkpoint-v1";
  readonly height: number;
  readonly stateHash: HashHex;
  readonly sizeBytes: number;
  readonly pages: readonly string[];
}

const STATE_HASH_KEEP = 512;
const CHECKPOINTS_KEPT = 3;
const PAGE_BYTES = 4096;

export class KvStateMachine implements MessageRouting {
  private entries = new Map<string, string>();
  private history = new IngressHistory();
  private entriesAcc = new Uint8Array(32);
  private nextHeight: Height = height(1);
  private readonly stateHashes = new Map<Height, HashHex>();
  private readonly corruptor: TransitionCorruptor | undefined;
  /** The handle this replica shares batches through; undefined: it applies every batch itself. */
  private readonly sharing: ExecutionSharing<KvBatchOutcome> | undefined;
  /** The current batch's writes, while it is applied (adopters set the same values). */
  private writes: [string, string][] = [];

  constructor(private readonly disk: Disk, private readonly options: KvMachineOptions = {}) {
    this.corruptor = options.corruptor;
    const honest = options.corruptor === undefined && options.skipChecksums !== true;
    this.sharing = options.sharing?.enabled === true && honest ? options.sharing : undefined;
    this.sharing?.join();
  }

  /** Set when the checkpoint restored after a restart did not match its recorded hash. */
  restoredMismatch: { readonly height: Height; readonly recorded: HashHex; readonly actual: HashHex } | undefined;

  /** Why checkpoints on the disk were passed over at the last restart (the replica traces them). */
  recovery: readonly string[] = [];

  /**
   * Restores the newest checkpoint on disk that verifies (after a crash): record checksum, page
   * hashes and the state hash recomputed from the data; older ones when the newest does not;
   * genesis when none does (the replica then state-syncs the CUP's checkpoint from a peer).
   * `skipChecksums` is the canary skip-checksum: the newest readable checkpoint is taken as it is.
   */
  static fromDisk<M extends KvStateMachine>(this: new (disk: Disk, options?: KvMachineOptions) => M, disk: Disk, options: KvMachineOptions = {}): M {
    const machine = new this(disk, options);
    const unchecked = options.skipChecksums === true;
    const recovery: string[] = [];
    for (const key of disk.keys("checkpoint/").reverse()) {
      const read = readKvCheckpoint(disk, key, unchecked);
      if (!read.ok) {
        recovery.push(read.reason);
        continue;
      }
      let mismatch: KvStateMachine["restoredMismatch"];
      try {
        mismatch = machine.restoreCheckpoint(read.snapshot, read.data);
      } catch (error) {
        // Only an unchecked (canary) read gets here: verified data always loads.
        recovery.push(`${key}: snapshot does not load (${error instanceof Error ? error.message : String(error)})`);
        machine.reset();
        continue;
      }
      if (mismatch === undefined || unchecked) break;
      recovery.push(`${key}: state hash ${mismatch.actual.slice(0, 16)} does not match the recorded ${mismatch.recorded.slice(0, 16)}`);
      machine.reset();
    }
    machine.recovery = recovery;
    return machine;
  }

  private reset(): void {
    this.loadData({ entries: [], history: [] });
    this.nextHeight = height(1);
    this.stateHashes.clear();
    this.restoredMismatch = undefined;
  }

  /**
   * A restarted replica's own checkpoint. One that does not match its recorded hash is refused by
   * `fromDisk` — except under the canary skip-checksum, where the replica carries on from what it
   * read under the hash of that, so the state-agreement check names it as divergent.
   */
  private restoreCheckpoint(snapshot: StateSnapshot, data: KvSnapshotData): KvStateMachine["restoredMismatch"] {
    this.loadData(data);
    this.nextHeight = height(snapshot.height + 1);
    this.stateHashes.clear();
    const actual = this.computeHash(snapshot.height);
    this.stateHashes.set(snapshot.height, actual);
    if (actual !== snapshot.stateHash) this.restoredMismatch = { height: snapshot.height, recorded: snapshot.stateHash, actual };
    return this.restoredMismatch;
  }

  expectedBatchHeight(): Height {
    return this.nextHeight;
  }

  deliverBatch(batch: Batch): void {
    assert(batch.height === this.nextHeight, `batch ${batch.height} delivered, expected ${this.nextHeight}`);
    const sharing = this.sharing;
    if (sharing === undefined) {
      this.options.sharing?.countExecution();
      this.applyBatch(batch);
      return;
    }
    const key = executionKey(this.preStateHash(batch.height), batch, KV_CONFIGURATION);
    sharing.deliver(batch.height, key, () => this.applyBatch(batch), (outcome) => this.adoptOutcome(batch, outcome));
  }

  /** Applies a batch itself: every command parsed and run, every change hashed. */
  private applyBatch(batch: Batch): KvBatchOutcome {
    const journal = new HistoryJournal(this.history);
    this.writes = [];
    journal.prune(batch.timeNs);
    for (const message of batch.ingress) {
      // Induction drops a message already in the ingress history, as the IC's does: consensus
      // should never finalize one, and the validity checker reports it if it does.
      if (this.history.has(message.id)) continue;
      const reply = this.execute(batch.height, message.body);
      journal.set(message.id, { status: "completed", height: batch.height, reply }, batch.timeNs);
    }
    const stateHash = this.computeHash(batch.height);
    this.finishHeight(batch, stateHash);
    return { height: batch.height, stateHash, historyOps: journal.ops, writes: this.writes, entriesDigest: this.entriesAcc.slice(), historyDigest: this.history.digestBytes() };
  }

  /**
   * Takes another replica's application of this batch on the same state: its values set in this
   * replica's own store, its history operations replayed on this replica's own history, the set
   * hashes and the state hash as they came out there.
   */
  private adoptOutcome(batch: Batch, outcome: KvBatchOutcome): void {
    replayHistoryOps(this.history, outcome.historyOps, outcome.historyDigest);
    for (const [key, value] of outcome.writes) this.entries.set(key, value);
    this.entriesAcc.set(outcome.entriesDigest);
    this.finishHeight(batch, outcome.stateHash);
  }

  /** Keeps the state hash of the batch's height, moves on, and at summary heights writes the checkpoint. */
  private finishHeight(batch: Batch, stateHash: HashHex): void {
    this.stateHashes.set(batch.height, stateHash);
    this.stateHashes.delete((batch.height - STATE_HASH_KEEP) as Height);
    this.nextHeight = height(batch.height + 1);
    if (batch.requiresFullStateHash) this.writeCheckpoint(batch.height, stateHash);
  }

  /** The state hash before the batch at h (the sharing key's first part); computed at genesis. */
  private preStateHash(h: Height): HashHex {
    const previous = height(h - 1);
    return this.stateHashes.get(previous) ?? this.computeHash(previous);
  }

  stateHashAt(h: Height): HashHex | undefined {
    return this.stateHashes.get(h);
  }

  /** The checkpoint at h read back and verified (a rotten one is not served to peers). */
  checkpointAt(h: Height): StateSnapshot | undefined {
    if (!this.disk.has(checkpointKey(h))) return undefined;
    const read = readKvCheckpoint(this.disk, checkpointKey(h), false);
    return read.ok ? read.snapshot : undefined;
  }

  installSnapshot(snapshot: StateSnapshot): void {
    assert(this.verifySnapshot(snapshot), `snapshot at ${snapshot.height} does not match its hash`);
    const decoded = decodeKvSnapshot(snapshot.data);
    assert(decoded.ok, "a verified snapshot decodes");
    const data = decoded.value;
    this.loadData(data);
    this.nextHeight = height(snapshot.height + 1);
    this.stateHashes.clear();
    this.stateHashes.set(snapshot.height, snapshot.stateHash);
    // Written as this replica's own checkpoint, so that a restart finds it.
    this.storeCheckpoint(snapshot.height, snapshot.stateHash, () => data);
  }

  /** A peer's snapshot: its bytes must decode (strictly: see decodeKvSnapshot) to a state of the claimed hash. */
  verifySnapshot(snapshot: StateSnapshot): boolean {
    const decoded = decodeKvSnapshot(snapshot.data);
    if (!decoded.ok) return false;
    const probe = new KvStateMachine(this.disk);
    probe.loadData(decoded.value);
    return probe.computeHash(snapshot.height) === snapshot.stateHash;
  }

  ingressStatus(id: HashHex): IngressStatus | undefined {
    return this.history.status(id);
  }

  /** The whole state as sorted data, for state diffs (`subnetlab diff`). */
  inspect(): { entries: [string, string][]; history: [string, string][] } {
    return {
      entries: [...this.entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
      history: this.history.describe(),
    };
  }

  get entryCount(): number {
    return this.entries.size;
  }

  read(key: string): string | undefined {
    return this.entries.get(key);
  }

  // ---- internals -----------------------------------------------------------------------------------

  /**
   * `op key value…`, split at the first two spaces (as split(" ") and a join of the rest would,
   * without the arrays). Protected: a test's subclass plants a bug here that the lab does not know
   * about (the audit of shared batches must catch it).
   */
  protected execute(h: Height, body: string): string {
    const opEnd = body.indexOf(" ");
    if (opEnd < 0) return "error: missing key";
    const op = body.slice(0, opEnd);
    const keyEnd = body.indexOf(" ", opEnd + 1);
    const key = keyEnd < 0 ? body.slice(opEnd + 1) : body.slice(opEnd + 1, keyEnd);
    const value = keyEnd < 0 ? "" : body.slice(keyEnd + 1);
    switch (op) {
      case "get":
        return this.entries.get(key) ?? "";
      case "put":
        return this.write(h, key, value);
      case "append":
        return this.write(h, key, (this.entries.get(key) ?? "") + value);
      default:
        return `error: unknown operation ${op}`;
    }
  }

  private write(h: Height, key: string, value: string): string {
    const previous = this.entries.get(key);
    const stored = this.corruptor === undefined ? value : this.corruptor(h, key, value);
    if (previous !== undefined) xorEntryDigest(this.entriesAcc, key, previous);
    xorEntryDigest(this.entriesAcc, key, stored);
    this.entries.set(key, stored);
    this.writes.push([key, stored]);
    return previous ?? "";
  }

  private computeHash(h: Height): HashHex {
    const w = scratch.reset().text("kv-state").f64(h).text(bytesToHex(this.entriesAcc)).text(this.history.digestHex()).f64(this.entries.size).f64(this.history.size);
    return w.sha256Hex() as HashHex;
  }

  private loadData(data: KvSnapshotData): void {
    this.entries = new Map();
    this.entriesAcc = new Uint8Array(32);
    for (const [k, v] of data.entries) {
      this.entries.set(k, v);
      xorEntryDigest(this.entriesAcc, k, v);
    }
    this.history = IngressHistory.fromData(data.history);
  }

  /** The data is built only when no replica of this process has encoded this state yet. */
  private writeCheckpoint(h: Height, stateHash: HashHex): void {
    this.storeCheckpoint(h, stateHash, () => ({
      entries: [...this.entries].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      history: this.history.toData(),
    }));
  }

  /**
   * Pages first (synced), then the record (synced): a crash in between leaves pages nobody
   * references, never a record without its pages. Keeps the newest few checkpoints: the latest
   * serves state sync for the current CUP, older ones are the fallback a restart needs if the
   * newest CUP was not reached by every replica yet (or the newest rotted).
   */
  private storeCheckpoint(h: Height, stateHash: HashHex, data: () => KvSnapshotData): void {
    const encoded = encodedCheckpoint(h, stateHash, data);
    for (const page of encoded.pages) if (!this.disk.has(pageKey(page.hash))) this.disk.writeBlobs(pageKey(page.hash), [page.blob]);
    this.disk.sync();
    const record: KvCheckpointRecord = { format: "subnetlab-kv-checkpoint-v1", height: h, stateHash, sizeBytes: encoded.sizeBytes, pages: encoded.pages.map((p) => p.hash) };
    writeRecord(this.disk, checkpointKey(h), record);
    this.pruneCheckpoints();
    this.disk.sync();
  }

  private pruneCheckpoints(): void {
    const keys = this.disk.keys("checkpoint/");
    const kept = keys.slice(Math.max(0, keys.length - CHECKPOINTS_KEPT));
    for (const key of keys.slice(0, keys.length - kept.length)) this.disk.remove(key);
    const live = new Set<string>();
    for (const key of kept) {
      const read = readRecord<KvCheckpointRecord>(this.disk, key);
      if (read?.ok === true) for (const p of read.value.pages) live.add(pageKey(p));
    }
    for (const key of this.disk.keys("pages/")) if (!live.has(key)) this.disk.remove(key);
  }
}

const checkpointKey = (h: Height): string => `checkpoint/${String(h).padStart(10, "0")}`;

interface EncodedCheckpoint {
  readonly sizeBytes: number;
  readonly pages: readonly { readonly hash: string; readonly blob: Blob }[];
}

/**
 * A checkpoint's encoded pages, by height and state hash: every replica with that state writes the
 * same bytes, so they are encoded and hashed once per process (a few recent ones are kept), and
 * each page is an immutable blob every disk can hold without a copy of its own. The state hash
 * covers every entry and the ingress history, so equal keys mean equal data.
 */
const recentEncodings = new BoundedMap<string, EncodedCheckpoint>("kvCheckpointEncodings", 4);
function encodedCheckpoint(h: Height, stateHash: HashHex, data: () => KvSnapshotData): EncodedCheckpoint {
  const key = `${h}|${stateHash}`;
  const known = recentEncodings.get(key);
  if (known !== undefined) return known;
  const bytes = encodeKvSnapshot(data());
  const pages: { hash: string; blob: Blob }[] = [];
  for (let offset = 0; offset < bytes.length; offset += PAGE_BYTES) {
    const page = bytes.subarray(offset, offset + PAGE_BYTES);
    pages.push({ hash: pageHashOf(page), blob: Blob.copyOf(page) });
  }
  const encoded = { sizeBytes: bytes.length, pages };
  recentEncodings.set(key, encoded);
  return encoded;
}
const pageKey = (hash: string): string => `pages/${hash}`;

const TEXT = new TextEncoder();

/**
 * encodeValue's bytes for a snapshot. Its JSON replacer (called per value, with a fresh key string
 * per array index) is needed only for values JSON has no text for: in a key-value snapshot that is
 * an absent prune time. Without one, plain JSON text is the same bytes at a fraction of the cost.
 */
export function encodeKvSnapshot(data: KvSnapshotData): Uint8Array {
  return data.history.every((row) => row[2] !== undefined) ? TEXT.encode(JSON.stringify(data)) : encodeValue(data);
}

function pageHashOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * A checkpoint read back: the record's checksum and every page's hash are verified (a page that
 * fails is removed, so the next checkpoint writes it again), unless `unchecked` (the canary).
 */
function readKvCheckpoint(disk: Disk, key: string, unchecked: boolean): { readonly ok: true; readonly snapshot: StateSnapshot; readonly data: KvSnapshotData } | { readonly ok: false; readonly reason: string } {
  const read = readRecord<KvCheckpointRecord>(disk, key, unchecked);
  if (read === undefined) return { ok: false, reason: `${key}: missing` };
  if (!read.ok) return read;
  const record = read.value;
  if (record.format !== "subnetlab-kv-checkpoint-v1" || !Array.isArray(record.pages)) return { ok: false, reason: `${key}: not a checkpoint record` };
  const bytes = new Uint8Array(record.pages.length * PAGE_BYTES);
  let length = 0;
  for (const hash of record.pages) {
    const page = disk.read(pageKey(hash));
    if (page === undefined) return { ok: false, reason: `${key}: page ${hash.slice(0, 16)} is missing` };
    if (!unchecked && pageHashOf(page) !== hash) {
      disk.remove(pageKey(hash));
      return { ok: false, reason: `${key}: page ${hash.slice(0, 16)} does not match its hash` };
    }
    bytes.set(page.subarray(0, PAGE_BYTES), length);
    length += Math.min(page.length, PAGE_BYTES);
  }
  try {
    const data = decodeValue<KvSnapshotData>(bytes.subarray(0, length));
    return { ok: true, snapshot: { height: height(record.height), stateHash: record.stateHash, sizeBytes: record.sizeBytes, data: bytes.slice(0, length) }, data };
  } catch (error) {
    return { ok: false, reason: `${key}: snapshot does not decode (${error instanceof Error ? error.message : String(error)})` };
  }
}

/**
 * A snapshot's bytes from a peer: JSON text (encodeValue) of exactly the shape this machine
 * writes, and canonical — the encoding of what it decodes to is the bytes themselves.
 */
export function decodeKvSnapshot(bytes: Uint8Array): { readonly ok: true; readonly value: KvSnapshotData } | { readonly ok: false; readonly reason: string } {
  let value: unknown;
  try {
    value = decodeValue<unknown>(bytes);
  } catch (error) {
    return { ok: false, reason: `not an encoded value (${error instanceof Error ? error.message : String(error)})` };
  }
  if (value === null || typeof value !== "object" || Object.keys(value).join(",") !== "entries,history") return { ok: false, reason: "not {entries, history}" };
  const { entries, history } = value as { entries: unknown; history: unknown };
  if (!Array.isArray(entries) || !entries.every((e: unknown) => Array.isArray(e) && e.length === 2 && typeof e[0] === "string" && typeof e[1] === "string")) return { ok: false, reason: "entries are not [key, value] pairs" };
  const checked = ingressHistoryDataOf(history);
  if (!checked.ok) return checked;
  const data: KvSnapshotData = { entries: (entries as [string, string][]).map(([k, v]) => [k, v] as const), history: checked.data };
  const again = encodeKvSnapshot(data);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) return { ok: false, reason: "not canonical" };
  return { ok: true, value: data };
}

const scratch = new HashInput();

/** XORs SHA-256 of (key, value), as bytes, into the entries' set hash. */
function xorEntryDigest(acc: Uint8Array, key: string, value: string): void {
  scratch.reset().text("entry").text(key).text(value).xorSha256Into(acc);
}

