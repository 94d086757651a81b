// subnetlab command line. The CLI is the one place (with harness/real and harness/report) that may
// touch the wall clock and the file system; everything it runs underneath is deterministic.
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { writeIndexHtml } from "./report/index-page.ts";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AssertionError } from "./assert.ts";
import { FaultSpecError } from "./faults/spec.ts";
import { EXIT, EXIT_CODE_HELP, exitCodeOf } from "./report/exit-codes.ts";
import { loadScenario, scenarioFiles, type LoadedScenario } from "./scenario/load.ts";
import type { RunReport } from "./scenario/runner.ts";
import { writeJUnit, type JUnitCase } from "./report/junit.ts";
import { codeVersion, readRepro, ReproError } from "./replay/repro.ts";
import { recordRun } from "./replay/record.ts";
import { describeDifference, replay } from "./replay/replay.ts";
import { dumpReplica } from "./replay/dump.ts";
import type { StopPoint } from "./scenario/runner.ts";
import { parseReplicaName, type ReplicaId } from "./types.ts";
import type { VerdictText } from "./checks/checks.ts";
import type { FaultSpec } from "./faults/spec.ts";
import type { ReproBundle } from "./replay/repro.ts";
import { analyzeRun, describeStateDiff, diffReplicaStates, firstDisagreement } from "./replay/inspect.ts";
import { branchAt } from "./replay/branch.ts";
import { availableParallelism } from "node:os";
import { CANARIES, type Canary } from "./consensus/config.ts";
import type { FaultKind } from "./faults/spec.ts";
import { FUZZ_KINDS } from "./scenario/generate.ts";
import { fuzz, worstClass, type FuzzSummary } from "./replay/fuzz.ts";
import { ScenarioError } from "./scenario/scenario.ts";

