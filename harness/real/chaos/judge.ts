// Judges a real run with the simulator's checkers (issue 12 item 9): every replica's event file
// becomes the RunRecorder's observations (times from the run's origin), the same `runChecks`
// (safety, protocol rules, state agreement, validity, liveness) and `checkAcknowledgedUpdates` run
// on them, plus one check only a real client can make — every update whose certified reply the
// client holds is in the final state of every live honest replica that executed its height.
// The result is a RunReport with the simulated run's fields.
import { updateLatencyReport } from "../../scenario/update-latency.ts";
import { runChecks, verdictOf, type Violation } from "../../checks/checks.ts";
import { checkAcknowledgedUpdates } from "../../checks/durability.ts";
import { RunRecorder } from "../../checks/observations.ts";
import { compileFaults } from "../../faults/schedule.ts";
import { blockRowsOf, histogramOf, matchesExpectation, stateHashTableOf, type ReplicaSummary, type RunReport } from "../../scenario/runner.ts";
import type { Scenario } from "../../scenario/scenario.ts";
import { faultsTolerated, replicaId, replicaName, secondsToUs, type HashHex, type ReplicaId } from "../../types.ts";
import { nodeDir } from "../run-dir.ts";
import { join } from "node:path";
import { readEvents, replayEvents, type ReplicaEvent } from "./events.ts";
import { REAL_SUBNET } from "./plan.ts";

/** A live honest replica's state at the end, as it answered the `final-state` question. */
export interface FinalState {
  readonly executedHeight: number;
  readonly known: ReadonlySet<string>;
}

export interface JudgeInput {
  /** The scenario as run (its consensus settings those of the real cluster). */
  readonly scenario: Scenario;
  readonly seed: number;
  readonly dir: string;
  /** Wall µs of the scenario's second 0. */
  readonly originUs: number;
  /** µs from the origin when the run ended. */
  readonly endUs: number;
  /** The last heal (µs from the origin) as applied; undefined: no fault; Infinity: one never heals. */
  readonly healUs: number | undefined;
  readonly finalStates: ReadonlyMap<ReplicaId, FinalState>;
  /** Every request the client sent (the deployment's and the workload's): the valid ingress. */
  readonly validIngress: ReadonlySet<HashHex>;
  /** Workload requests sent to an honest replica: when (µs from the origin) — the liveness clock. */
  readonly submitTimes: ReadonlyMap<HashHex, number>;
  /** Workload requests whose certified reply the client verified. */
  readonly acknowledged: readonly HashHex[];
  /** Every workload request: when (µs from the origin) it was first sent. */
  readonly firstSubmitUs: ReadonlyMap<HashHex, number>;
  /** Acknowledged requests: when (µs from the origin) the client held the verified certified reply. */
  readonly acknowledgedAtUs: ReadonlyMap<HashHex, number>;
  readonly notes: readonly string[];
}

