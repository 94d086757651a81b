// Compilers the fixture builds need, installed on demand (the machine has apt and root; CI
// machines start without clang).
import { execFileSync, spawnSync } from "node:child_process";

const have = (cmd: string, args: string[]): boolean => spawnSync(cmd, args).status === 0;

/** clang with the wasm32 target and wasm-ld; apt-get installs clang and lld if missing. */
export function ensureClang(): void {
  if (have("clang", ["--version"]) && have("wasm-ld", ["--version"])) return;
  console.log("clang/wasm-ld missing: installing clang and lld with apt-get");
  // A fresh machine has empty package lists: update first.
  execFileSync("apt-get", ["update"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "clang", "lld"], { stdio: "inherit" });
}

/** PATH without node_modules/.bin: clang runs any `wasm-opt` on PATH, and binaryen's npm copy rejects clang-14's output. */
export function pathWithoutNodeBins(): string {
  return (process.env["PATH"] ?? "")
    .split(":")
    .filter((p) => !p.includes("node_modules"))
    .join(":");
}
