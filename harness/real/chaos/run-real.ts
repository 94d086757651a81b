// `subnetlab run <scenario> --real --out DIR` (issue 12 item 9): the scenario against real replica
// processes. In order: refuse what real mode cannot run (plan.ts), start `subnetlab up`'s cluster in
// DIR with the scenario's consensus settings and each Byzantine replica's faults on its command
// line, deploy the key-value canister with signed calls, take that moment as the scenario's
// second 0, apply the faults at their times while the workload runs, ask every live honest replica
// what its state holds, stop the cluster, judge the replicas' event files with the simulator's
// checkers, and write report.json/report.html, the ingress log, the fault timeline and the replay
// scenario into DIR.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { compileFaults } from "../../faults/schedule.ts";
import { userIdentity } from "../../ingress/identity.ts";
import { candidNamesOfScenario } from "../../report/candid-view.ts";
import { writeHtmlReport } from "../../report/html.ts";
import type { RunReport } from "../../scenario/runner.ts";
import { scenarioNotes, type Scenario } from "../../scenario/scenario.ts";
import { Rng } from "../../sim/rng.ts";
import { replicaId, secondsToUs, type HashHex, type ReplicaId } from "../../types.ts";
import { Cluster } from "../cluster.ts";
import { createRunDir, REAL_CONSENSUS_CONFIG, RunDirError, specPath } from "../run-dir.ts";
import { BYZANTINE_OPTION } from "./byzantine-process.ts";
import { FaultDriver, memberName } from "./fault-driver.ts";
import { IcClient } from "./ingress-client.ts";
import { judgeRealRun, type FinalState } from "./judge.ts";
import { planRealRun, REAL_SUBNET, type RealPlan } from "./plan.ts";
import { REPLAY_SCENARIO_FILE, replayScenarioOf, writeReplayScenario } from "./replay-scenario.ts";
import { deployKv, RealWorkload, realWorkloadPlan, type Target } from "./workload.ts";

export interface RealRunOptions {
  /** The run directory: the cluster (keys, nodes/…/events.jsonl) and the reports. Must not hold a cluster. */
  readonly out: string;
  /** Seeds the workload's choice of replicas and the client's key. */
  readonly seed: number;
  readonly scenarioPath?: string;
  readonly progress?: (line: string) => void;
  readonly readyTimeoutMs?: number;
}

export interface RealRun {
  readonly report: RunReport;
  readonly replayScenario: string;
}

/** What a real run writes beside report.json. */
export const REAL_FILES = { ingress: "ingress.jsonl", faults: "fault-timeline.json" } as const;

/** How long one replica may take to start: generous, since machines running chaos runs are busy. */
export const REAL_READY_TIMEOUT_MS = 180_000;

/** How long the end of the run waits for calls still in flight (their HTTP exchange times out at 30 s). */
const DRAIN_MS = 35_000;

export async function runRealScenario(scenario: Scenario, options: RealRunOptions): Promise<RealRun> {
  const plan = planRealRun(scenario);
  const progress = options.progress ?? (() => undefined);
  if (existsSync(specPath(options.out))) throw new RunDirError(`${options.out} already holds a cluster; a real run starts a fresh one: choose another --out`);
  const consensus = { ...REAL_CONSENSUS_CONFIG, ...scenario.consensus };
  createRunDir(options.out, { subnets: [{ name: REAL_SUBNET, n: plan.n }], consensus });
  const asRun: Scenario = { ...scenario, consensus: { ...scenario.consensus, dkgIntervalLength: consensus.dkgIntervalLength }, faults: plan.faults };
  const workloadPlan = realWorkloadPlan(scenario.workload, scenario.durationS);
  progress(`${scenario.name}: starting ${plan.n} replica processes in ${options.out}`);
  const cluster = await Cluster.up({
    out: options.out,
    progress,
    replicaArgs: (_subnet, node) => {
      const arg = plan.byzantineArgs.get(node);
      return arg === undefined ? [] : [BYZANTINE_OPTION, arg];
    },
    readyTimeoutMs: options.readyTimeoutMs ?? REAL_READY_TIMEOUT_MS,
  });
  try {
    return await runOnCluster(cluster, plan, asRun, workloadPlan, options, progress);
  } finally {
    await cluster.stop();
  }
}

