// subnetlab command line. The CLI is the one place (with harness/real and harness/report) that may
// touch the wall clock and the file system; everything it runs underneath is deterministic.
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { writeIndexHtml } from "./report/index-page.ts";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { assert, AssertionError } from "./assert.ts";
import { FaultSpecError } from "./faults/spec.ts";
import { EXIT, EXIT_CODE_HELP, exitCodeOf } from "./report/exit-codes.ts";
import { loadScenario, scenarioFiles, type LoadedScenario } from "./scenario/load.ts";
import { prepareScenario } from "./scenario/prepare.ts";
import type { RunReport } from "./scenario/runner.ts";
import { writeJUnit, type JUnitCase } from "./report/junit.ts";
import { codeVersion, readRepro, ReproError, scenarioOf } from "./replay/repro.ts";
import { runScenario } from "./scenario/runner.ts";
import { ensureOutDir, OutputError, recordRun, type RecordOptions } from "./replay/record.ts";
import { inFreshProcess, WorkerFailure } from "./replay/worker-client.ts";
import { describeDifference, replay } from "./replay/replay.ts";
import { dumpReplica } from "./replay/dump.ts";
import type { StopPoint } from "./scenario/runner.ts";
import { parseReplicaName, type ReplicaId } from "./types.ts";
import type { VerdictText } from "./checks/checks.ts";
import type { FaultSpec } from "./faults/spec.ts";
import type { ReproBundle } from "./replay/repro.ts";
import { analyzeRun, describeStateDiff, diffReplicaStates, firstDisagreement } from "./replay/inspect.ts";
import { anchorFault, branchAt } from "./replay/branch.ts";
import { availableParallelism } from "node:os";
import { CANARIES, type Canary } from "./consensus/config.ts";
import type { FaultKind } from "./faults/spec.ts";
import { FUZZ_KINDS } from "./scenario/generate.ts";
import { fuzz, worstClass, type FuzzShard, type FuzzSummary, type Nondeterminism } from "./replay/fuzz.ts";
import { findShards, mergeShards, shardLabel } from "./replay/shards.ts";
import { fuzzJUnitCases } from "./replay/fuzz-junit.ts";
import { checkScenario, ScenarioError } from "./scenario/scenario.ts";
import { ExecutionAborted, formatInstructions } from "./execution/progress.ts";
import { serveToxiproxy } from "./real/toxiproxy/command.ts";

