// Consensus → message routing (dfinity/ic's batch delivery): the finalized chain is walked back from
// its tip and delivered to the state machine as batches in height order, each checked to extend
// what this replica executed before (the block hash of every delivered height is kept on its
// disk, so the check survives a restart). With an execution time model the engine takes a batch
// only when it is free, and a height's certification share waits until its certified state exists
// (execution-pipeline.ts). Owns the chain walk, the continuity check and the pipeline; the replica
// owns the pools, signing and sending (the callbacks below).
import { assert } from "../assert.ts";
import type { ConsensusConfig } from "../consensus/config.ts";
import type { Block } from "../consensus/artifacts.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import { domainHash } from "../crypto/hash.ts";
import type { Bundle } from "../p2p/messages.ts";
import type { XNetClient } from "../routing/xnet.ts";
import { readRecord, writeRecord } from "../sim/disk-records.ts";
import type { Env } from "../sim/env.ts";
import { height, type HashHex, type Height, type TimeUs } from "../types.ts";
import { ExecutionPipeline } from "./execution-pipeline.ts";
import { NO_WORK, type ExecutionTimeModel } from "./execution-time.ts";
import type { MessageRouting } from "./interfaces.ts";

/** Hash of the block executed at a height, kept on disk so a restarted replica checks continuity. */
const deliveredKey = (h: Height): string => `delivered/${h}`;
const DELIVERED_HASHES_KEPT = 64;

export interface BatchDeliveryDeps {
  readonly env: Env<Bundle>;
  readonly pool: ConsensusPool;
  readonly routing: MessageRouting;
  readonly canary: ConsensusConfig["canary"];
  /** Multi-subnet runs: decodes a block's XNet payload into the batch's slices. */
  readonly xnet: Pick<XNetClient, "decode"> | undefined;
  readonly executionTime: ExecutionTimeModel | undefined;
  /** Canary "state-hash-after-restart": what a restarted replica mixes into its state hashes. */
  readonly restartSalt: string | undefined;
  /** The block was delivered: its ingress leaves the pool, the observers hear of it. */
  onDelivered(block: Block, stateHash: HashHex): void;
  /** The finalized chain no longer extends what this replica executed (only beyond f faults). */
  onFork(lastExecuted: Height, executed: HashHex, finalizedParent: HashHex): void;
  /** The certified state of `h` exists: sign and send the certification share. */
  certify(h: Height): void;
  /** The step ran out of time: stop here, a timer continues. */
  yieldIfOverBudget(): boolean;
}

export class BatchDelivery {
  private readonly pipeline: ExecutionPipeline | undefined;
  private forkReported = false;

  constructor(private readonly deps: BatchDeliveryDeps) {
    this.pipeline = deps.executionTime === undefined ? undefined : new ExecutionPipeline(deps.executionTime);
  }

  /**
   * Delivers what the finalized chain has beyond the expected height. Returns the batches
   * delivered, or undefined when there was no chain to walk (nothing finalized beyond, a gap, a
   * fork): the replica purges its pools only after a walk.
   */
  deliver(): number | undefined {
    const { env, pool, routing } = this.deps;
    if (this.pipeline !== undefined) for (const h of this.pipeline.takeCertifiable(env.now())) this.deps.certify(h);
    const expected = routing.expectedBatchHeight();
    const tip = pool.finalizedHeight;
    if (expected > tip) return undefined;
    const chain = this.chainSince(expected, tip);
    if (chain.length === 0) return undefined;
    const first = chain[0] as Block;
    const previous = this.deliveredHashAt(height(expected - 1));
    if (previous !== undefined && first.parent !== previous) {
      // Only more than f faulty replicas can make this happen: the finalized chain no longer
      // extends what this replica executed. Stop delivering rather than execute a foreign chain.
      if (!this.forkReported) this.deps.onFork(height(expected - 1), previous, first.parent);
      this.forkReported = true;
      return undefined;
    }
    let delivered = 0;
    for (const block of chain) {
      if (this.pipeline?.canTake(env.now()) === false) break; // the wake timer comes back for it
      routing.deliverBatch({
        height: block.height,
        timeNs: BigInt(block.context.timeUs) * 1000n,
        randomness: domainHash("ic-batch-randomness", block.hash),
        ingress: block.ingress,
        ...(block.xnet === undefined || this.deps.xnet === undefined ? {} : { xnet: this.deps.xnet.decode(block.xnet) }),
        requiresFullStateHash: block.isSummary,
      });
      this.recordDelivered(block.height, block.hash);
      env.disk.remove(deliveredKey(height(Math.max(0, block.height - DELIVERED_HASHES_KEPT))));
      const stateHash = this.stateHashAt(block.height);
      assert(stateHash !== undefined, `no state hash after executing height ${block.height}`);
      this.deps.onDelivered(block, stateHash);
      delivered++;
      if (this.took(block.height)) this.deps.certify(block.height);
      if (this.deps.yieldIfOverBudget()) break;
    }
    return delivered;
  }

