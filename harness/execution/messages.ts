// Messages that run in a call context: incoming calls (ingress and inter-canister requests,
// replicated or not) and the responses to the calls a canister made, whose reply or reject
// callback runs, with its cleanup closure when it traps.
//
// An update and a callback are atomic: on a trap everything the invocation did is rolled back
// (only the instructions stay charged); a query's changes are always discarded.
import type { CallContext, CallOrigin, CanisterMessage, CanisterState, ExecutionParams, ExecutionResult, ExecutionState, OutgoingResponse, PrincipalText, WasmClosure } from "./interfaces.ts";
import type { LiveInstance } from "./instance.ts";
import { wasmMemoryLimitError, wasmMemoryUsageBytes } from "./low-wasm-memory.ts";
import { canisterOrigin, callerOf, discardedResult, droppedResponse, finishCall, notRun, openContext, rejected } from "./call-contexts.ts";
import { commit, invokeOn, NOTHING_RECEIVED, writtenPages, type ExecutionContext, type Invocation, type InvocationOutcome } from "./invocation.ts";
import type { CanisterTrap } from "./system-api.ts";
import { canisterNotRunning, compositeQueryInReplicatedMode, hypervisorUserError, rejectFor, type HypervisorError, type UserError } from "./reject-codes.ts";

/**
 * Known bugs in execution that the lab must catch on the first run that exercises them (issue
 * 11, C3). `trapped-update-keeps-heap`: an update call that traps keeps the heap and globals it
 * wrote — its rollback is skipped — though the caller still gets the trap's reject.
 */
export type ExecutionCanary = "trapped-update-keeps-heap";

export interface MessageContext extends ExecutionContext {
  /** Tests only: a known bug switched on (see ExecutionCanary). */
  readonly canary: ExecutionCanary | undefined;
}

function exportName(kind: "update" | "query", method: string): string {
  return `canister_${kind} ${method}`;
}

/** An ingress message or a canister's request: an update method, or a query method in replicated mode. */
export function executeCall(
  ctx: MessageContext,
  canister: CanisterState,
  message: Extract<CanisterMessage, { kind: "ingress" | "request" }>,
  params: ExecutionParams,
): ExecutionResult {
  const origin: CallOrigin =
    message.kind === "ingress" ? { kind: "ingress", messageId: message.messageId, caller: message.caller } : canisterOrigin(message);
  const cycles = message.kind === "request" ? message.cycles : 0n;
  const reject = (error: UserError): ExecutionResult => rejected(canister, error, origin, cycles);
  // As the IC's validate_message: the canister must run, then have a module exporting the method.
  if (canister.status !== "running") return reject(canisterNotRunning(canister.id, canister.status));
  const exec = canister.execution;
  if (exec === undefined) return reject(hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }));
  const update = exportName("update", message.method);
  const query = exportName("query", message.method);
  const entry = exec.exports.includes(update) ? update : exec.exports.includes(query) ? query : undefined;
  if (entry === undefined) {
    if (exec.exports.includes(`canister_composite_query ${message.method}`)) return reject(compositeQueryInReplicatedMode);
    return reject(hypervisorUserError(canister.id, { kind: "method-not-found", method: "update", name: message.method }));
  }
  const replicatedQuery = entry === query;
  // An update method does not run while the memory is above wasm_memory_limit (the limit was
  // lowered under it): update.rs CallOrTaskHelper::new; replicated queries still run.
  const overLimit = replicatedQuery ? undefined : wasmMemoryLimitError(canister, wasmMemoryUsageBytes(canister));
  if (overLimit !== undefined) return reject(hypervisorUserError(canister.id, overLimit));
  const caller = message.kind === "ingress" ? message.caller : (message.caller as string as PrincipalText);
  const { li, out } = invokeOn(ctx, canister, exec, {
    ...NOTHING_RECEIVED,
    context: replicatedQuery ? "RQ" : "U",
    caller,
    arg: message.arg,
    responsePending: true,
    availableCycles: cycles,
    // Spec "ic0.msg_deadline": a best-effort request's deadline for update methods; 0 for
    // ingress and for query methods, also in replicated mode.
    ...(message.kind === "request" && message.deadlineNs !== undefined && !replicatedQuery ? { msgDeadlineNs: message.deadlineNs } : {}),
    run: (x) => x.callExport(entry),
  }, params);
  if (out.trap !== undefined || replicatedQuery) {
    if (out.trap !== undefined && !replicatedQuery && ctx.canary === "trapped-update-keeps-heap") return discardedResult(keepTrappedHeap(canister, exec, li), origin, out, cycles);
    ctx.instances.discard(canister.id, li, exec);
    return discardedResult(canister, origin, out, cycles);
  }
  const heapDeltaPages = writtenPages(li, out.session);
  const opened = openContext(canister, origin, cycles);
  return finishCall(commit(opened.canister, exec, li, out.session), opened.contextId, out, heapDeltaPages, params.timeNs);
}

