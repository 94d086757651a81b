// The README's execution example must keep working as printed.
import test from "ava";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const ROOT = new URL("../../", import.meta.url).pathname;

test("the README example restores the snapshot's value", (t) => {
  const result = spawnSync(process.execPath, ["--import", "tsx", "scripts/example-execution-lab.ts"], { cwd: ROOT, encoding: "utf8" });
  t.is(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout.trim().split("\n").pop() ?? "{}") as { value: string[] };
  t.deepEqual(out.value, ["hello"]);
  t.true(readFileSync(`${ROOT}README.md`, "utf8").includes("scripts/example-execution-lab.ts"), "README points at the example");
});
