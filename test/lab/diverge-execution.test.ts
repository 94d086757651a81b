// Item 3 of the hardening issue (#11): a `diverge` fault that perturbs execution itself (target
// "execution": a faulty executor flips a bit of each call's argument before the canister runs),
// not only the state after it. The divergence starts inside execution; the state checker must
// still name that replica, and only it, while the others keep agreeing.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { runScenario } from "../../harness/scenario/runner.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";

const scenario = defineScenario({
  name: "diverge-inside-execution",
  description: "r3's executor flips a bit of every call argument from 8 s on.",
  n: 4,
  durationS: 25,
  canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }],
  workload: { ratePerSec: 20, call: { canister: "kv", method: "insert" }, stopS: 15 },
  consensus: { dkgIntervalLength: 19 },
  faults: [{ kind: "diverge", replicas: [3], fromS: 8, target: "execution" }],
});

test("item 3: a divergence that starts inside execution names the faulty replica alone", (t) => {
  const report = runScenario(scenario, { seed: 3 });
  t.is(report.verdict, "state-divergence", JSON.stringify(report.violations));
  const divergence = report.violations.find((v) => v.property === "state-divergence");
  t.deepEqual(divergence?.replicas, ["r3"], JSON.stringify(divergence));
  t.true(report.violations.every((v) => v.property === "state-divergence"), "no other checker fires");
});

test("item 3: without the fault the same run passes (the fault, not the scenario, makes it diverge)", (t) => {
  const report = runScenario({ ...scenario, faults: [] }, { seed: 3 });
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
});
