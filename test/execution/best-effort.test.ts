// Issue 15 item 4: best-effort calls with deadlines. A caller asks for a best-effort response
// (ic0.call_with_best_effort_response, Motoko `await (with timeout = n) …`); the call gets a
// deadline (time of the call + min(timeout, MAX_CALL_TIMEOUT = 300 s), in whole seconds); both
// sides read it with ic0.msg_deadline (Motoko InternetComputer.replyDeadline); once the batch time
// has passed it without a response, the caller gets SYS_UNKNOWN and a late answer is dropped.
//
// Where the expected values come from:
//  - the spec, docs/references/ic-interface-spec.md (dfinity/portal): "ic0.call_with_best_effort_response",
//    "ic0.msg_deadline" (0 for ingress, guaranteed-response calls and query methods), "Reject codes" (6 SYS_UNKNOWN);
//  - dfinity/ic rs/embedders/src/wasmtime_embedder/system_api.rs: MAX_CALL_TIMEOUT_SECONDS = 300 and
//    the trap texts "ic0_call_with_best_effort_response failed because a timeout is already set."
//    and "ic0.call_with_best_effort_response called when no call is under construction.";
//  - dfinity/ic rs/embedders/src/wasmtime_embedder/system_api/request_in_prep.rs: the deadline is
//    CoarseTime::floor(time + timeout), whole seconds;
//  - dfinity/ic rs/replicated_state/src/canister_state/system_state.rs (`pop_input`): the reject
//    text "Call deadline has expired.", no refund; call_context_manager.rs: expired once `deadline < now`.
// The canisters are fixtures/canisters/motoko/besteffort.mo (classic and EOP builds) and WAT modules.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { DEADLINE_EXPIRED_MESSAGE, expireCallbacks } from "../../harness/execution/deadlines.ts";
import { WasmExecutor } from "../../harness/execution/executor.ts";
import { canisterIdFromU64, RejectCode, type CallbackId, type CanisterState } from "../../harness/execution/interfaces.ts";
import { ExecutionLab, type LabOptions } from "../../harness/execution/lab.ts";
import { TOOLCHAIN_ERROR_HELP } from "../../harness/execution/reject-codes.ts";
import { APP_SUBNET_ROUND_CONFIG } from "../../harness/execution/round.ts";
import { fixture, installedCanister, TEST_SENDER, TEST_TIME_NS, wat } from "./helpers.ts";

const SECOND_NS = 1_000_000_000n;
const EXPIRED = "reject system_unknown: Call deadline has expired.";

/** One round per generation of messages: a call tree spreads over rounds as on a busy subnet. */
const ONE_ITERATION_ROUNDS: LabOptions = { rounds: { ...APP_SUBNET_ROUND_CONFIG, maxIterations: 1 } };