/** The canary's bug: the trapped call's heap and globals stay instead of being rolled back. */
function keepTrappedHeap(canister: CanisterState, exec: ExecutionState, li: LiveInstance): CanisterState {
  const wasmMemory = li.committedMemory(exec.wasmMemory);
  const globals = li.readGlobals();
  li.mirror(wasmMemory, globals);
  return { ...canister, execution: { ...exec, wasmMemory, wasmMemoryPages: li.memoryPages(), globals } };
}

/** A query (non-replicated): a query or composite query method on the current state, nothing kept. */
export function executeQuery(
  ctx: ExecutionContext,
  canister: CanisterState,
  message: Extract<CanisterMessage, { kind: "query" }>,
  params: ExecutionParams,
): ExecutionResult {
  const origin: CallOrigin = { kind: "query", caller: message.caller };
  // As the IC's query handler: a module exporting the method first, then a running canister.
  const exec = canister.execution;
  if (exec === undefined) return rejected(canister, hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }), origin);
  const composite = `canister_composite_query ${message.method}`;
  const isComposite = exec.exports.includes(composite);
  const entry = isComposite ? composite : exportName("query", message.method);
  if (!exec.exports.includes(entry)) {
    return rejected(canister, hypervisorUserError(canister.id, { kind: "method-not-found", method: "query", name: message.method }), origin);
  }
  if (canister.status !== "running") return rejected(canister, canisterNotRunning(canister.id, canister.status), origin);
  const { li, out } = invokeOn(ctx, canister, exec, {
    ...NOTHING_RECEIVED,
    context: isComposite ? "CQ" : "NRQ",
    caller: message.caller,
    arg: message.arg,
    responsePending: true,
    ...(message.dataCertificate === undefined ? {} : { dataCertificate: message.dataCertificate }),
    run: (x) => x.callExport(entry),
  }, params);
  ctx.instances.discard(canister.id, li, exec);
  return discardedResult(canister, origin, out, 0n);
}

/**
 * A response to a call the canister made: its reply or reject callback runs in the call context
 * that made the call (`composite`: inside a composite query tree, contexts CRy/CRt/CC).
 */
export function executeResponse(
  ctx: ExecutionContext,
  canister: CanisterState,
  message: Extract<CanisterMessage, { kind: "response" }>,
  params: ExecutionParams,
  composite = false,
): ExecutionResult {
  const callback = canister.callbacks.find((c) => c.id === message.callbackId);
  if (callback === undefined) {
    // A best-effort response whose callback is gone (its deadline expired and the reject ran):
    // dropped, its refund credited (the IC's push_input).
    if (message.deadlineNs !== undefined) return droppedResponse(canister, message);
    return notRun(canister, `no callback ${message.callbackId} in ${canister.id}`);
  }
  // The callback expired and its SYS_UNKNOWN reject is queued: the callee's answer came too late.
  if (callback.expired === true && message.deadlineExpired !== true) return droppedResponse(canister, message);
  // The callback is consumed whatever happens next; refunded cycles return to the balance.
  const consumed: CanisterState = {
    ...canister,
    callbacks: canister.callbacks.filter((c) => c.id !== callback.id),
    cyclesBalance: canister.cyclesBalance + message.refundedCycles,
    version: canister.version + 1n,
  };
  const exec = canister.execution;
  const context = canister.callContexts.find((c) => c.id === callback.callContextId);
  if (exec === undefined || context === undefined) {
    return notRun(consumed, "callback target no longer exists");
  }
  const isReply = message.response.kind === "reply";
  const closure = isReply ? callback.onReply : callback.onReject;
  const common: CallbackInputs = {
    // msg_caller in a callback is the caller of the call being answered (its call context).
    caller: callerOf(context.origin),
    availableCycles: context.availableCycles,
    refundedCycles: message.refundedCycles,
    rejectCode: message.response.kind === "reject" ? message.response.code : (0 as const),
    rejectMessage: message.response.kind === "reject" ? message.response.message : "",
    responsePending: !context.responded && context.origin.kind !== "system",
    ...(composite ? { compositeCalls: true } : {}),
    // ic0.msg_deadline in a callback: the deadline of the call it answers (0 if guaranteed).
    ...(callback.deadlineNs === undefined || composite ? {} : { msgDeadlineNs: callback.deadlineNs }),
  };
  const { li, out } = invokeOn(ctx, consumed, exec, {
    ...common,
    context: composite ? (isReply ? "CRy" : "CRt") : isReply ? "Ry" : "Rt",
    arg: message.response.kind === "reply" ? message.response.data : new Uint8Array(),
    run: (x) => x.callClosure(closure.fun, closure.env),
  }, params);
  if (out.trap === undefined) {
    const heapDeltaPages = writtenPages(li, out.session);
    const committed = commit(consumed, exec, li, out.session);
    return finishCall(committed, context.id, out, heapDeltaPages, params.timeNs);
  }
  // Trap: roll back, then run the cleanup closure (its changes persist if it does not trap).
  ctx.instances.discard(canister.id, li, exec);
  const run: TrappedCallback = { consumed, exec, context, common, composite, trap: out.trap, out };
  const cleaned = callback.onCleanup === undefined ? withoutCleanup(run) : runCleanup(ctx, run, callback.onCleanup, params);
  return closeAfterTrap(run, cleaned);
}

