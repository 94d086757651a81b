// Imported first by every test file that runs canisters (a side-effect import, after ava's):
// the Wasm instrumenter (binaryen, loaded on demand in the harness: harness/execution/instrumenter.ts)
// must be loaded before an executor, an ExecutionLab or an execution subnet is built synchronously.
// Test files without canisters do not import it and start ≈ 1 s of CPU sooner (binaryen's
// evaluation), which adds up over the suite's ~120 processes. Scenario files loaded with
// loadScenario/prepareScenario load it themselves. Tests of the lazy loading itself run in child
// processes (test/execution/lazy-instrumenter.test.ts).
import { ensureInstrumenter } from "../harness/execution/instrumenter.ts";

await ensureInstrumenter();
