import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "f-mixed-13",
  description:
    "n = 13, f = 4 Byzantine replicas of four kinds at once (equivocating maker, forger, silent replica, proposal withholder) while a fifth, honest replica lags.",
  n: 13,
  durationS: 80,
  workload: { ratePerSec: 200 },
  faults: [
    { kind: "equivocate", replicas: [1], fromS: 2 },
    { kind: "forge", replicas: [4], fromS: 2 },
    { kind: "silent", replicas: [7], fromS: 5, toS: 40 },
    { kind: "withhold", replicas: [10], fromS: 2, toS: 40 },
    { kind: "lag", replicas: [12], delayMs: 300, fromS: 10, toS: 40 },
  ],
  expect: { verdict: "pass" },
});