const HELP = `subnetlab — a deterministic Internet Computer subnet simulator and chaos lab

Usage:
  subnetlab run <scenario.ts> [--seed N] [--out DIR] [--trace] [--quiet]
  subnetlab suite [<scenario.ts | dir>...] [--seed N] [--out DIR] [--quiet]
  subnetlab replay <repro.json | run dir> [--until POINT] [--dump rN] [--quiet]
  subnetlab replay <repro.json | run dir> --branch-at EVENT --fault JSON [--out DIR]
  subnetlab fuzz [--runs N] [--budget 10m] [--seed S] [--nodes 4,7] [--faults K,..]
                 [--jobs J] [--out DIR] [--junit FILE] [--canary BUG] [--no-shrink] [--ic]
  subnetlab analyze <run dir>
  subnetlab report <dir>
  subnetlab diff <run dir> --replicas rA,rB [--at HEIGHT]
  subnetlab diff <run dir A> <run dir B>
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
          virtual time, replica, kind, both versions) and exits 4. With --branch-at,
          replays to that event and continues with one more fault ("what if"),
          recorded as a new run.
  fuzz    Draw random fault schedules within the fault bound (swarm testing: each run
          enables a random subset of fault kinds), run them in --jobs processes,
          re-run 5% to catch nondeterminism, shrink every violation to a minimal
          repro. Writes DIR/summary.json and DIR/failures/seed-N/{repro.json,shrunk/}.
          Exits with the worst violation class's code (3 for nondeterminism).
  report  Build DIR/index.html over every run below DIR (a suite, a fuzz campaign, a
          folder of runs): verdicts, seeds, digests, links to each report.html.
  analyze Re-run the safety, state-agreement and liveness checkers on a stored
          trace (no re-execution).
  diff    With --replicas: replay a run and show how two replicas' states differ
          after a height (default: the first divergent height), by subtree and key.
          With two run directories: the first height where the runs disagree.

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
  --branch-at E replay: the event index to branch at (see the first differing event
                or trace.log.gz for indices).
  --fault JSON  replay --branch-at: the extra fault, times relative to the branch
                point, e.g. '{"kind":"crash","replicas":[2],"atS":0,"restartS":5}'.
  --runs N      fuzz: number of runs (default 100; unlimited with --budget).
  --budget D    fuzz: stop drawing new runs after this long (90s, 10m, 1h).
  --nodes LIST  fuzz: subnet sizes to draw from (default 4,7).
  --faults LIST fuzz: fault kinds to draw from (default all fuzzable kinds:
                equivocate, silent, withhold, forge, crash, partition,
                partition-oneway, isolate, lag, slow, network).
  --jobs J      fuzz: worker processes (default: the number of cores).
  --junit FILE  fuzz: also write JUnit XML, one testcase per run.
  --canary BUG  fuzz: switch on a known bug in the honest code; the fuzzer must find
                it (finalizer-ignores-rule → safety, no-ingress-dedup → validity).
  --no-shrink   fuzz: do not shrink violations.
  --ic          fuzz: One Internet Computer — two subnets (sizes from --nodes) with a token
                ledger each, transfers within and across them, faults drawn per subnet, an
                XNet partition in half the runs; ledger supply and answered calls are checked
                (violations are recorded, not shrunk).
  --replicas    diff: two replicas, e.g. r1,r3.
  --at H        diff: the height to compare after.
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
  raw: Record<string, string | boolean | undefined>;
}

const OPTION_SPECS = {
  seed: { type: "string" },
  out: { type: "string" },
  trace: { type: "boolean" },
  "no-trace": { type: "boolean" },
  quiet: { type: "boolean" },
  until: { type: "string" },
  dump: { type: "string" },
  runs: { type: "string" },
  budget: { type: "string" },
  nodes: { type: "string" },
  faults: { type: "string" },
  jobs: { type: "string" },
  junit: { type: "string" },
  canary: { type: "string" },
  "no-shrink": { type: "boolean" },
  ic: { type: "boolean" },
  replicas: { type: "string" },
  at: { type: "string" },
  "branch-at": { type: "string" },
  fault: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const OPTIONS_OF: Record<string, readonly (keyof typeof OPTION_SPECS)[]> = {
  run: ["seed", "out", "no-trace", "junit", "quiet"],
  suite: ["seed", "out", "trace", "junit", "quiet"],
  replay: ["until", "dump", "branch-at", "fault", "out", "quiet"],
  analyze: [],
  report: [],
  diff: ["replicas", "at"],
  fuzz: ["seed", "out", "runs", "budget", "nodes", "faults", "jobs", "junit", "canary", "no-shrink", "ic", "quiet"],
};

function parseCommon(command: string, args: string[]): { positionals: string[]; options: Common } {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTION_SPECS });
  if (values.help === true) {
    process.stdout.write(HELP);
    process.exit(EXIT.pass);
  }
  const allowed = OPTIONS_OF[command] ?? [];
  for (const name of Object.keys(values)) {
    if (name !== "help" && !allowed.includes(name as keyof typeof OPTION_SPECS)) {
      throw new UsageError(`--${name} does not apply to ${command} (it takes ${allowed.map((o) => `--${o}`).join(", ")})`);
    }
  }
  const seedText = values.seed ?? "1";
  if (!/^\d+$/.test(seedText) || !Number.isSafeInteger(Number(seedText))) {
    throw new UsageError(`--seed must be a non-negative integer, got ${JSON.stringify(seedText)}`);
  }
  return {
    positionals,
    options: {
      seed: Number(seedText), out: values.out, trace: values.trace === true, noTrace: values["no-trace"] === true, quiet: values.quiet === true,
      until: values.until, dump: values.dump, raw: values,
    },
  };
}

function progressPrinter(label: string, quiet: boolean): ((simS: number, totalS: number, events: number) => void) | undefined {
  if (quiet) return undefined;
  const started = performance.now();
  const tty = process.stderr.isTTY;
  let lastQuarter = 0;
  return (simS, totalS, events) => {
    const wallS = (performance.now() - started) / 1000;
    const line = `[${label}] ${simS.toFixed(0)}/${totalS} s simulated · ${events} events · ${wallS.toFixed(1)} s wall · ${(simS / Math.max(wallS, 1e-3)).toFixed(1)}× real time`;
    if (tty) {
      process.stderr.write(`\r${line}${simS >= totalS ? "\n" : ""}`);
      return;
    }
    // Logs (CI) get a line per quarter of the run, not one per progress tick.
    const quarter = Math.floor((4 * simS) / totalS);
    if (quarter > lastQuarter) process.stderr.write(`${line}\n`);
    lastQuarter = Math.max(lastQuarter, quarter);
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

/** GitHub Actions annotations for a run's violations (CI shows them on the job's summary). */
function annotate(report: RunReport, replayCommand: string): void {
  if (process.env.GITHUB_ACTIONS !== "true") return;
  for (const v of report.violations) {
    process.stdout.write(`::error title=subnetlab ${report.scenario} seed ${report.seed}: ${v.property}::${v.message.replace(/\n/g, " ")} — reproduce with: ${replayCommand}\n`);
  }
}

async function commandRun(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("run", args);
  if (positionals.length !== 1) throw new UsageError("run takes exactly one scenario file (see --help)");
  const loaded = await loadScenario(positionals[0] as string);
  const out = options.out ?? join("reports", `${loaded.scenario.name}-seed${options.seed}`);
  const report = executeRun(loaded, options.seed, out, !options.noTrace, options.quiet);
  if (typeof options.raw.junit === "string") {
    writeJUnit(options.raw.junit, "subnetlab run", [scenarioCase(report, report.verdict === "pass", out)]);
  }
  annotate(report, `npx subnetlab replay ${join(out, "repro.json")}`);
  process.stdout.write(`${describe(report)}\n  report: ${join(out, "report.html")}\n  replay: npx subnetlab replay ${join(out, "repro.json")}\n`);
  return exitCodeOf(report.verdict);
}

async function commandSuite(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("suite", args);
  const files = scenarioFiles(positionals.length === 0 ? ["scenarios"] : positionals);
  if (files.length === 0) throw new UsageError("no scenario files found");
  const out = options.out ?? join("reports", "suite");
  const rows: { scenario: string; verdict: string; expected: string; asExpected: boolean; traceDigest: string; report: string }[] = [];
  const junitCases: JUnitCase[] = [];
  for (const file of files) {
    const loaded = await loadScenario(file);
    const dir = join(out, loaded.scenario.name);
    const report = executeRun(loaded, options.seed, dir, options.trace, options.quiet);
    const expected = loaded.scenario.expect?.verdict ?? "pass";
    rows.push({ scenario: report.scenario, verdict: report.verdict, expected, asExpected: report.asExpected, traceDigest: report.traceDigest, report: join(dir, "report.html") });
    junitCases.push(scenarioCase(report, report.asExpected, dir));
    if (!report.asExpected) annotate(report, `npx subnetlab replay ${join(dir, "repro.json")}`);
    process.stdout.write(`${report.asExpected ? "ok  " : "FAIL"} ${describe(report)}\n      expected ${expected}\n`);
  }
  const failures = rows.filter((r) => !r.asExpected).length;
  if (typeof options.raw.junit === "string") writeJUnit(options.raw.junit, "subnetlab suite", junitCases);
  writeFileSync(join(out, "summary.json"), `${JSON.stringify({ seed: options.seed, scenarios: rows, failures }, null, 2)}\n`);
  writeIndexHtml(out, "subnetlab suite");
  process.stdout.write(`\n${rows.length - failures}/${rows.length} scenarios behaved as expected — summary: ${join(out, "summary.json")}, index: ${join(out, "index.html")}\n`);
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
  const { positionals, options } = parseCommon("replay", args);
  if (positionals.length !== 1) throw new UsageError("replay takes one repro.json or run directory (see --help)");
  const { bundle, dir, path } = readRepro(positionals[0] as string);
  if (options.raw["branch-at"] !== undefined) return commandBranch(bundle, options.raw);
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

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new UsageError(`--budget takes a duration like 90s, 10m or 1h, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Number(match[1]) * unit;
}

