import test from "ava";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { defineScenario, type Scenario } from "../../harness/scenario/scenario.ts";
import { idleStepProblem } from "../../harness/replica/idle-steps.ts";

// Issue 13 item 3: a bundle that adds nothing runs no consensus step, which is sound only if
// every time-triggered action has a wake-up timer of its own. SUBNETLAB_FEWER_EVENTS=probe runs a
// step before every input and throws when it finds work while no wake-up timer is due
// (replica/idle-steps.ts) — here over runs that exercise the block makers' rank delays, the
// notary delay (with its certification terms), beacons, finalization, catch-up packages, state
// sync, certification, equivocation and crashes.
function probe(scenario: Scenario, seed = 5): string {
  const saved = process.env["SUBNETLAB_FEWER_EVENTS"];
  process.env["SUBNETLAB_FEWER_EVENTS"] = "probe";
  try {
    return runScenario(scenario, { seed }).verdict;
  } finally {
    if (saved === undefined) delete process.env["SUBNETLAB_FEWER_EVENTS"];
    else process.env["SUBNETLAB_FEWER_EVENTS"] = saved;
  }
}

const DIR = new URL("../../scenarios/", import.meta.url).pathname;
const shipped = async (name: string, durationS: number): Promise<Scenario> => {
  const { scenario } = await loadScenario(`${DIR}${name}.ts`);
  return { ...scenario, durationS };
};

test("issue 13 item 3: every deadline has its wake-up timer — an equivocating leader (rank delays, disqualified makers)", async (t) => {
  t.is(probe(await shipped("equivocating-leader", 20)), "pass");
});

test("issue 13 item 3: every deadline has its wake-up timer — an execution subnet (certification terms of the notary delay, CUPs)", async (t) => {
  t.is(probe(await shipped("kv-canister", 12)), "pass");
});

test("issue 13 item 3: every deadline has its wake-up timer — a replica down past a catch-up package (CUP, state sync and its retry)", (t) => {
  const scenario = defineScenario({
    name: "idle-steps-state-sync",
    description: "issue 13 item 3: r0 is down while the others pass two CUPs, then state-syncs",
    n: 4,
    durationS: 30,
    consensus: { dkgIntervalLength: 9 },
    workload: { ratePerSec: 50, stopS: 25 },
    livenessBoundS: 4,
    faults: [{ kind: "crash", replicas: [0], atS: 3, restartS: 15 }, { kind: "network", effect: "loss", percent: 20, replicas: [0], fromS: 15, toS: 18 }],
    expect: { verdict: "pass" },
  });
  t.is(probe(scenario), "pass");
});

test("issue 13 item 3: the probe's judgement — work with no wake-up due is a missing timer", (t) => {
  const at = { nowUs: 5_000, replica: 2, input: "a bundle from r1" };
  t.is(idleStepProblem({ ...at, work: 0, earliestTimerUs: undefined }), undefined, "nothing to do: fine");
  t.is(idleStepProblem({ ...at, work: 3, earliestTimerUs: 5_000 }), undefined, "the wake-up is due now: it would have done it");
  t.regex(idleStepProblem({ ...at, work: 3, earliestTimerUs: 5_001 }) ?? "", /r2 at 5000 µs, before a bundle from r1: a step with no new input did 3 things/);
  t.regex(idleStepProblem({ ...at, work: 1, earliestTimerUs: undefined }) ?? "", /earliest none/);
});
