// The execution state machine's state hash and what its checkpoints hold beside the state
// manager's (harness/state/checkpoint.ts): the extras record `exec-history/<h>` with the ingress
// history, the routing state and the state hash of that height. One reader for both ways a
// checkpoint comes back — a restart reads its own disk (restoreLatestCheckpoint), state sync reads
// a peer's files (decodeExecutionSnapshot) — so a state sync is checked exactly as a restart is.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { decodeRoutingState, encodeRoutingState, type RoutingState } from "../routing/streams.ts";
import { checkpointFiles, loadCheckpoint } from "../state/checkpoint.ts";
import { stateDigest, type StateManager, type SubnetState } from "../state/state-manager.ts";
import { CheckpointFilesDisk, decodeCheckpointFiles, encodeCheckpointFiles } from "../state/state-sync.ts";
import type { Disk } from "../sim/env.ts";
import { readRecord, writeRecord } from "../sim/disk-records.ts";
import type { HashHex, Height } from "../types.ts";
import { IngressHistory, ingressHistoryDataOf, type IngressHistoryData } from "./ingress-history.ts";
import type { StateSnapshot } from "./interfaces.ts";

/**
 * The hash consensus agrees on after height h: the state manager's digest of the canisters and
 * round metadata, the ingress history and (when not empty) the routing state.
 */
export function executionStateHash(h: number, subnetDigest: HashHex, history: IngressHistory, routing: RoutingState): HashHex {
  const routingDigest = isEmptyRouting(routing) ? "" : bytesToHex(sha256(encodeRoutingState(routing)));
  return bytesToHex(sha256(utf8ToBytes(`exec-state|${h}|${subnetDigest}|${history.digestHex()}|${history.size}|${routingDigest}`))) as HashHex;
}

const isEmptyRouting = (r: RoutingState): boolean =>
  r.subnetQueue.length === 0 && r.loopback.length === 0 && r.streams.every(([, s]) => s.messages.length === 0 && s.begin === 0n && s.signalsEnd === 0n);

/**
 * What a checkpoint holds beside the state manager's record (`exec-history/<h>`, a checksummed
 * record): the ingress history, the routing state and the state hash of that height.
 */
export interface CheckpointExtras {
  readonly history: IngressHistoryData;
  /** encodeRoutingState bytes. */
  readonly routing: Uint8Array;
  readonly stateHash: HashHex;
}

const extrasKey = (h: number): string => `exec-history/${String(h).padStart(10, "0")}`;

/**
 * Writes the checkpoint's extras after the state manager's record, drops the extras of
 * checkpoints the state manager no longer keeps, and syncs the disk.
 */
export function writeCheckpointExtras(disk: Disk, stateManager: StateManager, h: Height, extras: CheckpointExtras): void {
  writeRecord(disk, extrasKey(h), extras);
  const kept = new Set(stateManager.checkpointHeights().map(extrasKey));
  for (const key of disk.keys("exec-history/")) if (!kept.has(key) && key !== extrasKey(h)) disk.remove(key);
  disk.sync();
}

/** The checkpoint a restart resumes from, with its extras, and why newer ones were passed over. */
export interface RestoredCheckpoint {
  readonly recovery: readonly string[];
  readonly restored: { readonly height: number; readonly subnet: SubnetState; readonly extras: CheckpointExtras } | undefined;
}

/**
 * After a restart: the newest checkpoint whose record, pages, manifest, extras and state hash all
 * verify; older ones when the newest does not; none when none does (the replica then starts from
 * genesis and state-syncs the CUP's checkpoint from a peer). Never a state that does not match its
 * hash — unless `unchecked` (the canary skip-checksum).
 */
export function restoreLatestCheckpoint(disk: Disk, stateManager: StateManager, unchecked: boolean): RestoredCheckpoint {
  let extras: CheckpointExtras | undefined;
  const recovery: string[] = [];
  const restored = stateManager.loadLatestCheckpoint({
    unchecked,
    onRejected: (why) => recovery.push(why),
    accept: (h, subnet, digest) => {
      const read = readRecord<CheckpointExtras>(disk, extrasKey(h), unchecked);
      if (read === undefined || !read.ok) return `checkpoint ${h}: ${read === undefined ? "its history record is missing" : read.reason}`;
      if (!unchecked) {
        const actual = executionStateHash(h, digest, IngressHistory.fromData(read.value.history), decodeRoutingState(read.value.routing));
        if (actual !== read.value.stateHash) return `checkpoint ${h}: state hash ${actual.slice(0, 16)} does not match the recorded ${read.value.stateHash.slice(0, 16)}`;
      }
      extras = read.value;
      return undefined;
    },
  });
  if (restored === undefined || extras === undefined) return { recovery, restored: undefined };
  return { recovery, restored: { height: restored.height, subnet: restored.state, extras } };
}

