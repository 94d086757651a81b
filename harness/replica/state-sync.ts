// State sync: a replica whose next batch lies at or below its newest CUP, with no chain from its
// executed state up to it, cannot catch up by executing; it asks a random peer for the CUP
// height's checkpoint (again after REQUEST_RETRY_US without an answer), verifies the snapshot
// against the CUP's state hash and installs it. It also answers its peers' requests from its own
// checkpoints. Requests and answers go out through the replica's outbox.
import type { Block } from "../consensus/artifacts.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { Env } from "../sim/env.ts";
import { height, replicaId, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import type { BatchDelivery } from "./batch-delivery.ts";
import type { MessageRouting, StateSnapshot } from "./interfaces.ts";
import type { Outbox } from "./outbox.ts";

/** How long a replica waits for an answer (a state sync's, an advert's request) before it asks again. */
export const REQUEST_RETRY_US = 2_000_000;

export interface StateSyncDeps {
  readonly env: Env<unknown>;
  readonly n: number;
  readonly pool: ConsensusPool;
  readonly routing: MessageRouting;
  readonly delivery: BatchDelivery;
  readonly outbox: Outbox;
  /** The synced state holds these blocks' ingress: the ingress pool lets it go. */
  readonly forgetIngress: (block: Block) => void;
  readonly onSynced: (h: Height) => void;
}

export class StateSync {
  private requestedAt: TimeUs | undefined;

  constructor(private readonly deps: StateSyncDeps) {}

  /** On the status tick: behind the CUP with no chain to execute up to it, ask a random peer. */
  requestIfBehind(): void {
    const { env, pool, routing } = this.deps;
    const cup = pool.latestCup.content;
    if (routing.expectedBatchHeight() > cup.height) return;
    if (this.deps.delivery.chainReaches(routing.expectedBatchHeight())) return;
    const now = env.now();
    if (this.requestedAt !== undefined && now - this.requestedAt < REQUEST_RETRY_US) return;
    this.requestedAt = now;
    const n = this.deps.n;
    const peer = replicaId((env.self + 1 + env.rng.below(n - 1)) % n);
    env.trace({ kind: "state-sync.request", detail: { height: cup.height, peer } });
    this.deps.outbox.sendTo(peer, { kind: "state-request", height: cup.height });
  }

  /** A peer asks for the checkpoint at `h`: answered if this replica has it. */
  onRequest(from: ReplicaId, h: Height): void {
    const snapshot = this.deps.routing.checkpointAt(h);
    if (snapshot !== undefined) this.deps.outbox.sendTo(from, { kind: "state-response", snapshot });
  }

  /** A snapshot arrived: installed if it is the newest CUP's state, this replica still needs it, and it verifies. */
  onResponse(snapshot: StateSnapshot): void {
    const { env, pool, routing, delivery } = this.deps;
    const cup = pool.latestCup.content;
    if (snapshot.height !== cup.height || snapshot.stateHash !== cup.stateHash) return;
    if (routing.expectedBatchHeight() > cup.height) return;
    if (!routing.verifySnapshot(snapshot)) {
      env.trace({ kind: "state-sync.reject", detail: { height: snapshot.height } });
      return;
    }
    routing.installSnapshot(snapshot);
    delivery.recordDelivered(cup.height, cup.block.hash);
    this.requestedAt = undefined;
    for (const block of delivery.chainSince(height(0), cup.height)) this.deps.forgetIngress(block);
    env.trace({ kind: "state-sync.done", detail: { height: snapshot.height, bytes: snapshot.sizeBytes } });
    this.deps.onSynced(snapshot.height);
  }
}
