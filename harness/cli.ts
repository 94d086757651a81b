// subnetlab command line. The CLI is the one place (with harness/real and harness/report) that may
// touch the wall clock and the file system; everything it runs underneath is deterministic.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AssertionError } from "./assert.ts";
import { FaultSpecError } from "./faults/spec.ts";
import { EXIT, EXIT_CODE_HELP, exitCodeOf } from "./report/exit-codes.ts";
import { loadScenario, scenarioFiles, type LoadedScenario } from "./scenario/load.ts";
import type { RunReport } from "./scenario/runner.ts";
import { codeVersion, readRepro, ReproError } from "./replay/repro.ts";
import { recordRun } from "./replay/record.ts";
import { describeDifference, replay } from "./replay/replay.ts";
import { dumpReplica } from "./replay/dump.ts";
import type { StopPoint } from "./scenario/runner.ts";
import { parseReplicaName } from "./types.ts";
import { ScenarioError } from "./scenario/scenario.ts";

const HELP = `subnetlab — a deterministic Internet Computer subnet simulator and chaos lab

Usage:
  subnetlab run <scenario.ts> [--seed N] [--out DIR] [--trace] [--quiet]
  subnetlab suite [<scenario.ts | dir>...] [--seed N] [--out DIR] [--quiet]
  subnetlab replay <repro.json | run dir> [--until POINT] [--dump rN] [--quiet]
  subnetlab --help

Commands:
  run     Run one scenario with one seed; write DIR/report.json and DIR/report.html.
          Exits 0 only when every check passes (see exit codes).
  suite   Run many scenarios (default: ./scenarios) and compare each verdict with the
          scenario's expectation (e.g. beyond-f expects a safety violation). Writes
          DIR/<scenario>/report.{json,html} and DIR/summary.json. Exits 0 when every
          scenario behaved as expected, 1 otherwise.
  replay  Re-execute a run from its repro bundle and compare trace digests. Exits 0
          when the digest matches; otherwise names the first differing event (index,
          virtual time, replica, kind, both versions) and exits 4.

Options:
  --seed N      Seed of the run (integer, default 1). The same seed gives the same
                trace digest; a different seed gives a different one.
  --out DIR     Output directory (default reports/<scenario>-seed<N> for run,
                reports/suite for suite).
  --trace       suite: also write every run's trace to DIR/<scenario>/trace.log.gz.
                (run always writes trace.log.gz unless --no-trace.)
  --no-trace    run: do not write trace.log.gz (replay then cannot show the
                original version of a differing event).
  --until POINT replay: stop at event:N (trace index), height:H (first replica to
                finalize H) or time:S (virtual seconds); the digest is then only
                checked up to there.
  --dump rN     replay: print replica N's chain, pools and state where it stopped.
  --quiet       No progress output.
  -h, --help    This text.

${EXIT_CODE_HELP}
  1   (suite only) some scenario did not behave as expected
  4   (replay only) the trace digest differs from the repro's
`;

class UsageError extends Error {}

interface Common {
  seed: number;
  out: string | undefined;
  trace: boolean;
  noTrace: boolean;
  quiet: boolean;
  until: string | undefined;
  dump: string | undefined;
}

function parseCommon(args: string[]): { positionals: string[]; options: Common } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      out: { type: "string" },
      trace: { type: "boolean", default: false },
      "no-trace": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      until: { type: "string" },
      dump: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    process.exit(EXIT.pass);
  }
  const seedText = values.seed ?? "1";
  if (!/^\d+$/.test(seedText) || !Number.isSafeInteger(Number(seedText))) {
    throw new UsageError(`--seed must be a non-negative integer, got ${JSON.stringify(seedText)}`);
  }
  return {
    positionals,
    options: { seed: Number(seedText), out: values.out, trace: values.trace === true, noTrace: values["no-trace"] === true, quiet: values.quiet === true, until: values.until, dump: values.dump },
  };
}

