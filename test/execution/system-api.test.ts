// The ic0 System API: availability rules (which import may be called from which entry point),
// responding rules, stable memory, certified data, time and debug output. Expected behaviour is
// from the IC interface specification, "Overview of imports" (availability letters) and
// "Responding" ("msg_reply can be called at most once").
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { ExecutionLab, RejectCode, AVAILABILITY, type CanisterId, type Response } from "../../harness/execution/index.ts";
import { fixture, readU64, wat } from "./helpers.ts";

function labWith(module: Uint8Array): { lab: ExecutionLab; id: CanisterId } {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, module);
  return { lab, id };
}

const rejectMessage = (r: { response: Response }): string => (r.response.kind === "reject" ? r.response.message : "");

/**
 * The replica's refusal of an ic0 function in the wrong kind of execution, as a user reads it
 * (rs/embedders/src/wasmtime_embedder/system_api.rs `error_for`, mode names from `ApiType::as_str`;
 * UserContractViolation's hint, rs/interfaces/src/execution_environment/errors.rs).
 */
const wrongMode = (id: CanisterId, fn: string, mode: string): string =>
  `Error from Canister ${id}: Canister violated contract: "${fn}" cannot be executed in ${mode} mode.\n` +
  "Check the ICP documentation to make sure APIs are being called in the correct message types. " +
  "See documentation: https://internetcomputer.org/docs/current/references/execution-errors#calling-a-system-api-from-the-wrong-mode";
/** ErrorHelp::ToolchainError's line (rs/types/wasm_types/src/errors.rs). */
const TOOLCHAIN =
  "This is likely an error with the compiler/CDK toolchain being used to build the canister. Please report the error to IC devs on the forum: https://forum.dfinity.org and include which language/CDK was used to create the canister.";

test("msg_reply twice traps (spec 'Responding': at most once)", (t) => {
  const { lab, id } = labWith(fixture("c/counter.wasm"));
  const r = lab.queryRaw(id, "reply_twice", new Uint8Array());
  t.is(r.response.kind, "reject");
  if (r.response.kind === "reject") t.is(r.response.code, RejectCode.CanisterError);
  // system_api.rs ic0_msg_reply: ToolchainContractViolation "ic0.msg_reply: the call is already replied".
  t.is(rejectMessage(r), `Error from Canister ${id}: Canister violated contract: ic0.msg_reply: the call is already replied.\n${TOOLCHAIN}`);
});

test("call_new from a query traps (spec availability: call_* only in U CQ Ry Rt CRy CRt T)", (t) => {
  const { lab, id } = labWith(fixture("c/counter.wasm"));
  const r = lab.queryRaw(id, "call_from_query", new Uint8Array());
  t.is(rejectMessage(r), wrongMode(id, "ic0_call_new", "non replicated query"));
  t.deepEqual(AVAILABILITY["call_perform"], ["U", "CQ", "Ry", "Rt", "CRy", "CRt", "T"]);
});

test("per-entry-point availability is enforced for init, queries and start", (t) => {
  // Each module calls one import from one entry point where the spec forbids it.
  const cases: { name: string; module: string; expect: (id: CanisterId) => string }[] = [
    {
      name: "msg_reply in canister_init (not I)",
      module: `(module (import "ic0" "msg_reply" (func $r)) (func (export "canister_init") (call $r)))`,
      expect: (id) => wrongMode(id, "ic0_msg_reply", "init"),
    },
    {
      name: "msg_arg_data_size in (start) (not s)",
      module: `(module (import "ic0" "msg_arg_data_size" (func $s (result i32))) (func $st (drop (call $s))) (start $st))`,
      expect: (id) => wrongMode(id, "ic0_msg_arg_data_size", "start"),
    },
    {
      name: "call_perform in a query (not NRQ)",
      module: `(module (import "ic0" "call_perform" (func $p (result i32)))
        (func (export "canister_init")) (func (export "canister_query q") (drop (call $p))))`,
      expect: (id) => wrongMode(id, "ic0_call_perform", "non replicated query"),
    },
    {
      name: "certified_data_set in a query (not NRQ)",
      module: `(module (import "ic0" "certified_data_set" (func $c (param i32 i32))) (memory 1)
        (func (export "canister_init")) (func (export "canister_query q") (call $c (i32.const 0) (i32.const 4))))`,
      expect: (id) => wrongMode(id, "ic0_certified_data_set", "non replicated query"),
    },
  ];
  for (const c of cases) {
    const lab = new ExecutionLab();
    const id = lab.createCanister();
    if (c.name.includes("query")) {
      lab.installCode(id, wat(c.module));
      const r = lab.queryRaw(id, "q", new Uint8Array());
      t.is(rejectMessage(r), c.expect(id), c.name);
    } else {
      const err = t.throws(() => lab.installCode(id, wat(c.module)), undefined, c.name);
      t.true((err?.message ?? "").includes(c.expect(id)), `${c.name}: ${err?.message}`);
      t.is(lab.canister(id).execution, undefined, `${c.name}: failed install leaves the canister empty`);
    }
  }
});

