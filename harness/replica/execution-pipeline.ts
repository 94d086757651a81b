// A replica's execution engine in simulated time (issue 14 item 1): when it took a batch, when the
// batch's certified state exists (its certification share may be signed), when its full state hash
// exists (a checkpoint height's CUP share), and when the engine is free for the next batch. The
// replica asks before each delivery and wakes up at the times this reports; the state machine
// itself still executes at delivery — only what the replica may *say* about a height waits.
//
// Blocking checkpoints (the IC before the fix): the checkpoint is written after the round, and the
// height is certified and the next batch taken only once it is on disk. Background checkpoints:
// execution switches to a fresh copy of the state (a short pause) and goes on, certification too;
// the checkpoint and its manifest are written meanwhile, one at a time, and the CUP share waits for
// them.
import { assert } from "../assert.ts";
import type { Height, TimeUs } from "../types.ts";
import { batchDurations, type BatchDurations, type BatchWork, type ExecutionTimeModel } from "./execution-time.ts";

interface PendingHeight {
  readonly height: Height;
  /** The certified state of the height exists from then on. */
  readonly certifyAtUs: number;
  /** The full state hash (a checkpoint's manifest root) exists from then on. */
  readonly hashAtUs: number;
  certified: boolean;
}

export class ExecutionPipeline {
  private freeAtUs = 0;
  private checkpointWriterFreeAtUs = 0;
  /** Heights taken whose certification or state hash is still to come, in height order. */
  private readonly pending: PendingHeight[] = [];

  constructor(private readonly model: ExecutionTimeModel) {}

  /** The engine is free to take the next batch at `nowUs`. */
  canTake(nowUs: number): boolean {
    return nowUs >= this.freeAtUs;
  }

  /** The engine took the batch at `h` at `nowUs`, and it asked `work` of it. */
  took(h: Height, work: BatchWork, nowUs: number): BatchDurations {
    assert(this.canTake(nowUs), `batch ${h} taken at ${nowUs} while the engine is busy until ${this.freeAtUs}`);
    const last = this.pending[this.pending.length - 1];
    assert(last === undefined || last.height < h, `batch ${h} taken after ${last?.height}`);
    const d = batchDurations(work, this.model);
    const executedAt = nowUs + d.executeUs;
    let certifyAt = executedAt;
    let hashAt = executedAt;
    this.freeAtUs = executedAt;
    if (work.checkpoint !== undefined) {
      if (this.model.checkpoints === "blocking") {
        hashAt = certifyAt = this.freeAtUs = executedAt + d.checkpointUs;
      } else {
        certifyAt = this.freeAtUs = executedAt + d.checkpointBlockingUs;
        const start = Math.max(certifyAt, this.checkpointWriterFreeAtUs);
        hashAt = this.checkpointWriterFreeAtUs = start + d.checkpointUs;
      }
    }
    if (certifyAt > nowUs || hashAt > nowUs) this.pending.push({ height: h, certifyAtUs: certifyAt, hashAtUs: hashAt, certified: certifyAt <= nowUs });
    return d;
  }

  /** Whether the certified state of `h` exists at `nowUs` (heights never taken count as done). */
  certifiableBy(h: Height, nowUs: number): boolean {
    const p = this.find(h);
    return p === undefined || p.certifyAtUs <= nowUs;
  }

  /** Whether the full state hash of `h` exists at `nowUs`. */
  hashedBy(h: Height, nowUs: number): boolean {
    const p = this.find(h);
    return p === undefined || p.hashAtUs <= nowUs;
  }

  /**
   * Heights whose certified state came to exist by `nowUs` and were not reported yet, ascending:
   * the replica signs their certification shares now. Forgets heights that are complete.
   */
  takeCertifiable(nowUs: number): Height[] {
    const out: Height[] = [];
    for (const p of this.pending) {
      if (p.certifyAtUs > nowUs) break;
      if (!p.certified) out.push(p.height);
      p.certified = true;
    }
    // Complete heights go, wherever they stand: what stays is a few heights still executing and the
    // checkpoint heights whose manifest is still being written.
    let kept = 0;
    for (const p of this.pending) if (!p.certified || p.hashAtUs > nowUs) this.pending[kept++] = p;
    this.pending.length = kept;
    return out;
  }

  /** The next moment something of the above changes after `nowUs` (`batchesWaiting`: the engine's freeing counts). */
  nextChangeUs(nowUs: number, batchesWaiting: boolean): number | undefined {
    let next: number | undefined;
    const consider = (t: number): void => {
      if (t > nowUs && (next === undefined || t < next)) next = t;
    };
    if (batchesWaiting) consider(this.freeAtUs);
    for (const p of this.pending) {
      consider(p.certifyAtUs);
      consider(p.hashAtUs);
    }
    return next;
  }

  /** Busy until (for traces and tests). */
  get freeAt(): TimeUs {
    return this.freeAtUs as TimeUs;
  }

  private find(h: Height): PendingHeight | undefined {
    // Few entries (see takeCertifiable): a scan is enough.
    return this.pending.find((p) => p.height === h);
  }
}