function progressPrinter(label: string, quiet: boolean): ((simS: number, totalS: number, events: number) => void) | undefined {
  if (quiet) return undefined;
  const started = performance.now();
  const tty = process.stderr.isTTY;
  return (simS, totalS, events) => {
    const wallS = (performance.now() - started) / 1000;
    const line = `[${label}] ${simS.toFixed(0)}/${totalS} s simulated · ${events} events · ${wallS.toFixed(1)} s wall · ${(simS / Math.max(wallS, 1e-3)).toFixed(1)}× real time`;
    process.stderr.write(tty ? `\r${line}${simS >= totalS ? "\n" : ""}` : `${line}\n`);
  };
}

function executeRun(loaded: LoadedScenario, seed: number, outDir: string, keepTrace: boolean, quiet: boolean): RunReport {
  const progress = progressPrinter(`${loaded.scenario.name} seed=${seed}`, quiet);
  return recordRun({
    scenario: loaded.scenario,
    scenarioFile: loaded.path,
    contentHash: loaded.contentHash,
    seed,
    outDir,
    keepTrace,
    ...(progress === undefined ? {} : { onProgress: progress }),
  }).report;
}

function describe(report: RunReport): string {
  const heights = report.replicas.map((r) => `${r.replica}:${r.deliveredHeight}${r.role === "honest" ? "" : `(${r.role})`}`).join(" ");
  const lines = [`${report.scenario} seed=${report.seed}: ${report.verdict.toUpperCase()}  digest ${report.traceDigest.slice(0, 16)}  heights ${heights}`];
  for (const v of report.violations.slice(0, 5)) lines.push(`  ${v.property}: ${v.message}`);
  if (report.violations.length > 5) lines.push(`  … ${report.violations.length - 5} more violations in report.json`);
  for (const note of report.notes) lines.push(`  note: ${note}`);
  return lines.join("\n");
}

async function commandRun(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon(args);
  if (positionals.length !== 1) throw new UsageError("run takes exactly one scenario file (see --help)");
  const loaded = await loadScenario(positionals[0] as string);
  const out = options.out ?? join("reports", `${loaded.scenario.name}-seed${options.seed}`);
  const report = executeRun(loaded, options.seed, out, !options.noTrace, options.quiet);
  process.stdout.write(`${describe(report)}\n  report: ${join(out, "report.html")}\n  replay: npx subnetlab replay ${join(out, "repro.json")}\n`);
  return exitCodeOf(report.verdict);
}

async function commandSuite(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon(args);
  const files = scenarioFiles(positionals.length === 0 ? ["scenarios"] : positionals);
  if (files.length === 0) throw new UsageError("no scenario files found");
  const out = options.out ?? join("reports", "suite");
  const rows: { scenario: string; verdict: string; expected: string; asExpected: boolean; traceDigest: string; report: string }[] = [];
  for (const file of files) {
    const loaded = await loadScenario(file);
    const dir = join(out, loaded.scenario.name);
    const report = executeRun(loaded, options.seed, dir, options.trace, options.quiet);
    const expected = loaded.scenario.expect?.verdict ?? "pass";
    rows.push({ scenario: report.scenario, verdict: report.verdict, expected, asExpected: report.asExpected, traceDigest: report.traceDigest, report: join(dir, "report.html") });
    process.stdout.write(`${report.asExpected ? "ok  " : "FAIL"} ${describe(report)}\n      expected ${expected}\n`);
  }
  const failures = rows.filter((r) => !r.asExpected).length;
  writeFileSync(join(out, "summary.json"), `${JSON.stringify({ seed: options.seed, scenarios: rows, failures }, null, 2)}\n`);
  process.stdout.write(`\n${rows.length - failures}/${rows.length} scenarios behaved as expected — summary: ${join(out, "summary.json")}\n`);
  return failures === 0 ? EXIT.pass : 1;
}

