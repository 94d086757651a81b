// Issue 11, items 8 and 9: the lab answers ordinary user mistakes with exit 2 and one line naming
// the file and the problem (never a stack trace with exit 3), notes legal but suspicious scenario
// choices, and never passes a command that executed nothing.
import test from "ava";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { checkScenario, ScenarioError, type Scenario } from "../../harness/scenario/scenario.ts";
import { editDistance, nearestName } from "../../harness/scenario/spelling.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SCENARIO_MODULE = join(ROOT, "harness/scenario/scenario.ts");
const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, GITHUB_ACTIONS: "" }, timeout: 120_000 });
const tmp = (): string => mkdtempSync(join(tmpdir(), "subnetlab-mistakes-"));

/** A scenario module in a fresh directory outside the repository (no package.json above it). */
function scenarioFile(name: string, source: string): string {
  const path = join(tmp(), `${name}.ts`);
  writeFileSync(path, source);
  return path;
}

const tinyScenario = (name: string, extra = ""): string =>
  `import { defineScenario } from ${JSON.stringify(SCENARIO_MODULE)};\nexport default defineScenario({ name: ${JSON.stringify(name)}, description: "tiny", n: 4, durationS: 3, workload: { ratePerSec: 10 }${extra} });\n`;

/** Exit 2, exactly one line on stderr, matching `pattern`, and no stack trace. */
function assertOneLineUsageError(t: import("ava").ExecutionContext, result: ReturnType<typeof cli>, pattern: RegExp): void {
  t.is(result.status, 2, `exit ${result.status}: ${result.stderr}`);
  const lines = result.stderr.trim().split("\n").filter((l) => !l.startsWith("note: "));
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0] ?? "", pattern);
  t.notRegex(result.stderr, /\n\s+at |harness error/);
}

// One small recorded run that the replay/analyze/diff/report mistakes start from.
let runDir = "";
test.before(() => {
  runDir = join(tmp(), "run");
  const result = cli("run", scenarioFile("tiny", tinyScenario("tiny")), "--out", runDir, "--quiet");
  if (result.status !== 0) throw new Error(`setup run failed: ${result.stderr}`);
});

/** A copy of the recorded run to break. */
function brokenCopy(): string {
  const dir = join(tmp(), "copy");
  cpSync(runDir, dir, { recursive: true });
  return dir;
}