/**
 * The checkpoint at h as a state-sync snapshot, read back from the disk and verified: a
 * checkpoint that rotted on this replica's disk is not served (the peer asks another replica).
 * `StateSnapshot.data` holds the checkpoint's files — the state manager's record, its pages and
 * modules, and the extras record — which the receiver reads with decodeExecutionSnapshot.
 */
export function checkpointSnapshot(disk: Disk, stateManager: StateManager, h: Height): StateSnapshot | undefined {
  const loaded = stateManager.readCheckpoint(h);
  const extras = readRecord<CheckpointExtras>(disk, extrasKey(h));
  if (!loaded.ok || extras === undefined || !extras.ok) return undefined;
  const files = checkpointFiles(disk, h);
  const extrasBytes = disk.read(extrasKey(h));
  if (files === undefined || extrasBytes === undefined) return undefined;
  // sizeBytes 0: the network model has always charged nothing for an execution snapshot.
  return { height: h, stateHash: extras.value.stateHash, sizeBytes: 0, data: encodeCheckpointFiles([...files, [extrasKey(h), extrasBytes]]) };
}

/** A state-sync snapshot's checkpoint as decodeExecutionSnapshot reads it from the sender's files. */
export interface ExecutionSnapshotData {
  readonly subnet: SubnetState;
  readonly history: IngressHistoryData;
  /** encodeRoutingState bytes. */
  readonly routing: Uint8Array;
  /** The state hash the extras record names. */
  readonly stateHash: HashHex;
}

/**
 * Whether a peer's snapshot decodes and hashes to the state hash it claims. A peer may be
 * Byzantine: bytes that do not even decode are a mismatch like any other, not an error of ours.
 */
export function snapshotMatchesItsHash(snapshot: StateSnapshot): boolean {
  const decoded = decodeExecutionSnapshot(snapshot, false);
  if (!decoded.ok) return false;
  const data = decoded.data;
  return data.stateHash === snapshot.stateHash && executionStateHash(snapshot.height, stateDigest(snapshot.height, data.subnet), IngressHistory.fromData(data.history), decodeRoutingState(data.routing)) === snapshot.stateHash;
}

/**
 * A snapshot's checkpoint read from its files as a restart reads its own (record checksums, page
 * hashes, manifest, the extras record) — none of it when `unchecked` (the canary
 * state-sync-unverified) — or why it cannot be. Remembered per snapshot object: verification and
 * installation read the same one.
 */
export function decodeExecutionSnapshot(snapshot: StateSnapshot, unchecked: boolean): { readonly ok: true; readonly data: ExecutionSnapshotData } | { readonly ok: false; readonly reason: string } {
  const key = unchecked ? "unchecked" : "checked";
  const known = decodedSnapshots.get(snapshot)?.[key];
  if (known !== undefined) return known;
  const result = readSnapshotFiles(snapshot, unchecked);
  decodedSnapshots.set(snapshot, { ...decodedSnapshots.get(snapshot), [key]: result });
  return result;
}

type DecodedSnapshot = ReturnType<typeof decodeExecutionSnapshot>;
const decodedSnapshots = new WeakMap<StateSnapshot, { readonly checked?: DecodedSnapshot; readonly unchecked?: DecodedSnapshot }>();

function readSnapshotFiles(snapshot: StateSnapshot, unchecked: boolean): DecodedSnapshot {
  const files = decodeCheckpointFiles(snapshot.data);
  if (!files.ok) return files;
  const disk = new CheckpointFilesDisk(files.value);
  const loaded = loadCheckpoint(disk, snapshot.height, { unchecked });
  if (!loaded.ok) return { ok: false, reason: `checkpoint ${snapshot.height}: ${loaded.reason}` };
  const extras = readRecord<CheckpointExtras>(disk, extrasKey(snapshot.height), unchecked);
  if (extras === undefined || !extras.ok) return { ok: false, reason: extras === undefined ? "no extras record" : extras.reason };
  const { history, routing, stateHash } = extras.value as Partial<Record<keyof CheckpointExtras, unknown>>;
  const checkedHistory = ingressHistoryDataOf(history);
  if (!checkedHistory.ok) return checkedHistory;
  if (!(routing instanceof Uint8Array) || typeof stateHash !== "string") return { ok: false, reason: "extras record lacks routing state or state hash" };
  try {
    decodeRoutingState(routing);
  } catch (error) {
    // The routing decoder reads trusted bytes and asserts; a peer's bytes that fail it are refused.
    return { ok: false, reason: `routing state does not decode (${error instanceof Error ? error.message : String(error)})` };
  }
  return { ok: true, data: { subnet: { canisters: loaded.canisters, metadata: loaded.metadata }, history: checkedHistory.data, routing, stateHash: stateHash as HashHex } };
}
