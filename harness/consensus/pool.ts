// A replica's consensus artifact pool: validated artifacts indexed by height, plus the unvalidated
// section where artifacts from peers wait for their dependencies. The pool only stores; the
// components in consensus.ts read it and return change sets that the replica applies.
//
// The validated pool is what the IC keeps on disk, so it survives a crash: the replica logs every
// change set it applies (replica/pool-log.ts) and a restart rebuilds the pool from that log; the
// unvalidated section is not kept (peers send again).
import { assert } from "../assert.ts";
import { height, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import type {
  Block,
  BlockProposal,
  CatchUpPackage,
  CatchUpShare,
  ConsensusArtifact,
  EquivocationProof,
  Finalization,
  FinalizationShare,
  Notarization,
  NotarizationShare,
  RandomBeacon,
  RandomBeaconShare,
} from "./artifacts.ts";
import { artifactHeight } from "./artifacts.ts";

type ByHeight<V> = Map<Height, V>;

function nested<H, K, V>(map: Map<H, Map<K, V>>, h: H): Map<K, V> {
  let inner = map.get(h);
  if (inner === undefined) {
    inner = new Map();
    map.set(h, inner);
  }
  return inner;
}

export class ConsensusPool {
  readonly proposals: ByHeight<Map<HashHex, BlockProposal>> = new Map();
  readonly blocks = new Map<HashHex, Block>();
  readonly notarizationShares: ByHeight<Map<HashHex, Map<ReplicaId, NotarizationShare>>> = new Map();
  readonly notarizations: ByHeight<Map<HashHex, Notarization>> = new Map();
  readonly finalizationShares: ByHeight<Map<HashHex, Map<ReplicaId, FinalizationShare>>> = new Map();
  readonly finalizations: ByHeight<Map<HashHex, Finalization>> = new Map();
  readonly beaconShares: ByHeight<Map<ReplicaId, RandomBeaconShare>> = new Map();
  readonly beacons: ByHeight<RandomBeacon> = new Map();
  readonly equivocations: ByHeight<Map<ReplicaId, EquivocationProof>> = new Map();
  readonly cupShares: ByHeight<Map<string, Map<ReplicaId, CatchUpShare>>> = new Map();
  /** Time a height's round could start: beacon and first notarization of the previous height. */
  private readonly beaconAddedAt: ByHeight<TimeUs> = new Map();
  private readonly notarizedAt: ByHeight<TimeUs> = new Map();
  /** Ids of validated artifacts with their heights, forgotten when purging passes them. */
  private readonly validatedIds = new Map<string, Height>();
  private idsPurgedBelow: Height = height(0);
  readonly unvalidated = new Map<string, ConsensusArtifact>();

  latestCup: CatchUpPackage;
  notarizedHeight: Height;
  finalizedHeight: Height;
  beaconHeight: Height;

  constructor(genesis: CatchUpPackage) {
    this.latestCup = genesis;
    const h = genesis.content.height;
    this.notarizedHeight = h;
    this.finalizedHeight = h;
    this.beaconHeight = h;
    this.installCupContent(genesis, 0 as TimeUs);
  }

  has(id: string): boolean {
    return this.validatedIds.has(id) || this.unvalidated.has(id);
  }
  hasValidated(id: string): boolean {
    return this.validatedIds.has(id);
  }

  /** Resets the pool to a (newer) CUP: everything below it is no longer needed. */
  installCup(cup: CatchUpPackage, nowUs: TimeUs): void {
    this.latestCup = cup;
    const h = cup.content.height;
    if (h > this.notarizedHeight) this.notarizedHeight = h;
    if (h > this.finalizedHeight) this.finalizedHeight = h;
    if (h > this.beaconHeight) this.beaconHeight = h;
    this.installCupContent(cup, nowUs);
  }

  private installCupContent(cup: CatchUpPackage, nowUs: TimeUs): void {
    const { block, beacon } = cup.content;
    this.blocks.set(block.hash, block);
    this.beacons.set(beacon.height, beacon);
    this.beaconAddedAt.set(beacon.height, nowUs);
    this.notarizedAt.set(block.height, nowUs);
    this.validatedIds.set(cup.id, cup.content.height);
  }

  addValidated(artifact: ConsensusArtifact, nowUs: TimeUs): void {
    this.unvalidated.delete(artifact.id);
    if (this.validatedIds.has(artifact.id)) return;
    this.validatedIds.set(artifact.id, artifactHeight(artifact));
    switch (artifact.type) {
      case "proposal":
        nested(this.proposals, artifact.block.height).set(artifact.block.hash, artifact);
        this.blocks.set(artifact.block.hash, artifact.block);
        this.refreshNotarized(artifact.block.height, artifact.block.hash, nowUs);
        this.refreshFinalized(artifact.block.height, artifact.block.hash, nowUs);
        break;
      case "notarization-share":
        nested(nested(this.notarizationShares, artifact.height), artifact.blockHash).set(artifact.signer, artifact);
        break;
      case "notarization":
        nested(this.notarizations, artifact.height).set(artifact.blockHash, artifact);
        this.refreshNotarized(artifact.height, artifact.blockHash, nowUs);
        break;
      case "finalization-share":
        nested(nested(this.finalizationShares, artifact.height), artifact.blockHash).set(artifact.signer, artifact);
        break;
      case "finalization":
        nested(this.finalizations, artifact.height).set(artifact.blockHash, artifact);
        this.refreshFinalized(artifact.height, artifact.blockHash, nowUs);
        break;
      case "beacon-share":
        nested(this.beaconShares, artifact.height).set(artifact.signer, artifact);
        break;
      case "beacon":
        if (!this.beacons.has(artifact.height)) {
          this.beacons.set(artifact.height, artifact);
          this.beaconAddedAt.set(artifact.height, nowUs);
          if (artifact.height > this.beaconHeight) this.beaconHeight = artifact.height;
        }
        break;
      case "equivocation-proof":
        nested(this.equivocations, artifact.height).set(artifact.signer, artifact);
        break;
      case "cup-share":
        nested(nested(this.cupShares, artifact.height), cupKey(artifact)).set(artifact.signer, artifact);
        break;
      case "cup":
        if (artifact.content.height > this.latestCup.content.height) this.installCup(artifact, nowUs);
        break;
    }
  }

  addUnvalidated(artifact: ConsensusArtifact): void {
    if (!this.has(artifact.id)) this.unvalidated.set(artifact.id, artifact);
  }

  removeUnvalidated(id: string): void {
    this.unvalidated.delete(id);
  }

  private refreshNotarized(h: Height, hash: HashHex, nowUs: TimeUs): void {
    if (!this.blocks.has(hash) || this.notarizations.get(h)?.has(hash) !== true) return;
    if (!this.notarizedAt.has(h)) this.notarizedAt.set(h, nowUs);
    if (h > this.notarizedHeight) this.notarizedHeight = h;
  }

  private refreshFinalized(h: Height, hash: HashHex, nowUs: TimeUs): void {
    if (!this.blocks.has(hash) || this.finalizations.get(h)?.has(hash) !== true) return;
    if (h > this.finalizedHeight) this.finalizedHeight = h;
    // A finalized block is notarized, also for the round-start clock of the next height (a
    // replica catching up may never see this height's notarization itself).
    if (!this.notarizedAt.has(h)) this.notarizedAt.set(h, nowUs);
    if (h > this.notarizedHeight) this.notarizedHeight = h;
  }

  // ---- queries ---------------------------------------------------------------------------------

  /** A finalized block is notarized too (a replica may learn the finalization first). */
  isNotarized(h: Height, hash: HashHex): boolean {
    return (
      (this.notarizations.get(h)?.has(hash) ?? false) ||
      (this.finalizations.get(h)?.has(hash) ?? false) ||
      (h === this.latestCup.content.height && hash === this.latestCup.content.block.hash)
    );
  }

  /** Notarized (or finalized) blocks at h in a deterministic order (rank, then hash). */
  notarizedBlocks(h: Height): Block[] {
    const out: Block[] = [];
    const cupBlock = this.latestCup.content.block;
    if (cupBlock.height === h) out.push(cupBlock);
    const hashes = new Set([...(this.notarizations.get(h)?.keys() ?? []), ...(this.finalizations.get(h)?.keys() ?? [])]);
    for (const hash of hashes) {
      const block = this.blocks.get(hash);
      if (block !== undefined && block !== cupBlock) out.push(block);
    }
    return out.sort(byRankThenHash);
  }

  /** The finalized block at h, if this pool knows it (the CUP block counts as finalized). */
  finalizedBlock(h: Height): Block | undefined {
    const cupBlock = this.latestCup.content.block;
    if (cupBlock.height === h) return cupBlock;
    for (const hash of [...(this.finalizations.get(h)?.keys() ?? [])].sort()) {
      const block = this.blocks.get(hash);
      if (block !== undefined) return block;
    }
    return undefined;
  }

  roundStartUs(h: Height): TimeUs | undefined {
    const prev = height(h - 1);
    const beaconAt = this.beaconAddedAt.get(prev);
    const notarizedAt = this.notarizedAt.get(prev);
    if (beaconAt === undefined || notarizedAt === undefined) return undefined;
    return (beaconAt > notarizedAt ? beaconAt : notarizedAt) as TimeUs;
  }

  isDisqualified(h: Height, maker: ReplicaId): boolean {
    return this.equivocations.get(h)?.has(maker) ?? false;
  }

  /** Drops what is no longer needed (ic-protocol.md §1.11). */
  purge(sharesAtOrBelow: Height, everythingBelow: Height): number {
    let removed = 0;
    const dropShares = <V>(map: Map<Height, V>, bound: Height): void => {
      for (const h of [...map.keys()]) {
        if (h <= bound) {
          map.delete(h);
          removed++;
        }
      }
    };
    dropShares(this.notarizationShares, sharesAtOrBelow);
    dropShares(this.finalizationShares, sharesAtOrBelow);
    dropShares(this.beaconShares, sharesAtOrBelow);
    dropShares(this.equivocations, sharesAtOrBelow);
    const below = height(Math.max(0, everythingBelow - 1));
    for (const [h, byHash] of [...this.proposals]) {
      if (h >= everythingBelow) continue;
      for (const proposal of byHash.values()) {
        if (proposal.block !== this.latestCup.content.block) this.blocks.delete(proposal.block.hash);
      }
      this.proposals.delete(h);
    }
    dropShares(this.notarizations, below);
    dropShares(this.finalizations, below);
    dropShares(this.cupShares, below);
    dropShares(this.beaconAddedAt, below);
    dropShares(this.notarizedAt, below);
    for (const [h, beacon] of [...this.beacons]) {
      if (h < everythingBelow && beacon !== this.latestCup.content.beacon) this.beacons.delete(h);
    }
    for (const [id, artifact] of [...this.unvalidated]) {
      if (artifactHeight(artifact) <= sharesAtOrBelow && artifact.type !== "cup") this.unvalidated.delete(id);
    }
    if (everythingBelow > this.idsPurgedBelow) {
      // Ids go with their artifacts, so a long run's id set stays bounded (kept: the CUP's).
      for (const [id, h] of this.validatedIds) if (h < everythingBelow && id !== this.latestCup.id) this.validatedIds.delete(id);
      this.idsPurgedBelow = everythingBelow;
    }
    assert(this.blocks.has(this.latestCup.content.block.hash), "purge removed the CUP block");
    return removed;
  }

}

export function cupKey(share: CatchUpShare): string {
  return cupContentKey(share.content);
}

/** What a CUP share vouches for: block, beacon and state hash (shares and the CUP agree on it). */
export function cupContentKey(content: CatchUpPackage["content"]): string {
  return `${content.block.hash}|${content.beacon.hash}|${content.stateHash}`;
}

export function byRankThenHash(a: Block, b: Block): number {
  return a.rank - b.rank || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0);
}
