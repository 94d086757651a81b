// npm run bench:sim — simulated seconds per wall-clock second for subnets of 4, 13 and 40
// replicas under 500 ingress messages per simulated second, measured one after another in one
// process. Prints a table and, as its last line, JSON.
import { defineScenario } from "../harness/scenario/scenario.ts";
import { runScenario } from "../harness/scenario/runner.ts";

const RATE_PER_SEC = 500;
const sizes = (process.env.BENCH_SIZES ?? "4,13,40").split(",").map(Number);
const durationFor = (n: number): number => (n >= 40 ? 20 : 40);

interface Row {
  n: number;
  simulatedS: number;
  wallS: number;
  simSecondsPerWallSecond: number;
  finalizedHeight: number;
  ingressFinalized: number;
  events: number;
}

const rows: Row[] = [];
for (const n of sizes) {
  const scenario = defineScenario({
    name: `bench-n${n}`,
    description: `bench: ${n} replicas, ${RATE_PER_SEC} msg/s`,
    n,
    durationS: durationFor(n),
    workload: { ratePerSec: RATE_PER_SEC, stopS: durationFor(n) },
    livenessBoundS: 5,
  });
  const started = performance.now();
  const report = runScenario(scenario, { seed: 1 });
  const wallS = (performance.now() - started) / 1000;
  rows.push({
    n,
    simulatedS: scenario.durationS,
    wallS: Number(wallS.toFixed(2)),
    simSecondsPerWallSecond: Number((scenario.durationS / wallS).toFixed(2)),
    finalizedHeight: Math.min(...report.replicas.map((r) => r.deliveredHeight)),
    ingressFinalized: report.ingress.finalized,
    events: report.traceEvents,
  });
  process.stderr.write(`n=${n}: ${scenario.durationS} s simulated in ${wallS.toFixed(2)} s wall (${(scenario.durationS / wallS).toFixed(2)}× real time)\n`);
}

console.log("n    simulated s   wall s   sim-s/wall-s   height   ingress finalized   trace events");
for (const r of rows) {
  console.log(`${String(r.n).padEnd(4)} ${String(r.simulatedS).padEnd(13)} ${String(r.wallS).padEnd(8)} ${String(r.simSecondsPerWallSecond).padEnd(14)} ${String(r.finalizedHeight).padEnd(8)} ${String(r.ingressFinalized).padEnd(19)} ${r.events}`);
}
console.log(JSON.stringify({ benchmark: "sim", ingressPerSec: RATE_PER_SEC, node: process.version, rows }));
