import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "beyond-f",
  description:
    "f + 1 = 2 colluding replicas (r0, r1) of n = 4 equivocate, notarize everything and finalize everything, while the network keeps the honest r2 and r3 apart. Safety needs at most f faults: the checker must report the fork.",
  n: 4,
  durationS: 40,
  workload: { ratePerSec: 50 },
  faults: [
    { kind: "collude", replicas: [0, 1], sideA: [2], fromS: 2 },
    // Only the honest pair is cut; both stay connected to the colluders.
    { kind: "partition-oneway", from: [2], to: [3], fromS: 2, toS: 30 },
    { kind: "partition-oneway", from: [3], to: [2], fromS: 2, toS: 30 },
  ],
  expect: { verdict: "safety", replicas: ["r2", "r3"] },
});
