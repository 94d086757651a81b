// Canister lifecycle (IC interface spec "IC management canister"; research/ic-protocol.md §4.8,
// §4.9): install / reinstall / upgrade (atomic), stop / start / delete, controllers, uninstall,
// and canister snapshots — with Motoko canisters in both persistence modes.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import {
  canisterIdFromU64,
  ExecutionLab,
  LabError,
  lifecycle,
  ModuleCache,
  moduleHash,
  RejectCode,
  WasmExecutor,
  type PrincipalText,
} from "../../harness/execution/index.ts";
import { fixture, readU64, wat } from "./helpers.ts";

const none = new Uint8Array();
const count = (lab: ExecutionLab, id: ReturnType<ExecutionLab["createCanister"]>) => lab.query(id, "get", [], [], [IDL.Nat])[0];

for (const flavour of ["classic", "eop"] as const) {
  test(`Motoko (${flavour}): install, upgrade keeps stable state, reinstall wipes it`, (t) => {
    const lab = new ExecutionLab();
    const id = lab.createCanister();
    const wasm = fixture(`motoko/counter.${flavour}.wasm`);
    lab.installCode(id, wasm);
    t.truthy(lab.canister(id).execution);
    t.throws(() => lab.installCode(id, wasm), { message: /not empty/ }, "install twice is refused");
    for (let i = 0; i < 3; i++) lab.update(id, "inc", [], [], [IDL.Nat]);
    lab.upgradeCanister(id, wasm);
    t.is(count(lab, id), 3n, "persistent actor variables survive the upgrade");
    t.deepEqual(lab.query(id, "upgradeCount", [], [], [IDL.Nat]), [1n], "postupgrade ran once");
    lab.update(id, "inc", [], [], [IDL.Nat]);
    lab.upgradeCanister(id, wasm);
    t.is(count(lab, id), 4n);
    t.deepEqual(lab.query(id, "upgradeCount", [], [], [IDL.Nat]), [2n]);
    lab.reinstallCode(id, wasm);
    t.is(count(lab, id), 0n, "reinstall starts from scratch");
    t.deepEqual(lab.query(id, "upgradeCount", [], [], [IDL.Nat]), [0n]);
  });

  test(`Motoko (${flavour}): snapshot take, load, list, delete`, (t) => {
    const lab = new ExecutionLab();
    const id = lab.createCanister();
    lab.installCode(id, fixture(`motoko/counter.${flavour}.wasm`));
    lab.update(id, "inc", [], [], [IDL.Nat]);
    const s1 = lab.takeSnapshot(id);
    lab.update(id, "inc", [], [], [IDL.Nat]);
    lab.update(id, "inc", [], [], [IDL.Nat]);
    const s2 = lab.takeSnapshot(id);
    t.deepEqual(
      lab.listSnapshots(id).map((s) => s.id),
      [s1.id, s2.id],
    );
    t.true(s1.totalSizeBytes > 0n);
    lab.loadSnapshot(id, s1.id);
    t.is(count(lab, id), 1n, "heap restored from snapshot 1");
    lab.update(id, "inc", [], [], [IDL.Nat]);
    t.is(count(lab, id), 2n, "the canister keeps working after a load");
    lab.loadSnapshot(id, s2.id);
    t.is(count(lab, id), 3n);
    // A snapshot survives an upgrade and restores the pre-upgrade module state.
    lab.upgradeCanister(id, fixture(`motoko/counter.${flavour}.wasm`));
    t.deepEqual(lab.query(id, "upgradeCount", [], [], [IDL.Nat]), [1n]);
    lab.loadSnapshot(id, s2.id);
    t.deepEqual(lab.query(id, "upgradeCount", [], [], [IDL.Nat]), [0n]);
    lab.deleteSnapshot(id, s1.id);
    t.deepEqual(
      lab.listSnapshots(id).map((s) => s.id),
      [s2.id],
    );
    t.throws(() => lab.loadSnapshot(id, s1.id), { message: /^Could not find the snapshot ID \S+ for canister \S+\.\nUse the `list_canister_snapshot` API/ });
    // replace_snapshot swaps one snapshot for a new one.
    const s3 = lab.takeSnapshot(id, { replaceSnapshot: s2.id });
    t.deepEqual(
      lab.listSnapshots(id).map((s) => s.id),
      [s3.id],
    );
  });
}

test("snapshots capture stable memory and certified data, and are limited to 10 per canister", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("c/counter.wasm"));
  lab.updateRaw(id, "stable_inc", none);
  lab.updateRaw(id, "set_certified", new Uint8Array([1, 2, 3]));
  const snap = lab.takeSnapshot(id);
  lab.updateRaw(id, "stable_inc", none);
  lab.updateRaw(id, "set_certified", new Uint8Array([9]));
  lab.loadSnapshot(id, snap.id);
  t.is(readU64((lab.queryRaw(id, "get_stable", none).response as { data: Uint8Array }).data), 1n);
  t.deepEqual([...lab.canister(id).certifiedData], [1, 2, 3]);
  for (let i = 1; i < lifecycle.MAX_SNAPSHOTS_PER_CANISTER; i++) lab.takeSnapshot(id);
  t.is(lab.listSnapshots(id).length, 10);
  t.throws(() => lab.takeSnapshot(id), { message: /has reached the maximum number of snapshots allowed: 10\./ });
});

