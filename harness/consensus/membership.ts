// Block-maker ranks (ic-protocol.md §1.3): sort the node ids, shuffle them with a PRNG seeded from
// the previous height's random beacon (purpose "BlockmakerRanking"); position i has rank i and
// ranks 0..f are block makers, so at least one maker per height is honest.
import { Rng } from "../sim/rng.ts";
import { replicaId, type ReplicaId } from "../types.ts";
import type { RandomBeacon } from "./artifacts.ts";

export class Membership {
  private readonly cache = new Map<string, ReplicaId[]>();
  readonly nodes: readonly ReplicaId[];

  constructor(readonly n: number, readonly f: number) {
    this.nodes = Array.from({ length: n }, (_, i) => replicaId(i));
  }

  /** Ranking for the height after `beacon` (rank i at index i). */
  ranking(beacon: RandomBeacon): readonly ReplicaId[] {
    let ranks = this.cache.get(beacon.hash);
    if (ranks === undefined) {
      ranks = Rng.fromSeed(`${beacon.hash}|BlockmakerRanking`).shuffle(this.nodes);
      if (this.cache.size > 256) this.cache.clear();
      this.cache.set(beacon.hash, ranks);
    }
    return ranks;
  }

  rankOf(beacon: RandomBeacon, node: ReplicaId): number {
    return this.ranking(beacon).indexOf(node);
  }

  isBlockMaker(rank: number): boolean {
    return rank >= 0 && rank <= this.f;
  }

  /** Notarization and finalization threshold: committee size − f (= 2f+1 for n = 3f+1). */
  get notarizationThreshold(): number {
    return this.n - this.f;
  }
}
