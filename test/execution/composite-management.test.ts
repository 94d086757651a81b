// Issue 15: a composite query that calls the management canister (aaaaa-aa). The replica serves
// the management canister's query methods there — fetch_canister_logs, canister_status,
// list_canisters, canister_metrics (the replica's QueryMethod) — against the query's state, on
// behalf of the calling canister, with the access control users get
// (rs/execution_environment/src/query_handler/query_context.rs `handle_ic00_request` and
// subnet_query.rs, dfinity/ic PR #10987); any other method is rejected with subnet_query.rs
// `parse_query_method`'s "Query method <m> not found." (IC0536: reject code 5). A callee's error
// reaches a composite query as the description alone (RejectContext::from(UserError)).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { DEFAULT_SENDER, ExecutionLab, MANAGEMENT_TYPES, type CanisterId, type Response } from "../../harness/execution/index.ts";
import { settingsRecord, wat } from "./helpers.ts";
import { managementIngressRefusal } from "../../harness/execution/management.ts";

// `mgmt` (composite query): arg = method name length (1 byte), the name, then the Candid argument;
// calls aaaaa-aa with it. Its reply callback replies "R" + the reply; its reject callback replies
// "J" + the reject code (1 byte) + the reject message.
const CALLER = wat(`(module
  (import "ic0" "call_new" (func $new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $data (param i32 i32)))
  (import "ic0" "call_perform" (func $perform (result i32)))
  (import "ic0" "msg_arg_data_size" (func $argSize (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $argCopy (param i32 i32 i32)))
  (import "ic0" "msg_reject_code" (func $rejectCode (result i32)))
  (import "ic0" "msg_reject_msg_size" (func $rejectSize (result i32)))
  (import "ic0" "msg_reject_msg_copy" (func $rejectCopy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (memory 2) (table 2 funcref) (elem (i32.const 0) $onReply $onReject)
  (data (i32.const 0) "RJ")
  (func $onReply (param i32)
    (call $argCopy (i32.const 4096) (i32.const 0) (call $argSize))
    (call $append (i32.const 0) (i32.const 1)) (call $append (i32.const 4096) (call $argSize)) (call $reply))
  (func $onReject (param i32)
    (i32.store8 (i32.const 8) (call $rejectCode))
    (call $rejectCopy (i32.const 4096) (i32.const 0) (call $rejectSize))
    (call $append (i32.const 1) (i32.const 1)) (call $append (i32.const 8) (i32.const 1))
    (call $append (i32.const 4096) (call $rejectSize)) (call $reply))
  (func (export "canister_composite_query mgmt") (export "canister_update mgmt_u") (local $n i32)
    (call $argCopy (i32.const 1024) (i32.const 0) (call $argSize))
    (local.set $n (i32.load8_u (i32.const 1024)))
    (call $new (i32.const 0) (i32.const 0) (i32.const 1025) (local.get $n) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))
    (call $data (i32.add (i32.const 1025) (local.get $n)) (i32.sub (i32.sub (call $argSize) (i32.const 1)) (local.get $n)))
    (drop (call $perform)))
  (func (export "canister_update hello") (call $print (i32.const 0) (i32.const 2)) (call $reply)))`);

type Outcome = { kind: "reply"; data: Uint8Array } | { kind: "reject"; code: number; message: string };

function viaComposite(lab: ExecutionLab, id: CanisterId, method: string, arg: Uint8Array, kind: "query" | "update" = "query"): Outcome {
  const name = new TextEncoder().encode(method);
  const input = new Uint8Array([name.length, ...name, ...arg]);
  const r: Response = (kind === "query" ? lab.queryRaw(id, "mgmt", input) : lab.updateRaw(id, "mgmt_u", input)).response;
  if (r.kind !== "reply") throw new Error(`the composite query itself failed: ${r.message}`);
  if (r.data[0] === 0x52) return { kind: "reply", data: r.data.slice(1) };
  return { kind: "reject", code: r.data[1] ?? -1, message: new TextDecoder().decode(r.data.slice(2)) };
}

const canisterArg = (id: string): Uint8Array => IDL.encode([IDL.Record({ canister_id: IDL.Principal })], [{ canister_id: Principal.fromText(id) }]);

