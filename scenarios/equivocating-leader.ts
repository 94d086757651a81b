import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "equivocating-leader",
  description:
    "Replica r1 proposes two different blocks whenever it is a block maker, one to each half of its peers. Honest notaries detect the equivocation and the chain stays safe and live.",
  n: 4,
  durationS: 90,
  workload: { ratePerSec: 100 },
  faults: [{ kind: "equivocate", replicas: [1], fromS: 2, toS: 50 }],
  expect: { verdict: "pass" },
});
