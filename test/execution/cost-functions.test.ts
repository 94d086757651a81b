// Issue 15 item 4: the ic0.cost_* System API functions (interface specification, "Cycle cost
// calculation"). Expected values follow from the replica's fees for a 13-node application subnet
// (dfinity/ic rs/config/src/subnet_config.rs: creation 500 B, call 260,000 + 1,000/byte, message
// execution 5 M + 10 per 10 instructions — 20 for Wasm64 —, 40 B instructions per message,
// ECDSA/Schnorr/VetKD 10 B, HTTP 3 M + 60,000·n + 400/request byte + 800/response byte) and its
// formulas (rs/cycles_account_manager/src/lib.rs: `scale_cost` = fee · n / 13 rounded down,
// `xnet_call_total_fee`, `http_request_fee`; the 2 MiB response prepayment is
// MAX_INTER_CANISTER_PAYLOAD_IN_BYTES, rs/types/types/src/messages.rs). Threshold keys are looked
// up as `get_key_subnet_details` does (sandbox_safe_system_state.rs): the largest subnet holding
// the key sets the scale; no such key → 2.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { ExecutionLab, type CanisterId, type LabOptions, type Response, type ThresholdKey } from "../../harness/execution/index.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { Registry, subnetIdOf } from "../../harness/routing/registry.ts";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { height, timeUs, type HashHex } from "../../harness/types.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { fixture, u32le, wat } from "./helpers.ts";
import { IDL } from "@dfinity/candid";

// Methods take their inputs from the argument and reply with the 16 bytes the function wrote
// (cost_call, cost_http_request: two little-endian u64 in; cost_create_canister: no input).
// The threshold ones take a u32 curve code and the key name, and reply with the u32 result and the
// 16 bytes at `dst`, which start as 0xAA so that "left unchanged" is visible.
const COSTS = wat(`(module
  (import "ic0" "msg_arg_data_size" (func $argSize (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $argCopy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "cost_call" (func $costCall (param i64 i64 i32)))
  (import "ic0" "cost_create_canister" (func $costCreate (param i32)))
  (import "ic0" "cost_http_request" (func $costHttp (param i64 i64 i32)))
  (import "ic0" "cost_sign_with_ecdsa" (func $ecdsa (param i32 i32 i32 i32) (result i32)))
  (import "ic0" "cost_sign_with_schnorr" (func $schnorr (param i32 i32 i32 i32) (result i32)))
  (import "ic0" "cost_vetkd_derive_key" (func $vetkd (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (func $readArg (call $argCopy (i32.const 1024) (i32.const 0) (call $argSize)))
  (func $reply16 (call $append (i32.const 0) (i32.const 16)) (call $reply))
  (func $prepareThreshold
    (call $readArg)
    (memory.fill (i32.const 100) (i32.const 0xAA) (i32.const 16)))
  (func $replyThreshold (param $result i32)
    (i32.store (i32.const 96) (local.get $result))
    (call $append (i32.const 96) (i32.const 20)) (call $reply))
  (func (export "canister_update call")
    (call $readArg) (call $costCall (i64.load (i32.const 1024)) (i64.load (i32.const 1032)) (i32.const 0)) (call $reply16))
  (func (export "canister_query call_q")
    (call $readArg) (call $costCall (i64.load (i32.const 1024)) (i64.load (i32.const 1032)) (i32.const 0)) (call $reply16))
  (func (export "canister_update create") (call $costCreate (i32.const 0)) (call $reply16))
  (func (export "canister_update http")
    (call $readArg) (call $costHttp (i64.load (i32.const 1024)) (i64.load (i32.const 1032)) (i32.const 0)) (call $reply16))
  (func (export "canister_update ecdsa") (call $prepareThreshold)
    (call $replyThreshold (call $ecdsa (i32.const 1028) (i32.sub (call $argSize) (i32.const 4)) (i32.load (i32.const 1024)) (i32.const 100))))
  (func (export "canister_update schnorr") (call $prepareThreshold)
    (call $replyThreshold (call $schnorr (i32.const 1028) (i32.sub (call $argSize) (i32.const 4)) (i32.load (i32.const 1024)) (i32.const 100))))
  (func (export "canister_update vetkd") (call $prepareThreshold)
    (call $replyThreshold (call $vetkd (i32.const 1028) (i32.sub (call $argSize) (i32.const 4)) (i32.load (i32.const 1024)) (i32.const 100))))
  (func (export "canister_update dst_out_of_bounds")
    (drop (call $ecdsa (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 65530))) (call $reply)))`);

const u64pair = (a: bigint, b: bigint): Uint8Array => {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setBigUint64(0, a, true);
  new DataView(bytes.buffer).setBigUint64(8, b, true);
  return bytes;
};
const u128 = (bytes: Uint8Array): bigint => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getBigUint64(0, true) | (view.getBigUint64(8, true) << 64n);
};
const replyOf = (r: Response): Uint8Array => {
  if (r.kind !== "reply") throw new Error(`not a reply: ${r.message}`);
  return r.data;
};

