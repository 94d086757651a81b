// Runs a scenario and writes its run directory: report.json, report.html, repro.json and (unless
// asked not to) trace.log.gz. The CLI's run/suite and the fuzzer go through here, so every run
// can be replayed the same way.
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { candidNamesOfScenario } from "../report/candid-view.ts";
import { writeHtmlReport } from "../report/html.ts";
import { DEFAULT_CHECKPOINT_EVERY, runScenario, type RunOptions, type RunReport } from "../scenario/runner.ts";
import { scenarioNotes, type Scenario } from "../scenario/scenario.ts";
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
  /** Long canister executions (RunOptions.onExecutionProgress). */
  readonly onExecutionProgress?: RunOptions["onExecutionProgress"];
}

export interface RecordedRun {
  readonly report: RunReport;
  readonly reproPath: string;
  readonly replayCommand: string;
}

/** An output directory that cannot be used (a user mistake: exit 2, not a harness error). */
export class OutputError extends Error {
  override readonly name = "OutputError";
}

/**
 * Creates `dir` (and its parents) for a run's output, or says in one line why it cannot: an
 * existing file in the way, a parent that is a file, no permission. Called before anything runs.
 */
export function ensureOutDir(dir: string, option = "--out"): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new OutputError(`${option} ${dir}: is an existing file, not a directory`);
  try {
    mkdirSync(dir, { recursive: true });
    // Root may write anywhere, so permission bits prove nothing: probe with a real write.
    const probe = join(dir, ".subnetlab-write-probe");
    writeFileSync(probe, "");
    rmSync(probe);
  } catch (error) {
    throw new OutputError(`${option} ${dir}: cannot write there (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

export function recordRun(options: RecordOptions): RecordedRun {
  const { outDir, seed, scenario } = options;
  ensureOutDir(outDir);
  const traceChunks: string[] = [];
  const checkpoints: string[] = [];
  const ran = runScenario(scenario, {
    seed,
    checkpointEvery: DEFAULT_CHECKPOINT_EVERY,
    onCheckpoint: (_events, digest) => {
      checkpoints.push(digest);
      return true;
    },
    ...(options.keepTrace ? { traceSink: (_record, line) => traceChunks.push(line) } : {}),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    ...(options.onExecutionProgress === undefined ? {} : { onExecutionProgress: options.onExecutionProgress }),
  });
  // Legal but suspicious choices (n not 3f+1, more than f Byzantine replicas expected to pass).
  const report: RunReport = { ...ran, notes: [...scenarioNotes(scenario), ...ran.notes] };
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
