// The fuzzer: draws scenarios within the fault bound (swarm testing, harness/scenario/generate.ts),
// runs them in worker processes, re-runs in another process a 5 % sample and every run that hit a
// restart or a state sync (nondeterminism gets its own verdict), for every violation records the
// run (repro bundle + trace) and a shrunk repro beside it, and ends the campaign on a harness
// error (an exception in a worker): workers killed, the seed named, its repro and summary.json
// written.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROPERTIES_BY_SEVERITY, type VerdictText } from "../checks/checks.ts";
import type { Canary } from "../consensus/config.ts";
import type { FaultKind } from "../faults/spec.ts";
import { generateScenario, type GenerateOptions } from "../scenario/generate.ts";
import { DEFAULT_CHECKPOINT_EVERY, runScenario, type RunReport } from "../scenario/runner.ts";
import { Rng, ratio } from "../sim/rng.ts";
import { recordRun } from "./record.ts";
import { makeRepro, writeRepro } from "./repro.ts";
import { shrink, type ScenarioSize } from "./shrink.ts";
import { caseKeyOf, LabWorker, WorkerFailure, type WorkerReply, type WorkerRequest } from "./worker-client.ts";
import { WorkerPool } from "./worker-pool.ts";
import { prepareScenario } from "../scenario/prepare.ts";

export interface FuzzCaseOptions {
  readonly nodes: readonly number[];
  readonly kinds: readonly FaultKind[];
  readonly outDir: string;
  readonly canary?: Canary;
  readonly shrink: boolean;
  /** Share of runs re-executed in another process to compare digests, in percent. */
  readonly determinismPercent: number;
  /** Two-subnet ledger scenarios (generate.ts); their violations are recorded, not shrunk. */
  readonly ic?: boolean;
  /** false (--no-shared-execution): execution subnets run every replica's execution (generate.ts). */
  readonly sharedExecution?: false;
}

export interface FuzzViolation {
  readonly seed: number;
  readonly class: VerdictText;
  readonly message: string;
  readonly repro: string;
  readonly replayCommand: string;
  readonly shrunkRepro?: string;
  readonly sizes?: { readonly original: ScenarioSize; readonly shrunk: ScenarioSize; readonly shrinkRuns: number; readonly steps: readonly string[] };
}

/** Why a run is re-executed in another process. */
export type RerunReason = "sample" | "restart" | "state-sync";

export interface Nondeterminism {
  readonly first: string;
  readonly second: string;
  /** "same process" (the recording of a failing run) or the reason for the other process's re-run. */
  readonly found: "same process" | RerunReason;
  /** The repro bundle saved for the seed. */
  readonly repro?: string;
}

export interface FuzzCaseResult {
  readonly seed: number;
  readonly n: number;
  readonly verdict: VerdictText;
  readonly traceDigest: string;
  readonly wallMs: number;
  readonly violation?: FuzzViolation;
  /** Set when the parent must re-run the seed in another process and compare digests. */
  readonly rerun?: RerunReason;
  /** Set when a re-run of the same seed gave another digest: the lab itself is broken. */
  readonly nondeterministic?: Nondeterminism;
}

export function generateOptionsOf(options: FuzzCaseOptions): GenerateOptions {
  return {
    nodes: options.nodes,
    kinds: options.kinds,
    ...(options.canary === undefined ? {} : { canary: options.canary }),
    ...(options.ic === true ? { ic: true } : {}),
    ...(options.sharedExecution === false ? { sharedExecution: false as const } : {}),
  };
}

/**
 * Restarts and state syncs are where a replica rebuilds state from disk or from peers — the
 * paths where process-wide caches and stored objects can make a result depend on the process.
 */
function rerunReasonOf(report: RunReport, seed: number, determinismPercent: number): RerunReason | undefined {
  const counts = report.eventCounts;
  if ((counts["state-sync.request"] ?? 0) + (counts["state-sync.done"] ?? 0) > 0) return "state-sync";
  if ((counts["replica.start"] ?? 0) > report.replicas.length) return "restart";
  return Rng.fromSeed(seed).fork("determinism-sample").chance(ratio(determinismPercent, 100)) ? "sample" : undefined;
}

/**
 * One fuzz run, complete: run, say whether it needs a re-run in another process, and on a
 * violation record (a second run in this process, compared) and shrink.
 */