const HELP = `subnetlab — a deterministic Internet Computer subnet simulator and chaos lab

Usage:
  subnetlab run <scenario.ts> [--seed N] [--out DIR] [--no-trace] [--twice] [--junit FILE] [--quiet]
                [--message-wall-budget-s S] [--no-shared-execution]
  subnetlab run <scenario.ts> --real [--out DIR] [--seed N] [--quiet]
  subnetlab suite [<scenario.ts | dir>...] [--seed N] [--out DIR] [--trace] [--twice] [--junit FILE] [--quiet]
                [--message-wall-budget-s S] [--no-shared-execution]
  subnetlab replay <repro.json | run dir> [--until POINT] [--dump rN] [--quiet]
  subnetlab replay <repro.json | run dir> --branch-at EVENT --fault JSON [--out DIR]
  subnetlab fuzz [--runs N] [--budget 10m] [--seed S] [--nodes 4,7] [--faults K,..]
                 [--jobs J] [--out DIR] [--junit FILE] [--canary BUG] [--no-shrink] [--ic]
                 [--shard K/N] [--no-shared-execution]
  subnetlab analyze <run dir>
  subnetlab report <dir> [--junit FILE]
  subnetlab diff <run dir> --replicas rA,rB [--at HEIGHT]
  subnetlab diff <run dir A> <run dir B>
  subnetlab toxiproxy [--port 8474] [--host 127.0.0.1] [--config FILE] [--seed N]
  subnetlab up [--nodes 4] [--out DIR] [--toxiproxy-port P] [--ready-timeout-s S] [--containers] [--quiet]
  subnetlab deploy <wasm> [--dir DIR | --url URL] [--arg HEX | --arg-candid TEXT] [...]
  subnetlab snapshot save <run dir> --canister NAME|ID --out FILE [--replica rN] [--at HEIGHT]
  subnetlab snapshot save <up dir> --canister ID --out FILE [--subnet NAME] [--replica rN] [--at HEIGHT]
  subnetlab snapshot show <file>
  subnetlab --help

Commands:
  run     Run one scenario with one seed; write DIR/report.json and DIR/report.html.
          Exits 0 only when every check passes (see exit codes). Notes in the summary
          and report.json point out legal but suspicious choices (n not 3f+1, more
          Byzantine replicas than f with expect: pass).
  suite   Run many scenarios (default: ./scenarios) and compare each verdict with the
          scenario's expectation (e.g. beyond-f expects a safety violation). Writes
          DIR/<scenario>/report.{json,html} and DIR/summary.json. An invalid scenario
          (or a harness error in one) is recorded in summary.json and the suite goes on.
          Exits 0 when every scenario behaved as expected; otherwise 3 if one hit a
          harness error, else 5 if one was nondeterministic (--twice), else 1 if a
          verdict was not as expected, else 2 (some scenario invalid).
  replay  Re-execute a run from its repro bundle and compare trace digests. Exits 0
          when the digest matches; otherwise names the first differing event (index,
          virtual time, replica, kind, both versions) and exits 4. With --branch-at,
          replays to that event and continues with one more fault ("what if"),
          recorded as a new run.
  fuzz    Draw random fault schedules within the fault bound (swarm testing: each run
          enables a random subset of fault kinds), run them in --jobs processes,
          re-run in another worker process every run that hit a restart or a state
          sync and a 5% sample of the others (a different digest is nondeterminism),
          shrink every violation to a minimal repro. Writes DIR/summary.json and
          DIR/failures/seed-N/{repro.json,shrunk/}. Exits 3 on a harness error (the
          campaign stops, names the seed and saves its repro), else 5 on
          nondeterminism, else the worst violation class's code; 2 if no run executed.
  report  Build DIR/index.html over every run below DIR (a suite, a fuzz campaign, a
          folder of runs): verdicts, seeds, digests, links to each report.html.
          When DIR holds the outputs of fuzz --shard K/N jobs (one folder each, at most
          three levels down), first merges them: DIR/summary.json and DIR/junit.xml
          (or --junit FILE) over every shard, failures linked where they lie; exits
          2 naming every missing or mismatched shard, else as fuzz would have.
  analyze Re-run the safety, state-agreement and liveness checkers on a stored
          trace (no re-execution).
  diff    With --replicas: replay a run and show how two replicas' states differ
          after a height (default: the first divergent height), by subtree and key.
          With two run directories: the first height where the runs disagree.
  toxiproxy  Serve a Toxiproxy-compatible fault proxy (Toxiproxy 2.12's HTTP API; drive it
          with toxiproxy-node-client or any Toxiproxy client): TCP proxies with the latency,
          bandwidth, slow_close, timeout, reset_peer, slicer and limit_data toxics on either
          direction. Prints one line with the API URL; SIGINT or SIGTERM stops it.
  up      Start a local Internet Computer as real processes: one per replica on 127.0.0.1
          (real BLS12-381 and Ed25519 keys, a disk that survives SIGKILL, TCP between
          replicas), every replica-to-replica link through its own proxy on an embedded
          Toxiproxy-compatible server (proxy <subnet>-r<a>-to-r<b>), each replica serving
          the IC HTTP interface. When every replica serves, prints one JSON line and
          writes it to DIR/cluster.json: {ready, url, rootKey (hex DER), toxiproxy (API
          URL), subnets: [{name, id, publicKey, replicas: [{name, nodeId, pid, httpUrl,
          proxies}]}]}. A replica that exits is restarted from its disk. SIGINT or
          SIGTERM stops every process; a later up with the same --out resumes the same
          cluster (keys, chain, canisters). Replica logs: DIR/nodes/<subnet>-r<i>/replica.log.
          With --nodes 4,7 the first subnet is the root (its key is rootKey) and delegates
          to the second; XNet between them runs through proxies <s>-r<a>-to-<t>-r<b>.
          With --containers: one Docker container per replica instead (see --containers).
  deploy  Install a Wasm module (gzip accepted) on a running up cluster with the official
          agent: create a canister with cycles unless --canister-id is given, install_code,
          print {canisterId, moduleHash}. See subnetlab deploy --help.
  snapshot save  Replay a simulated run and write one canister's state on one replica after
          one height (default: the first honest replica, the last height it executed) to a
          canister state file (versioned, with a content hash): module, heap, stable memory,
          globals, certified data, timer. From an up directory: the replica's newest verified
          checkpoint on its disk. A scenario canister { name, wasm, fromSnapshot: FILE }
          starts from it at genesis instead of installing wasm (a large stable memory without
          loading dummy data); the file's content hash goes into repro.json and a replay
          refuses a changed file. snapshot show FILE checks one and prints what it holds.
          Exit 2 on bad input (no such run dir, unknown canister, height not reached, replica
          out of range, unwritable --out), 4 if the replay departs from the run. See
          subnetlab snapshot --help (file format, every exit code).

Options:
  --seed N      Seed of the run (integer, default 1). The same seed gives the same
                trace digest; a different seed gives a different one. toxiproxy: seeds
                toxicity rolls, jitter and slicer cuts.
  --out DIR     Output directory (default reports/<scenario>-seed<N> for run,
                reports/suite for suite).
  --trace       suite: also write every run's trace to DIR/<scenario>/trace.log.gz.
                (run always writes trace.log.gz unless --no-trace.)
  --no-trace    run: do not write trace.log.gz (replay then cannot show the
                original version of a differing event).
  --twice       run, suite: run each scenario again in a fresh process and compare
                trace digests; a difference exits 5 (nondeterminism) and leaves
                DIR/nondeterminism.json beside the run's repro.json.
  --until POINT replay: stop at event:N (trace index), height:H (first replica to
                finalize H) or time:S (virtual seconds); the digest is then only
                checked up to there.
  --dump rN     replay: print replica N's chain, pools and state where it stopped.
  --branch-at E replay: the event index to branch at (see the first differing event
                or trace.log.gz for indices).
  --fault JSON  replay --branch-at: the extra fault, times relative to the branch
                point, e.g. '{"kind":"crash","replicas":[2],"atS":0,"restartS":5}'.
  --runs N      fuzz: number of runs (default 100; unlimited with --budget).
  --budget D    fuzz: stop drawing new runs after this long (90s, 10m, 1h; > 0).
  --nodes LIST  fuzz: subnet sizes to draw from (default 4,7).
  --faults LIST fuzz: fault kinds to draw from (default all fuzzable kinds:
                equivocate, silent, withhold, forge, crash, partition,
                partition-oneway, isolate, lag, slow, network).
  --jobs J      fuzz: worker processes (default: the number of cores).
  --junit FILE  run, suite, fuzz: also write JUnit XML, one testcase per run. It is
                written after the verdict is printed; if it cannot be written, the
                command says so in one line and exits with the verdict's code, or 2
                when the verdict passed.
  --canary BUG  fuzz: switch on a known bug in the honest code; the fuzzer must find
                it (finalizer-ignores-rule → safety, no-ingress-dedup → validity).
  --no-shrink   fuzz: do not shrink violations.
  --no-shared-execution
                run, suite, fuzz: every replica executes (canister subnets) or
                applies (key-value subnets) every batch itself. By default honest
                replicas with the same state adopt one replica's outcome of a batch,
                and one other replica per batch, drawn by the seed, computes it again
                and compares (the execution audit). The trace digest is the same
                either way; report.json's "execution" counts the batches replicas
                computed themselves, shared ones, audits and audit mismatches
                ("stateMachine" says which kind).
  --shard K/N   fuzz: run shard K of N (1 ≤ K ≤ N) of the campaign: seeds S+K-1,
                S+K-1+N, … for --seed S, so N CI jobs with the same options cover
                disjoint seeds; merge their outputs with subnetlab report.
  --ic          fuzz: One Internet Computer — two subnets (sizes from --nodes) with a token
                ledger each, transfers within and across them, faults drawn per subnet, an
                XNet partition in half the runs; ledger supply and answered calls are checked
                (violations are recorded, not shrunk).
  --replicas    diff: two replicas, e.g. r1,r3.
  --port P      toxiproxy: API port (default 8474; 0 takes a free port, printed).
  --host H      toxiproxy: API address (default 127.0.0.1).
  --config FILE toxiproxy: proxies to create at start, a JSON array as the body of
                POST /populate: [{"name", "listen", "upstream", "enabled"?}, ...].
  --at H        diff: the height to compare after.
  --nodes N     up: replicas of the subnet, 3f+1 (default 4), or one size per subnet
                (4,7); must match the directory when resuming (or be left out).
  --out DIR     up: the run directory (default reports/up).
  --toxiproxy-port P  up: port of the embedded Toxiproxy API (default: a free one).
  --ready-timeout-s S up: how long one replica may take to start (default 60).
  --containers  up: one container per replica (image built locally from this host's node,
                network <subnetlab-…>, container alias <subnet>-r<i>, HTTP on 127.0.0.1);
                no proxies: crash = docker kill, partition = docker network disconnect.
                Needs a Docker engine: DOCKER_HOST, /var/run/docker.sock, or the one
                "npx tsx scripts/docker-engine.ts" starts. One subnet only.
  --message-wall-budget-s S  run, suite: stop the run when one canister execution (a
                message, an install) has taken more than S seconds of wall time: a
                harness error (exit 3) naming the replica, canister, entry point and
                instruction count, not a canister trap (the outcome would depend on the
                host's speed). Off by default. Executions running over 2 s print their
                instruction count every 5 s unless --quiet.
  --real        run: run the scenario against real replica processes (subnetlab up's
                cluster, created fresh in --out DIR; default reports/<scenario>-real-<time>):
                partitions disable the links' proxies, lag and slow add latency toxics,
                a network clog of named replicas pauses them (SIGSTOP/SIGCONT), crash is
                SIGKILL kept down until restartS then a restart from disk, Byzantine faults
                run inside the faulty replica's process (--byzantine on its command line).
                The workload becomes signed update calls to a key-value canister deployed
                at the start, at most 4/s, spread over the replicas that are up. The
                replicas' DIR/nodes/*/events.jsonl are judged by the simulator's checkers;
                DIR/report.{json,html} have a simulated run's fields (no reproducible
                digest), DIR/ingress.jsonl and DIR/fault-timeline.json what was sent and
                applied, DIR/replay-scenario.ts the same timeline for the simulator. Loss,
                duplication, reordering, storage faults, collude, several subnets, actions
                and invariants are refused before anything starts (exit 2). Progress on
                stderr; exit codes as for a simulated run.
  --quiet       No progress output.
  -h, --help    This text.

${EXIT_CODE_HELP}
  1   (suite only) some scenario did not behave as expected
  4   (replay, snapshot save) the replayed trace digest differs from the repro's
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
  "no-shared-execution": { type: "boolean" },
  twice: { type: "boolean" },
  ic: { type: "boolean" },
  replicas: { type: "string" },
  at: { type: "string" },
  "branch-at": { type: "string" },
  fault: { type: "string" },
  "message-wall-budget-s": { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  config: { type: "string" },
  "toxiproxy-port": { type: "string" },
  "ready-timeout-s": { type: "string" },
  shard: { type: "string" },
  real: { type: "boolean" },
  containers: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const OPTIONS_OF: Record<string, readonly (keyof typeof OPTION_SPECS)[]> = {
  run: ["seed", "out", "no-trace", "junit", "twice", "quiet", "message-wall-budget-s", "real", "no-shared-execution"],
  suite: ["seed", "out", "trace", "junit", "twice", "quiet", "message-wall-budget-s", "no-shared-execution"],
  replay: ["until", "dump", "branch-at", "fault", "out", "quiet"],
  analyze: [],
  report: ["junit"],
  diff: ["replicas", "at"],
  fuzz: ["seed", "out", "runs", "budget", "nodes", "faults", "jobs", "junit", "canary", "no-shrink", "ic", "shard", "quiet", "no-shared-execution"],
  toxiproxy: ["port", "host", "config", "seed"],
  up: ["nodes", "out", "toxiproxy-port", "ready-timeout-s", "containers", "quiet"],
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

/** --message-wall-budget-s: seconds (> 0), or undefined when not given. */
function messageWallBudgetS(options: Common): number | undefined {
  const text = options.raw["message-wall-budget-s"];
  if (typeof text !== "string") return undefined;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(seconds > 0)) throw new UsageError(`--message-wall-budget-s must be a positive number of seconds, got ${JSON.stringify(text)}`);
  return seconds;
}

/**
 * Long canister executions (issue #11 item 6), seen through the executor's progress marks: a
 * line once one has run 2 s of wall time and then every 5 s; past the budget, "abort" (the run
 * ends with ExecutionAborted). Here, in the CLI, because it reads the clock.
 */
function executionWatcher(quiet: boolean, budgetS: number | undefined): NonNullable<RecordOptions["onExecutionProgress"]> | undefined {
  if (quiet && budgetS === undefined) return undefined;
  let startedMs = 0;
  let nextLineMs = 0;
  return (replica, p) => {
    const nowMs = performance.now();
    if (p.starting) {
      startedMs = nowMs;
      nextLineMs = nowMs + 2_000;
      return "continue";
    }
    const elapsedS = (nowMs - startedMs) / 1000;
    if (!quiet && nowMs >= nextLineMs) {
      process.stderr.write(`[${replica}] canister ${p.canisterId}: ${p.entryPoint}: ${formatInstructions(p.instructionsSoFar)} instructions so far (${elapsedS.toFixed(0)} s)\n`);
      nextLineMs = nowMs + 5_000;
    }
    if (budgetS !== undefined && elapsedS > budgetS) return { abort: `replica ${replica} ran it for more than --message-wall-budget-s ${budgetS}` };
    return "continue";
  };
}

/** --no-shared-execution: the scenario with `execution.sharing` off (so its repro keeps it too). */
function withSharingOption(loaded: LoadedScenario, options: Common): LoadedScenario {
  if (options.raw["no-shared-execution"] !== true) return loaded;
  return { ...loaded, scenario: { ...loaded.scenario, execution: { ...loaded.scenario.execution, sharing: false } } };
}

function executeRun(loaded: LoadedScenario, seed: number, outDir: string, keepTrace: boolean, quiet: boolean, budgetS?: number): RunReport {
  const progress = progressPrinter(`${loaded.scenario.name} seed=${seed}`, quiet);
  const watcher = executionWatcher(quiet, budgetS);
  return recordRun({
    scenario: loaded.scenario,
    scenarioFile: loaded.path,
    contentHash: loaded.contentHash,
    seed,
    outDir,
    keepTrace,
    ...(progress === undefined ? {} : { onProgress: progress }),
    ...(watcher === undefined ? {} : { onExecutionProgress: watcher }),
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

/** Is this error the user's (exit 2, one line) rather than the harness's (exit 3)? */
function isUserError(error: unknown): error is Error {
  return error instanceof UsageError || error instanceof ScenarioError || error instanceof FaultSpecError || error instanceof ReproError || error instanceof OutputError || isParseArgsError(error);
}

/** The trace digest of the same scenario file and seed, computed in a fresh process (`--twice`). */
async function digestInFreshProcess(file: string, seed: number): Promise<string> {
  try {
    const reply = await inFreshProcess({ type: "rerun-file", file, seed });
    assert(reply.type === "digest", `a fresh process answered ${reply.type} to a re-run`);
    return reply.digest;
  } catch (error) {
    if (error instanceof WorkerFailure && error.usage) throw new ScenarioError(error.message.replace(/^ScenarioError: /, ""));
    throw error;
  }
}

/**
 * Compares a run's digest with a fresh process's and, when they differ, says so and leaves
 * DIR/nondeterminism.json beside the run's repro.json (the saved repro: replaying it in yet another
 * process names the first differing event). Returns the second digest when it differs.
 */
async function checkTwice(file: string, report: RunReport, dir: string): Promise<string | undefined> {
  const second = await digestInFreshProcess(file, report.seed);
  if (second === report.traceDigest) {
    process.stdout.write(`  twice: a fresh process gave the same digest\n`);
    return undefined;
  }
  writeFileSync(join(dir, "nondeterminism.json"), `${JSON.stringify({ scenario: report.scenario, seed: report.seed, digests: [report.traceDigest, second], repro: join(dir, "repro.json") }, null, 2)}\n`);
  process.stdout.write(`  NONDETERMINISM: a fresh process gave digest ${second.slice(0, 16)}, this one ${report.traceDigest.slice(0, 16)}\n  repro: ${join(dir, "repro.json")} (replay it to see the first differing event)\n`);
  return second;
}

/**
 * Writes the JUnit file after the verdict was printed, so a bad --junit path never loses the
 * verdict: the failure is one line, and `exitCode` becomes 2 if it was a pass (CI must not read
 * success without its report) and stays the verdict's code otherwise.
 */
function writeJUnitAfterVerdict(path: string, exitCode: number, write: () => void): number {
  try {
    write();
    return exitCode;
  } catch (error) {
    process.stderr.write(`subnetlab: --junit ${path}: cannot write it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); the verdict above stands\n`);
    return exitCode === EXIT.pass ? EXIT.usage : exitCode;
  }
}

async function commandRun(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("run", args);
  if (positionals.length !== 1) throw new UsageError("run takes exactly one scenario file (see --help)");
  if (options.raw.real === true) {
    const simOnly = ["no-trace", "twice", "junit", "message-wall-budget-s", "no-shared-execution"].filter((o) => options.raw[o] !== undefined);
    if (simOnly.length > 0) throw new UsageError(`--real does not take ${simOnly.map((o) => `--${o}`).join(", ")} (a real run has no trace to replay)`);
    // Loaded on demand: simulated runs need none of real mode's modules.
    const { runRealCommand } = await import("./real/chaos/command.ts");
    return await runRealCommand({ file: positionals[0] as string, seed: options.seed, out: options.out, quiet: options.quiet });
  }
  const loaded = await loadScenario(positionals[0] as string);
  const out = options.out ?? join("reports", `${loaded.scenario.name}-seed${options.seed}`);
  ensureOutDir(out);
  const report = executeRun(withSharingOption(loaded, options), options.seed, out, !options.noTrace, options.quiet, messageWallBudgetS(options));
  annotate(report, `npx subnetlab replay ${join(out, "repro.json")}`);
  process.stdout.write(`${describe(report)}\n  report: ${join(out, "report.html")}\n  replay: npx subnetlab replay ${join(out, "repro.json")}\n`);
  let code = exitCodeOf(report.verdict);
  if (report.traceEvents === 0) {
    process.stderr.write(`subnetlab: ${positionals[0]}: the run executed nothing (no trace event); nothing was tested\n`);
    code = EXIT.usage;
  }
  const second = options.raw.twice === true ? await checkTwice(loaded.path, report, out) : undefined;
  if (second !== undefined) code = EXIT.nondeterministic;
  if (typeof options.raw.junit === "string") {
    const junit = options.raw.junit;
    const testCase = second === undefined ? scenarioCase(report, report.verdict === "pass", out) : nondeterminismCase(report, second, out);
    code = writeJUnitAfterVerdict(junit, code, () => writeJUnit(junit, "subnetlab run", [testCase]));
  }
  return code;
}

interface SuiteRow {
  readonly scenario: string;
  readonly file: string;
  /** The run's verdict, or "invalid" (the scenario could not be loaded or checked) or "harness-error". */
  readonly verdict: string;
  readonly expected: string;
  readonly asExpected: boolean;
  readonly traceDigest: string;
  readonly report: string;
  readonly error?: string;
  /** `--twice`: the fresh process's digest, when it differed. */
  readonly nondeterministic?: { readonly first: string; readonly second: string };
}

/** One scenario of a suite; a user error or a harness error becomes its row, not the suite's end. */
async function suiteRow(file: string, out: string, options: Common): Promise<{ row: SuiteRow; junit: JUnitCase }> {
  const failed = (verdict: "invalid" | "harness-error", error: Error): { row: SuiteRow; junit: JUnitCase } => {
    const message = (error.message.split("\n")[0] ?? "").replace(/^subnetlab: /, "");
    process.stdout.write(`${verdict === "invalid" ? "INVALID" : "HARNESS ERROR"} ${message.startsWith(file) ? message : `${file}: ${message}`}\n`);
    if (verdict === "harness-error") process.stderr.write(`subnetlab: harness error in ${file}: ${error.stack ?? message}\n`);
    return {
      row: { scenario: file, file, verdict, expected: "", asExpected: false, traceDigest: "", report: "", error: message },
      junit: { name: file, classname: "subnetlab.scenario", timeS: 0, outcome: verdict === "invalid" ? "failure" : "error", message: `${verdict}: ${message}`, details: message },
    };
  };
  let loaded: LoadedScenario;
  try {
    loaded = await loadScenario(file);
  } catch (error) {
    if (isUserError(error)) return failed("invalid", error);
    throw error;
  }
  const dir = join(out, loaded.scenario.name);
  let report: RunReport;
  try {
    report = executeRun(withSharingOption(loaded, options), options.seed, dir, options.trace, options.quiet, messageWallBudgetS(options));
  } catch (error) {
    if (error instanceof OutputError) throw error;
    return failed(isUserError(error) ? "invalid" : "harness-error", error as Error);
  }
  const expected = loaded.scenario.expect?.verdict ?? "pass";
  if (!report.asExpected) annotate(report, `npx subnetlab replay ${join(dir, "repro.json")}`);
  process.stdout.write(`${report.asExpected ? "ok  " : "FAIL"} ${describe(report)}\n      expected ${expected}\n`);
  const second = options.raw.twice === true ? await checkTwice(loaded.path, report, dir) : undefined;
  const row: SuiteRow = {
    scenario: report.scenario, file, verdict: report.verdict, expected, asExpected: report.asExpected && second === undefined, traceDigest: report.traceDigest, report: join(dir, "report.html"),
    ...(second === undefined ? {} : { nondeterministic: { first: report.traceDigest, second } }),
  };
  return { row, junit: second === undefined ? scenarioCase(report, report.asExpected, dir) : nondeterminismCase(report, second, dir) };
}

/** The suite's exit code: harness error, then nondeterminism, then an unexpected verdict, then an invalid scenario. */
function suiteExitCode(rows: readonly SuiteRow[]): number {
  if (rows.some((r) => r.verdict === "harness-error")) return EXIT.harnessError;
  if (rows.some((r) => r.nondeterministic !== undefined)) return EXIT.nondeterministic;
  if (rows.some((r) => !r.asExpected && r.verdict !== "invalid")) return 1;
  if (rows.some((r) => r.verdict === "invalid")) return EXIT.usage;
  return EXIT.pass;
}

async function commandSuite(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("suite", args);
  messageWallBudgetS(options); // a bad value is a usage error before any scenario runs
  const files = scenarioFiles(positionals.length === 0 ? ["scenarios"] : positionals);
  if (files.length === 0) throw new UsageError("no scenario files found");
  const out = options.out ?? join("reports", "suite");
  ensureOutDir(out);
  const rows: SuiteRow[] = [];
  const junitCases: JUnitCase[] = [];
  for (const file of files) {
    const { row, junit } = await suiteRow(file, out, options);
    rows.push(row);
    junitCases.push(junit);
  }
  const failures = rows.filter((r) => !r.asExpected).length;
  const count = (verdict: string): number => rows.filter((r) => r.verdict === verdict).length;
  const summary = { seed: options.seed, scenarios: rows, failures, invalid: count("invalid"), harnessErrors: count("harness-error"), nondeterministic: rows.filter((r) => r.nondeterministic !== undefined).length };
  writeFileSync(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  writeIndexHtml(out, "subnetlab suite");
  const problems = [summary.invalid > 0 ? `${summary.invalid} invalid` : "", summary.harnessErrors > 0 ? `${summary.harnessErrors} harness error(s)` : "", summary.nondeterministic > 0 ? `${summary.nondeterministic} nondeterministic` : ""].filter((p) => p !== "");
  process.stdout.write(`\n${rows.length - failures}/${rows.length} scenarios behaved as expected${problems.length === 0 ? "" : ` (${problems.join(", ")})`} — summary: ${join(out, "summary.json")}, index: ${join(out, "index.html")}\n`);
  const code = suiteExitCode(rows);
  const junit = options.raw.junit;
  return typeof junit === "string" ? writeJUnitAfterVerdict(junit, code, () => writeJUnit(junit, "subnetlab suite", junitCases)) : code;
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
  await prepareScenario(scenarioOf(bundle));
  if (options.raw["branch-at"] !== undefined) return commandBranch(bundle, options.raw);
  if (bundle.expected.verdict === "harness-error") return replayHarnessError(bundle, path);
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

/**
 * A fuzz seed that ended in a harness error has a repro without an expected digest: re-run the
 * seed whole; the error recurring is the reproduction (exit 3 from main), a clean run is reported.
 */
function replayHarnessError(bundle: ReproBundle, path: string): number {
  process.stderr.write(`note: ${path} records a harness error (see error.txt beside it); re-running seed ${bundle.seed}\n`);
  const report = runScenario(scenarioOf(bundle), { seed: bundle.seed });
  process.stdout.write(`replay: the harness error did not recur: ${bundle.scenario.name} seed=${bundle.seed} ran to the end (verdict ${report.verdict}, digest ${report.traceDigest.slice(0, 16)})\n`);
  return EXIT.replayMismatch;
}

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new UsageError(`--budget takes a duration like 90s, 10m or 1h, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
  const ms = Number(match[1]) * unit;
  // A zero budget runs nothing, and a campaign that runs nothing must not pass.
  if (!(ms > 0)) throw new UsageError(`--budget must be longer than 0, got ${JSON.stringify(text)} (a campaign that runs nothing tests nothing)`);
  return ms;
}

