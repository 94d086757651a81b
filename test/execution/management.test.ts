// The management canister (aaaaa-aa) through Candid, as an agent would call it (IC interface spec
// "The IC management canister"): create, install, status, settings, snapshots, stop, delete,
// raw_rand.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { gzipSync } from "node:zlib";
import { sha256 } from "@noble/hashes/sha2.js";
import { ExecutionLab, LabError, MANAGEMENT_CANISTER, MANAGEMENT_TYPES, RejectCode, type CanisterId, type PrincipalText } from "../../harness/execution/index.ts";
import { fixture, settingsRecord, wat } from "./helpers.ts";
import { IC_MANAGEMENT_METHODS } from "../../harness/execution/management.ts";

const T = MANAGEMENT_TYPES;
const ic = MANAGEMENT_CANISTER as string as CanisterId;
const call = (lab: ExecutionLab, method: keyof typeof T, arg: unknown, caller?: PrincipalText): unknown[] => {
  const types = T[method];
  return lab.update(ic, method, types.arg === undefined ? [] : [types.arg], types.arg === undefined ? [] : [arg], [...types.ret], caller === undefined ? {} : { caller });
};
const me = "fo76k-ecero-uccwk-zx7jh-w5c7w-4uo7t-y5j4z-m7fiq-z6sgk-vobym-cae" as PrincipalText;

test("create, install, query status, call, snapshot, stop and delete through aaaaa-aa", (t) => {
  const lab = new ExecutionLab();
  const [{ canister_id }] = call(lab, "provisional_create_canister_with_cycles", { amount: [123_000n], settings: [], specified_id: [], sender_canister_version: [] }, me) as [
    { canister_id: Principal },
  ];
  const id = canister_id.toText() as CanisterId;
  t.deepEqual(lab.canister(id).controllers, [me]);
  const wasm = fixture("motoko/counter.classic.wasm");
  call(lab, "install_code", { mode: { install: null }, canister_id, wasm_module: wasm, arg: new Uint8Array(), sender_canister_version: [] }, me);
  lab.update(id, "inc", [], [], [IDL.Nat]);

  const [status] = call(lab, "canister_status", { canister_id }, me) as [Record<string, unknown>];
  t.deepEqual(status["status"], { running: null });
  t.deepEqual([...((status["module_hash"] as [Uint8Array])[0] ?? [])], [...sha256(wasm)]);
  t.is(status["cycles"], 123_000n);
  t.deepEqual((status["settings"] as { controllers: Principal[] }).controllers.map((p) => p.toText()), [me]);

  const [snap] = call(lab, "take_canister_snapshot", { canister_id, replace_snapshot: [] }, me) as [{ id: Uint8Array; total_size: bigint }];
  t.true(snap.total_size > 0n);
  lab.update(id, "inc", [], [], [IDL.Nat]);
  const [list] = call(lab, "list_canister_snapshots", { canister_id }, me) as [{ id: Uint8Array }[]];
  t.is(list.length, 1);
  call(lab, "load_canister_snapshot", { canister_id, snapshot_id: snap.id, sender_canister_version: [] }, me);
  t.deepEqual(lab.query(id, "get", [], [], [IDL.Nat]), [1n]);
  call(lab, "delete_canister_snapshot", { canister_id, snapshot_id: snap.id }, me);
  t.is((call(lab, "list_canister_snapshots", { canister_id }, me)[0] as unknown[]).length, 0);

  // Upgrade with the variant's optional record, as agents send it.
  call(lab, "install_code", { mode: { upgrade: [{ skip_pre_upgrade: [], wasm_memory_persistence: [] }] }, canister_id, wasm_module: wasm, arg: new Uint8Array(), sender_canister_version: [] }, me);
  t.deepEqual(lab.query(id, "get", [], [], [IDL.Nat]), [1n]);
  t.deepEqual(lab.query(id, "upgradeCount", [], [], [IDL.Nat]), [1n]);

  call(lab, "provisional_top_up_canister", { canister_id, amount: 7n }, me);
  t.is(lab.cyclesBalance(id), 123_007n);
  call(lab, "stop_canister", { canister_id }, me);
  t.deepEqual((call(lab, "canister_status", { canister_id }, me)[0] as { status: unknown }).status, { stopped: null });
  call(lab, "delete_canister", { canister_id }, me);
  t.throws(() => lab.canister(id), { message: /was deleted/ });
});

