// Item 2 of the hardening issue (#11): the same scenario gives the same trace digest in a fresh
// process, whatever ran before it there — executors, live instances, the module cache and the page
// store are per process, and a replica's result must not depend on them. Three execution
// scenarios run in two fresh processes in opposite orders, and in this test's own process.
import test from "ava";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { FRESH_PROCESS_SCENARIOS, shortened } from "./fresh-process-scenarios.ts";

const CHILD = fileURLToPath(new URL("./fresh-process-digests.ts", import.meta.url));
const DIR = new URL("../../scenarios/", import.meta.url).pathname;

function digestsInFreshProcess(order: readonly string[]): Record<string, string> {
  const out = execFileSync(process.execPath, ["--import", "tsx", CHILD, ...order], { encoding: "utf8", timeout: 600_000 });
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Record<string, string>;
}

test("item 2: execution scenarios give the same digests in fresh processes, in either order, and here", async (t) => {
  const forward = digestsInFreshProcess(FRESH_PROCESS_SCENARIOS);
  const backward = digestsInFreshProcess([...FRESH_PROCESS_SCENARIOS].reverse());
  for (const name of FRESH_PROCESS_SCENARIOS) {
    const { scenario } = await loadScenario(`${DIR}${name}.ts`);
    const here = runScenario(shortened(scenario), { seed: 5 }).traceDigest;
    t.regex(forward[name] ?? "", /^[0-9a-f]{64}$/, name);
    t.is(backward[name], forward[name], `${name}: order changed the digest`);
    t.is(here, forward[name] ?? "", `${name}: this process (after other tests' runs) differs from a fresh one`);
  }
});
