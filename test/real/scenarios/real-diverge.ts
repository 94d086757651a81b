import { defineScenario } from "../../../harness/scenario/scenario.ts";

// Issue 12 item 9, a planted bug in real mode: r3's process runs the simulator's `diverge`
// injector (its canister heap is corrupted after every batch from 2 s on). Within f = 1, the
// state checker must name r3, and only r3, as the simulator's divergent-execution scenario does.
export default defineScenario({
  name: "real-diverge",
  description: "n = 4: from 2 s on, replica r3's process corrupts its key-value canister's heap after each batch (the diverge injector on its command line); state agreement must name r3 alone.",
  n: 4,
  durationS: 14,
  workload: { ratePerSec: 2, startS: 1, stopS: 6 },
  livenessBoundS: 6,
  faults: [{ kind: "diverge", replicas: [3], fromS: 2 }],
  expect: { verdict: "state-divergence", replicas: ["r3"] },
});
