// The placeholder replicated state machine behind the MessageRouting contract: a key-value store
// driven by ingress bodies (`put <key> <value>`, `get <key>`, `append <key> <text>`), with an
// ingress history and checkpoints at summary heights. The Wasm execution environment replaces it
// (issue 3/4) behind the same interface.
//
// The state hash is incremental: XOR of SHA-256(key=value) over entries (keys are unique, so XOR
// is a faithful set hash) and of the ingress-history entries; a write costs one hash, not a
// rehash of the store.
import { sha256 } from "@noble/hashes/sha2.js";
import { IngressHistory, memoDigest, xorInto, type IngressHistoryData } from "./ingress-history.ts";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { Disk } from "../sim/env.ts";
import { height, type HashHex, type Height } from "../types.ts";
import type { Batch, IngressStatus, MessageRouting, StateSnapshot } from "./interfaces.ts";

/** Lets a fault injector corrupt this replica's state transition (divergent replica). */
export type TransitionCorruptor = (h: Height, key: string, value: string) => string;

interface KvSnapshotData {
  readonly entries: readonly (readonly [string, string])[];
  readonly history: IngressHistoryData;
}

const STATE_HASH_KEEP = 512;
const CHECKPOINTS_KEPT = 3;

export class KvStateMachine implements MessageRouting {
  private entries = new Map<string, string>();
  private history = new IngressHistory();
  private entriesAcc = new Uint8Array(32);
  private nextHeight: Height = height(1);
  private readonly stateHashes = new Map<Height, HashHex>();
  corruptor: TransitionCorruptor | undefined;

  constructor(private readonly disk: Disk) {}

  /** Set when the checkpoint restored after a restart did not match its recorded hash. */
  restoredMismatch: { readonly height: Height; readonly recorded: HashHex; readonly actual: HashHex } | undefined;

  /** Restores the newest checkpoint on disk (after a crash) or starts from genesis. */
  static fromDisk(disk: Disk): KvStateMachine {
    const machine = new KvStateMachine(disk);
    const newest = disk
      .keys("checkpoint/")
      .map((k) => disk.read<StateSnapshot>(k))
      .filter((s): s is StateSnapshot => s !== undefined)
      .sort((a, b) => b.height - a.height)[0];
    if (newest !== undefined) machine.restoreCheckpoint(newest);
    return machine;
  }

  /**
   * A restarted replica's own checkpoint. One that does not match its recorded hash (its disk was
   * corrupted) is a fault of this replica, not of the harness: it carries on from what it read,
   * under the hash of that, so its state hashes differ from its peers' and the state-agreement
   * check names it as divergent.
   */
  private restoreCheckpoint(snapshot: StateSnapshot): void {
    this.loadData(snapshot.data as KvSnapshotData);
    this.nextHeight = height(snapshot.height + 1);
    this.stateHashes.clear();
    const actual = this.computeHash(snapshot.height);
    this.stateHashes.set(snapshot.height, actual);
    if (actual !== snapshot.stateHash) this.restoredMismatch = { height: snapshot.height, recorded: snapshot.stateHash, actual };
  }

  expectedBatchHeight(): Height {
    return this.nextHeight;
  }

  deliverBatch(batch: Batch): void {
    assert(batch.height === this.nextHeight, `batch ${batch.height} delivered, expected ${this.nextHeight}`);
    this.history.prune(batch.timeNs);
    for (const message of batch.ingress) {
      // Induction drops a message already in the ingress history, as the IC's does: consensus
      // should never finalize one, and the validity checker reports it if it does.
      if (this.history.has(message.id)) continue;
      const reply = this.execute(batch.height, message.body);
      this.history.set(message.id, { status: "completed", height: batch.height, reply }, batch.timeNs);
    }
    const hash = this.computeHash(batch.height);
    this.stateHashes.set(batch.height, hash);
    this.stateHashes.delete((batch.height - STATE_HASH_KEEP) as Height);
    this.nextHeight = height(batch.height + 1);
    if (batch.requiresFullStateHash) this.writeCheckpoint(batch.height, hash);
  }

  stateHashAt(h: Height): HashHex | undefined {
    return this.stateHashes.get(h);
  }

  checkpointAt(h: Height): StateSnapshot | undefined {
    return this.disk.read<StateSnapshot>(checkpointKey(h));
  }

  installSnapshot(snapshot: StateSnapshot): void {
    assert(this.verifySnapshot(snapshot), `snapshot at ${snapshot.height} does not match its hash`);
    const data = snapshot.data as KvSnapshotData;
    this.loadData(data);
    this.nextHeight = height(snapshot.height + 1);
    this.stateHashes.clear();
    this.stateHashes.set(snapshot.height, snapshot.stateHash);
    if (this.disk.read(checkpointKey(snapshot.height)) === undefined) {
      this.disk.write(checkpointKey(snapshot.height), snapshot, snapshot.sizeBytes);
    }
  }

  verifySnapshot(snapshot: StateSnapshot): boolean {
    const probe = new KvStateMachine(this.disk);
    probe.loadData(snapshot.data as KvSnapshotData);
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

  private execute(h: Height, body: string): string {
    const [op, key, ...rest] = body.split(" ");
    if (key === undefined) return "error: missing key";
    const value = rest.join(" ");
    switch (op) {
      case "get":
        return this.entries.get(key) ?? "";
      case "put":
        return this.write(h, key, value);
      case "append":
        return this.write(h, key, (this.entries.get(key) ?? "") + value);
      default:
        return `error: unknown operation ${op ?? ""}`;
    }
  }

  private write(h: Height, key: string, value: string): string {
    const previous = this.entries.get(key);
    const stored = this.corruptor === undefined ? value : this.corruptor(h, key, value);
    if (previous !== undefined) xorInto(this.entriesAcc, entryDigest(key, previous));
    xorInto(this.entriesAcc, entryDigest(key, stored));
    this.entries.set(key, stored);
    return previous ?? "";
  }

  private computeHash(h: Height): HashHex {
    return bytesToHex(
      sha256(utf8ToBytes(`kv-state|${h}|${bytesToHex(this.entriesAcc)}|${this.history.digestHex()}|${this.entries.size}|${this.history.size}`)),
    ) as HashHex;
  }

  private loadData(data: KvSnapshotData): void {
    this.entries = new Map();
    this.entriesAcc = new Uint8Array(32);
    for (const [k, v] of data.entries) {
      this.entries.set(k, v);
      xorInto(this.entriesAcc, entryDigest(k, v));
    }
    this.history = IngressHistory.fromData(data.history);
  }

  private writeCheckpoint(h: Height, stateHash: HashHex): void {
    const data: KvSnapshotData = {
      entries: [...this.entries].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      history: this.history.toData(),
    };
    let sizeBytes = 64;
    for (const [k, v] of data.entries) sizeBytes += k.length + v.length + 8;
    sizeBytes += data.history.length * 96;
    const snapshot: StateSnapshot = { height: h, stateHash, sizeBytes, data };
    this.disk.write(checkpointKey(h), snapshot, sizeBytes);
    // Keep the newest few: the latest serves state sync for the current CUP, older ones are the
    // fallback a restart needs if the newest CUP was not reached by every replica yet.
    const keys = this.disk.keys("checkpoint/");
    for (const key of keys.slice(0, Math.max(0, keys.length - CHECKPOINTS_KEPT))) this.disk.remove(key);
  }
}

const checkpointKey = (h: Height): string => `checkpoint/${String(h).padStart(10, "0")}`;

function entryDigest(key: string, value: string): Uint8Array {
  return memoDigest(`entry|${key.length}|${key}|${value}`);
}