for (const build of ["classic", "eop"] as const) {
  const wasm = fixture(`motoko/besteffort.${build}.wasm`);
  const pair = (options: LabOptions = {}) => {
    const lab = new ExecutionLab(options);
    const caller = lab.createCanister();
    lab.installCode(caller, wasm);
    const callee = lab.createCanister();
    lab.installCode(callee, wasm);
    const text = (method: string, types: IDL.Type[], args: unknown[]): string => (lab.update(caller, method, types, args, [IDL.Text]) as [string])[0];
    return {
      lab,
      caller,
      callee,
      askDeadline: (timeout: number) => text("askDeadline", [IDL.Principal, IDL.Nat32], [Principal.fromText(callee), timeout]),
      askSlow: (timeout: number, hops: bigint) => text("askSlow", [IDL.Principal, IDL.Nat32, IDL.Nat], [Principal.fromText(callee), timeout, hops]),
      finished: () => (lab.query(callee, "finishedCount", [], [], [IDL.Nat]) as [bigint])[0],
    };
  };

  test(`item 4 (${build}): the callee and the caller's callback see the deadline: time of the call + timeout, in ns (spec 'ic0.msg_deadline')`, (t) => {
    for (const options of [{}, ONE_ITERATION_ROUNDS]) {
      const p = pair(options);
      const callTime = p.lab.timeNs; // whole seconds (DEFAULT_START_TIME_NS)
      const deadline = callTime + 10n * SECOND_NS;
      t.is(p.askDeadline(10), `callee ${deadline} callback ${deadline}`);
    }
  });

  test(`item 4 (${build}): msg_deadline is 0 for ingress and for guaranteed-response calls (spec 'ic0.msg_deadline')`, (t) => {
    const p = pair();
    t.is(p.lab.update(p.callee, "deadline", [], [], [IDL.Nat])[0], 0n, "an ingress message has no deadline");
    t.is((p.lab.update(p.caller, "askGuaranteed", [IDL.Principal], [Principal.fromText(p.callee)], [IDL.Text]) as [string])[0], "callee 0 callback 0");
  });

  test(`item 4 (${build}): a timeout above MAX_CALL_TIMEOUT is bounded to 300 s, without an error (system_api.rs MAX_CALL_TIMEOUT_SECONDS)`, (t) => {
    for (const timeout of [301, 100_000, 0xffff_ffff]) {
      const p = pair();
      const deadline = p.lab.timeNs + 300n * SECOND_NS;
      t.is(p.askDeadline(timeout), `callee ${deadline} callback ${deadline}`, `timeout ${timeout}`);
    }
  });

  test(`item 4 (${build}): the deadline is in whole seconds, rounded down (request_in_prep.rs: CoarseTime::floor)`, (t) => {
    const p = pair();
    p.lab.advanceTime(SECOND_NS / 2n + 7n);
    const floor = p.lab.timeNs - (p.lab.timeNs % SECOND_NS);
    t.is(p.askDeadline(5), `callee ${floor + 5n * SECOND_NS} callback ${floor + 5n * SECOND_NS}`);
  });

  test(`item 4 (${build}): a callee slower than the timeout — the caller gets SYS_UNKNOWN "Call deadline has expired.", the callee still finishes, its late reply is dropped`, (t) => {
    for (const [mode, options] of [["direct", {}], ["rounds", ONE_ITERATION_ROUNDS]] as const) {
      const p = pair(options);
      const deadline = p.lab.timeNs + 3n * SECOND_NS;
      const before = p.lab.cyclesBalance(p.caller);
      // Twenty self-calls take twenty rounds or more; the deadline passes after three.
      t.is(p.askSlow(3, 20n), `${EXPIRED} callback ${deadline}`, mode);
      for (let i = 0; i < 50 && p.finished() === 0n; i++) p.lab.tick();
      t.is(p.finished(), 1n, "the callee ran to its end");
      t.deepEqual(p.lab.canister(p.caller).callbacks, [], "the caller holds no callback: the late reply found none and was dropped");
      t.deepEqual(p.lab.canister(p.caller).callContexts, [], "and no call context");
      t.is(p.lab.cyclesBalance(p.caller), before, "no cycles were attached, none came back");
      // The caller still works: the dropped reply left nothing behind.
      const next = p.lab.timeNs + 60n * SECOND_NS;
      t.is(p.askDeadline(60), `callee ${next} callback ${next}`);
    }
  });

  test(`item 4 (${build}): a response already queued when the deadline passes wins; one produced after it is dropped (the race, one round apart)`, (t) => {
    // One iteration per round, 1 s apart. The call is made in round 1 (time T), deadline T + 3 s.
    // With one hop the callee's reply is produced in round 4 (T + 3 s) and waits in the caller's
    // queue when round 5 (T + 4 s, past the deadline) starts: it is delivered. With two hops it is
    // produced in round 6: the deadline expired at the start of round 5, SYS_UNKNOWN is delivered
    // instead and the reply is dropped.
    const quick = pair(ONE_ITERATION_ROUNDS);
    const deadline = quick.lab.timeNs + 3n * SECOND_NS;
    t.is(quick.askSlow(3, 1n), `reply 1 callback ${deadline}`);
    const late = pair(ONE_ITERATION_ROUNDS);
    t.is(late.askSlow(3, 2n), `${EXPIRED} callback ${deadline}`);
    t.is(late.lab.round, 5, "the reject ran in the round whose start passed the deadline");
  });

  test(`item 4 (${build}): timeout 0 — within one round the answer still arrives (deadlines are only checked at the start of a round); a round later it has expired`, (t) => {
    // Rounds mode: the callee runs in the caller's round (a later iteration), its answer too.
    const sameRound = pair({ rounds: APP_SUBNET_ROUND_CONFIG });
    const now = sameRound.lab.timeNs;
    t.is(sameRound.askDeadline(0), `callee ${now} callback ${now}`);
    // One iteration per round: the request waits for the next round, which starts past the
    // deadline: it is dropped unexecuted (queues.rs time_out_messages) and the caller gets SYS_UNKNOWN.
    const nextRound = pair(ONE_ITERATION_ROUNDS);
    const then = nextRound.lab.timeNs;
    t.is(nextRound.askSlow(0, 0n), `${EXPIRED} callback ${then}`);
    for (let i = 0; i < 5; i++) nextRound.lab.tick();
    t.is(nextRound.finished(), 0n, "the expired request was never executed");
  });
}

