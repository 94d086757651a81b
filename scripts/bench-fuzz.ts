// npm run bench:fuzz — fuzz runs per second, one worker per core: consensus-only campaigns at n = 4
// and n = 7 (each run a generated scenario of 60 s simulated: 30 s safety phase, 30 s liveness
// phase) and a `fuzz --ic` campaign (two subnets with ledgers, fewer runs). Each row is measured
// twice, alternately, so the gain of what is around the runs (issue 13 item 4) is a ratio taken
// side by side:
//  - on: one worker pool for the whole benchmark (workers stay up across runs and campaigns),
//    binaryen loaded only by workers that run canisters, instrumented modules from the disk cache
//    (warmed before timing, as any earlier run on the machine leaves it);
//  - off: new workers for each campaign, each loading binaryen at start, no disk cache — the fuzz
//    gate before issue 13.
// Runs re-executed in another process (restarts, state syncs: the determinism re-runs) are part of
// the gate's work and counted in `reruns`. `cpuSPerRun` is the CPU time the workers spent on runs
// and re-runs (process.cpuUsage: all of a worker's threads; start-up not included) per run — on a
// machine shared with other work, steadier than runs/s. Prints a table and, as its last line, JSON:
// {rows: [{n, ic, runsPerSec, runsPerSecOff, speedup, cpuSPerRun, cpuSPerRunOff, ...}]}.
// The wire mode is the gate's own: the `fuzz` command runs with SUBNETLAB_WIRE=roundtrip (every
// message encoded and decoded by each recipient), so this does too unless SUBNETLAB_WIRE says
// otherwise (objects mode costs about half the CPU per run at n = 4); printed as `wire`.
// BENCH_RUNS (default 60) and BENCH_IC_RUNS (default 6) set the campaign sizes; BENCH_FUZZ_OFF=0
// skips the "off" side.
import { readFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { ensureInstrumenter } from "../harness/execution/instrumenter.ts";
import { sharedModuleCache } from "../harness/execution/module-cache.ts";
import { defaultWireMode } from "../harness/p2p/wire-mode.ts";
import { fuzz, type FuzzSummary } from "../harness/replay/fuzz.ts";
import { WorkerPool } from "../harness/replay/worker-pool.ts";
import { FUZZ_KINDS, generateScenario } from "../harness/scenario/generate.ts";
import { allCanisters } from "../harness/scenario/scenario.ts";

// As harness/cli.ts does for `fuzz`, before any worker starts (they inherit the environment).
process.env["SUBNETLAB_WIRE"] ??= "roundtrip";
const RUNS = Number(process.env.BENCH_RUNS ?? 60);
const IC_RUNS = Number(process.env.BENCH_IC_RUNS ?? 6);
const WITH_OFF = process.env.BENCH_FUZZ_OFF !== "0";
const jobs = availableParallelism();
const ROWS: readonly { n: number; ic: boolean; runs: number }[] = [
  { n: 4, ic: false, runs: RUNS },
  { n: 7, ic: false, runs: RUNS },
  { n: 4, ic: true, runs: IC_RUNS },
];

interface Side {
  readonly runsPerSec: number;
  readonly elapsedS: number;
  readonly reruns: number;
  /** CPU seconds of runs and re-runs, per run. */
  readonly cpuSPerRun: number;
  /** The re-runs' part of that CPU time. */
  readonly rerunCpuShare: number;
  readonly verdicts: Record<string, number>;
}

async function campaign(row: (typeof ROWS)[number], pool: WorkerPool): Promise<Side> {
  const summary: FuzzSummary = await fuzz({
    seed: 1, runs: row.runs, budgetMs: undefined, jobs, nodes: [row.n], kinds: FUZZ_KINDS, ...(row.ic ? { ic: true } : {}),
    outDir: mkdtempSync(join(tmpdir(), `bench-fuzz-${row.n}${row.ic ? "-ic" : ""}-`)), shrink: false, determinismPercent: 0, now: () => performance.now(), pool,
  });
  const reruns = summary.reruns.sample + summary.reruns.restart + summary.reruns["state-sync"];
  // Three decimals: a short --ic campaign runs well under one run per second.
  const runsPerSec = Number((summary.runs / Math.max(summary.elapsedS, 1e-3)).toFixed(3));
  const cpuS = (summary.cpuS?.runs ?? 0) + (summary.cpuS?.reruns ?? 0);
  return { runsPerSec, elapsedS: summary.elapsedS, reruns, cpuSPerRun: Number((cpuS / Math.max(summary.runs, 1)).toFixed(3)), rerunCpuShare: Number(((summary.cpuS?.reruns ?? 0) / Math.max(cpuS, 1e-9)).toFixed(2)), verdicts: summary.verdicts };
}

/** The gate before issue 13: new workers per campaign, binaryen at start, no disk cache. */
async function campaignOff(row: (typeof ROWS)[number]): Promise<Side> {
  const pool = new WorkerPool({ ...process.env, SUBNETLAB_MODULE_CACHE: "off", SUBNETLAB_EAGER_INSTRUMENTER: "1" });
  try {
    return await campaign(row, pool);
  } finally {
    pool.close();
  }
}

/** Instruments the --ic scenarios' modules into the disk cache (untimed), as an earlier run would have. */
async function warmDiskCache(): Promise<void> {
  const scenario = generateScenario(1, { nodes: [4], kinds: FUZZ_KINDS, ic: true });
  await ensureInstrumenter();
  for (const wasm of new Set([...allCanisters(scenario).map((c) => c.wasm), "fixtures/canisters/c/counter.wasm"])) {
    sharedModuleCache.get(readFileSync(new URL(`../${wasm}`, import.meta.url)));
  }
}

if (sharedModuleCache.disk !== undefined) await warmDiskCache();
const pool = new WorkerPool();
const rows = [];
try {
  for (const row of ROWS) {
    const off = WITH_OFF ? await campaignOff(row) : undefined;
    const on = await campaign(row, pool);
    const label = `n=${row.n}${row.ic ? " --ic" : ""}`;
    process.stderr.write(`${label}: ${row.runs} runs in ${on.elapsedS}s = ${on.runsPerSec} runs/s (${on.reruns} re-runs, ${JSON.stringify(on.verdicts)}), ${on.cpuSPerRun} CPU s/run${off === undefined ? "" : `; optimisations off: ${off.runsPerSec} runs/s, ${off.cpuSPerRun} CPU s/run`}\n`);
    rows.push({
      n: row.n, ic: row.ic, runs: row.runs, runsPerSec: on.runsPerSec, elapsedS: on.elapsedS, reruns: on.reruns, cpuSPerRun: on.cpuSPerRun, rerunCpuShare: on.rerunCpuShare,
      ...(off === undefined ? {} : { runsPerSecOff: off.runsPerSec, elapsedSOff: off.elapsedS, speedup: Number((off.elapsedS / on.elapsedS).toFixed(2)), cpuSPerRunOff: off.cpuSPerRun }),
      simulatedSPerRun: 60, jobs,
    });
  }
} finally {
  pool.close();
}
console.log("n    ic     runs   jobs   runs/s   off runs/s   speedup   re-runs   wall s   CPU s/run   off CPU s/run");
for (const r of rows) {
  console.log(`${String(r.n).padEnd(4)} ${String(r.ic).padEnd(6)} ${String(r.runs).padEnd(6)} ${String(r.jobs).padEnd(6)} ${String(r.runsPerSec).padEnd(8)} ${String(r.runsPerSecOff ?? "-").padEnd(12)} ${String(r.speedup ?? "-").padEnd(9)} ${String(r.reruns).padEnd(9)} ${String(r.elapsedS).padEnd(8)} ${String(r.cpuSPerRun).padEnd(11)} ${r.cpuSPerRunOff ?? "-"}`);
}
console.log(JSON.stringify({ benchmark: "fuzz", node: process.version, wire: defaultWireMode(), workersStarted: pool.startedCount, rows }));