function parsePositiveInt(name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseNodes(text: string): number[] {
  const nodes = text.split(",").map((t) => t.trim()).filter((t) => t !== "").map((t) => parsePositiveInt("nodes", t));
  for (const n of nodes) {
    if ((n - 1) % 3 !== 0 || n > 100) throw new UsageError(`--nodes takes subnet sizes of the form 3f+1 up to 100 (4, 7, 10, 13, …), got ${n}`);
  }
  if (nodes.length === 0) throw new UsageError("--nodes needs at least one size");
  return nodes;
}

function parseKinds(text: string): FaultKind[] {
  const kinds = text.split(",").map((t) => t.trim()).filter((t) => t !== "");
  for (const k of kinds) {
    if (!FUZZ_KINDS.includes(k as FaultKind)) {
      throw new UsageError(`--faults: ${JSON.stringify(k)} is not a fuzzable fault kind; choose from ${FUZZ_KINDS.join(", ")}`);
    }
  }
  if (kinds.length === 0) throw new UsageError("--faults needs at least one kind");
  return kinds as FaultKind[];
}

/** One JUnit testcase for a scenario run; `ok` says whether CI should count it as passed. */
function scenarioCase(report: RunReport, ok: boolean, dir: string): JUnitCase {
  const name = `${report.scenario} (seed ${report.seed})`;
  if (ok) return { name, classname: "subnetlab.scenario", timeS: 0, outcome: "pass" };
  const expected = report.expected?.verdict ?? "pass";
  return {
    name,
    classname: "subnetlab.scenario",
    timeS: 0,
    outcome: "failure",
    message: `${report.verdict}: expected ${expected}`,
    details: report.violations.map((v) => `${v.property}: ${v.message}`).join("\n") || `verdict ${report.verdict}`,
    replayCommand: `npx subnetlab replay ${join(dir, "repro.json")}`,
    reproPath: join(dir, "repro.json"),
  };
}

/** JUnit for the fuzz campaign: one testcase per run. */
function writeFuzzJUnit(path: string, summary: FuzzSummary): void {
  const bySeed = new Map(summary.violations.map((v) => [v.seed, v] as const));
  const cases = summary.results.map((r) => {
    const v = bySeed.get(r.seed);
    return {
      name: `fuzz seed ${r.seed} (n = ${r.n})`,
      classname: "subnetlab.fuzz",
      timeS: r.wallMs / 1000,
      outcome: v === undefined ? ("pass" as const) : ("failure" as const),
      ...(v === undefined ? {} : { message: `${v.class}: ${v.message}`, details: v.message, replayCommand: v.replayCommand, reproPath: v.shrunkRepro ?? v.repro }),
    };
  });
  writeJUnit(path, "subnetlab fuzz", cases);
}

function formatSeconds(s: number): string {
  return s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}

async function commandFuzz(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("fuzz", args);
  if (positionals.length > 0) throw new UsageError("fuzz takes no positional arguments (see --help)");
  const raw = options.raw;
  const budgetMs = typeof raw.budget === "string" ? parseDuration(raw.budget) : undefined;
  const runs = typeof raw.runs === "string" ? parsePositiveInt("runs", raw.runs) : budgetMs === undefined ? 100 : Number.MAX_SAFE_INTEGER;
  const canaryText = typeof raw.canary === "string" ? raw.canary : undefined;
  if (canaryText !== undefined && !(canaryText in CANARIES)) {
    throw new UsageError(`--canary: unknown bug ${JSON.stringify(canaryText)}; choose from ${Object.keys(CANARIES).join(", ")}`);
  }
  const canary = canaryText as Canary | undefined;
  const jobs = typeof raw.jobs === "string" ? parsePositiveInt("jobs", raw.jobs) : availableParallelism();
  const out = options.out ?? join("reports", "fuzz");
  const tty = process.stderr.isTTY;
  let violations = 0;
  const summary = await fuzz({
    seed: options.seed,
    runs,
    budgetMs,
    jobs,
    nodes: typeof raw.nodes === "string" ? parseNodes(raw.nodes) : [4, 7],
    kinds: typeof raw.faults === "string" ? parseKinds(raw.faults) : FUZZ_KINDS,
    outDir: out,
    shrink: raw["no-shrink"] !== true,
    determinismPercent: 5,
    ...(raw.ic === true ? { ic: true } : {}),
    ...(canary === undefined ? {} : { canary }),
    now: () => performance.now(),
    onResult: (result, done, elapsedMs) => {
      if (result.violation !== undefined) {
        violations++;
        process.stderr.write(`${tty ? "\n" : ""}violation: seed ${result.seed} (n = ${result.n}): ${result.violation.class}: ${result.violation.message}\n  reproduce with: ${result.violation.replayCommand}\n`);
        if (process.env.GITHUB_ACTIONS === "true") {
          process.stdout.write(`::error title=subnetlab fuzz ${result.violation.class} (seed ${result.seed})::${result.violation.message.replace(/\n/g, " ")} — reproduce with: ${result.violation.replayCommand}\n`);
        }
      }
      if (result.nondeterministic !== undefined) process.stderr.write(`${tty ? "\n" : ""}NONDETERMINISM: seed ${result.seed} gave two digests (${result.nondeterministic.first.slice(0, 12)} vs ${result.nondeterministic.second.slice(0, 12)})\n`);
      if (options.quiet) return;
      const rate = done / Math.max(elapsedMs / 1000, 1e-3);
      const leftS = budgetMs !== undefined ? Math.max(0, (budgetMs - elapsedMs) / 1000) : (runs - done) / Math.max(rate, 1e-3);
      const line = `fuzz: ${done}${runs < Number.MAX_SAFE_INTEGER ? `/${runs}` : ""} runs · ${rate.toFixed(2)} runs/s · ${violations} violation${violations === 1 ? "" : "s"} · ~${formatSeconds(leftS)} left`;
      process.stderr.write(tty ? `\r${line}` : done % 10 === 0 || done === runs ? `${line}\n` : "");
    },
  });
  if (tty && !options.quiet) process.stderr.write("\n");
  const worst = worstClass(summary);
  const verdicts = Object.entries(summary.verdicts).map(([v, c]) => `${v} ${c}`).join(", ");
  process.stdout.write(`fuzz: ${summary.runs} runs (seeds ${summary.seeds.first}..${summary.seeds.last}) in ${formatSeconds(summary.elapsedS)} — ${summary.runsPerSec} runs/s — ${verdicts}\n`);
  for (const v of summary.violations) {
    const sizes = v.sizes === undefined ? "" : ` (shrunk from ${v.sizes.original.faults} faults, n = ${v.sizes.original.n}, ${v.sizes.original.durationS}s to ${v.sizes.shrunk.faults} faults, n = ${v.sizes.shrunk.n}, ${v.sizes.shrunk.durationS}s in ${v.sizes.shrinkRuns} runs)`;
    process.stdout.write(`  ${v.class} at seed ${v.seed}: ${v.message}\n    repro: ${v.repro}${v.shrunkRepro === undefined ? "" : `\n    shrunk: ${v.shrunkRepro}${sizes}`}\n    reproduce with: ${v.replayCommand}\n`);
  }
  writeIndexHtml(out, "subnetlab fuzz");
  process.stdout.write(`summary: ${join(out, "summary.json")}  index: ${join(out, "index.html")}\n`);
  if (typeof raw.junit === "string") writeFuzzJUnit(raw.junit, summary);
  return worst === "nondeterminism" ? EXIT.harnessError : exitCodeOf(worst);
}

async function commandReport(args: string[]): Promise<number> {
  const { positionals } = parseCommon("report", args);
  if (positionals.length !== 1) throw new UsageError("report takes one directory");
  const dir = positionals[0] as string;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`not a directory: ${dir}`);
  const { path, runs } = writeIndexHtml(dir);
  process.stdout.write(`index of ${runs.length} run(s): ${path}\n`);
  return EXIT.pass;
}