// `twice` asks for a best-effort response twice on one call; `orphan` without a call under
// construction; `query` from a query method, where the spec does not allow it.
const MISUSE = wat(`(module
  (import "ic0" "call_new" (func $new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_with_best_effort_response" (func $bestEffort (param i32)))
  (import "ic0" "msg_deadline" (func $deadline (result i64)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 0) "raw_rand")
  (func $newCall (call $new (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "canister_update twice") (call $newCall) (call $bestEffort (i32.const 10)) (call $bestEffort (i32.const 10)) (call $reply))
  (func (export "canister_update orphan") (call $bestEffort (i32.const 10)) (call $reply))
  (func (export "canister_query query") (call $newCall) (call $bestEffort (i32.const 10)) (call $reply))
  (func (export "canister_update deadline") (drop (call $deadline)) (call $reply)))`);

test("item 4: call_with_best_effort_response twice on one call, or with no call under construction, traps with the replica's texts (system_api.rs)", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, MISUSE);
  const reject = (method: string): string => {
    const r = lab.updateRaw(id, method, new Uint8Array()).response;
    return r.kind === "reject" ? `${r.code} ${r.errorCode} ${r.message}` : "replied";
  };
  // Both are ToolchainContractViolations: the IC adds "." and the toolchain hint line
  // (rs/interfaces/src/execution_environment/errors.rs into_user_error, ErrorHelp::ToolchainError).
  t.is(reject("twice"), `5 IC0504 Error from Canister ${id}: Canister violated contract: ic0_call_with_best_effort_response failed because a timeout is already set..\n${TOOLCHAIN_ERROR_HELP}`);
  t.is(reject("orphan"), `5 IC0504 Error from Canister ${id}: Canister violated contract: ic0.call_with_best_effort_response called when no call is under construction..\n${TOOLCHAIN_ERROR_HELP}`);
  const q = lab.queryRaw(id, "query", new Uint8Array()).response;
  // system_api.rs error_for: the wrong-mode text, "non replicated query" (ApiType::as_str).
  t.regex(q.kind === "reject" ? q.message : "", /"ic0_call_new" cannot be executed in non replicated query mode/, "a query cannot even start a call");
  t.is(lab.updateRaw(id, "deadline", new Uint8Array()).response.kind, "reply", "msg_deadline is available in an update");
});

