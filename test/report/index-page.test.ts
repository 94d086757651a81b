// The index page of a directory of runs: every report.json below it gets a row with a link,
// passing fuzz runs known only from summary.json get a row too, counts per verdict at the top,
// text escaped, no network.
import test from "ava";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collectRuns, naturalCompare, writeIndexHtml } from "../../harness/report/index-page.ts";
import { HOSTILE, syntheticReport } from "./fixture.ts";

function writeRun(root: string, dir: string, overrides: Parameters<typeof syntheticReport>[0] = {}): void {
  const full = join(root, dir);
  mkdirSync(full, { recursive: true });
  writeFileSync(join(full, "report.json"), JSON.stringify(syntheticReport(overrides)));
  writeFileSync(join(full, "report.html"), "<!doctype html><title>run</title>");
}

function campaign(): string {
  const root = mkdtempSync(join(tmpdir(), "subnetlab-index-"));
  writeRun(root, "baseline", { scenario: "baseline", seed: 1, verdict: "pass", violations: [], expected: undefined, asExpected: true, traceDigest: "1".repeat(64) });
  writeRun(root, "beyond-f", { scenario: "beyond-f", seed: 1, traceDigest: "2".repeat(64) });
  writeRun(root, "failures/seed-10", { scenario: "fuzz-10", seed: 10, verdict: "validity", expected: undefined, asExpected: false, traceDigest: "3".repeat(64) });
  writeRun(root, "failures/seed-10/shrunk", { scenario: "fuzz-10-shrunk", seed: 10, verdict: "validity", expected: undefined, asExpected: false, traceDigest: "4".repeat(64) });
  writeRun(root, "failures/seed-3", { scenario: HOSTILE, seed: 3, verdict: "liveness", expected: undefined, asExpected: false, traceDigest: "5".repeat(64) });
  mkdirSync(join(root, "broken"), { recursive: true });
  writeFileSync(join(root, "broken", "report.json"), "{ not json");
  mkdirSync(join(root, "node_modules", "x"), { recursive: true });
  writeFileSync(join(root, "node_modules", "x", "report.json"), "{}");
  writeFileSync(join(root, "summary.json"), JSON.stringify({
    runs: 4,
    seeds: { first: 3, last: 11 },
    elapsedS: 12,
    runsPerSec: 0.33,
    options: { nodes: [4, 7], kinds: ["crash", "partition"], canary: "no-ingress-dedup", jobs: 2 },
    results: [
      { seed: 3, n: 4, verdict: "liveness", traceDigest: "5".repeat(64), wallMs: 10 },
      { seed: 10, n: 4, verdict: "validity", traceDigest: "3".repeat(64), wallMs: 10 },
      { seed: 11, n: 7, verdict: "pass", traceDigest: "6".repeat(64), wallMs: 10 },
      { seed: 12, n: 4, verdict: "pass", traceDigest: "7".repeat(64), wallMs: 10 },
    ],
  }));
  return root;
}

test("collectRuns finds every report.json (not under node_modules) and the summary-only runs", (t) => {
  const root = campaign();
  const runs = collectRuns(root);
  t.deepEqual(runs.map((r) => r.dir).sort(), ["", "", "baseline", "beyond-f", "broken", "failures/seed-10", "failures/seed-10/shrunk", "failures/seed-3"].sort());
  t.is(runs.find((r) => r.dir === "failures/seed-10/shrunk")?.kind, "shrunk repro");
  t.is(runs.find((r) => r.dir === "failures/seed-10")?.kind, "fuzz failure");
  t.is(runs.find((r) => r.dir === "broken")?.verdict, "unreadable");
  t.deepEqual(runs.filter((r) => r.kind === "fuzz run").map((r) => r.seed), [11, 12]);
  t.deepEqual(runs.find((r) => r.dir === "beyond-f")?.finalizedHeights, [20, 20, 30, 20]);
});

test("writeIndexHtml lists every run with a link, counts per verdict, and escapes text", (t) => {
  const root = campaign();
  const { path, runs } = writeIndexHtml(root);
  t.is(path, join(root, "index.html"));
  const html = readFileSync(path, "utf8");
  for (const dir of ["baseline", "beyond-f", "failures/seed-10", "failures/seed-10/shrunk", "failures/seed-3"]) {
    t.true(html.includes(`href="${dir}/report.html"`), dir);
  }
  t.true(html.includes(`href="broken/report.json"`), "a run without report.html links its report.json");
  t.is((html.match(/<tr class="(?:ok|unexpected)"/g) ?? []).length, runs.length);
  t.regex(html, /<b>8<\/b> runs/);
  t.regex(html, /<b style="color:#15803d">3<\/b> pass/);
  t.regex(html, /<b style="color:#c2410c">2<\/b> validity/);
  t.regex(html, /<b style="color:#991b1b">1<\/b> safety/);
  t.regex(html, /4 runs not as expected/);
  t.regex(html, /fuzz seed 11 \(n = 7\)/);
  t.regex(html, /Fuzz campaign in .* \(seeds 3\.\.11\)/);
  t.regex(html, /4 runs · 12 s · 0.33 runs\/s · n ∈ \{4, 7\} · faults: crash, partition · canary bug: no-ingress-dedup/);
  t.false(html.includes(HOSTILE));
  t.notRegex(html, /https?:\/\//);
  // Not-as-expected runs first; seed-3 before seed-10 (natural order).
  const order = [...html.matchAll(/<tr class="[^"]+" data-verdict="[^"]+">\n<td><a href="([^"]+)">/g)].map((m) => m[1]);
  t.deepEqual(order.slice(0, 4), ["broken/report.json", "failures/seed-3/report.html", "failures/seed-10/report.html", "failures/seed-10/shrunk/report.html"]);
});

test("naturalCompare orders digit runs as numbers", (t) => {
  t.deepEqual(["seed-10", "seed-3", "seed-2/shrunk", "seed-2", "a"].sort(naturalCompare), ["a", "seed-2", "seed-2/shrunk", "seed-3", "seed-10"]);
});
