import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "partition-heal",
  description:
    "n = 7: first a minority {r0, r1} is cut off (the majority of 5 keeps finalizing), then the subnet splits 4 | 3 so that no side has 2f+1 = 5 (finalization stops, safety holds), then r6 is cut off one-way; after the heal everyone catches up.",
  n: 7,
  durationS: 120,
  workload: { ratePerSec: 100 },
  faults: [
    { kind: "partition", groups: [[0, 1]], fromS: 5, toS: 25 },
    { kind: "partition", groups: [[0, 1, 2, 3]], fromS: 35, toS: 50 },
    { kind: "partition-oneway", from: [6], to: [0, 1, 2, 3, 4, 5], fromS: 55, toS: 65 },
    { kind: "isolate", replicas: [5], fromS: 70, toS: 80 },
  ],
  expect: { verdict: "pass" },
});
