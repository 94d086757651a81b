// Status reports: catch-up and retransmission. On each status tick a replica tells its peers how
// far its pools reach; a few peers (rotating helpers) answer a report with what the reporter lacks
// — the newest CUP and certification, up to CATCH_UP_HEIGHTS heights of finalized chain, the open
// notarized heights and their equivocation proofs. A replica whose finalization made no progress
// since the last tick resends its own open shares (messages get lost). Everything goes out through
// the replica's outbox; the replica decides when it is flushed.
import type { Block, ConsensusArtifact } from "../consensus/artifacts.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { StatusReport } from "../p2p/messages.ts";
import type { Env } from "../sim/env.ts";
import { height, type Height, type ReplicaId } from "../types.ts";
import type { Certification } from "./certification.ts";
import type { Outbox } from "./outbox.ts";

/** Heights of chain a helper sends per status answer. */
export const CATCH_UP_HEIGHTS = 20;
/** How many peers answer one status report (rotating), so a laggard is not flooded by all n−1. */
const STATUS_HELPERS = 3;

export interface CatchUpDeps {
  readonly env: Env<unknown>;
  readonly n: number;
  readonly statusIntervalMs: number;
  readonly pool: ConsensusPool;
  readonly outbox: Outbox;
  readonly latestCertification: () => Certification | undefined;
  /** The state machine certifies its state per height (absent: reports carry no certified height). */
  readonly certifies: boolean;
}

export class CatchUp {
  private lastStatusFinalized: Height = height(0);
  /** The finalized height each peer last reported (catch-up: who is far ahead). */
  private readonly peerFinalized = new Map<ReplicaId, Height>();

  constructor(private readonly deps: CatchUpDeps) {}

  statusReport(): StatusReport {
    const pool = this.deps.pool;
    return {
      finalizedHeight: pool.finalizedHeight,
      notarizedHeight: pool.notarizedHeight,
      beaconHeight: pool.beaconHeight,
      cupHeight: pool.latestCup.content.height,
      ...(this.deps.certifies ? { certifiedHeight: this.deps.latestCertification()?.height ?? height(0) } : {}),
    };
  }

  broadcastStatus(): void {
    this.deps.outbox.broadcast({ kind: "status", status: this.statusReport() });
  }

  /** The tick's retransmission: without progress since the last tick, this replica's own open shares go again. */
  retransmitIfStalled(): void {
    const finalized = this.deps.pool.finalizedHeight;
    if (finalized === this.lastStatusFinalized) this.retransmitOwnShares();
    this.lastStatusFinalized = finalized;
  }

  /**
   * Catching up: `from`'s bundle moved this replica's finalized chain on and `from` is still far
   * ahead, so it asks `from` for the next heights at once instead of at its next status tick — the
   * laggard's pace is then its own verification speed, not CATCH_UP_HEIGHTS per status interval.
   * Self-clocked: one status per bundle that made progress, to the peer that sent it. True when
   * it asked (the caller flushes).
   */
  askForMoreChain(from: ReplicaId): boolean {
    const ahead = this.peerFinalized.get(from);
    if (ahead === undefined || ahead <= this.deps.pool.finalizedHeight + CATCH_UP_HEIGHTS) return false;
    this.deps.outbox.sendTo(from, { kind: "status", status: this.statusReport() });
    return true;
  }

  /** A peer's status report: remember how far it is, and if this replica is one of its helpers, answer. */
  onStatus(from: ReplicaId, peer: StatusReport): void {
    this.peerFinalized.set(from, peer.finalizedHeight);
    if (!this.isHelperFor(from)) return;
    const pool = this.deps.pool;
    const send = (artifact: ConsensusArtifact): void => this.deps.outbox.sendTo(from, { kind: "artifact", artifact });
    if (pool.latestCup.content.height > peer.cupHeight && pool.latestCup.content.height > peer.finalizedHeight) send(pool.latestCup);
    // A replica that missed the shares of recent heights (down, cut off, state-synced) learns the
    // subnet's newest certification from a peer: the shares are not sent again.
    const cert = this.deps.latestCertification();
    if (cert !== undefined && peer.certifiedHeight !== undefined && cert.height > peer.certifiedHeight) this.deps.outbox.sendTo(from, { kind: "certification", certification: cert });
    const top = Math.min(pool.finalizedHeight, peer.finalizedHeight + CATCH_UP_HEIGHTS);
    for (const block of this.finalizedChain(height(peer.finalizedHeight + 1), height(top))) this.sendFinalizedHeight(from, block);
    if (peer.finalizedHeight >= pool.finalizedHeight - CATCH_UP_HEIGHTS) this.sendOpenRounds(from, peer);
  }

