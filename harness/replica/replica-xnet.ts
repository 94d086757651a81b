// A replica's part in XNet (ic-protocol.md §3): the endpoint that serves this subnet's certified
// streams to replicas of other subnets, and the client side that asks them for theirs on a timer,
// keeps the best verified slice per source and hands slices to the block maker's payload and the
// validator. Its inputs are `ReplicaInputs.onXNetMessage` and the poll timer; it sends only through
// `Env.sendXNet`. The replica owns the pool, the routing state and the certifications it reads.
import type { Block } from "../consensus/artifacts.ts";
import type { ConsensusContext } from "../consensus/consensus.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { SubnetId } from "../routing/registry.ts";
import { certifiedSlice, type CertifiedSlice, type PendingXNet, type XNetClient } from "../routing/xnet.ts";
import type { Env } from "../sim/env.ts";
import type { Rng } from "../sim/rng.ts";
import { replicaId, type TimeUs } from "../types.ts";
import type { ReplicaBehaviour } from "./behaviour.ts";
import type { Certification } from "./certification.ts";
import type { MessageRouting, XNetMessage, XNetPeer } from "./interfaces.ts";

/** How often a replica asks each other subnet for its stream by default (the IC's block makers ask on demand). */
export const DEFAULT_XNET_POLL_MS = 250;
export const XNET_POLL_TIMER = "xnet-poll";

export interface ReplicaXNetDeps {
  readonly env: Env<unknown>;
  readonly client: XNetClient;
  readonly pollMs: number;
  readonly routing: MessageRouting;
  readonly pool: ConsensusPool;
  readonly behaviour: ReplicaBehaviour;
  readonly latestCertification: () => Certification | undefined;
}

export class ReplicaXNet {
  /** Which replica of a source subnet to ask (its own stream: the replica's other draws stay as they are). */
  private readonly rng: Rng;

  constructor(private readonly deps: ReplicaXNetDeps) {
    this.rng = deps.env.rng.fork("xnet");
  }

  /** Arms the first poll. */
  start(): void {
    this.armPoll();
  }

  /** The poll timer fired: ask, and arm the next one. */
  onPollTimer(): void {
    this.poll();
    this.armPoll();
  }

  onMessage(from: XNetPeer, message: XNetMessage): void {
    if (message.kind === "xnet-request") {
      const slice = this.serve(message.destination, message.fromIndex);
      if (slice !== undefined) this.deps.env.sendXNet?.(from, { kind: "xnet-response", slice });
      return;
    }
    this.offer(message.slice);
  }

  /** Serves our certified stream to `destination` from `fromIndex` on, at the latest certified height. */
  serve(destination: SubnetId, fromIndex: bigint): CertifiedSlice | undefined {
    const cert = this.deps.latestCertification();
    if (cert === undefined) return undefined;
    const proof = this.deps.routing.streamWitnessAt?.(cert.height, destination, fromIndex);
    if (proof === undefined) return undefined;
    const slice = certifiedSlice(this.deps.client.self, destination, cert, proof.witness, proof.messageBytes);
    const rewrite = this.deps.behaviour.rewriteXNetSlice;
    return rewrite === undefined ? slice : rewrite(slice);
  }

  /** Which streams to ask for and from where (the first index not inducted yet). */
  requests(): { readonly source: SubnetId; readonly fromIndex: bigint }[] {
    const cursorOf = this.deps.routing.xnetCursor?.bind(this.deps.routing);
    if (cursorOf === undefined) return [];
    return this.deps.client.sources().map((source) => ({ source, fromIndex: cursorOf(source).nextIndex }));
  }

  /** A slice arrived from another subnet's replica: kept if it verifies and goes further. */
  offer(slice: CertifiedSlice): void {
    const check = this.deps.client.offer(slice);
    if (!check.ok) this.deps.env.trace({ kind: "xnet.reject", detail: { source: slice.source.slice(0, 11), reason: check.reason } });
  }

  /** What consensus needs: slices for a block's payload, and the validator's check of a slice. */
  context(): Pick<ConsensusContext, "xnetPayload" | "checkXNetSlice"> {
    const client = this.deps.client;
    const cursorOf = this.deps.routing.xnetCursor?.bind(this.deps.routing);
    if (cursorOf === undefined) return {};
    return {
      xnetPayload: (parent) => client.payload(cursorOf, this.pending(parent)),
      checkXNetSlice: (slice) => {
        const check = client.verify(slice);
        return check.ok ? undefined : check.reason;
      },
    };
  }

  private armPoll(): void {
    this.deps.env.setTimer((this.deps.env.now() + this.deps.pollMs * 1000) as TimeUs, XNET_POLL_TIMER);
  }

  /** Asks one random replica of each other subnet for its stream to us, from the first index not inducted yet. */
  private poll(): void {
    const client = this.deps.client;
    for (const request of this.requests()) {
      const server = replicaId(this.rng.below(client.replicasOf(request.source)));
      this.deps.env.sendXNet?.({ subnet: request.source, replica: server }, { kind: "xnet-request", destination: client.self, fromIndex: request.fromIndex });
    }
  }

  /** Per source, how far the slices in the finalized-or-notarized blocks not yet executed reach. */
  private pending(parent: Block): Map<SubnetId, PendingXNet> {
    const pending = new Map<SubnetId, PendingXNet>();
    const executed = this.deps.routing.expectedBatchHeight() - 1;
    for (let cursor: Block | undefined = parent; cursor !== undefined && cursor.height > executed; cursor = this.deps.pool.blocks.get(cursor.parent)) {
      for (const slice of cursor.xnet ?? []) {
        const check = this.deps.client.verify(slice);
        if (!check.ok) continue;
        const s = check.slice;
        const seen = pending.get(slice.source);
        const nextIndex = s.firstIndex + BigInt(s.messages.length);
        pending.set(slice.source, {
          nextIndex: seen === undefined || nextIndex > seen.nextIndex ? nextIndex : seen.nextIndex,
          signalsEnd: seen === undefined || s.header.signalsEnd > seen.signalsEnd ? s.header.signalsEnd : seen.signalsEnd,
        });
      }
    }
    return pending;
  }
}
