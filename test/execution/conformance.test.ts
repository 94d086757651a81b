// Issue 15: rejects carry the IC's error codes and texts, in the form their receiver sees, and a
// composite query that calls its own canister sees the committed state. The Motoko canister is
// fixtures/canisters/motoko/conform.mo, compiled by the real compiler (moc of the `motoko`
// package, `npm run build:fixtures -- motoko`) with classical and enhanced orthogonal persistence.
// Expected texts come from dfinity/ic (facts, not code): rs/interfaces/src/execution_environment/
// errors.rs (HypervisorError's display, hint lines, into_user_error), rs/types/wasm_types/src/
// errors.rs (doc links), rs/types/error_types/src/lib.rs (codes), rs/execution_environment/src/
// execution/common.rs (what a calling canister and an ingress sender see),
// rs/replicated_state/src/replicated_state.rs (induction refusals), rs/messaging/src/routing/
// stream_builder.rs ("No route to canister"), rs/embedders wasmtime_embedder.rs (trap codes).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { DEFAULT_SENDER, ExecutionLab, LabError, LAB_SUBNET_CANISTER_IDS } from "../../harness/execution/lab.ts";
import { canisterIdFromU64, MANAGEMENT_CANISTER, RejectCode, type CanisterId, type PrincipalText, type Response } from "../../harness/execution/interfaces.ts";
import { ErrorCode, rejectCodeOf } from "../../harness/execution/reject-codes.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { requestStatusOf } from "../../harness/replica/certified-view.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { height, timeUs, type HashHex } from "../../harness/types.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { executeManagementQuery } from "../../harness/execution/management.ts";
import { MANAGEMENT_TYPES } from "../../harness/execution/index.ts";
import { fixture, wat } from "./helpers.ts";

const DOCS = "See documentation: https://internetcomputer.org/docs/current/references/execution-errors#";
const GRACEFUL = "Consider gracefully handling failures from this canister or altering the canister to handle exceptions.";
const none = new Uint8Array(IDL.encode([], []));

/** The reject a user sees, spelled out: reject code, the IC's description, the error code. */
const userReject = (code: RejectCode, errorCode: ErrorCode, message: string): Response => ({ kind: "reject", code, message, errorCode });

function labWithConform(flavour: "classic" | "eop"): { lab: ExecutionLab; a: CanisterId; b: CanisterId } {
  const lab = new ExecutionLab({ instructionLimit: 50_000_000n });
  const wasm = fixture(`motoko/conform.${flavour}.wasm`);
  const a = lab.createCanister();
  lab.installCode(a, wasm);
  const b = lab.createCanister();
  lab.installCode(b, wasm);
  return { lab, a, b };
}