test("upgrade is atomic: a trap in pre_upgrade or post_upgrade rolls everything back", (t) => {
  const lab = new ExecutionLab({ queryCache: false });
  const id = lab.createCanister();
  lab.installCode(id, fixture("c/counter.wasm"));
  lab.updateRaw(id, "inc", none);
  lab.updateRaw(id, "stable_inc", none);
  const before = lab.canister(id);
  // New module: post_upgrade writes stable memory, then traps.
  const trapsInPost = wat(`(module
    (import "ic0" "stable64_write" (func $w (param i64 i64 i64)))
    (import "ic0" "trap" (func $trap (param i32 i32)))
    (memory 1) (data (i32.const 0) "nope")
    (func (export "canister_post_upgrade") (call $w (i64.const 0) (i64.const 0) (i64.const 4)) (call $trap (i32.const 0) (i32.const 4))))`);
  const e1 = t.throws(() => lab.upgradeCanister(id, trapsInPost), { instanceOf: LabError });
  // CanisterManagerError::Hypervisor: the trap as the IC reports it (rs/interfaces errors.rs).
  t.is(e1?.errorCode, "IC0503");
  t.regex(e1?.message ?? "", /^Error from Canister \S+: Canister called `ic0.trap` with message: 'nope'\.\nConsider gracefully handling/);
  t.is(lab.canister(id), before, "canister state untouched (C pre_upgrade's stable write undone)");
  t.is(readU64((lab.queryRaw(id, "get", none).response as { data: Uint8Array }).data), 1n);
  t.is(readU64((lab.queryRaw(id, "get_stable", none).response as { data: Uint8Array }).data), 1n);
  t.is(lab.canister(id).execution?.stableMemory.readPage(0)[8], 0, "pre_upgrade's write at offset 8 is not kept");
  // A module whose pre_upgrade traps cannot be upgraded away from (unless skip_pre_upgrade).
  const trapsInPre = wat(`(module (import "ic0" "trap" (func $trap (param i32 i32))) (memory 1)
    (func (export "canister_pre_upgrade") (call $trap (i32.const 0) (i32.const 0))))`);
  const other = lab.createCanister();
  lab.installCode(other, trapsInPre);
  const e2 = t.throws(() => lab.upgradeCanister(other, fixture("c/counter.wasm")));
  t.regex(e2?.message ?? "", /^Error from Canister \S+: Canister called `ic0.trap` with message: ''\.\n/);
  t.is(lab.canister(other).execution?.moduleHash, moduleHash(trapsInPre), "still the old module");
  lab.installCode(other, fixture("c/counter.wasm"), { mode: "upgrade", skipPreUpgrade: true });
  t.is(readU64((lab.queryRaw(other, "get", none).response as { data: Uint8Array }).data), 0n);
  // A successful C upgrade carries the heap counter through stable memory (pre → post).
  lab.upgradeCanister(id, fixture("c/counter.wasm"));
  t.is(readU64((lab.queryRaw(id, "get", none).response as { data: Uint8Array }).data), 1n);
});

test("ic0 calls not available in canister_pre_upgrade trap and abort the upgrade", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(
    id,
    wat(`(module (import "ic0" "msg_arg_data_size" (func $s (result i32)))
      (func (export "canister_pre_upgrade") (drop (call $s))))`),
  );
  const e = t.throws(() => lab.upgradeCanister(id, fixture("c/counter.wasm")));
  // The replica's wrong-mode text (rs/embedders/src/wasmtime_embedder/system_api.rs error_for, ApiType::as_str "pre upgrade").
  t.regex(e?.message ?? "", /Canister violated contract: "ic0_msg_arg_data_size" cannot be executed in pre upgrade mode\.\nCheck the ICP documentation/);
});

test("controllers: only controllers may install, stop, snapshot", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  const stranger = "2vxsx-fae" as PrincipalText;
  const e = t.throws(() => lab.installCode(id, fixture("c/counter.wasm"), { sender: stranger }), { instanceOf: LabError });
  t.is(e?.code, RejectCode.CanisterError);
  t.regex(e?.message ?? "", /Only the controllers of the canister \S+ can control it/);
  lab.installCode(id, fixture("c/counter.wasm"));
  t.throws(() => lab.stopCanister(id, stranger), { message: /Only the controllers of the canister \S+ can control it/ });
  t.throws(() => lab.takeSnapshot(id, { sender: stranger }), { message: /Only the controllers of the canister \S+ can control it/ });
  t.throws(() => lab.listSnapshots(id, stranger), { message: /Only the controllers of the canister \S+ can control it/ });
});

