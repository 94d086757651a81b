// Issue 13 item 1, "execute once, verify always" (harness/replica/shared-execution.ts): honest
// replicas of an execution subnet adopt one replica's execution of a batch, one other replica per
// batch re-executes it (the audit). Sharing must not change anything a run shows — the trace
// digest with sharing on equals the digest with it off — and the audit must catch an executor
// that computes differently on one replica, which sharing would otherwise hide.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { WasmExecutor, type WasmExecutorOptions } from "../../harness/execution/executor.ts";
import type { CanisterMessage, CanisterState, ExecutionParams, ExecutionResult } from "../../harness/execution/interfaces.ts";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import { ExecutionStateMachine, type ExecutionMachineOptions } from "../../harness/replica/execution-state-machine.ts";
import { SharedExecution, type SharedOutcome } from "../../harness/replica/shared-execution.ts";
import type { Batch } from "../../harness/replica/interfaces.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { generateScenario } from "../../harness/scenario/generate.ts";
import { runScenario, type RunOptions } from "../../harness/scenario/runner.ts";
import { defineScenario, type Scenario } from "../../harness/scenario/scenario.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { height, type HashHex } from "../../harness/types.ts";
import { readFileSync } from "node:fs";
import { assertAgreementNames, assertAuditNames } from "./audit-verdicts.ts";

const KV = "fixtures/canisters/motoko/kv.classic.wasm";

const kvSubnet = defineScenario({
  name: "shared-kv",
  description: "four replicas, the key-value canister, 40 updates/s",
  n: 4,
  durationS: 12,
  canisters: [{ name: "kv", wasm: KV }],
  workload: { ratePerSec: 40, call: { canister: "kv", method: "insert" }, stopS: 9 },
  consensus: { dkgIntervalLength: 9 },
});

/** r0 is down long enough for the subnet to pass a catch-up package: it restarts from its disk and state-syncs. */
const crashAndStateSync = defineScenario({
  ...kvSubnet,
  name: "shared-crash-state-sync",
  durationS: 26,
  workload: { ratePerSec: 30, call: { canister: "kv", method: "insert" }, stopS: 22 },
  faults: [{ kind: "crash", replicas: [0], atS: 3, restartS: 20 }],
});

const twoSubnets = defineScenario({
  name: "shared-xnet",
  description: "two subnets with a ledger each, transfers within and across them",
  n: 4,
  durationS: 16,
  subnets: [
    { name: "a", n: 4, canisters: [{ name: "ledger-a", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "alice" }, { nat: 1_000_000 }] }] },
    { name: "b", n: 4, canisters: [{ name: "ledger-b", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "bob" }, { nat: 1_000_000 }] }] },
  ],
  workload: {
    ratePerSec: 8,
    stopS: 10,
    calls: [
      { canister: "ledger-a", method: "transfer_remote", args: [{ canister: "ledger-b" }, { text: "alice" }, { oneOf: ["alice", "bob"] }, { nat: [1, 50] }] },
      { canister: "ledger-b", method: "transfer_remote", args: [{ canister: "ledger-a" }, { text: "bob" }, { oneOf: ["alice", "bob"] }, { nat: [1, 50] }] },
    ],
  },
  invariants: [{ kind: "ledger-conservation", ledgers: ["ledger-a", "ledger-b"] }, { kind: "every-call-answered" }],
  consensus: { dkgIntervalLength: 9 },
});

function bothWays(scenario: Scenario, options: Omit<RunOptions, "seed"> = {}, seed = 1) {
  const on = runScenario(scenario, { seed, ...options });
  const off = runScenario(scenario, { seed, ...options, sharedExecution: false });
  return { on, off };
}

for (const [what, scenario] of [
  ["one subnet under load", kvSubnet],
  ["a crash, a restart from disk and a state sync", crashAndStateSync],
  ["two subnets with XNet streams", twoSubnets],
] as const) {
  test(`issue 13 item 1: sharing execution leaves the trace digest unchanged — ${what}`, (t) => {
    const { on, off } = bothWays(scenario);
    t.is(on.traceDigest, off.traceDigest);
    t.is(on.verdict, "pass", JSON.stringify(on.violations.slice(0, 3)));
    t.is(off.verdict, "pass");
    // Sharing really happened (and the audit ran) — otherwise the equality proves nothing.
    t.true((on.execution?.shared ?? 0) > 0 && (on.execution?.audited ?? 0) > 0, JSON.stringify(on.execution));
    t.true((on.execution?.executions ?? 0) < (off.execution?.executions ?? 0), JSON.stringify([on.execution, off.execution]));
    t.is(off.execution?.shared, 0);
    t.is(on.execution?.mismatches, 0);
    if (scenario === crashAndStateSync) t.true((on.eventCounts["state-sync.done"] ?? 0) > 0, "r0 state-synced");
  });
}

