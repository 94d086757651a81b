// The committed canister builds are the ones `npm run build:fixtures` recorded (manifest.json:
// size + SHA-256; Motoko and C builds are byte-reproducible), every source has its builds, and
// every build is accepted by the instrumentation.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { instrumentModule } from "../../harness/execution/index.ts";

const DIR = new URL("../../fixtures/canisters/", import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("manifest.json", DIR), "utf8")) as Record<string, { bytes: number; sha256: string }>;

test("committed builds match the manifest", (t) => {
  const paths = Object.keys(manifest);
  t.true(paths.length >= 15);
  for (const path of paths) {
    const bytes = readFileSync(new URL(path, DIR));
    t.is(bytes.length, manifest[path]?.bytes ?? -1, path);
    t.is(createHash("sha256").update(bytes).digest("hex"), manifest[path]?.sha256 ?? "missing", path);
  }
});

test("every source has its builds in the manifest", (t) => {
  for (const f of readdirSync(new URL("motoko/", DIR)).filter((x) => x.endsWith(".mo"))) {
    const name = f.slice(0, -3);
    t.truthy(manifest[`motoko/${name}.classic.wasm`], `${name} classic`);
    t.truthy(manifest[`motoko/${name}.eop.wasm`], `${name} eop`);
  }
  for (const f of readdirSync(new URL("c/", DIR)).filter((x) => x.endsWith(".c"))) t.truthy(manifest[`c/${f.slice(0, -2)}.wasm`], f);
  for (const f of readdirSync(new URL("wat/", DIR)).filter((x) => x.endsWith(".wat"))) t.truthy(manifest[`wat/${f.slice(0, -4)}.wasm`], f);
});

test("every committed C and WAT build passes validation and instrumentation", (t) => {
  for (const path of Object.keys(manifest).filter((p) => !p.startsWith("motoko/"))) {
    const m = instrumentModule(new Uint8Array(readFileSync(new URL(path, DIR))));
    t.true(m.exports.some((e) => e.startsWith("canister_")), path);
  }
});
