// Issue 14 items 1 and 3: with the execution time model, blocking checkpoints pause the subnet at
// checkpoint heights (certified update latency spikes), and background checkpoints remove the pause
// without changing what is certified. The pipeline's timing rules are checked on their own first.
import "../setup-instrumenter.ts";
import test from "ava";
import { ExecutionPipeline } from "../../harness/replica/execution-pipeline.ts";
import { batchDurations, executionTimeModel, IC_EXECUTION_TIME_MODEL, type BatchWork } from "../../harness/replica/execution-time.ts";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { checkScenario, ScenarioError, type Scenario } from "../../harness/scenario/scenario.ts";
import { canisterIdsOf } from "../../harness/scenario/app-world.ts";
import { Registry } from "../../harness/routing/registry.ts";
import type { CanisterId } from "../../harness/execution/interfaces.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { height, replicaId } from "../../harness/types.ts";

const h = height;
const round = (instructions: number): BatchWork => ({ busiestCoreInstructions: instructions, canisters: 1_000 });
const checkpoint = (pages: number, chunks: number): BatchWork => ({ busiestCoreInstructions: 0, canisters: 1_000, checkpoint: { changedPages: pages, changedChunks: chunks } });

test("durations: instructions at 2,000 per µs on the busiest core; a checkpoint charges files per canister, pages and chunks", (t) => {
  const m = IC_EXECUTION_TIME_MODEL;
  t.deepEqual(batchDurations(round(4_000_000_000), m), { executeUs: 2_000_000, checkpointUs: 0, checkpointBlockingUs: 0 }, "4 B instructions: 2 s (subnet_config.rs: 2 GHz, 1 instruction ≈ 1 cycle)");
  // 1,000 canisters × 5 files × 50 µs + 256 pages × 4 µs + 1 chunk × 2,000 µs
  t.deepEqual(batchDurations(checkpoint(256, 1), m), { executeUs: 0, checkpointUs: 250_000 + 1_024 + 2_000, checkpointBlockingUs: 250_000 + 1_024 + 2_000 });
  t.deepEqual(batchDurations(checkpoint(256, 1), { ...m, checkpoints: "background" }).checkpointBlockingUs, 2_000, "background: 2 µs per canister on the critical path");
  t.throws(() => executionTimeModel({ instructionsPerUs: 0 }), { message: /instructionsPerUs must be > 0/ });
  t.throws(() => executionTimeModel({ fileWriteUs: -1 }), { message: /fileWriteUs must be a finite number ≥ 0/ });
});

test("pipeline, blocking: the checkpoint height is certified, hashed and followed by the next batch only once the checkpoint is written", (t) => {
  const p = new ExecutionPipeline(IC_EXECUTION_TIME_MODEL);
  p.took(h(1), round(2_000_000), 0); // 1 ms
  t.false(p.certifiableBy(h(1), 999));
  t.false(p.canTake(999));
  t.deepEqual(p.takeCertifiable(999), []);
  t.deepEqual(p.takeCertifiable(1_000), [h(1)]);
  t.deepEqual(p.takeCertifiable(1_000), [], "reported once");
  const d = p.took(h(2), checkpoint(0, 0), 1_000);
  const done = 1_000 + d.checkpointUs;
  t.is(d.checkpointUs, 250_000);
  t.false(p.canTake(done - 1));
  t.false(p.certifiableBy(h(2), done - 1), "blocking: certification waits for the checkpoint");
  t.false(p.hashedBy(h(2), done - 1));
  t.is(p.nextChangeUs(1_000, true), done);
  t.deepEqual(p.takeCertifiable(done), [h(2)]);
  t.true(p.hashedBy(h(2), done) && p.canTake(done));
  t.is(p.nextChangeUs(done, true), undefined, "nothing pending");
  t.true(p.certifiableBy(h(7), 0), "a height never taken has nothing to wait for");
});

test("pipeline, background: execution and certification go on after a short pause; the CUP's state hash waits for the write, one write at a time", (t) => {
  const p = new ExecutionPipeline(executionTimeModel({ checkpoints: "background" }));
  const d = p.took(h(10), checkpoint(0, 0), 0);
  t.is(d.checkpointBlockingUs, 2_000);
  t.true(p.canTake(2_000) && p.certifiableBy(h(10), 2_000));
  t.false(p.hashedBy(h(10), 2_000), "the manifest is still being written");
  t.true(p.hashedBy(h(10), 2_000 + 250_000));
  // The next checkpoint right away: its write starts when the first one's ends.
  p.took(h(11), checkpoint(0, 0), 2_000);
  t.false(p.hashedBy(h(11), 2_000 + 2_000 + 250_000));
  t.true(p.hashedBy(h(11), 2_000 + 250_000 + 250_000));
  t.deepEqual(p.takeCertifiable(4_000), [h(10), h(11)]);
  t.is(p.nextChangeUs(4_000, false), 252_000, "the first write's end is the next change");
  t.throws(() => p.took(h(11), round(0), 10_000_000), { message: /taken after 11/ });
});

