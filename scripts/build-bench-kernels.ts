// Builds the paper's benchmark kernels (fixtures/canisters/bench/):
//   - bench.wasm: the canister (clang --target=wasm32 -O2), committed next to its sources;
//   - the native driver (gcc -O2), built on demand into a temporary directory by bench-exec.ts.
// Run on its own with `tsx scripts/build-bench-kernels.ts`; meant to be called from
// `npm run build:fixtures` as well.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureClang, pathWithoutNodeBins } from "./toolchain.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const benchDir = join(root, "fixtures", "canisters", "bench");
export const benchWasmPath = join(benchDir, "bench.wasm");




export function buildBenchWasm(): string {
  ensureClang();
  execFileSync(
    "clang",
    [
      "--target=wasm32",
      "-O2",
      "-mbulk-memory",
      "-nostdlib",
      "-Wall",
      "-Wextra",
      "-Wl,--no-entry",
      "-Wl,--strip-all",
      "-o",
      benchWasmPath,
      join(benchDir, "bench_canister.c"),
    ],
    { stdio: "inherit", env: { ...process.env, PATH: pathWithoutNodeBins() } },
  );
  return benchWasmPath;
}

/** Compiles the native driver with gcc -O2 into `outDir`; returns the executable's path. */
export function buildNativeDriver(outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const exe = join(outDir, "bench_native");
  execFileSync("gcc", ["-O2", "-Wall", "-Wextra", "-o", exe, join(benchDir, "bench_native.c")], { stdio: "inherit" });
  return exe;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = buildBenchWasm();
  const hash = createHash("sha256").update(readFileSync(out)).digest("hex");
  console.log(`${out}  ${readFileSync(out).length} B  sha256 ${hash}`);
}
