// Issue 12 item 9 (npm run test:real, kept out of npm test for its time): f + 1 faults in a real run
// (`subnetlab run --real`) are judged as the simulator judges the same scenario — see
// run-real.test.ts for the shared set-up.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { runRealScenario } from "../../harness/real/chaos/run-real.ts";

const RUN_TIMEOUT_MS = 10 * 60_000;

async function realRun(file: string): Promise<{ dir: string; report: RunReport }> {
  const { scenario, path } = await loadScenario(file);
  const dir = mkdtempSync(join(tmpdir(), `subnetlab-${scenario.name}-`));
  const { report } = await runRealScenario(scenario, { out: dir, seed: 1, scenarioPath: path });
  JSON.parse(readFileSync(join(dir, "report.json"), "utf8"));
  return { dir, report };
}

const violationsOf = (report: RunReport): string => report.violations.map((v) => `${v.property}: ${v.message}`).join("\n") || "none";

test.serial("item 9: f + 1 faults (two of four replicas crashed for good) are judged in real mode as in the simulator: liveness, naming the stalled replicas", async (t) => {
  t.timeout(RUN_TIMEOUT_MS);
  const file = "test/real/scenarios/real-beyond-f.ts";
  const simulated = runScenario((await loadScenario(file)).scenario, { seed: 1 });
  const { dir, report } = await realRun(file);
  const named = (r: RunReport): string[] => [...new Set(r.violations.flatMap((v) => v.replicas))].sort();
  t.is(simulated.verdict, "liveness");
  t.is(report.verdict, simulated.verdict, violationsOf(report));
  t.deepEqual(named(report), named(simulated));
  t.deepEqual(report.replicas.map((r) => r.role), simulated.replicas.map((r) => r.role));
  rmSync(dir, { recursive: true, force: true });
});