async function runOnCluster(cluster: Cluster, plan: RealPlan, scenario: Scenario, workloadPlan: ReturnType<typeof realWorkloadPlan>, options: RealRunOptions, progress: (line: string) => void): Promise<RealRun> {
  const info = cluster.writeInfo();
  const rng = Rng.fromSeed(options.seed).fork("real-workload");
  const client = new IcClient(userIdentity("ed25519", utf8ToBytes(`subnetlab-run-real-${options.seed}`)), hexToBytes(info.rootKey));
  let driver: FaultDriver | undefined;
  // Read from the members, not cluster.info() (which decodes every key): called for every call.
  const targets = (): Target[] =>
    Array.from({ length: plan.n }, (_, i) => i).flatMap((i) => {
      const port = cluster.member(memberName(i)).serving?.httpPort;
      return port !== undefined && cluster.serving(memberName(i)) && driver?.pausedReplicas().has(i) !== true ? [{ replica: i, url: `http://127.0.0.1:${port}` }] : [];
    });
  let deployNonce = 0n;
  progress("deploying the key-value canister through the management canister");
  const deployed = await deployKv(client, targets, () => deployNonce++);
  const originUs = Date.now() * 1000;
  const startedAt = new Date(originUs / 1000).toISOString();
  const elapsedMs = (): number => Date.now() - originUs / 1000;
  cluster.setRunOrigin(originUs);
  progress(`kv canister ${deployed.canisterId} installed; scenario time 0 is ${startedAt}; ${plan.steps.length} fault steps, workload ${workloadPlan.ratePerSec}/s from ${workloadPlan.startS} s to ${workloadPlan.stopS} s`);
  driver = new FaultDriver(cluster, elapsedMs, progress);
  const workload = new RealWorkload(client, deployed.canisterId, targets, rng, elapsedMs, 1n << 32n);
  const faultsDone = driver.run(plan.steps);
  const workloadDone = workload.run(workloadPlan);
  const ticker = setInterval(() => progress(`${(elapsedMs() / 1000).toFixed(0)}/${scenario.durationS} s: ${workload.started} calls sent, ${workload.log.length} answers, ${workload.acknowledged().length} acknowledged`), 5000);
  try {
    await sleep(scenario.durationS * 1000 - elapsedMs());
    driver.cancel();
    await faultsDone;
    await Promise.race([workloadDone, sleep(DRAIN_MS)]);
  } finally {
    clearInterval(ticker);
  }
  await driver.settle();
  const endUs = Math.round(elapsedMs() * 1000);
  const compiled = compileFaults(scenario.faults ?? []);
  const validIngress = new Set<HashHex>([...deployed.requestIds, ...workload.sent()] as HashHex[]);
  const finalStates = await readFinalStates(cluster, plan.n, compiled, driver.pausedReplicas(), [...validIngress], progress);
  progress(`run over after ${(endUs / 1e6).toFixed(1)} s; judging the replicas' event files`);
  const firstSubmitUs = new Map<HashHex, number>();
  const submitTimes = new Map<HashHex, number>();
  for (const e of workload.log) {
    const id = e.requestId as HashHex;
    if (!firstSubmitUs.has(id)) firstSubmitUs.set(id, e.atMs * 1000);
    // As in simulation, liveness is owed from the moment an honest replica holds the message.
    if (!submitTimes.has(id) && !compiled.byzantine.has(replicaId(e.replica)) && e.outcome !== "unreachable" && e.outcome !== "refused") submitTimes.set(id, e.atMs * 1000);
  }
  const healed = appliedHealUs(driver, scenario);
  const healUs = compiled.lastHealUs === undefined || !Number.isFinite(compiled.lastHealUs) ? compiled.lastHealUs : Math.max(compiled.lastHealUs, healed.us);
  const failedSteps = driver.applied.filter((a) => a.error !== undefined);
  const report = judgeRealRun({
    scenario,
    seed: options.seed,
    dir: options.out,
    originUs,
    endUs,
    healUs,
    finalStates,
    validIngress,
    submitTimes,
    firstSubmitUs,
    acknowledged: workload.acknowledged() as HashHex[],
    acknowledgedAtUs: new Map(workload.log.filter((e) => e.outcome === "replied").map((e) => [e.requestId as HashHex, e.answeredMs * 1000] as const)),
    notes: [
      `a real run (${plan.n} replica processes, wall-clock seconds from ${startedAt}): its trace digest is not reproducible; ${REPLAY_SCENARIO_FILE} replays its fault timeline and workload in the simulator`,
      ...scenarioNotes(scenario),
      ...workloadPlan.notes,
      `workload: ${firstSubmitUs.size} calls sent, ${workload.acknowledged().length} acknowledged with a verified certificate`,
      ...healed.notes,
      ...failedSteps.map((a) => `fault step not applied: faults[${a.fault}] ${a.phase} at ${a.appliedS} s: ${a.error}`),
    ],
  });
  const replay = replayScenarioOf({ scenario, applied: driver.applied, restarts: driver.restarts, ingress: workload.log, startedAt });
  const replayPath = join(options.out, REPLAY_SCENARIO_FILE);
  writeReplayScenario(replayPath, replay, `The real run of ${scenario.name} (seed ${options.seed}, ${startedAt}) as a simulator scenario.`);
  const ingressLog = [...workload.log].sort((x, y) => x.atMs - y.atMs || x.answeredMs - y.answeredMs);
  writeFileSync(join(options.out, REAL_FILES.ingress), ingressLog.map((e) => `${JSON.stringify(e)}\n`).join(""));
  writeFileSync(join(options.out, REAL_FILES.faults), `${JSON.stringify({ origin: startedAt, applied: driver.applied, restarts: driver.restarts }, null, 2)}\n`);
  const full = {
    ...report,
    scenarioPath: options.scenarioPath ?? "(generated)",
    scenarioContentHash: "",
    replayCommand: `npx subnetlab run ${replayPath}`,
    candidNames: candidNamesOfScenario(scenario),
    real: { replayScenario: replayPath, origin: startedAt, canisterId: deployed.canisterId, ingressLog: REAL_FILES.ingress, faultTimeline: REAL_FILES.faults, appliedFaults: driver.applied, restarts: driver.restarts },
  };
  writeFileSync(join(options.out, "report.json"), `${JSON.stringify(full, null, 2)}\n`);
  writeHtmlReport(join(options.out, "report.html"), full);
  return { report, replayScenario: replayPath };
}