test("controllers are enforced and can be changed with update_settings", (t) => {
  const lab = new ExecutionLab();
  const [{ canister_id }] = call(lab, "create_canister", { settings: [], sender_canister_version: [] }, me) as [{ canister_id: Principal }];
  const other = "2vxsx-fae" as PrincipalText;
  const e = t.throws(() => call(lab, "canister_status", { canister_id }, other), { instanceOf: LabError });
  t.is(e?.code, RejectCode.CanisterError);
  t.regex(e?.message ?? "", /Only the controllers of the canister \S+ can control it/);
  const settings = settingsRecord({ controllers: [[Principal.fromText(other)]], compute_allocation: [10n] });
  call(lab, "update_settings", { canister_id, settings, sender_canister_version: [] }, me);
  const id = canister_id.toText() as CanisterId;
  t.deepEqual(lab.canister(id).controllers, [other]);
  t.is(lab.canister(id).computeAllocationPercent, 10);
  t.throws(() => call(lab, "canister_status", { canister_id }, me), { message: /Only the controllers of the canister \S+ can control it/ });
});

test("raw_rand is deterministic per seed; unknown methods are rejected", (t) => {
  const bytes = (seed: number) => (call(new ExecutionLab({ seed }), "raw_rand", undefined)[0] as Uint8Array).slice();
  t.deepEqual(bytes(1), bytes(1));
  t.notDeepEqual(bytes(1), bytes(2));
  t.is(bytes(1).length, 32);
  const lab = new ExecutionLab();
  const r = lab.updateRaw(ic, "sign_with_ecdsa", IDL.encode([], []));
  t.is(r.response.kind, "reject");
  if (r.response.kind === "reject") t.is(r.response.code, RejectCode.DestinationInvalid);
});

// Expected texts and codes: dfinity/ic rs/execution_environment — execution_environment.rs (an
// unknown method: ParseError::VariantNotFound → CanisterMethodNotFound; `candid_error_to_user_error`
// → CanisterContractViolation "Error decoding candid: …"), canister_manager/types.rs
// (CanisterIdAlreadyExists with ErrorHelp::InternalError; the ComputeAllocation range error, whose
// own test expects "got 1_000"); method names: the interface spec's ic.did `service ic`.
test("issue 15 item 1: management rejects carry the IC's codes and texts (IC0536, IC0504, IC0205)", (t) => {
  const lab = new ExecutionLab();
  const create = (arg: Record<string, unknown>) =>
    lab.updateRaw(ic, "provisional_create_canister_with_cycles", IDL.encode([T.provisional_create_canister_with_cycles.arg], [{ amount: [], settings: [], specified_id: [], sender_canister_version: [], ...arg }]), { caller: me }).response;

  t.like(lab.updateRaw(ic, "start", IDL.encode([], [])).response, {
    kind: "reject",
    code: RejectCode.CanisterError,
    errorCode: "IC0536",
    message: "Management canister has no method 'start'",
  });
  const unmodelled = lab.updateRaw(ic, "sign_with_schnorr", IDL.encode([], [])).response;
  t.like(unmodelled, { kind: "reject", code: RejectCode.DestinationInvalid });
  t.regex(unmodelled.kind === "reject" ? unmodelled.message : "", /has a method 'sign_with_schnorr'; subnetlab does not model it/, "an IC method the lab lacks says so");

  const garbage = lab.updateRaw(ic, "canister_status", Uint8Array.of(1, 2, 3)).response;
  t.like(garbage, { kind: "reject", code: RejectCode.CanisterError, errorCode: "IC0504" });
  t.regex(garbage.kind === "reject" ? garbage.message : "", /^Error decoding candid: ./);

  const first = create({});
  t.is(first.kind, "reply");
  const [{ canister_id: taken }] = IDL.decode([...T.provisional_create_canister_with_cycles.ret], first.kind === "reply" ? first.data : new Uint8Array()) as unknown as [{ canister_id: Principal }];
  t.like(create({ specified_id: [taken] }), {
    kind: "reject",
    code: RejectCode.SysTransient,
    errorCode: "IC0205",
    message: `Unsuccessful canister creation: canister id ${taken.toText()} already exists.\nThis is an internal error on the IC. Please report it to IC devs on the forum: https://forum.dfinity.org`,
  });

  const tooMuch = { controllers: [], compute_allocation: [1000n], memory_allocation: [], freezing_threshold: [], reserved_cycles_limit: [], log_visibility: [], wasm_memory_limit: [], wasm_memory_threshold: [], environment_variables: [] };
  t.like(create({ settings: [tooMuch] }), {
    kind: "reject",
    code: RejectCode.CanisterError,
    errorCode: "IC0504",
    message: "ComputeAllocation expected to be in the range [0..100], got 1_000",
  });
  const update = lab.updateRaw(ic, "update_settings", IDL.encode([T.update_settings.arg], [{ canister_id: taken, settings: { ...tooMuch, compute_allocation: [1_234_567n] }, sender_canister_version: [] }]), { caller: me }).response;
  t.like(update, { kind: "reject", errorCode: "IC0504", message: "ComputeAllocation expected to be in the range [0..100], got 1_234_567" });
});

test("every management method subnetlab serves is one of the IC's (ic.did), so no lab-only method hides an IC0536", (t) => {
  t.deepEqual(Object.keys(T).filter((method) => !IC_MANAGEMENT_METHODS.has(method)), []);
});

