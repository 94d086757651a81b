import { defineScenario } from "../../../harness/scenario/scenario.ts";

// Issue 12 item 9, f + 1 faults: two of four replicas crash for good at 2 s. The other two cannot
// finalize alone (2f+1 = 3), so liveness fails — in the simulator and, judged by the same
// checkers, in real mode.
export default defineScenario({
  name: "real-beyond-f",
  description: "n = 4, f = 1: r2 and r3 are killed at 2 s and never restarted; r0 and r1 must stall and liveness must fail.",
  n: 4,
  durationS: 12,
  workload: { ratePerSec: 1, startS: 1, stopS: 5 },
  livenessBoundS: 5,
  faults: [{ kind: "crash", replicas: [2, 3], atS: 2 }],
  expect: { verdict: "liveness" },
});
