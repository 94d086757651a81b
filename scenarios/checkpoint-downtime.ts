import { defineScenario } from "../harness/scenario/scenario.ts";

/** Canister-per-user fleet: one small module installed many times (the checkpoint writes files for each). */
const FLEET_SIZE = 1_000;

export default defineScenario({
  name: "checkpoint-downtime",
  description:
    "Issue 14 item 3: a subnet hosting a fleet of 1,000 canisters next to a busy key-value canister, with the execution time model on. Every checkpoint (every 20 heights here; 500 on the IC) writes files for every canister while execution waits, so certified update latency spikes at checkpoint heights. Run with execution.checkpoints: \"background\" to see the pause disappear with the same certified states.",
  n: 4,
  durationS: 24,
  canisters: [
    { name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" },
    ...Array.from({ length: FLEET_SIZE }, (_, i) => ({ name: `user-${i}`, wasm: "fixtures/canisters/wat/state.wasm" })),
  ],
  workload: { ratePerSec: 20, call: { canister: "kv", method: "insert" }, stopS: 20 },
  consensus: { dkgIntervalLength: 19 },
  execution: { timeModel: true },
  livenessBoundS: 20,
  expect: { verdict: "pass" },
});
