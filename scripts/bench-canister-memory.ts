// npm run bench:canister-memory — what a canister costs the host's memory when one module is
// installed into many of them (canister per user; issue 14 item 2: "an idle canister costs
// kilobytes"). Installs the Motoko counter (fixtures/canisters/motoko/counter.classic.wasm, built
// by the real compiler) into N canisters of one ExecutionLab, calls each once (so each has a
// committed heap), and prints the JS heap + array buffers per canister after a full GC, and the
// time per install. Run with --expose-gc (the npm script does). Last line: JSON.
//
//   BENCH_CANISTERS=2000 npm run bench:canister-memory
import { readFileSync } from "node:fs";
import { ensureInstrumenter } from "../harness/execution/instrumenter.ts";
import { ExecutionLab } from "../harness/execution/lab.ts";

const N = Number(process.env.BENCH_CANISTERS ?? 2000);
const wasm = readFileSync(new URL("../fixtures/canisters/motoko/counter.classic.wasm", import.meta.url));
await ensureInstrumenter();

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench:canister-memory does)");
const used = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const lab = new ExecutionLab();
// One canister first, so the module's compilation and instrumentation (shared by the fleet) are
// not counted per canister.
const first = lab.createCanister();
lab.installCode(first, wasm);
lab.updateRaw(first, "inc", new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0x00, 0x00]));
const before = used();
const started = performance.now();
for (let i = 1; i < N; i++) {
  const id = lab.createCanister();
  lab.installCode(id, wasm);
  lab.updateRaw(id, "inc", new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0x00, 0x00]));
}
const ms = performance.now() - started;
const perCanisterKiB = (used() - before) / (N - 1) / 1024;
// What the canister itself holds: the 4 KiB pages of Wasm memory it has written (a page never
// written is the shared zero page and costs nothing).
const memory = lab.canister(first).execution?.wasmMemory;
let writtenPages = 0;
if (memory !== undefined) for (let i = 0; i < memory.pageCount(); i++) if (memory.readPage(i).some((b) => b !== 0)) writtenPages++;
const overheadKiB = perCanisterKiB - writtenPages * 4;
process.stderr.write(
  `${N} canisters of one module: ${perCanisterKiB.toFixed(1)} KiB of host memory each, of which ${writtenPages * 4} KiB are the ${writtenPages} Wasm pages the canister wrote; install + one update ${(ms / (N - 1)).toFixed(2)} ms each\n`,
);
console.log(
  JSON.stringify({ benchmark: "canister-memory", canisters: N, kibPerCanister: Number(perCanisterKiB.toFixed(1)), writtenWasmPages: writtenPages, overheadKibPerCanister: Number(overheadKiB.toFixed(1)), msPerInstallAndUpdate: Number((ms / (N - 1)).toFixed(2)) }),
);