test("msg_reject produces CANISTER_REJECT (4); no reply produces CANISTER_ERROR (5)", (t) => {
  const { lab, id } = labWith(fixture("c/kv.wasm"));
  const r = lab.queryRaw(id, "lookup", new TextEncoder().encode("missing"));
  // The user also sees IC0406 CanisterRejectedMessage (rs/types/error_types/src/lib.rs).
  t.deepEqual(r.response, { kind: "reject", code: RejectCode.CanisterReject, message: "not found", errorCode: "IC0406" });
  const { lab: lab2, id: id2 } = labWith(fixture("c/counter.wasm"));
  const n = lab2.updateRaw(id2, "no_reply", new Uint8Array());
  t.is(n.response.kind, "reject");
  if (n.response.kind === "reject") {
    t.is(n.response.code, RejectCode.CanisterError);
    // execution/common.rs action_to_ingress_response: IC0506 CanisterDidNotReply.
    t.deepEqual(n.response, { kind: "reject", code: RejectCode.CanisterError, message: `Canister ${id2} did not reply to the call`, errorCode: "IC0506" });
  }
  // ... and the state change of the non-replying update is kept (it did not trap).
  t.is(readU64((lab2.queryRaw(id2, "get", new Uint8Array()).response as { data: Uint8Array }).data), 1n);
});

test("stable memory: grow, write, read, and 64 KiB page size", (t) => {
  const { lab, id } = labWith(fixture("c/counter.wasm"));
  for (let i = 1n; i <= 3n; i++) {
    const r = lab.updateRaw(id, "stable_inc", new Uint8Array());
    t.is(readU64((r.response as { data: Uint8Array }).data), i);
  }
  const exec = lab.canister(id).execution;
  t.is(exec?.stableMemoryPages, 1n);
  t.is(exec?.stableMemory.sizeBytes, 65_536);
  t.is(exec?.stableMemory.readPage(0)[0], 3);
});

test("certified_data_set accepts ≤ 32 bytes and traps above (spec certified_data_set)", (t) => {
  const { lab, id } = labWith(fixture("c/counter.wasm"));
  const ok = lab.updateRaw(id, "set_certified", new Uint8Array(32).fill(5));
  t.is(ok.response.kind, "reply");
  t.deepEqual([...lab.canister(id).certifiedData], Array(32).fill(5));
  const tooBig = wat(`(module (import "ic0" "certified_data_set" (func $c (param i32 i32))) (memory 1)
    (func (export "canister_update f") (call $c (i32.const 0) (i32.const 33))))`);
  const { lab: lab2, id: id2 } = labWith(tooBig);
  const r = lab2.updateRaw(id2, "f", new Uint8Array());
  // system_api.rs ic0_certified_data_set: a UserContractViolation with its own suggestion.
  t.is(
    rejectMessage(r),
    `Error from Canister ${id2}: Canister violated contract: ic0_certified_data_set failed because the passed data must be no larger than 32 bytes. Found 33 bytes..\n` +
      "Try certifying just the hash of your data instead of the full contents. See documentation: https://internetcomputer.org/docs/current/references/execution-errors#certified_data_set-payload-too-large",
  );
});

