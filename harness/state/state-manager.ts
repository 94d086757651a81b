// The state manager of one replica (DESIGN.md "State"; research/ic-protocol.md §0 step 4, §5.3,
// §5.4): after every execution round it commits the subnet state at that height, computes a
// full-state digest that replicas compare to find divergence, and every `checkpointIntervalRounds`
// heights writes a checkpoint (with its manifest) through the replica's Disk and clears the heap
// delta. After a crash, `loadLatestCheckpoint` gives back the newest verified checkpoint.
import { assert } from "../assert.ts";
import { paranoid } from "../paranoia.ts";
import type { CanisterState } from "../execution/interfaces.ts";
import type { Disk } from "../sim/env.ts";
import type { HashHex } from "../types.ts";
import { canisterMemories, canisterStateHash } from "./canister-codec.ts";
import { compareCanisterIds } from "./canister-order.ts";
import { listCheckpoints, loadCheckpoint, pruneCheckpoints, writeCheckpoint, type CheckpointWriteStats, type LoadedCheckpoint, type LoadOptions } from "./checkpoint.ts";
import { ByteWriter, sha256HexOf } from "./encoding.ts";
import { computeManifest, stateFiles, type Manifest } from "./manifest.ts";

/** The replicated state of a subnet as the state layer sees it. */
export interface SubnetState {
  /** Sorted by canister id (use `sortCanisters`); ids distinct. */
  readonly canisters: readonly CanisterState[];
  /**
   * Canonical bytes of everything else that is replicated (queues, scheduler priorities, paused
   * executions, …), produced by the layer that owns it (e.g. execution/round.ts).
   */
  readonly metadata: Uint8Array;
}

export interface StateManagerConfig {
  /** A checkpoint is written at every height that is a positive multiple of this. IC: 500. */
  readonly checkpointIntervalRounds: number;
  /** Checkpoints kept on disk (older ones and their unused pages are deleted). */
  readonly keepCheckpoints: number;
}

export const DEFAULT_STATE_MANAGER_CONFIG: StateManagerConfig = { checkpointIntervalRounds: 500, keepCheckpoints: 2 };

export interface CommitResult {
  readonly height: number;
  /** Full-state digest at this height (compare across replicas). */
  readonly stateDigest: HashHex;
  /** The committed state; at a checkpoint height its memories carry an empty heap delta. */
  readonly state: SubnetState;
  /** The state as given to commit (what a checkpoint of this height holds). */
  readonly committed: SubnetState;
  /** Heap delta since the last checkpoint, before this commit's checkpoint (if any) cleared it. */
  readonly heapDeltaBytes: number;
  readonly checkpoint?: { readonly manifest: Manifest; readonly stats: CheckpointWriteStats };
}


/** Canisters in canonical order (principal bytes of the id; ids are unique). */
export function sortCanisters(canisters: readonly CanisterState[]): CanisterState[] {
  return [...canisters].sort((a, b) => compareCanisterIds(a.id, b.id));
}

function assertSorted(canisters: readonly CanisterState[]): void {
  for (let i = 1; i < canisters.length; i++) {
    assert(compareCanisterIds(canisters[i - 1]!.id, canisters[i]!.id) < 0, "canisters must be sorted by id and distinct");
  }
}

/**
 * Full-state digest: H(ds("subnetlab-state") · u64 height · u32 #canisters ·
 * per canister (id, canister hash) · H(metadata)). Per-canister hashes are incremental and
 * memoised, so the digest of a round costs O(#canisters + dirty pages).
 */
export function stateDigest(height: number, state: SubnetState): HashHex {
  // The order holds by construction (every state is built in canonical order); checking it costs
  // an id comparison per canister per height, so only paranoid runs do (80,000-canister subnets).
  if (paranoid) assertSorted(state.canisters);
  const parts: Uint8Array[] = [new ByteWriter().domain("subnetlab-state").u64(height).u32(state.canisters.length).finish()];
  for (const c of state.canisters) parts.push(canisterDigestEntry(c));
  parts.push(new ByteWriter().str(sha256HexOf(state.metadata)).finish());
  return sha256HexOf(Buffer.concat(parts)) as HashHex;
}