test("a canister can call the management canister (raw_rand) and gets the reply in its callback", (t) => {
  // call_new(aaaaa-aa = empty principal, "raw_rand"), arg DIDL\\00\\00; the reply callback forwards
  // the Candid reply it received as its own reply.
  const lab = new ExecutionLab({ seed: 9 });
  const id = lab.createCanister();
  lab.installCode(
    id,
    wat(`(module
      (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
      (import "ic0" "call_data_append" (func $append_arg (param i32 i32)))
      (import "ic0" "call_perform" (func $perform (result i32)))
      (import "ic0" "msg_arg_data_size" (func $size (result i32)))
      (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (memory 1) (table 1 funcref) (elem (i32.const 0) $on_reply)
      (data (i32.const 0) "raw_rand") (data (i32.const 16) "DIDL\\00\\00")
      (func $on_reply (param i32)
        (call $copy (i32.const 100) (i32.const 0) (call $size))
        (call $append (i32.const 100) (call $size)) (call $reply))
      (func (export "canister_update rand")
        (call $call_new (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
        (call $append_arg (i32.const 16) (i32.const 6))
        (drop (call $perform))))`),
  );
  const r = lab.updateRaw(id, "rand", new Uint8Array());
  t.is(r.response.kind, "reply");
  const [bytes] = IDL.decode([IDL.Vec(IDL.Nat8)], (r.response as { data: Uint8Array }).data) as unknown as [Uint8Array];
  t.is(bytes.length, 32);
  t.deepEqual([...bytes], [...(call(new ExecutionLab({ seed: 9 }), "raw_rand", undefined)[0] as Uint8Array)], "same seed, same first draw");
});

test("in a reply callback, msg_caller is the caller of the call being answered", (t) => {
  // The reply callback of a raw_rand call replies with msg_caller: the ingress sender, not the
  // canister itself (the callback runs in the original call context).
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(
    id,
    wat(`(module
      (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
      (import "ic0" "call_data_append" (func $append_arg (param i32 i32)))
      (import "ic0" "call_perform" (func $perform (result i32)))
      (import "ic0" "msg_caller_size" (func $size (result i32)))
      (import "ic0" "msg_caller_copy" (func $copy (param i32 i32 i32)))
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (memory 1) (table 1 funcref) (elem (i32.const 0) $on_reply)
      (data (i32.const 0) "raw_rand") (data (i32.const 16) "DIDL\\00\\00")
      (func $on_reply (param i32)
        (call $copy (i32.const 100) (i32.const 0) (call $size))
        (call $append (i32.const 100) (call $size)) (call $reply))
      (func (export "canister_update who")
        (call $call_new (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
        (call $append_arg (i32.const 16) (i32.const 6))
        (drop (call $perform))))`),
  );
  const r = lab.updateRaw(id, "who", new Uint8Array(), { caller: me });
  t.is(r.response.kind, "reply");
  if (r.response.kind === "reply") t.is(Principal.fromUint8Array(r.response.data).toText(), me);
});

// Issue 12 item 7: install_code accepts gzip-compressed modules as the IC does (interface spec
// "Canister module format"); the module hash is that of the bytes as uploaded (what dfx compares
// against a local .wasm.gz), and the canister runs the uncompressed module.
test("item 7: install_code takes a gzip-compressed module; module_hash is the hash of the compressed bytes", (t) => {
  const lab = new ExecutionLab();
  const [{ canister_id }] = call(lab, "provisional_create_canister_with_cycles", { amount: [], settings: [], specified_id: [], sender_canister_version: [] }, me) as [{ canister_id: Principal }];
  const gz = gzipSync(fixture("motoko/counter.classic.wasm"));
  t.deepEqual([...gz.subarray(0, 3)], [0x1f, 0x8b, 0x08], "a gzip stream (RFC 1952 magic)");
  call(lab, "install_code", { mode: { install: null }, canister_id, wasm_module: gz, arg: new Uint8Array(), sender_canister_version: [] }, me);
  const id = canister_id.toText() as CanisterId;
  lab.update(id, "inc", [], [], [IDL.Nat]);
  t.deepEqual(lab.query(id, "get", [], [], [IDL.Nat]), [1n]);
  const [status] = call(lab, "canister_status", { canister_id }, me) as [{ module_hash: [Uint8Array] }];
  t.deepEqual([...status.module_hash[0]], [...sha256(gz)]);
  // A gzip stream that is not a Wasm module inside, and a broken gzip stream, are refused.
  for (const bad of [gzipSync(new Uint8Array([1, 2, 3])), Uint8Array.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3])]) {
    t.throws(() => call(lab, "install_code", { mode: { reinstall: null }, canister_id, wasm_module: bad, arg: new Uint8Array(), sender_canister_version: [] }, me), { message: /IC0505\): Error from Canister \S+: Canister's Wasm module is not valid/ });
  }
});
