// Issue 15 item 4: ic0.root_key_size/copy and the ic0.cost_* imports. Signatures and availability
// from the IC interface specification, "Overview of imports" (root_key_*: I G U RQ Ry Rt C T;
// cost_*: * s) and "Cycles cost calculation"; the replica accepts all of them at install
// (dfinity/ic rs/embedders/src/wasm_utils/validation.rs).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { ExecutionLab, WasmExecutor, type CanisterId, type Response } from "../../harness/execution/index.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { Registry, subnetIdOf } from "../../harness/routing/registry.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { height, timeUs, type HashHex } from "../../harness/types.ts";
import { wat } from "./helpers.ts";

// `root` (update) and `root_q` (non-replicated query) reply with the root key's bytes.
const ROOT_KEY_READER = wat(`(module
  (import "ic0" "root_key_size" (func $size (result i32)))
  (import "ic0" "root_key_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func $answer (local $n i32)
    (local.set $n (call $size)) (call $copy (i32.const 0) (i32.const 0) (local.get $n))
    (call $append (i32.const 0) (local.get $n)) (call $reply))
  (func (export "canister_update root") (call $answer))
  (func (export "canister_query root_q") (call $answer)))`);

// Every cost_* import, each called from its own update method.
const COST_CALLER = wat(`(module
  (import "ic0" "cost_call" (func $call (param i64 i64 i32)))
  (import "ic0" "cost_create_canister" (func $create (param i32)))
  (import "ic0" "cost_http_request" (func $http (param i64 i64 i32)))
  (import "ic0" "cost_sign_with_ecdsa" (func $ecdsa (param i32 i32 i32 i32) (result i32)))
  (import "ic0" "cost_sign_with_schnorr" (func $schnorr (param i32 i32 i32 i32) (result i32)))
  (import "ic0" "cost_vetkd_derive_key" (func $vetkd (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "canister_update cost_call") (call $call (i64.const 3) (i64.const 10) (i32.const 0)))
  (func (export "canister_update cost_create_canister") (call $create (i32.const 0)))
  (func (export "canister_update cost_http_request") (call $http (i64.const 100) (i64.const 2000000) (i32.const 0)))
  (func (export "canister_update cost_sign_with_ecdsa") (drop (call $ecdsa (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 64))))
  (func (export "canister_update cost_sign_with_schnorr") (drop (call $schnorr (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 64))))
  (func (export "canister_update cost_vetkd_derive_key") (drop (call $vetkd (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 64)))))`);

function labWith(module: Uint8Array, lab = new ExecutionLab()): { lab: ExecutionLab; id: CanisterId } {
  const id = lab.createCanister();
  lab.installCode(id, module);
  return { lab, id };
}

const rejectText = (r: Response): string => (r.kind === "reject" ? r.message : `not a reject: ${r.kind}`);

test("item 4: ic0.root_key_size/copy hand out the executor's root key in an update; a non-replicated query may not call them (spec 'Overview of imports')", (t) => {
  const rootKeyDer = Uint8Array.from({ length: 133 }, (_, i) => (i * 7 + 1) & 0xff);
  const { lab, id } = labWith(ROOT_KEY_READER, new ExecutionLab({ executor: new WasmExecutor(undefined, { rootKeyDer }) }));
  const r = lab.updateRaw(id, "root", new Uint8Array()).response;
  t.deepEqual(r.kind === "reply" ? r.data : undefined, rootKeyDer);
  t.regex(rejectText(lab.queryRaw(id, "root_q", new Uint8Array()).response), /Canister violated contract: "ic0_root_key_size" cannot be executed in non replicated query mode/);
});

test("item 4: a replica gives ic0.root_key_* its subnet's certification key (the root of trust of a one-subnet IC)", (t) => {
  const rootKeyDer = Uint8Array.from({ length: 133 }, (_, i) => (i * 11 + 3) & 0xff);
  const id = subnetIdOf("a");
  const a = canisterIdFromU64(0n);
  const machine = new ExecutionStateMachine(new SimDisk(), {
    genesis: [{ id: a, wasm: ROOT_KEY_READER }],
    checkpointInterval: 10,
    subnet: { id, registry: Registry.of([{ name: "a", size: 1 }]), publicKeyDerOf: (s) => (s === id ? rootKeyDer : undefined) },
  });
  const ingress = { sender: "alice", body: "", sizeBytes: 50, expiryUs: timeUs(1e9), signature: "", id: "cc".repeat(32) as HashHex, nonce: 1, call: { canister: a, method: "root", argHex: "" } };
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00" as HashHex, ingress: [ingress], requiresFullStateHash: false });
  const status = machine.ingressStatus(ingress.id);
  t.is(status?.status, "completed", JSON.stringify(status));
  t.is(status !== undefined && "reply" in status ? status.reply : undefined, bytesToHex(rootKeyDer), "the reply (hex) is the key");
});

test("item 4: without a root key ic0.root_key_size traps, saying so", (t) => {
  const { lab, id } = labWith(ROOT_KEY_READER);
  t.regex(rejectText(lab.updateRaw(id, "root", new Uint8Array()).response), /ic0\.root_key_size: this executor was given no root key/);
});

test("item 4: every ic0.cost_* import is accepted at install and answers (values: cost-functions.test.ts)", (t) => {
  const { lab, id } = labWith(COST_CALLER);
  for (const name of ["cost_call", "cost_create_canister", "cost_http_request", "cost_sign_with_ecdsa", "cost_sign_with_schnorr", "cost_vetkd_derive_key"]) {
    // The methods never reply: getting that reject (not a trap) shows the import ran and returned.
    t.regex(rejectText(lab.updateRaw(id, name, new Uint8Array()).response), /did not reply|no reply|not reply/i, name);
  }
});

// `twice` asks for a best-effort response twice on one call; `renewed` once on each of two calls
// (call_new starts a new call); both reply when they get through.
const BEST_EFFORT = wat(`(module
  (import "ic0" "call_new" (func $new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_with_best_effort_response" (func $bestEffort (param i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 0) "raw_rand")
  (func $newCall (call $new (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "canister_update twice") (call $newCall) (call $bestEffort (i32.const 10)) (call $bestEffort (i32.const 10)) (call $reply))
  (func (export "canister_update renewed")
    (call $newCall) (call $bestEffort (i32.const 10)) (call $newCall) (call $bestEffort (i32.const 300)) (call $reply)))`);

test("item 4: ic0.call_with_best_effort_response may be called at most once per call under construction (spec 'Inter-canister method calls'; the text is the replica's, rs/embedders/src/wasmtime_embedder/system_api.rs)", (t) => {
  const { lab, id } = labWith(BEST_EFFORT);
  t.regex(rejectText(lab.updateRaw(id, "twice", new Uint8Array()).response), /Canister violated contract: ic0_call_with_best_effort_response failed because a timeout is already set\./);
  t.is(lab.updateRaw(id, "renewed", new Uint8Array()).response.kind, "reply", "call_new starts a call that may ask again");
});
