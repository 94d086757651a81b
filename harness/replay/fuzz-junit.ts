// JUnit cases of a fuzz campaign — one testcase per run, plus one for a harness error — built
// from its summary alone, so that one campaign (`fuzz --junit`) and the merge of several shards
// (`report`) write the same XML.
import type { JUnitCase } from "../report/junit.ts";
import type { FuzzSummary } from "./fuzz.ts";

export function fuzzJUnitCases(summary: FuzzSummary): JUnitCase[] {
  const bySeed = new Map(summary.violations.map((v) => [v.seed, v] as const));
  const nondeterministic = new Map(summary.nondeterministic.map((d) => [d.seed, d] as const));
  const cases: JUnitCase[] = summary.results.map((r) => {
    const v = bySeed.get(r.seed);
    const d = nondeterministic.get(r.seed);
    const base = { name: `fuzz seed ${r.seed} (n = ${r.n})`, classname: "subnetlab.fuzz", timeS: r.wallMs / 1000 };
    if (d !== undefined) {
      const repro = d.repro ?? v?.repro;
      return { ...base, outcome: "failure", message: `nondeterminism: digests ${d.first.slice(0, 16)} and ${d.second.slice(0, 16)} (${d.found})`, details: "the same seed gave two trace digests", ...(repro === undefined ? {} : { replayCommand: `npx subnetlab replay ${repro}`, reproPath: repro }) };
    }
    if (v === undefined) return { ...base, outcome: "pass" };
    return { ...base, outcome: "failure", message: `${v.class}: ${v.message}`, details: v.message, replayCommand: v.replayCommand, reproPath: v.shrunkRepro ?? v.repro };
  });
  for (const e of summary.harnessErrors ?? (summary.harnessError === undefined ? [] : [summary.harnessError])) {
    cases.push({ name: `fuzz seed ${e.seed} (harness error)`, classname: "subnetlab.fuzz", timeS: 0, outcome: "error", message: `harness error: ${e.message}`, details: e.detail, replayCommand: e.replayCommand, reproPath: e.repro });
  }
  return cases;
}
