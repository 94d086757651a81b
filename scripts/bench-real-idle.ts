// npm run bench:real-idle — what an idle 4-replica real-mode subnet (`subnetlab up`'s processes,
// no load) costs: the CPU seconds its replica processes use over a window and the heights it
// finalizes meanwhile. Consensus runs as fast as its delays allow, so on a small machine the
// cluster is CPU-bound and "heights per CPU-second" is the figure to compare between commits.
// CPU time is read from /proc/<pid>/stat (Linux). Last line: JSON.
//
//   BENCH_SECONDS=30 npm run bench:real-idle
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "../harness/real/cluster.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const WARM_UP_MS = 10_000;
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The highest height r1 has delivered, from its events file. */
function deliveredHeight(dir: string): number {
  const lines = readFileSync(join(dir, "nodes", "s0-r1", "events.jsonl"), "utf8").split("\n");
  let height = 0;
  for (const line of lines) if (line.includes('"kind":"delivered"')) height = Math.max(height, (JSON.parse(line) as { height: number }).height);
  return height;
}

const dir = mkdtempSync(join(tmpdir(), "subnetlab-bench-idle-"));
const cluster = await Cluster.up({ out: dir, nodes: [4], progress: (line) => process.stderr.write(`${line}\n`), readyTimeoutMs: 120_000 });
try {
  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  const pids = cluster.info().subnets[0]!.replicas.map((r) => r.pid);
  const cpuBefore = pids.reduce((s, pid) => s + cpuSecondsOf(pid), 0);
  const heightBefore = deliveredHeight(dir);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const cpuSeconds = pids.reduce((s, pid) => s + cpuSecondsOf(pid), 0) - cpuBefore;
  const heights = deliveredHeight(dir) - heightBefore;
  process.stderr.write(`${heights} heights in ${SECONDS} s using ${cpuSeconds.toFixed(1)} CPU-s over 4 replicas\n`);
  console.log(JSON.stringify({ nodes: 4, seconds: SECONDS, heights, cpuSeconds: Number(cpuSeconds.toFixed(1)), heightsPerSecond: Number((heights / SECONDS).toFixed(2)), heightsPerCpuSecond: Number((heights / cpuSeconds).toFixed(2)) }));
} finally {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
