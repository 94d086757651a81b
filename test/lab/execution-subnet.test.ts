// Consensus driving the real execution environment: Listing 1's key-value canister (Motoko) on a
// 4-replica subnet; the replicas' state hashes agree, every message is executed and answered, a
// crashed replica state-syncs the execution state from a checkpoint, and runs are deterministic.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { readFileSync } from "node:fs";
import { IDL } from "@dfinity/candid";
import { bytesToHex } from "@noble/hashes/utils.js";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { height, timeUs, type HashHex } from "../../harness/types.ts";
import type { Scenario } from "../../harness/scenario/scenario.ts";

const SCENARIO = new URL("../../scenarios/kv-canister.ts", import.meta.url).pathname;
const KV_WASM = readFileSync(new URL("../../fixtures/canisters/motoko/kv.classic.wasm", import.meta.url));

test("every replica executes every message and reaches the same state", async (t) => {
  const { scenario } = await loadScenario(SCENARIO);
  const ids: HashHex[] = [];
  let machine: ExecutionStateMachine | undefined;
  const report = runScenario(scenario, {
    seed: 1,
    onDelivered: (replica, block, m) => {
      if (replica !== 0) return;
      machine = m as ExecutionStateMachine;
      ids.push(...block.ingress.map((x) => x.id));
    },
  });
  const statuses = ids.map((id) => machine?.ingressStatus(id)?.status ?? "none");
  t.is(machine?.canisters.length, 1);
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
  t.is(new Set(report.replicas.map((r) => r.stateHash)).size, 1);
  t.is(report.ingress.finalized, report.ingress.valid);
  t.true(statuses.length > 0);
  t.true(statuses.every((s) => s === "completed"), `statuses: ${[...new Set(statuses)].join(",")}`);
});

test("a replica that crashes past a checkpoint state-syncs the execution state and agrees again", async (t) => {
  const { scenario } = await loadScenario(SCENARIO);
  const crashing: Scenario = { ...scenario, durationS: 90, workload: { ...scenario.workload!, stopS: 55 }, faults: [{ kind: "crash", replicas: [0], atS: 5, restartS: 35 }, { kind: "crash", replicas: [2], atS: 40, restartS: 42 }] };
  const first = runScenario(crashing, { seed: 3 });
  t.is(first.verdict, "pass", JSON.stringify(first.violations));
  t.true((first.eventCounts["state-sync.done"] ?? 0) >= 1);
  // The run may end between two replicas' deliveries of one height: compare at the last sampled
  // height every replica executed (the verdict covers every height).
  const { heights, rows } = first.stateHashTable;
  const common = heights.findLastIndex((_, i) => rows.every((row) => row.hashes[i] !== null));
  t.true(common >= 0 && Math.max(...first.replicas.map((r) => r.deliveredHeight)) - (heights[common] ?? 0) <= 20, JSON.stringify(first.stateHashTable));
  t.is(new Set(rows.map((row) => row.hashes[common])).size, 1);
  t.is(runScenario(crashing, { seed: 3 }).traceDigest, first.traceDigest, "deterministic with execution inside");
});

test("induction rejects a call to a canister that does not exist (reject code 3), executes the rest", (t) => {
  const kv = canisterIdFromU64(0n);
  const machine = new ExecutionStateMachine(new SimDisk(), { genesis: [{ id: kv, wasm: KV_WASM }], checkpointInterval: 10 });
  const insert = bytesToHex(new Uint8Array(IDL.encode([IDL.Text, IDL.Text], ["k", "v"])));
  const base = { sender: "alice", body: "", sizeBytes: 50, expiryUs: timeUs(1e9), signature: "" };
  const good = { ...base, id: "aa".repeat(32) as HashHex, nonce: 1, call: { canister: kv, method: "insert", argHex: insert } };
  const missing = { ...base, id: "bb".repeat(32) as HashHex, nonce: 2, call: { canister: canisterIdFromU64(7n), method: "insert", argHex: insert } };
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00" as HashHex, ingress: [good, missing], requiresFullStateHash: false });
  t.is(machine.ingressStatus(good.id)?.status, "completed");
  const failed = machine.ingressStatus(missing.id);
  t.is(failed?.status, "failed");
  // The IC's valid set rule: IC0301 with StateError's text (rs/replicated_state replicated_state.rs).
  t.deepEqual(failed, { status: "failed", height: height(1), code: 3, message: `Canister ${canisterIdFromU64(7n)} not found`, errorCode: "IC0301" });
  t.truthy(machine.stateHashAt(height(1)));
});
