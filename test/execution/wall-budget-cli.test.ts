// Item 6 of the hardening issue (#11), end to end: `run --message-wall-budget-s S` stops a run
// whose genesis canister_init never returns, with a one-line harness error (exit 3) naming the
// replica, canister, entry point and instruction count, instead of hanging CI for minutes.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, GITHUB_ACTIONS: "" }, timeout: 300_000 });

function loopingInitScenario(): { file: string; out: string } {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-wall-budget-"));
  const file = join(dir, "looping-init.ts");
  writeFileSync(
    file,
    `import { defineScenario } from ${JSON.stringify(join(ROOT, "harness/scenario/scenario.ts"))};\n` +
      `export default defineScenario({ name: "looping-init", description: "canister_init never returns", n: 4, durationS: 5,\n` +
      `  canisters: [{ name: "hostile", wasm: "fixtures/canisters/wat/loop-init.wasm" }], expect: { verdict: "pass" } });\n`,
  );
  return { file, out: join(dir, "out") };
}

test("item 6: run --message-wall-budget-s stops a looping canister_init with one harness-error line (exit 3)", (t) => {
  const { file, out } = loopingInitScenario();
  const start = process.hrtime.bigint();
  const r = cli("run", file, "--out", out, "--quiet", "--message-wall-budget-s", "2");
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  t.is(r.status, 3, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0] ?? "", /^subnetlab: harness error: execution aborted: canister \S+-cai, canister_init, after \d\.\de\d+ instructions: replica r0 ran it for more than --message-wall-budget-s 2$/);
  t.true(seconds < 120, `${seconds.toFixed(0)} s`);
});

test("item 6: --message-wall-budget-s takes a positive number of seconds", (t) => {
  const { file, out } = loopingInitScenario();
  const r = cli("run", file, "--out", out, "--message-wall-budget-s", "soon");
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr.trim(), /^subnetlab: --message-wall-budget-s must be a positive number of seconds, got "soon"$/);
});
