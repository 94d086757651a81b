// A 4-node subnet end to end with the real BLS12-381 backend (Ed25519 block proposals, BLS
// multi-signatures for notarization/finalization, threshold BLS for the random beacon and the
// catch-up packages) instead of the fast simulated one.
import test from "ava";
import { signedCup } from "../../harness/consensus/artifacts.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import type { SimSubnet } from "../../harness/replica/subnet.ts";
import { replicaId } from "../../harness/types.ts";

test("consensus with real BLS signatures finalizes, makes catch-up packages and stays deterministic", (t) => {
  const scenario = defineScenario({
    name: "bls-subnet", description: "real crypto", n: 4, durationS: 8, crypto: "bls",
    workload: { ratePerSec: 20, stopS: 3 }, livenessBoundS: 4, consensus: { dkgIntervalLength: 9 },
  });
  let subnet: SimSubnet | undefined;
  const report = runScenario(scenario, { seed: 1, onFinish: (s) => { subnet = s; } });
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
  t.true(Math.min(...report.replicas.map((r) => r.deliveredHeight)) >= 15, JSON.stringify(report.replicas.map((r) => r.deliveredHeight)));
  t.is(subnet?.keys.verifier.backend, "bls");
  const cup = subnet?.replica(replicaId(0))?.consensusPool.latestCup;
  t.true((cup?.content.height ?? 0) >= 10, "a CUP beyond genesis was aggregated");
  t.true(subnet!.keys.verifier.verifyThreshold("high", signedCup(cup!.content), cup!.signature), "the CUP's threshold BLS signature verifies");
  t.false(subnet!.keys.verifier.verifyThreshold("high", signedCup({ ...cup!.content, stateHash: "00".repeat(32) as never }), cup!.signature), "and binds the state hash");
  t.is(report.ingress.finalized, report.ingress.valid);
});
