// npm run bench:sim — simulated seconds per wall-clock second for subnets of 4, 13 and 40
// replicas under 500 ingress messages per simulated second, measured one after another in one
// process. Each size runs twice, issue 13 item 3's event savings off and on
// (SUBNETLAB_FEWER_EVENTS; `BENCH_COMPARE=0` runs only "on"), so the gain is a ratio measured
// side by side. Prints a table and, as its last line, JSON (rows[] are the "on" runs).
import { defineScenario } from "../harness/scenario/scenario.ts";
import { runScenario } from "../harness/scenario/runner.ts";
import type { FewerEvents } from "../harness/sim/fewer-events.ts";

const RATE_PER_SEC = 500;
const sizes = (process.env.BENCH_SIZES ?? "4,13,40").split(",").map(Number);
const compare = process.env.BENCH_COMPARE !== "0";
const durationFor = (n: number): number => (n >= 40 ? 20 : 40);

interface Measured {
  wallS: number;
  simSecondsPerWallSecond: number;
  finalizedHeight: number;
  ingressFinalized: number;
  events: number;
  loopEvents: number;
}

interface Row extends Measured {
  n: number;
  simulatedS: number;
  /** The same run with the event savings off (SUBNETLAB_FEWER_EVENTS=off). */
  off?: Measured;
}

function measure(n: number, fewerEvents: FewerEvents): Measured {
  process.env["SUBNETLAB_FEWER_EVENTS"] = fewerEvents;
  const scenario = defineScenario({
    name: `bench-n${n}`,
    description: `bench: ${n} replicas, ${RATE_PER_SEC} msg/s`,
    n,
    durationS: durationFor(n),
    workload: { ratePerSec: RATE_PER_SEC, stopS: durationFor(n) },
    livenessBoundS: 5,
  });
  let loopEvents = 0;
  const started = performance.now();
  const report = runScenario(scenario, { seed: 1, onProgress: (_s, _total, executed) => (loopEvents = executed) });
  const wallS = (performance.now() - started) / 1000;
  process.stderr.write(`n=${n} (fewer events ${fewerEvents}): ${scenario.durationS} s simulated in ${wallS.toFixed(2)} s wall (${(scenario.durationS / wallS).toFixed(2)}× real time), ${loopEvents} loop events\n`);
  return {
    wallS: Number(wallS.toFixed(2)),
    simSecondsPerWallSecond: Number((scenario.durationS / wallS).toFixed(2)),
    finalizedHeight: Math.min(...report.replicas.map((r) => r.deliveredHeight)),
    ingressFinalized: report.ingress.finalized,
    events: report.traceEvents,
    loopEvents,
  };
}

const rows: Row[] = [];
for (const n of sizes) {
  const off = compare ? measure(n, "off") : undefined;
  const on = measure(n, "on");
  rows.push({ n, simulatedS: durationFor(n), ...on, ...(off === undefined ? {} : { off }) });
}

console.log("n    simulated s   wall s   sim-s/wall-s   (off)    height   ingress finalized   trace events   loop events (off)");
for (const r of rows) {
  const off = (v: number | undefined): string => (v === undefined ? "—" : String(v));
  console.log(`${String(r.n).padEnd(4)} ${String(r.simulatedS).padEnd(13)} ${String(r.wallS).padEnd(8)} ${String(r.simSecondsPerWallSecond).padEnd(14)} ${off(r.off?.simSecondsPerWallSecond).padEnd(8)} ${String(r.finalizedHeight).padEnd(8)} ${String(r.ingressFinalized).padEnd(19)} ${String(r.events).padEnd(14)} ${r.loopEvents} (${off(r.off?.loopEvents)})`);
}
console.log(JSON.stringify({ benchmark: "sim", ingressPerSec: RATE_PER_SEC, node: process.version, rows }));