async function commandAnalyze(args: string[]): Promise<number> {
  const { positionals } = parseCommon("analyze", args);
  if (positionals.length !== 1) throw new UsageError("analyze takes one run directory");
  const { bundle, dir } = readRepro(positionals[0] as string);
  const result = await analyzeRun(bundle, dir);
  process.stdout.write(`analyze ${bundle.scenario.name} seed=${bundle.seed}: ${result.verdict.toUpperCase()} over ${result.events} stored events (recorded verdict: ${bundle.expected.verdict})\n`);
  for (const v of result.violations.slice(0, 10)) process.stdout.write(`  ${v.property}: ${v.message}\n`);
  for (const note of result.notes) process.stdout.write(`  note: ${note}\n`);
  return exitCodeOf(result.verdict as VerdictText);
}

async function commandDiff(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("diff", args);
  const raw = options.raw;
  if (positionals.length === 2) {
    if (raw.replicas !== undefined || raw.at !== undefined) throw new UsageError("diff of two runs takes no --replicas/--at");
    const a = readRepro(positionals[0] as string);
    const b = readRepro(positionals[1] as string);
    const found = await firstDisagreement(a.dir, b.dir, Math.max(a.bundle.scenario.inline.n, b.bundle.scenario.inline.n));
    if (found === undefined) {
      process.stdout.write("the two runs agree on every height both finalized\n");
      return EXIT.pass;
    }
    process.stdout.write(`first disagreement at height ${found.height}:\n  A (${positionals[0]}): ${found.a}\n  B (${positionals[1]}): ${found.b}\n`);
    return 1;
  }
  if (positionals.length !== 1) throw new UsageError("diff takes one run directory (with --replicas) or two run directories");
  if (typeof raw.replicas !== "string") throw new UsageError("diff <run dir> needs --replicas rA,rB");
  const { bundle, dir } = readRepro(positionals[0] as string);
  const n = bundle.scenario.inline.n;
  const ids = raw.replicas.split(",").map((t) => parseReplicaName(t));
  if (ids.length !== 2 || ids.some((id) => id === undefined || id >= n)) throw new UsageError(`--replicas takes two replicas of r0..r${n - 1}, e.g. r1,r3`);
  let at = typeof raw.at === "string" ? parsePositiveInt("at", raw.at) : undefined;
  if (at === undefined) {
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as RunReport;
    const names = ids.map((id) => `r${id}`);
    at = report.violations.find((v) => v.property === "state-divergence" && v.height !== undefined && v.replicas.some((r) => names.includes(r)))?.height
      ?? Math.min(...ids.map((id) => report.replicas[id as number]?.deliveredHeight ?? 0));
  }
  const diff = diffReplicaStates(bundle, ids[0] as ReplicaId, ids[1] as ReplicaId, at);
  process.stdout.write(`${describeStateDiff(diff)}\n`);
  return diff.subtrees.every((t) => t.differing.length === 0) ? EXIT.pass : 1;
}

