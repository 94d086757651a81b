// subnetlab command line. The CLI is the one place (with harness/real and harness/report) that may
// touch the wall clock and the file system; everything it runs underneath is deterministic.
import { mkdirSync, writeFileSync, createWriteStream, type WriteStream } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { AssertionError } from "./assert.ts";
import { FaultSpecError } from "./faults/spec.ts";
import { EXIT, EXIT_CODE_HELP, exitCodeOf } from "./report/exit-codes.ts";
import { loadScenario, scenarioFiles, type LoadedScenario } from "./scenario/load.ts";
import { runScenario, type RunReport } from "./scenario/runner.ts";
import { ScenarioError } from "./scenario/scenario.ts";
import { writeHtmlReport } from "./report/html.ts";

const HELP = `subnetlab — a deterministic Internet Computer subnet simulator and chaos lab

Usage:
  subnetlab run <scenario.ts> [--seed N] [--out DIR] [--trace] [--quiet]
  subnetlab suite [<scenario.ts | dir>...] [--seed N] [--out DIR] [--quiet]
  subnetlab --help

Commands:
  run     Run one scenario with one seed; write DIR/report.json and DIR/report.html.
          Exits 0 only when every check passes (see exit codes).
  suite   Run many scenarios (default: ./scenarios) and compare each verdict with the
          scenario's expectation (e.g. beyond-f expects a safety violation). Writes
          DIR/<scenario>/report.{json,html} and DIR/summary.json. Exits 0 when every
          scenario behaved as expected, 1 otherwise.

Options:
  --seed N      Seed of the run (integer, default 1). The same seed gives the same
                trace digest; a different seed gives a different one.
  --out DIR     Output directory (default reports/<scenario>-seed<N> for run,
                reports/suite for suite).
  --trace       Also write every trace event to DIR/trace.log (large).
  --quiet       No progress output.
  -h, --help    This text.

${EXIT_CODE_HELP}
  1   (suite only) some scenario did not behave as expected
`;

class UsageError extends Error {}

interface Common {
  seed: number;
  out: string | undefined;
  trace: boolean;
  quiet: boolean;
}

function parseCommon(args: string[]): { positionals: string[]; options: Common } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      out: { type: "string" },
      trace: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
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
  return { positionals, options: { seed: Number(seedText), out: values.out, trace: values.trace === true, quiet: values.quiet === true } };
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

function executeRun(loaded: LoadedScenario, seed: number, outDir: string, trace: boolean, quiet: boolean): RunReport {
  mkdirSync(outDir, { recursive: true });
  let traceFile: WriteStream | undefined;
  if (trace) traceFile = createWriteStream(join(outDir, "trace.log"));
  const progress = progressPrinter(`${loaded.scenario.name} seed=${seed}`, quiet);
  const report = runScenario(loaded.scenario, {
    seed,
    ...(traceFile === undefined ? {} : { traceSink: (_record, line) => traceFile?.write(line) }),
    ...(progress === undefined ? {} : { onProgress: progress }),
  });
  traceFile?.end();
  const scenarioPath = relative(process.cwd(), loaded.path) || loaded.path;
  const replay = `npx subnetlab run ${scenarioPath} --seed ${seed} --out ${relative(process.cwd(), outDir) || outDir}`;
  const full = { ...report, scenarioPath, scenarioContentHash: loaded.contentHash, replayCommand: replay };
  writeFileSync(join(outDir, "report.json"), `${JSON.stringify(full, null, 2)}\n`);
  writeHtmlReport(join(outDir, "report.html"), full);
  return report;
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
  const report = executeRun(loaded, options.seed, out, options.trace, options.quiet);
  process.stdout.write(`${describe(report)}\n  report: ${join(out, "report.json")}\n`);
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
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)} (see --help)`);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ScenarioError || error instanceof FaultSpecError || isParseArgsError(error)) {
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