function parseStopPoint(text: string): StopPoint {
  const match = /^(event|height|time):(\d+(?:\.\d+)?)$/.exec(text);
  if (match === null) throw new UsageError(`--until takes event:N, height:H or time:S, got ${JSON.stringify(text)}`);
  const value = Number(match[2]);
  if (match[1] === "event") return { kind: "event", index: Math.floor(value) };
  if (match[1] === "height") return { kind: "height", height: Math.floor(value) };
  return { kind: "time", seconds: value };
}

async function commandReplay(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon(args);
  if (positionals.length !== 1) throw new UsageError("replay takes one repro.json or run directory (see --help)");
  const { bundle, dir, path } = readRepro(positionals[0] as string);
  const until = options.until === undefined ? undefined : parseStopPoint(options.until);
  const dumpId = options.dump === undefined ? undefined : parseReplicaName(options.dump);
  if (options.dump !== undefined && (dumpId === undefined || dumpId >= bundle.scenario.inline.n)) {
    throw new UsageError(`--dump takes a replica r0..r${bundle.scenario.inline.n - 1}, got ${JSON.stringify(options.dump)}`);
  }
  const current = codeVersion();
  if (bundle.codeVersion.gitCommit !== undefined && current.gitCommit !== undefined && bundle.codeVersion.gitCommit !== current.gitCommit) {
    process.stderr.write(`note: the repro was recorded at commit ${bundle.codeVersion.gitCommit.slice(0, 12)}, this is ${current.gitCommit.slice(0, 12)}\n`);
  }
  const progress = progressPrinter(`replay ${bundle.scenario.name} seed=${bundle.seed}`, options.quiet);
  let dump = "";
  const result = await replay(bundle, dir, {
    ...(until === undefined ? {} : { until }),
    ...(progress === undefined ? {} : { onProgress: progress }),
    ...(dumpId === undefined ? {} : { onFinish: (subnet) => { dump = dumpReplica(subnet, dumpId); } }),
  });
  if (dump !== "") process.stdout.write(dump);
  const label = `${bundle.scenario.name} seed=${bundle.seed}`;
  if (result.matches) {
    const scope = until === undefined ? `all ${result.events} events` : `the first ${result.events} events (stopped at ${options.until})`;
    process.stdout.write(`replay OK: ${label}: trace digest matches over ${scope}${until === undefined ? ` — ${result.digest.slice(0, 16)}` : ""}; verdict ${result.report.verdict}\n`);
    return EXIT.pass;
  }
  process.stdout.write(`replay MISMATCH: ${label} (${path})\n  expected digest ${result.expectedDigest.slice(0, 16)} over ${result.expectedEvents} events\n  replayed digest ${result.digest.slice(0, 16)} over ${result.events} events\n`);
  if (result.firstDifference !== undefined) process.stdout.write(`${describeDifference(result.firstDifference)}\n`);
  return EXIT.replayMismatch;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "-h":
      case "--help":
      case "help":
        process.stdout.write(HELP);
        return command === undefined ? EXIT.usage : EXIT.pass;
      case "run":
        return await commandRun(rest);
      case "suite":
        return await commandSuite(rest);
      case "replay":
        return await commandReplay(rest);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)} (see --help)`);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ScenarioError || error instanceof FaultSpecError || error instanceof ReproError || isParseArgsError(error)) {
      process.stderr.write(`subnetlab: ${(error as Error).message}\n`);
      return EXIT.usage;
    }
    const kind = error instanceof AssertionError ? "assertion failed" : "internal error";
    process.stderr.write(`subnetlab: harness error (${kind}): ${(error as Error).stack ?? String(error)}\n`);
    return EXIT.harnessError;
  }
}

function isParseArgsError(error: unknown): boolean {
  return error instanceof Error && "code" in error && String((error as { code: unknown }).code).startsWith("ERR_PARSE_ARGS");
}

process.exitCode = await main(process.argv.slice(2));
