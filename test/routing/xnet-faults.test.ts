// Cross-subnet traffic under faults inside both subnets: a crashed replica of b that comes back
// past a checkpoint state-syncs (streams, signals and certified state included) while an
// equivocating block maker attacks b and a replica of a crashes and restarts; the subnets are
// also cut off from each other for 20 s. Conservation, answers and certification must hold.
import test from "ava";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";

test("xnet-ledger-partition with crashes, state sync and an equivocating maker still conserves supply and answers every call", async (t) => {
  const { scenario } = await loadScenario(new URL("../../scenarios/xnet-ledger-partition.ts", import.meta.url).pathname);
  const faulty = {
    ...scenario,
    name: "xnet-ledger-faults",
    subnets: scenario.subnets!.map((sub) =>
      sub.name === "b"
        ? { ...sub, faults: [{ kind: "crash" as const, replicas: [1], atS: 8, restartS: 40 }, { kind: "equivocate" as const, replicas: [6], fromS: 5 }] }
        : { ...sub, faults: [{ kind: "crash" as const, replicas: [3], atS: 20, restartS: 30 }] },
    ),
  };
  const report = runScenario(faulty, { seed: 2 });
  t.is(report.verdict, "pass", JSON.stringify(report.violations.slice(0, 3)));
  t.true((report.eventCounts["state-sync.done"] ?? 0) >= 1, "b/r1 came back by state sync");
  t.true((report.eventCounts["equivocation-proof.add"] ?? 0) > 0, "the equivocation was detected");
  const heights = new Map(report.replicas.map((r) => [r.replica, r.deliveredHeight]));
  t.is(heights.get("b/r1"), heights.get("b/r0"), "the restarted replica caught up");
});
