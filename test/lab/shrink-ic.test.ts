// C7 of the hardening issue (#11): `fuzz --ic` violations are shrunk like single-subnet ones —
// subnet by subnet (drop, shorten, fewer replicas) and over the XNet partitions — keeping only
// what the violation needs, within each subnet's fault bound.
import test from "ava";
import { shrink, sizeOf, withinFaultBound } from "../../harness/replay/shrink.ts";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import type { Scenario } from "../../harness/scenario/scenario.ts";

const XNET = new URL("../../scenarios/xnet-ledger-partition.ts", import.meta.url).pathname;

test("C7: a two-subnet state divergence shrinks to the one fault that causes it", async (t) => {
  const { scenario: base } = await loadScenario(XNET);
  const [a, b] = base.subnets ?? [];
  if (a === undefined || b === undefined) throw new Error("xnet-ledger-partition has two subnets");
  // The cause (r3 of subnet a corrupts its state from 5 s on) among noise that changes nothing.
  const noisy: Scenario = {
    ...base,
    durationS: 28,
    workload: { ...base.workload!, stopS: 12 },
    actions: [],
    expectProbes: {},
    subnets: [
      { ...a, faults: [{ kind: "lag", replicas: [1], delayMs: 40, fromS: 2, toS: 20 }, { kind: "diverge", replicas: [3], fromS: 5 }] },
      { ...b, faults: [{ kind: "slow", replicas: [2, 4], delayMs: 30, fromS: 3, toS: 9 }] },
    ],
    xnetFaults: [{ kind: "partition-subnets", groups: [["a"], ["b"]], fromS: 6, toS: 10 }],
  };
  const first = runScenario(noisy, { seed: 4 });
  t.is(first.verdict, "state-divergence", JSON.stringify(first.violations.slice(0, 2)));
  const result = shrink(noisy, 4, "state-divergence", 30);
  const shrunk = result.scenario;
  t.log(result.steps.join("; "));
  t.deepEqual(shrunk.subnets?.[0]?.faults, [{ kind: "diverge", replicas: [3], fromS: 5 }]);
  t.deepEqual(shrunk.subnets?.[1]?.faults, []);
  t.deepEqual(shrunk.xnetFaults, []);
  t.true(withinFaultBound(shrunk));
  t.true(sizeOf(shrunk).faults < sizeOf(noisy).faults);
  t.is(runScenario(shrunk, { seed: 4 }).verdict, "state-divergence");
});