export function fuzzCase(seed: number, options: FuzzCaseOptions, now: () => number): FuzzCaseResult {
  const started = now();
  const scenario = generateScenario(seed, generateOptionsOf(options));
  const report = runScenario(scenario, { seed });
  const rerun = rerunReasonOf(report, seed, options.determinismPercent);
  const base = { seed, n: scenario.n, verdict: report.verdict, traceDigest: report.traceDigest, ...(rerun === undefined ? {} : { rerun }) };
  if (report.verdict === "pass") return { ...base, wallMs: now() - started };
  // Failing runs are re-run here anyway (to record them), which doubles as a determinism check.
  const dir = join(options.outDir, "failures", `seed-${seed}`);
  const recorded = recordRun({ scenario, seed, outDir: dir, keepTrace: true });
  if (recorded.report.traceDigest !== report.traceDigest) {
    return { ...base, wallMs: now() - started, nondeterministic: { first: report.traceDigest, second: recorded.report.traceDigest, found: "same process", repro: recorded.reproPath } };
  }
  const violation: FuzzViolation = {
    seed,
    class: report.verdict,
    message: report.violations.find((v) => v.property === report.verdict)?.message ?? report.verdict,
    repro: join(dir, "repro.json"),
    replayCommand: `npx subnetlab replay ${join(dir, "repro.json")}`,
  };
  if (!options.shrink) return { ...base, wallMs: now() - started, violation };
  const shrunk = shrink(scenario, seed, report.verdict);
  const shrunkDir = join(dir, "shrunk");
  recordRun({ scenario: { ...shrunk.scenario, name: `${scenario.name}-shrunk` }, seed, outDir: shrunkDir, keepTrace: true });
  writeFileSync(join(dir, "shrink.json"), `${JSON.stringify({ original: shrunk.before, shrunk: shrunk.after, runs: shrunk.runs, steps: shrunk.steps }, null, 2)}\n`);
  return {
    ...base,
    wallMs: now() - started,
    violation: { ...violation, shrunkRepro: join(shrunkDir, "repro.json"), sizes: { original: shrunk.before, shrunk: shrunk.after, shrinkRuns: shrunk.runs, steps: shrunk.steps } },
  };
}

/**
 * One of `count` campaigns that together cover a seed space without overlap (CI matrix jobs):
 * shard `index` (1-based) takes seeds seed + (index − 1), seed + (index − 1) + count, … so that
 * shards stopped by a time budget still cover the low seeds evenly.
 */
export interface FuzzShard {
  readonly index: number;
  readonly count: number;
}

/** The i-th seed (0-based) a campaign draws: consecutive, or every count-th one for a shard. */
export function nthSeed(base: number, i: number, shard: FuzzShard | undefined): number {
  return shard === undefined ? base + i : base + (shard.index - 1) + i * shard.count;
}

export interface FuzzOptions extends FuzzCaseOptions {
  readonly seed: number;
  readonly shard?: FuzzShard;
  readonly runs: number;
  readonly budgetMs: number | undefined;
  readonly jobs: number;
  /** Stop drawing new seeds once this many violations were found (runs in flight finish). */
  readonly maxViolations?: number;
  readonly now: () => number;
  readonly onResult?: (result: FuzzCaseResult, done: number, elapsedMs: number) => void;
  /** A re-run in another process gave another digest (reported when the re-run ends). */
  readonly onNondeterminism?: (seed: number, found: Nondeterminism) => void;
  /**
   * Worker processes to run in, kept up by the caller across campaigns (closed by the caller).
   * Without one, the campaign starts its own and lets them exit at its end.
   */
  readonly pool?: WorkerPool;
}

/** An exception inside the lab while running a seed: the campaign stopped there. */
export interface FuzzHarnessError {
  readonly seed: number;
  /** Whether it happened in the seed's run or in its re-run in another process. */
  readonly during: "run" | "rerun";
  readonly message: string;
  readonly detail: string;
  /** A repro bundle of the seed (no expected digest: replaying it shows the error again). */
  readonly repro: string;
  readonly replayCommand: string;
}

export interface FuzzSummary {
  readonly runs: number;
  /** The first and last seed drawn; with a shard, every `shard.count`-th seed between them. */
  readonly seeds: { readonly first: number; readonly last: number };
  readonly shard?: FuzzShard;
  readonly violations: readonly FuzzViolation[];
  readonly nondeterministic: readonly ({ readonly seed: number } & Nondeterminism)[];
  /** Runs re-executed in another process, by reason. */
  readonly reruns: Record<RerunReason, number>;
  /**
   * CPU seconds the processes spent on the campaign's runs and on their re-runs (all threads of the
   * process that served each; not worker start-up): a cost figure for benchmarks, steadier than
   * wall time on a shared machine.
   */
  readonly cpuS?: { readonly runs: number; readonly reruns: number };
  readonly harnessError?: FuzzHarnessError;
  /** A merge of shards (`report`): every shard's harness error (harnessError is the first). */
  readonly harnessErrors?: readonly FuzzHarnessError[];
  /** A merge of shards: where each came from. */
  readonly merged?: readonly MergedShard[];
  readonly verdicts: Record<string, number>;
  readonly runsPerSec: number;
  readonly elapsedS: number;
  readonly options: { readonly nodes: readonly number[]; readonly kinds: readonly FaultKind[]; readonly canary?: Canary; readonly ic?: boolean; readonly jobs: number };
  readonly results: readonly { readonly seed: number; readonly n: number; readonly verdict: string; readonly traceDigest: string; readonly wallMs: number }[];
}

