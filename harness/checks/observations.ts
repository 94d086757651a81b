// What the harness records while a run goes on: every batch each replica delivered (block, state
// hash, time) and when each ingress message was first finalized by a non-Byzantine replica; and,
// for the protocol-rule checkers, every share a replica signed, every aggregate an honest replica
// made or accepted, every finalization it accepted and every fork it detected. The checkers work
// on these observations after the run (or on stored ones, for `analyze`).
//
// Recording is cheap on purpose (it runs inside every replica step): a few map look-ups per
// artifact; nothing is verified here and nothing judged, except that an aggregate's signers are
// compared with the shares signed so far, which only this moment can tell.
import type { Block, ConsensusArtifact } from "../consensus/artifacts.ts";
import { cupContentKey, type ConsensusPool } from "../consensus/pool.ts";
import type { Certification, CertificationShare } from "../replica/certification.ts";
import type { ReplicaObserver } from "../replica/replica.ts";
import type { HashHex, Height, ReplicaId, TimeUs } from "../types.ts";

/**
 * What the checkers read of a delivered block. A `Block` is one; real mode rebuilds these from the
 * replicas' event files (harness/real/chaos/events.ts), where only the ingress ids are written.
 */
export type DeliveredBlock = Pick<Block, "hash" | "parent" | "height" | "rank" | "maker" | "context" | "payloadBytes"> & {
  readonly ingress: readonly { readonly id: HashHex }[];
};

export interface DeliveredBatch {
  readonly block: DeliveredBlock;
  readonly stateHash: HashHex;
  readonly atUs: TimeUs;
}

/**
 * The kinds of share a replica signs and of aggregate they combine into; and `proposal`, a block a
 * replica signed as its maker (one per height: a second one is equivocation).
 */
export type ShareKind = "notarization" | "finalization" | "beacon" | "cup" | "certification" | "proposal";

/** A share an honest replica signed: what it vouched for at one height. */
export interface SignedShare {
  readonly kind: ShareKind;
  readonly height: Height;
  /** Block hash (notarization, finalization), parent beacon hash, CUP content, certified hash. */
  readonly subject: string;
  /** Notarization shares: rank and maker of the block (the notary rule is about ranks). */
  readonly rank?: number;
  readonly maker?: ReplicaId;
  readonly atUs: TimeUs;
}

/** An aggregate as an honest replica first made or accepted it. */
export interface AggregateSeen {
  readonly kind: ShareKind;
  readonly height: Height;
  readonly subject: string;
  readonly replica: ReplicaId;
  readonly origin: "own" | "peer";
  readonly atUs: TimeUs;
  /** Multi-signatures name their signers; threshold signatures do not. */
  readonly claimedSigners?: readonly ReplicaId[];
  /**
   * Distinct replicas that had signed a share of this subject when the aggregate appeared (for a
   * multi-signature: of its claimed signers). An aggregate cannot hold more valid signers.
   */
  readonly validSigners: number;
  /** Claimed signers that had signed no such share (forged or invented). */
  readonly unsignedClaimed: readonly ReplicaId[];
}

/** A replica found its finalized chain conflicting with what it executed. */
export interface ForkDetection {
  readonly replica: ReplicaId;
  readonly height: Height;
  readonly executed: HashHex;
  readonly finalized: HashHex;
  readonly atUs: TimeUs;
}

type SignersBySubject = Map<string, Set<ReplicaId>>;

