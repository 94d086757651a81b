import { defineScenario } from "../harness/scenario/scenario.ts";

export default defineScenario({
  name: "crash-restart",
  description:
    "Replica r0 crashes twice: briefly (it catches up from its peers' pools), then for long enough that the subnet moves past a catch-up package (it restarts from disk, state-syncs the checkpoint and rejoins).",
  n: 4,
  durationS: 150,
  workload: { ratePerSec: 100 },
  consensus: { dkgIntervalLength: 19 },
  faults: [
    { kind: "crash", replicas: [0], atS: 10, restartS: 14 },
    { kind: "crash", replicas: [0], atS: 30, restartS: 90 },
  ],
  expect: { verdict: "pass" },
});
