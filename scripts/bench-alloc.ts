// npm run bench:alloc — megabytes allocated on the JavaScript heap per simulated second, for the
// bench:sim scenario (500 ingress messages per simulated second, key-value subnet) at each size in
// BENCH_SIZES (default 4,13,40). Allocation is counted from V8's own GC statistics: what each
// collection freed, plus the growth of the used heap over the run. Also the process's CPU time
// (user + system, GC threads included), which on a shared machine says more than wall time.
// Prints JSON as its last line.
import { GCProfiler, getHeapStatistics } from "node:v8";
import { defineScenario } from "../harness/scenario/scenario.ts";
import { runScenario } from "../harness/scenario/runner.ts";

const RATE_PER_SEC = 500;
const sizes = (process.env.BENCH_SIZES ?? "4,13,40").split(",").map(Number);
const durationFor = (n: number): number => Number(process.env.BENCH_SECONDS ?? (n >= 40 ? 20 : 40));

interface GcEntry {
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
}

const rows: { n: number; simulatedS: number; wallS: number; cpuS: number; simSecondsPerCpuSecond: number; allocatedMB: number; allocatedMBPerSimSecond: number; gcCount: number; gcMs: number }[] = [];
for (const n of sizes) {
  const durationS = durationFor(n);
  const scenario = defineScenario({
    name: `bench-n${n}`,
    description: `bench: ${n} replicas, ${RATE_PER_SEC} msg/s`,
    n,
    durationS,
    workload: { ratePerSec: RATE_PER_SEC, stopS: durationS },
    livenessBoundS: 5,
  });
  const profiler = new GCProfiler();
  const usedBefore = getHeapStatistics().used_heap_size;
  profiler.start();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  runScenario(scenario, { seed: 1 });
  const cpu = process.cpuUsage(cpuBefore);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const wallS = (performance.now() - started) / 1000;
  const usedAfter = getHeapStatistics().used_heap_size;
  const result = profiler.stop() as unknown as { statistics: (GcEntry & { cost: number })[] };
  let freed = 0;
  let gcUs = 0;
  for (const gc of result.statistics) {
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
    gcUs += gc.cost;
  }
  const allocatedMB = (freed + usedAfter - usedBefore) / 1e6;
  rows.push({ n, simulatedS: durationS, wallS: Number(wallS.toFixed(2)), cpuS: Number(cpuS.toFixed(2)), simSecondsPerCpuSecond: Number((durationS / cpuS).toFixed(2)), allocatedMB: Math.round(allocatedMB), allocatedMBPerSimSecond: Number((allocatedMB / durationS).toFixed(1)), gcCount: result.statistics.length, gcMs: Math.round(gcUs / 1000) });
  process.stderr.write(`n=${n}: ${allocatedMB.toFixed(0)} MB allocated in ${durationS} s simulated (${(allocatedMB / durationS).toFixed(1)} MB per simulated s), ${result.statistics.length} GCs, ${wallS.toFixed(2)} s wall, ${cpuS.toFixed(2)} s CPU\n`);
}
console.log(JSON.stringify({ benchmark: "alloc", ingressPerSec: RATE_PER_SEC, node: process.version, rows }));
