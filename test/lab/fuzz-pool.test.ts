// Issue 13 item 4: fuzz workers that stay up across campaigns (node counts, canary campaigns) in
// one process, without letting a process that ran a seed serve its determinism re-run.
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fuzz, type FuzzOptions } from "../../harness/replay/fuzz.ts";
import { WorkerPool } from "../../harness/replay/worker-pool.ts";

const campaign = (pool: WorkerPool, seed: number, nodes: number[]): FuzzOptions => ({
  seed, runs: 2, budgetMs: undefined, jobs: 2, nodes, kinds: ["crash"], shrink: false, determinismPercent: 100,
  outDir: mkdtempSync(join(tmpdir(), "subnetlab-pool-")), now: () => Date.now(), pool,
});

test("issue 13 item 4: later campaigns in the same pool start no new worker, except for a re-run whose seed every worker has run", async (t) => {
  const pool = new WorkerPool();
  try {
    const first = await fuzz(campaign(pool, 21, [4]));
    t.is(pool.startedCount, 2);
    const second = await fuzz(campaign(pool, 11, [5]));
    t.is(pool.startedCount, 2, "the second campaign ran on the first one's workers");
    // The first campaign again: both workers have run both its seeds, so each re-run needs a fresh process.
    const again = await fuzz(campaign(pool, 21, [4]));
    t.is(pool.startedCount, 4, "one fresh process per re-run");
    for (const summary of [first, second, again]) {
      t.is(summary.runs, 2);
      t.is(summary.reruns.sample + summary.reruns.restart + summary.reruns["state-sync"], 2, "every run re-run in another process");
      t.deepEqual(summary.nondeterministic, []);
      // The CPU the workers spent on the runs and on the re-runs (bench:fuzz's CPU s/run).
      t.true((summary.cpuS?.runs ?? 0) > 0 && (summary.cpuS?.reruns ?? 0) > 0, JSON.stringify(summary.cpuS));
    }
    t.deepEqual(again.results.map((r) => r.traceDigest), first.results.map((r) => r.traceDigest));
  } finally {
    pool.close();
  }
});