function labWith(options: LabOptions = {}): { lab: ExecutionLab; id: CanisterId } {
  const lab = new ExecutionLab(options);
  const id = lab.createCanister();
  lab.installCode(id, COSTS);
  return { lab, id };
}

const cost = (lab: ExecutionLab, id: CanisterId, method: string, arg: Uint8Array = new Uint8Array()): bigint =>
  u128(replyOf(lab.updateRaw(id, method, arg).response));

/** A threshold cost function's result code and the 16 bytes at dst (0xAA… when left unchanged). */
function threshold(lab: ExecutionLab, id: CanisterId, method: string, curve: number, keyName: string): { result: number; dst: Uint8Array } {
  const arg = new Uint8Array([...u32le(curve), ...new TextEncoder().encode(keyName)]);
  const data = replyOf(lab.updateRaw(id, method, arg).response);
  return { result: new DataView(data.buffer, data.byteOffset).getUint32(0, true), dst: data.slice(4, 20) };
}

const UNCHANGED = new Uint8Array(16).fill(0xaa);

test("cost_create_canister: 500 B cycles on a 13-node subnet, scaled by n/13 (subnet_config.rs canister_creation_fee)", (t) => {
  const { lab, id } = labWith();
  t.is(cost(lab, id, "create"), 500_000_000_000n);
  const big = labWith({ subnetSize: 34 });
  t.is(cost(big.lab, big.id, "create"), 1_307_692_307_692n, "500 B · 34 / 13, rounded down");
});

test("cost_call: call fee + request bytes + 2 MiB response prepayment + the 40 B-instruction callback (xnet_call_total_fee)", (t) => {
  const { lab, id } = labWith();
  // 260,000 + 1,000·(3 + 10) + 1,000·2,097,152 + (5,000,000 + 10·40,000,000,000/10)
  t.is(cost(lab, id, "call", u64pair(3n, 10n)), 42_102_425_000n);
  // The replica's own output for costCall(15, 1) on a 13-node subnet is 42,102,428,000
  // (dfinity/motoko test/run-drun-non-ci/test-cost/test-cost-create.mo, "Output local replica").
  t.is(cost(lab, id, "call", u64pair(15n, 1n)), 42_102_428_000n);
  t.is(u128(replyOf(lab.queryRaw(id, "call_q", u64pair(15n, 1n)).response)), 42_102_428_000n, "available in queries too (* s)");
  const big = labWith({ subnetSize: 34 });
  // Each part is scaled and rounded down on its own: 680,000 + 34,000 + 5,484,859,076 + 104,628,461,538.
  t.is(cost(big.lab, big.id, "call", u64pair(3n, 10n)), 110_114_034_614n);
});

test("cost_http_request: (3 M + 60,000·n + 400·request bytes + 800·max response bytes) · n (http_request_fee)", (t) => {
  const { lab, id } = labWith();
  t.is(cost(lab, id, "http", u64pair(100n, 2_000_000n)), (3_000_000n + 60_000n * 13n + 400n * 100n + 800n * 2_000_000n) * 13n);
  t.is(cost(lab, id, "http", u64pair(100n, 2_000_000n)), 20_849_660_000n);
  const big = labWith({ subnetSize: 34 });
  t.is(cost(big.lab, big.id, "http", u64pair(0n, 1_000n)), (3_000_000n + 60_000n * 34n + 800n * 1_000n) * 34n);
});

test("cost_sign_with_ecdsa/schnorr, cost_vetkd_derive_key: 0 and the cost for a key some subnet holds, 1 for an unknown curve or algorithm, 2 for an unknown key name; dst unchanged unless 0 (spec)", (t) => {
  const keys: ThresholdKey[] = [
    { scheme: "ecdsa", curve: "secp256k1", name: "key_1", subnetSize: 34 },
    { scheme: "ecdsa", curve: "secp256k1", name: "key_1", subnetSize: 13 },
    { scheme: "schnorr", curve: "ed25519", name: "test_key_1", subnetSize: 13 },
    { scheme: "vetkd", curve: "bls12_381_g2", name: "key_1", subnetSize: 34 },
  ];
  const { lab, id } = labWith({ thresholdKeys: keys });
  const ecdsa = threshold(lab, id, "ecdsa", 0, "key_1");
  t.is(ecdsa.result, 0);
  // 10 B · 34 / 13: the largest subnet holding the key sets the price; ic-cdk's SIGN_WITH_ECDSA_FEE for key_1 is this number.
  t.is(u128(ecdsa.dst), 26_153_846_153n);
  t.deepEqual(threshold(lab, id, "ecdsa", 1, "key_1"), { result: 1, dst: UNCHANGED }, "secp256k1 is curve 0, the only one");
  t.deepEqual(threshold(lab, id, "ecdsa", 0, "key_2"), { result: 2, dst: UNCHANGED });
  const schnorr = threshold(lab, id, "schnorr", 1, "test_key_1");
  t.deepEqual([schnorr.result, u128(schnorr.dst)], [0, 10_000_000_000n], "ed25519 is algorithm 1");
  t.deepEqual(threshold(lab, id, "schnorr", 0, "test_key_1"), { result: 2, dst: UNCHANGED }, "bip340secp256k1 has no key of that name");
  t.deepEqual(threshold(lab, id, "schnorr", 2, "test_key_1"), { result: 1, dst: UNCHANGED });
  const vetkd = threshold(lab, id, "vetkd", 0, "key_1");
  t.deepEqual([vetkd.result, u128(vetkd.dst)], [0, 26_153_846_153n]);
  t.deepEqual(threshold(lab, id, "vetkd", -1, "key_1"), { result: 1, dst: UNCHANGED });
});

