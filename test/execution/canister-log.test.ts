// Issue 12 item 7: each canister's log — its ic0.debug_print lines and its traps — kept in
// replicated state and served by the management canister's fetch_canister_logs query (interface
// spec "IC method fetch_canister_logs": records of idx, timestamp_nanos, content; controllers only
// under the default log_visibility).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { CANISTER_LOG_MAX_BYTES } from "../../harness/execution/canister-log.ts";
import { ExecutionLab, MANAGEMENT_TYPES, type CanisterId, type PrincipalText } from "../../harness/execution/index.ts";
import { executeManagementQuery } from "../../harness/execution/management.ts";
import { decodeCanisterSystemState, encodeCanisterSystemState, canisterStateHash } from "../../harness/state/canister-codec.ts";
import { wat } from "./helpers.ts";

// `say` prints its argument and replies; `boom` prints "about to trap" and traps.
const CHATTY = wat(`(module
  (import "ic0" "msg_arg_data_size" (func $size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 100) "about to trapit went wrong")
  (func (export "canister_update say")
    (call $copy (i32.const 0) (i32.const 0) (call $size))
    (call $print (i32.const 0) (call $size))
    (call $reply))
  (func (export "canister_update boom")
    (call $print (i32.const 100) (i32.const 13))
    (call $trap (i32.const 113) (i32.const 13))))`);

const me = "fo76k-ecero-uccwk-zx7jh-w5c7w-4uo7t-y5j4z-m7fiq-z6sgk-vobym-cae" as PrincipalText;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function logsOf(lab: ExecutionLab, id: CanisterId, caller: PrincipalText) {
  const arg = IDL.encode([MANAGEMENT_TYPES.fetch_canister_logs.arg], [{ canister_id: Principal.fromText(id) }]);
  const response = executeManagementQuery((c) => lab.canister(c), caller, "fetch_canister_logs", arg);
  if (response.kind === "reject") return response;
  const [{ canister_log_records }] = IDL.decode([...MANAGEMENT_TYPES.fetch_canister_logs.ret], response.data) as unknown as [{ canister_log_records: { idx: bigint; timestamp_nanos: bigint; content: Uint8Array }[] }];
  return canister_log_records.map((r) => ({ idx: r.idx, time: r.timestamp_nanos, line: new TextDecoder().decode(Uint8Array.from(r.content)) }));
}

test("item 7: prints and traps of updates are logged with increasing idx and the execution time; queries log nothing; controllers only", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister({ controllers: [me] });
  lab.installCode(id, CHATTY, { sender: me });
  lab.updateRaw(id, "say", text("hello"));
  const before = lab.timeNs;
  lab.advanceTime(5_000_000_000n);
  t.is(lab.updateRaw(id, "boom", new Uint8Array()).response.kind, "reject");
  lab.queryRaw(id, "say", text("from a query"));
  const logs = logsOf(lab, id, me);
  if (!Array.isArray(logs)) return t.fail(logs.message);
  // The trap record is the IC's: "[TRAP]: " and the message, nothing else (rs/embedders wasm_executor.rs).
  t.deepEqual(logs.map((l) => [l.idx, l.line]), [[0n, "hello"], [1n, "about to trap"], [2n, "[TRAP]: it went wrong"]]);
  t.is(logs[0]?.time, before);
  t.is(logs[2]?.time, before + 5_000_000_000n);
  // Someone who does not control the canister is refused (reject code 4), an unknown canister is code 3.
  const stranger = logsOf(lab, id, "2vxsx-fae" as PrincipalText);
  t.is(Array.isArray(stranger) ? 0 : stranger.code, 4);
  const missing = executeManagementQuery(() => undefined, me, "fetch_canister_logs", IDL.encode([MANAGEMENT_TYPES.fetch_canister_logs.arg], [{ canister_id: Principal.fromText(id) }]));
  t.is(missing.kind === "reject" ? missing.code : 0, 3);
});

test("item 7: the log keeps the newest records within its size limit; idx keeps counting; the log survives the canister encoding and changes its hash", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister({ controllers: [me] });
  lab.installCode(id, CHATTY, { sender: me });
  const silent = lab.canister(id);
  const line = "x".repeat(500);
  for (let k = 0; k < 20; k++) lab.updateRaw(id, "say", text(`${k} ${line}`));
  const logs = logsOf(lab, id, me);
  if (!Array.isArray(logs)) return t.fail(logs.message);
  const bytes = logs.reduce((sum, l) => sum + text(l.line).length + 16, 0);
  t.true(bytes <= CANISTER_LOG_MAX_BYTES, `${bytes} bytes kept`);
  t.true(bytes > CANISTER_LOG_MAX_BYTES - 600, "as many as fit");
  t.is(logs.at(-1)?.idx, 19n);
  t.true(logs[0]!.line.startsWith(`${20 - logs.length} `), "the oldest records went first");

  const c = lab.canister(id);
  const back = decodeCanisterSystemState(encodeCanisterSystemState(c), { memory: (role) => (role === "vmemory_0" ? c.execution!.wasmMemory : c.execution!.stableMemory), module: () => c.execution!.wasmModule });
  t.deepEqual(back.log, c.log);
  t.is(canisterStateHash(back), canisterStateHash(c));
  t.is(silent.log, undefined, "a canister that never printed has no log (its encoding is unchanged)");
  t.notDeepEqual(encodeCanisterSystemState(c), encodeCanisterSystemState({ ...c, log: undefined }));
});
