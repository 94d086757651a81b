// A replica's outgoing side: what it sends during a step is queued per peer and leaves as one
// bundle per peer when the step is over (so the network sees one message per peer per step).
// Every item passes the replica's behaviour on the way in (an honest replica's passes unchanged);
// the replica decides when to flush and persists what it signed before it does (replica.ts).
import { PUSH_THRESHOLD_BYTES } from "../consensus/config.ts";
import { artifactHeight, type ConsensusArtifact } from "../consensus/artifacts.ts";
import type { ConsensusContext } from "../consensus/consensus.ts";
import { BUNDLE_OVERHEAD_BYTES, wireItemSize, type Bundle, type WireItem } from "../p2p/messages.ts";
import type { Env } from "../sim/env.ts";
import { replicaId, type ReplicaId } from "../types.ts";
import { HONEST, type ReplicaBehaviour } from "./behaviour.ts";

export interface OutboxDeps {
  readonly env: Env<Bundle>;
  /** The subnet's size: broadcasts go to every other replica of it. */
  readonly n: number;
  readonly behaviour: ReplicaBehaviour;
  /** What a faulty behaviour's filter may read (built only when the behaviour is not honest). */
  readonly context: () => ConsensusContext;
}

export class Outbox {
  private readonly queues = new Map<ReplicaId, WireItem[]>();

  constructor(private readonly deps: OutboxDeps) {}

  /**
   * An artifact to every peer: a small one in full, and a large one relayed from a peer too —
   * unless it is a proposal; a large one this replica made, or a large proposal, as an advert
   * the peers request if they lack it.
   */
  gossip(artifact: ConsensusArtifact, own: boolean): void {
    const item: WireItem =
      artifact.sizeBytes < PUSH_THRESHOLD_BYTES || !own && artifact.type !== "proposal"
        ? { kind: "artifact", artifact }
        : { kind: "advert", id: artifact.id, type: artifact.type, height: artifactHeight(artifact), sizeBytes: artifact.sizeBytes };
    this.broadcast(item);
  }

  broadcast(item: WireItem): void {
    const self = this.deps.env.self;
    for (let peer = 0; peer < this.deps.n; peer++) {
      if (peer !== self) this.sendTo(replicaId(peer), item);
    }
  }

  sendTo(to: ReplicaId, item: WireItem): void {
    const queue = this.queues.get(to);
    if (this.deps.behaviour === HONEST) {
      // (The hot path: one array per peer per flush, not one per item.)
      if (queue === undefined) this.queues.set(to, [item]);
      else queue.push(item);
      return;
    }
    const items = this.deps.behaviour.filterOutgoing(to, item, this.deps.context());
    if (items.length === 0) return;
    if (queue === undefined) this.queues.set(to, [...items]);
    else queue.push(...items);
  }

  /** One bundle per peer with anything queued, in ascending peer order (the trace's order). */
  flush(): void {
    const peers = [...this.queues.keys()].sort((a, b) => a - b);
    for (const peer of peers) {
      const items = this.queues.get(peer) ?? [];
      let sizeBytes = BUNDLE_OVERHEAD_BYTES;
      for (const item of items) sizeBytes += wireItemSize(item);
      this.deps.env.send(peer, { items, sizeBytes });
    }
    this.queues.clear();
  }
}