export class RunRecorder implements ReplicaObserver {
  readonly delivered: Map<Height, DeliveredBatch>[];
  /** (time, height) of every delivery per replica, for charts and liveness. */
  readonly progress: [TimeUs, Height][][];
  readonly finalizedIngressAt = new Map<HashHex, TimeUs>();
  readonly stateSyncs: { replica: ReplicaId; height: Height; atUs: TimeUs }[] = [];
  /** Per honest replica: blocks it accepted a finalization (or CUP) for, by height. */
  readonly finalized: Map<Height, HashHex[]>[];
  /** Parent of every block seen (a block's hash covers its parent): finalized chains below a tip. */
  readonly parentOf = new Map<HashHex, HashHex>();
  readonly forks: ForkDetection[] = [];
  /** Per honest replica: the shares it signed, by height, in signing order. */
  readonly signed: Map<Height, SignedShare[]>[];
  /** Aggregates seen by honest replicas, once per distinct content (first sighting). */
  readonly aggregates: AggregateSeen[] = [];
  /** Every replica's signed shares (Byzantine ones too: theirs are valid signatures). */
  private readonly signers = new Map<ShareKind, Map<Height, SignersBySubject>>();
  private readonly aggregatesSeen = new Set<string>();

  constructor(readonly n: number, private readonly byzantine: ReadonlySet<ReplicaId>) {
    this.delivered = Array.from({ length: n }, () => new Map());
    this.progress = Array.from({ length: n }, () => []);
    this.finalized = Array.from({ length: n }, () => new Map());
    this.signed = Array.from({ length: n }, () => new Map());
  }

