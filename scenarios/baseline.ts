import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "baseline",
  description: "Four honest replicas across three regions under a steady ingress load: every property must hold.",
  n: 4,
  durationS: 60,
  workload: { ratePerSec: 100, invalidPercent: 2 },
  expect: { verdict: "pass" },
});