// `call` makes one best-effort call (timeout 2 s) to itself (canister id 1) with 100 cycles attached and
// waits; its reply callback answers "R", its reject callback answers the reject code as one byte.
const WAITER = wat(`(module
  (import "ic0" "call_new" (func $new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_with_best_effort_response" (func $bestEffort (param i32)))
  (import "ic0" "call_cycles_add128" (func $cycles (param i64 i64)))
  (import "ic0" "call_perform" (func $perform (result i32)))
  (import "ic0" "msg_reject_code" (func $code (result i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $onReply $onReject)
  (data (i32.const 0) "\\00\\00\\00\\00\\00\\00\\00\\01\\01\\01")
  (data (i32.const 16) "m")
  (data (i32.const 32) "R")
  (func $onReply (param i32) (call $append (i32.const 32) (i32.const 1)) (call $reply))
  (func $onReject (param i32) (i32.store8 (i32.const 48) (call $code)) (call $append (i32.const 48) (i32.const 1)) (call $reply))
  (func (export "canister_update call")
    (call $new (i32.const 0) (i32.const 10) (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))
    (call $bestEffort (i32.const 2))
    (call $cycles (i64.const 0) (i64.const 100))
    (drop (call $perform))))`);

test("item 4: an expired callback runs its reject callback with SYS_UNKNOWN once; the callee's late answer is dropped and its refund credited (system_state.rs push_input, credit_refund)", (t) => {
  const executor = new WasmExecutor();
  const params = { instructionLimit: 10n ** 10n, timeNs: TEST_TIME_NS };
  const waiting = executor.executeMessage(installedCanister(executor, WAITER), { kind: "ingress", messageId: "m1", caller: TEST_SENDER, method: "call", arg: new Uint8Array() }, params);
  const call = waiting.outgoingCalls[0];
  t.is(call?.deadlineNs, TEST_TIME_NS + 2n * SECOND_NS, "the call carries its deadline");
  const callbackId = call?.callbackId as CallbackId;
  const balance = waiting.canister.cyclesBalance;
  // Not yet: the deadline has not passed at T + 2 s (expiry needs deadline < now, whole seconds).
  t.is(expireCallbacks(waiting.canister, TEST_TIME_NS + 2n * SECOND_NS + SECOND_NS - 1n, () => false).responses.length, 0);
  const expired = expireCallbacks(waiting.canister, TEST_TIME_NS + 3n * SECOND_NS, () => false);
  t.deepEqual(expired.responses.map((r) => r.response), [{ kind: "reject", code: RejectCode.SysUnknown, message: DEADLINE_EXPIRED_MESSAGE }]);
  t.is(expired.responses[0]?.refundedCycles, 0n, "no refund in a deadline-expired reject");
  t.is(expireCallbacks(expired.canister, TEST_TIME_NS + 9n * SECOND_NS, () => false).responses.length, 0, "a callback expires once");
  // The callee's reply comes after the expiry: dropped, nothing runs, its refund is credited.
  const later: CanisterState = expired.canister;
  const late = executor.executeMessage(later, { kind: "response", callbackId, response: { kind: "reply", data: new Uint8Array() }, refundedCycles: 60n, deadlineNs: call?.deadlineNs ?? 0n }, params);
  t.deepEqual(late.responses, [], "the ingress is not answered by the dropped reply");
  t.is(late.canister.cyclesBalance, balance + 60n);
  t.is(late.canister.callbacks.length, 1, "the callback waits for its SYS_UNKNOWN reject");
  // The system's reject runs the reject callback, which answers the ingress with code 6.
  const rejected = executor.executeMessage(late.canister, expired.responses[0]!, params);
  t.deepEqual(rejected.responses.map((r) => (r.response.kind === "reply" ? [...r.response.data] : r.response)), [[6]]);
  t.deepEqual(rejected.canister.callbacks, []);
  // A response for the callback that is gone by now: dropped too, refund credited.
  const gone = executor.executeMessage(rejected.canister, { kind: "response", callbackId, response: { kind: "reply", data: new Uint8Array() }, refundedCycles: 40n, deadlineNs: call?.deadlineNs ?? 0n }, params);
  t.deepEqual(gone.responses, []);
  t.is(gone.canister.cyclesBalance, rejected.canister.cyclesBalance + 40n);
  t.is(call?.callee, canisterIdFromU64(1n), "it called itself (canister id 1)");
});
