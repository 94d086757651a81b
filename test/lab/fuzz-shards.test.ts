// Issue 13 item 4: campaigns spread over CI's parallel jobs — `fuzz --shard K/N` takes a disjoint
// slice of the seed space and `subnetlab report` merges the shards' summaries, JUnit files and
// failures into one index, refusing shards that are missing or belong to another campaign.
import test from "ava";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nthSeed, type FuzzSummary, type FuzzViolation } from "../../harness/replay/fuzz.ts";
import { mergeShards, rebasePath, type FoundShard } from "../../harness/replay/shards.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, GITHUB_ACTIONS: "" } });
const readJson = (path: string): FuzzSummary => JSON.parse(readFileSync(path, "utf8")) as FuzzSummary;

test("item 4: N shards of R runs each draw exactly the seeds one campaign of N·R runs draws", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 40 }), (base, count, runs) => {
      const sharded = Array.from({ length: count }, (_, k) => Array.from({ length: runs }, (_, i) => nthSeed(base, i, { index: k + 1, count }))).flat();
      const single = Array.from({ length: count * runs }, (_, i) => nthSeed(base, i, undefined));
      t.deepEqual([...sharded].sort((a, b) => a - b), single);
    }),
  );
});

function syntheticShard(dir: string, index: number, count: number, seeds: readonly number[], violationAt?: number): FoundShard {
  const violation: FuzzViolation | undefined =
    violationAt === undefined
      ? undefined
      : { seed: violationAt, class: "safety", message: "fork at height 3", repro: `reports/fuzz/failures/seed-${violationAt}/repro.json`, replayCommand: `npx subnetlab replay reports/fuzz/failures/seed-${violationAt}/repro.json`, shrunkRepro: `reports/fuzz/failures/seed-${violationAt}/shrunk/repro.json` };
  const summary: FuzzSummary & { shard: { index: number; count: number } } = {
    runs: seeds.length,
    seeds: { first: seeds[0] ?? index - 1, last: seeds.at(-1) ?? index - 1 },
    shard: { index, count },
    violations: violation === undefined ? [] : [violation],
    nondeterministic: [],
    reruns: { sample: 1, restart: 0, "state-sync": 0 },
    verdicts: { pass: seeds.length - (violation === undefined ? 0 : 1), ...(violation === undefined ? {} : { safety: 1 }) },
    runsPerSec: 2,
    elapsedS: 10 + index,
    options: { nodes: [4], kinds: ["crash"], jobs: 2 },
    results: seeds.map((seed) => ({ seed, n: 4, verdict: seed === violationAt ? "safety" : "pass", traceDigest: `d${seed}`, wallMs: 100 })),
  };
  return { dir, summary };
}

test("item 4: the merge sums the shards, and points each failure where its shard's files now lie", (t) => {
  const merged = mergeShards([syntheticShard("ci/job-2", 2, 2, [1, 3], 3), syntheticShard("ci/job-1", 1, 2, [0, 2])]);
  if (!merged.ok) return t.fail(merged.problems.join("; "));
  const s = merged.summary;
  t.is(s.runs, 4);
  t.deepEqual(s.results.map((r) => r.seed), [0, 1, 2, 3]);
  t.deepEqual(s.seeds, { first: 0, last: 3 });
  t.deepEqual(s.verdicts, { pass: 3, safety: 1 });
  t.is(s.runsPerSec, 4, "shards ran side by side: rates add up");
  t.is(s.elapsedS, 12, "the campaign's wall time is the longest shard's");
  t.is(s.options.jobs, 4);
  t.is(s.reruns.sample, 2);
  const v = s.violations[0];
  t.is(v?.repro, join("ci/job-2", "failures/seed-3/repro.json"));
  t.is(v?.shrunkRepro, join("ci/job-2", "failures/seed-3/shrunk/repro.json"));
  t.is(v?.replayCommand, `npx subnetlab replay ${join("ci/job-2", "failures/seed-3/repro.json")}`);
  t.deepEqual(s.merged?.map((m) => m.shard.index), [1, 2]);
});

