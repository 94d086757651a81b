import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "divergent-execution",
  description:
    "Four replicas run the key-value canister; from 10 s on, replica r3's Wasm execution is perturbed (its canister heap ends each batch with one byte flipped). State-hash comparison must name r3, and only r3, while the other replicas keep finalizing and agreeing.",
  n: 4,
  durationS: 40,
  canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }],
  workload: { ratePerSec: 30, call: { canister: "kv", method: "insert" }, stopS: 10 },
  consensus: { dkgIntervalLength: 19 },
  faults: [{ kind: "diverge", replicas: [3], fromS: 10 }],
  expect: { verdict: "state-divergence", replicas: ["r3"] },
});
