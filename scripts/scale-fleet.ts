// npm run scale:fleet — runs scenarios/scale/fleet-80k.ts (80,000 canisters; issue 14 item 2) the
// way `subnetlab run` does (report, repro, replay command in reports/fleet-80k/), with progress,
// and prints what it cost this host: wall time, simulated seconds per wall second, peak resident
// memory, and how long the setup (genesis: every canister installed) took. Last line JSON.
//
//   npm run scale:fleet                                  # the 80,000-canister scenario
//   SCALE_FLEET_SCENARIO=scenarios/fleet-upgrade.ts npm run scale:fleet   # any fleet scenario
import { join } from "node:path";
import { loadScenario } from "../harness/scenario/load.ts";
import { prepareScenario } from "../harness/scenario/prepare.ts";
import { allCanisters } from "../harness/scenario/scenario.ts";
import { recordRun } from "../harness/replay/record.ts";

const REPO_ROOT = new URL("../", import.meta.url).pathname;
const file = join(REPO_ROOT, process.env["SCALE_FLEET_SCENARIO"] ?? "scenarios/scale/fleet-80k.ts");
const loaded = await loadScenario(file);
const { scenario } = loaded;
const outDir = join(REPO_ROOT, "reports", scenario.name);
await prepareScenario(scenario);

const startedMs = performance.now();
const wallS = (): number => (performance.now() - startedMs) / 1000;
const rssMiB = (): number => Math.round(process.memoryUsage().rss / 2 ** 20);
let lastPrintS = -Infinity;
let setupWallS: number | undefined;
const run = recordRun({
  scenario,
  scenarioFile: loaded.path,
  contentHash: loaded.contentHash,
  seed: 1,
  outDir,
  keepTrace: false,
  onProgress: (simulatedS: number) => {
    setupWallS ??= wallS();
    if (wallS() - lastPrintS < 10) return;
    lastPrintS = wallS();
    console.log(`[${scenario.name}] ${simulatedS.toFixed(0)}/${scenario.durationS} simulated s · ${wallS().toFixed(0)} s wall · ${rssMiB()} MiB resident`);
  },
});
const report = run.report;
const result = {
  scenario: scenario.name,
  canisters: allCanisters(scenario).length,
  replicas: scenario.n,
  simulatedS: scenario.durationS,
  wallS: Number(wallS().toFixed(1)),
  setupWallS: Number((setupWallS ?? 0).toFixed(1)),
  simSecondsPerWallSecond: Number((scenario.durationS / wallS()).toFixed(3)),
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  verdict: report.verdict,
  heights: report.replicas.map((r) => r.deliveredHeight),
  ingress: report.ingress,
  execution: report.execution,
  probes: (report.probes ?? []).map((p) => ({ label: p.label, answers: [...new Set(Object.values(p.answers))] })),
  report: join(outDir, "report.html"),
};
console.log(`${scenario.name}: ${report.verdict.toUpperCase()} · ${result.canisters.toLocaleString("en")} canisters · ${result.wallS} s wall for ${scenario.durationS} simulated s · peak ${result.peakRssMiB} MiB`);
console.log(JSON.stringify(result));
process.exitCode = report.asExpected ? 0 : 1;