/** A canister controlled by itself and the lab's sender, so that its own calls pass the controller checks. */
function setUp(): { lab: ExecutionLab; id: CanisterId; stranger: CanisterId } {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, CALLER);
  lab.update("aaaaa-aa" as CanisterId, "update_settings", [MANAGEMENT_TYPES.update_settings.arg], [{ canister_id: Principal.fromText(id), settings: settingsRecord({ controllers: [[Principal.fromText(DEFAULT_SENDER), Principal.fromText(id)]] }), sender_canister_version: [] }], [], { caller: DEFAULT_SENDER });
  const stranger = lab.createCanister();
  lab.installCode(stranger, CALLER);
  return { lab, id, stranger };
}

test("a composite query may call fetch_canister_logs on aaaaa-aa and gets the logs of a canister it controls", (t) => {
  const { lab, id } = setUp();
  lab.updateRaw(id, "hello", new Uint8Array());
  const r = viaComposite(lab, id, "fetch_canister_logs", canisterArg(id));
  if (r.kind !== "reply") return t.fail(r.message);
  const [{ canister_log_records }] = IDL.decode([...MANAGEMENT_TYPES.fetch_canister_logs.ret], r.data) as unknown as [{ canister_log_records: { content: Uint8Array }[] }];
  t.deepEqual(canister_log_records.map((x) => new TextDecoder().decode(x.content)), ["RJ"]);
});

test("a composite query may call canister_status on aaaaa-aa for a canister it controls", (t) => {
  const { lab, id } = setUp();
  const r = viaComposite(lab, id, "canister_status", canisterArg(id));
  if (r.kind !== "reply") return t.fail(r.message);
  const [status] = IDL.decode([...MANAGEMENT_TYPES.canister_status.ret], r.data) as unknown as [{ status: Record<string, null> }];
  t.deepEqual(Object.keys(status.status), ["running"]);
});

test("the management canister's access control applies: the calling canister is the caller (canister_logs.rs, canister_manager types.rs)", (t) => {
  const { lab, id, stranger } = setUp();
  t.deepEqual(viaComposite(lab, stranger, "fetch_canister_logs", canisterArg(id)), {
    kind: "reject",
    code: 4,
    message: `Caller ${stranger} is not allowed to access canister logs`,
  });
  const status = viaComposite(lab, stranger, "canister_status", canisterArg(id));
  t.like(status, { kind: "reject", code: 5 });
  t.regex(status.kind === "reject" ? status.message : "", new RegExp(`^Only the controllers of the canister ${id} can control it\\.\\nCanister's controllers: `));
  t.deepEqual(viaComposite(lab, id, "fetch_canister_logs", canisterArg("ryjl3-tyaaa-aaaaa-aaaba-cai")), {
    kind: "reject",
    code: 3,
    message: "Canister ryjl3-tyaaa-aaaaa-aaaba-cai not found",
  }, "subnet_query.rs get_canister: no period, no help line");
});

test("any other management method from a composite query: 'Query method <m> not found.' (subnet_query.rs parse_query_method, IC0536)", (t) => {
  const { lab, id } = setUp();
  t.deepEqual(viaComposite(lab, id, "raw_rand", IDL.encode([], [])), { kind: "reject", code: 5, message: "Query method raw_rand not found." });
  t.deepEqual(viaComposite(lab, id, "stop_canister", canisterArg(id)), { kind: "reject", code: 5, message: "Query method stop_canister not found." });
  t.is(lab.canister(id).status, "running");
});

test("fetch_canister_logs in replicated mode: a canister's update call and a user's ingress message get the replica's refusals (IC0406)", (t) => {
  const { lab, id } = setUp();
  // execution_environment.rs before dfinity/ic PR #10879; a canister sees the UserError's display.
  t.deepEqual(viaComposite(lab, id, "fetch_canister_logs", canisterArg(id), "update"), {
    kind: "reject",
    code: 4,
    message: "IC0406: fetch_canister_logs API is only accessible in non-replicated mode",
  });
  // canister_manager.rs should_accept_ingress_message.
  t.like(managementIngressRefusal("fetch_canister_logs", canisterArg(id), DEFAULT_SENDER, (c) => lab.canister(c)), {
    errorCode: "IC0406",
    rejectCode: 4,
    message: "fetch_canister_logs API is not accessible via ingress in replicated mode",
  });
});
