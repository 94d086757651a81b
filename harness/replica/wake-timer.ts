// The wake-up timer: a step that ends with nothing to do may still have work due at a known time
// — a block maker's or notary's delay expiring, a proposal's rank delay, the execution pipeline's
// next change (execution-time.ts). One timer is armed for the earliest of them; an earlier one
// replaces it, a later one waits behind it. Every deadline a step could meet without new input
// has this timer, which is what lets bundles that add nothing skip the step (idle-steps.ts).
import { blockMakerReadyAtUs, notaryReadyAtUs, validate, type ConsensusContext } from "../consensus/consensus.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { Env, TimerHandle } from "../sim/env.ts";
import type { TimeUs } from "../types.ts";

export const WAKE_TIMER = "wake";

export interface WakeTimerDeps {
  readonly env: Env<unknown>;
  readonly pool: ConsensusPool;
  readonly unitDelayMs: number;
  /** When the execution pipeline next changes what the replica may do (absent: never). */
  readonly nextExecutionChangeUs: (nowUs: TimeUs) => TimeUs | undefined;
}

export class WakeTimer {
  private armed: { handle: TimerHandle; at: TimeUs } | undefined;

  constructor(private readonly deps: WakeTimerDeps) {}

  /** When the armed timer fires (the idle-step probe's bound), if one is armed. */
  get at(): TimeUs | undefined {
    return this.armed?.at;
  }

  /** The timer fired: the next step arms a new one. */
  fired(): void {
    this.armed = undefined;
  }

  /** At the end of a step: arms (or moves earlier) the timer for the earliest deadline after now. */
  arm(ctx: ConsensusContext): void {
    const candidates = [blockMakerReadyAtUs(ctx), notaryReadyAtUs(ctx), this.earliestWaitingProposalUs(ctx), this.deps.nextExecutionChangeUs(ctx.nowUs)]
      .filter((t): t is TimeUs => t !== undefined && t > ctx.nowUs);
    if (candidates.length === 0) return;
    const at = Math.min(...candidates) as TimeUs;
    if (this.armed !== undefined) {
      if (this.armed.at <= at) return;
      this.deps.env.cancelTimer(this.armed.handle);
    }
    this.armed = { handle: this.deps.env.setTimer(at, WAKE_TIMER), at };
  }

  /** A proposal waiting for its rank delay becomes valid at a known time: wake up then. */
  private earliestWaitingProposalUs(ctx: ConsensusContext): TimeUs | undefined {
    const pool = this.deps.pool;
    let earliest: number | undefined;
    for (const artifact of pool.unvalidated.values()) {
      if (artifact.type !== "proposal") continue;
      const start = pool.roundStartUs(artifact.block.height);
      if (start === undefined || validate(ctx, artifact).kind !== "wait") continue;
      const at = start + artifact.block.rank * this.deps.unitDelayMs * 1000;
      if (at > ctx.nowUs) earliest = earliest === undefined ? at : Math.min(earliest, at);
    }
    return earliest as TimeUs | undefined;
  }
}