export interface MergedShard {
  readonly dir: string;
  readonly shard: FuzzShard;
  readonly runs: number;
  readonly elapsedS: number;
}

/** The most severe outcome: a harness error, then nondeterminism (each its own class), then violations. */
export function worstClass(summary: FuzzSummary): VerdictText | "nondeterminism" | "harness-error" {
  if (summary.harnessError !== undefined) return "harness-error";
  if (summary.nondeterministic.length > 0) return "nondeterminism";
  for (const p of PROPERTIES_BY_SEVERITY) if (summary.violations.some((v) => v.class === p)) return p;
  return "pass";
}

/** State shared by the campaign's scheduling loops. */
class Campaign {
  readonly results = new Map<number, FuzzCaseResult>();
  readonly reruns: Record<RerunReason, number> = { sample: 0, restart: 0, "state-sync": 0 };
  readonly cpuMs = { runs: 0, reruns: 0 };
  harnessError: Omit<FuzzHarnessError, "repro" | "replayCommand"> | undefined;
  next = 0;
  found = 0;
  private readonly started: number;

  constructor(readonly options: FuzzOptions) {
    this.started = options.now();
  }

  get stopped(): boolean {
    return this.harnessError !== undefined;
  }

  nextSeed(): number | undefined {
    const o = this.options;
    if (this.stopped || this.next >= o.runs) return undefined;
    if (o.maxViolations !== undefined && this.found >= o.maxViolations) return undefined;
    if (o.budgetMs !== undefined && o.now() - this.started >= o.budgetMs) return undefined;
    return nthSeed(o.seed, this.next++, o.shard);
  }

  /** CPU time a run or re-run took, when its process reported it. */
  spent(what: "runs" | "reruns", cpuMs: number | undefined): void {
    this.cpuMs[what] += cpuMs ?? 0;
  }

  record(result: FuzzCaseResult): void {
    this.results.set(result.seed, result);
    if (result.violation !== undefined || result.nondeterministic !== undefined) this.found++;
    this.options.onResult?.(result, this.results.size, this.elapsed());
  }

  /** The outcome of a re-run in another process. */
  compare(seed: number, digest: string, repro: string | undefined): void {
    const result = this.results.get(seed);
    if (result === undefined || result.rerun === undefined) return;
    this.reruns[result.rerun]++;
    if (digest === result.traceDigest || result.nondeterministic !== undefined) return;
    const found: Nondeterminism = { first: result.traceDigest, second: digest, found: result.rerun, ...(repro === undefined ? {} : { repro }) };
    this.results.set(seed, { ...result, nondeterministic: found });
    this.found++;
    this.options.onNondeterminism?.(seed, found);
  }

  fail(seed: number, during: "run" | "rerun", error: unknown): void {
    if (this.harnessError !== undefined) return;
    const failure = error instanceof WorkerFailure ? error : undefined;
    const detail = failure?.detail ?? (error as Error).stack ?? String(error);
    this.harnessError = { seed, during, message: failure?.message ?? (error as Error).message ?? String(error), detail };
  }

  elapsed(): number {
    return this.options.now() - this.started;
  }
}

export async function fuzz(options: FuzzOptions): Promise<FuzzSummary> {
  mkdirSync(options.outDir, { recursive: true });
  const campaign = new Campaign(options);
  const caseOptions: FuzzCaseOptions = {
    nodes: options.nodes, kinds: options.kinds, outDir: options.outDir, shrink: options.shrink, determinismPercent: options.determinismPercent,
    ...(options.canary === undefined ? {} : { canary: options.canary }),
    ...(options.ic === true ? { ic: true } : {}),
    ...(options.sharedExecution === false ? { sharedExecution: false as const } : {}),
  };
  const pool = options.pool ?? new WorkerPool();
  try {
    if (options.jobs <= 1) await runInProcess(campaign, caseOptions, pool);
    else await runInWorkers(campaign, caseOptions, options.jobs, pool);
  } finally {
    if (options.pool === undefined) pool.close();
  }
  return writeSummary(campaign, caseOptions);
}