  /** After a state sync to a CUP: the CUP's block counts as executed (continuity from there on). */
  recordDelivered(h: Height, blockHash: HashHex): void {
    writeRecord(this.deps.env.disk, deliveredKey(h), blockHash);
  }

  /** The state hash of height h (the canary "state-hash-after-restart" salts it after a restart). */
  stateHashAt(h: Height): HashHex | undefined {
    const hash = this.deps.routing.stateHashAt(h);
    const salt = this.deps.restartSalt;
    return hash === undefined || salt === undefined ? hash : domainHash("canary-state-hash", `${hash}|${salt}`);
  }

  /** What consensus may sign about h: a checkpoint still being written has no manifest root yet. */
  stateHashForConsensus(h: Height): HashHex | undefined {
    return this.pipeline?.hashedBy(h, this.deps.env.now()) === false ? undefined : this.stateHashAt(h);
  }

  /** The certified hash of h for certification, once its certified state exists. */
  certifiedHashAt(h: Height): HashHex | undefined {
    return this.pipeline?.certifiableBy(h, this.deps.env.now()) === false ? undefined : this.deps.routing.certifiedHashAt?.(h);
  }

  /** When the pipeline next changes what may be said or taken (for the wake-up timer). */
  nextChangeUs(nowUs: TimeUs): TimeUs | undefined {
    const batchesWaiting = this.deps.pool.finalizedHeight >= this.deps.routing.expectedBatchHeight();
    return this.pipeline?.nextChangeUs(nowUs, batchesWaiting) as TimeUs | undefined;
  }

  /** Finalized blocks from `from` to `to` in ascending order, or [] if the chain has a gap. */
  chainSince(from: Height, to: Height): Block[] {
    const chain: Block[] = [];
    let block = this.deps.pool.finalizedBlock(to);
    while (block !== undefined && block.height >= from) {
      chain.push(block);
      if (block.height === from) break;
      block = this.parentOnChain(block);
    }
    const last = chain[chain.length - 1];
    return last?.height === from ? chain.reverse() : [];
  }

  /** The finalized chain reaches down to `from` without a gap. */
  chainReaches(from: Height): boolean {
    return this.chainSince(from, this.deps.pool.finalizedHeight).length > 0;
  }

  /** Charges the batch's work to the execution engine; true when its certified state exists already. */
  private took(h: Height): boolean {
    const pipeline = this.pipeline;
    if (pipeline === undefined) return true;
    const { env, routing } = this.deps;
    const now = env.now();
    const d = pipeline.took(h, routing.lastBatchWork?.() ?? NO_WORK, now);
    if (d.executeUs > 0 || d.checkpointUs > 0) env.trace({ kind: "execution.busy", detail: { height: h, executeUs: d.executeUs, checkpointUs: d.checkpointUs, blockingUs: d.checkpointBlockingUs, freeAt: pipeline.freeAt } });
    return pipeline.certifiableBy(h, now);
  }

  /**
   * The hash of the block this replica executed at h, from its disk; undefined when it is not
   * there or did not survive (a torn or corrupt record): the continuity check is then skipped.
   */
  private deliveredHashAt(h: Height): HashHex | undefined {
    const read = readRecord<HashHex>(this.deps.env.disk, deliveredKey(h));
    return read?.ok === true ? read.value : undefined;
  }

  private parentOnChain(block: Block): Block | undefined {
    const pool = this.deps.pool;
    if (this.deps.canary === "implicit-finalization-by-rank") {
      // Canary bug: a height without a finalization of its own gets its lowest-ranked notarized
      // block instead of the parent of the finalized block above it.
      const below = height(block.height - 1);
      return pool.finalizedBlock(below) ?? pool.notarizedBlocks(below)[0] ?? pool.blocks.get(block.parent);
    }
    return pool.blocks.get(block.parent);
  }
}