  onBatchDelivered(replica: ReplicaId, block: DeliveredBlock, stateHash: HashHex, atUs: TimeUs): void {
    this.delivered[replica]?.set(block.height, { block, stateHash, atUs });
    this.parentOf.set(block.hash, block.parent);
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

  /** The consensus hooks (bound), for the runners' observer objects. */
  protocolHooks(): Required<Pick<ReplicaObserver, "onArtifact" | "onCertificationShare" | "onForkDetected" | "onCertified">> {
    return {
      onArtifact: (replica, artifact, origin, atUs, pool) => this.onArtifact(replica, artifact, origin, atUs, pool),
      onCertificationShare: (replica, share, atUs) => this.onCertificationShare(replica, share, atUs),
      onForkDetected: (replica, h, executed, finalized, atUs) => this.onForkDetected(replica, h, executed, finalized, atUs),
      onCertified: (replica, certification, atUs) => this.onCertified(replica, certification, atUs),
    };
  }

  onArtifact(replica: ReplicaId, artifact: ConsensusArtifact, origin: "own" | "peer", atUs: TimeUs, pool: ConsensusPool): void {
    switch (artifact.type) {
      case "proposal":
        this.parentOf.set(artifact.block.hash, artifact.block.parent);
        if (origin === "own") this.onShare(replica, { kind: "proposal", height: artifact.block.height, subject: artifact.block.hash, atUs });
        return;
      case "notarization-share": {
        if (origin !== "own") return;
        const block = pool.blocks.get(artifact.blockHash);
        this.onShare(replica, { kind: "notarization", height: artifact.height, subject: artifact.blockHash, ...(block === undefined ? {} : { rank: block.rank, maker: block.maker }), atUs });
        return;
      }
      case "finalization-share":
        if (origin === "own") this.onShare(replica, { kind: "finalization", height: artifact.height, subject: artifact.blockHash, atUs });
        return;
      case "beacon-share":
        if (origin === "own") this.onShare(replica, { kind: "beacon", height: artifact.height, subject: artifact.parent, atUs });
        return;
      case "cup-share":
        if (origin === "own") this.onShare(replica, { kind: "cup", height: artifact.height, subject: cupContentKey(artifact.content), atUs });
        return;
      case "notarization":
        this.onAggregate(replica, origin, atUs, "notarization", artifact.height, artifact.blockHash, artifact.multi.signers);
        return;
      case "finalization":
        this.onAggregate(replica, origin, atUs, "finalization", artifact.height, artifact.blockHash, artifact.multi.signers);
        this.onFinalized(replica, artifact.height, artifact.blockHash);
        return;
      case "beacon":
        this.onAggregate(replica, origin, atUs, "beacon", artifact.height, artifact.parent, undefined);
        return;
      case "cup":
        this.onAggregate(replica, origin, atUs, "cup", artifact.content.height, cupContentKey(artifact.content), undefined);
        this.parentOf.set(artifact.content.block.hash, artifact.content.block.parent);
        this.onFinalized(replica, artifact.content.height, artifact.content.block.hash);
        return;
      default:
        return;
    }
  }

  /** A share a replica signed, as a real-mode replica's event file reports it. */
  recordShare(replica: ReplicaId, share: SignedShare): void {
    this.onShare(replica, share);
  }

  /** A block a replica accepted a finalization (or CUP) for, as a real-mode event file reports it. */
  recordFinalized(replica: ReplicaId, h: Height, hash: HashHex, parent?: HashHex): void {
    if (parent !== undefined) this.parentOf.set(hash, parent);
    this.onFinalized(replica, h, hash);
  }

  onCertificationShare(replica: ReplicaId, share: CertificationShare, atUs: TimeUs): void {
    this.onShare(replica, { kind: "certification", height: share.height, subject: share.hash, atUs });
  }

  onCertified(replica: ReplicaId, certification: Certification, atUs: TimeUs): void {
    this.onAggregate(replica, "own", atUs, "certification", certification.height, certification.hash, undefined);
  }

  onForkDetected(replica: ReplicaId, h: Height, executed: HashHex, finalized: HashHex, atUs: TimeUs): void {
    if (!this.byzantine.has(replica)) this.forks.push({ replica, height: h, executed, finalized, atUs });
  }

  /** Replicas whose certification shares at h vouched for each certified hash. */
  certificationSigners(h: Height): ReadonlyMap<string, ReadonlySet<ReplicaId>> {
    return this.signers.get("certification")?.get(h) ?? new Map();
  }

  /** Heights with certification shares, ascending. */
  certifiedHeights(): Height[] {
    return [...(this.signers.get("certification")?.keys() ?? [])].sort((a, b) => a - b);
  }

  private onShare(replica: ReplicaId, share: SignedShare): void {
    let byHeight = this.signers.get(share.kind);
    if (byHeight === undefined) this.signers.set(share.kind, (byHeight = new Map()));
    let bySubject = byHeight.get(share.height);
    if (bySubject === undefined) byHeight.set(share.height, (bySubject = new Map()));
    let who = bySubject.get(share.subject);
    if (who === undefined) bySubject.set(share.subject, (who = new Set()));
    who.add(replica);
    if (this.byzantine.has(replica)) return;
    const own = this.signed[replica];
    const atHeight = own?.get(share.height);
    if (atHeight === undefined) own?.set(share.height, [share]);
    else atHeight.push(share);
  }

  private onAggregate(replica: ReplicaId, origin: "own" | "peer", atUs: TimeUs, kind: ShareKind, h: Height, subject: string, claimed: readonly ReplicaId[] | undefined): void {
    if (this.byzantine.has(replica)) return;
    const key = claimed === undefined ? `${kind}|${h}|${subject}` : `${kind}|${h}|${subject}|${claimed.join(",")}`;
    if (this.aggregatesSeen.has(key)) return;
    this.aggregatesSeen.add(key);
    const who = this.signers.get(kind)?.get(h)?.get(subject);
    let validSigners = who?.size ?? 0;
    const unsignedClaimed: ReplicaId[] = [];
    if (claimed !== undefined) {
      const distinct = new Set(claimed);
      validSigners = 0;
      for (const signer of distinct) {
        if (who?.has(signer) === true) validSigners++;
        else unsignedClaimed.push(signer);
      }
    }
    this.aggregates.push({ kind, height: h, subject, replica, origin, atUs, ...(claimed === undefined ? {} : { claimedSigners: claimed }), validSigners, unsignedClaimed });
  }

  private onFinalized(replica: ReplicaId, h: Height, hash: HashHex): void {
    if (this.byzantine.has(replica)) return;
    const byHeight = this.finalized[replica];
    const hashes = byHeight?.get(h);
    if (hashes === undefined) byHeight?.set(h, [hash]);
    else if (!hashes.includes(hash)) hashes.push(hash);
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
