// Runs a multi-subnet scenario (`subnets`): one SimIC on one virtual clock, each subnet with its
// own canisters, faults, recorder and checks; XNet partitions between subnets; one workload whose
// calls go to the subnet hosting the called canister; then the application checks across subnets.
// Replicas are named `<subnet>/r<i>` in the report; in the trace they carry global numbers (subnet
// b's r0 follows subnet a's last replica).
import { runChecks, verdictOf, type Violation } from "../checks/checks.ts";
import { checkAcknowledgedUpdates } from "../checks/durability.ts";
import { RunRecorder } from "../checks/observations.ts";
import type { CertificationObservation } from "../checks/invariants.ts";
import { checkStreams, InductionRecorder, type SubnetStreams } from "../checks/streams.ts";
import { checkExecutionAudit } from "../checks/execution-audit.ts";
import { executionSharingOf, executionStatsOf, sharedExecutionOf } from "./execution-sharing.ts";
import { checkTrappedUpdates, type TrappedChangeSeen } from "../checks/traps.ts";
import { compileFaults, type CompiledFaults } from "../faults/schedule.ts";
import { SimIC } from "../replica/ic.ts";
import { ExecutionStateMachine } from "../replica/execution-state-machine.ts";
import { Registry } from "../routing/registry.ts";
import { streamEnd, type InductionCanary, type RoutingState } from "../routing/streams.ts";
import { defaultNetworkConfig, REGIONS } from "../sim/network.ts";
import { Rng } from "../sim/rng.ts";
import { faultsTolerated, replicaId, secondsToUs, type HashHex, type TimeUs } from "../types.ts";
import { installActions } from "./actions.ts";
import { actionHost, canisterIdsOf, certificationRecorder, certificationRefusalRecorder, fleetIdsOf, genesisOf, runAppChecks, type TrackedCall, type World, type WorldSubnet } from "./app-world.ts";
import { consensusConfigOf, executionTimeOption, type Scenario } from "./scenario.ts";
import { expandFleets, fleetsOf } from "./fleets.ts";
import { blockRowsOf, driveRun, durabilityInput, executionCorruptor, executionProgressOf, trapWatchOf, runTrace, histogramOf, matchesExpectation, stateHashTableOf, type RunOptions, type RunReport } from "./runner.ts";
import { Workload } from "./workload.ts";

export interface MultiSubnetRunOptions extends RunOptions {
  /** Tests only: a known bug in every replica's stream inductor, which the stream check must catch. */
  readonly inductionCanary?: InductionCanary;
}

