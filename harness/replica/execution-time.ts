// How long a replica's own work takes in simulated time (issue 14 item 1). Without a time model a
// batch executes, hashes and checkpoints in no time at all, so effects that builders meet on the IC
// — rounds that take a second under load, checkpoints that pause a busy subnet — cannot appear.
// With one, the replica's execution engine is busy for the durations below after it takes a batch:
// message routing takes the next batch only when it is done, and the batch's certification share
// (and at a checkpoint height its CUP share) waits for the work it depends on. Consensus slows down
// on its own when certification trails finalization (the notary delay's certification terms).
//
// The durations are derived from replicated facts only (instructions per core, heap delta pages,
// canisters), so every honest replica charges the same time for the same batch, shared or not.
import { assert } from "../assert.ts";
import type { CanisterState } from "../execution/interfaces.ts";
import { canisterMemories } from "../state/canister-codec.ts";
import { CHUNK_SIZE_BYTES } from "../state/manifest.ts";

/** What a batch made the replica do, as the time model charges it. */
export interface BatchWork {
  /** Instructions of the round's busiest core (the scheduler's cores run in parallel). */
  readonly busiestCoreInstructions: number;
  /** Canisters in the state after the batch (each is several files in a checkpoint). */
  readonly canisters: number;
  /** At a checkpoint height: what the checkpoint writes; absent at other heights. */
  readonly checkpoint?: CheckpointWork;
}

export interface CheckpointWork {
  /** Pages written since the previous checkpoint (the heap delta the checkpoint persists). */
  readonly changedPages: number;
  /** Manifest chunks (1 MiB) holding at least one changed page: each is re-hashed whole. */
  readonly changedChunks: number;
}

/** How checkpoints are written (issue 14 item 3). */
export type CheckpointMode =
  /** Execution waits until the checkpoint is on disk and its manifest hashed (the IC before the fix). */
  | "blocking"
  /** Execution goes on from an immutable copy while the checkpoint is written in the background. */
  | "background";

export interface ExecutionTimeModel {
  readonly checkpoints: CheckpointMode;
  /**
   * Instructions one core executes per µs. 2,000 (2 × 10⁹/s): dfinity/ic rs/config/src/subnet_config.rs
   * assumes "1 cycles unit ≅ 1 CPU cycle, so on a 2 GHz CPU" a 5 B-instruction message takes 2.5 s.
   */
  readonly instructionsPerUs: number;
  /**
   * Files per canister in a checkpoint: 5 — canister.pbuf, queues.pbuf, software.wasm,
   * stable_memory.bin, vmemory_0.bin (the checkpoint layout on wiki.internetcomputer.org,
   * "Subnet splitting").
   */
  readonly filesPerCanister: number;
  /**
   * Writing (and syncing) one small file of a checkpoint. 50 µs: an assumption for ext4 on NVMe,
   * not a published IC figure; with it 80,000 canisters cost 20 s of checkpoint, the order of the
   * pauses reported on subnets with tens of thousands of canisters.
   */
  readonly fileWriteUs: number;
  /** Writing one changed 4 KiB page. 4 µs: ~1 GB/s sequential NVMe writes (assumption). */
  readonly pageWriteUs: number;
  /**
   * Re-hashing one changed 1 MiB manifest chunk (harness/state/manifest.ts CHUNK_SIZE_BYTES, the
   * IC's state sync chunk size). 2,000 µs: SHA-256 at ~0.5 GB/s on one core (assumption).
   */
  readonly chunkHashUs: number;
  /**
   * Background mode: what stays on the critical path per canister — switching execution to a fresh
   * mutable copy of the state (hard links, no data copied). 2 µs per canister (assumption).
   */
  readonly snapshotPerCanisterUs: number;
}

