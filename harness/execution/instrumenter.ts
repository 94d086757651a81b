// The instrumenter (instrument.ts) loaded on demand. It is built on binaryen, one 15 MB module
// whose evaluation costs ~0.65 s of CPU per process; most processes (a fuzz worker drawing
// consensus-only runs, `report`, the key-value scenarios) never instrument a module, so nothing
// imports instrument.ts statically. Whoever is about to run canisters awaits ensureInstrumenter()
// first — scenario/prepare.ts does it for scenarios that declare canisters, and the CLI, the fuzz
// worker, real-mode nodes and the test setup go through it. The runners themselves stay
// synchronous: they only read the loaded module (loadedInstrumenter), and say what to do if it
// is missing.
import type * as Instrument from "./instrument.ts";
import { AssertionError } from "../assert.ts";

export type Instrumenter = typeof Instrument;

let loaded: Instrumenter | undefined;
let loading: Promise<Instrumenter> | undefined;

/** Loads instrument.ts (and binaryen) once per process; later calls return at once. */
export async function ensureInstrumenter(): Promise<Instrumenter> {
  loading ??= import("./instrument.ts");
  loaded ??= await loading;
  return loaded;
}

/** Whether ensureInstrumenter() has completed in this process. */
export function instrumenterLoaded(): boolean {
  return loaded !== undefined;
}

/** The instrumenter, which must have been loaded (a synchronous caller cannot load it). */
export function loadedInstrumenter(): Instrumenter {
  if (loaded === undefined) {
    throw new AssertionError(
      "the Wasm instrumenter (binaryen) is not loaded: `await ensureInstrumenter()` (harness/execution/instrumenter.ts, exported by subnetlab) " +
        "before running canisters — scenario runs go through `await prepareScenario(scenario)` (harness/scenario/prepare.ts)",
    );
  }
  return loaded;
}

/** instrument.ts's instrumentModule, through the loaded instrumenter. */
export function instrumentModule(bytes: Uint8Array): Instrument.InstrumentedModule {
  return loadedInstrumenter().instrumentModule(bytes);
}