test("issue 13 item 1: sharing leaves the digest of a fuzz --ic case unchanged", (t) => {
  const scenario = generateScenario(5, { nodes: [4], kinds: ["crash", "lag", "partition"], ic: true, safetyPhaseS: 8, livenessBoundS: 6 });
  const { on, off } = bothWays(scenario, { wire: "roundtrip" });
  t.is(on.traceDigest, off.traceDigest);
  t.is(on.verdict, off.verdict);
  t.true((on.execution?.shared ?? 0) > 0, JSON.stringify(on.execution));
});

test("issue 13 item 1: the scenario field execution.sharing switches sharing off, and is validated", (t) => {
  const off = runScenario(defineScenario({ ...kvSubnet, durationS: 8, execution: { sharing: false } }), { seed: 2 });
  t.deepEqual(off.execution, { sharing: false, stateMachine: "execution", executions: off.execution?.executions ?? -1, shared: 0, audited: 0, mismatches: 0 });
  t.true((off.execution?.executions ?? 0) > 0);
  t.throws(() => defineScenario({ ...kvSubnet, execution: { sharing: "no" as unknown as boolean } }), { message: /execution\.sharing must be true or false/ });
  t.throws(() => defineScenario({ ...kvSubnet, execution: { share: false } as never }), { message: /share/ });
});

/**
 * A replica's own executor with a bug the lab does not know about: every `period`-th update it
 * runs changes one byte of the canister's heap after the fact (as a nondeterministic engine
 * would). Not a fault injector: the replica runs the honest code path and shares executions.
 */
class FlakyExecutor extends WasmExecutor {
  private updates = 0;

  constructor(options: WasmExecutorOptions, private readonly period: number) {
    super(undefined, options);
  }

  override executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    const result = super.executeMessage(canister, message, params);
    if (message.kind !== "ingress" || result.outcome.kind !== "completed") return result;
    this.updates++;
    if (this.updates % this.period !== 0) return result;
    const exec = result.canister.execution;
    if (exec === undefined) return result;
    const pages = exec.wasmMemory.nonZeroPageIndices();
    const index = pages[pages.length - 1] ?? 0;
    const page = exec.wasmMemory.readPage(index).slice();
    page[7] = ((page[7] ?? 0) + 1) & 0xff;
    return { ...result, canister: { ...result.canister, execution: { ...exec, wasmMemory: exec.wasmMemory.withPages(new Map([[index, page]])) } } };
  }
}

const flakyR2: Pick<RunOptions, "makeExecutor"> = {
  makeExecutor: (replica, options) => (replica === "r2" ? new FlakyExecutor(options, 25) : new WasmExecutor(undefined, options)),
};

test("issue 13 item 1: the audit catches a replica whose own executor computes differently", (t) => {
  assertAuditNames(t, runScenario(kvSubnet, { seed: 1, ...flakyR2 }), "r2");
});

test("issue 13 item 1: with sharing off, state agreement names the replica with the flaky executor", (t) => {
  assertAgreementNames(t, runScenario(kvSubnet, { seed: 1, ...flakyR2, sharedExecution: false }), "r2");
});

test("issue 13 item 1: the execution cache stays bounded over a long run", (t) => {
  const caches: SharedExecution<SharedOutcome>[] = [];
  const report = runScenario(defineScenario({ ...kvSubnet, durationS: 40, workload: { ratePerSec: 5, call: { canister: "kv", method: "insert" }, stopS: 38 } }), {
    seed: 4,
    onSharedExecution: (shared) => caches.push(shared),
  });
  t.is(report.verdict, "pass");
  t.is(caches.length, 1);
  const heights = Math.max(...report.replicas.map((r) => r.deliveredHeight));
  t.true(heights > 60, `only ${heights} heights`);
  // Every replica passed every height but the last few: only those can still be held.
  t.true(caches[0]!.size <= 4, `${caches[0]!.size} entries held after ${heights} heights`);
});

