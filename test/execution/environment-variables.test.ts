// Issue 15 item 4: canister environment variables. Expected behaviour is from the IC interface
// specification ("Environment Variables" under the System API; `environment_variables` in the
// management canister's canister_settings and definite_canister_settings) and the replica's
// limits (dfinity/ic rs/config/src/execution_environment.rs: 20 variables, names and values of at
// most 128 bytes).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { Principal } from "@dfinity/principal";
import { DEFAULT_SENDER, ExecutionLab, LabError, MANAGEMENT_CANISTER, MANAGEMENT_TYPES, RejectCode, type CanisterId, type Response } from "../../harness/execution/index.ts";
import { decodeCanisterSystemState, encodeCanisterSystemState, canisterStateHash } from "../../harness/state/canister-codec.ts";
import { IDL } from "@dfinity/candid";
import { fixture, settingsRecord, wat } from "./helpers.ts";

// count → u32 LE; name_at(u32 LE index) → name; get(name) → [exists] ++ value; value_of(name) →
// value (traps when missing, as ic0.env_var_value_size does).
const ENV_READER = wat(`(module
  (import "ic0" "msg_arg_data_size" (func $argSize (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $argCopy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "env_var_count" (func $count (result i32)))
  (import "ic0" "env_var_name_size" (func $nameSize (param i32) (result i32)))
  (import "ic0" "env_var_name_copy" (func $nameCopy (param i32 i32 i32 i32)))
  (import "ic0" "env_var_name_exists" (func $exists (param i32 i32) (result i32)))
  (import "ic0" "env_var_value_size" (func $valueSize (param i32 i32) (result i32)))
  (import "ic0" "env_var_value_copy" (func $valueCopy (param i32 i32 i32 i32 i32)))
  (memory 1)
  (func $arg (result i32) (local $n i32)
    (local.set $n (call $argSize)) (call $argCopy (i32.const 0) (i32.const 0) (local.get $n)) (local.get $n))
  (func (export "canister_query count")
    (i32.store (i32.const 1024) (call $count)) (call $append (i32.const 1024) (i32.const 4)) (call $reply))
  (func (export "canister_query name_at") (local $i i32) (local $n i32)
    (drop (call $arg)) (local.set $i (i32.load (i32.const 0)))
    (local.set $n (call $nameSize (local.get $i)))
    (call $nameCopy (local.get $i) (i32.const 1024) (i32.const 0) (local.get $n))
    (call $append (i32.const 1024) (local.get $n)) (call $reply))
  (func (export "canister_query get") (local $len i32) (local $vs i32)
    (local.set $len (call $arg))
    (i32.store8 (i32.const 1024) (call $exists (i32.const 0) (local.get $len)))
    (if (i32.load8_u (i32.const 1024)) (then
      (local.set $vs (call $valueSize (i32.const 0) (local.get $len)))
      (call $valueCopy (i32.const 0) (local.get $len) (i32.const 1025) (i32.const 0) (local.get $vs))))
    (call $append (i32.const 1024) (i32.add (i32.const 1) (local.get $vs))) (call $reply))
  (func (export "canister_query value_of") (local $len i32) (local $vs i32)
    (local.set $len (call $arg))
    (local.set $vs (call $valueSize (i32.const 0) (local.get $len)))
    (call $valueCopy (i32.const 0) (local.get $len) (i32.const 1024) (i32.const 0) (local.get $vs))
    (call $append (i32.const 1024) (local.get $vs)) (call $reply)))`);

const T = MANAGEMENT_TYPES;
const ic = MANAGEMENT_CANISTER as string as CanisterId;
const te = new TextEncoder();
const td = new TextDecoder();
type Vars = { name: string; value: string }[];

const settingsWith = (environment_variables: Vars) => settingsRecord({ environment_variables: [environment_variables] });

function createWith(lab: ExecutionLab, vars: Vars): CanisterId {
  const [{ canister_id }] = lab.update(ic, "create_canister", [T.create_canister.arg], [{ settings: [settingsWith(vars)], sender_canister_version: [] }], [...T.create_canister.ret], { caller: DEFAULT_SENDER }) as [
    { canister_id: Principal },
  ];
  return canister_id.toText() as CanisterId;
}

