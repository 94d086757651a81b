// When the validated pool's log (pool-log.ts) reaches the disk. Every change set a step applies is
// appended at once; it is synced (a) before anything this replica signed leaves it —
// persist-before-send, so a restart can never sign a second, different artifact in its place —
// and (b) on every status tick, a group commit for what was validated from peers. The log is
// trimmed once per new CUP, below what the purged pool still keeps.
import type { ConsensusArtifact } from "../consensus/artifacts.ts";
import type { Height } from "../types.ts";
import type { PoolLog } from "./pool-log.ts";

/**
 * Artifacts that carry a new signature of the replica that made them: what it must never sign
 * differently after a restart, so they are synced before they are sent. Aggregates it combines
 * from shares add no signature of its own and need no sync.
 */
const SIGNED_BY_ITS_MAKER: ReadonlySet<string> = new Set(["proposal", "notarization-share", "finalization-share", "beacon-share", "cup-share"]);

export class PoolPersistence {
  /** This replica signed artifacts (shares, proposals) since the last sync: sync before sending. */
  private ownUnsynced = false;
  /** The CUP height the log was last trimmed at. */
  private trimmedAtCup: Height;

  /** `persistAfterSend`: the canary persist-after-send (tests only) — no sync before a send. */
  constructor(private readonly log: PoolLog, cupHeight: Height, private readonly persistAfterSend: boolean) {
    this.trimmedAtCup = cupHeight;
  }

  /** This replica made `artifact` and added it to its validated pool. */
  madeOwn(artifact: ConsensusArtifact): void {
    if (SIGNED_BY_ITS_MAKER.has(artifact.type)) this.ownUnsynced = true;
  }

  /** A step's change set entered the validated pool: one log entry. */
  append(artifacts: readonly ConsensusArtifact[]): void {
    this.log.append(artifacts);
  }

  /** Before a flush: what this replica signed reaches the disk first. */
  syncBeforeSend(): void {
    if (this.ownUnsynced && !this.persistAfterSend) {
      this.log.sync();
      this.ownUnsynced = false;
    }
  }

  /** The status tick: everything appended so far becomes durable. */
  groupCommit(): void {
    this.log.sync();
    this.ownUnsynced = false;
  }

  /** The pool was purged below `bound` under CUP `cupHeight`: a newer CUP trims the log (once per CUP). */
  purged(cupHeight: Height, bound: Height): void {
    if (cupHeight > this.trimmedAtCup) {
      this.log.trimBelow(bound);
      this.trimmedAtCup = cupHeight;
    }
  }
}