function commandBranch(bundle: ReproBundle, raw: Common["raw"]): number {
  if (typeof raw.fault !== "string") throw new UsageError("--branch-at needs --fault '<json fault spec>'");
  let fault: FaultSpec;
  try {
    fault = JSON.parse(raw.fault) as FaultSpec;
  } catch (error) {
    throw new UsageError(`--fault is not valid JSON: ${(error as Error).message}`);
  }
  const index = parsePositiveInt("branch-at", String(raw["branch-at"]));
  const out = typeof raw.out === "string" ? raw.out : join("reports", `${bundle.scenario.name}-branch-${index}`);
  const result = branchAt(bundle, index, fault, out);
  process.stdout.write(`branched at event #${index} (${(result.branchTimeUs / 1e6).toFixed(6)} s) with ${JSON.stringify(result.fault)}\n  shares the first ${result.sharedEvents} events with the original (checked by prefix digests)\n${describe(result.recorded.report)}\n  report: ${join(out, "report.html")}\n  replay: ${result.recorded.replayCommand}\n`);
  return exitCodeOf(result.recorded.report.verdict);
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
      case "fuzz":
        return await commandFuzz(rest);
      case "analyze":
        return await commandAnalyze(rest);
      case "report":
        return await commandReport(rest);
      case "diff":
        return await commandDiff(rest);
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