test("stop, start, delete: stopped canisters reject calls; only stopped ones can be deleted", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("c/counter.wasm"));
  t.throws(() => lab.deleteCanister(id), { message: /must be stopped/ });
  lab.stopCanister(id);
  t.is(lab.canister(id).status, "stopped");
  const r = lab.updateRaw(id, "inc", none);
  // Induction refuses it: IC0508 with StateError's text (rs/replicated_state replicated_state.rs).
  t.deepEqual(r.response, { kind: "reject", code: RejectCode.CanisterError, message: `Canister ${id} is stopped`, errorCode: "IC0508" });
  lab.startCanister(id);
  t.is(lab.updateRaw(id, "inc", none).response.kind, "reply");
  lab.stopCanister(id);
  lab.deleteCanister(id);
  t.throws(() => lab.canister(id), { message: /was deleted/ });
  // A new canister never reuses the id.
  t.not(lab.createCanister(), id);
});

test("a canister with an open call context goes Stopping, then Stopped when it closes", (t) => {
  const c = lifecycle.createCanister({ id: "rwlgt-iiaaa-aaaaa-aaaaa-cai" as never, controllers: ["2vxsx-fae" as PrincipalText], cycles: 0n });
  const open = {
    ...c,
    callContexts: [{ id: 0n as never, origin: { kind: "system" as const, task: "heartbeat" as const }, responded: false, availableCycles: 0n }],
  };
  const r = lifecycle.stopCanister(open, "2vxsx-fae" as PrincipalText);
  t.true(r.ok);
  if (!r.ok) return;
  t.is(r.canister.status, "stopping");
  t.is(lifecycle.finalizeStopping(r.canister).status, "stopping");
  t.is(lifecycle.finalizeStopping({ ...r.canister, callContexts: [] }).status, "stopped");
});

test("uninstall drops code and state, keeps id and cycles; calls are then rejected as empty", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister({ cycles: 123n });
  lab.installCode(id, fixture("c/counter.wasm"));
  lab.uninstallCode(id);
  t.is(lab.canister(id).execution, undefined);
  t.is(lab.cyclesBalance(id), 123n);
  const r = lab.updateRaw(id, "inc", none);
  t.is(r.response.kind, "reject");
  // HypervisorError::WasmModuleNotFound (rs/interfaces execution_environment/errors.rs): IC0537, reject code 5.
  if (r.response.kind === "reject") {
    t.is(r.response.code, RejectCode.CanisterError);
    t.is(r.response.errorCode, "IC0537");
    t.regex(r.response.message, /^Error from Canister \S+: Attempted to execute a message, but the canister contains no Wasm module\.\.\nPlease install code/);
  }
  lab.installCode(id, fixture("c/counter.wasm"));
  t.is(readU64((lab.updateRaw(id, "inc", none).response as { data: Uint8Array }).data), 1n);
});

test("lab helpers: setControllers hands control over; addCycles; time is monotonic", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister({ cycles: 10n });
  const other = "2vxsx-fae" as PrincipalText;
  lab.setControllers(id, [other]);
  t.deepEqual(lab.canister(id).controllers, [other]);
  t.throws(() => lab.installCode(id, fixture("c/counter.wasm")), { message: /Only the controllers of the canister \S+ can control it/ });
  lab.installCode(id, fixture("c/counter.wasm"), { sender: other });
  t.is(lab.addCycles(id, 5n), 15n);
  t.throws(() => lab.setTime(lab.timeNs - 1n), { instanceOf: RangeError });
  lab.setTime(lab.timeNs + 10n);
});

test("reinstall rejects open call contexts and late responses find no callback", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const sender = "2vxsx-fae" as PrincipalText;
  const params = { instructionLimit: 10n ** 10n, timeNs: 1n };
  const empty = lifecycle.createCanister({ id: canisterIdFromU64(1n), controllers: [sender], cycles: 10n ** 12n });
  const wasm = fixture("motoko/caller.classic.wasm");
  const installed = executor.installCode(empty, { mode: "install", wasmModule: wasm, arg: new Uint8Array(), sender }, params);
  if (!installed.ok) throw new Error(installed.message);
  const call = executor.executeMessage(
    installed.canister,
    { kind: "ingress", messageId: "i1", caller: sender, method: "callPing", arg: IDL.encode([IDL.Text, IDL.Nat], [canisterIdFromU64(2n), 1n]) },
    params,
  );
  t.is(call.outgoingCalls.length, 1, "the caller is now waiting for the callee");
  t.is(call.canister.callContexts.length, 1);
  const re = executor.installCode(call.canister, { mode: "reinstall", wasmModule: wasm, arg: new Uint8Array(), sender }, params);
  t.true(re.ok);
  if (!re.ok) return;
  t.deepEqual(re.canister.callContexts, []);
  t.deepEqual(re.canister.callbacks, []);
  t.is(re.responses?.length, 1);
  t.deepEqual(re.responses?.[0]?.origin, { kind: "ingress", messageId: "i1", caller: sender });
  t.is(re.responses?.[0]?.response.kind, "reject");
  const callbackId = call.outgoingCalls[0]?.callbackId;
  if (callbackId === undefined) return;
  const late = executor.executeMessage(re.canister, { kind: "response", callbackId, response: { kind: "reply", data: IDL.encode([IDL.Nat], [2n]) }, refundedCycles: 0n }, params);
  t.is(late.outcome.kind, "rejected");
  t.deepEqual(late.responses, []);
});
