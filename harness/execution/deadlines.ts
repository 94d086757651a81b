// Best-effort calls (IC interface spec: "ic0.call_with_best_effort_response", "ic0.msg_deadline",
// "Reject codes" — SYS_UNKNOWN): a call made with a timeout carries a deadline; once the subnet's
// batch time has passed it and no response has arrived, the caller's callback is answered by the
// system with SYS_UNKNOWN, and a response that comes later is dropped.
//
// Facts from dfinity/ic (read, not copied):
//  - rs/embedders/src/wasmtime_embedder/system_api.rs: MAX_CALL_TIMEOUT_SECONDS = 300; the timeout
//    is silently bounded by it; a second call, or one without a call under construction, traps;
//  - rs/embedders/src/wasmtime_embedder/system_api/request_in_prep.rs: deadline =
//    CoarseTime::floor(time of the call + timeout), i.e. whole seconds;
//  - rs/replicated_state/src/canister_state/system_state/call_context_manager.rs: a callback
//    expires once its deadline is `< now` (now the batch time as CoarseTime, whole seconds);
//  - rs/replicated_state/src/canister_state/system_state.rs (`pop_input`): the expiry becomes a
//    reject response with SYS_UNKNOWN and the text "Call deadline has expired.", no refund; a
//    callback that already has a response queued, or whose response is executing, is not expired
//    again; a best-effort response whose callback is gone (or already expired) is dropped and its
//    refund credited;
//  - rs/replicated_state/src/canister_state/queues.rs (`time_out_messages`): best-effort requests
//    waiting in input queues are dropped once expired (responses in input queues never are);
//  - rs/messaging/src/state_machine.rs: messages and callbacks time out at the start of a batch,
//    before induction.
import type { CallbackId, CanisterMessage, CanisterState } from "./interfaces.ts";
import { RejectCode } from "./interfaces.ts";

/** The IC's upper bound on a best-effort call's timeout (MAX_CALL_TIMEOUT in the spec). */
export const MAX_CALL_TIMEOUT_SECONDS = 300;
/** The reject text of an expired callback (system_state.rs `pop_input`). */
export const DEADLINE_EXPIRED_MESSAGE = "Call deadline has expired.";

const NS_PER_SECOND = 1_000_000_000n;

/** Time as the IC's CoarseTime: whole seconds, rounded down, still in ns. */
export function coarseTimeNs(timeNs: bigint): bigint {
  return timeNs - (timeNs % NS_PER_SECOND);
}

/** The timeout a call asked for (ic0's i32 read as u32), bounded by MAX_CALL_TIMEOUT_SECONDS. */
export function boundedTimeoutSeconds(rawI32: number): number {
  return Math.min(rawI32 >>> 0, MAX_CALL_TIMEOUT_SECONDS);
}

/** The deadline of a best-effort call made at `timeNs` with `timeoutSeconds` (already bounded). */
export function callDeadlineNs(timeNs: bigint, timeoutSeconds: number): bigint {
  return coarseTimeNs(timeNs + BigInt(timeoutSeconds) * NS_PER_SECOND);
}

/** True once batch time `nowNs` has passed `deadlineNs` (the IC compares `deadline < now` in CoarseTime). */
export function deadlinePassed(deadlineNs: bigint, nowNs: bigint): boolean {
  return deadlineNs < coarseTimeNs(nowNs);
}

/** A best-effort request whose deadline has passed: dropped from an input queue instead of executed. */
export function isExpiredRequest(message: CanisterMessage, nowNs: bigint): boolean {
  return message.kind === "request" && message.deadlineNs !== undefined && deadlinePassed(message.deadlineNs, nowNs);
}

/** The system's answer to an expired callback: SYS_UNKNOWN, no refund. */
export function deadlineExpiredResponse(callbackId: CallbackId, deadlineNs: bigint): Extract<CanisterMessage, { kind: "response" }> {
  return {
    kind: "response",
    callbackId,
    response: { kind: "reject", code: RejectCode.SysUnknown, message: DEADLINE_EXPIRED_MESSAGE },
    refundedCycles: 0n,
    deadlineNs,
    deadlineExpired: true,
  };
}

export interface ExpiredCallbacks {
  /** The canister with those callbacks marked expired (the same object when none expired). */
  readonly canister: CanisterState;
  /** One "deadline expired" reject per newly expired callback, in callback id order. */
  readonly responses: readonly Extract<CanisterMessage, { kind: "response" }>[];
}

/**
 * Expires the canister's best-effort callbacks whose deadline `nowNs` has passed, unless a response
 * for one is already waiting or executing (`hasResponse`): each gets the SYS_UNKNOWN reject,
 * which the caller enqueues like any response. Callbacks are marked so that this happens once and
 * so that the callee's own answer, should it still come, is dropped (messages.ts executeResponse).
 */
export function expireCallbacks(canister: CanisterState, nowNs: bigint, hasResponse: (id: CallbackId) => boolean): ExpiredCallbacks {
  let changed = false;
  const responses: Extract<CanisterMessage, { kind: "response" }>[] = [];
  const callbacks = canister.callbacks.map((cb) => {
    if (cb.deadlineNs === undefined || cb.expired === true || !deadlinePassed(cb.deadlineNs, nowNs)) return cb;
    // A response already waiting (or executing) wins: the callback stays as it is and that
    // response consumes it, as the IC enqueues no second response for it.
    if (hasResponse(cb.id)) return cb;
    changed = true;
    responses.push(deadlineExpiredResponse(cb.id, cb.deadlineNs));
    return { ...cb, expired: true as const };
  });
  return { canister: changed ? { ...canister, callbacks } : canister, responses };
}
