// The fuzzer: draws scenarios within the fault bound (swarm testing, harness/scenario/generate.ts),
// runs them in worker processes, re-runs a sample to catch nondeterminism, and for every violation
// records the run (repro bundle + trace) and a shrunk repro beside it.
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PROPERTIES_BY_SEVERITY, type VerdictText } from "../checks/checks.ts";
import type { Canary } from "../consensus/config.ts";
import type { FaultKind } from "../faults/spec.ts";
import { generateScenario } from "../scenario/generate.ts";
import { runScenario } from "../scenario/runner.ts";
import { Rng, ratio } from "../sim/rng.ts";
import { recordRun } from "./record.ts";
import { shrink, type ScenarioSize } from "./shrink.ts";

export interface FuzzCaseOptions {
  readonly nodes: readonly number[];
  readonly kinds: readonly FaultKind[];
  readonly outDir: string;
  readonly canary?: Canary;
  readonly shrink: boolean;
  /** Share of runs re-executed to compare digests, in percent. */
  readonly determinismPercent: number;
  /** Two-subnet ledger scenarios (generate.ts); their violations are recorded, not shrunk. */
  readonly ic?: boolean;
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

export interface FuzzCaseResult {
  readonly seed: number;
  readonly n: number;
  readonly verdict: VerdictText;
  readonly traceDigest: string;
  readonly wallMs: number;
  readonly violation?: FuzzViolation;
  /** Set when a re-run of the same seed gave another digest: the lab itself is broken. */
  readonly nondeterministic?: { readonly first: string; readonly second: string };
}

/** One fuzz run, complete: run, maybe re-run for determinism, and on a violation record + shrink. */
export function fuzzCase(seed: number, options: FuzzCaseOptions, now: () => number): FuzzCaseResult {
  const started = now();
  const scenario = generateScenario(seed, { nodes: options.nodes, kinds: options.kinds, ...(options.canary === undefined ? {} : { canary: options.canary }), ...(options.ic === true ? { ic: true } : {}) });
  const report = runScenario(scenario, { seed });
  const base = { seed, n: scenario.n, verdict: report.verdict, traceDigest: report.traceDigest };
  const sampled = Rng.fromSeed(seed).fork("determinism-sample").chance(ratio(options.determinismPercent, 100));
  if (sampled || report.verdict !== "pass") {
    // Failing runs are re-run anyway (to record them), which doubles as a determinism check.
    const dir = join(options.outDir, "failures", `seed-${seed}`);
    const second = report.verdict === "pass" ? runScenario(scenario, { seed }).traceDigest : recordRun({ scenario, seed, outDir: dir, keepTrace: true }).report.traceDigest;
    if (second !== report.traceDigest) return { ...base, wallMs: now() - started, nondeterministic: { first: report.traceDigest, second } };
  }
  if (report.verdict === "pass") return { ...base, wallMs: now() - started };
  const dir = join(options.outDir, "failures", `seed-${seed}`);
  const violation: FuzzViolation = {
    seed,
    class: report.verdict,
    message: report.violations.find((v) => v.property === report.verdict)?.message ?? report.verdict,
    repro: join(dir, "repro.json"),
    replayCommand: `npx subnetlab replay ${join(dir, "repro.json")}`,
  };
  // The shrinker edits single-subnet scenarios (faults, n, length); multi-subnet ones keep their repro.
  if (!options.shrink || scenario.subnets !== undefined) return { ...base, wallMs: now() - started, violation };
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

export interface FuzzOptions extends FuzzCaseOptions {
  readonly seed: number;
  readonly runs: number;
  readonly budgetMs: number | undefined;
  readonly jobs: number;
  /** Stop drawing new seeds once this many violations were found (runs in flight finish). */
  readonly maxViolations?: number;
  readonly now: () => number;
  readonly onResult?: (result: FuzzCaseResult, done: number, elapsedMs: number) => void;
}

export interface FuzzSummary {
  readonly runs: number;
  readonly seeds: { readonly first: number; readonly last: number };
  readonly violations: readonly FuzzViolation[];
  readonly nondeterministic: readonly { readonly seed: number; readonly first: string; readonly second: string }[];
  readonly verdicts: Record<string, number>;
  readonly runsPerSec: number;
  readonly elapsedS: number;
  readonly options: { readonly nodes: readonly number[]; readonly kinds: readonly FaultKind[]; readonly canary?: Canary; readonly jobs: number };
  readonly results: readonly { readonly seed: number; readonly n: number; readonly verdict: string; readonly traceDigest: string; readonly wallMs: number }[];
}

/** The most severe class among the violations (harness nondeterminism counts as its own class). */
export function worstClass(summary: FuzzSummary): VerdictText | "nondeterminism" {
  if (summary.nondeterministic.length > 0) return "nondeterminism";
  for (const p of PROPERTIES_BY_SEVERITY) if (summary.violations.some((v) => v.class === p)) return p;
  return "pass";
}

export async function fuzz(options: FuzzOptions): Promise<FuzzSummary> {
  mkdirSync(options.outDir, { recursive: true });
  const started = options.now();
  const results: FuzzCaseResult[] = [];
  let next = 0;
  let found = 0;
  const nextSeed = (): number | undefined => {
    if (next >= options.runs) return undefined;
    if (options.maxViolations !== undefined && found >= options.maxViolations) return undefined;
    if (options.budgetMs !== undefined && options.now() - started >= options.budgetMs) return undefined;
    return options.seed + next++;
  };
  const record = (result: FuzzCaseResult): void => {
    results.push(result);
    if (result.violation !== undefined || result.nondeterministic !== undefined) found++;
    options.onResult?.(result, results.length, options.now() - started);
  };
  const caseOptions: FuzzCaseOptions = {
    nodes: options.nodes, kinds: options.kinds, outDir: options.outDir, shrink: options.shrink, determinismPercent: options.determinismPercent,
    ...(options.canary === undefined ? {} : { canary: options.canary }),
    ...(options.ic === true ? { ic: true } : {}),
  };
  if (options.jobs <= 1) {
    for (let seed = nextSeed(); seed !== undefined; seed = nextSeed()) record(fuzzCase(seed, caseOptions, options.now));
  } else {
    await Promise.all(Array.from({ length: options.jobs }, () => runWorker(caseOptions, nextSeed, record, options.now)));
  }
  results.sort((a, b) => a.seed - b.seed);
  const elapsedS = (options.now() - started) / 1000;
  const verdicts: Record<string, number> = {};
  for (const r of results) verdicts[r.verdict] = (verdicts[r.verdict] ?? 0) + 1;
  const summary: FuzzSummary = {
    runs: results.length,
    seeds: { first: options.seed, last: options.seed + Math.max(0, next - 1) },
    violations: results.flatMap((r) => (r.violation === undefined ? [] : [r.violation])),
    nondeterministic: results.flatMap((r) => (r.nondeterministic === undefined ? [] : [{ seed: r.seed, ...r.nondeterministic }])),
    verdicts,
    runsPerSec: Number((results.length / Math.max(elapsedS, 1e-3)).toFixed(2)),
    elapsedS: Number(elapsedS.toFixed(2)),
    options: { nodes: options.nodes, kinds: options.kinds, jobs: options.jobs, ...(options.canary === undefined ? {} : { canary: options.canary }) },
    results: results.map((r) => ({ seed: r.seed, n: r.n, verdict: r.verdict, traceDigest: r.traceDigest, wallMs: Math.round(r.wallMs) })),
  };
  writeFileSync(join(options.outDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

const WORKER = fileURLToPath(new URL("./fuzz-worker.ts", import.meta.url));

/** One worker process: asks for seeds until there are none left. */
function runWorker(caseOptions: FuzzCaseOptions, nextSeed: () => number | undefined, record: (r: FuzzCaseResult) => void, now: () => number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = fork(WORKER, [], { execArgv: ["--import", import.meta.resolve("tsx")], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let dispatchedAt = 0;
    const dispatch = (): void => {
      dispatchedAt = now();
      const seed = nextSeed();
      if (seed === undefined) {
        child.send({ type: "exit" });
        return;
      }
      child.send({ type: "run", seed, options: caseOptions });
    };
    child.on("message", (message: { type: string; result?: FuzzCaseResult; error?: string }) => {
      if (message.type === "ready") return dispatch();
      if (message.type === "error") return reject(new Error(`fuzz worker failed: ${message.error ?? "unknown"}`));
      if (message.result !== undefined) record({ ...message.result, wallMs: now() - dispatchedAt });
      dispatch();
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`fuzz worker exited with code ${code}`))));
  });
}