for (const flavour of ["classic", "eop"] as const) {
  test(`item 1: Motoko (${flavour}) traps, division by zero, the instruction limit, missing methods and rejects reach the user with the IC's codes and texts`, (t) => {
    const { lab, a } = labWithConform(flavour);
    // errors.rs: CalledTrap → IC0503, "Canister called `ic0.trap` with message: '<msg>'" + hint.
    t.deepEqual(
      lab.updateRaw(a, "boom", IDL.encode([IDL.Text], ["oops"])).response,
      userReject(RejectCode.CanisterError, "IC0503", `Error from Canister ${a}: Canister called \`ic0.trap\` with message: 'oops'.\n${GRACEFUL} ${DOCS}trapped-explicitly`),
    );
    // Nat32 division compiles to i32.div_u: wasmtime's IntegerDivisionByZero → TrapCode::IntegerDivByZero → IC0502.
    t.deepEqual(
      lab.updateRaw(a, "div32", IDL.encode([IDL.Nat32, IDL.Nat32], [1, 0])).response,
      userReject(RejectCode.CanisterError, "IC0502", `Error from Canister ${a}: Canister trapped: integer division by 0.\n${GRACEFUL} ${DOCS}trapped`),
    );
    // InstructionLimitExceeded(limit) → IC0522; its display ends with a period and the IC adds one.
    t.deepEqual(
      lab.updateRaw(a, "spin", none).response,
      userReject(
        RejectCode.CanisterError,
        "IC0522",
        `Error from Canister ${a}: Canister exceeded the limit of 50000000 instructions for single message execution..\n` +
          `Try optimizing this method to consume fewer instructions or split the work across multiple messages. ${DOCS}instruction-limit-exceeded`,
      ),
    );
    // MethodNotFound → IC0536, for updates and for queries.
    const missing = (kind: string): string =>
      `Error from Canister ${a}: Canister has no ${kind} method 'nosuch'..\nCheck that the method being called is exported by the target canister. ${DOCS}method-not-found`;
    t.deepEqual(lab.updateRaw(a, "nosuch", none).response, userReject(RejectCode.CanisterError, "IC0536", missing("update")));
    t.deepEqual(lab.queryRaw(a, "nosuch", none).response, userReject(RejectCode.CanisterError, "IC0536", missing("query")));
    // An explicit reject: CANISTER_REJECT with the canister's text; the user also sees IC0406.
    t.deepEqual(lab.updateRaw(a, "refuse", IDL.encode([IDL.Text], ["no"])).response, userReject(RejectCode.CanisterReject, "IC0406", "no"));
    // A composite query cannot run as an update (execution/call_or_task.rs): IC0527.
    t.deepEqual(lab.updateRaw(a, "viaSelf", none).response, userReject(RejectCode.CanisterError, "IC0527", "Composite query cannot be called in replicated mode"));
    // The canister state survived every failure: only the instructions were spent.
    t.deepEqual(lab.query(a, "read", [], [], [IDL.Nat]), [0n]);
  });

  test(`item 1: a calling Motoko canister (${flavour}) sees its callee's failures as the IC words them for canisters`, (t) => {
    const { lab, a, b } = labWithConform(flavour);
    const caught = (method: string, callee: string): unknown[] => lab.update(a, method, [IDL.Principal], [Principal.fromText(callee)], [IDL.Text, IDL.Text]);
    // A failed update reaches the calling canister as UserError's display: "ICxxxx: <description>"
    // (common.rs action_to_request_response / Payload::from(Err(user_error))).
    t.deepEqual(caught("catchBoom", b), [
      "#canister_error",
      `IC0503: Error from Canister ${b}: Canister called \`ic0.trap\` with message: 'inner'.\n${GRACEFUL} ${DOCS}trapped-explicitly`,
    ]);
    t.deepEqual(caught("catchMissing", b), [
      "#canister_error",
      `IC0536: Error from Canister ${b}: Canister has no update method 'nosuch'..\nCheck that the method being called is exported by the target canister. ${DOCS}method-not-found`,
    ]);
    // An explicit reject reaches it as is.
    t.deepEqual(caught("catchRefuse", b), ["#canister_reject", "no thanks"]);
    // Induction refusals are StateError's display, without an error code in front.
    const absent = canisterIdFromU64(500n);
    t.deepEqual(caught("catchBoom", absent), ["#destination_invalid", `Canister ${absent} not found`]);
    // An id outside every subnet's range has no route (stream_builder.rs).
    const unrouted = canisterIdFromU64(LAB_SUBNET_CANISTER_IDS + 5n);
    t.deepEqual(caught("catchBoom", unrouted), ["#destination_invalid", `No route to canister ${unrouted}`]);
    lab.stopCanister(b);
    t.deepEqual(caught("catchBoom", b), ["#canister_error", `Canister ${b} is stopped`]);
    // The user calling a stopped canister: IC0508 at induction.
    t.deepEqual(lab.updateRaw(b, "inc", none).response, userReject(RejectCode.CanisterError, "IC0508", `Canister ${b} is stopped`));
  });

  test(`item 3: a Motoko (${flavour}) composite query that calls a query of its own canister sees the committed state`, (t) => {
    const { lab, a } = labWithConform(flavour);
    t.deepEqual(lab.update(a, "inc", [], [], [IDL.Nat]), [1n]);
    // viaSelf adds 1000 to its own copy, then asks read(): the callee runs on the committed state
    // (IC interface spec "Composite query": calls run on the state the query runs against; the
    // replica's query_context.rs handle_request takes the callee from that state).
    t.deepEqual(lab.query(a, "viaSelf", [], [], [IDL.Nat, IDL.Nat]), [1001n, 1n]);
    // Nothing a query does is kept.
    t.deepEqual(lab.query(a, "viaSelf", [], [], [IDL.Nat, IDL.Nat]), [1001n, 1n]);
    t.deepEqual(lab.query(a, "read", [], [], [IDL.Nat]), [1n]);
  });

  test(`item 3: Motoko (${flavour}) composite queries may re-enter their canister to depth 6; a node at depth 6 that calls fails the query (IC0525); a failed query call reaches the caller as the description`, (t) => {
    const { lab, a } = labWithConform(flavour);
    // query_call_graph.rs: the call stack may hold 6 frames; re-entrant calls are allowed.
    t.deepEqual(lab.query(a, "chain", [IDL.Nat], [6n], [IDL.Nat]), [6n]);
    t.deepEqual(
      lab.queryRaw(a, "chain", IDL.encode([IDL.Nat], [7n])).response,
      userReject(RejectCode.CanisterError, "IC0525", "Composite query calls exceeded the maximum call depth."),
    );
    // query_context.rs handle_request: RejectContext::from(user_error), the description without a code.
    t.deepEqual(lab.query(a, "askMissing", [], [], [IDL.Text, IDL.Text]), [
      "#canister_error",
      `Error from Canister ${a}: Canister has no query method 'nosuch'..\nCheck that the method being called is exported by the target canister. ${DOCS}method-not-found`,
    ]);
  });
}