test("time is the batch time, debug_print is collected, performance_counter counts", (t) => {
  const module = wat(`(module
    (import "ic0" "time" (func $time (result i64)))
    (import "ic0" "performance_counter" (func $pc (param i32) (result i64)))
    (import "ic0" "debug_print" (func $print (param i32 i32)))
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1) (data (i32.const 100) "hello")
    (func (export "canister_query t")
      (call $print (i32.const 100) (i32.const 5))
      (i64.store (i32.const 0) (call $time))
      (i64.store (i32.const 8) (call $pc (i32.const 0)))
      (call $append (i32.const 0) (i32.const 16)) (call $reply)))`);
  const { lab, id } = labWith(module);
  const r = lab.queryRaw(id, "t", new Uint8Array());
  t.is(r.response.kind, "reply");
  const data = (r.response as { data: Uint8Array }).data;
  t.is(readU64(data.subarray(0, 8)), lab.timeNs);
  // performance_counter(0) after debug_print: at least its overhead (100) + 5 bytes + the
  // time() call (500), per ic-protocol.md §4.7.
  t.true(readU64(data.subarray(8, 16)) >= 605n);
  t.deepEqual(r.debugLog, ["hello"]);
});

test("canister_inspect_message filters ingress; its own availability rules apply (spec F)", (t) => {
  // Accepts ingress only for method "allowed" (compares msg_method_name); "inspect_trap" makes
  // canister_inspect_message call msg_reply, which F may not call.
  const module = wat(`(module
    (import "ic0" "msg_method_name_size" (func $size (result i32)))
    (import "ic0" "msg_method_name_copy" (func $copy (param i32 i32 i32)))
    (import "ic0" "accept_message" (func $accept))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1) (data (i32.const 100) "allowed")
    (func (export "canister_inspect_message")
      (local $n i32)
      (local.set $n (call $size))
      (call $copy (i32.const 0) (i32.const 0) (local.get $n))
      (if (i32.eq (local.get $n) (i32.const 12)) (then (call $reply)))
      (if (i32.and (i32.eq (local.get $n) (i32.const 7)) (i64.eq (i64.load (i32.const 0)) (i64.load (i32.const 100))))
        (then (call $accept))))
    (func (export "canister_update allowed") (call $reply))
    (func (export "canister_update blocked") (call $reply))
    (func (export "canister_update inspect_trap") (call $reply)))`);
  const { lab, id } = labWith(module);
  t.is(lab.updateRaw(id, "allowed", new Uint8Array()).response.kind, "reply");
  const blocked = lab.updateRaw(id, "blocked", new Uint8Array());
  t.is(blocked.response.kind, "reject");
  if (blocked.response.kind === "reject") {
    t.is(blocked.response.code, RejectCode.CanisterReject);
    // No ic0.accept_message: HypervisorError::MessageRejected, IC0406, no hint line (rs/interfaces errors.rs).
    t.deepEqual(blocked.response, { kind: "reject", code: RejectCode.CanisterReject, message: `Error from Canister ${id}: Canister rejected the message`, errorCode: "IC0406" });
  }
  t.is(rejectMessage(lab.updateRaw(id, "inspect_trap", new Uint8Array())), wrongMode(id, "ic0_msg_reply", "inspect message"));
  // Spec availability of accept_message: F only.
  t.deepEqual(AVAILABILITY["accept_message"], ["F"]);
});

test("a composite query run as a single message cannot call out: call_perform returns 2", (t) => {
  // executeMessage runs one canister only; the call tree is executeQueryTree's job
  // (messages.test.ts). Spec call_perform: a non-zero result means the call was not made.
  const module = wat(`(module
    (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "ic0" "call_perform" (func $perform (result i32)))
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1) (data (i32.const 0) "m")
    (func (export "canister_composite_query c")
      (call $call_new (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (i32.store (i32.const 8) (call $perform))
      (call $append (i32.const 8) (i32.const 4)) (call $reply)))`);
  const { lab, id } = labWith(module);
  const r = lab.executor.executeMessage(lab.canister(id), { kind: "query", caller: "2vxsx-fae" as never, method: "c", arg: new Uint8Array() }, {
    instructionLimit: 10n ** 9n,
    timeNs: lab.timeNs,
  });
  const resp = r.responses[0]?.response;
  t.is(resp?.kind, "reply");
  if (resp?.kind === "reply") t.is(new DataView(resp.data.buffer, resp.data.byteOffset).getUint32(0, true), 2);
  t.deepEqual(AVAILABILITY["call_perform"], ["U", "CQ", "Ry", "Rt", "CRy", "CRt", "T"]);
});
