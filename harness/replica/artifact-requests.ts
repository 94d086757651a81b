// Fetching what peers advertise: an artifact too large to push (a proposal, a large one a peer
// made) arrives as an advert; the replica requests it from the advertiser once, and again only
// after REQUEST_RETRY_US; it answers its peers' requests for the proposals it holds. Requests
// older than five retry periods are forgotten on the status tick.
import type { ConsensusPool } from "../consensus/pool.ts";
import type { Env } from "../sim/env.ts";
import type { Height, ReplicaId, TimeUs } from "../types.ts";
import type { Outbox } from "./outbox.ts";
import { REQUEST_RETRY_US } from "./state-sync.ts";

export class ArtifactRequests {
  /** Artifact id → when this replica last asked for it. */
  private readonly requested = new Map<string, TimeUs>();

  constructor(private readonly env: Env<unknown>, private readonly pool: ConsensusPool, private readonly outbox: Outbox) {}

  /** An artifact arrived (asked for or pushed): no need to ask for it again. */
  arrived(id: string): void {
    this.requested.delete(id);
  }

  onAdvert(from: ReplicaId, id: string, h: Height): void {
    if (this.pool.has(id) || h <= this.pool.finalizedHeight) return;
    const askedAt = this.requested.get(id);
    if (askedAt !== undefined && this.env.now() - askedAt < REQUEST_RETRY_US) return;
    this.requested.set(id, this.env.now());
    this.outbox.sendTo(from, { kind: "request", id, height: h });
  }

  onRequest(from: ReplicaId, id: string, h: Height): void {
    for (const proposal of this.pool.proposals.get(h)?.values() ?? []) {
      if (proposal.id === id) this.outbox.sendTo(from, { kind: "artifact", artifact: proposal });
    }
  }

  /** On the status tick: requests never answered are dropped (the advert may come again). */
  forgetStale(): void {
    for (const [id, at] of this.requested) if (this.env.now() - at > 5 * REQUEST_RETRY_US) this.requested.delete(id);
  }
}
