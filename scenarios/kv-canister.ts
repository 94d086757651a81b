import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "kv-canister",
  description:
    "Four replicas run the paper's Listing 1 key-value canister (Motoko, Wasm) under consensus: every finalized batch is executed by the execution environment, and the replicas' state hashes (canister memories, queues, ingress history) must agree at every height.",
  n: 4,
  durationS: 45,
  canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }],
  workload: { ratePerSec: 50, call: { canister: "kv", method: "insert" }, stopS: 15 },
  consensus: { dkgIntervalLength: 19 },
  expect: { verdict: "pass" },
});
