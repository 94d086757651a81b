import { defineScenario } from "../../../harness/scenario/scenario.ts";

// Issue 12 item 9: a short real-mode run — one replica cut off through its proxies, another
// SIGKILLed and restarted from its disk — that must pass, in real mode as in the simulator.
export default defineScenario({
  name: "real-partition-crash",
  description: "n = 4 under a light signed workload: r3 is cut off (its six proxies disabled) from 3 s to 7 s, r1 is killed at 8 s and restarted from its disk at 11 s; every check must pass.",
  n: 4,
  durationS: 26,
  workload: { ratePerSec: 2, startS: 1, stopS: 13 },
  livenessBoundS: 9,
  faults: [
    { kind: "isolate", replicas: [3], fromS: 3, toS: 7 },
    { kind: "crash", replicas: [1], atS: 8, restartS: 11 },
  ],
  expect: { verdict: "pass" },
});
