// Repro bundles: everything needed to re-execute a run bit for bit and to tell where a
// re-execution departs from it — the scenario (by path and content hash, or inline when it was
// generated), seed, options, the fault schedule, the code version, and the expected trace digest
// with prefix digests every `checkpointEvery` events (replay bisects with those instead of
// holding two traces in memory).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { FaultSpec } from "../faults/spec.ts";
import { checkScenario, declaredCanisters, type Scenario } from "../scenario/scenario.ts";
import { snapshotFilePath } from "../scenario/app-world.ts";
import { canisterStateFileHash } from "../scenario/canister-state-file.ts";
import type { RunReport } from "../scenario/runner.ts";

export const REPRO_FORMAT = "subnetlab-repro/1";

export interface ReproBundle {
  readonly format: typeof REPRO_FORMAT;
  readonly scenario: {
    readonly name: string;
    /** Path relative to the bundle's directory, for scenarios loaded from a file. */
    readonly path?: string;
    readonly contentHash?: string;
    /** The scenario itself, always present, so a generated or edited scenario still replays. */
    readonly inline: Scenario;
    /**
     * The canister state files its canisters start from (`fromSnapshot`) with their content
     * hashes: a replay refuses a file that changed since the run. Absent when there are none.
     */
    readonly snapshotFiles?: readonly SnapshotFileRecord[];
  };
  readonly seed: number;
  readonly options: { readonly canary?: string; readonly checkpointEvery: number };
  readonly faults: readonly FaultSpec[];
  readonly codeVersion: { readonly package: string; readonly gitCommit?: string };
  readonly expected: {
    readonly traceDigest: string;
    readonly traceEvents: number;
    readonly verdict: string;
    readonly violationClasses: readonly string[];
    readonly checkpoints: readonly string[];
  };
}

export interface SnapshotFileRecord {
  readonly canister: string;
  /** As the scenario gives it (absolute, or relative to the repository root). */
  readonly path: string;
  readonly contentHash: string;
}

export class ReproError extends Error {
  override readonly name = "ReproError";
}

export function makeRepro(args: {
  scenario: Scenario;
  scenarioPath?: string;
  contentHash?: string;
  seed: number;
  canary?: string;
  checkpointEvery: number;
  checkpoints: readonly string[];
  /** The run's outcome; a run that never finished (harness error) gives an empty digest. */
  report: Pick<RunReport, "traceDigest" | "traceEvents" | "verdict" | "violations"> | { traceDigest: ""; traceEvents: 0; verdict: "harness-error"; violations: readonly never[] };
}): ReproBundle {
  return {
    format: REPRO_FORMAT,
    scenario: {
      name: args.scenario.name,
      ...(args.scenarioPath === undefined ? {} : { path: args.scenarioPath }),
      ...(args.contentHash === undefined ? {} : { contentHash: args.contentHash }),
      inline: args.scenario,
      ...snapshotFilesField(args.scenario),
    },
    seed: args.seed,
    options: { ...(args.canary === undefined ? {} : { canary: args.canary }), checkpointEvery: args.checkpointEvery },
    faults: args.scenario.faults ?? [],
    codeVersion: codeVersion(),
    expected: {
      traceDigest: args.report.traceDigest,
      traceEvents: args.report.traceEvents,
      verdict: args.report.verdict,
      violationClasses: [...new Set(args.report.violations.map((v) => v.property))].sort(),
      checkpoints: args.checkpoints,
    },
  };
}

/**
 * The `snapshotFiles` field for a scenario's `fromSnapshot` canisters. A file that does not verify
 * is left out: the run itself refused it (a scenario error), so there is nothing to replay.
 */
function snapshotFilesField(scenario: Scenario): { snapshotFiles?: SnapshotFileRecord[] } {
  const records: SnapshotFileRecord[] = [];
  // As declared: a fleet loading one state file is one record (its name is the fleet's).
  for (const c of declaredCanisters(scenario)) {
    if (c.fromSnapshot === undefined) continue;
    const hashed = canisterStateFileHash(snapshotFilePath(c.fromSnapshot));
    if (hashed.ok) records.push({ canister: c.name, path: c.fromSnapshot, contentHash: hashed.contentHash });
  }
  return records.length === 0 ? {} : { snapshotFiles: records };
}

/**
 * Refuses to re-execute a bundle whose canister state files changed (or vanished) since the run:
 * the replay would start from another state and differ for a reason no trace event names.
 */
export function checkSnapshotFiles(bundle: ReproBundle): void {
  for (const record of bundle.scenario.snapshotFiles ?? []) {
    const hashed = canisterStateFileHash(snapshotFilePath(record.path));
    if (!hashed.ok) throw new ReproError(`canister ${record.canister} starts from ${record.path}, which cannot be read now: ${hashed.message}`);
    if (hashed.contentHash !== record.contentHash) {
      throw new ReproError(`canister ${record.canister} starts from ${record.path}, which changed since the run: its content hash is ${hashed.contentHash.slice(0, 16)}…, the run recorded ${record.contentHash.slice(0, 16)}… (restore the file the run used, or run the scenario again)`);
    }
  }
}

export function writeRepro(path: string, bundle: ReproBundle): void {
  writeFileSync(path, `${JSON.stringify(bundle, null, 2)}\n`);
}

/** Reads `repro.json`, or `<dir>/repro.json` for a run directory; checks the shape. */
export function readRepro(pathOrDir: string): { bundle: ReproBundle; dir: string; path: string } {
  if (!existsSync(pathOrDir)) throw new ReproError(`no such file or directory: ${pathOrDir}`);
  const path = statSync(pathOrDir).isDirectory() ? join(pathOrDir, "repro.json") : pathOrDir;
  if (!existsSync(path)) throw new ReproError(`${pathOrDir} holds no repro.json (was it written by subnetlab run or fuzz?)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ReproError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const bundle = parsed as ReproBundle;
  if (bundle?.format !== REPRO_FORMAT) throw new ReproError(`${path}: format must be ${REPRO_FORMAT}`);
  if (!Number.isSafeInteger(bundle.seed)) throw new ReproError(`${path}: seed must be an integer`);
  if (typeof bundle.expected?.traceDigest !== "string" || !Array.isArray(bundle.expected.checkpoints)) {
    throw new ReproError(`${path}: expected.traceDigest and expected.checkpoints are required`);
  }
  if (!(bundle.options?.checkpointEvery > 0)) throw new ReproError(`${path}: options.checkpointEvery must be positive`);
  try {
    checkScenario(scenarioOf(bundle));
  } catch (error) {
    throw new ReproError(`${path}: ${(error as Error).message}`);
  }
  return { bundle, dir: dirname(resolve(path)), path };
}

/** The scenario to run: the inline copy, with the bundle's fault schedule (which an edit may move). */
export function scenarioOf(bundle: ReproBundle): Scenario {
  return { ...bundle.scenario.inline, faults: bundle.faults };
}

let cachedVersion: ReproBundle["codeVersion"] | undefined;

export function codeVersion(): ReproBundle["codeVersion"] {
  if (cachedVersion !== undefined) return cachedVersion;
  const root = new URL("../../", import.meta.url).pathname;
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  let gitCommit: string | undefined;
  try {
    gitCommit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    gitCommit = undefined;
  }
  cachedVersion = { package: pkg.version, ...(gitCommit === undefined ? {} : { gitCommit }) };
  return cachedVersion;
}
