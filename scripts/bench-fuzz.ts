// npm run bench:fuzz — fuzz runs per second for n = 4 and n = 7, one worker per core, each run a
// generated scenario of fixed length (30 s safety phase + 30 s liveness phase = 60 s simulated).
// Prints a table and, as its last line, JSON.
import { availableParallelism, tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { fuzz } from "../harness/replay/fuzz.ts";
import { FUZZ_KINDS } from "../harness/scenario/generate.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 60);
const jobs = availableParallelism();
const rows: { n: number; runs: number; runsPerSec: number; elapsedS: number; simulatedSPerRun: number; jobs: number }[] = [];
for (const n of [4, 7]) {
  const summary = await fuzz({
    seed: 1, runs: RUNS, budgetMs: undefined, jobs, nodes: [n], kinds: FUZZ_KINDS,
    outDir: mkdtempSync(join(tmpdir(), `bench-fuzz-${n}-`)), shrink: false, determinismPercent: 0, now: () => performance.now(),
  });
  rows.push({ n, runs: summary.runs, runsPerSec: summary.runsPerSec, elapsedS: summary.elapsedS, simulatedSPerRun: 60, jobs });
  process.stderr.write(`n=${n}: ${summary.runs} runs in ${summary.elapsedS}s = ${summary.runsPerSec} runs/s (${JSON.stringify(summary.verdicts)})\n`);
}
console.log("n    runs   jobs   runs/s   wall s   simulated s per run");
for (const r of rows) console.log(`${String(r.n).padEnd(4)} ${String(r.runs).padEnd(6)} ${String(r.jobs).padEnd(6)} ${String(r.runsPerSec).padEnd(8)} ${String(r.elapsedS).padEnd(8)} ${r.simulatedSPerRun}`);
console.log(JSON.stringify({ benchmark: "fuzz", node: process.version, rows }));
