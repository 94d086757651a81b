import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "f-mixed",
  description:
    "n = 7, f = 2 Byzantine replicas of different kinds at once (an equivocating block maker and a forger of shares and invalid blocks), plus network loss, duplication and reordering for everyone.",
  n: 7,
  durationS: 90,
  workload: { ratePerSec: 100, invalidPercent: 2 },
  faults: [
    { kind: "equivocate", replicas: [2], fromS: 2 },
    { kind: "forge", replicas: [5], fromS: 2 },
    { kind: "network", effect: "loss", percent: 2, fromS: 5, toS: 45 },
    { kind: "network", effect: "duplicate", percent: 2, fromS: 5, toS: 45 },
    { kind: "network", effect: "reorder", percent: 10, maxDelayMs: 300, fromS: 5, toS: 45 },
  ],
  expect: { verdict: "pass" },
});