function updateSettings(lab: ExecutionLab, id: CanisterId, vars: Vars): void {
  lab.update(ic, "update_settings", [T.update_settings.arg], [{ canister_id: Principal.fromText(id), settings: settingsWith(vars), sender_canister_version: [] }], [], { caller: DEFAULT_SENDER });
}

const replyBytes = (r: Response): Uint8Array => {
  if (r.kind !== "reply") throw new Error(`expected a reply, got ${JSON.stringify(r)}`);
  return r.data;
};
const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);

test("item 4: environment_variables from create_canister are read by ic0.env_var_* in name order (spec 'Environment Variables')", (t) => {
  const lab = new ExecutionLab();
  const id = createWith(lab, [{ name: "ZED", value: "last" }, { name: "ALPHA", value: "first" }, { name: "MIDDLE", value: "" }]);
  lab.installCode(id, ENV_READER);
  t.deepEqual(replyBytes(lab.queryRaw(id, "count", new Uint8Array()).response), u32(3));
  const names = [0, 1, 2].map((i) => td.decode(replyBytes(lab.queryRaw(id, "name_at", u32(i)).response)));
  t.deepEqual(names, ["ALPHA", "MIDDLE", "ZED"], "indices follow the names' byte order, not the order given");
  t.deepEqual(replyBytes(lab.queryRaw(id, "get", te.encode("ZED")).response), Uint8Array.from([1, ...te.encode("last")]));
  t.deepEqual(replyBytes(lab.queryRaw(id, "get", te.encode("MIDDLE")).response), Uint8Array.from([1]), "an empty value exists");
  t.deepEqual(replyBytes(lab.queryRaw(id, "get", te.encode("zed")).response), Uint8Array.from([0]), "names are case-sensitive");
});

test("item 4: ic0.env_var_* trap on an index out of bounds, a missing name, a name over 128 bytes and non-UTF-8 (spec 'Environment Variables')", (t) => {
  const lab = new ExecutionLab();
  const id = createWith(lab, [{ name: "ONE", value: "1" }]);
  lab.installCode(id, ENV_READER);
  const rejectText = (method: string, arg: Uint8Array): string => {
    const r = lab.queryRaw(id, method, arg).response;
    t.is(r.kind, "reject", method);
    return r.kind === "reject" ? r.message : "";
  };
  t.regex(rejectText("name_at", u32(1)), /ic0\.env_var_name_size: index 1 is out of bounds \(1 environment variables\)/);
  t.regex(rejectText("value_of", te.encode("TWO")), /ic0\.env_var_value_size: no environment variable with this name/);
  t.regex(rejectText("get", te.encode("N".repeat(129))), /ic0\.env_var_name_exists: name of 129 bytes exceeds the maximum length of 128 bytes/);
  t.regex(rejectText("get", Uint8Array.from([0xff, 0xfe])), /ic0\.env_var_name_exists: the name is not valid UTF-8/);
  t.deepEqual(replyBytes(lab.queryRaw(id, "get", te.encode("N".repeat(128))).response), Uint8Array.from([0]), "128 bytes is a legal name");
});

test("item 4: update_settings replaces the variables, canister_status reports them, a canister without any sees none (management canister spec)", (t) => {
  const lab = new ExecutionLab();
  const id = createWith(lab, []);
  lab.installCode(id, ENV_READER);
  t.deepEqual(replyBytes(lab.queryRaw(id, "count", new Uint8Array()).response), u32(0));
  const before = lab.canister(id).version;
  updateSettings(lab, id, [{ name: "B", value: "2" }, { name: "A", value: "1" }]);
  t.is(lab.canister(id).version, before + 1n, "a settings change is a new canister version");
  t.deepEqual(replyBytes(lab.queryRaw(id, "get", te.encode("A")).response), Uint8Array.from([1, ...te.encode("1")]));
  const [status] = lab.update(ic, "canister_status", [T.canister_status.arg], [{ canister_id: Principal.fromText(id) }], [...T.canister_status.ret], { caller: DEFAULT_SENDER }) as [
    { settings: { environment_variables: Vars } },
  ];
  t.deepEqual(status.settings.environment_variables, [{ name: "A", value: "1" }, { name: "B", value: "2" }]);
  updateSettings(lab, id, []);
  t.deepEqual(replyBytes(lab.queryRaw(id, "count", new Uint8Array()).response), u32(0), "an empty list removes them all");
  t.is(lab.canister(id).environmentVariables, undefined);
});

