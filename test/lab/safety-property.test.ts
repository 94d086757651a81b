// Property: for any fault schedule with at most f Byzantine replicas (random kinds and times) plus
// benign faults (crashes, partitions, slow links, lossy network) that all heal, n = 4 or 7, the
// honest replicas never fork, finalize only valid ingress, and regain liveness after the heal.
// fast-check draws and shrinks the schedules; FC_SEED / FC_RUNS reproduce or widen a run.
import test from "ava";
import fc from "fast-check";
import type { FaultSpec } from "../../harness/faults/spec.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";
import { runScenario } from "../../harness/scenario/runner.ts";

const BYZANTINE_KINDS = ["equivocate", "silent", "withhold", "forge"] as const;
const DURATION_S = 75;
const HEALED_BY_S = 40;

const window = fc
  .tuple(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 2, max: 10 }))
  .map(([fromS, lengthS]) => ({ fromS, toS: Math.min(HEALED_BY_S, fromS + lengthS) }));

function benignFault(n: number): fc.Arbitrary<FaultSpec> {
  const replica = fc.integer({ min: 0, max: n - 1 });
  return fc.oneof(
    fc.tuple(replica, window).map(([r, w]): FaultSpec => ({ kind: "crash", replicas: [r], atS: w.fromS, restartS: w.toS })),
    fc.tuple(fc.uniqueArray(replica, { minLength: 1, maxLength: n - 1 }), window).map(([g, w]): FaultSpec => ({ kind: "partition", groups: [g], ...w })),
    fc.tuple(replica, fc.integer({ min: 100, max: 800 }), window).map(([r, d, w]): FaultSpec => ({ kind: "lag", replicas: [r], delayMs: d, ...w })),
    fc.tuple(fc.constantFrom("loss", "duplicate", "reorder" as const), fc.integer({ min: 1, max: 20 }), window).map(
      ([effect, percent, w]): FaultSpec => ({ kind: "network", effect, percent, ...w }),
    ),
  );
}

const schedule = fc.constantFrom(4, 7).chain((n) => {
  const f = Math.floor((n - 1) / 3);
  return fc.record({
    n: fc.constant(n),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
    byzantine: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: f }).chain((replicas) =>
      fc.tuple(...replicas.map((r) => fc.tuple(fc.constantFrom(...BYZANTINE_KINDS), window).map(([kind, w]): FaultSpec =>
        kind === "silent" || kind === "withhold" ? { kind, replicas: [r], ...w } : { kind, replicas: [r], fromS: w.fromS }))),
    ),
    benign: fc.array(benignFault(n), { maxLength: 2 }),
  });
});

test("≤ f Byzantine replicas plus healed benign faults never break safety and liveness returns", (t) => {
  const runs = Number(process.env.FC_RUNS ?? 12);
  const seed = Number(process.env.FC_SEED ?? 20261125);
  fc.assert(
    fc.property(schedule, ({ n, seed: runSeed, byzantine, benign }) => {
      const scenario = defineScenario({
        name: "property", description: "generated", n, durationS: DURATION_S,
        workload: { ratePerSec: 40, stopS: DURATION_S - 30 }, faults: [...byzantine, ...benign], livenessBoundS: 30,
      });
      const report = runScenario(scenario, { seed: runSeed });
      if (report.verdict !== "pass") {
        throw new Error(`verdict ${report.verdict}: ${report.violations.map((v) => v.message).join("; ")} — faults ${JSON.stringify(scenario.faults)} seed ${runSeed}`);
      }
      return report.livenessChecked;
    }),
    { numRuns: runs, seed, endOnFailure: false },
  );
  t.pass();
});