export function runMultiSubnetScenario(scenario: Scenario, options: MultiSubnetRunOptions): RunReport {
  const specs = scenario.subnets ?? [];
  const root = Rng.fromSeed(options.seed);
  const { trace, halted } = runTrace(options);
  const registry = Registry.of(specs.map((s) => ({ name: s.name, size: s.n })));
  const canisterIds = canisterIdsOf(scenario, registry);
  const consensus = consensusConfigOf(scenario);
  const faults = specs.map((s) => compileFaults(s.faults ?? []));
  const recorders = specs.map((s, k) => new RunRecorder(s.n, faults[k]!.byzantine));
  const certifications = new Map<string, CertificationObservation[]>(specs.map((s) => [s.name, []]));
  const inductions = specs.map(() => new InductionRecorder());
  const trappedChanges: TrappedChangeSeen[] = [];
  const icRef: { current?: SimIC } = {};
  // The subnets' rng streams as SimIC forks them (ic → subnet/<name>); the audit's is forked from each.
  const sharedExecutions = specs.map((s) => sharedExecutionOf(scenario, options, s.name, root.fork("ic").fork(`subnet/${s.name}`)));
  const ic = new SimIC({
    rng: root.fork("ic"),
    trace,
    ...(options.wire === undefined ? {} : { wire: options.wire }),
    subnets: specs.map((s, k) => {
      const record = registry.subnets[k]!;
      const genesis = genesisOf(scenario, expandFleets(s.canisters ?? []), canisterIds);
      const recorder = recorders[k]!;
      const onCertified = certificationRecorder(`${s.name}/`, () => icRef.current?.subnets[k], certifications.get(s.name)!);
      const onCertificationRefused = certificationRefusalRecorder(`${s.name}/`, certifications.get(s.name)!);
      return {
        name: s.name,
        n: s.n,
        consensus,
        network: { ...defaultNetworkConfig(s.n), ...scenario.network, regions: defaultNetworkConfig(s.n).regions.map((_, i) => REGIONS[i % REGIONS.length] ?? "europe") },
        observer: {
          onBatchDelivered: (replica, block, stateHash, atUs) => {
            recorder.onBatchDelivered(replica, block, stateHash, atUs);
            if (k === 0) {
              const machine = icRef.current?.subnets[0]?.replica(replica)?.stateMachine;
              if (machine !== undefined) options.onDelivered?.(replica, block, machine);
            }
          },
          onStateSynced: (replica, h, atUs) => recorder.onStateSynced(replica, h, atUs),
          ...recorder.protocolHooks(),
          onCertified: (replica, cert, atUs) => {
            recorder.onCertified(replica, cert, atUs);
            onCertified(replica, cert);
          },
          onCertificationRefused: (replica, cert, own) => onCertificationRefused(replica, cert, own),
        },
        behaviourOf: (id, env) => faults[k]!.behaviourOf(id, env),
        processingDelayUs: (id, now) => faults[k]!.processingDelayUs(id, now),
        ...executionTimeOption(scenario),
        ...(scenario.crypto === undefined ? {} : { crypto: scenario.crypto }),
        makeStateMachine: (id, disk) => {
          const log = (kind: string) => (h: number): void => trace.record(ic.loop.now(), ic.subnets[k]!.traceId(id), { kind, malicious: true, detail: { height: h } });
          const corrupt = executionCorruptor(s.faults ?? [], id, "state", log("fault.diverge-execution"));
          const corruptReplies = executionCorruptor(s.faults ?? [], id, "replies", log("fault.diverge-replies"));
          const perturbExecution = executionCorruptor(s.faults ?? [], id, "execution", log("fault.diverge-inside-execution"));
          return new ExecutionStateMachine(disk, {
            genesis,
            ...executionProgressOf(options, `${s.name}/r${id}`),
            ...trapWatchOf(options, `${s.name}/r${id}`, !faults[k]!.byzantine.has(id), trappedChanges),
            ...executionSharingOf(sharedExecutions[k]!, options, id, `${s.name}/r${id}`, faults[k]!.byzantine.has(id)),
            checkpointInterval: consensus.dkgIntervalLength + 1,
            subnet: { id: record.id, registry, publicKeyDerOf: (sid) => icRef.current?.publicKeyDerOf(sid) },
            ...(corrupt === undefined ? {} : { corrupt }),
            ...(corruptReplies === undefined ? {} : { corruptReplies }),
            // The stream check judges what honest replicas inducted.
            ...(faults[k]!.byzantine.has(id) ? {} : {
              onInducted: (h, inducted) => inductions[k]!.record(`${s.name}/r${id}`, h, inducted.map(([source, indices]) => [registry.subnet(source)?.name ?? source, indices] as const)),
            }),
            ...(options.inductionCanary === undefined ? {} : { inductionCanary: options.inductionCanary }),
            ...(perturbExecution === undefined ? {} : { perturbExecution }),
            ...(consensus.canary === "skip-checksum" ? { skipChecksums: true } : {}),
            ...(consensus.canary === "state-sync-unverified" ? { snapshotCanary: "state-sync-unverified" as const } : {}),
          });
        },
      };
    }),
  });
  icRef.current = ic;
  const world: World = {
    loop: ic.loop,
    trace,
    canisterIds,
    subnets: specs.map((s, k): WorldSubnet => ({ name: s.name, prefix: `${s.name}/`, subnet: ic.subnets[k]!, byzantine: faults[k]!.byzantine, canisters: new Set(expandFleets(s.canisters ?? []).map((c) => c.name)) })),
    fleets: fleetsOf(specs.flatMap((s) => s.canisters ?? [])),
  };
  const subnetOfCanister = (id: string): number => Math.max(0, ic.registry.subnets.findIndex((r) => r.id === ic.registry.route(id)?.id));
  const workload = new Workload(
    scenario.workload ?? { ratePerSec: 0 },
    root.fork("workload"),
    ic.ingressAuth,
    specs[0]!.n,
    (to, message) => ic.subnets[0]!.submitIngress(to, message),
    (id) => recorders.some((r) => r.isFinalized(id)),
    trace,
    canisterIds,
    fleetIdsOf(world.fleets, canisterIds),
    (canister) => {
      const k = subnetOfCanister(canister);
      return { n: specs[k]!.n, submit: (to, message) => ic.subnets[k]!.submitIngress(to, message) };
    },
  );
  specs.forEach((_, k) => faults[k]!.schedule(ic.subnets[k]!, trace));
  (scenario.xnetFaults ?? []).forEach((p, i) => {
    ic.loop.schedule(secondsToUs(p.fromS) as TimeUs, () => ic.partitionSubnets(`xnet-${i}`, p.groups));
    if (p.toS !== undefined) ic.loop.schedule(secondsToUs(p.toS) as TimeUs, () => ic.heal(`xnet-${i}`));
  });
  const actions = installActions(scenario.actions ?? [], actionHost(world));
  if ((scenario.workload?.ratePerSec ?? 0) > 0) workload.install(ic.loop, scenario.durationS);
  ic.start();

  const stoppedEarly = driveRun(scenario, options, ic.loop, trace, halted, (until) =>
    ic.subnets.some((s) => Array.from({ length: s.n }, (_, i) => s.replica(replicaId(i))?.finalizedHeight ?? 0).some((h) => h >= until)),
  );
  if (ic.subnets[0] !== undefined) options.onFinish?.(ic.subnets[0]);
  if (!stoppedEarly) {
    ic.subnets.forEach((s, k) => {
      for (let i = 0; i < s.n; i++) {
        const r = s.replica(replicaId(i));
        trace.record(ic.loop.now(), s.traceId(replicaId(i)), { kind: "final", detail: { subnet: specs[k]!.name, finalized: r?.finalizedHeight ?? -1, delivered: r?.deliveredHeight ?? -1 } });
      }
    });
  }

  // Checks per subnet (names prefixed), then the application checks across subnets.
  const violations: Violation[] = [];
  const notes: string[] = [];
  let livenessChecked = true;
  specs.forEach((s, k) => {
    const prefix = `${s.name}/`;
    const submitTimes = new Map<HashHex, number>();
    const validIds = new Set<HashHex>();
    for (const [id, sub] of workload.submitted) {
      if (!sub.valid || subnetOfCanister(sub.message.call?.canister ?? "") !== k) continue;
      validIds.add(id);
      const honest = sub.acceptedBy.find((a) => !faults[k]!.byzantine.has(a.replica));
      if (honest !== undefined) submitTimes.set(id, honest.atUs);
    }
    for (const a of actions.actions) if (a.messageId !== undefined && world.subnets[k]!.canisters.has(a.canister)) validIds.add(a.messageId as HashHex);
    const checks = runChecks({
      recorder: recorders[k]!,
      byzantine: faults[k]!.byzantine,
      permanentlyDown: faults[k]!.permanentlyDown,
      validIngress: validIds,
      submitTimes,
      healUs: maxDefined(faults[k]!.lastHealUs, ...(scenario.xnetFaults ?? []).map((p) => (p.toS === undefined ? undefined : secondsToUs(p.toS)))),
      endUs: ic.loop.now(),
      livenessBoundUs: secondsToUs(scenario.livenessBoundS ?? 30),
    });
    // Acknowledged updates survive storage faults (judged when liveness is).
    const durable = !stoppedEarly && checks.livenessChecked ? checkAcknowledgedUpdates(durabilityInput(ic.subnets[k]!, recorders[k]!, faults[k]!)) : [];
    violations.push(...[...checks.violations, ...durable].map((v) => ({ ...v, replicas: v.replicas.map((r) => prefix + r), message: `subnet ${s.name}: ${v.message}` })));
    notes.push(...checks.notes.map((n) => `subnet ${s.name}: ${n}`));
    livenessChecked &&= checks.livenessChecked;
  });
  violations.push(...checkTrappedUpdates(trappedChanges));
  violations.push(...checkExecutionAudit(sharedExecutions.flatMap((x) => x.mismatches)));
  const finalizedCalls: TrackedCall[] = [];
  for (const [id, sub] of workload.submitted) {
    if (!sub.valid || !recorders.some((r) => r.isFinalized(id))) continue;
    const name = [...canisterIds].find(([, cid]) => cid === sub.message.call?.canister)?.[0];
    if (name !== undefined) finalizedCalls.push({ id, hostCanister: name });
  }
  for (const a of actions.actions) if (a.messageId !== undefined) finalizedCalls.push({ id: a.messageId as HashHex, hostCanister: a.canister });
  if (!stoppedEarly) {
    violations.push(...runAppChecks({ world, scenario, actions, finalizedCalls, certifications }));
    const streams = checkStreams({
      subnets: world.subnets.map((s, k) => subnetStreamsOf(s, faults[k]!, registry)),
      inducted: new Map(specs.map((s, k) => [s.name, inductions[k]!])),
      quiescent: quiescentAtEnd(scenario, faults, ic.loop.now()),
      executedAtUs: (subnet, h) => {
        const k = specs.findIndex((s) => s.name === subnet);
        const times = (recorders[k]?.delivered ?? []).flatMap((byHeight) => byHeight.get(h as never)?.atUs ?? []);
        return times.length === 0 ? undefined : Math.min(...times);
      },
    });
    violations.push(...streams.violations);
    notes.push(...streams.notes);
  }

  const verdict = verdictOf(violations);
  const latencies: number[] = [];
  let valid = 0;
  for (const [id, s] of workload.submitted) {
    if (!s.valid) continue;
    valid++;
    const at = recorders.map((r) => r.finalizedIngressAt.get(id)).find((x) => x !== undefined);
    if (at !== undefined) latencies.push((at - s.firstSubmitUs) / 1000);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number | null => (latencies.length === 0 ? null : Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0));
  const stats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, bytesSent: 0 };
  for (const s of ic.subnets) for (const key of Object.keys(stats) as (keyof typeof stats)[]) stats[key] += s.network.stats[key];
  const tables = specs.map((s, k) => stateHashTableOf(recorders[k]!, violations, scenario));
  const report: RunReport = {
    scenario: scenario.name,
    description: scenario.description,
    seed: options.seed,
    n: scenario.n,
    f: faultsTolerated(scenario.n),
    durationS: scenario.durationS,
    verdict,
    ...(scenario.expect === undefined ? {} : { expected: scenario.expect }),
    asExpected: matchesExpectation(scenario, verdict, violations),
    traceDigest: trace.digest(),
    traceEvents: trace.length,
    maliciousEvents: trace.maliciousCount,
    replicas: specs.flatMap((s, k) =>
      Array.from({ length: s.n }, (_, i) => {
        const id = replicaId(i);
        const r = ic.subnets[k]!.replica(id);
        const delivered = recorders[k]!.finalHeight(id);
        return {
          replica: `${s.name}/r${i}`,
          role: faults[k]!.byzantine.has(id) ? ("byzantine" as const) : r === undefined ? ("crashed" as const) : ("honest" as const),
          finalizedHeight: r?.finalizedHeight ?? delivered,
          deliveredHeight: delivered,
          stateHash: recorders[k]!.delivered[i]?.get(delivered as never)?.stateHash ?? "",
        };
      }),
    ),
    violations,
    livenessChecked,
    notes: [
      ...notes,
      `subnets: ${specs.map((s) => `${s.name} (${s.n} replicas, canisters ${(s.canisters ?? []).map((c) => c.name).join(", ") || "none"})`).join("; ")}`,
      ...(scenario.xnetFaults ?? []).map((p) => `XNet partition ${p.groups.map((g) => g.join("+")).join(" | ")} from ${p.fromS} s to ${p.toS === undefined ? "the end" : `${p.toS} s`}`),
    ],
    ingress: { submitted: workload.submitted.size, valid, finalized: latencies.length, latencyMsP50: pct(50), latencyMsP99: pct(99) },
    network: stats,
    eventCounts: trace.countsByKind(),
    faults: specs.flatMap((s) => s.faults ?? []),
    faultSubnets: specs.flatMap((s) => (s.faults ?? []).map(() => s.name)),
    xnetFaults: scenario.xnetFaults ?? [],
    execution: executionStatsOf(sharedExecutions),
    progress: recorders.flatMap((r) => r.progress.map((samples) => samples.map(([t, h]) => [Math.round(t / 1000), h] as const))),
    blocks: blockRowsOf(recorders[0]!, faults[0]!.byzantine),
    latencyHistogram: histogramOf(latencies),
    stateHashTable: mergedStateHashTable(specs, tables, recorders),
    probes: actions.probes,
  };
  return stoppedEarly ? { ...report, stoppedAt: { event: trace.length, timeMs: Math.round(ic.loop.now() / 1000) } } : report;
}