test("item 1: Wasm traps carry the IC's trap codes (heap, stable memory and table out of bounds, unreachable, stack overflow, unknown)", (t) => {
  const module = wat(`(module
    (import "ic0" "stable_read" (func $stable_read (param i32 i32 i32)))
    (memory 1) (table 1 funcref)
    (type $v (func))
    (func $recurse (call $recurse))
    (func (export "canister_update heap") (drop (i32.load (i32.const 70000))))
    (func (export "canister_update stable") (call $stable_read (i32.const 0) (i32.const 0) (i32.const 8)))
    (func (export "canister_update table") (call_indirect (type $v) (i32.const 5)))
    (func (export "canister_update unreachable") (unreachable))
    (func (export "canister_update stack") (call $recurse))
    (func (export "canister_update overflow") (drop (i32.div_s (i32.const -2147483648) (i32.const -1)))))`);
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, module);
  const trapped = (what: string): Response =>
    userReject(RejectCode.CanisterError, "IC0502", `Error from Canister ${id}: Canister trapped: ${what}.\n${GRACEFUL} ${DOCS}trapped`);
  t.deepEqual(lab.updateRaw(id, "heap", none).response, trapped("heap out of bounds"));
  t.deepEqual(lab.updateRaw(id, "stable", none).response, trapped("stable memory out of bounds"));
  t.deepEqual(lab.updateRaw(id, "table", none).response, trapped("table out of bounds"));
  t.deepEqual(lab.updateRaw(id, "unreachable", none).response, trapped("unreachable"));
  t.deepEqual(lab.updateRaw(id, "stack", none).response, trapped("stack overflow"));
  // Integer overflow is none of the IC's named trap codes: TrapCode::Other.
  t.deepEqual(lab.updateRaw(id, "overflow", none).response, trapped("unknown"));
});

test("item 1: a query to an empty canister, and to a stopped one, is refused with IC0537 and IC0508", (t) => {
  const lab = new ExecutionLab();
  const empty = lab.createCanister();
  t.deepEqual(
    lab.queryRaw(empty, "read", none).response,
    userReject(
      RejectCode.CanisterError,
      "IC0537",
      `Error from Canister ${empty}: Attempted to execute a message, but the canister contains no Wasm module..\nPlease install code to this canister before calling it. ${DOCS}wasm-module-not-found`,
    ),
  );
  const stopped = lab.createCanister();
  lab.installCode(stopped, wat(`(module (func (export "canister_query read")))`));
  lab.stopCanister(stopped);
  // A query executes: execution/common.rs validate_canister, "is not running".
  t.deepEqual(lab.queryRaw(stopped, "read", none).response, userReject(RejectCode.CanisterError, "IC0508", `Canister ${stopped} is not running`));
});

test("item 1: every error code's reject code is its first digit (rs/types/error_types From<ErrorCode> for RejectCode)", (t) => {
  const byDigit = new Map<RejectCode, string[]>();
  for (const code of Object.values(ErrorCode)) byDigit.set(rejectCodeOf(code), [...(byDigit.get(rejectCodeOf(code)) ?? []), code]);
  t.deepEqual(byDigit.get(RejectCode.SysFatal), ["IC0102"]);
  t.deepEqual(byDigit.get(RejectCode.DestinationInvalid), ["IC0301", "IC0305"]);
  t.is(rejectCodeOf(ErrorCode.CanisterRejectedMessage), RejectCode.CanisterReject);
  t.is(rejectCodeOf(ErrorCode.CanisterOutOfCycles), RejectCode.SysTransient);
  t.true((byDigit.get(RejectCode.CanisterError) ?? []).every((c) => c.startsWith("IC05")));
});

