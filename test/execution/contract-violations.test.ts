// Issue 15: System API contract violations reach callers with the replica's texts and hints.
//
// Where the expected texts come from (dfinity/ic):
//  - rs/embedders/src/wasmtime_embedder/system_api.rs: `error_for` (an ic0 function in the wrong
//    kind of execution, with `ApiType::as_str`'s mode names), `valid_subslice` (a range outside
//    the memory or the data copied from), `copy_cycles_to_heap`, ic0_msg_reply /
//    ic0_msg_reply_data_append / ic0_msg_reject (already replied, payload too large), ic0_call_*
//    without ic0.call_new;
//  - rs/interfaces/src/execution_environment/errors.rs: "Canister violated contract: <text>",
//    IC0504, and the hint: ToolchainContractViolation → the toolchain line, UserContractViolation →
//    its suggestion and documentation link.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { ExecutionLab, type CanisterId } from "../../harness/execution/index.ts";
import { wat } from "./helpers.ts";

/** ErrorHelp::ToolchainError's line (rs/types/wasm_types/src/errors.rs). */
const TOOLCHAIN =
  "This is likely an error with the compiler/CDK toolchain being used to build the canister. Please report the error to IC devs on the forum: https://forum.dfinity.org and include which language/CDK was used to create the canister.";
const DOCS = "https://internetcomputer.org/docs/current/references/execution-errors#";

const toolchain = (id: CanisterId, text: string): string => `5 IC0504 Error from Canister ${id}: Canister violated contract: ${text}.\n${TOOLCHAIN}`;
const wrongMode = (id: CanisterId, fn: string, mode: string): string =>
  `5 IC0504 Error from Canister ${id}: Canister violated contract: "${fn}" cannot be executed in ${mode} mode.\n` +
  `Check the ICP documentation to make sure APIs are being called in the correct message types. See documentation: ${DOCS}calling-a-system-api-from-the-wrong-mode`;

const MISUSES = wat(`(module
  (import "ic0" "msg_arg_data_copy" (func $argCopy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "msg_reject_code" (func $rejectCode (result i32)))
  (import "ic0" "call_perform" (func $perform (result i32)))
  (import "ic0" "call_cycles_add128" (func $addCycles (param i64 i64)))
  (import "ic0" "msg_cycles_available128" (func $available (param i32)))
  (import "ic0" "call_new" (func $callNew (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory 1)
  (func (export "canister_update arg_past_payload") (call $argCopy (i32.const 0) (i32.const 0) (i32.const 10)) (call $reply))
  (func (export "canister_update arg_past_memory") (call $argCopy (i32.const 65530) (i32.const 0) (i32.const 10)) (call $reply))
  (func (export "canister_update reject_after_reply") (call $reply) (call $reject (i32.const 0) (i32.const 0)))
  (func (export "canister_update append_after_reply") (call $reply) (call $append (i32.const 0) (i32.const 1)))
  (func (export "canister_update append_too_much") (call $append (i32.const 0) (i32.const 65536)) (loop $l (call $append (i32.const 0) (i32.const 65536)) (br $l)))
  (func (export "canister_update reject_code_in_update") (drop (call $rejectCode)) (call $reply))
  (func (export "canister_query call_in_query") (call $callNew (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "canister_update perform_alone") (drop (call $perform)))
  (func (export "canister_update cycles_alone") (call $addCycles (i64.const 0) (i64.const 1)))
  (func (export "canister_update cycles_past_memory") (call $available (i32.const 65530)) (call $reply)))`);

function setUp() {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, MISUSES);
  const call = (method: string, arg = new Uint8Array(), kind: "update" | "query" = "update"): string => {
    const r = (kind === "update" ? lab.updateRaw(id, method, arg) : lab.queryRaw(id, method, arg)).response;
    return r.kind === "reject" ? `${r.code} ${r.errorCode ?? ""} ${r.message}` : "replied";
  };
  return { id, call };
}

test("out-of-bounds copies: valid_subslice's text, the data's range and then the memory's, with the toolchain hint", (t) => {
  const { id, call } = setUp();
  t.is(call("arg_past_payload", new Uint8Array(4)), toolchain(id, "ic0.msg_arg_data_copy payload: src=0 + length=10 exceeds the slice size=4"));
  t.is(call("arg_past_memory", new Uint8Array(10)), toolchain(id, "ic0.msg_arg_data_copy heap: src=65530 + length=10 exceeds the slice size=65536"));
  t.is(
    call("cycles_past_memory"),
    toolchain(id, "ic0_msg_cycles_available128 failed because dst + size is out of bounds.Found dst = 65530 and size = 16 while must be <= 65536"),
    "copy_cycles_to_heap: no space after the period (the replica's string continuation)",
  );
});

test("responding twice: the replica's 'already replied' texts (ToolchainContractViolation)", (t) => {
  const { id, call } = setUp();
  t.is(call("reject_after_reply"), toolchain(id, "ic0.msg_reject: the call is already replied"));
  t.is(call("append_after_reply"), toolchain(id, "ic0.msg_reply_data_append: the call is already replied."));
});

test("a reply over 2 MiB: UserContractViolation with its suggestion (system_api.rs ic0_msg_reply_data_append)", (t) => {
  const { id, call } = setUp();
  t.is(
    call("append_too_much"),
    `5 IC0504 Error from Canister ${id}: Canister violated contract: ic0.msg_reply_data_append: application payload size (2162688) cannot be larger than 2097152..\n` +
      `Consider checking the response size and returning an error if it is too long. See documentation: ${DOCS}msg_reply_data_append-payload-too-large`,
  );
});

test("the wrong kind of execution: error_for's text with the replica's mode names", (t) => {
  const { id, call } = setUp();
  t.is(call("reject_code_in_update"), wrongMode(id, "ic0_msg_reject_code", "update"));
  t.is(call("call_in_query", new Uint8Array(), "query"), wrongMode(id, "ic0_call_new", "non replicated query"));
  t.is(call("call_in_query"), wrongMode(id, "ic0_call_new", "replicated query"), "a query method called as an update");
});

test("call_perform and call_cycles_add128 without call_new: 'called when no call is under construction.'", (t) => {
  const { id, call } = setUp();
  t.is(call("perform_alone"), toolchain(id, "ic0.call_perform called when no call is under construction."));
  t.is(call("cycles_alone"), toolchain(id, "ic0_call_cycles_add128 called when no call is under construction."), "ic0_call_cycles_add_helper names the function with an underscore");
});