test("without threshold keys (the default: subnetlab models no threshold signing) every key name answers 2", (t) => {
  const { lab, id } = labWith();
  t.deepEqual(threshold(lab, id, "ecdsa", 0, "key_1"), { result: 2, dst: UNCHANGED });
  t.deepEqual(threshold(lab, id, "schnorr", 0, "key_1"), { result: 2, dst: UNCHANGED });
  t.deepEqual(threshold(lab, id, "vetkd", 0, "key_1"), { result: 2, dst: UNCHANGED });
  t.deepEqual(threshold(lab, id, "ecdsa", 7, "key_1"), { result: 1, dst: UNCHANGED }, "the curve is checked first");
});

test("a cost function traps when dst + 16 is outside the memory, whatever the result would be (spec)", (t) => {
  const { lab, id } = labWith();
  const r = lab.updateRaw(id, "dst_out_of_bounds", new Uint8Array()).response;
  t.is(r.kind, "reject");
  t.regex(r.kind === "reject" ? r.message : "", /^Error from Canister .*: Canister violated contract: /);
});

test("a replica scales the cost functions by the node count of the canister's own subnet (the registry's size)", (t) => {
  const subnet = subnetIdOf("a");
  const a = canisterIdFromU64(0n);
  const machine = new ExecutionStateMachine(new SimDisk(), {
    genesis: [{ id: a, wasm: COSTS }],
    checkpointInterval: 10,
    subnet: { id: subnet, registry: Registry.of([{ name: "a", size: 4 }]) },
  });
  const ingress = { sender: "alice", body: "", sizeBytes: 50, expiryUs: timeUs(1e9), signature: "", id: "cd".repeat(32) as HashHex, nonce: 1, call: { canister: a, method: "create", argHex: "" } };
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00" as HashHex, ingress: [ingress], requiresFullStateHash: false });
  const status = machine.ingressStatus(ingress.id);
  const reply = status !== undefined && "reply" in status ? status.reply : undefined;
  const expected = new Uint8Array(16);
  new DataView(expected.buffer).setBigUint64(0, (500_000_000_000n * 4n) / 13n, true);
  t.is(reply, bytesToHex(expected), "500 B · 4 / 13 for a 4-node subnet");
});

// The same through Motoko's primitives, compiled by the real compiler (fixture motoko/costs.mo).
// Classic persistence is a 32-bit canister; enhanced orthogonal persistence a 64-bit one, whose
// response-callback prepayment counts instructions at the Wasm64 rate (20 per 10:
// subnet_config.rs WASM64_INSTRUCTION_COST_OVERHEAD).
for (const mode of ["classic", "eop"] as const) {
  test(`Motoko (${mode}): Prim.costCreateCanister, costCall, costHttpRequest, costSignWithEcdsa/Schnorr`, (t) => {
    const lab = new ExecutionLab({ thresholdKeys: [{ scheme: "ecdsa", curve: "secp256k1", name: "key_1", subnetSize: 34 }] });
    const id = lab.createCanister();
    lab.installCode(id, fixture(`motoko/costs.${mode}.wasm`));
    t.deepEqual(lab.update(id, "createCanister", [], [], [IDL.Nat]), [500_000_000_000n]);
    const callCost = mode === "classic" ? 42_102_428_000n : 260_000n + 16_000n + 2_097_152_000n + 5_000_000n + 80_000_000_000n;
    t.deepEqual(lab.update(id, "call", [IDL.Nat64, IDL.Nat64], [15n, 1n], [IDL.Nat]), [callCost]);
    t.deepEqual(lab.query(id, "callQuery", [IDL.Nat64, IDL.Nat64], [15n, 1n], [IDL.Nat]), [callCost]);
    t.deepEqual(lab.update(id, "httpRequest", [IDL.Nat64, IDL.Nat64], [100n, 2_000_000n], [IDL.Nat]), [20_849_660_000n]);
    t.deepEqual(lab.update(id, "ecdsa", [IDL.Text, IDL.Nat32], ["key_1", 0], [IDL.Nat32, IDL.Opt(IDL.Nat)]), [0, [26_153_846_153n]]);
    t.deepEqual(lab.update(id, "ecdsa", [IDL.Text, IDL.Nat32], ["key_1", 1], [IDL.Nat32, IDL.Opt(IDL.Nat)]), [1, []]);
    t.deepEqual(lab.update(id, "schnorr", [IDL.Text, IDL.Nat32], ["key_1", 0], [IDL.Nat32, IDL.Opt(IDL.Nat)]), [2, []]);
  });
}
