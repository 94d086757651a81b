// Issue 13 item 4: binaryen is loaded only when a run has canisters. Importing the harness must not
// load it (it costs every process ~0.65 s of CPU); whoever runs canisters awaits
// ensureInstrumenter() / prepareScenario() first, and a synchronous caller that did not gets an
// assertion saying so. The test process itself has the instrumenter loaded (test/setup-
// instrumenter.ts), so each case runs in a child process. The fuzz worker's path is covered by
// the `fuzz --ic` campaign of test/lab/fuzz.test.ts (its workers are such child processes).
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const RECORDER = fileURLToPath(new URL("./load-recorder/register.mjs", import.meta.url));
const tmp = (): string => mkdtempSync(join(tmpdir(), "subnetlab-lazy-"));

/** Runs ES module code in a fresh Node process with tsx, in the project; an empty module cache unless given. */
function child(code: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, SUBNETLAB_MODULE_CACHE_DIR: tmp(), ...env },
  });
}

const TINY_CANISTER_SCENARIO = `{ name: "tiny-canister", n: 4, durationS: 3, canisters: [{ name: "c", wasm: "fixtures/canisters/c/counter.wasm" }], workload: { ratePerSec: 5, call: { canister: "c", method: "inc" } } }`;

test("issue 13 item 4: importing the harness does not load binaryen; ensureInstrumenter() does", (t) => {
  const log = join(tmp(), "loads.txt");
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", "--import", RECORDER, "--input-type=module", "-e", `
      const harness = await import("./harness/index.ts");
      await import("./harness/replay/fuzz-worker.ts").catch(() => undefined);
      const { appendFileSync } = await import("node:fs");
      appendFileSync(process.env.SUBNETLAB_TEST_LOAD_LOG, "--- imported\\n");
      await harness.ensureInstrumenter();
    `],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, SUBNETLAB_TEST_LOAD_LOG: log } },
  );
  t.is(result.status, 0, result.stderr);
  const [imported, afterEnsure] = readFileSync(log, "utf8").split("--- imported\n") as [string, string];
  t.true(imported.includes("/harness/index.ts") && imported.includes("/harness/replay/fuzz-worker.ts"), "the recorder sees the imports");
  t.false(/\/node_modules\/binaryen\/|\/harness\/execution\/(binaryen|instrument)\.ts/.test(imported), imported.split("\n").filter((l) => /binaryen|instrument/.test(l)).join("\n"));
  t.regex(afterEnsure, /\/node_modules\/binaryen\/index\.js/);
});

test("issue 13 item 4: runScenario with canisters needs prepareScenario() first, and says so", (t) => {
  const result = child(`
    const { runScenario, prepareScenario, defineScenario } = await import("./harness/index.ts");
    const scenario = defineScenario(${TINY_CANISTER_SCENARIO});
    try { runScenario(scenario, { seed: 1 }); console.log("ran without the instrumenter"); } catch (e) { console.log("refused: " + e.message); }
    await prepareScenario(scenario);
    console.log("verdict after prepareScenario: " + runScenario(scenario, { seed: 1 }).verdict);
  `);
  t.is(result.status, 0, result.stderr);
  t.regex(result.stdout, /refused: the Wasm instrumenter \(binaryen\) is not loaded: `await ensureInstrumenter\(\)`/);
  t.regex(result.stdout, /verdict after prepareScenario: pass/);
});

test("issue 13 item 4: the CLI runs a scenario file with canisters (the loader prepares it)", (t) => {
  const dir = tmp();
  const file = join(dir, "tiny-canister.ts");
  writeFileSync(file, `import { defineScenario } from ${JSON.stringify(join(ROOT, "harness/scenario/scenario.ts"))};\nexport default defineScenario(${TINY_CANISTER_SCENARIO});\n`);
  const result = spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), "run", file, "--seed", "1", "--out", join(dir, "out"), "--quiet"], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, SUBNETLAB_MODULE_CACHE_DIR: join(dir, "module-cache") },
  });
  t.is(result.status, 0, result.stdout + result.stderr);
});