/**
 * When the faults healed in fact: a heal step when it was applied, a crash's restart once the
 * replica served again (booting a process and reading its disk take real time; the simulator's
 * restart is instant). A replica that never served again leaves a fault unhealed.
 */
function appliedHealUs(driver: FaultDriver, scenario: Scenario): { us: number; notes: string[] } {
  let us = 0;
  const notes: string[] = [];
  for (const step of driver.applied.filter((a) => a.phase === "heal")) {
    us = Math.max(us, secondsToUs(step.appliedS));
    const fault = scenario.faults?.[step.fault];
    if (fault?.kind !== "crash") continue;
    for (const r of fault.replicas) {
      const serving = driver.restarts.find((x) => x.replica === r && x.servingS >= step.appliedS);
      if (serving === undefined) {
        notes.push(`r${r}, restarted at ${step.appliedS} s, did not serve again before the run ended: its crash counts as not healed`);
        us = Infinity;
      } else {
        us = Math.max(us, secondsToUs(serving.servingS));
      }
    }
  }
  return { us, notes };
}

/** Asks each live honest replica which of the ids its state holds (the durability checks' input). */
async function readFinalStates(cluster: Cluster, n: number, compiled: ReturnType<typeof compileFaults>, paused: ReadonlySet<number>, ids: readonly string[], progress: (line: string) => void): Promise<Map<ReplicaId, FinalState>> {
  const states = new Map<ReplicaId, FinalState>();
  for (let r = 0; r < n; r++) {
    const id = replicaId(r);
    if (compiled.byzantine.has(id) || compiled.permanentlyDown.has(id) || paused.has(r) || !cluster.serving(memberName(r))) continue;
    try {
      const answer = await cluster.finalState(memberName(r), ids);
      states.set(id, { executedHeight: answer.executedHeight, known: new Set(answer.known) });
    } catch (error) {
      progress(`r${r} did not report its final state: ${(error as Error).message}`);
    }
  }
  return states;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
