// The execution scenarios fresh-process.test.ts runs, shortened to keep the test quick.
import type { Scenario } from "../../harness/scenario/scenario.ts";

export const FRESH_PROCESS_SCENARIOS = ["kv-canister", "divergent-execution", "snapshot-restore"] as const;

export function shortened(scenario: Scenario): Scenario {
  // Long enough for every timed action of snapshot-restore (the last one at 23 s).
  return { ...scenario, durationS: Math.min(scenario.durationS, 26) };
}