function parsePositiveInt(name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseShard(text: string): FuzzShard {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(count) || count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard must be K/N with 1 ≤ K ≤ N (e.g. 2/4), got ${JSON.stringify(text)}`);
  }
  return { index, count };
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

/** A JUnit failure for a scenario whose re-run in a fresh process gave another digest. */
function nondeterminismCase(report: RunReport, second: string, dir: string): JUnitCase {
  return {
    name: `${report.scenario} (seed ${report.seed})`,
    classname: "subnetlab.scenario",
    timeS: 0,
    outcome: "failure",
    message: `nondeterminism: digests ${report.traceDigest.slice(0, 16)} and ${second.slice(0, 16)} (fresh process)`,
    details: "the same scenario and seed gave two trace digests in two processes",
    replayCommand: `npx subnetlab replay ${join(dir, "repro.json")}`,
    reproPath: join(dir, "repro.json"),
  };
}

/** JUnit for the fuzz campaign: one testcase per run. */
function writeFuzzJUnit(path: string, summary: FuzzSummary): void {
  writeJUnit(path, "subnetlab fuzz", fuzzJUnitCases(summary));
}

function formatSeconds(s: number): string {
  return s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}

async function commandFuzz(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("fuzz", args);
  if (positionals.length > 0) throw new UsageError("fuzz takes no positional arguments (see --help)");
  // The fuzz gate runs every case with the wire round trip (p2p/wire-mode.ts), here and in its
  // workers (they inherit the environment), unless SUBNETLAB_WIRE says otherwise.
  process.env["SUBNETLAB_WIRE"] ??= "roundtrip";
  const raw = options.raw;
  const budgetMs = typeof raw.budget === "string" ? parseDuration(raw.budget) : undefined;
  const runs = typeof raw.runs === "string" ? parsePositiveInt("runs", raw.runs) : budgetMs === undefined ? 100 : Number.MAX_SAFE_INTEGER;
  const canaryText = typeof raw.canary === "string" ? raw.canary : undefined;
  if (canaryText !== undefined && !(canaryText in CANARIES)) {
    throw new UsageError(`--canary: unknown bug ${JSON.stringify(canaryText)}; choose from ${Object.keys(CANARIES).join(", ")}`);
  }
  const canary = canaryText as Canary | undefined;
  const shard = typeof raw.shard === "string" ? parseShard(raw.shard) : undefined;
  const jobs = typeof raw.jobs === "string" ? parsePositiveInt("jobs", raw.jobs) : availableParallelism();
  const out = options.out ?? join("reports", "fuzz");
  ensureOutDir(out);
  const tty = process.stderr.isTTY;
  let violations = 0;
  const reportNondeterminism = (seed: number, found: Nondeterminism): void => {
    process.stderr.write(`${tty ? "\n" : ""}NONDETERMINISM: seed ${seed} gave two digests (${found.first.slice(0, 12)} vs ${found.second.slice(0, 12)}, ${found.found === "same process" ? "in the same process" : `re-run in another process: ${found.found}`})${found.repro === undefined ? "" : `\n  repro: ${found.repro}`}\n`);
  };
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
    ...(raw["no-shared-execution"] === true ? { sharedExecution: false as const } : {}),
    ...(shard === undefined ? {} : { shard }),
    ...(canary === undefined ? {} : { canary }),
    now: () => performance.now(),
    onNondeterminism: (seed, found) => reportNondeterminism(seed, found),
    onResult: (result, done, elapsedMs) => {
      if (result.violation !== undefined) {
        violations++;
        process.stderr.write(`${tty ? "\n" : ""}violation: seed ${result.seed} (n = ${result.n}): ${result.violation.class}: ${result.violation.message}\n  reproduce with: ${result.violation.replayCommand}\n`);
        if (process.env.GITHUB_ACTIONS === "true") {
          process.stdout.write(`::error title=subnetlab fuzz ${result.violation.class} (seed ${result.seed})::${result.violation.message.replace(/\n/g, " ")} — reproduce with: ${result.violation.replayCommand}\n`);
        }
      }
      if (result.nondeterministic !== undefined) reportNondeterminism(result.seed, result.nondeterministic);
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
  const every = shard === undefined ? "" : `, shard ${shard.index}/${shard.count}: one seed in ${shard.count}`;
  process.stdout.write(`fuzz: ${summary.runs} runs (seeds ${summary.seeds.first}..${summary.seeds.last}${every}) in ${formatSeconds(summary.elapsedS)} — ${summary.runsPerSec} runs/s — ${verdicts}\n`);
  for (const v of summary.violations) {
    const sizes = v.sizes === undefined ? "" : ` (shrunk from ${v.sizes.original.faults} faults, n = ${v.sizes.original.n}, ${v.sizes.original.durationS}s to ${v.sizes.shrunk.faults} faults, n = ${v.sizes.shrunk.n}, ${v.sizes.shrunk.durationS}s in ${v.sizes.shrinkRuns} runs)`;
    process.stdout.write(`  ${v.class} at seed ${v.seed}: ${v.message}\n    repro: ${v.repro}${v.shrunkRepro === undefined ? "" : `\n    shrunk: ${v.shrunkRepro}${sizes}`}\n    reproduce with: ${v.replayCommand}\n`);
  }
  for (const d of summary.nondeterministic) {
    process.stdout.write(`  nondeterminism at seed ${d.seed}: digests ${d.first.slice(0, 16)} and ${d.second.slice(0, 16)} (${d.found})${d.repro === undefined ? "" : `\n    repro: ${d.repro}`}\n`);
  }
  const e = summary.harnessError;
  if (e !== undefined) {
    process.stderr.write(`subnetlab: harness error at seed ${e.seed} (during its ${e.during}): ${e.message}\n${e.detail}\n`);
    process.stdout.write(`  HARNESS ERROR at seed ${e.seed}: ${e.message}\n    the campaign stopped and its workers were killed\n    repro: ${e.repro}\n    reproduce with: ${e.replayCommand}\n`);
  }
  writeIndexHtml(out, "subnetlab fuzz");
  process.stdout.write(`summary: ${join(out, "summary.json")}  index: ${join(out, "index.html")}\n`);
  let code = worst === "harness-error" ? EXIT.harnessError : worst === "nondeterminism" ? EXIT.nondeterministic : exitCodeOf(worst);
  if (summary.runs === 0 && code === EXIT.pass) {
    process.stderr.write(`subnetlab: fuzz executed no run (the budget ran out before the first); nothing was tested\n`);
    code = EXIT.usage;
  }
  const junit = raw.junit;
  return typeof junit === "string" ? writeJUnitAfterVerdict(junit, code, () => writeFuzzJUnit(junit, summary)) : code;
}

async function commandReport(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("report", args);
  if (positionals.length !== 1) throw new UsageError("report takes one directory");
  const dir = positionals[0] as string;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`not a directory: ${dir}`);
  const shards = findShards(dir);
  const merged = shards.length === 0 ? undefined : mergeShardOutputs(dir, shards, options.raw.junit);
  if (merged === "refused") return EXIT.usage;
  const { path, runs } = writeIndexHtml(dir, merged === undefined ? undefined : "subnetlab fuzz (merged shards)");
  process.stdout.write(`index of ${runs.length} run(s): ${path}\n`);
  // The index lists an unreadable report.json as such; the command still says so and fails.
  const unreadable = runs.filter((r) => r.kind === "unreadable");
  for (const r of unreadable) process.stderr.write(`subnetlab: ${join(dir, r.dir, "report.json")}: ${r.firstViolation.replace(/^report\.json: /, "")}\n`);
  if (unreadable.length > 0) return EXIT.usage;
  return merged === undefined ? EXIT.pass : merged;
}

/** `report` over fuzz shards: the merged summary.json and JUnit, and the campaign's exit code. */
function mergeShardOutputs(dir: string, shards: ReturnType<typeof findShards>, junitOption: unknown): number | "refused" {
  const result = mergeShards(shards);
  if (!result.ok) {
    process.stderr.write(`subnetlab: cannot merge the fuzz shards below ${dir}:\n${result.problems.map((p) => `  ${p}`).join("\n")}\n`);
    return "refused";
  }
  const summary = result.summary;
  writeFileSync(join(dir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  const junit = typeof junitOption === "string" ? junitOption : join(dir, "junit.xml");
  writeFuzzJUnit(junit, summary);
  const verdicts = Object.entries(summary.verdicts).map(([v, c]) => `${v} ${c}`).join(", ");
  process.stdout.write(`fuzz (${shards.length} shards: ${shards.map((s) => shardLabel(dir, s.dir)).join(", ")}): ${summary.runs} runs (seeds ${summary.seeds.first}..${summary.seeds.last}) — ${summary.runsPerSec} runs/s together — ${verdicts}\n`);
  for (const v of summary.violations) process.stdout.write(`  ${v.class} at seed ${v.seed}: ${v.message}\n    reproduce with: ${v.replayCommand}\n`);
  for (const d of summary.nondeterministic) process.stdout.write(`  nondeterminism at seed ${d.seed}: digests ${d.first.slice(0, 16)} and ${d.second.slice(0, 16)} (${d.found})\n`);
  for (const e of summary.harnessErrors ?? []) process.stdout.write(`  HARNESS ERROR at seed ${e.seed}: ${e.message}\n    reproduce with: ${e.replayCommand}\n`);
  process.stdout.write(`summary: ${join(dir, "summary.json")}  junit: ${junit}\n`);
  const worst = worstClass(summary);
  return worst === "harness-error" ? EXIT.harnessError : worst === "nondeterminism" ? EXIT.nondeterministic : exitCodeOf(worst);
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
  await prepareScenario(scenarioOf(bundle));
  const n = bundle.scenario.inline.n;
  const ids = raw.replicas.split(",").map((t) => parseReplicaName(t));
  if (ids.length !== 2 || ids.some((id) => id === undefined || id >= n)) throw new UsageError(`--replicas takes two replicas of r0..r${n - 1}, e.g. r1,r3`);
  let at = typeof raw.at === "string" ? parsePositiveInt("at", raw.at) : undefined;
  if (at === undefined) {
    const report = readReportJson(dir);
    const names = ids.map((id) => `r${id}`);
    at = report.violations.find((v) => v.property === "state-divergence" && v.height !== undefined && v.replicas.some((r) => names.includes(r)))?.height
      ?? Math.min(...ids.map((id) => report.replicas[id as number]?.deliveredHeight ?? 0));
  }
  const diff = diffReplicaStates(bundle, ids[0] as ReplicaId, ids[1] as ReplicaId, at);
  process.stdout.write(`${describeStateDiff(diff)}\n`);
  return diff.subtrees.every((t) => t.differing.length === 0) ? EXIT.pass : 1;
}

/** A run directory's report.json, checked to be the object `run` writes (one-line error otherwise). */
function readReportJson(dir: string): RunReport {
  const path = join(dir, "report.json");
  if (!existsSync(path)) throw new UsageError(`${path}: no such file (was the run directory written by subnetlab run or fuzz?)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`${path}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${path}: not a JSON object (got ${parsed === null ? "null" : Array.isArray(parsed) ? "a list" : typeof parsed})`);
  }
  const report = parsed as Partial<RunReport>;
  if (!Array.isArray(report.violations) || !Array.isArray(report.replicas)) throw new UsageError(`${path}: violations and replicas must be lists`);
  return report as RunReport;
}