function rerunRequest(seed: number, caseOptions: FuzzCaseOptions, expectedDigest: string): WorkerRequest {
  return { type: "rerun", seed, options: caseOptions, expectedDigest };
}

/**
 * Sends a re-run to `worker`, or — when that process has already run the seed (in an earlier
 * campaign of its pool) — to a fresh process started for it.
 */
async function requestRerun(worker: LabWorker, pool: WorkerPool, request: WorkerRequest): Promise<WorkerReply> {
  if (!worker.hasRun(caseKeyOf(request))) return worker.request(request);
  const fresh = pool.startFresh();
  try {
    return await fresh.request(request);
  } finally {
    fresh.close();
  }
}

/**
 * --jobs 1: runs here, re-runs in one worker process (started when first needed). A re-run goes on
 * in that process while the next seed runs here; the next re-run first waits for it.
 */
async function runInProcess(campaign: Campaign, caseOptions: FuzzCaseOptions, pool: WorkerPool): Promise<void> {
  let rerunner: LabWorker | undefined;
  let pending: Promise<void> = Promise.resolve();
  const rerun = (worker: LabWorker, seed: number, expectedDigest: string): Promise<void> =>
    requestRerun(worker, pool, rerunRequest(seed, caseOptions, expectedDigest)).then(
      (reply) => {
        if (reply.type !== "digest") return;
        campaign.spent("reruns", reply.cpuMs);
        campaign.compare(seed, reply.digest, reply.repro);
      },
      (error: unknown) => campaign.fail(seed, "rerun", error),
    );
  try {
    for (let seed = campaign.nextSeed(); seed !== undefined; seed = campaign.nextSeed()) {
      const startedAt = campaign.options.now();
      const cpuBefore = process.cpuUsage();
      let result: FuzzCaseResult;
      try {
        await prepareScenario(generateScenario(seed, generateOptionsOf(caseOptions)));
        result = fuzzCase(seed, caseOptions, campaign.options.now);
      } catch (error) {
        campaign.fail(seed, "run", error);
        return;
      }
      const cpu = process.cpuUsage(cpuBefore);
      campaign.spent("runs", (cpu.user + cpu.system) / 1000);
      campaign.record({ ...result, wallMs: campaign.options.now() - startedAt });
      if (result.rerun === undefined) continue;
      await pending;
      if (campaign.stopped) return;
      rerunner ??= pool.acquire(1)[0] as LabWorker;
      pending = rerun(rerunner, seed, result.traceDigest);
    }
    await pending;
  } finally {
    if (campaign.stopped) rerunner?.kill();
    if (rerunner !== undefined) pool.release([rerunner]);
  }
}

interface RerunTask {
  readonly request: WorkerRequest & { readonly type: "rerun" };
  /** caseKeyOf(request): a worker that has run it may not serve it. */
  readonly key: string;
}

/**
 * --jobs J ≥ 2: J worker processes from the pool, each taking a re-run of a seed it has not run
 * first, then a new seed. A re-run that every worker of the campaign has run (possible when the
 * pool's workers ran the same case in an earlier campaign) goes to a fresh process. A worker with
 * nothing to take waits while others still run (they may queue re-runs); the campaign ends when no
 * seed is left, no re-run queued and no worker busy — or at once on a harness error, with every
 * worker killed.
 */
