// Runs a scenario and writes its run directory: report.json, report.html, repro.json and (unless
// asked not to) trace.log.gz. The CLI's run/suite and the fuzzer go through here, so every run
// can be replayed the same way.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { candidNamesOfScenario } from "../report/candid-view.ts";
import { writeHtmlReport } from "../report/html.ts";
import { DEFAULT_CHECKPOINT_EVERY, runScenario, type RunReport } from "../scenario/runner.ts";
import type { Scenario } from "../scenario/scenario.ts";
import { makeRepro, writeRepro } from "./repro.ts";

export interface RecordOptions {
  readonly scenario: Scenario;
  /** Absolute path of the scenario module, when it came from a file. */
  readonly scenarioFile?: string;
  readonly contentHash?: string;
  readonly seed: number;
  readonly outDir: string;
  readonly keepTrace: boolean;
  readonly onProgress?: (simulatedS: number, totalS: number, events: number) => void;
}

export interface RecordedRun {
  readonly report: RunReport;
  readonly reproPath: string;
  readonly replayCommand: string;
}

export function recordRun(options: RecordOptions): RecordedRun {
  const { outDir, seed, scenario } = options;
  mkdirSync(outDir, { recursive: true });
  const traceChunks: string[] = [];
  const checkpoints: string[] = [];
  const report = runScenario(scenario, {
    seed,
    checkpointEvery: DEFAULT_CHECKPOINT_EVERY,
    onCheckpoint: (_events, digest) => {
      checkpoints.push(digest);
      return true;
    },
    ...(options.keepTrace ? { traceSink: (_record, line) => traceChunks.push(line) } : {}),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  if (options.keepTrace) writeFileSync(join(outDir, "trace.log.gz"), gzipSync(traceChunks.join("")));
  const outRel = displayPath(outDir);
  const reproPath = join(outDir, "repro.json");
  const replayCommand = `npx subnetlab replay ${join(outRel, "repro.json")}`;
  writeRepro(reproPath, makeRepro({
    scenario,
    ...(options.scenarioFile === undefined ? {} : { scenarioPath: relative(outDir, options.scenarioFile) }),
    ...(options.contentHash === undefined ? {} : { contentHash: options.contentHash }),
    seed,
    checkpointEvery: DEFAULT_CHECKPOINT_EVERY,
    checkpoints,
    report,
  }));
  const scenarioPath = options.scenarioFile === undefined ? "(generated)" : displayPath(options.scenarioFile);
  const full = { ...report, scenarioPath, scenarioContentHash: options.contentHash ?? "", replayCommand, candidNames: candidNamesOfScenario(scenario) };
  writeFileSync(join(outDir, "report.json"), `${JSON.stringify(full, null, 2)}\n`);
  writeHtmlReport(join(outDir, "report.html"), full);
  return { report, reproPath, replayCommand };
}

/** A path as a user would type it from here: relative below the working directory, else absolute. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? resolve(path) : rel;
}
