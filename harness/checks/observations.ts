// What the harness records while a run goes on: every batch each replica delivered (block, state
// hash, time) and when each ingress message was first finalized by a non-Byzantine replica. The
// checkers work on these observations after the run (or on stored ones, for `analyze`).
import type { Block } from "../consensus/artifacts.ts";
import type { ReplicaObserver } from "../replica/replica.ts";
import type { HashHex, Height, ReplicaId, TimeUs } from "../types.ts";

export interface DeliveredBatch {
  readonly block: Block;
  readonly stateHash: HashHex;
  readonly atUs: TimeUs;
}

export class RunRecorder implements ReplicaObserver {
  readonly delivered: Map<Height, DeliveredBatch>[];
  /** (time, height) of every delivery per replica, for charts and liveness. */
  readonly progress: [TimeUs, Height][][];
  readonly finalizedIngressAt = new Map<HashHex, TimeUs>();
  readonly stateSyncs: { replica: ReplicaId; height: Height; atUs: TimeUs }[] = [];

  constructor(readonly n: number, private readonly byzantine: ReadonlySet<ReplicaId>) {
    this.delivered = Array.from({ length: n }, () => new Map());
    this.progress = Array.from({ length: n }, () => []);
  }

  onBatchDelivered(replica: ReplicaId, block: Block, stateHash: HashHex, atUs: TimeUs): void {
    this.delivered[replica]?.set(block.height, { block, stateHash, atUs });
    this.progress[replica]?.push([atUs, block.height]);
    if (this.byzantine.has(replica)) return;
    for (const message of block.ingress) {
      if (!this.finalizedIngressAt.has(message.id)) this.finalizedIngressAt.set(message.id, atUs);
    }
  }

  onStateSynced(replica: ReplicaId, h: Height, atUs: TimeUs): void {
    this.stateSyncs.push({ replica, height: h, atUs });
    this.progress[replica]?.push([atUs, h]);
  }

  isFinalized(id: HashHex): boolean {
    return this.finalizedIngressAt.has(id);
  }

  /** Highest height a replica had delivered at time t. */
  heightAt(replica: ReplicaId, t: number): number {
    let best = 0;
    for (const [at, h] of this.progress[replica] ?? []) {
      if (at > t) break;
      if (h > best) best = h;
    }
    return best;
  }

  finalHeight(replica: ReplicaId): number {
    return this.heightAt(replica, Infinity);
  }
}
