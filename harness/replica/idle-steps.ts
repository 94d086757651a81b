// Issue 13 item 3, "no consensus step for a bundle that adds nothing": 39 % of the consensus
// bundles a replica receives carry only artifacts it already holds (every peer relays proposals,
// status answers repeat what others sent), or only adverts, requests and status reports, which it
// answers without touching its pool. A step then finds nothing new to read, so it is skipped.
//
// This is sound only if everything a step does without new input — block making after the rank
// delay, notarization after the notary delay, … — has a wake-up timer of its own: a skipped step
// must never have found work. `probe` checks exactly that: before every input (a bundle, a
// timer) it runs a step, which must do nothing unless a timer of the replica is due by now — so
// after any step the armed timers are at or before every deadline that can make work
// (test/lab/idle-steps.test.ts runs it over faulty scenarios).
import { assert } from "../assert.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { WireItem } from "../p2p/messages.ts";

/** `skip` (default): no step for a bundle that adds nothing; `run`: a step for every bundle; `probe`: skip, and check the timers. */
export type IdleSteps = "skip" | "run" | "probe";

/** Whether receiving `item` (judged before it is received) can give a step something new to read. */
export function feedsConsensus(item: WireItem, pool: ConsensusPool): boolean {
  switch (item.kind) {
    case "artifact":
      return !pool.has(item.artifact.id);
    // A snapshot moves the executed height; certifications move the certified height (notary delay).
    case "state-response":
    case "certification-share":
    case "certification":
      return true;
    // Answered at once (or, for ingress, read when a block is made): the pool is unchanged.
    case "ingress":
    case "advert":
    case "request":
    case "status":
    case "state-request":
      return false;
  }
}

/** What the probe saw: a step run just before an input, with no new input of its own. */
export interface IdleStepProbe {
  /** Artifacts applied and batches delivered by that step. */
  readonly work: number;
  readonly nowUs: number;
  /**
   * The replica's wake-up timer, if armed. (Not the status timer: it runs a step once a second,
   * which would hide a missing wake-up as a delay of up to a second.)
   */
  readonly earliestTimerUs: number | undefined;
  readonly replica: number;
  /** The input about to be handled. */
  readonly input: string;
}

/** Work that waited with no timer due: without the input that happened to come, it would have waited longer. */
export function idleStepProblem(probe: IdleStepProbe): string | undefined {
  if (probe.work === 0) return undefined;
  if (probe.earliestTimerUs !== undefined && probe.earliestTimerUs <= probe.nowUs) return undefined;
  return `r${probe.replica} at ${probe.nowUs} µs, before ${probe.input}: a step with no new input did ${probe.work} things and no timer was due (earliest ${probe.earliestTimerUs ?? "none"})`;
}

export function assertNoIdleWork(probe: IdleStepProbe): void {
  const problem = idleStepProblem(probe);
  assert(problem === undefined, `missing wake-up timer: ${problem}`);
}
