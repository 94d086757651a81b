// ava `require` (package.json): loaded before every test file. Tests build execution subnets,
// ExecutionLabs and executors synchronously all over the suite, so the Wasm instrumenter (binaryen,
// loaded on demand in the harness: harness/execution/instrumenter.ts) is loaded here once per test
// process, as every import of the harness did before it became lazy. Tests of the lazy loading
// itself run in child processes (test/execution/lazy-instrumenter.test.ts).
import { ensureInstrumenter } from "../harness/execution/instrumenter.ts";

await ensureInstrumenter();
