// Call contexts and their answers: who waits for the answer of a call, what an invocation's
// reply or reject becomes for them, and the results of messages that did not run or whose effects
// are thrown away (every reject in the form its receiver sees: reject-codes.ts).
import {
  MANAGEMENT_CANISTER,
  RejectCode,
  type CallContext,
  type CallContextId,
  type CallOrigin,
  type Callback,
  type CallbackId,
  type CanisterId,
  type CanisterMessage,
  type CanisterState,
  type ExecutionResult,
  type OutgoingCall,
  type OutgoingResponse,
  type PrincipalText,
  type Response,
} from "./interfaces.ts";
import { callDeadlineNs } from "./deadlines.ts";
import type { InvocationOutcome } from "./invocation.ts";
import { explicitReject, hypervisorUserError, noReplyFor, rejectCodeOf, rejectFor, type UserError } from "./reject-codes.ts";
import type { SystemApiSession } from "./system-api.ts";

/** The caller a call context's callbacks see as msg_caller. */
export function callerOf(origin: CallOrigin): PrincipalText {
  switch (origin.kind) {
    case "ingress":
    case "query":
      return origin.caller;
    case "canister":
      return origin.caller as string as PrincipalText;
    case "system":
      return MANAGEMENT_CANISTER;
  }
}

/** Who waits for the answer of an incoming call (undefined for responses and system tasks). */
export function originOf(message: CanisterMessage): CallOrigin | undefined {
  switch (message.kind) {
    case "ingress":
      return { kind: "ingress", messageId: message.messageId, caller: message.caller };
    case "request":
      return canisterOrigin(message);
    case "query":
      return { kind: "query", caller: message.caller };
    default:
      return undefined;
  }
}

/** Who waits for a canister's request: the caller's callback, and the call's deadline if best-effort. */
export function canisterOrigin(message: Extract<CanisterMessage, { kind: "request" }>): CallOrigin {
  return {
    kind: "canister",
    caller: message.caller,
    callbackId: message.callerCallbackId,
    ...(message.deadlineNs === undefined ? {} : { deadlineNs: message.deadlineNs }),
  };
}

/** A call context opened for an invocation that has not answered yet. */
export function openContext(canister: CanisterState, origin: CallOrigin, availableCycles: bigint): { canister: CanisterState; contextId: CallContextId } {
  const contextId = canister.nextCallContextId as CallContextId;
  const context: CallContext = { id: contextId, origin, responded: false, availableCycles };
  return { canister: { ...canister, nextCallContextId: canister.nextCallContextId + 1n, callContexts: [...canister.callContexts, context] }, contextId };
}

/** Nothing to run and nobody to answer (a stale callback, a task without its export). */
export function notRun(canister: CanisterState, why: string): ExecutionResult {
  return {
    canister,
    outcome: { kind: "rejected", code: RejectCode.DestinationInvalid, message: why },
    instructionsUsed: 0n,
    responses: [],
    outgoingCalls: [],
    heapDeltaPages: 0,
    debugLog: [],
    readTime: false,
  };
}

/**
 * A best-effort response that arrived after its callback expired (or was answered): nothing
 * runs; the cycles it refunds go to the balance (the IC's credit_refund for dropped responses).
 */
export function droppedResponse(canister: CanisterState, message: Extract<CanisterMessage, { kind: "response" }>): ExecutionResult {
  const credited = message.refundedCycles === 0n ? canister : { ...canister, cyclesBalance: canister.cyclesBalance + message.refundedCycles };
  return notRun(credited, `best-effort response for callback ${message.callbackId} dropped: its deadline expired`);
}

/**
 * The message could not run (reject-codes.ts: told to its origin in the form the IC uses for it),
 * `refundedCycles` going back with the reject.
 */
export function rejected(canister: CanisterState, error: UserError, origin?: CallOrigin, refundedCycles = 0n): ExecutionResult {
  return {
    canister,
    outcome: { kind: "rejected", code: rejectCodeOf(error.code), message: error.description },
    instructionsUsed: 0n,
    responses: origin === undefined ? [] : [{ origin, response: rejectFor(origin, error), refundedCycles }],
    outgoingCalls: [],
    heapDeltaPages: 0,
    debugLog: [],
    readTime: false,
  };
}

