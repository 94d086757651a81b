// The command line as users and CI call it: exit codes by verdict class, the report.json
// contract, usage errors, JUnit output.
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, GITHUB_ACTIONS: "" } });
const tmp = (): string => mkdtempSync(join(tmpdir(), "subnetlab-cli-"));

test("--help documents every command and option", (t) => {
  const result = cli("--help");
  t.is(result.status, 0);
  for (const word of ["run", "suite", "replay", "fuzz", "analyze", "diff", "--seed", "--out", "--until", "--dump", "--branch-at", "--fault", "--runs", "--budget", "--nodes", "--faults", "--jobs", "--junit", "--canary", "--no-shrink", "--no-shared-execution", "--replicas", "--at", "--twice", "Exit codes"]) {
    t.true(result.stdout.includes(word), word);
  }
  t.regex(result.stdout, /\n  5 +nondeterminism/, "C6: nondeterminism has its own exit code");
});

test("usage errors exit 2 with a clear message", (t) => {
  for (const [args, pattern] of [
    [["run", "scenarios/nope.ts"], /scenario file not found/],
    [["run", "scenarios/baseline.ts", "--seed", "x"], /--seed must be a non-negative integer/],
    [["frobnicate"], /unknown command/],
    [["run", "scenarios/baseline.ts", "--runs", "3"], /--runs does not apply to run/],
    [["fuzz", "--nodes", "5"], /3f\+1/],
    [["fuzz", "--faults", "meteor"], /not a fuzzable fault kind/],
    [["fuzz", "--canary", "nope"], /unknown bug/],
    [["replay", "/nonexistent"], /no such file/],
  ] as const) {
    const result = cli(...args);
    t.is(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    t.regex(result.stderr, pattern);
  }
});

test("run writes the report.json contract and exits with the verdict's code", (t) => {
  const out = tmp();
  const result = cli("run", "scenarios/beyond-f.ts", "--seed", "1", "--out", out, "--quiet");
  t.is(result.status, 10, result.stderr);
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  t.is(report.scenario, "beyond-f");
  t.is(report.seed, 1);
  t.is(report.verdict, "safety");
  t.regex(report.traceDigest, /^[0-9a-f]{64}$/);
  t.is(report.replicas.length, 4);
  t.true(report.replicas.every((r: { finalizedHeight: number }) => Number.isInteger(r.finalizedHeight)));
  t.true(report.violations[0].replicas.includes("r2"));
  const replayed = cli("replay", out, "--quiet");
  t.is(replayed.status, 0, replayed.stdout + replayed.stderr);
  t.regex(replayed.stdout, /replay OK/);
});

test("fuzz writes summary.json and JUnit XML with one testcase per run", (t) => {
  const out = tmp();
  const junit = join(out, "junit.xml");
  const result = cli("fuzz", "--runs", "4", "--nodes", "4", "--seed", "7", "--out", out, "--junit", junit, "--jobs", "1", "--quiet");
  t.is(result.status, 0, result.stderr);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  t.is(summary.runs, 4);
  t.deepEqual(summary.violations, []);
  t.true(summary.runsPerSec > 0);
  const xml = readFileSync(junit, "utf8");
  t.regex(xml, /<testsuites[^>]* tests="4" failures="0"/);
  t.is((xml.match(/<testcase /g) ?? []).length, 4);
  t.true(existsSync(join(out, "index.html")), "fuzz writes an index page");
  const report = cli("report", out);
  t.is(report.status, 0, report.stderr);
  t.regex(report.stdout, /index of 4 run\(s\)/);
});
