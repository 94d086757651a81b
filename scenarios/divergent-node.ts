import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "divergent-node",
  description:
    "Replica r3's state transition is corrupted from 20 s on. The state-agreement checker must name r3 (and only r3) with the first height where it differs; the other replicas keep agreeing.",
  n: 4,
  durationS: 60,
  workload: { ratePerSec: 100 },
  faults: [{ kind: "diverge", replicas: [3], fromS: 20 }],
  expect: { verdict: "state-divergence", replicas: ["r3"] },
});
