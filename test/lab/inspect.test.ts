// analyze, state diff, run diff and branch-at on recorded runs.
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { recordRun } from "../../harness/replay/record.ts";
import { readRepro } from "../../harness/replay/repro.ts";
import { analyzeRun, diffReplicaStates, firstDisagreement } from "../../harness/replay/inspect.ts";
import { branchAt } from "../../harness/replay/branch.ts";
import { replay } from "../../harness/replay/replay.ts";
import { replicaId } from "../../harness/types.ts";

const SCENARIOS = new URL("../../scenarios/", import.meta.url).pathname;
const tmp = (name: string): string => mkdtempSync(join(tmpdir(), `subnetlab-${name}-`));

async function record(name: string, seed: number) {
  const loaded = await loadScenario(`${SCENARIOS}${name}.ts`);
  const outDir = tmp(name);
  return { outDir, run: recordRun({ scenario: loaded.scenario, scenarioFile: loaded.path, seed, outDir, keepTrace: true }) };
}

/** One recording of divergent-node for the tests that only read it (analyze and diff write nothing into the run). */
let divergentNode: ReturnType<typeof record> | undefined;
const recordedDivergentNode = (): ReturnType<typeof record> => (divergentNode ??= record("divergent-node", 1));

test("analyze re-derives the divergence verdict from the stored trace alone", async (t) => {
  const { outDir, run } = await recordedDivergentNode();
  const { bundle, dir } = readRepro(outDir);
  const result = await analyzeRun(bundle, dir);
  t.is(result.verdict, "state-divergence");
  t.deepEqual(result.violations.map((v) => v.replicas), run.report.violations.map((v) => v.replicas));
  t.is(result.events, run.report.traceEvents);
});

test("analyze reports the fork of beyond-f from the trace", async (t) => {
  const { outDir } = await record("beyond-f", 1);
  const { bundle, dir } = readRepro(outDir);
  t.is((await analyzeRun(bundle, dir)).verdict, "safety");
});

test("diff locates the divergent replica's state: the corrupted keys, and nothing between honest replicas", async (t) => {
  const { outDir, run } = await recordedDivergentNode();
  const { bundle } = readRepro(outDir);
  const at = run.report.violations[0]?.height ?? 0;
  const bad = diffReplicaStates(bundle, replicaId(0), replicaId(3), at);
  const kv = bad.subtrees.find((s) => s.path === "/kv");
  t.true((kv?.differing.length ?? 0) > 0);
  t.true(kv?.differing.every((d) => d.b === `${d.a}~`), "every differing value is r3's corrupted copy of r0's");
  t.is(bad.subtrees.find((s) => s.path === "/ingress_history")?.differing.length, 0);
  const good = diffReplicaStates(bundle, replicaId(0), replicaId(1), at);
  t.true(good.subtrees.every((s) => s.differing.length === 0));
});

test("diff of two runs finds the first height where they disagree", async (t) => {
  const a = await record("baseline", 1);
  const b = await record("baseline", 1);
  const c = await record("baseline", 2);
  t.is(await firstDisagreement(a.outDir, b.outDir, 4), undefined);
  t.is((await firstDisagreement(a.outDir, c.outDir, 4))?.height, 1);
});

test("branch-at shares the prefix with the original and records a replayable new run", async (t) => {
  const { outDir } = await record("baseline", 3);
  const { bundle } = readRepro(outDir);
  const branch = branchAt(bundle, 6000, { kind: "crash", replicas: [2], atS: 0, restartS: 4 }, tmp("branch"));
  t.true(branch.sharedEvents >= 5 * 1024, `shared ${branch.sharedEvents}`);
  t.true(branch.sharedEvents <= 6000 + 1024);
  t.is(branch.recorded.report.verdict, "pass");
  t.true(branch.recorded.report.eventCounts["replica.crash"] === 1);
  const again = readRepro(branch.recorded.reproPath);
  t.true((await replay(again.bundle, again.dir)).matches);
});

test("diff locates a divergent execution: the canister and the 4 KiB heap page that differ", async (t) => {
  const { outDir, run } = await record("divergent-execution", 1);
  t.is(run.report.verdict, "state-divergence");
  t.deepEqual(run.report.violations.map((v) => v.replicas), [["r3"]]);
  const { bundle } = readRepro(outDir);
  const at = run.report.violations[0]?.height ?? 0;
  const diff = diffReplicaStates(bundle, replicaId(0), replicaId(3), at);
  const canister = diff.subtrees.find((s) => s.path.startsWith("/canister/"));
  t.truthy(canister);
  t.true((canister?.differing.length ?? 0) >= 1);
  t.true(canister?.differing.every((d) => /^heap\/page\/\d+$/.test(d.key)), JSON.stringify(canister?.differing));
  const honest = diffReplicaStates(bundle, replicaId(0), replicaId(1), at);
  t.true(honest.subtrees.every((s) => s.differing.length === 0));
});