export function judgeRealRun(input: JudgeInput): RunReport {
  const { scenario } = input;
  const n = scenario.n;
  const faults = compileFaults(scenario.faults ?? []);
  const recorder = new RunRecorder(n, faults.byzantine);
  const eventCounts: Record<string, number> = {};
  let lines = 0;
  let malicious = 0;
  for (let r = 0; r < n; r++) {
    const events = readEvents(join(nodeDir(input.dir, REAL_SUBNET, replicaId(r)), "events.jsonl"));
    countKinds(events, eventCounts);
    const replayed = replayEvents(recorder, replicaId(r), events, input.originUs);
    lines += replayed.lines;
    malicious += replayed.malicious;
  }
  const checks = runChecks({
    recorder,
    byzantine: faults.byzantine,
    permanentlyDown: faults.permanentlyDown,
    validIngress: input.validIngress,
    submitTimes: input.submitTimes,
    healUs: input.healUs,
    endUs: input.endUs,
    livenessBoundUs: secondsToUs(scenario.livenessBoundS ?? 30),
  });
  const judged = [...input.finalStates.keys()].filter((r) => !faults.byzantine.has(r) && !faults.permanentlyDown.has(r));
  if (checks.livenessChecked) {
    checks.violations.push(
      ...checkAcknowledgedUpdates({
        recorder,
        replicas: judged,
        endUs: input.endUs,
        stateOf: (r) => {
          const state = input.finalStates.get(r);
          return state === undefined ? undefined : { executedHeight: state.executedHeight, knows: (id) => state.known.has(id) };
        },
      }),
      ...checkClientAcknowledged(recorder, judged, input.finalStates, input.acknowledged),
    );
  }
  const verdict = verdictOf(checks.violations);
  const replicas: ReplicaSummary[] = Array.from({ length: n }, (_, i) => {
    const id = replicaId(i);
    const delivered = recorder.finalHeight(id);
    return {
      replica: replicaName(id),
      role: faults.byzantine.has(id) ? "byzantine" : faults.permanentlyDown.has(id) ? "crashed" : "honest",
      finalizedHeight: delivered,
      deliveredHeight: delivered,
      stateHash: recorder.delivered[i]?.get(delivered as never)?.stateHash ?? "",
    };
  });
  // As in simulation: from the first submission to the first finalization by an honest replica.
  const latencies: number[] = [];
  for (const [id, submittedUs] of input.firstSubmitUs) {
    const at = recorder.finalizedIngressAt.get(id);
    if (at !== undefined) latencies.push(Math.max(0, at - submittedUs) / 1000);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number | null => (latencies.length === 0 ? null : Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0));
  return {
    scenario: scenario.name,
    description: scenario.description,
    seed: input.seed,
    n,
    f: faultsTolerated(n),
    durationS: scenario.durationS,
    verdict,
    ...(scenario.expect === undefined ? {} : { expected: scenario.expect }),
    asExpected: matchesExpectation(scenario, verdict, checks.violations),
    // A real run has no trace digest: wall clocks, sockets and the scheduler make every run differ.
    traceDigest: "",
    traceEvents: lines,
    maliciousEvents: malicious,
    replicas,
    violations: checks.violations,
    livenessChecked: checks.livenessChecked,
    notes: [...input.notes, ...checks.notes],
    ingress: { submitted: input.firstSubmitUs.size, valid: input.firstSubmitUs.size, finalized: latencies.length, latencyMsP50: pct(50), latencyMsP99: pct(99) },
    // Real mode counts no messages: the proxies move byte streams.
    network: { sent: 0, delivered: 0, dropped: 0, duplicated: 0, bytesSent: 0 },
    // Each replica process executes every batch it delivers on its own: nothing is shared or audited.
    execution: { sharing: false, stateMachine: "execution", executions: recorder.delivered.reduce((sum, heights) => sum + (heights?.size ?? 0), 0), shared: 0, audited: 0, mismatches: 0 },
    eventCounts,
    faults: scenario.faults ?? [],
    progress: recorder.progress.map((samples) => samples.map(([t, h]) => [Math.round(t / 1000), h] as const)),
    blocks: blockRowsOf(recorder, faults.byzantine),
    latencyHistogram: histogramOf(latencies),
    stateHashTable: stateHashTableOf(recorder, checks.violations, scenario),
    updates: updateLatencyReport(
      [...input.acknowledgedAtUs].flatMap(([id, atUs]) => {
        const sentUs = input.firstSubmitUs.get(id);
        return sentUs === undefined ? [] : [[sentUs / 1000, Math.max(0, atUs - sentUs) / 1000] as const];
      }),
      undefined,
      [],
    ),
  };
}

/**
 * The client's view of durability: an update it holds a certified reply for must be in the final
 * state of every live honest replica that executed the height it was finalized at (one that is
 * still behind is judged by liveness instead).
 */
export function checkClientAcknowledged(recorder: RunRecorder, replicas: readonly ReplicaId[], finalStates: ReadonlyMap<ReplicaId, FinalState>, acknowledged: readonly HashHex[]): Violation[] {
  const heightOf = finalizedHeights(recorder);
  const violations: Violation[] = [];
  for (const r of replicas) {
    const state = finalStates.get(r);
    if (state === undefined) continue;
    const lost = acknowledged.filter((id) => {
      const h = heightOf.get(id);
      return h !== undefined && h <= state.executedHeight && !state.known.has(id);
    });
    if (lost.length === 0) continue;
    violations.push({
      property: "invariant",
      replicas: [replicaName(r)],
      message: `acknowledged updates lost: the client holds certified replies for ${lost.length} update(s) that ${replicaName(r)}'s state (at height ${state.executedHeight}) does not hold, e.g. ${lost.slice(0, 3).map((id) => id.slice(0, 12)).join(", ")}`,
    });
  }
  return violations;
}

/** The lowest height at which any replica executed each message. */
function finalizedHeights(recorder: RunRecorder): Map<string, number> {
  const heights = new Map<string, number>();
  for (const byHeight of recorder.delivered) {
    for (const [h, batch] of byHeight) {
      for (const m of batch.block.ingress) if ((heights.get(m.id) ?? Infinity) > h) heights.set(m.id, h);
    }
  }
  return heights;
}

function countKinds(events: readonly ReplicaEvent[], into: Record<string, number>): void {
  for (const e of events) {
    const kind = e.kind === "share" ? `share.${e.share}` : e.kind;
    into[kind] = (into[kind] ?? 0) + 1;
  }
}
