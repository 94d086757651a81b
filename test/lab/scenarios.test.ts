// Every shipped scenario must produce the verdict it declares (beyond-f: a fork the safety checker
// reports; divergent-node: r3 named, nobody else).
import test from "ava";
import { readdirSync } from "node:fs";
import { loadScenario } from "../../harness/scenario/load.ts";
import { DEFAULT_CHECKPOINT_EVERY, runScenario } from "../../harness/scenario/runner.ts";
import { makeRepro } from "../../harness/replay/repro.ts";
import { replay } from "../../harness/replay/replay.ts";

const DIR = new URL("../../scenarios/", import.meta.url).pathname;
const files = readdirSync(DIR).filter((f) => f.endsWith(".ts")).sort();

test("the required scenarios ship", (t) => {
  for (const name of ["baseline", "equivocating-leader", "lagging-replica", "divergent-node", "crash-restart", "partition-heal", "f-mixed", "f-mixed-13", "beyond-f"]) {
    t.true(files.includes(`${name}.ts`), name);
  }
});

for (const file of files) {
  test(`scenario ${file} gives its expected verdict and replays to its digest`, async (t) => {
    const { scenario } = await loadScenario(DIR + file);
    const checkpoints: string[] = [];
    const report = runScenario(scenario, { seed: 1, checkpointEvery: DEFAULT_CHECKPOINT_EVERY, onCheckpoint: (_n, digest) => checkpoints.push(digest) > 0 });
    const replayed = await replay(makeRepro({ scenario, seed: 1, checkpointEvery: DEFAULT_CHECKPOINT_EVERY, checkpoints, report }), DIR);
    t.true(replayed.matches, `replay digest ${replayed.digest} vs ${report.traceDigest}`);
    t.true(report.asExpected, `${report.verdict}: ${JSON.stringify(report.violations.slice(0, 3))}`);
    const expected = scenario.expect?.verdict ?? "pass";
    t.is(report.verdict, expected);
    if (expected === "pass") t.true(report.livenessChecked, "a passing scenario must run long enough to judge liveness");
    if (scenario.name === "divergent-node") {
      t.deepEqual(report.violations.map((v) => v.replicas), [["r3"]]);
      const honest = report.replicas.filter((r) => r.replica !== "r3");
      t.is(new Set(honest.map((r) => r.stateHash)).size, 1, "the other replicas agree");
    }
    if (scenario.name === "beyond-f") {
      const fork = report.violations.find((v) => v.property === "safety");
      t.deepEqual([...(fork?.replicas ?? [])].sort(), ["r2", "r3"]);
    }
    if (scenario.name === "crash-restart") t.true((report.eventCounts["state-sync.done"] ?? 0) >= 1, "the long crash needs state sync");
    if (scenario.name === "equivocating-leader") t.true((report.eventCounts["equivocation-proof.add"] ?? 0) > 0, "equivocation is detected");
    if (scenario.name === "divergent-execution") {
      t.true(report.violations.every((v) => v.property === "state-divergence"), "the honest replicas keep certifying (no liveness violation)");
      t.true((report.eventCounts["certification"] ?? 0) > 3 * report.replicas[0]!.deliveredHeight, "certifications at (nearly) every height on r0..r2");
    }
    if (scenario.name === "fleet-upgrade") {
      const upgraded = (scenario.canisters ?? []).filter((c) => c.name !== "beating").reduce((sum, c) => sum + (c.count ?? 1), 0);
      t.is(report.eventCounts["action.upgrade"], upgraded, "the upgrade action reached every member of both fleets");
    }
    if (scenario.name === "xnet-ledger-partition") {
      t.true((report.eventCounts["xnet.net.drop"] ?? 0) > 0, "the partition cut XNet traffic");
      const [cut, end] = report.probes ?? [];
      t.not(cut?.answers["a/r0"], "reply 4449444c00017d00", "transfers were in flight while the subnets were cut off");
      t.is(end?.answers["a/r0"], "reply 4449444c00017d00", "nothing is in flight at the end");
    }
  });
}