// Texts and code: dfinity/ic rs/execution_environment/src/canister_manager/types.rs,
// CanisterManagerError::EnvironmentVariablesTooMany / NameTooLong / ValueTooLong →
// InvalidManagementPayload (IC0408, reject 4), no help line. Duplicate names: the lab's own text.
test("item 4: settings over the replica's limits are refused (rs/config/src/execution_environment.rs: 20 variables, 128-byte names and values)", (t) => {
  const lab = new ExecutionLab();
  const refused = (vars: Vars, code: RejectCode = RejectCode.CanisterReject): string => {
    const e = t.throws(() => createWith(lab, vars), { instanceOf: LabError });
    t.is(e?.code, code);
    return e?.message ?? "";
  };
  const many = Array.from({ length: 21 }, (_, i) => ({ name: `V${i}`, value: "" }));
  t.regex(refused(many), /\(code 4, IC0408\): Too many environment variables: 21 \(max: 20\)$/);
  t.regex(refused([{ name: "N".repeat(129), value: "" }]), new RegExp(`\\(code 4, IC0408\\): Environment variable name "${"N".repeat(129)}" exceeds the maximum allowed length of 128\\.$`));
  t.regex(refused([{ name: "V", value: "x".repeat(129) }]), new RegExp(`\\(code 4, IC0408\\): Environment variable value "${"x".repeat(129)}" exceeds the maximum allowed length of 128\\.$`));
  // canister_settings.rs UpdateSettingsError::DuplicateEnvironmentVariables.
  t.regex(refused([{ name: "V", value: "1" }, { name: "V", value: "2" }]), /\(code 4, IC0408\): Duplicate environment variables are not allowed$/);
  t.notThrows(() => createWith(lab, many.slice(1)), "20 variables are allowed");
});

test("item 4: environment variables survive a checkpoint; a canister without them keeps its v1 encoding", (t) => {
  const lab = new ExecutionLab();
  const id = createWith(lab, [{ name: "K", value: "v" }]);
  lab.installCode(id, ENV_READER);
  const c = lab.canister(id);
  const resolve = { memory: (role: string) => (role === "vmemory_0" ? c.execution!.wasmMemory : c.execution!.stableMemory), module: () => c.execution!.wasmModule };
  const back = decodeCanisterSystemState(encodeCanisterSystemState(c), resolve);
  t.deepEqual(back.environmentVariables, [{ name: "K", value: "v" }]);
  t.is(canisterStateHash(back), canisterStateHash(c));
  const { environmentVariables: _vars, ...without } = c;
  t.notDeepEqual(encodeCanisterSystemState(without), encodeCanisterSystemState(c), "the variables are part of the state hash");
  t.is(td.decode(encodeCanisterSystemState(without).subarray(1, 22)), "subnetlab-canister-v1");
  t.is(decodeCanisterSystemState(encodeCanisterSystemState(without), resolve).environmentVariables, undefined);
});

for (const mode of ["classic", "eop"] as const) {
  test(`item 4: a Motoko program (${mode}) reads them with mo:core's Runtime.envVarNames / envVar (spec 'Environment Variables')`, (t) => {
    const lab = new ExecutionLab();
    const id = createWith(lab, [{ name: "NETWORK", value: "local" }, { name: "BACKEND", value: "rwlgt-iiaaa-aaaaa-aaaaa-cai" }]);
    lab.installCode(id, fixture(`motoko/env.${mode}.wasm`));
    t.deepEqual(lab.update(id, "names", [], [], [IDL.Vec(IDL.Text)]), [["BACKEND", "NETWORK"]]);
    t.deepEqual(lab.update(id, "get", [IDL.Text], ["NETWORK"], [IDL.Opt(IDL.Text)]), [["local"]]);
    t.deepEqual(lab.update(id, "get", [IDL.Text], ["MISSING"], [IDL.Opt(IDL.Text)]), [[]]);
  });
}
