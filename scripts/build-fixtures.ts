// Rebuilds the canister fixtures in fixtures/canisters/ from their sources:
//   npm run build:fixtures            (all)
//   npm run build:fixtures -- c       (only the C canisters)
//   npm run build:fixtures -- motoko  (only the Motoko canisters)
//   npm run build:fixtures -- wat     (only the hand-written WAT modules)
//
// - C: clang --target=wasm32 (installs clang + lld with apt-get if they are missing).
// - Motoko: the `motoko` npm package (mo:core bundled; mo:base is not available offline). Each
//   module is compiled in a fresh process because moc's output differs when one process compiles
//   twice (research/wasm-toolchain.md §1 "Determinism"). Two outputs per canister:
//   `<name>.classic.wasm` (classical persistence, 32-bit) and `<name>.eop.wasm` (enhanced
//   orthogonal persistence, the compiler default, 64-bit memory lowered by the executor).
// - WAT: binaryen's text parser (the tests compile these small modules themselves; the .wasm
//   builds are for scenarios and other tools).
// Tests use the committed .wasm files and never compile Motoko or C.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureClang, pathWithoutNodeBins } from "./toolchain.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = join(root, "fixtures", "canisters");

type MotokoMode = "classic" | "eop";
interface MotokoCompiler {
  loadPackage(pkg: unknown): void;
  write(path: string, content: string): void;
  wasm(path: string, mode: "ic"): { wasm: Uint8Array; candid: string };
  compiler: { gcFlags?: (flag: string) => void };
  setExtraFlags(flags: string[]): void;
}

/** Child mode: compile one Motoko file and write the .wasm and .did next to the source. */
function compileMotokoOne(source: string, mode: MotokoMode, out: string): void {
  const require = createRequire(import.meta.url);
  const mo = require("motoko") as MotokoCompiler;
  mo.loadPackage(require("motoko/packages/latest/core.json"));
  if (mode === "classic") {
    if (mo.compiler.gcFlags === undefined) throw new Error("this motoko package has no gcFlags()");
    mo.compiler.gcFlags("classicOP");
  }
  mo.write("main.mo", readFileSync(source, "utf8"));
  const result = mo.wasm("main.mo", "ic");
  writeFileSync(out, result.wasm);
  writeFileSync(out.replace(/\.(classic|eop)\.wasm$/, ".did"), result.candid);
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}



function buildC(): string[] {
  ensureClang();
  const dir = join(fixtures, "c");
  const built: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".c")).sort()) {
    const out = join(dir, basename(file, ".c") + ".wasm");
    execFileSync(
      "clang",
      [
        "--target=wasm32",
        "-O2",
        "-mbulk-memory",
        "-nostdlib",
        "-Wl,--no-entry",
        "-Wl,--strip-all",
        "-o",
        out,
        join(dir, file),
      ],
      // clang runs any `wasm-opt` on PATH after linking; npm puts binaryen's there, which rejects
      // clang-14's bulk-memory output. Build with node_modules/.bin removed from PATH.
      { stdio: "inherit", env: { ...process.env, PATH: pathWithoutNodeBins() } },
    );
    built.push(out);
  }
  return built;
}

async function buildWat(): Promise<string[]> {
  const { default: binaryen } = await import("../harness/execution/binaryen.ts");
  const dir = join(fixtures, "wat");
  const built: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".wat")).sort()) {
    const m = binaryen.parseText(readFileSync(join(dir, file), "utf8"));
    try {
      m.setFeatures(
        binaryen.Features.MutableGlobals |
          binaryen.Features.BulkMemory |
          binaryen.Features.BulkMemoryOpt |
          binaryen.Features.SignExt |
          binaryen.Features.NontrappingFPToInt |
          binaryen.Features.Multivalue,
      );
      if (!m.validate()) throw new Error(`${file} does not validate`);
      const out = join(dir, basename(file, ".wat") + ".wasm");
      writeFileSync(out, m.emitBinary());
      built.push(out);
    } finally {
      m.dispose();
    }
  }
  return built;
}

function buildMotoko(): string[] {
  const dir = join(fixtures, "motoko");
  const built: string[] = [];
  const self = fileURLToPath(import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".mo")).sort()) {
    for (const mode of ["classic", "eop"] as const) {
      const out = join(dir, `${basename(file, ".mo")}.${mode}.wasm`);
      execFileSync(process.execPath, ["--import", "tsx", self, "--motoko-one", join(dir, file), mode, out], {
        stdio: "inherit",
        cwd: root,
      });
      built.push(out);
    }
  }
  return built;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--motoko-one") {
    const [, source, mode, out] = args;
    if (source === undefined || (mode !== "classic" && mode !== "eop") || out === undefined) {
      throw new Error("usage: --motoko-one <source.mo> classic|eop <out.wasm>");
    }
    compileMotokoOne(source, mode, out);
    return;
  }
  const which = args[0] ?? "all";
  const built: string[] = [];
  if (which === "all" || which === "c") built.push(...buildC());
  if (which === "all" || which === "wat") built.push(...(await buildWat()));
  if (which === "all" || which === "motoko") built.push(...buildMotoko());
  // Manifest of what the tests load: path → size and SHA-256.
  const manifestPath = join(fixtures, "manifest.json");
  const manifest: Record<string, { bytes: number; sha256: string }> = existsSync(manifestPath)
    ? (JSON.parse(readFileSync(manifestPath, "utf8")) as Record<string, { bytes: number; sha256: string }>)
    : {};
  for (const path of built) {
    const rel = path.slice(fixtures.length + 1);
    manifest[rel] = { bytes: readFileSync(path).length, sha256: sha256(path) };
    console.log(`built ${rel} (${manifest[rel]?.bytes} bytes)`);
  }
  const sorted = Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  mkdirSync(fixtures, { recursive: true });
  writeFileSync(manifestPath, JSON.stringify(sorted, null, 2) + "\n");
}

await main();
