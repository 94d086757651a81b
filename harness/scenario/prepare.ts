// What a scenario needs loaded before it runs (the runners are synchronous; loading is not). Today
// that is the Wasm instrumenter, for scenarios with canisters — loaded on demand because binaryen
// costs every process that imports it ~0.65 s of CPU (harness/execution/instrumenter.ts). Any
// canister may install further modules at run time (actions, or code in a canister calling the
// management canister), so the instrumenter is loaded for the scenario as a whole, not per module.
import { ensureInstrumenter } from "../execution/instrumenter.ts";
import { allCanisters, type Scenario } from "./scenario.ts";

/** Whether the scenario runs canisters (and so the execution environment). */
export function scenarioHasCanisters(scenario: Scenario): boolean {
  return allCanisters(scenario).length > 0;
}

/** Loads what running the scenario needs; await it before runScenario and its callers. */
export async function prepareScenario(scenario: Scenario): Promise<void> {
  if (scenarioHasCanisters(scenario)) await ensureInstrumenter();
}
