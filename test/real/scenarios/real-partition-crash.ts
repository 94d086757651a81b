import { defineScenario } from "../../../harness/scenario/scenario.ts";

// Issue 12 item 9: a short real-mode run — one replica cut off through its proxies, another
// SIGKILLed and restarted from its disk — that must pass, in real mode as in the simulator.
export default defineScenario({
  name: "real-partition-crash",
  description: "n = 4 under a light signed workload: r3 is cut off (its six proxies disabled) from 2 s to 7 s, r1 is killed at 8 s and restarted from its disk at 10 s; every check must pass.",
  n: 4,
  durationS: 30,
  workload: { ratePerSec: 2, startS: 1, stopS: 12 },
  // Generous: a restarted process needs a few seconds to boot before it catches up.
  livenessBoundS: 12,
  faults: [
    { kind: "isolate", replicas: [3], fromS: 2, toS: 7 },
    { kind: "crash", replicas: [1], atS: 8, restartS: 10 },
  ],
  expect: { verdict: "pass" },
});