/** What a reply or reject callback and its cleanup closure share of the System API's inputs. */
type CallbackInputs = Omit<Invocation, "context" | "arg" | "run">;

/** A callback that trapped: the state it ran on (the callback consumed), and what it did. */
interface TrappedCallback {
  readonly consumed: CanisterState;
  readonly exec: ExecutionState;
  readonly context: CallContext;
  readonly common: CallbackInputs;
  readonly composite: boolean;
  readonly trap: CanisterTrap;
  readonly out: InvocationOutcome;
}

/** The canister after a trapped callback and its cleanup, and what both used and said. */
interface AfterTrap {
  readonly state: CanisterState;
  readonly used: bigint;
  readonly heapDeltaPages: number;
  readonly log: readonly string[];
  readonly error: HypervisorError;
  readonly diagnosis: string;
}

/** No cleanup closure: only the callback's consumption stays. */
function withoutCleanup(run: TrappedCallback): AfterTrap {
  return { state: run.consumed, used: run.out.instructionsUsed, heapDeltaPages: 0, log: [...run.out.session.debugLog], error: run.trap.error, diagnosis: run.trap.message };
}

/** The cleanup closure after a trapped callback: its changes persist unless it traps too. */
function runCleanup(ctx: ExecutionContext, run: TrappedCallback, cleanup: WasmClosure, params: ExecutionParams): AfterTrap {
  const { consumed, exec, trap } = run;
  const { li, out: c } = invokeOn(ctx, consumed, exec, {
    ...run.common,
    context: run.composite ? "CC" : "C",
    arg: new Uint8Array(),
    run: (x) => x.callClosure(cleanup.fun, cleanup.env),
  }, params);
  const used = run.out.instructionsUsed + c.instructionsUsed;
  const log = [...run.out.session.debugLog, ...c.session.debugLog];
  if (c.trap === undefined) {
    const heapDeltaPages = writtenPages(li, c.session);
    const state = { ...commit(consumed, exec, li, c.session), version: consumed.version };
    return { state, used, heapDeltaPages, log, error: trap.error, diagnosis: trap.message };
  }
  ctx.instances.discard(consumed.id, li, exec);
  return {
    state: consumed,
    used,
    heapDeltaPages: 0,
    log,
    error: { kind: "cleanup", callback: trap.error, cleanup: c.trap.error },
    diagnosis: `${trap.message}; the cleanup callback trapped too: ${c.trap.message}`,
  };
}

/**
 * The trapped callback's result: its call context is closed if nothing else is outstanding, and a
 * caller still waiting gets the trap's reject.
 */
function closeAfterTrap(run: TrappedCallback, after: AfterTrap): ExecutionResult {
  const { context } = run;
  const { state, error } = after;
  const responses: OutgoingResponse[] = [];
  const outstanding = state.callbacks.some((cb) => cb.callContextId === context.id);
  let contexts = state.callContexts;
  if (!outstanding) {
    contexts = contexts.filter((c) => c.id !== context.id);
    if (!context.responded && context.origin.kind !== "system") {
      responses.push({
        origin: context.origin,
        response: rejectFor(context.origin, hypervisorUserError(run.consumed.id, error)),
        refundedCycles: context.availableCycles,
      });
    }
  }
  return {
    canister: { ...state, callContexts: contexts },
    outcome: { kind: "trapped", message: after.diagnosis, error },
    instructionsUsed: after.used,
    responses,
    outgoingCalls: [],
    heapDeltaPages: after.heapDeltaPages,
    debugLog: after.log,
    readTime: run.out.session.usedTime,
  };
}
