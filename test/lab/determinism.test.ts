// Same seed ⇒ same trace digest; different seed ⇒ different digest (DESIGN.md rule 5).
import test from "ava";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";

const DIR = new URL("../../scenarios/", import.meta.url).pathname;

// Every shipped scenario is also run twice with seed 1 (run, then replay to its digest) in
// scenarios.test.ts; here a second seed, and for baseline the plain same-seed comparison of the
// whole report, without the replay machinery.
for (const name of ["baseline", "f-mixed", "crash-restart"]) {
  const title = name === "baseline" ? "the same seed gives the same trace digest, another seed a different one" : "another seed gives another trace digest (same seed: scenarios.test.ts)";
  test(`${name}: ${title}`, async (t) => {
    const { scenario } = await loadScenario(`${DIR}${name}.ts`);
    const first = runScenario(scenario, { seed: 11 });
    const other = runScenario(scenario, { seed: 12 });
    t.not(first.traceDigest, other.traceDigest);
    t.regex(first.traceDigest, /^[0-9a-f]{64}$/);
    if (name !== "baseline") return;
    const again = runScenario(scenario, { seed: 11 });
    t.is(first.traceDigest, again.traceDigest);
    t.is(first.traceEvents, again.traceEvents);
    t.deepEqual(first.replicas, again.replicas);
  });
}

// Same seed: scenarios.test.ts runs the full scenario and replays it to its digest.
test("xnet-ledger-partition (two subnets, envelopes, XNet, certification): another seed gives another digest", async (t) => {
  const { scenario } = await loadScenario(`${DIR}xnet-ledger-partition.ts`);
  const short = { ...scenario, durationS: 30, xnetFaults: [{ kind: "partition-subnets" as const, groups: [["a"], ["b"]], fromS: 5, toS: 12 }], workload: { ...scenario.workload!, stopS: 15 }, actions: [], expectProbes: {} };
  const first = runScenario(short, { seed: 11 });
  const other = runScenario(short, { seed: 12 });
  t.not(first.traceDigest, other.traceDigest);
  t.true(first.ingress.finalized > 50, "cross-subnet transfers ran");
});
