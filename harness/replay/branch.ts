// "What if": replay a run to one of its events, then continue with an extra fault. Faults act at
// virtual times, so adding one that starts 1 µs after the chosen event leaves every earlier event
// as it was; the branch is recorded as a new run (with its own repro) and the shared prefix is
// verified against the original's prefix digests.
import type { FaultSpec } from "../faults/spec.ts";
import { runScenario } from "../scenario/runner.ts";
import { recordRun, type RecordedRun } from "./record.ts";
import { checkSnapshotFiles, ReproError, scenarioOf, type ReproBundle } from "./repro.ts";
import { readRepro } from "./repro.ts";

export interface BranchResult {
  readonly recorded: RecordedRun;
  readonly branchTimeUs: number;
  readonly fault: FaultSpec;
  /** Events the branch provably shares with the original (up to the last equal prefix digest). */
  readonly sharedEvents: number;
}

/** Shifts a fault whose times are relative to the branch point onto absolute run time. */
export function anchorFault(fault: FaultSpec, atS: number): FaultSpec {
  if (fault.kind === "crash") {
    return { ...fault, atS: atS + fault.atS, ...(fault.restartS === undefined ? {} : { restartS: atS + fault.restartS }) };
  }
  if (fault.kind === "storage") return { ...fault, atS: atS + fault.atS };
  const fromS = atS + (fault.fromS ?? 0);
  return { ...fault, fromS, ...(fault.toS === undefined ? {} : { toS: atS + fault.toS }) } as FaultSpec;
}

export function branchAt(bundle: ReproBundle, eventIndex: number, relativeFault: FaultSpec, outDir: string): BranchResult {
  if (!Number.isInteger(eventIndex) || eventIndex < 0 || eventIndex >= bundle.expected.traceEvents) {
    throw new ReproError(`--branch-at must be an event index in 0..${bundle.expected.traceEvents - 1}`);
  }
  checkSnapshotFiles(bundle);
  const scenario = scenarioOf(bundle);
  let branchTimeUs = 0;
  runScenario(scenario, { seed: bundle.seed, until: { kind: "event", index: eventIndex + 1 }, onFinish: (subnet) => { branchTimeUs = subnet.loop.now(); } });
  const fault = anchorFault(relativeFault, (branchTimeUs + 1) / 1e6);
  const branched = { ...scenario, name: `${scenario.name}-branch`, faults: [...(scenario.faults ?? []), fault] };
  const recorded = recordRun({ scenario: branched, seed: bundle.seed, outDir, keepTrace: true });
  const branchBundle = readRepro(recorded.reproPath).bundle;
  let sharedCheckpoints = 0;
  while (sharedCheckpoints < Math.min(bundle.expected.checkpoints.length, branchBundle.expected.checkpoints.length) && bundle.expected.checkpoints[sharedCheckpoints] === branchBundle.expected.checkpoints[sharedCheckpoints]) {
    sharedCheckpoints++;
  }
  return { recorded, branchTimeUs, fault, sharedEvents: sharedCheckpoints * bundle.options.checkpointEvery };
}
