// Issue 11, C5 and C6: a harness error ends a fuzz campaign (workers killed, exit 3, the seed
// named, its repro and summary.json written) instead of hanging it; a corrupted checkpoint after a
// restart is refused and recovered from (adopted under the canary skip-checksum: that replica's
// state divergence), never a harness error; nondeterminism — the same seed
// giving two digests in two processes — has its own exit code (5) and a saved repro, for
// `run --twice`, `suite --twice` and the fuzzer's re-runs of restarts and state syncs.
//
// The planted faults are test-only environment variables read by the lab worker process alone
// (harness/replay/fuzz-worker.ts): SUBNETLAB_TEST_THROW_AT_SEED and SUBNETLAB_TEST_PERTURB_RERUN.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT } from "../../harness/report/exit-codes.ts";
import { fuzz, worstClass } from "../../harness/replay/fuzz.ts";
import { readRepro } from "../../harness/replay/repro.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import type { Scenario } from "../../harness/scenario/scenario.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SCENARIO_MODULE = join(ROOT, "harness/scenario/scenario.ts");
const tmp = (): string => mkdtempSync(join(tmpdir(), "subnetlab-hardening-"));
// A hung campaign must fail the test, not the test runner (ava stops a test at 5 minutes): four
// minutes is far beyond these runs, even on a loaded 2-core machine.
const cli = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, GITHUB_ACTIONS: "", ...env }, timeout: 240_000 });

function tinyScenarioFile(dir: string, name: string): string {
  const path = join(dir, `${name}.ts`);
  writeFileSync(path, `import { defineScenario } from ${JSON.stringify(SCENARIO_MODULE)};\nexport default defineScenario({ name: ${JSON.stringify(name)}, description: "tiny", n: 4, durationS: 3, workload: { ratePerSec: 10 } });\n`);
  return path;
}

test("C5: a harness error in a fuzz worker ends the campaign: workers killed, exit 3, seed named, repro and summary.json written", (t) => {
  const out = tmp();
  const result = cli({ SUBNETLAB_TEST_THROW_AT_SEED: "3" }, "fuzz", "--runs", "8", "--nodes", "4", "--seed", "1", "--jobs", "2", "--out", out, "--quiet");
  t.not(result.status, null, "the campaign ended (it did not hang until the timeout)");
  t.is(result.status, EXIT.harnessError, result.stdout + result.stderr);
  t.regex(result.stdout, /HARNESS ERROR at seed 3: AssertionError: planted harness error at seed 3/);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  t.is(summary.harnessError.seed, 3);
  t.is(summary.harnessError.during, "run");
  t.true(summary.runs < 8, "no new seeds after the error");
  const { bundle } = readRepro(summary.harnessError.repro);
  t.is(bundle.seed, 3);
  t.is(bundle.scenario.name, "fuzz-3");
  t.regex(readFileSync(join(out, "failures", "seed-3", "error.txt"), "utf8"), /planted harness error/);
});

test("C5, item 7: a restarted replica whose checkpoint rotted refuses it and recovers; with the canary skip-checksum it adopts it and is that replica's state divergence — never a harness error", (t) => {
  // The disk holds bytes (item 7), so the rot is a storage fault: every page of r3's checkpoints
  // gets a flipped bit just before it crashes.
  const scenario = (canary: boolean): Scenario => ({
    name: "rotten-checkpoint", description: "r3's checkpoint pages rot on its disk; it crashes and restarts from them", n: 4, durationS: 60,
    canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }],
    workload: { ratePerSec: 30, call: { canister: "kv", method: "insert" }, stopS: 40 }, livenessBoundS: 15,
    consensus: { dkgIntervalLength: 9, ...(canary ? { canary: "skip-checksum" as const } : {}) },
    faults: [{ kind: "storage", replicas: [3], effect: "corrupt-page", atS: 15.5, scope: "all" }, { kind: "crash", replicas: [3], atS: 15.6, restartS: 17 }],
  });
  const recovered: string[] = [];
  const honest = runScenario(scenario(false), { seed: 1, traceSink: (_record, line) => { if (line.includes("storage.recovered")) recovered.push(line); } });
  t.is(honest.verdict, "pass", JSON.stringify(honest.violations));
  t.regex(recovered.join(""), /its bytes do not match its hash/, "the rotten pages were detected");
  const canary = runScenario(scenario(true), { seed: 1 });
  t.is(canary.verdict, "state-divergence");
  const divergence = canary.violations.find((v) => v.property === "state-divergence");
  t.deepEqual(divergence?.replicas, ["r3"], JSON.stringify(canary.violations));
});