test("item 8: a scenario with a syntax error exits 2 naming the file and line:column", (t) => {
  const file = scenarioFile("syntax", `import { defineScenario } from ${JSON.stringify(SCENARIO_MODULE)};\nexport default defineScenario({ name: "x", n: 4,, durationS: 5 });\n`);
  assertOneLineUsageError(t, cli("run", file, "--quiet"), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: syntax error at 2:49: Expected identifier`));
  // Inside the repository too (below its package.json, the path the shipped scenarios take).
  const inRepo = mkdtempSync(join(ROOT, "reports", "mistakes-"));
  try {
    writeFileSync(join(inRepo, "truncated.ts"), "export default {\n  name: 'x',\n  n: 4 +\n");
    assertOneLineUsageError(t, cli("run", join(inRepo, "truncated.ts"), "--quiet"), /truncated\.ts: syntax error at 4:1/);
  } finally {
    rmSync(inRepo, { recursive: true, force: true });
  }
});

test("item 8: a scenario that throws while loading exits 2 with the error and where it was thrown", (t) => {
  const file = scenarioFile("throws", `const config: Record<string, number> = {};\nif (config.n === undefined) throw new Error("no config for this scenario");\nexport default {};\n`);
  assertOneLineUsageError(t, cli("run", file, "--quiet"), /throws\.ts: threw while loading \(at 2:\d+\): Error: no config for this scenario/);
  const missingImport = scenarioFile("imports", `import { helper } from "./helper.ts";\nexport default helper;\n`);
  assertOneLineUsageError(t, cli("run", missingImport, "--quiet"), /imports\.ts: cannot load an import: .*helper\.ts/);
});

test("item 8: a scenario outside the repository loads as an ES module (with its own imports) and is validated", (t) => {
  const dir = tmp();
  writeFileSync(join(dir, "helper.ts"), "export const durationS: number = 3;\n");
  writeFileSync(join(dir, "outside.ts"), `import { durationS } from "./helper.ts";\nimport { defineScenario } from ${JSON.stringify(SCENARIO_MODULE)};\nexport default defineScenario({ name: "outside", description: "d", n: 4, durationS, workload: { ratePerSec: 10 } });\n`);
  const ok = cli("run", join(dir, "outside.ts"), "--out", join(dir, "out"), "--quiet");
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /outside seed=1: PASS/);
  // A plain object (no defineScenario) is validated by the loader itself.
  const misspelt = scenarioFile("plain", `export default { name: "plain", description: "d", n: 4, durationS: 3, fualts: [] };\n`);
  assertOneLineUsageError(t, cli("run", misspelt, "--quiet"), /plain\.ts: scenario "plain": unknown field 'fualts'; did you mean 'faults'\?/);
});

test("item 8: unknown or misspelt scenario fields are refused with the nearest valid name, at every level", (t) => {
  const base: Scenario = { name: "fields", description: "d", n: 4, durationS: 10 };
  const refused = (extra: Record<string, unknown>): string => {
    const error = t.throws(() => checkScenario({ ...base, ...extra } as Scenario), { instanceOf: ScenarioError });
    return error?.message ?? "";
  };
  t.regex(refused({ fualts: [] }), /unknown field 'fualts'; did you mean 'faults'\?/);
  t.regex(refused({ durationSec: 5 }), /unknown field 'durationSec'; did you mean 'durationS'\?/);
  t.regex(refused({ workload: { ratePerSec: 1, invalidPercnt: 2 } }), /unknown field 'invalidPercnt' in workload; did you mean 'invalidPercent'\?/);
  t.regex(refused({ faults: [{ kind: "crash", replicas: [1], atS: 1, restatS: 3 }] }), /unknown field 'restatS' in faults\[0\]; did you mean 'restartS'\?/);
  t.regex(refused({ consensus: { dkgInterval: 9 } }), /in consensus; did you mean 'dkgIntervalLength'\?/);
  t.regex(refused({ expect: { verdict: "pass", replica: ["r1"] } }), /unknown field 'replica' in expect; did you mean 'replicas'\?/);
  t.regex(refused({ zzz: 1 }), /unknown field 'zzz' \(valid fields: name, description, n, durationS/);
  t.regex(refused({ workload: null }), /workload must be an object, got null/);
  t.notThrows(() => checkScenario({ ...base, workload: { ratePerSec: 1, invalidPercent: 2 }, faults: [{ kind: "crash", replicas: [1], atS: 1, restartS: 3 }] }));
  t.is(editDistance("fualts", "faults"), 1, "a transposition costs 1");
  t.is(editDistance("", "abc"), 3);
  t.is(editDistance("kitten", "sitting"), 3);
  t.is(nearestName("Faults", ["name", "faults"]), "faults");
  t.is(nearestName("completely-else", ["name", "faults"]), undefined);
});

test("item 8: --out that is an existing file or not writable exits 2 before running", (t) => {
  const dir = tmp();
  const file = join(dir, "a-file");
  writeFileSync(file, "");
  const scenario = scenarioFile("tiny", tinyScenario("tiny"));
  assertOneLineUsageError(t, cli("run", scenario, "--out", file, "--quiet"), /--out .*a-file: is an existing file, not a directory/);
  assertOneLineUsageError(t, cli("run", scenario, "--out", join(file, "below"), "--quiet"), /--out .*a-file\/below: cannot write there \(ENOTDIR\)/);
  assertOneLineUsageError(t, cli("suite", scenario, "--out", file, "--quiet"), /is an existing file/);
  assertOneLineUsageError(t, cli("fuzz", "--runs", "1", "--out", file, "--quiet"), /is an existing file/);
});

test("item 8: an unwritable --junit does not lose the verdict: it is printed, then one line, exit 2 for a pass", (t) => {
  const dir = tmp();
  const result = cli("run", scenarioFile("tiny", tinyScenario("tiny")), "--out", join(dir, "out"), "--junit", join(dir, "missing-dir", "junit.xml"), "--quiet");
  t.regex(result.stdout, /tiny seed=1: PASS/);
  assertOneLineUsageError(t, result, /--junit .*junit\.xml: cannot write it \(ENOENT\); the verdict above stands/);
  t.true(existsSync(join(dir, "out", "report.json")), "the run's report is written");
});

test("item 8: a truncated or garbage trace.log.gz is one line, exit 2, for replay and analyze", (t) => {
  const truncated = brokenCopy();
  const gz = readFileSync(join(truncated, "trace.log.gz"));
  writeFileSync(join(truncated, "trace.log.gz"), gz.subarray(0, Math.floor(gz.length / 2)));
  assertOneLineUsageError(t, cli("analyze", truncated), /trace\.log\.gz: cannot read the trace \(unexpected end of file/);
  // replay reads the trace when the digests differ (to show the original event).
  const repro = JSON.parse(readFileSync(join(truncated, "repro.json"), "utf8"));
  repro.expected.checkpoints = repro.expected.checkpoints.map(() => "0".repeat(64));
  repro.expected.traceDigest = "0".repeat(64);
  writeFileSync(join(truncated, "repro.json"), JSON.stringify(repro));
  writeFileSync(join(truncated, "trace.log.gz"), gzipSync("0|0|0|x|y\n").subarray(0, 12));
  assertOneLineUsageError(t, cli("replay", truncated, "--quiet"), /trace\.log\.gz: cannot read the trace/);
  const garbage = brokenCopy();
  writeFileSync(join(garbage, "trace.log.gz"), "this is not gzip\n");
  assertOneLineUsageError(t, cli("analyze", garbage), /trace\.log\.gz: cannot read the trace \(incorrect header check/);
});

test("item 8: --fault null or any non-object JSON exits 2 before branching", (t) => {
  for (const fault of ["null", "[1]", "3", '"crash"']) {
    assertOneLineUsageError(t, cli("replay", runDir, "--branch-at", "5", "--fault", fault, "--out", join(tmp(), "b")), /--fault must be a JSON object/);
  }
  assertOneLineUsageError(t, cli("replay", runDir, "--branch-at", "5", "--fault", '{"replicas":[1]}', "--out", join(tmp(), "b")), /unknown fault kind/);
});

test("item 8: a report.json that is not an object exits 2 for report and diff", (t) => {
  for (const content of ["[1, 2]", "null", "42"]) {
    const dir = brokenCopy();
    writeFileSync(join(dir, "report.json"), content);
    assertOneLineUsageError(t, cli("diff", dir, "--replicas", "r0,r1"), /report\.json: not a JSON object/);
    const report = cli("report", dir);
    t.is(report.status, 2, report.stderr);
    t.regex(report.stderr, /report\.json: not a JSON object/);
    t.notRegex(report.stderr, /\n\s+at /);
  }
});

test("item 8: n not 3f+1 and more Byzantine replicas than f with expect: pass are noted, not refused", (t) => {
  const dir = tmp();
  const file = scenarioFile("odd", tinyScenario("odd", `, n: 5, faults: [{ kind: "silent", replicas: [0, 1] }], expect: { verdict: "pass" }`).replace("n: 4, ", ""));
  const result = cli("run", file, "--out", dir, "--quiet");
  t.not(result.status, 2, result.stderr);
  const notes: string[] = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")).notes;
  t.true(notes.some((n) => /n = 5 is not of the form 3f\+1: it tolerates f = 1/.test(n)), notes.join("\n"));
  t.true(notes.some((n) => /2 Byzantine replicas \(r0, r1\) exceed f = 1 for n = 5, yet the scenario expects pass/.test(n)), notes.join("\n"));
  t.regex(result.stdout, /note: n = 5 is not of the form 3f\+1/);
  t.regex(result.stdout, /note: 2 Byzantine replicas/);
});

test("item 9: fuzz --budget 0 fails instead of passing", (t) => {
  const out = tmp();
  assertOneLineUsageError(t, cli("fuzz", "--budget", "0", "--out", out, "--quiet"), /--budget must be longer than 0/);
  assertOneLineUsageError(t, cli("fuzz", "--budget", "0s", "--out", out, "--quiet"), /--budget must be longer than 0/);
});

test("item 9: suite with one invalid scenario goes on with the others and records the error in summary.json", (t) => {
  const dir = tmp();
  writeFileSync(join(dir, "a-good.ts"), tinyScenario("good"));
  writeFileSync(join(dir, "b-misspelt.ts"), tinyScenario("misspelt", ", fualts: []"));
  writeFileSync(join(dir, "c-good-too.ts"), tinyScenario("good-too"));
  const out = join(dir, "out");
  mkdirSync(out);
  const result = cli("suite", dir, "--out", out, "--quiet");
  t.is(result.status, 2, result.stdout + result.stderr);
  t.regex(result.stdout, /INVALID .*b-misspelt\.ts: scenario "misspelt": unknown field 'fualts'; did you mean 'faults'\?/);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  t.deepEqual(summary.scenarios.map((s: { verdict: string }) => s.verdict), ["pass", "invalid", "pass"]);
  t.regex(summary.scenarios[1].error, /unknown field 'fualts'/);
  t.is(summary.invalid, 1);
  t.is(summary.failures, 1);
  t.true(existsSync(join(out, "good-too", "report.json")), "the scenario after the invalid one ran");
});