function commandBranch(bundle: ReproBundle, raw: Common["raw"]): number {
  if (typeof raw.fault !== "string") throw new UsageError("--branch-at needs --fault '<json fault spec>'");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.fault);
  } catch (error) {
    throw new UsageError(`--fault is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--fault must be a JSON object (one fault spec, e.g. '{"kind":"crash","replicas":[2],"atS":0,"restartS":5}'), got ${parsed === null ? "null" : Array.isArray(parsed) ? "a list" : typeof parsed}`);
  }
  const fault = parsed as FaultSpec;
  // Check the fault (fields, kind, replicas) before replaying anything; its times are relative to
  // the branch point, so check it as if the branch were at the start.
  try {
    const scenario = scenarioOf(bundle);
    checkScenario({ ...scenario, faults: [...(scenario.faults ?? []), anchorFault(fault, 0)] });
  } catch (error) {
    if (error instanceof ScenarioError) throw new UsageError(`--fault: ${error.message.replace(/^scenario "[^"]*": /, "")}`);
    throw error;
  }
  const index = parsePositiveInt("branch-at", String(raw["branch-at"]));
  const out = typeof raw.out === "string" ? raw.out : join("reports", `${bundle.scenario.name}-branch-${index}`);
  const result = branchAt(bundle, index, fault, out);
  process.stdout.write(`branched at event #${index} (${(result.branchTimeUs / 1e6).toFixed(6)} s) with ${JSON.stringify(result.fault)}\n  shares the first ${result.sharedEvents} events with the original (checked by prefix digests)\n${describe(result.recorded.report)}\n  report: ${join(out, "report.html")}\n  replay: ${result.recorded.replayCommand}\n`);
  return exitCodeOf(result.recorded.report.verdict);
}

