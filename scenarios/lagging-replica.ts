import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "lagging-replica",
  description:
    "Replica r2 has slow links (+400 ms each way) and then a slow machine (+250 ms per message); it falls behind and catches up once it is healthy again.",
  n: 4,
  durationS: 100,
  workload: { ratePerSec: 100 },
  faults: [
    { kind: "lag", replicas: [2], delayMs: 400, fromS: 5, toS: 35 },
    { kind: "slow", replicas: [2], delayMs: 250, fromS: 35, toS: 60 },
  ],
  expect: { verdict: "pass" },
});