/**
 * One table over every subnet's replicas (`a/r0` …): the sampled heights of all subnets (they
 * differ at least in each subnet's last height), each replica's hash at each of them.
 */
function mergedStateHashTable(specs: readonly { readonly name: string; readonly n: number }[], tables: readonly RunReport["stateHashTable"][], recorders: readonly RunRecorder[]): RunReport["stateHashTable"] {
  const heights = [...new Set(tables.flatMap((t) => t.heights))].sort((a, b) => a - b).slice(-24);
  const rows = specs.flatMap((s, k) => Array.from({ length: s.n }, (_, r) => ({
    replica: `${s.name}/r${r}`,
    hashes: heights.map((h) => recorders[k]?.delivered[r]?.get(h as never)?.stateHash.slice(0, 16) ?? null),
  })));
  return { heights, rows };
}

/** A subnet's streams as its most advanced live honest replica holds them at the end. */
function subnetStreamsOf(s: WorldSubnet, faults: CompiledFaults, registry: Registry): SubnetStreams {
  let best: { height: number; routing: RoutingState } | undefined;
  for (let i = 0; i < s.subnet.n; i++) {
    const id = replicaId(i);
    const replica = s.subnet.replica(id);
    const routing = replica?.stateMachine.routingState;
    if (faults.byzantine.has(id) || !s.subnet.isUp(id) || replica === undefined || routing === undefined) continue;
    const height = replica.status().executedHeight;
    if (best === undefined || height > best.height) best = { height, routing };
  }
  const streams = new Map((best?.routing.streams ?? []).map(([peer, stream]) => [registry.subnet(peer)?.name ?? peer, { begin: stream.begin, end: streamEnd(stream), signalsEnd: stream.signalsEnd }] as const));
  return { subnet: s.name, height: best?.height ?? 0, streams };
}

/**
 * Whether the streams must have drained by the end: no new traffic (the workload stops, timed
 * actions other than probes) and every fault healed, one liveness bound before the end.
 */
function quiescentAtEnd(scenario: Scenario, faults: readonly CompiledFaults[], endUs: number): boolean {
  // As Workload.install: the workload stops at stopS, by default 30 s before the end.
  const workloadStopS = (scenario.workload?.ratePerSec ?? 0) > 0 ? (scenario.workload?.stopS ?? Math.max(0, scenario.durationS - 30)) : 0;
  const lastActionS = Math.max(0, ...(scenario.actions ?? []).filter((a) => a.kind !== "probe").map((a) => a.atS));
  const heals = [...faults.map((f) => f.lastHealUs ?? 0), ...(scenario.xnetFaults ?? []).map((p) => (p.toS === undefined ? Infinity : secondsToUs(p.toS)))];
  const quietFromUs = Math.max(secondsToUs(workloadStopS), secondsToUs(lastActionS), ...heals);
  return Number.isFinite(quietFromUs) && quietFromUs + secondsToUs(scenario.livenessBoundS ?? 30) <= endUs;
}

function maxDefined(...values: (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length === 0 ? undefined : Math.max(...defined);
}