async function commandToxiproxy(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("toxiproxy", args);
  if (positionals.length > 0) throw new UsageError("toxiproxy takes no positional arguments (see --help)");
  const raw = options.raw as Record<string, string | undefined>;
  return await serveToxiproxy({ port: raw.port, host: raw.host, config: raw.config, seed: options.seed });
}

async function commandUp(args: string[]): Promise<number> {
  const { positionals, options } = parseCommon("up", args);
  if (positionals.length > 0) throw new UsageError("up takes no positional arguments (see --help)");
  const raw = options.raw as Record<string, string | undefined>;
  const port = raw["toxiproxy-port"];
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) > 65535)) throw new UsageError(`--toxiproxy-port takes a TCP port from 0 to 65535, got ${JSON.stringify(port)}`);
  const timeout = raw["ready-timeout-s"];
  if ((options.raw as Record<string, unknown>).containers === true) {
    if (port !== undefined) throw new UsageError("--toxiproxy-port does not apply to --containers (no proxies: partitions are network disconnects)");
    const { runUpContainers } = await import("./real/containers/up-command.ts");
    return await runUpContainers({
      out: options.out ?? join("reports", "up"),
      ...(raw.nodes === undefined ? {} : { nodes: parseNodes(raw.nodes) }),
      ...(timeout === undefined ? {} : { readyTimeoutMs: parsePositiveInt("ready-timeout-s", timeout) * 1000 }),
      quiet: options.quiet,
    });
  }
  // Loaded on demand: the other commands need none of real mode's modules.
  const { runUp } = await import("./real/up-command.ts");
  return await runUp({
    out: options.out ?? join("reports", "up"),
    ...(raw.nodes === undefined ? {} : { nodes: parseNodes(raw.nodes) }),
    ...(port === undefined ? {} : { toxiproxyPort: Number(port) }),
    ...(timeout === undefined ? {} : { readyTimeoutMs: parsePositiveInt("ready-timeout-s", timeout) * 1000 }),
    quiet: options.quiet,
  });
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
      case "toxiproxy":
        return await commandToxiproxy(rest);
      case "up":
        return await commandUp(rest);
      case "deploy": {
        // Its own options and --help (harness/real/deploy-command.ts); loaded on demand.
        const { runDeploy } = await import("./real/deploy-command.ts");
        return await runDeploy(rest);
      }
      case "snapshot": {
        // Its own subcommands, options and --help (harness/replay/snapshot-command.ts).
        const { runSnapshot } = await import("./replay/snapshot-command.ts");
        return await runSnapshot(rest);
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)} (see --help)`);
    }
  } catch (error) {
    if (isUserError(error)) {
      process.stderr.write(`subnetlab: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof ExecutionAborted) {
      process.stderr.write(`subnetlab: harness error: ${error.message}\n`);
      return EXIT.harnessError;
    }
    if (error instanceof WorkerFailure) {
      process.stderr.write(`subnetlab: harness error in a fresh process: ${error.detail}\n`);
      return EXIT.harnessError;
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
