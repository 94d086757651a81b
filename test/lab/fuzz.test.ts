// The fuzzer as a CI gate: a clean campaign passes, and each canary (a known bug switched on in
// the honest code) is found within a bounded number of runs, with a shrunk repro that is smaller
// and still replays to the same violation class.
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CANARIES, type Canary } from "../../harness/consensus/config.ts";
import { fuzz, worstClass } from "../../harness/replay/fuzz.ts";
import { readRepro } from "../../harness/replay/repro.ts";
import { replay } from "../../harness/replay/replay.ts";
import { FUZZ_KINDS, generateScenario } from "../../harness/scenario/generate.ts";
import { withinFaultBound } from "../../harness/replay/shrink.ts";

const now = (): number => Date.now();
const out = (name: string): string => mkdtempSync(join(tmpdir(), `subnetlab-fuzz-${name}-`));

test("generated scenarios are reproducible from their seed and stay within the fault bound", (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const a = generateScenario(seed, { nodes: [4, 7], kinds: FUZZ_KINDS });
    t.deepEqual(a, generateScenario(seed, { nodes: [4, 7], kinds: FUZZ_KINDS }));
    t.true(withinFaultBound(a), `seed ${seed}`);
  }
  const kindsSeen = new Set(Array.from({ length: 200 }, (_, i) => generateScenario(i, { nodes: [4], kinds: FUZZ_KINDS }).faults ?? []).flat().map((f) => f.kind));
  t.deepEqual([...kindsSeen].sort(), [...FUZZ_KINDS].sort(), "swarm testing still reaches every kind");
});

test("a clean campaign of 30 schedules at n = 4 passes", async (t) => {
  const summary = await fuzz({ seed: 1000, runs: 30, budgetMs: undefined, jobs: 2, nodes: [4], kinds: FUZZ_KINDS, outDir: out("clean"), shrink: true, determinismPercent: 20, now });
  t.is(summary.runs, 30);
  t.deepEqual(summary.violations, [], JSON.stringify(summary.violations.slice(0, 2)));
  t.deepEqual(summary.nondeterministic, []);
  t.is(worstClass(summary), "pass");
  t.true(summary.runsPerSec > 0);
});

test("fuzz --ic: two-subnet ledger scenarios are reproducible, within each subnet's fault bound, and a short campaign passes deterministically", async (t) => {
  for (let seed = 1; seed <= 50; seed++) {
    const a = generateScenario(seed, { nodes: [4, 7], kinds: FUZZ_KINDS, ic: true });
    t.deepEqual(a, generateScenario(seed, { nodes: [4, 7], kinds: FUZZ_KINDS, ic: true }));
    t.is(a.subnets?.length, 2);
    for (const sub of a.subnets ?? []) t.true(withinFaultBound({ ...a, n: sub.n, subnets: undefined, faults: sub.faults ?? [] }), `seed ${seed} subnet ${sub.name}`);
  }
  const summary = await fuzz({ seed: 700, runs: 3, budgetMs: undefined, jobs: 2, nodes: [4], kinds: FUZZ_KINDS, outDir: out("ic"), shrink: true, determinismPercent: 100, ic: true, now });
  t.deepEqual(summary.violations, [], JSON.stringify(summary.violations.slice(0, 2)));
  t.deepEqual(summary.nondeterministic, []);
});

// Every canary is caught on its first run by a checker (test/lab/protocol-checks.test.ts and the
// tests named after each). Here the fuzzer must also find, shrink and replay them: two consensus
// canaries and one state canary in `npm test`, all of them with SUBNETLAB_ALL_CANARIES=1
// (`npm run test:canaries`), which keeps `npm test` within its time on 2 cores.
const CANARIES_IN_NPM_TEST: ReadonlySet<Canary> = new Set<Canary>(["finalizer-ignores-rule", "no-ingress-dedup", "state-hash-after-restart"]);
const allCanaries = process.env["SUBNETLAB_ALL_CANARIES"] === "1";
for (const canary of (Object.keys(CANARIES) as Canary[]).filter((c) => allCanaries || CANARIES_IN_NPM_TEST.has(c))) {
  test(`canary ${canary} is found, shrunk, and the shrunk repro replays to the same class`, async (t) => {
    const expectedClass = CANARIES[canary];
    const dir = out(canary);
    const summary = await fuzz({ seed: 1, runs: 40, budgetMs: undefined, jobs: 2, nodes: [4], kinds: FUZZ_KINDS, outDir: dir, shrink: true, determinismPercent: 0, canary, maxViolations: 1, now });
    const found = summary.violations.find((v) => v.class === expectedClass);
    t.truthy(found, `no ${expectedClass} violation in ${summary.runs} runs: ${JSON.stringify(summary.verdicts)}`);
    if (found?.shrunkRepro === undefined || found.sizes === undefined) return;
    const { original, shrunk } = found.sizes;
    t.true(shrunk.faults < original.faults || shrunk.faultSeconds < original.faultSeconds || shrunk.durationS < original.durationS || shrunk.n < original.n, JSON.stringify(found.sizes));
    for (const path of [found.repro, found.shrunkRepro]) {
      const { bundle, dir: runDir } = readRepro(path);
      const result = await replay(bundle, runDir);
      t.true(result.matches, `${path} replays bit for bit`);
      t.is(result.report.verdict, expectedClass);
    }
  });
}
