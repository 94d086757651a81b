// npm run bench:sim — simulated seconds per wall-clock second for subnets of 4, 13 and 40
// replicas under 500 ingress messages per simulated second, measured one after another in one
// process. Each size runs as shipped (event savings and shared batches on), with issue 13 item 3's
// event savings off (SUBNETLAB_FEWER_EVENTS=off: `off`), and with issue 13 item 1's shared batches
// off (`sharingOff`: every replica applies every batch itself; once before and once after the
// as-shipped run, averaged), so each gain is a ratio measured side by side, after an unmeasured
// warm-up run per size. `BENCH_COMPARE=0` runs only the as-shipped run, `=events` or `=sharing`
// only that comparison. Wall times move with other load on the machine; `cpuS` (this process's
// user + system CPU seconds for the run) less so. Prints a table and, as its last line, JSON
// (rows[] are the as-shipped runs).
import { defineScenario } from "../harness/scenario/scenario.ts";
import { runScenario } from "../harness/scenario/runner.ts";
import type { FewerEvents } from "../harness/sim/fewer-events.ts";

const RATE_PER_SEC = 500;
const sizes = (process.env.BENCH_SIZES ?? "4,13,40").split(",").map(Number);
const compare = process.env.BENCH_COMPARE ?? "all";
const compareEvents = compare === "all" || compare === "events";
const compareSharing = compare === "all" || compare === "sharing";
const durationFor = (n: number): number => (n >= 40 ? 20 : 40);

interface Measured {
  wallS: number;
  /** CPU seconds (user + system) of this process during the run. */
  cpuS: number;
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
  /**
   * The same run with shared batches off (every replica applies every batch itself): the mean of
   * one run before and one after the as-shipped run (`sharingOffRuns`), since later runs in a
   * process still come out a little faster after the warm-up.
   */
  sharingOff?: Measured;
  sharingOffRuns?: readonly Measured[];
}

function benchScenario(n: number, durationS: number) {
  return defineScenario({
    name: `bench-n${n}`,
    description: `bench: ${n} replicas, ${RATE_PER_SEC} msg/s`,
    n,
    durationS,
    workload: { ratePerSec: RATE_PER_SEC, stopS: durationS },
    livenessBoundS: 5,
  });
}

/**
 * An unmeasured run at the size about to be measured (2/5 of its simulated time, sharing and
 * event savings on). Without it the first run of a size paid for compiling that size's hot paths
 * and growing the heap — the same configuration measured twice in a row took 20–25 % less CPU
 * the second time at n = 40 — which favoured whichever configuration ran later.
 */
function warmUp(n: number): void {
  process.env["SUBNETLAB_FEWER_EVENTS"] = "on";
  runScenario(benchScenario(n, (durationFor(n) * 2) / 5), { seed: 2 });
}

function measure(n: number, fewerEvents: FewerEvents, sharedExecution: boolean): Measured {
  process.env["SUBNETLAB_FEWER_EVENTS"] = fewerEvents;
  const scenario = benchScenario(n, durationFor(n));
  let loopEvents = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const report = runScenario(scenario, { seed: 1, sharedExecution, onProgress: (_s, _total, executed) => (loopEvents = executed) });
  const cpu = process.cpuUsage(cpuBefore);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const wallS = (performance.now() - started) / 1000;
  process.stderr.write(`n=${n} (fewer events ${fewerEvents}, sharing ${sharedExecution ? "on" : "off"}): ${scenario.durationS} s simulated in ${wallS.toFixed(2)} s wall, ${cpuS.toFixed(2)} CPU s (${(scenario.durationS / wallS).toFixed(2)}× real time), ${loopEvents} loop events, ${report.execution?.executions ?? 0} batches applied\n`);
  return {
    wallS: Number(wallS.toFixed(2)),
    cpuS: Number(cpuS.toFixed(2)),
    simSecondsPerWallSecond: Number((scenario.durationS / wallS).toFixed(2)),
    finalizedHeight: Math.min(...report.replicas.map((r) => r.deliveredHeight)),
    ingressFinalized: report.ingress.finalized,
    events: report.traceEvents,
    loopEvents,
  };
}

/** Two runs of one configuration as one: times averaged, counts (equal in both) from the first. */
function meanOf(a: Measured, b: Measured): Measured {
  const wallS = Number(((a.wallS + b.wallS) / 2).toFixed(2));
  return { ...a, wallS, cpuS: Number(((a.cpuS + b.cpuS) / 2).toFixed(2)), simSecondsPerWallSecond: Number(((a.simSecondsPerWallSecond * a.wallS) / wallS).toFixed(2)) };
}

const rows: Row[] = [];
for (const n of sizes) {
  warmUp(n);
  const off = compareEvents ? measure(n, "off", true) : undefined;
  const sharingOffBefore = compareSharing ? measure(n, "on", false) : undefined;
  const on = measure(n, "on", true);
  const sharingOffAfter = compareSharing ? measure(n, "on", false) : undefined;
  const sharingOff = sharingOffBefore === undefined || sharingOffAfter === undefined ? {} : { sharingOff: meanOf(sharingOffBefore, sharingOffAfter), sharingOffRuns: [sharingOffBefore, sharingOffAfter] };
  rows.push({ n, simulatedS: durationFor(n), ...on, ...(off === undefined ? {} : { off }), ...sharingOff });
}

const orDash = (v: number | undefined): string => (v === undefined ? "—" : String(v));
console.log("n    simulated s   wall s   CPU s (sharing off)   sim-s/wall-s   (events off)   (sharing off)   height   ingress finalized   trace events   loop events (events off)");
for (const r of rows) {
  const cpu = `${r.cpuS} (${orDash(r.sharingOff?.cpuS)})`;
  console.log(`${String(r.n).padEnd(4)} ${String(r.simulatedS).padEnd(13)} ${String(r.wallS).padEnd(8)} ${cpu.padEnd(21)} ${String(r.simSecondsPerWallSecond).padEnd(14)} ${orDash(r.off?.simSecondsPerWallSecond).padEnd(14)} ${orDash(r.sharingOff?.simSecondsPerWallSecond).padEnd(15)} ${String(r.finalizedHeight).padEnd(8)} ${String(r.ingressFinalized).padEnd(19)} ${String(r.events).padEnd(14)} ${r.loopEvents} (${orDash(r.off?.loopEvents)})`);
}
console.log(JSON.stringify({ benchmark: "sim", ingressPerSec: RATE_PER_SEC, node: process.version, rows }));
