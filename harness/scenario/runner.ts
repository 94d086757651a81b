// Runs one scenario with one seed: builds the subnet, installs workload and faults on the event
// loop, runs virtual time to the end (reporting progress), checks the properties and returns the
// report. Pure with respect to its inputs: the same scenario and seed give the same trace digest.
import type { WireMode } from "../p2p/wire-mode.ts";
import { runChecks, verdictOf, type CheckResult, type VerdictText, type Violation } from "../checks/checks.ts";
import { RunRecorder } from "../checks/observations.ts";
import { checkAcknowledgedUpdates, type DurabilityInput } from "../checks/durability.ts";
import { compileFaults } from "../faults/schedule.ts";
import { windowOf, type DivergeTarget, type FaultSpec } from "../faults/spec.ts";
import { SimSubnet } from "../replica/subnet.ts";
import { Rng } from "../sim/rng.ts";
import type { EventLoop } from "../sim/event-loop.ts";
import { Trace, type TraceSink } from "../sim/trace.ts";
import { faultsTolerated, replicaId, replicaName, secondsToUs, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import type { MessageRouting } from "../replica/interfaces.ts";
import type { Block } from "../consensus/artifacts.ts";
import { declaredCanisters, consensusConfigOf, executionTimeOption, networkConfigOf, checkScenario, ScenarioError, type Scenario, type XNetPartitionSpec } from "./scenario.ts";
import { expandFleets, fleetsOf } from "./fleets.ts";
import { ExecutionStateMachine, type ExecutionMachineOptions } from "../replica/execution-state-machine.ts";
import type { ExecutionCanary } from "../execution/executor.ts";
import type { TrappedChange } from "../replica/trap-watch.ts";
import { checkExecutionAudit } from "../checks/execution-audit.ts";
import { executionSharingOf, executionStatsOf, kvSharingOf, sharedExecutionOf, type ExecutionSharingOptions } from "./execution-sharing.ts";
import type { BatchOutcome } from "../replica/shared-execution.ts";
import type { KvBatchOutcome } from "../replica/kv-state-machine.ts";
import { checkTrappedUpdates, type TrappedChangeSeen } from "../checks/traps.ts";
import type { ExecutionProgress, ProgressCallback, ProgressVerdict } from "../execution/progress.ts";
import { Registry } from "../routing/registry.ts";
import type { CertificationObservation } from "../checks/invariants.ts";
import { installActions, type ProbeRecord } from "./actions.ts";
import { actionHost, canisterIdsOf, certificationRecorder, certificationRefusalRecorder, fleetIdsOf, genesisOf, runAppChecks, type TrackedCall, type World } from "./app-world.ts";
import { runMultiSubnetScenario } from "./ic-runner.ts";
import { UpdateLatencyRecorder, type UpdateLatencyReport } from "./update-latency.ts";
import { isTerminal } from "../replica/interfaces.ts";
import type { SimDisk } from "../sim/disk.ts";
import { Workload } from "./workload.ts";

/** Where to stop a run early (replay --until). */
export type StopPoint =
  | { readonly kind: "event"; readonly index: number }
  | { readonly kind: "height"; readonly height: number }
  | { readonly kind: "time"; readonly seconds: number };

export interface RunOptions extends ExecutionSharingOptions {
  readonly seed: number;
  readonly traceSink?: TraceSink;
  readonly checkpointEvery?: number;
  /** Called with the prefix digest every `checkpointEvery` events; return false to stop the run. */
  readonly onCheckpoint?: (events: number, digest: string) => boolean;
  readonly until?: StopPoint;
  /**
   * Asked as the run goes (between events): true stops the run there, as `until` does. For
   * callers that know their stop point only when they see it (snapshot save's height on a replica).
   */
  readonly stopWhen?: () => boolean;
  /** Sees the subnet after the run (dumps, inspection). */
  readonly onFinish?: (subnet: SimSubnet) => void;
  /** Called right after a replica executed a batch, with its state machine (state diffs). */
  readonly onDelivered?: (replica: ReplicaId, block: Block, machine: MessageRouting) => void;
  /** Called about every `progressEveryS` simulated seconds. */
  readonly onProgress?: (simulatedS: number, totalS: number, events: number) => void;
  readonly progressEveryS?: number;
  /**
   * Sees each replica's canister executions as they start and every 10^9 instructions of long
   * ones (a progress line, a wall-time budget); "abort" ends the run with ExecutionAborted, a
   * harness error. Off by default; results never depend on it.
   */
  readonly onExecutionProgress?: (replica: string, progress: ExecutionProgress) => ProgressVerdict;
  /** Tests only: a known bug switched on in every replica's executor (see ExecutionCanary). */
  readonly executionCanary?: ExecutionCanary;
  /** Whether recipients get the sender's objects or their own decoded copies (default: SUBNETLAB_WIRE). */
  readonly wire?: WireMode;
}

/**
 * The ExecutionStateMachine options that watch trapped updates (honest replicas only: what they
 * report goes to `into` for harness/checks/traps.ts) and plant the test-only execution canary.
 */
export function trapWatchOf(options: RunOptions, replica: string, honest: boolean, into: TrappedChangeSeen[]): Pick<ExecutionMachineOptions, "onTrappedChange" | "executionCanary"> {
  return {
    ...(honest ? { onTrappedChange: (h: Height, change: TrappedChange) => into.push({ replica, height: h, ...change }) } : {}),
    ...(options.executionCanary === undefined ? {} : { executionCanary: options.executionCanary }),
  };
}

/** The replica-bound progress callback of RunOptions.onExecutionProgress, if any. */
export function executionProgressOf(options: RunOptions, replica: string): { executionProgress: ProgressCallback } | Record<string, never> {
  const watch = options.onExecutionProgress;
  return watch === undefined ? {} : { executionProgress: (p) => watch(replica, p) };
}

export interface ReplicaSummary {
  readonly replica: string;
  readonly role: "honest" | "byzantine" | "crashed";
  readonly finalizedHeight: number;
  readonly deliveredHeight: number;
  readonly stateHash: string;
}

export interface RunReport {
  readonly scenario: string;
  readonly description: string;
  readonly seed: number;
  readonly n: number;
  readonly f: number;
  readonly durationS: number;
  readonly verdict: VerdictText;
  readonly expected?: Scenario["expect"];
  /** True when the verdict (and named replicas) match the scenario's expectation. */
  readonly asExpected: boolean;
  readonly traceDigest: string;
  readonly traceEvents: number;
  readonly maliciousEvents: number;
  readonly replicas: readonly ReplicaSummary[];
  readonly violations: readonly Violation[];
  readonly livenessChecked: boolean;
  readonly notes: readonly string[];
  readonly ingress: { readonly submitted: number; readonly valid: number; readonly finalized: number; readonly latencyMsP50: number | null; readonly latencyMsP99: number | null };
  readonly network: { readonly sent: number; readonly delivered: number; readonly dropped: number; readonly duplicated: number; readonly bytesSent: number };
  readonly eventCounts: Record<string, number>;
  readonly faults: Scenario["faults"];
  /** Per replica: [simulated ms, height] samples of delivered height, for charts. */
  readonly progress: readonly (readonly (readonly [number, number])[])[];
  /** Finalized chain as seen by the most advanced honest replica: one row per height. */
  readonly blocks: readonly BlockRow[];
  /** Ingress latency (submit → first honest finalization) histogram. */
  readonly latencyHistogram: readonly { readonly upToMs: number; readonly count: number }[];
  /** State hashes (16 hex chars) per replica at sampled heights: checkpoints, divergences, the end. */
  readonly stateHashTable: { readonly heights: readonly number[]; readonly rows: readonly { readonly replica: string; readonly hashes: readonly (string | null)[] }[] };
  /** Present when the run stopped before its end (replay --until, or a replay mismatch). */
  readonly stoppedAt?: { readonly event: number; readonly timeMs: number };
  /** Answers of the scenario's probe actions, by label. */
  readonly probes?: readonly ProbeRecord[];
  /** Multi-subnet runs: the subnet whose replicas each entry of `faults` means (same order). */
  readonly faultSubnets?: readonly string[];
  /** Multi-subnet runs: the XNet partitions between subnets. */
  readonly xnetFaults?: readonly XNetPartitionSpec[];
  /**
   * Batches applied by replicas, adopted from another replica, audited (harness/replica/shared-execution.ts):
   * executions on canister subnets, key-value batches on the others (`stateMachine` says which).
   */
  readonly execution?: ExecutionReport;
  /** Execution subnets (single-subnet runs): submission → certified answer, the certified height's worst pause. */
  readonly updates?: UpdateLatencyReport;
}

export type ExecutionReport = ReturnType<typeof executionStatsOf>;

export interface BlockRow {
  readonly height: number;
  readonly timeMs: number;
  readonly rank: number;
  readonly maker: string;
  readonly ingress: number;
  readonly payloadBytes: number;
}

export function runScenario(scenario: Scenario, options: RunOptions): RunReport {
  checkScenario(scenario);
  if (scenario.subnets !== undefined) return runMultiSubnetScenario(scenario, options);
  const root = Rng.fromSeed(options.seed);
  const faults = compileFaults(scenario.faults ?? []);
  const { trace, halted } = runTrace(options);
  const recorder = new RunRecorder(scenario.n, faults.byzantine);
  const registry = Registry.of([{ name: "a", size: scenario.n }]);
  const canisterIds = canisterIdsOf(scenario, registry);
  const genesis = genesisOf(scenario, expandFleets(scenario.canisters ?? []), canisterIds);
  const subnetRef: { current?: SimSubnet } = {};
  const certifications: CertificationObservation[] = [];
  const trappedChanges: TrappedChangeSeen[] = [];
  // One of the two, by the subnet's kind: canister subnets share executions, the others key-value batches.
  const sharedExecution = genesis.length === 0 ? undefined : sharedExecutionOf<BatchOutcome>(scenario, options, "a", root.fork("subnet"));
  const sharedKvBatches = genesis.length === 0 ? sharedExecutionOf<KvBatchOutcome>(scenario, options, "a", root.fork("subnet")) : undefined;
  const sharedBatches = [sharedExecution, sharedKvBatches].filter((s) => s !== undefined);
  const onCertified = certificationRecorder("", () => subnetRef.current, certifications);
  const onCertificationRefused = certificationRefusalRecorder("", certifications);
  const updates = genesis.length === 0 ? undefined : new UpdateLatencyRecorder(faults.byzantine);
  const subnet = new SimSubnet({
    n: scenario.n,
    consensus: consensusConfigOf(scenario),
    network: networkConfigOf(scenario),
    rng: root.fork("subnet"),
    trace,
    observer: {
      onBatchDelivered: (replica, block, stateHash, atUs) => {
        recorder.onBatchDelivered(replica, block, stateHash, atUs);
        if (options.onDelivered === undefined) return;
        const machine = subnetRef.current?.replica(replica)?.stateMachine;
        if (machine !== undefined) options.onDelivered(replica, block, machine);
      },
      onStateSynced: (replica, h, atUs) => recorder.onStateSynced(replica, h, atUs),
      ...recorder.protocolHooks(),
      onCertified: (replica, cert, atUs) => {
        recorder.onCertified(replica, cert, atUs);
        onCertified(replica, cert);
        updates?.onCertified(replica, cert, atUs);
      },
      onCertificationRefused: (replica, cert, own) => onCertificationRefused(replica, cert, own),
    },
    behaviourOf: (id, env) => faults.behaviourOf(id, env),
    ...(options.wire === undefined ? {} : { wire: options.wire }),
    ...(scenario.crypto === undefined ? {} : { crypto: scenario.crypto }),
    ...(sharedKvBatches === undefined ? {} : kvSharingOf(sharedKvBatches, options, (i) => replicaName(replicaId(i)), faults.byzantine)),
    ...(sharedExecution === undefined ? {} : {
      makeStateMachine: (id: ReplicaId, disk: SimDisk) => new ExecutionStateMachine(disk, {
        genesis,
        ...executionProgressOf(options, replicaName(id)),
        ...trapWatchOf(options, replicaName(id), !faults.byzantine.has(id), trappedChanges),
        ...executionSharingOf(sharedExecution, options, id, replicaName(id), faults.byzantine.has(id)),
        checkpointInterval: consensusConfigOf(scenario).dkgIntervalLength + 1,
        corrupt: executionCorruptor(scenario.faults ?? [], id, "state", (h) => trace.record(subnetRef.current?.loop.now() ?? (0 as TimeUs), id, { kind: "fault.diverge-execution", malicious: true, detail: { height: h } })),
        corruptReplies: executionCorruptor(scenario.faults ?? [], id, "replies", (h) => trace.record(subnetRef.current?.loop.now() ?? (0 as TimeUs), id, { kind: "fault.diverge-replies", malicious: true, detail: { height: h } })),
        perturbExecution: executionCorruptor(scenario.faults ?? [], id, "execution", (h) => trace.record(subnetRef.current?.loop.now() ?? (0 as TimeUs), id, { kind: "fault.diverge-inside-execution", malicious: true, detail: { height: h } })),
        subnet: { id: registry.subnets[0]!.id, registry, publicKeyDerOf: () => subnetRef.current?.certificationScheme.subnetPublicKeyDer },
        ...(scenario.consensus?.canary === "skip-checksum" ? { skipChecksums: true } : {}),
        ...(scenario.consensus?.canary === "state-sync-unverified" ? { snapshotCanary: "state-sync-unverified" as const } : {}),
      }),
    }),
    processingDelayUs: (id, now) => faults.processingDelayUs(id, now),
    ...executionTimeOption(scenario),
  });
  subnetRef.current = subnet;
  const workload = new Workload(
    scenario.workload ?? { ratePerSec: 0 },
    root.fork("workload"),
    subnet.ingressAuth,
    scenario.n,
    (to, message) => subnet.submitIngress(to, message),
    (id) => recorder.isFinalized(id),
    trace,
    canisterIds,
    fleetIdsOf(fleetsOf(declaredCanisters(scenario)), canisterIds),
  );
  faults.schedule(subnet, trace);
  const world: World = {
    loop: subnet.loop,
    trace,
    canisterIds,
    subnets: [{ name: "a", prefix: "", subnet, byzantine: faults.byzantine, canisters: new Set(expandFleets(scenario.canisters ?? []).map((c) => c.name)) }],
    fleets: fleetsOf(declaredCanisters(scenario)),
  };
  const actions = installActions(scenario.actions ?? [], actionHost(world));
  if ((scenario.workload?.ratePerSec ?? 0) > 0) workload.install(subnet.loop, scenario.durationS);
  subnet.start();
  const stoppedEarly = driveRun(scenario, options, subnet.loop, trace, halted, (until) => Array.from({ length: scenario.n }, (_, i) => subnet.replica(replicaId(i))?.finalizedHeight ?? 0).some((h) => h >= until));
  options.onFinish?.(subnet);
  if (!stoppedEarly) {
    for (let i = 0; i < scenario.n; i++) {
      const r = subnet.replica(replicaId(i));
      trace.record(subnet.loop.now(), i, { kind: "final", detail: { finalized: r?.finalizedHeight ?? -1, delivered: r?.deliveredHeight ?? -1 } });
    }
  }
  // Liveness is owed from the moment an honest replica holds the message: one handed only to a
  // Byzantine replica may be dropped, and the client's retry to another replica starts the clock.
  const submitTimes = new Map<HashHex, number>();
  for (const [id, s] of workload.submitted) {
    const honest = s.acceptedBy.find((a) => !faults.byzantine.has(a.replica));
    if (honest !== undefined) submitTimes.set(id, honest.atUs);
  }
  const checks = runChecks({
    recorder,
    byzantine: faults.byzantine,
    permanentlyDown: faults.permanentlyDown,
    validIngress: new Set([...workload.validIds(), ...actions.messageIds()]),
    submitTimes,
    healUs: faults.lastHealUs,
    endUs: subnet.loop.now(),
    livenessBoundUs: secondsToUs(scenario.livenessBoundS ?? 30),
  });
  // Acknowledged updates survive storage faults: judged when the run ends a bound after the last heal.
  if (!stoppedEarly && checks.livenessChecked) checks.violations.push(...checkAcknowledgedUpdates(durabilityInput(subnet, recorder, faults)));
  checks.violations.push(...checkTrappedUpdates(trappedChanges));
  checks.violations.push(...checkExecutionAudit(sharedBatches.flatMap((s) => s.mismatches)));
  if (!stoppedEarly && genesis.length > 0) {
    const finalizedCalls: TrackedCall[] = [];
    const names = new Map([...canisterIds].map(([name, id]) => [id, name]));
    for (const [id, s] of workload.submitted) {
      const name = names.get(s.message.call?.canister ?? "");
      if (s.valid && name !== undefined && recorder.isFinalized(id)) finalizedCalls.push({ id, hostCanister: name });
    }
    for (const a of actions.actions) if (a.messageId !== undefined) finalizedCalls.push({ id: a.messageId as HashHex, hostCanister: a.canister });
    checks.violations.push(...runAppChecks({ world, scenario, actions, finalizedCalls, certifications: new Map([["a", certifications]]) }));
  }
  const report = {
    ...buildReport(scenario, options.seed, subnet, recorder, workload, trace, checks, faults),
    ...(actions.probes.length === 0 ? {} : { probes: actions.probes }),
    execution: executionStatsOf(sharedBatches, sharedKvBatches === undefined ? "execution" : "key-value"),
    ...(updates === undefined || stoppedEarly ? {} : { updates: updateLatencyOf(updates, workload, subnet, faults, consensusConfigOf(scenario).dkgIntervalLength + 1) }),
  };
  return stoppedEarly ? { ...report, stoppedAt: { event: trace.length, timeMs: Math.round(subnet.loop.now() / 1000) } } : report;
}


/** Certified update latency of the workload's valid messages, answered heights read from a live honest replica. */
function updateLatencyOf(updates: UpdateLatencyRecorder, workload: Workload, subnet: SimSubnet, faults: ReturnType<typeof compileFaults>, checkpointInterval: number): UpdateLatencyReport {
  const witness = Array.from({ length: subnet.n }, (_, i) => replicaId(i)).find((r) => !faults.byzantine.has(r) && subnet.replica(r) !== undefined);
  const machine = witness === undefined ? undefined : subnet.replica(witness)?.stateMachine;
  const submitted = new Map<HashHex, number>();
  for (const [id, s] of workload.submitted) if (s.valid) submitted.set(id, s.firstSubmitUs);
  return updates.report(submitted, (id) => {
    const status = machine?.ingressStatus(id);
    return status !== undefined && isTerminal(status) ? status.height : undefined;
  }, checkpointInterval);
}

/** What the durability check needs: the live honest replicas' states at the end of the run. */
export function durabilityInput(subnet: SimSubnet, recorder: RunRecorder, faults: ReturnType<typeof compileFaults>): DurabilityInput {
  const replicas = Array.from({ length: subnet.n }, (_, i) => replicaId(i)).filter((r) => !faults.byzantine.has(r) && !faults.permanentlyDown.has(r));
  return {
    recorder,
    replicas,
    endUs: subnet.loop.now(),
    stateOf: (r) => {
      const machine = subnet.replica(r)?.stateMachine;
      return machine === undefined ? undefined : { executedHeight: machine.expectedBatchHeight() - 1, knows: (id) => machine.ingressStatus(id) !== undefined };
    },
  };
}

/**
 * For replicas with a `diverge` fault, on an execution subnet: perturb the state after every
 * batch whose time falls in the fault's window (logged once per height as malicious).
 */
export function executionCorruptor(faults: readonly FaultSpec[], id: ReplicaId, target: DivergeTarget, log: (h: number) => void): ((h: number, timeNs: bigint) => boolean) | undefined {
  const windows = faults.filter((f) => f.kind === "diverge" && f.replicas.includes(id) && (f.target ?? "state") === target).map(windowOf);
  if (windows.length === 0) return undefined;
  return (h, timeNs) => {
    const s = Number(timeNs / 1_000_000n) / 1000;
    const hit = windows.some((w) => s >= w.fromS && (w.toS === undefined || s < w.toS));
    if (hit) log(h);
    return hit;
  };
}

/** The run's trace; `halted()` turns true when the checkpoint callback asks to stop (replay). */
export function runTrace(options: RunOptions): { trace: Trace; halted: () => boolean } {
  let halted = false;
  const trace = new Trace(
    options.traceSink,
    options.onCheckpoint === undefined
      ? undefined
      : { every: options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY, onCheckpoint: (events, digest) => { if (options.onCheckpoint?.(events, digest) === false) halted = true; } },
  );
  return { trace, halted: () => halted };
}

/**
 * Runs the loop to the scenario's end in progress steps, or until the stop point (`--until`, a
 * halted replay). `reachedHeight(h)`: some replica finalized height h. Returns "stopped early".
 */
export function driveRun(scenario: Scenario, options: RunOptions, loop: EventLoop, trace: Trace, halted: () => boolean, reachedHeight: (h: number) => boolean): boolean {
  const until = options.until;
  const endUs = until?.kind === "time" ? Math.min(secondsToUs(until.seconds), secondsToUs(scenario.durationS)) : secondsToUs(scenario.durationS);
  const stepUs = secondsToUs(options.progressEveryS ?? 5);
  const stopNow = (): boolean =>
    halted() || (until?.kind === "event" && trace.length >= until.index) || (until?.kind === "height" && reachedHeight(until.height)) || options.stopWhen?.() === true;
  const watch = until === undefined && options.onCheckpoint === undefined && options.stopWhen === undefined ? undefined : stopNow;
  for (let t = Math.min(stepUs, endUs); ; t = Math.min(t + stepUs, endUs)) {
    const finished = loop.runUntil(t as TimeUs, watch);
    options.onProgress?.(loop.now() / 1e6, scenario.durationS, loop.executed);
    if (!finished) return true;
    if (t >= endUs) return false;
  }
}

/** Trace events between two prefix digests in repro bundles (replay bisects within one window). */
export const DEFAULT_CHECKPOINT_EVERY = 1024;

function buildReport(
  scenario: Scenario,
  seed: number,
  subnet: SimSubnet,
  recorder: RunRecorder,
  workload: Workload,
  trace: Trace,
  checks: CheckResult,
  faults: ReturnType<typeof compileFaults>,
): RunReport {
  const verdict = verdictOf(checks.violations);
  const replicas: ReplicaSummary[] = [];
  for (let i = 0; i < scenario.n; i++) {
    const id = replicaId(i);
    const r = subnet.replica(id);
    const delivered = recorder.finalHeight(id);
    const last = recorder.delivered[i]?.get(delivered as never);
    replicas.push({
      replica: replicaName(id),
      role: faults.byzantine.has(id) ? "byzantine" : r === undefined ? "crashed" : "honest",
      finalizedHeight: r?.finalizedHeight ?? delivered,
      deliveredHeight: delivered,
      stateHash: last?.stateHash ?? "",
    });
  }
  const latencies: number[] = [];
  let valid = 0;
  for (const [id, s] of workload.submitted) {
    if (!s.valid) continue;
    valid++;
    const at = recorder.finalizedIngressAt.get(id);
    if (at !== undefined) latencies.push((at - s.firstSubmitUs) / 1000);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number | null => (latencies.length === 0 ? null : Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0));
  return {
    scenario: scenario.name,
    description: scenario.description,
    seed,
    n: scenario.n,
    f: faultsTolerated(scenario.n),
    durationS: scenario.durationS,
    verdict,
    ...(scenario.expect === undefined ? {} : { expected: scenario.expect }),
    asExpected: matchesExpectation(scenario, verdict, checks.violations),
    traceDigest: trace.digest(),
    traceEvents: trace.length,
    maliciousEvents: trace.maliciousCount,
    replicas,
    violations: checks.violations,
    livenessChecked: checks.livenessChecked,
    notes: checks.notes,
    ingress: { submitted: workload.submitted.size, valid, finalized: latencies.length, latencyMsP50: pct(50), latencyMsP99: pct(99) },
    network: { ...subnet.network.stats },
    eventCounts: trace.countsByKind(),
    faults: scenario.faults ?? [],
    progress: recorder.progress.map((samples) => samples.map(([t, h]) => [Math.round(t / 1000), h] as const)),
    blocks: blockRowsOf(recorder, faults.byzantine),
    latencyHistogram: histogramOf(latencies),
    stateHashTable: stateHashTableOf(recorder, checks.violations, scenario),
  };
}

export function blockRowsOf(recorder: RunRecorder, byzantine: ReadonlySet<number>): BlockRow[] {
  let best = -1;
  for (let r = 0; r < recorder.n; r++) {
    if (byzantine.has(r)) continue;
    if (best < 0 || recorder.finalHeight(replicaId(r)) > recorder.finalHeight(replicaId(best))) best = r;
  }
  if (best < 0) return [];
  const rows = [...(recorder.delivered[best]?.values() ?? [])].map((d) => ({
    height: d.block.height,
    timeMs: Math.round(d.block.context.timeUs / 1000),
    rank: d.block.rank,
    maker: replicaName(d.block.maker),
    ingress: d.block.ingress.length,
    payloadBytes: d.block.payloadBytes,
  }));
  return rows.sort((a, b) => a.height - b.height);
}

const LATENCY_BUCKETS_MS = [250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000, 20_000, 30_000, 60_000, Infinity];

export function histogramOf(sortedLatenciesMs: readonly number[]): { upToMs: number; count: number }[] {
  const counts = LATENCY_BUCKETS_MS.map((upToMs) => ({ upToMs, count: 0 }));
  for (const latency of sortedLatenciesMs) {
    const bucket = counts.find((b) => latency <= b.upToMs);
    if (bucket !== undefined) bucket.count++;
  }
  // JSON has no Infinity: the last bucket is "above the previous one".
  return counts.map((b) => ({ upToMs: Number.isFinite(b.upToMs) ? b.upToMs : -1, count: b.count }));
}

export function stateHashTableOf(recorder: RunRecorder, violations: readonly Violation[], scenario: Scenario): RunReport["stateHashTable"] {
  const interval = consensusConfigOf(scenario).dkgIntervalLength + 1;
  const top = Math.max(0, ...Array.from({ length: recorder.n }, (_, r) => recorder.finalHeight(replicaId(r))));
  const wanted = new Set<number>();
  for (let h = interval; h <= top; h += interval) wanted.add(h);
  for (const v of violations) if (v.height !== undefined && v.height > 0) wanted.add(v.height);
  if (top > 0) wanted.add(top);
  const heights = [...wanted].sort((a, b) => a - b).slice(-24);
  const rows = Array.from({ length: recorder.n }, (_, r) => ({
    replica: replicaName(replicaId(r)),
    hashes: heights.map((h) => recorder.delivered[r]?.get(h as Height)?.stateHash.slice(0, 16) ?? null),
  }));
  return { heights, rows };
}

export function matchesExpectation(scenario: Scenario, verdict: VerdictText, violations: readonly Violation[]): boolean {
  const expected = scenario.expect ?? { verdict: "pass" as const };
  if (expected.verdict !== verdict) return false;
  const wanted = expected.replicas ?? [];
  if (wanted.length === 0) return true;
  const named = new Set(violations.filter((v) => v.property === verdict).flatMap((v) => v.replicas));
  if (!wanted.every((r) => named.has(r))) return false;
  // A divergence expectation is exact: honest replicas must not be named.
  return verdict !== "state-divergence" || [...named].every((r) => wanted.includes(r));
}