/** The reply/reject a session produced for `origin`, or the IC's "no reply" reject when it produced none. */
function responseOf(id: CanisterId, s: SystemApiSession, origin: CallOrigin): Response {
  if (s.reply === undefined) return noReplyFor(origin, id);
  return s.reply.kind === "reply" ? { kind: "reply", data: s.reply.data } : explicitReject(origin, s.reply.message);
}

/**
 * The result of a call whose effects are thrown away (a trap, or a query): the canister is
 * unchanged and the caller gets the reply, or a CANISTER_ERROR reject naming the trap.
 */
export function discardedResult(canister: CanisterState, origin: CallOrigin, out: InvocationOutcome, refundedCycles: bigint): ExecutionResult {
  const response: Response =
    out.trap !== undefined ? rejectFor(origin, hypervisorUserError(canister.id, out.trap.error)) : responseOf(canister.id, out.session, origin);
  return {
    canister,
    outcome: out.trap !== undefined ? { kind: "trapped", message: out.trap.message, error: out.trap.error } : { kind: "completed" },
    instructionsUsed: out.instructionsUsed,
    responses: [{ origin, response, refundedCycles }],
    outgoingCalls: [],
    heapDeltaPages: 0,
    debugLog: out.session.debugLog,
    readTime: out.session.usedTime,
  };
}

/**
 * After a committed invocation on behalf of call context `contextId`: registers the performed
 * calls as callbacks, records the response, and closes the context when nothing is outstanding.
 */
export function finishCall(canister: CanisterState, contextId: CallContextId, out: InvocationOutcome, heapDeltaPages: number, timeNs: bigint): ExecutionResult {
  const s = out.session;
  const { callbacks, outgoingCalls, nextCallbackId } = registerCalls(canister, contextId, s, timeNs);
  const responses: OutgoingResponse[] = [];
  const contexts: CallContext[] = [];
  for (const c of canister.callContexts) {
    if (c.id !== contextId) {
      contexts.push(c);
      continue;
    }
    let ctx: CallContext = { ...c, availableCycles: s.availableCycles };
    if (s.reply !== undefined && !c.responded) {
      responses.push({ origin: c.origin, response: responseOf(canister.id, s, c.origin), refundedCycles: ctx.availableCycles });
      ctx = { ...ctx, responded: true, availableCycles: 0n };
    }
    const outstanding = callbacks.some((cb) => cb.callContextId === contextId);
    if (outstanding) {
      contexts.push(ctx);
    } else if (!ctx.responded && c.origin.kind !== "system") {
      responses.push({ origin: c.origin, response: responseOf(canister.id, s, c.origin), refundedCycles: ctx.availableCycles });
    }
  }
  return {
    canister: { ...canister, callbacks, callContexts: contexts, nextCallbackId },
    outcome: { kind: "completed" },
    instructionsUsed: out.instructionsUsed,
    responses,
    outgoingCalls,
    heapDeltaPages,
    debugLog: s.debugLog,
    readTime: s.usedTime,
  };
}

/** The calls a session performed: a callback each in call context `contextId`, and the requests to send. */
function registerCalls(
  canister: CanisterState,
  contextId: CallContextId,
  s: SystemApiSession,
  timeNs: bigint,
): { callbacks: Callback[]; outgoingCalls: OutgoingCall[]; nextCallbackId: bigint } {
  let nextCallbackId = canister.nextCallbackId;
  const outgoingCalls: OutgoingCall[] = [];
  const newCallbacks: Callback[] = [];
  for (const call of s.performedCalls) {
    const id = nextCallbackId++ as CallbackId;
    // A best-effort call's deadline counts from the time of the message that made it.
    const deadline = call.timeoutSeconds === undefined ? {} : { deadlineNs: callDeadlineNs(timeNs, call.timeoutSeconds) };
    newCallbacks.push({
      id,
      callContextId: contextId,
      callee: call.callee,
      onReply: call.onReply,
      onReject: call.onReject,
      onCleanup: call.onCleanup,
      cyclesSent: call.cycles,
      ...deadline,
    });
    outgoingCalls.push({ callee: call.callee, method: call.method, arg: call.arg, cycles: call.cycles, callbackId: id, ...deadline });
  }
  return { callbacks: [...canister.callbacks, ...newCallbacks], outgoingCalls, nextCallbackId };
}