/**
 * One canister's part of the state digest, (id, canister hash) as ByteWriter.str writes them,
 * encoded once per canister state: a canister that did not change since the last height is the
 * same object, so a height costs a copy of its bytes instead of two UTF-8 encodings.
 */
const digestEntries = new WeakMap<CanisterState, Uint8Array>();

function canisterDigestEntry(c: CanisterState): Uint8Array {
  let entry = digestEntries.get(c);
  if (entry === undefined) {
    entry = new ByteWriter().str(c.id).str(canisterStateHash(c)).finish();
    digestEntries.set(c, entry);
  }
  return entry;
}

export interface StateDivergence {
  /** Canister ids whose state hash differs, or that exist on one side only, in canonical order. */
  readonly canisters: readonly string[];
  /** The non-canister part (queues, priorities, paused executions, …) differs. */
  readonly metadata: boolean;
}

/**
 * Names what differs between two replicas' states (e.g. after their digests disagreed at a
 * height): per-canister hashes are compared, so the answer costs O(#canisters) on memoised hashes.
 */
export function diffStates(a: SubnetState, b: SubnetState): StateDivergence {
  const ha = new Map(a.canisters.map((c) => [c.id as string, canisterStateHash(c)]));
  const hb = new Map(b.canisters.map((c) => [c.id as string, canisterStateHash(c)]));
  const ids = [...new Set([...ha.keys(), ...hb.keys()])].sort(compareCanisterIds);
  return {
    canisters: ids.filter((id) => ha.get(id) !== hb.get(id)),
    metadata: sha256HexOf(a.metadata) !== sha256HexOf(b.metadata),
  };
}

/** Σ over canisters and memories of the pages written since the last checkpoint, in bytes. */
export function heapDeltaBytes(canisters: readonly CanisterState[]): number {
  let total = 0;
  for (const c of canisters) total += canisterHeapDeltaBytes(c);
  return total;
}

/** Per canister state, summed once: an unchanged canister is the same object at the next height. */
const heapDeltaOf = new WeakMap<CanisterState, number>();

function canisterHeapDeltaBytes(c: CanisterState): number {
  let bytes = heapDeltaOf.get(c);
  if (bytes === undefined) {
    bytes = 0;
    for (const m of canisterMemories(c)) bytes += m.pageMap.heapDeltaBytes();
    heapDeltaOf.set(c, bytes);
  }
  return bytes;
}

function clearHeapDelta(c: CanisterState): CanisterState {
  const e = c.execution;
  return {
    ...c,
    execution: e === undefined ? undefined : { ...e, wasmMemory: e.wasmMemory.markCheckpointed(), stableMemory: e.stableMemory.markCheckpointed() },
    snapshots: c.snapshots.map((s) => ({
      ...s,
      execution: { ...s.execution, wasmMemory: s.execution.wasmMemory.markCheckpointed(), stableMemory: s.execution.stableMemory.markCheckpointed() },
    })),
  };
}

export class StateManager {
  private readonly digests = new Map<number, HashHex>();
  private lastHeight = -1;

  constructor(
    private readonly disk: Disk,
    readonly config: StateManagerConfig = DEFAULT_STATE_MANAGER_CONFIG,
  ) {
    assert(Number.isInteger(config.checkpointIntervalRounds) && config.checkpointIntervalRounds >= 1, "checkpointIntervalRounds must be ≥ 1");
  }

  isCheckpointHeight(height: number): boolean {
    return height > 0 && height % this.config.checkpointIntervalRounds === 0;
  }

  /** Rounds until the next checkpoint height (0 at a checkpoint height). */
  roundsUntilCheckpoint(height: number): number {
    const k = this.config.checkpointIntervalRounds;
    return (k - (height % k)) % k;
  }