test("item 4: the merge refuses a missing shard, a shard twice, and a shard of another campaign — naming each", (t) => {
  const missing = mergeShards([syntheticShard("a", 1, 3, [0, 3]), syntheticShard("c", 3, 3, [2, 5])]);
  t.false(missing.ok);
  t.deepEqual(missing.ok ? [] : missing.problems, ["shard 2/3 is missing (did its job fail before uploading its output?)"]);
  const twice = mergeShards([syntheticShard("a", 1, 2, [0]), syntheticShard("b", 1, 2, [0]), syntheticShard("c", 2, 2, [1])]);
  t.regex(twice.ok ? "" : twice.problems.join("\n"), /shard 1\/2 appears twice: a and b/);
  const other = syntheticShard("b", 2, 2, [101]);
  const mixed = mergeShards([syntheticShard("a", 1, 2, [0]), other]);
  t.regex(mixed.ok ? "" : mixed.problems.join("\n"), /b \(shard 2\/2, --seed 100, .*\) is not part of the campaign of a \(shard 1\/2, --seed 0/);
  t.false(mergeShards([]).ok);
});

test("item 4: rebasePath keeps paths that name no failures folder", (t) => {
  t.is(rebasePath("/x/y/repro.json", "job"), "/x/y/repro.json");
  t.is(rebasePath("out\\failures\\seed-9\\repro.json", "job"), join("job", "failures", "seed-9", "repro.json"));
});

test("item 4 (CLI): two shard jobs and report give the campaign one job would have run, with one JUnit file", (t) => {
  const root = mkdtempSync(join(tmpdir(), "subnetlab-shards-"));
  const common = ["--runs", "3", "--nodes", "4", "--faults", "crash,partition", "--seed", "40", "--jobs", "1", "--quiet"];
  for (const k of [1, 2]) {
    const run = cli("fuzz", ...common, "--shard", `${k}/2`, "--out", join(root, `job-${k}`, "fuzz"));
    t.is(run.status, 0, run.stderr);
    t.regex(run.stdout, new RegExp(`shard ${k}/2: one seed in 2`));
  }
  const report = cli("report", root);
  t.is(report.status, 0, report.stdout + report.stderr);
  t.regex(report.stdout, /2 shards: job-1\/fuzz, job-2\/fuzz\): 6 runs \(seeds 40\.\.45\)/);
  const merged = readJson(join(root, "summary.json"));
  t.deepEqual(merged.results.map((r) => r.seed), [40, 41, 42, 43, 44, 45]);
  // The same six seeds as one unsharded campaign: the same digests seed by seed.
  const single = mkdtempSync(join(tmpdir(), "subnetlab-shards-single-"));
  t.is(cli("fuzz", ...common.map((a) => (a === "3" ? "6" : a)), "--out", single).status, 0);
  t.deepEqual(merged.results.map((r) => r.traceDigest), readJson(join(single, "summary.json")).results.map((r) => r.traceDigest));
  const xml = readFileSync(join(root, "junit.xml"), "utf8");
  t.is((xml.match(/<testcase /g) ?? []).length, 6);
  t.regex(readFileSync(join(root, "index.html"), "utf8"), /fuzz seed 45/);

  // A job that never uploaded: the merge fails and says which.
  const partial = mkdtempSync(join(tmpdir(), "subnetlab-shards-partial-"));
  mkdirSync(join(partial, "job-1"));
  cpSync(join(root, "job-1"), join(partial, "job-1"), { recursive: true });
  const refused = cli("report", partial);
  t.is(refused.status, 2);
  t.regex(refused.stderr, /shard 2\/2 is missing/);
  t.is(cli("fuzz", "--shard", "3/2").status, 2, "K > N is a usage error");
  t.regex(cli("fuzz", "--shard", "0/2").stderr, /--shard must be K\/N with 1 ≤ K ≤ N/);
  rmSync(root, { recursive: true, force: true });
});