  /** A peer close to the tip: the notarized heights above the finalized tip, beacons, and equivocation proofs. */
  private sendOpenRounds(to: ReplicaId, peer: StatusReport): void {
    const pool = this.deps.pool;
    const from = Math.max(peer.notarizedHeight, pool.finalizedHeight);
    for (let h = height(from + 1); h <= pool.notarizedHeight; h = height(h + 1)) this.sendNotarizedHeight(to, h);
    for (let h = height(peer.beaconHeight + 1); h <= pool.beaconHeight && h <= peer.beaconHeight + CATCH_UP_HEIGHTS; h = height(h + 1)) {
      const b = pool.beacons.get(h);
      if (b !== undefined) this.deps.outbox.sendTo(to, { kind: "artifact", artifact: b });
    }
    // Equivocation proofs for the open round: a replica that missed the proof (it was cut off
    // when the proof went round) would otherwise keep waiting for the disqualified maker, and
    // as a block maker of the next rank it would never step in.
    for (let h = height(Math.max(peer.notarizedHeight, pool.finalizedHeight) + 1); h <= pool.notarizedHeight + 1; h = height(h + 1)) {
      for (const proof of pool.equivocations.get(h)?.values() ?? []) this.deps.outbox.sendTo(to, { kind: "artifact", artifact: proof });
    }
  }

  /**
   * A height of the finalized chain: its beacon, block, and its finalization (if this height was
   * finalized directly rather than through a descendant; else its notarization).
   */
  private sendFinalizedHeight(to: ReplicaId, block: Block): void {
    const pool = this.deps.pool;
    const outbox = this.deps.outbox;
    const h = block.height;
    const beacon = pool.beacons.get(h);
    if (beacon !== undefined) outbox.sendTo(to, { kind: "artifact", artifact: beacon });
    const proposal = pool.proposals.get(h)?.get(block.hash);
    if (proposal !== undefined) outbox.sendTo(to, { kind: "artifact", artifact: proposal });
    // A finalization makes its block notarized too: the notarization would only cost the peer a
    // signature check.
    const finalization = pool.finalizations.get(h)?.get(block.hash);
    const notarization = finalization === undefined ? pool.notarizations.get(h)?.get(block.hash) : undefined;
    if (notarization !== undefined) outbox.sendTo(to, { kind: "artifact", artifact: notarization });
    if (finalization !== undefined) outbox.sendTo(to, { kind: "artifact", artifact: finalization });
  }

  /** Everything known at a notarized height above the finalized tip. */
  private sendNotarizedHeight(to: ReplicaId, h: Height): void {
    const pool = this.deps.pool;
    const outbox = this.deps.outbox;
    const beacon = pool.beacons.get(h);
    if (beacon !== undefined) outbox.sendTo(to, { kind: "artifact", artifact: beacon });
    for (const [hash, proof] of pool.notarizations.get(h) ?? []) {
      const proposal = pool.proposals.get(h)?.get(hash);
      if (proposal !== undefined) outbox.sendTo(to, { kind: "artifact", artifact: proposal });
      outbox.sendTo(to, { kind: "artifact", artifact: proof });
    }
  }

  /**
   * Blocks of this replica's finalized chain with heights in [from, to], ascending, found by
   * walking parent links down from the finalized tip (heights finalized only implicitly, through
   * a finalized descendant, have no finalization of their own). Stops at a gap.
   */
  private finalizedChain(from: Height, to: Height): Block[] {
    const pool = this.deps.pool;
    const out: Block[] = [];
    let block = pool.finalizedBlock(pool.finalizedHeight);
    while (block !== undefined && block.height >= from) {
      if (block.height <= to) out.push(block);
      block = pool.blocks.get(block.parent);
    }
    return out.reverse();
  }

  /** Whether this replica is one of `peer`'s STATUS_HELPERS in the current status epoch (they rotate). */
  private isHelperFor(peer: ReplicaId): boolean {
    const n = this.deps.n;
    if (n <= STATUS_HELPERS + 1) return true;
    const epoch = Math.floor(this.deps.env.now() / (this.deps.statusIntervalMs * 1000));
    const distance = (this.deps.env.self - peer + n) % n;
    return (distance + epoch) % (n - 1) < STATUS_HELPERS;
  }

  /** Resends this replica's own open shares and proposals (lost messages). */
  private retransmitOwnShares(): void {
    const pool = this.deps.pool;
    const self = this.deps.env.self;
    const own: ConsensusArtifact[] = [];
    const open = (h: Height): boolean => h > pool.finalizedHeight;
    for (const [h, byHash] of pool.notarizationShares) if (open(h)) for (const s of byHash.values()) { const mine = s.get(self); if (mine) own.push(mine); }
    for (const [h, byHash] of pool.finalizationShares) if (open(h)) for (const s of byHash.values()) { const mine = s.get(self); if (mine) own.push(mine); }
    const beaconShare = pool.beaconShares.get(height(pool.beaconHeight + 1))?.get(self);
    if (beaconShare !== undefined) own.push(beaconShare);
    for (const proposal of pool.proposals.get(height(pool.notarizedHeight + 1))?.values() ?? []) own.push(proposal);
    for (const byContent of pool.cupShares.values()) for (const s of byContent.values()) { const mine = s.get(self); if (mine) own.push(mine); }
    for (const artifact of own) this.deps.outbox.gossip(artifact, true);
  }
}