  /** Commits the state produced by the round at `height` (heights strictly increase). */
  commit(height: number, state: SubnetState): CommitResult {
    assert(height > this.lastHeight, `commit heights must increase: ${height} after ${this.lastHeight}`);
    this.lastHeight = height;
    const digest = stateDigest(height, state);
    this.digests.set(height, digest);
    const delta = heapDeltaBytes(state.canisters);
    if (!this.isCheckpointHeight(height)) return { height, stateDigest: digest, state, committed: state, heapDeltaBytes: delta };
    const manifest = computeManifest(stateFiles(state.canisters, state.metadata));
    const stats = writeCheckpoint(this.disk, height, state.canisters, state.metadata, manifest);
    pruneCheckpoints(this.disk, this.config.keepCheckpoints);
    const cleared: SubnetState = { canisters: state.canisters.map(clearHeapDelta), metadata: state.metadata };
    return { height, stateDigest: digest, state: cleared, committed: state, heapDeltaBytes: delta, checkpoint: { manifest, stats } };
  }

  /**
   * Commits what another replica's state manager committed for the same state (shared execution,
   * harness/replica/shared-execution.ts): its digest, and at a checkpoint height the same
   * checkpoint written to this replica's own disk.
   */
  commitAdopted(result: CommitResult): void {
    assert(result.height > this.lastHeight, `commit heights must increase: ${result.height} after ${this.lastHeight}`);
    assert(this.isCheckpointHeight(result.height) === (result.checkpoint !== undefined), "adopted commit from a state manager with another checkpoint interval");
    this.lastHeight = result.height;
    this.digests.set(result.height, result.stateDigest);
    if (result.checkpoint === undefined) return;
    writeCheckpoint(this.disk, result.height, result.committed.canisters, result.committed.metadata, result.checkpoint.manifest);
    pruneCheckpoints(this.disk, this.config.keepCheckpoints);
  }

  digestAt(height: number): HashHex | undefined {
    return this.digests.get(height);
  }

  /** Forgets digests below `height` (bounded memory for long runs). */
  pruneDigestsBelow(height: number): void {
    for (const h of [...this.digests.keys()]) if (h < height) this.digests.delete(h);
  }

  checkpointHeights(): number[] {
    return listCheckpoints(this.disk);
  }

  /**
   * The newest checkpoint that verifies (older ones are tried if the newest is corrupt), as a
   * state plus its digest at that height; undefined if none verifies. Resets the commit height.
   * `accept` may refuse a checkpoint that verifies for a reason of the caller's (its own records
   * of that height are unreadable, say): the next older one is tried.
   */
  loadLatestCheckpoint(options: LoadOptions & { readonly accept?: (h: number, state: SubnetState, digest: HashHex) => string | undefined; readonly onRejected?: (why: string) => void } = {}): { readonly height: number; readonly state: SubnetState; readonly stateDigest: HashHex; readonly manifest: Manifest; readonly rejected: readonly LoadedCheckpoint[] } | undefined {
    const rejected: LoadedCheckpoint[] = [];
    for (const h of listCheckpoints(this.disk).reverse()) {
      const loaded = this.readCheckpoint(h, options);
      if (!loaded.ok) {
        rejected.push(loaded);
        options.onRejected?.(`checkpoint ${h}: ${loaded.reason}`);
        continue;
      }
      const state: SubnetState = { canisters: loaded.canisters, metadata: loaded.metadata };
      const digest = stateDigest(h, state);
      const refused = options.accept?.(h, state, digest);
      if (refused !== undefined) {
        rejected.push({ ok: false, height: h, reason: refused });
        options.onRejected?.(refused);
        continue;
      }
      this.lastHeight = h;
      this.digests.set(h, digest);
      return { height: h, state, stateDigest: digest, manifest: loaded.manifest, rejected };
    }
    return undefined;
  }

  /** The checkpoint at `h` read back and verified (or why it cannot be used). */
  readCheckpoint(h: number, options: LoadOptions = {}): LoadedCheckpoint {
    return loadCheckpoint(this.disk, h, options);
  }

  /**
   * Writes `state` as the checkpoint of `height` (a state installed by state sync, so that a
   * restart finds it) and makes it the commit height.
   */
  checkpointInstalled(height: number, state: SubnetState): void {
    assertSorted(state.canisters);
    const manifest = computeManifest(stateFiles(state.canisters, state.metadata));
    writeCheckpoint(this.disk, height, state.canisters, state.metadata, manifest);
    pruneCheckpoints(this.disk, this.config.keepCheckpoints);
    this.lastHeight = height;
    this.digests.set(height, stateDigest(height, state));
  }
}