test("issue 13 item 1: a lagging member keeps outcomes only up to the bound", (t) => {
  const shared = new SharedExecution({ subnet: "a", sharing: true, auditRng: Rng.fromSeed(1).fork("execution-audit"), keepHeights: 8 });
  const computer = shared.member(0, "r0");
  const laggard = shared.member(1, "r1");
  computer.join();
  laggard.join();
  const outcome = (h: number) => ({ height: height(h) }) as never;
  for (let h = 1; h <= 50; h++) {
    t.is(computer.plan(height(h), `k${h}`).kind, "compute");
    computer.store(`k${h}`, outcome(h));
  }
  t.true(shared.size <= 8, `${shared.size} entries`);
  // r1 never delivered anything: what it asks for below the bound is gone (it executes itself).
  t.is(laggard.plan(height(1), "k1").kind, "compute");
});

test("issue 13 item 1: a replica with an execution-affecting hook or canary executes on its own and never stores", (t) => {
  const kv = canisterIdFromU64(0n);
  const genesis = [{ id: kv, wasm: new Uint8Array(readFileSync(KV)) }];
  const batch: Batch = { height: height(1), timeNs: 1_000_000n, randomness: "00" as HashHex, ingress: [], requiresFullStateHash: false };
  const hooks: Partial<ExecutionMachineOptions>[] = [
    { corrupt: () => false },
    { corruptReplies: () => false },
    { perturbExecution: () => false },
    { executionCanary: "trapped-update-keeps-heap" },
    { inductionCanary: { bug: "skip-index", index: 0n } },
    { snapshotCanary: "state-sync-unverified" },
    { skipChecksums: true },
    { executor: new WasmExecutor() },
  ];
  for (const hook of hooks) {
    const shared = new SharedExecution({ subnet: "a", sharing: true, auditRng: Rng.fromSeed(1), audit: false });
    const machine = (i: number, extra: Partial<ExecutionMachineOptions>) =>
      new ExecutionStateMachine(new SimDisk(), { genesis, checkpointInterval: 10, sharing: shared.member(i, `r${i}`), ...extra });
    const hooked = machine(0, hook);
    const honest = [machine(1, {}), machine(2, {})];
    hooked.deliverBatch(batch);
    t.is(shared.size, 0, `${Object.keys(hook)[0]}: the hooked replica stored its outcome`);
    for (const m of honest) m.deliverBatch(batch);
    // The first honest replica computed, the second adopted; the hooked one never adopts either.
    t.deepEqual(shared.stats, { executions: 2, shared: 1, audited: 0, mismatches: 0 }, Object.keys(hook)[0]);
    t.is(honest[0]!.stateHashAt(height(1)), honest[1]!.stateHashAt(height(1)));
  }
});

test("issue 14 item 2: the genesis state is built by the first sharing replica, rebuilt by the next as its audit, adopted by the others", (t) => {
  const empty = (tag: number) => ({ canisters: [], queues: [], scheduling: [], paused: [], aborted: [], tag }) as never;
  const run = (audit: boolean, digestOfBuild: (n: number) => string): { builds: number; states: unknown[]; shared: SharedExecution } => {
    const shared = new SharedExecution({ subnet: "a", sharing: true, auditRng: Rng.fromSeed(1), audit });
    let builds = 0;
    const states = [0, 1, 2, 3].map((i) => {
      const sharing = shared.member(i, `r${i}`);
      sharing.join();
      return sharing.genesis("k", () => empty(++builds), (state) => digestOfBuild((state as unknown as { tag: number }).tag) as HashHex);
    });
    return { builds, states, shared };
  };
  const agreeing = run(true, () => "same");
  t.is(agreeing.builds, 2, "built by r0, audited by r1");
  t.is(agreeing.states[2], agreeing.states[0], "r2 adopts r0's state object");
  t.is(agreeing.states[3], agreeing.states[0]);
  t.deepEqual(agreeing.shared.mismatches, []);
  t.is(run(false, () => "same").builds, 1, "no audit: built once");

  // A builder that differs on its second build: the audit names both, then everyone builds its own.
  const disputed = run(true, (n) => (n === 1 ? "first" : "second"));
  t.is(disputed.builds, 4);
  t.deepEqual(disputed.shared.mismatches.map((m) => [m.height, m.auditor, m.computer, m.differing]), [[0, "r1", "r0", ["genesis state"]]]);
  t.not(disputed.states[2], disputed.states[0]);
});
