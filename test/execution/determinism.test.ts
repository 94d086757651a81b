// Determinism of execution (DESIGN.md rules 3–4): the same canister state and message give the same
// result whatever the executor's caches hold. Replicas in one process may share one WasmExecutor:
// its live instance must never leak state between two copies of a canister (same id).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import {
  canisterIdFromU64,
  lifecycle,
  ModuleCache,
  WasmExecutor,
  type CanisterMessage,
  type CanisterState,
  type PrincipalText,
} from "../../harness/execution/index.ts";
import { fixture } from "./helpers.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const params = { instructionLimit: 5_000_000_000n, timeNs: 1_700_000_000_000_000_000n };

function install(executor: WasmExecutor, wasm: Uint8Array): CanisterState {
  const c = lifecycle.createCanister({ id: canisterIdFromU64(7n), controllers: [SENDER], cycles: 10n ** 12n });
  const r = executor.installCode(c, { mode: "install", wasmModule: wasm, arg: new Uint8Array(), sender: SENDER }, params);
  if (!r.ok) throw new Error(r.message);
  return r.canister;
}

const insert = (i: number): CanisterMessage => ({
  kind: "ingress",
  messageId: `m${i}`,
  caller: SENDER,
  method: "insert",
  arg: IDL.encode([IDL.Text, IDL.Text], [`key${i % 5}`, `value${i}`]),
});

for (const instancesPerCanister of [1, 2]) test(`two replicas sharing one executor (${instancesPerCanister} live instance(s) per canister), interleaved, reach identical states (Motoko EOP KV)`, (t) => {
  const wasm = fixture("motoko/kv.eop.wasm");
  const shared = new WasmExecutor(new ModuleCache(), { instancesPerCanister });
  let r1 = install(shared, wasm);
  let r2 = install(shared, wasm);
  // A third, independent executor is the reference.
  const alone = new WasmExecutor(new ModuleCache());
  let ref = install(alone, wasm);
  t.is(lifecycle.memoryDigest(r1), lifecycle.memoryDigest(ref));
  for (let i = 0; i < 12; i++) {
    // Replica 2 lags one message behind replica 1, so the shared live instance keeps switching.
    r1 = shared.executeMessage(r1, insert(i), params).canister;
    if (i > 0) r2 = shared.executeMessage(r2, insert(i - 1), params).canister;
    ref = alone.executeMessage(ref, insert(i), params).canister;
    t.is(lifecycle.memoryDigest(r1), lifecycle.memoryDigest(ref), `after message ${i}`);
  }
  r2 = shared.executeMessage(r2, insert(11), params).canister;
  t.is(lifecycle.memoryDigest(r2), lifecycle.memoryDigest(ref));
  // Re-executing from an old state gives the old result again (no hidden state in the cache).
  const lookup: CanisterMessage = { kind: "query", caller: SENDER, method: "lookup", arg: IDL.encode([IDL.Text], ["key1"]) };
  const a = shared.executeMessage(r1, lookup, params);
  const b = alone.executeMessage(ref, lookup, params);
  t.deepEqual(a.responses[0]?.response, b.responses[0]?.response);
  t.is(a.instructionsUsed, b.instructionsUsed);
});

test("the same message on the same state always reports the same instruction count", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const c = install(executor, fixture("motoko/kv.classic.wasm"));
  const counts = new Set<bigint>();
  const digests = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const r = executor.executeMessage(c, insert(3), params);
    counts.add(r.instructionsUsed);
    digests.add(lifecycle.memoryDigest(r.canister));
  }
  t.is(counts.size, 1);
  t.is(digests.size, 1);
});
