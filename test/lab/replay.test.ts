// Replay: every recorded run replays to its digest; a repro whose fault schedule was edited makes
// replay name the first differing event, and that event is the moved fault's first effect.
import test from "ava";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { recordRun } from "../../harness/replay/record.ts";
import { readRepro, type ReproBundle } from "../../harness/replay/repro.ts";
import { describeDifference, replay } from "../../harness/replay/replay.ts";

const SCENARIOS = new URL("../../scenarios/", import.meta.url).pathname;

async function recorded(name: string, seed: number, keepTrace = true) {
  const loaded = await loadScenario(`${SCENARIOS}${name}.ts`);
  const outDir = mkdtempSync(join(tmpdir(), `subnetlab-${name}-`));
  const run = recordRun({ scenario: loaded.scenario, scenarioFile: loaded.path, contentHash: loaded.contentHash, seed, outDir, keepTrace });
  return { outDir, run };
}

test("a recorded run replays to the same digest from its run directory", async (t) => {
  const { outDir, run } = await recorded("equivocating-leader", 3);
  const { bundle, dir } = readRepro(outDir);
  t.is(bundle.expected.traceDigest, run.report.traceDigest);
  t.regex(bundle.scenario.path ?? "", /scenarios\/equivocating-leader\.ts$/);
  t.regex(bundle.scenario.contentHash ?? "", /^[0-9a-f]{64}$/);
  const result = await replay(bundle, dir);
  t.true(result.matches);
  t.is(result.digest, run.report.traceDigest);
  t.is(result.firstDifference, undefined);
});

test("moving one fault makes replay name the first differing event: where the crash used to be", async (t) => {
  const { outDir } = await recorded("crash-restart", 4);
  const original = JSON.parse(readFileSync(join(outDir, "repro.json"), "utf8")) as ReproBundle;
  const crash = original.faults[0];
  t.is(crash?.kind, "crash");
  const moved: ReproBundle = { ...original, faults: [{ ...(crash as Extract<typeof crash, { kind: "crash" }>), atS: 11 }, ...original.faults.slice(1)] };
  writeFileSync(join(outDir, "moved.json"), JSON.stringify(moved));
  const { bundle, dir } = readRepro(join(outDir, "moved.json"));
  const result = await replay(bundle, dir);
  t.false(result.matches);
  const d = result.firstDifference;
  t.truthy(d);
  // The original crashed r0 at exactly 10 s; the edited run does something else at that event.
  t.is(d?.expected?.kind, "replica.crash");
  t.is(d?.expected?.timeUs, 10_000_000);
  t.is(d?.expected?.replica, 0);
  t.is(d?.replayed?.timeUs, 10_000_000);
  t.not(d?.replayed?.kind, "replica.crash");
  t.is(d?.index, d?.expected?.index);
  t.true((d?.index ?? 0) >= (d?.window[0] ?? 0) && (d?.index ?? 0) < (d?.window[1] ?? 0));
  t.regex(describeDifference(d!), /first differing event: #\d+ at 10\.000000 s/);
});

test("without a trace file replay still bounds the difference to one checkpoint window", async (t) => {
  const { outDir } = await recorded("baseline", 2, false);
  const bundle = JSON.parse(readFileSync(join(outDir, "repro.json"), "utf8")) as ReproBundle;
  const altered: ReproBundle = { ...bundle, seed: bundle.seed + 1 };
  const result = await replay(altered, outDir);
  t.false(result.matches);
  t.is(result.firstDifference?.expected, null);
  t.deepEqual(result.firstDifference?.window, [0, bundle.options.checkpointEvery]);
});

test("replay --until stops early and checks the digest only that far", async (t) => {
  const { outDir } = await recorded("baseline", 5, false);
  const { bundle, dir } = readRepro(outDir);
  const result = await replay(bundle, dir, { until: { kind: "event", index: 5000 } });
  t.true(result.matches);
  t.true(result.events >= 5000 && result.events < bundle.expected.traceEvents);
});

test("bad repro input gets a clear error", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-bad-"));
  t.throws(() => readRepro(dir), { message: /holds no repro\.json/ });
  writeFileSync(join(dir, "repro.json"), "{ not json");
  t.throws(() => readRepro(dir), { message: /not valid JSON/ });
  writeFileSync(join(dir, "repro.json"), JSON.stringify({ format: "other" }));
  t.throws(() => readRepro(dir), { message: /format must be subnetlab-repro\/1/ });
});