test("item 1: a replica's ingress history, request_status and queries carry the IC's error codes; item 3 holds on the replica's query path", (t) => {
  const a = canisterIdFromU64(0n);
  const machine = new ExecutionStateMachine(new SimDisk(), { genesis: [{ id: a, wasm: fixture("motoko/conform.classic.wasm") }], checkpointInterval: 10 });
  const base = { sender: "alice", body: "", sizeBytes: 50, expiryUs: timeUs(1e9), signature: "" };
  const boom = { ...base, id: "aa".repeat(32) as HashHex, nonce: 1, call: { canister: a, method: "boom", argHex: bytesToHex(IDL.encode([IDL.Text], ["oops"])) } };
  const inc = { ...base, id: "bb".repeat(32) as HashHex, nonce: 2, call: { canister: a, method: "inc", argHex: bytesToHex(none) } };
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00" as HashHex, ingress: [boom, inc], requiresFullStateHash: false });
  const failed = machine.ingressStatus(boom.id);
  const description = `Error from Canister ${a}: Canister called \`ic0.trap\` with message: 'oops'.\n${GRACEFUL} ${DOCS}trapped-explicitly`;
  t.deepEqual(failed, { status: "failed", height: height(1), code: RejectCode.CanisterError, message: description, errorCode: "IC0503" });
  // read_state's request_status: reject_code, reject_message and error_code (spec "Request status").
  if (failed !== undefined) t.deepEqual(requestStatusOf(failed), { status: "rejected", rejectCode: 5, rejectMessage: description, errorCode: "IC0503" });
  t.deepEqual(machine.query(a, "nosuch", none), {
    kind: "reject",
    code: RejectCode.CanisterError,
    message: `Error from Canister ${a}: Canister has no query method 'nosuch'..\nCheck that the method being called is exported by the target canister. ${DOCS}method-not-found`,
    errorCode: "IC0536",
  });
  // The composite query runs its call tree on the replica too, and its self-call sees the committed counter.
  const via = machine.query(a, "viaSelf", none);
  t.deepEqual(via.kind === "reply" ? IDL.decode([IDL.Nat, IDL.Nat], via.data) : via, [1001n, 1n]);
});

/** The canister's log lines as fetch_canister_logs returns them to a controller. */
function logLines(lab: ExecutionLab, id: CanisterId): string[] {
  const arg = IDL.encode([MANAGEMENT_TYPES.fetch_canister_logs.arg], [{ canister_id: Principal.fromText(id) }]);
  const response = executeManagementQuery((c) => lab.canister(c), DEFAULT_SENDER, "fetch_canister_logs", arg);
  if (response.kind === "reject") throw new Error(response.message);
  const [{ canister_log_records }] = IDL.decode([...MANAGEMENT_TYPES.fetch_canister_logs.ret], response.data) as unknown as [{ canister_log_records: { content: Uint8Array }[] }];
  return canister_log_records.map((r) => new TextDecoder().decode(Uint8Array.from(r.content)));
}

test("item 5: the canister log holds what the canister printed and the IC's own trap records, nothing the lab adds", (t) => {
  const { lab, a } = labWithConform("classic");
  lab.updateRaw(a, "boom", IDL.encode([IDL.Text], ["oops"]));
  lab.updateRaw(a, "div32", IDL.encode([IDL.Nat32, IDL.Nat32], [1, 0]));
  // The instruction limit is no trap of the canister's: the IC logs nothing for it.
  lab.updateRaw(a, "spin", none);
  // rs/embedders wasm_executor.rs: CalledTrap → "[TRAP]: <message>", Trapped → "[TRAP]: <trap code>".
  t.deepEqual(logLines(lab, a), ["[TRAP]: oops", "[TRAP]: integer division by 0"]);
  const quiet = lab.createCanister();
  lab.installCode(quiet, wat(`(module (import "ic0" "trap" (func $trap (param i32 i32))) (memory 1)
    (func (export "canister_update hush") (call $trap (i32.const 0) (i32.const 0))))`));
  lab.updateRaw(quiet, "hush", none);
  t.deepEqual(logLines(lab, quiet), ["[TRAP]: (no message)"]);
});

test("item 1: management canister refusals carry the IC's canister manager texts and codes (canister_manager/types.rs)", (t) => {
  const lab = new ExecutionLab();
  const owner = DEFAULT_SENDER;
  const id = lab.createCanister({ controllers: [owner] });
  const stranger = "2vxsx-fae" as PrincipalText;
  const statusArg = IDL.encode([MANAGEMENT_TYPES.canister_status.arg], [{ canister_id: Principal.fromText(id) }]);
  // CanisterInvalidController → IC0512 with its suggestion line.
  t.deepEqual(
    lab.updateRaw(MANAGEMENT_CANISTER as string as CanisterId, "canister_status", statusArg, { caller: stranger }).response,
    userReject(
      RejectCode.CanisterError,
      "IC0512",
      `Only the controllers of the canister ${id} can control it.\nCanister's controllers: ${owner}\nSender's ID: ${stranger}\n` +
        `Execute this call from a controller of the target canister or add the current caller as a controller. ${DOCS}invalid-controller`,
    ),
  );
  // DeleteCanisterNotStopped → IC0510; snapshots of an empty canister → IC0406.
  const notStopped = t.throws(() => lab.deleteCanister(id), { instanceOf: LabError });
  t.is(notStopped?.errorCode, "IC0510");
  t.is(notStopped?.message, `Canister ${id} must be stopped before it is deleted.\nStop the canister before deleting it. ${DOCS}delete-canister-not-stopped`);
  const empty = t.throws(() => lab.takeSnapshot(id), { instanceOf: LabError });
  t.deepEqual([empty?.code, empty?.errorCode, empty?.message], [RejectCode.CanisterReject, "IC0406", `Failed to create snapshot for empty canister ${id}:`]);
});