/** The model's defaults; each constant names its source above. */
export const IC_EXECUTION_TIME_MODEL: ExecutionTimeModel = {
  checkpoints: "blocking",
  instructionsPerUs: 2_000,
  filesPerCanister: 5,
  fileWriteUs: 50,
  pageWriteUs: 4,
  chunkHashUs: 2_000,
  snapshotPerCanisterUs: 2,
};

export function executionTimeModel(overrides: Partial<ExecutionTimeModel> = {}): ExecutionTimeModel {
  const model = { ...IC_EXECUTION_TIME_MODEL, ...overrides };
  for (const [key, value] of Object.entries(model)) {
    if (key === "checkpoints") assert(value === "blocking" || value === "background", `execution time model: checkpoints must be "blocking" or "background", got ${JSON.stringify(value)}`);
    else assert(typeof value === "number" && Number.isFinite(value) && value >= 0, `execution time model: ${key} must be a finite number ≥ 0, got ${JSON.stringify(value)}`);
  }
  assert(model.instructionsPerUs > 0, "execution time model: instructionsPerUs must be > 0");
  return model;
}

/** The durations of one batch's work, in whole µs. */
export interface BatchDurations {
  /** Executing the round (and hashing its certified tree, which is incremental and not charged). */
  readonly executeUs: number;
  /** Writing the checkpoint and hashing its manifest (0 at other heights). */
  readonly checkpointUs: number;
  /** The part of the checkpoint that keeps execution from taking the next batch. */
  readonly checkpointBlockingUs: number;
}

export function batchDurations(work: BatchWork, model: ExecutionTimeModel): BatchDurations {
  const executeUs = Math.ceil(work.busiestCoreInstructions / model.instructionsPerUs);
  if (work.checkpoint === undefined) return { executeUs, checkpointUs: 0, checkpointBlockingUs: 0 };
  const c = work.checkpoint;
  const checkpointUs = Math.ceil(
    work.canisters * model.filesPerCanister * model.fileWriteUs + c.changedPages * model.pageWriteUs + c.changedChunks * model.chunkHashUs,
  );
  const checkpointBlockingUs = model.checkpoints === "blocking" ? checkpointUs : Math.ceil(work.canisters * model.snapshotPerCanisterUs);
  return { executeUs, checkpointUs, checkpointBlockingUs };
}

/** Pages per manifest chunk: a changed page index `i` lies in chunk `i >> CHUNK_PAGE_SHIFT`. */
const CHUNK_PAGE_SHIFT = Math.log2(CHUNK_SIZE_BYTES / 4096);

/** The work of a batch: the round's busiest core, and at checkpoint heights the heap delta to persist. */
export function batchWorkOf(instructionsPerCore: readonly bigint[], canisters: readonly CanisterState[], checkpointed: readonly CanisterState[] | undefined): BatchWork {
  let busiest = 0n;
  for (const instructions of instructionsPerCore) if (instructions > busiest) busiest = instructions;
  const work = { busiestCoreInstructions: Number(busiest), canisters: canisters.length };
  return checkpointed === undefined ? work : { ...work, checkpoint: checkpointWorkOf(checkpointed) };
}

/** Changed pages and the manifest chunks they fall in, over every memory of every canister (snapshots too). */
export function checkpointWorkOf(canisters: readonly CanisterState[]): CheckpointWork {
  let changedPages = 0;
  let changedChunks = 0;
  for (const canister of canisters) {
    for (const memory of canisterMemories(canister)) {
      const indices = memory.pageMap.heapDeltaPageIndices();
      changedPages += indices.length;
      // Ascending and distinct: count the chunk boundaries crossed.
      let lastChunk = -1;
      for (const index of indices) {
        const chunk = index >> CHUNK_PAGE_SHIFT;
        if (chunk !== lastChunk) changedChunks++;
        lastChunk = chunk;
      }
    }
  }
  return { changedPages, changedChunks };
}

/** A batch that asked nothing of the engine (the key-value state machine's batches). */
export const NO_WORK: BatchWork = { busiestCoreInstructions: 0, canisters: 0 };
