// Issue 12 item 9: `subnetlab run <scenario> --real` against `subnetlab up`'s processes. Each test
// starts a fresh 4-replica cluster (about 10 s on an idle machine) and runs a short scenario from
// test/real/scenarios/; serial, so that one cluster at a time competes for the two cores. The
// scenarios last 30 + 14 + 12 s; measured only on a loaded machine (load average 25–33 on two
// cores): 2–4 min per test, mostly cluster start and deployment. Expected verdicts come from the
// simulator: the same checkers judge the replicas' event files. The f+1 case, compared with a
// simulated run of the same scenario, is in run-real-beyond-f.test.ts (npm run test:real), to keep
// npm test's time.
import test from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { runRealScenario, REAL_FILES } from "../../harness/real/chaos/run-real.ts";
import type { AppliedStep } from "../../harness/real/chaos/fault-driver.ts";

const RUN_TIMEOUT_MS = 10 * 60_000;

async function realRun(file: string): Promise<{ dir: string; report: RunReport; json: Record<string, unknown>; replayScenario: string }> {
  const { scenario, path } = await loadScenario(file);
  const dir = mkdtempSync(join(tmpdir(), `subnetlab-${scenario.name}-`));
  const { report, replayScenario } = await runRealScenario(scenario, { out: dir, seed: 1, scenarioPath: path });
  const json = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Record<string, unknown>;
  return { dir, report, json, replayScenario };
}

const violationsOf = (report: RunReport): string => report.violations.map((v) => `${v.property}: ${v.message}`).join("\n") || "none";

test.serial("item 9: a short real run — r3 cut off through its proxies, r1 SIGKILLed and restarted from its disk — passes; its report has a simulated run's fields and its replay scenario runs in the simulator", async (t) => {
  t.timeout(RUN_TIMEOUT_MS);
  const { dir, report, json, replayScenario } = await realRun("test/real/scenarios/real-partition-crash.ts");
  t.is(report.verdict, "pass", violationsOf(report));
  t.true(report.asExpected);
  t.is(report.traceDigest, "", "a real run has no reproducible digest");
  t.regex(report.notes.join("\n"), /trace digest is not reproducible/);

  // The faults were applied: begin and heal of each, in order.
  const applied = (json.real as { appliedFaults: AppliedStep[] }).appliedFaults;
  t.deepEqual(applied.map((a) => `${a.faultKind} ${a.phase}`), ["isolate begin", "isolate heal", "crash begin", "crash heal"]);
  t.true(applied.every((a) => a.error === undefined && a.appliedS >= a.plannedS), JSON.stringify(applied));
  // Cut off from everyone, r3 finalizes nothing. (Whether the other three finalize meanwhile
  // depends on the machine's load: a loaded one notarizes several blocks a round and then waits
  // for a clean round to finalize; the liveness check after the heal is the test of the rest.)
  const [isolated, healed] = [applied[0]!.appliedS * 1000 + 1500, applied[1]!.appliedS * 1000];
  const heightAt = (r: number, ms: number): number => Math.max(0, ...report.progress[r]!.filter(([t]) => t <= ms).map(([, h]) => h));
  t.is(heightAt(3, healed), heightAt(3, isolated), "r3 made no progress while its proxies were disabled");
  // r1 was down from the kill to the restart; once it served again it was a second start on the
  // same disk (the process counts its starts there). A loaded machine may not have booted it again
  // before the end: then its crash counts as not healed and liveness is not judged.
  const [killed, released] = [applied[2]!.appliedS * 1000 + 1500, applied[3]!.appliedS * 1000];
  t.is(heightAt(1, released), heightAt(1, killed), "r1 delivered nothing while it was down");
  const restarts = (json.real as { restarts: { replica: number }[] }).restarts;
  if (restarts.some((r) => r.replica === 1)) {
    t.is(readFileSync(join(dir, "nodes", "s0-r1", "incarnations"), "utf8").length, 2);
  } else {
    t.false(report.livenessChecked);
    t.log("r1 did not serve again before the run ended (a loaded machine): liveness was not judged");
  }
  t.true(report.ingress.submitted > 0 && report.ingress.finalized > 0, JSON.stringify(report.ingress));
  t.true(existsSync(join(dir, "report.html")) && existsSync(join(dir, REAL_FILES.ingress)) && existsSync(join(dir, REAL_FILES.faults)));

  // The replay scenario: same n, the faults at their applied times; it runs in the simulator, and
  // a simulated run's report has no field the real one lacks.
  const replay = await loadScenario(replayScenario);
  t.is(replay.scenario.n, 4);
  t.like(replay.scenario.faults?.[0], { kind: "isolate", replicas: [3], fromS: applied[0]!.appliedS, toS: applied[1]!.appliedS });
  t.like(replay.scenario.faults?.[1], { kind: "crash", replicas: [1], atS: applied[2]!.appliedS });
  const simulated = runScenario(replay.scenario, { seed: 1 });
  t.true(simulated.traceEvents > 0 && simulated.ingress.submitted > 0);
  const missing = Object.keys(simulated).filter((k) => !(k in json));
  t.deepEqual(missing, [], "report.json of a real run has every field of a simulated one");
  rmSync(dir, { recursive: true, force: true });
});

test.serial("item 9: a planted bug is caught in real mode — r3's process runs the diverge injector and state agreement names r3 alone", async (t) => {
  t.timeout(RUN_TIMEOUT_MS);
  const { dir, report } = await realRun("test/real/scenarios/real-diverge.ts");
  t.is(report.verdict, "state-divergence", violationsOf(report));
  const divergent = report.violations.filter((v) => v.property === "state-divergence");
  t.deepEqual([...new Set(divergent.flatMap((v) => v.replicas))], ["r3"], violationsOf(report));
  t.true(report.asExpected);
  t.true(report.maliciousEvents > 0, "the injector's acts are in r3's event file");
  t.is(report.replicas[3]?.role, "byzantine");
  rmSync(dir, { recursive: true, force: true });
});
