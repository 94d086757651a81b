// Child process for fresh-process.test.ts: runs the named scenarios (shortened) in the given
// order in this fresh process and prints one JSON line {name: traceDigest}.
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { shortened } from "./fresh-process-scenarios.ts";

const DIR = new URL("../../scenarios/", import.meta.url).pathname;
const digests: Record<string, string> = {};
for (const name of process.argv.slice(2)) {
  const { scenario } = await loadScenario(`${DIR}${name}.ts`);
  digests[name] = runScenario(shortened(scenario), { seed: 5 }).traceDigest;
}
console.log(JSON.stringify(digests));