async function runInWorkers(campaign: Campaign, caseOptions: FuzzCaseOptions, jobs: number, pool: WorkerPool): Promise<void> {
  const workers = pool.acquire(jobs);
  const queue: RerunTask[] = [];
  let busy = 0;
  let waiting: (() => void)[] = [];
  const wakeAll = (): void => {
    const wake = waiting;
    waiting = [];
    for (const w of wake) w();
  };
  const stop = (seed: number, during: "run" | "rerun", error: unknown): void => {
    campaign.fail(seed, during, error);
    for (const w of workers) w.kill();
    wakeAll();
  };
  const servable = (worker: LabWorker, task: RerunTask): boolean => !worker.hasRun(task.key) || workers.every((w) => w.hasRun(task.key));
  const loop = async (id: number): Promise<void> => {
    const worker = workers[id] as LabWorker;
    while (!campaign.stopped) {
      const queued = queue.findIndex((t) => servable(worker, t));
      const rerun = queued >= 0 ? queue.splice(queued, 1)[0] : undefined;
      const seed = rerun === undefined ? campaign.nextSeed() : undefined;
      if (rerun === undefined && seed === undefined) {
        if (busy === 0 && queue.length === 0) break;
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      busy++;
      const startedAt = campaign.options.now();
      try {
        if (rerun !== undefined) {
          const reply = await requestRerun(worker, pool, rerun.request);
          if (reply.type === "digest") {
            campaign.spent("reruns", reply.cpuMs);
            campaign.compare(rerun.request.seed, reply.digest, reply.repro);
          }
        } else {
          const reply = await worker.request({ type: "run", seed: seed as number, options: caseOptions });
          if (reply.type === "result") {
            campaign.spent("runs", reply.cpuMs);
            campaign.record({ ...reply.result, wallMs: campaign.options.now() - startedAt });
            if (reply.result.rerun !== undefined) {
              const request = { type: "rerun" as const, seed: reply.result.seed, options: caseOptions, expectedDigest: reply.result.traceDigest };
              queue.push({ request, key: caseKeyOf(request) });
            }
          }
        }
      } catch (error) {
        if (!campaign.stopped) stop(rerun?.request.seed ?? (seed as number), rerun === undefined ? "run" : "rerun", error);
      } finally {
        busy--;
        wakeAll();
      }
    }
  };
  await Promise.all(workers.map((_, id) => loop(id)));
  if (campaign.stopped) for (const w of workers) w.kill();
  pool.release(workers);
}

/** summary.json (always, even after a harness error), and the harness error's repro. */
function writeSummary(campaign: Campaign, caseOptions: FuzzCaseOptions): FuzzSummary {
  const options = campaign.options;
  const results = [...campaign.results.values()].sort((a, b) => a.seed - b.seed);
  const elapsedS = campaign.elapsed() / 1000;
  const verdicts: Record<string, number> = {};
  for (const r of results) verdicts[r.verdict] = (verdicts[r.verdict] ?? 0) + 1;
  const harnessError = campaign.harnessError === undefined ? undefined : withRepro(campaign.harnessError, caseOptions);
  const summary: FuzzSummary = {
    runs: results.length,
    seeds: { first: nthSeed(options.seed, 0, options.shard), last: nthSeed(options.seed, Math.max(0, campaign.next - 1), options.shard) },
    ...(options.shard === undefined ? {} : { shard: options.shard }),
    violations: results.flatMap((r) => (r.violation === undefined ? [] : [r.violation])),
    nondeterministic: results.flatMap((r) => (r.nondeterministic === undefined ? [] : [{ seed: r.seed, ...r.nondeterministic }])),
    reruns: campaign.reruns,
    cpuS: { runs: Number((campaign.cpuMs.runs / 1000).toFixed(2)), reruns: Number((campaign.cpuMs.reruns / 1000).toFixed(2)) },
    ...(harnessError === undefined ? {} : { harnessError }),
    verdicts,
    runsPerSec: Number((results.length / Math.max(elapsedS, 1e-3)).toFixed(2)),
    elapsedS: Number(elapsedS.toFixed(2)),
    options: { nodes: options.nodes, kinds: options.kinds, jobs: options.jobs, ...(options.canary === undefined ? {} : { canary: options.canary }), ...(options.ic === true ? { ic: true } : {}) },
    results: results.map((r) => ({ seed: r.seed, n: r.n, verdict: r.verdict, traceDigest: r.traceDigest, wallMs: Math.round(r.wallMs) })),
  };
  writeFileSync(join(options.outDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

/**
 * The seed's repro bundle, written without running it again (the run is what fails): the
 * generated scenario and seed, no expected digest — `replay` of it re-executes the seed and shows
 * the error — and the worker's stack in error.txt beside it.
 */
function withRepro(error: Omit<FuzzHarnessError, "repro" | "replayCommand">, caseOptions: FuzzCaseOptions): FuzzHarnessError {
  const dir = join(caseOptions.outDir, "failures", `seed-${error.seed}`);
  mkdirSync(dir, { recursive: true });
  const scenario = generateScenario(error.seed, generateOptionsOf(caseOptions));
  const repro = join(dir, "repro.json");
  writeRepro(repro, makeRepro({
    scenario,
    seed: error.seed,
    ...(caseOptions.canary === undefined ? {} : { canary: caseOptions.canary }),
    checkpointEvery: DEFAULT_CHECKPOINT_EVERY,
    checkpoints: [],
    report: { traceDigest: "", traceEvents: 0, verdict: "harness-error", violations: [] },
  }));
  writeFileSync(join(dir, "error.txt"), `harness error during the ${error.during} of seed ${error.seed}:\n${error.detail}\n`);
  return { ...error, repro, replayCommand: `npx subnetlab replay ${repro}` };
}