test("a scenario refuses execution.checkpoints without the time model, and unknown modes", (t) => {
  const base: Scenario = { name: "x", description: "validation only", n: 4, durationS: 10 };
  t.throws(() => checkScenario({ ...base, execution: { checkpoints: "background" } }), { instanceOf: ScenarioError, message: /needs execution.timeModel: true/ });
  t.throws(() => checkScenario({ ...base, execution: { timeModel: true, checkpoints: "lazy" as never } }), { message: /must be "blocking" or "background", got "lazy"/ });
  t.throws(() => checkScenario({ ...base, execution: { timeModel: "yes" as never } }), { message: /execution.timeModel must be true or false/ });
});

interface Observed {
  readonly report: ReturnType<typeof runScenario>;
  /** r0's finalized block and certified hash per height. */
  readonly heights: Map<number, { readonly block: string; readonly certified: string }>;
  /** r0's answer to the key-value canister's size() query at the end. */
  readonly size: string;
}

const CANDID_NO_ARGS = new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0x00, 0x00]); // "DIDL", no types, no values

function observe(scenario: Scenario): Observed {
  const heights = new Map<number, { block: string; certified: string }>();
  const kv = canisterIdsOf(scenario, Registry.of([{ name: "a", size: scenario.n }])).get("kv")!;
  let size = "";
  const report = runScenario(scenario, {
    seed: 1,
    onDelivered: (replica, block, machine) => {
      if (replica === 0) heights.set(block.height, { block: block.hash, certified: machine.certifiedHashAt?.(block.height) ?? "" });
    },
    onFinish: (subnet) => {
      const answer = subnet.replica(replicaId(0))?.stateMachine.query?.(kv as CanisterId, "size", CANDID_NO_ARGS);
      size = answer?.kind === "reply" ? bytesToHex(answer.data) : JSON.stringify(answer);
    },
  });
  return { report, heights, size };
}

test("checkpoint-downtime: blocking checkpoints pause the certified height at checkpoint heights; background ones do not, and certify the same states", async (t) => {
  const { scenario } = await loadScenario(new URL("../../scenarios/checkpoint-downtime.ts", import.meta.url).pathname);
  const blocking = observe(scenario);
  const background = observe({ ...scenario, execution: { ...scenario.execution, checkpoints: "background" } });
  for (const run of [blocking, background]) t.is(run.report.verdict, "pass", JSON.stringify(run.report.violations.slice(0, 2)));
  const [b, g] = [blocking.report.updates!, background.report.updates!];
  t.log(`blocking: worst pause ${b.worstPauseMs} ms (to height ${b.worstPauseEndHeight}), p99 ${b.latencyMsP99} ms; background: ${g.worstPauseMs} ms, p99 ${g.latencyMsP99} ms`);
  const interval = (scenario.consensus?.dkgIntervalLength ?? 49) + 1;
  t.is(b.worstPauseEndHeight! % interval, 0, "the blocking run's worst pause ends at a checkpoint height");
  t.true(b.worstPauseMs! >= 1_000, `blocking pause ${b.worstPauseMs} ms`);
  t.true(g.worstPauseMs! * 3 <= b.worstPauseMs!, `background pause ${g.worstPauseMs} ms vs blocking ${b.worstPauseMs} ms`);
  t.true(g.latencyMsP99! * 1.5 <= b.latencyMsP99!, `p99 ${g.latencyMsP99} vs ${b.latencyMsP99} ms`);
  t.true(b.checkpoints.length >= 2 && g.checkpoints.length >= 2, "both runs certified several checkpoint heights");
  t.is(b.certified, g.certified, "every answer was certified in both runs");

  // Same certified states: the checkpoint mode never reaches the state machine, so wherever the two
  // runs finalized the same block on the same chain, they certified the same state.
  let sameChain = 0;
  for (const [height, x] of blocking.heights) {
    const y = background.heights.get(height);
    if (y === undefined || y.block !== x.block) break;
    t.is(y.certified, x.certified, `height ${height}`);
    sameChain++;
  }
  t.true(sameChain >= interval, `the runs share the chain up to the first checkpoint (${sameChain} heights)`);
  // And the key-value canister holds as many entries in both runs (every insert executed once).
  t.is(background.size, blocking.size);
  t.regex(blocking.size, /^4449444c00017d/, "a Nat reply");
});