test("C6: run --twice re-runs in a fresh process: the same digest passes, a planted nondeterminism exits 5 with a saved repro", (t) => {
  const dir = tmp();
  const file = tinyScenarioFile(dir, "twice");
  const same = cli({}, "run", file, "--twice", "--out", join(dir, "same"), "--quiet");
  t.is(same.status, 0, same.stdout + same.stderr);
  t.regex(same.stdout, /twice: a fresh process gave the same digest/);
  const out = join(dir, "perturbed");
  const differs = cli({ SUBNETLAB_TEST_PERTURB_RERUN: "1" }, "run", file, "--twice", "--out", out, "--quiet");
  t.is(differs.status, EXIT.nondeterministic, differs.stdout + differs.stderr);
  t.regex(differs.stdout, /NONDETERMINISM: a fresh process gave digest [0-9a-f]{16}, this one [0-9a-f]{16}/);
  const found = JSON.parse(readFileSync(join(out, "nondeterminism.json"), "utf8"));
  t.is(found.digests.length, 2);
  t.not(found.digests[0], found.digests[1]);
  t.is(readRepro(found.repro).bundle.expected.traceDigest, found.digests[0], "the saved repro is the first process's run");
});

test("C6: suite --twice records a nondeterministic scenario in summary.json and exits 5", (t) => {
  const dir = tmp();
  tinyScenarioFile(dir, "one");
  const out = join(dir, "out");
  const result = cli({ SUBNETLAB_TEST_PERTURB_RERUN: "1" }, "suite", dir, "--twice", "--out", out, "--quiet");
  t.is(result.status, EXIT.nondeterministic, result.stdout + result.stderr);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  t.is(summary.nondeterministic, 1);
  t.false(summary.scenarios[0].asExpected);
  t.true(existsSync(join(out, "one", "nondeterminism.json")));
});

test("C6: the fuzzer re-runs every restart and state sync in another process; a planted nondeterminism exits 5 with a saved repro", (t) => {
  const out = tmp();
  const result = cli({ SUBNETLAB_TEST_PERTURB_RERUN: "1" }, "fuzz", "--runs", "4", "--nodes", "4", "--faults", "crash", "--seed", "1", "--jobs", "1", "--no-shrink", "--out", out, "--quiet");
  t.is(result.status, EXIT.nondeterministic, result.stdout + result.stderr);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  t.true(summary.reruns.restart + summary.reruns["state-sync"] >= 1, JSON.stringify(summary.reruns));
  t.true(summary.nondeterministic.length >= 1);
  for (const d of summary.nondeterministic) {
    t.not(d.first, d.second);
    t.true(existsSync(d.repro), `repro of seed ${d.seed} saved`);
  }
  t.regex(result.stdout, /nondeterminism at seed \d+: digests/);
});

test("C6: without a planted fault, restarts and state syncs re-run in another process give the same digests", async (t) => {
  const summary = await fuzz({ seed: 1, runs: 4, budgetMs: undefined, jobs: 2, nodes: [4], kinds: ["crash"], outDir: tmp(), shrink: false, determinismPercent: 0, now: () => Date.now() });
  t.true(summary.reruns.restart + summary.reruns["state-sync"] >= 1, JSON.stringify(summary.reruns));
  t.deepEqual(summary.nondeterministic, []);
  t.is(worstClass(summary), "pass");
});
