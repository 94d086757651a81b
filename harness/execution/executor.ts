// WasmExecutor: the CanisterExecutor of interfaces.ts on Node's WebAssembly engine.
//
// Message semantics (IC interface spec "Abstract behaviour"; ic-protocol.md §4.8, §4.12):
//  - an update (ingress or inter-canister request), a callback and a system task are atomic: on a
//    trap, heap, globals, stable memory, cycles, certified data, timer and outgoing calls are all
//    rolled back (only the instructions stay charged);
//  - a query (and an update call to a query method) runs on the current state and every change is
//    discarded;
//  - a call context stays open while callbacks are outstanding; when the last one is gone without
//    a response, the caller gets CANISTER_ERROR ("did not reply");
//  - a trapping reply/reject callback runs its cleanup closure (whose own changes persist).
import { assert } from "../assert.ts";
import { PAGE_SIZE_BYTES, PageMap } from "../state/page-map.ts";
import {
  executionFee,
  MANAGEMENT_CANISTER,
  RejectCode,
  type CallContext,
  type CallContextId,
  type CallOrigin,
  type Callback,
  type CallbackId,
  type CanisterExecutor,
  type CanisterId,
  type CanisterMessage,
  type CanisterState,
  type ExecutionParams,
  type ExecutionResult,
  type ExecutionState,
  type InspectResult,
  type InstallCodeArgs,
  type LifecycleResult,
  type OutgoingCall,
  type OutgoingResponse,
  type PrincipalText,
  type Response,
} from "./interfaces.ts";
import { DEFAULT_WASM_MEMORY_LIMIT_PAGES, LiveInstance, WASM_PAGE_BYTES, type ProgressWatch } from "./instance.ts";
import { DEFAULT_PROGRESS_EVERY_INSTRUCTIONS, ExecutionAborted, type ProgressCallback } from "./progress.ts";
import { InvalidModuleError } from "./instrument.ts";
import { ModuleCache, sharedModuleCache, type CompiledModule } from "./module-cache.ts";
import { isRuntimeError } from "./webassembly.ts";
import {
  CanisterTrap,
  STABLE_DIRTY_PAGE_LIMITS,
  stableDirtyLimitKind,
  SystemApiSession,
  type ApiContext,
  type SessionInit,
  type StableDirtyPageLimits,
} from "./system-api.ts";

const EOP_SECTION = "icp:private enhanced-orthogonal-persistence";
/** Composite query call depth limit (ic-protocol.md §4.12). */
export const MAX_COMPOSITE_QUERY_DEPTH = 6;

interface Invocation {
  readonly context: ApiContext;
  readonly caller: PrincipalText;
  readonly arg: Uint8Array;
  readonly responsePending: boolean;
  readonly availableCycles: bigint;
  readonly refundedCycles: bigint;
  readonly rejectCode: RejectCode | 0;
  readonly rejectMessage: string;
  readonly dataCertificate?: Uint8Array;
  readonly methodName?: string;
  /** Composite query tree: calls from CQ/CRy/CRt are executed (see executeQueryTree). */
  readonly compositeCalls?: boolean;
  readonly run: (li: EntryCaller) => void;
}

/** How an invocation enters the canister: an export by name or a table entry (callbacks). */
type EntryCaller = Pick<LiveInstance, "callExport" | "callClosure">;

/** How progress names a closure by the context it runs in. */
const CLOSURE_ENTRY: Partial<Record<ApiContext, string>> = {
  Ry: "reply callback",
  Rt: "reject callback",
  C: "cleanup callback",
  CRy: "composite query reply callback",
  CRt: "composite query reject callback",
  CC: "composite query cleanup callback",
};

interface InvocationOutcome {
  readonly trap: CanisterTrap | undefined;
  readonly session: SystemApiSession;
  readonly instructionsUsed: bigint;
}

function callerOf(origin: CallOrigin): PrincipalText {
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
function originOf(message: CanisterMessage): CallOrigin | undefined {
  switch (message.kind) {
    case "ingress":
      return { kind: "ingress", messageId: message.messageId, caller: message.caller };
    case "request":
      return { kind: "canister", caller: message.caller, callbackId: message.callerCallbackId };
    case "query":
      return { kind: "query", caller: message.caller };
    default:
      return undefined;
  }
}

/** Stable memory after an invocation: resized to its page count, written pages replaced. */
function applyStable(base: PageMap, s: SystemApiSession): PageMap {
  // The session's pages are its own copy-on-write copies, used by nothing after it: handed over
  // as they are (a message that writes 200,000 stable pages no longer holds them twice).
  return base.resized(Number(s.stablePages) * WASM_PAGE_BYTES).withOwnedPages(s.stableDirty);
}

function exportName(kind: "update" | "query", method: string): string {
  return `canister_${kind} ${method}`;
}

/**
 * Live instances, at most `perCanister` per canister and `total` overall, least recently used
 * evicted first. Two per canister cover the common pairs: queries on the certified state next to
 * updates on the newest one, or two replicas of one canister sharing an executor.
 */
class InstancePool {
  private readonly lists = new Map<CanisterId, LiveInstance[]>();
  private readonly order: { id: CanisterId; li: LiveInstance }[] = [];

  constructor(
    private readonly perCanister: number,
    private readonly total: number,
  ) {}

  find(id: CanisterId, module: CompiledModule, exec: ExecutionState): LiveInstance | undefined {
    const li = this.lists
      .get(id)
      ?.find((x) => x.module === module && x.mirrors?.memory === exec.wasmMemory && x.mirrors.globals === exec.globals);
    if (li !== undefined) this.touch(id, li);
    return li;
  }

  add(id: CanisterId, li: LiveInstance): void {
    const list = this.lists.get(id) ?? [];
    list.push(li);
    this.lists.set(id, list);
    this.order.push({ id, li });
    if (list.length > this.perCanister) this.remove(id, list[0] as LiveInstance);
    while (this.order.length > this.total) {
      const oldest = this.order[0];
      if (oldest === undefined) break;
      this.remove(oldest.id, oldest.li);
    }
  }

  remove(id: CanisterId, li: LiveInstance): void {
    const list = (this.lists.get(id) ?? []).filter((x) => x !== li);
    if (list.length === 0) this.lists.delete(id);
    else this.lists.set(id, list);
    const i = this.order.findIndex((x) => x.li === li);
    if (i >= 0) this.order.splice(i, 1);
  }

  removeAll(id: CanisterId): void {
    for (const li of [...(this.lists.get(id) ?? [])]) this.remove(id, li);
  }

  private touch(id: CanisterId, li: LiveInstance): void {
    const i = this.order.findIndex((x) => x.li === li);
    if (i >= 0 && i !== this.order.length - 1) {
      this.order.splice(i, 1);
      this.order.push({ id, li });
    }
  }
}

export interface WasmExecutorOptions {
  /** Live instances kept per canister (default 2) and in total (default 256). */
  readonly instancesPerCanister?: number;
  readonly maxInstances?: number;
  /** Main-memory limit (spec wasm_memory_limit; default 3 GiB): memory.grow beyond it returns −1. */
  readonly wasmMemoryLimitBytes?: number;
  /**
   * Sees every execution start and, during long ones, every `progressEveryInstructions`
   * (default 10^9); answering "abort" ends the run with ExecutionAborted (harness error). Results
   * never depend on it: instruction counts and traps are the same with and without it.
   */
  readonly onProgress?: ProgressCallback;
  readonly progressEveryInstructions?: bigint;
  /** Stable pages one execution may modify, by kind (default: the IC's, STABLE_DIRTY_PAGE_LIMITS). */
  readonly stableDirtyPageLimits?: Partial<StableDirtyPageLimits>;
  /** Tests only: a known bug switched on (see ExecutionCanary). Never set in a real run. */
  readonly canary?: ExecutionCanary;
}

/**
 * Known bugs in execution that the lab must catch on the first run that exercises them (issue
 * 11, C3). `trapped-update-keeps-heap`: an update call that traps keeps the heap and globals it
 * wrote — its rollback is skipped — though the caller still gets the trap's reject.
 */
export type ExecutionCanary = "trapped-update-keeps-heap";

export class WasmExecutor implements CanisterExecutor {
  private readonly live: InstancePool;
  private readonly memoryLimitPages: number;
  private readonly onProgress: ProgressCallback | undefined;
  private readonly progressEveryInstructions: bigint;
  private readonly stableDirtyPageLimits: StableDirtyPageLimits;
  private readonly canary: ExecutionCanary | undefined;

  constructor(
    readonly modules: ModuleCache = sharedModuleCache,
    options: WasmExecutorOptions = {},
  ) {
    this.onProgress = options.onProgress;
    this.canary = options.canary;
    this.stableDirtyPageLimits = { ...STABLE_DIRTY_PAGE_LIMITS, ...options.stableDirtyPageLimits };
    this.progressEveryInstructions = options.progressEveryInstructions ?? DEFAULT_PROGRESS_EVERY_INSTRUCTIONS;
    assert(this.progressEveryInstructions > 0n, "progressEveryInstructions must be positive");
    this.live = new InstancePool(options.instancesPerCanister ?? 2, options.maxInstances ?? 256);
    this.memoryLimitPages = Math.floor((options.wasmMemoryLimitBytes ?? DEFAULT_WASM_MEMORY_LIMIT_PAGES * WASM_PAGE_BYTES) / WASM_PAGE_BYTES);
  }

  /** Drops the cached live instances of a canister (e.g. when it is deleted). */
  forget(id: CanisterId): void {
    this.live.removeAll(id);
  }

  // --- instances ------------------------------------------------------------------------------

  /**
   * A live instance holding `exec`'s memory and globals: a pooled one that mirrors exactly this
   * state, or a fresh one. A module that can change instance-only state (mutatesInstance: dropped
   * data segments, table writes) always gets a fresh instance, as every message does on the IC:
   * reusing it would make a message's result depend on which messages ran on it before.
   */
  private instanceFor(id: CanisterId, exec: ExecutionState): LiveInstance {
    const module = this.modules.getWithHash(exec.moduleHash, exec.wasmModule);
    if (!module.mutatesInstance) {
      const cached = this.live.find(id, module, exec);
      if (cached !== undefined) return cached;
    }
    const li = new LiveInstance(module, this.memoryLimitPages);
    li.loadState(exec.wasmMemory, exec.wasmMemoryPages, exec.globals);
    this.keep(id, li);
    return li;
  }

  /** Pools an instance for the next message on the state it mirrors (unless its module forbids it). */
  private keep(id: CanisterId, li: LiveInstance): void {
    if (!li.module.mutatesInstance) this.live.add(id, li);
  }

  private invoke(
    li: LiveInstance,
    canister: CanisterState,
    stable: { memory: PageMap; pages: bigint },
    inv: Invocation,
    params: ExecutionParams,
    alreadyUsed: bigint,
  ): InvocationOutcome {
    const init: SessionInit = {
      context: inv.context,
      canisterId: canister.id,
      subnetId: params.subnetId ?? MANAGEMENT_CANISTER,
      caller: inv.caller,
      arg: inv.arg,
      timeNs: params.timeNs,
      status: canister.status,
      version: canister.version,
      controllers: canister.controllers,
      cyclesBalance: canister.cyclesBalance,
      availableCycles: inv.availableCycles,
      refundedCycles: inv.refundedCycles,
      certifiedData: canister.certifiedData,
      dataCertificate: inv.dataCertificate,
      globalTimerNs: canister.globalTimerNs,
      stableMemory: stable.memory,
      stableMemoryPages: stable.pages,
      responsePending: inv.responsePending,
      rejectCode: inv.rejectCode,
      rejectMessage: inv.rejectMessage,
      memory64: li.module.memory64,
      ...(inv.methodName === undefined ? {} : { methodName: inv.methodName }),
      ...(inv.compositeCalls === true ? { compositeCalls: true } : {}),
      outstandingCalls: (callee) => canister.callbacks.reduce((n, c) => n + (c.callee === callee ? 1 : 0), 0),
      stableDirtyPageLimit: this.stableDirtyPageLimits[stableDirtyLimitKind(inv.context)],
    };
    const session = new SystemApiSession(init);
    const watched = this.watched(li, canister.id, inv.context, params.instructionLimit, alreadyUsed);
    li.begin(session, params.instructionLimit, alreadyUsed, watched?.watch);
    let trap: CanisterTrap | undefined;
    try {
      trap = li.run(() => inv.run(watched?.caller ?? li));
    } catch (e) {
      // Stopped half-way through the message: the instance mirrors no state any more.
      if (e instanceof ExecutionAborted) this.live.remove(canister.id, li);
      throw e;
    }
    session.finish();
    return { trap, session, instructionsUsed: li.instructionsUsed() };
  }

  /**
   * With onProgress set: the watch that reports this invocation's progress marks, and an entry
   * caller that learns which entry point runs (and reports the start of a new execution).
   */
  private watched(
    li: LiveInstance,
    id: CanisterId,
    context: ApiContext,
    limit: bigint,
    alreadyUsed: bigint,
  ): { watch: ProgressWatch; caller: EntryCaller } | undefined {
    const onProgress = this.onProgress;
    if (onProgress === undefined) return undefined;
    let entryPoint = CLOSURE_ENTRY[context] ?? "an entry point";
    const report = (instructionsSoFar: bigint, starting: boolean): void => {
      const progress = { canisterId: id, entryPoint, instructionsSoFar, instructionLimit: limit, starting };
      const verdict = onProgress(progress);
      if (verdict !== "continue") throw new ExecutionAborted(progress, verdict === "abort" ? undefined : verdict.abort);
    };
    // Later steps of an install or upgrade continue the count: one execution, one start.
    const enter = (name: string): void => {
      entryPoint = name;
      if (alreadyUsed === 0n) report(0n, true);
    };
    return {
      watch: { everyInstructions: this.progressEveryInstructions, check: (n) => report(n, false) },
      caller: {
        callExport: (name) => {
          enter(name === "__start" ? "(start)" : name);
          li.callExport(name);
        },
        callClosure: (fun, env) => {
          enter(entryPoint);
          li.callClosure(fun, env);
        },
      },
    };
  }

  /** Folds a successful invocation into the canister state; the instance then mirrors it. */
  private commit(canister: CanisterState, exec: ExecutionState, li: LiveInstance, s: SystemApiSession): CanisterState {
    const wasmMemory = exec.wasmMemory.resized(li.memoryPages() * WASM_PAGE_BYTES).withOwnedPages(li.dirtyPages());
    const globals = li.readGlobals();
    const stableMemory = applyStable(exec.stableMemory, s);
    li.mirrors = { memory: wasmMemory, globals };
    return {
      ...canister,
      execution: {
        ...exec,
        wasmMemory,
        wasmMemoryPages: li.memoryPages(),
        stableMemory,
        stableMemoryPages: s.stablePages,
        globals,
      },
      cyclesBalance: s.cyclesBalance,
      certifiedData: s.certifiedData,
      globalTimerNs: s.globalTimerNs,
      version: canister.version + 1n,
    };
  }

  /** The canary's bug: the trapped call's heap and globals stay instead of being rolled back. */
  private keepTrappedHeap(canister: CanisterState, exec: ExecutionState, li: LiveInstance): CanisterState {
    const wasmMemory = exec.wasmMemory.resized(li.memoryPages() * WASM_PAGE_BYTES).withOwnedPages(li.dirtyPages());
    const globals = li.readGlobals();
    li.mirrors = { memory: wasmMemory, globals };
    return { ...canister, execution: { ...exec, wasmMemory, wasmMemoryPages: li.memoryPages(), globals } };
  }

  private discard(id: CanisterId, li: LiveInstance, exec: ExecutionState): void {
    if (!li.rollback(exec.globals)) this.live.remove(id, li);
  }

  // --- messages ---------------------------------------------------------------------------------

  executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    const fees = params.fees;
    if (fees === undefined || message.kind === "query") return this.execute(canister, message, params);
    // Prepayment (ic-protocol.md §4.11): the canister must afford a message that uses its whole
    // budget; afterwards it pays for the instructions used (also when it trapped). Responses are
    // always executed (the IC reserves their cycles when the call is made).
    const maxFee = executionFee(fees, params.instructionLimit);
    if (canister.cyclesBalance < maxFee && canister.execution !== undefined && message.kind !== "response") {
      const origin = originOf(message);
      const text = `Canister ${canister.id} is out of cycles: balance ${canister.cyclesBalance}, needs ${maxFee} to execute`;
      const r = WasmExecutor.rejected(canister, RejectCode.SysTransient, text, origin);
      return { ...r, responses: r.responses.map((x) => ({ ...x, refundedCycles: message.kind === "request" ? message.cycles : 0n })) };
    }
    const r = this.execute(canister, message, params);
    if (r.outcome.kind === "rejected" && r.instructionsUsed === 0n) return r;
    // Balances never go negative (u128); responses, which skip prepayment, pay what is left.
    const fee = executionFee(fees, r.instructionsUsed);
    const balance = r.canister.cyclesBalance > fee ? r.canister.cyclesBalance - fee : 0n;
    return { ...r, canister: { ...r.canister, cyclesBalance: balance } };
  }

  private execute(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    switch (message.kind) {
      case "ingress":
      case "request":
        return this.executeCall(canister, message, params);
      case "query":
        return this.executeQuery(canister, message, params);
      case "response":
        return this.executeResponse(canister, message, params);
      case "heartbeat":
      case "global-timer":
        return this.executeTask(canister, message.kind, params);
    }
  }

  private static rejected(canister: CanisterState, code: RejectCode, message: string, origin?: CallOrigin): ExecutionResult {
    return {
      canister,
      outcome: { kind: "rejected", code, message },
      instructionsUsed: 0n,
      responses: origin === undefined ? [] : [{ origin, response: { kind: "reject", code, message }, refundedCycles: 0n }],
      outgoingCalls: [],
      heapDeltaPages: 0,
      debugLog: [],
      readTime: false,
    };
  }

  private executeCall(
    canister: CanisterState,
    message: Extract<CanisterMessage, { kind: "ingress" | "request" }>,
    params: ExecutionParams,
  ): ExecutionResult {
    const origin: CallOrigin =
      message.kind === "ingress"
        ? { kind: "ingress", messageId: message.messageId, caller: message.caller }
        : { kind: "canister", caller: message.caller, callbackId: message.callerCallbackId };
    const cycles = message.kind === "request" ? message.cycles : 0n;
    const reject = (code: RejectCode, text: string): ExecutionResult => {
      const r = WasmExecutor.rejected(canister, code, text, origin);
      return { ...r, responses: r.responses.map((x) => ({ ...x, refundedCycles: cycles })) };
    };
    const exec = canister.execution;
    if (exec === undefined) return reject(RejectCode.DestinationInvalid, `Canister ${canister.id} is empty (no Wasm module)`);
    if (canister.status !== "running") return reject(RejectCode.CanisterError, `Canister ${canister.id} is ${canister.status}`);
    const update = exportName("update", message.method);
    const query = exportName("query", message.method);
    const entry = exec.exports.includes(update) ? update : exec.exports.includes(query) ? query : undefined;
    if (entry === undefined) {
      return reject(RejectCode.CanisterError, `Canister ${canister.id} has no update method '${message.method}'`);
    }
    const replicatedQuery = entry === query;
    const caller = message.kind === "ingress" ? message.caller : (message.caller as string as PrincipalText);
    const contextId = canister.nextCallContextId as CallContextId;
    const li = this.instanceFor(canister.id, exec);
    const out = this.invoke(
      li,
      canister,
      { memory: exec.stableMemory, pages: exec.stableMemoryPages },
      {
        context: replicatedQuery ? "RQ" : "U",
        caller,
        arg: message.arg,
        responsePending: true,
        availableCycles: cycles,
        refundedCycles: 0n,
        rejectCode: 0,
        rejectMessage: "",
        run: (x) => x.callExport(entry),
      },
      params,
      0n,
    );
    const base: CanisterState = { ...canister, nextCallContextId: canister.nextCallContextId + 1n };
    const context: CallContext = { id: contextId, origin, responded: false, availableCycles: cycles };
    if (out.trap !== undefined || replicatedQuery) {
      if (out.trap !== undefined && !replicatedQuery && this.canary === "trapped-update-keeps-heap") return this.discardedResult(this.keepTrappedHeap(canister, exec, li), origin, out, cycles);
      this.discard(canister.id, li, exec);
      return this.discardedResult(canister, origin, out, cycles);
    }
    const heapDeltaPages = li.dirtyPageCount() + out.session.stableDirty.size;
    const committed = this.commit({ ...base, callContexts: [...base.callContexts, context] }, exec, li, out.session);
    return this.finishCall(committed, contextId, out, heapDeltaPages, { kind: "completed" });
  }

  /** The reply/reject a session produced, or CANISTER_ERROR when it produced none. */
  private responseOf(id: CanisterId, s: SystemApiSession): Response {
    if (s.reply === undefined) {
      return { kind: "reject", code: RejectCode.CanisterError, message: `Canister ${id} did not reply to the call` };
    }
    return s.reply.kind === "reply"
      ? { kind: "reply", data: s.reply.data }
      : { kind: "reject", code: RejectCode.CanisterReject, message: s.reply.message };
  }

  /**
   * After a committed invocation on behalf of call context `contextId`: registers the performed
   * calls as callbacks, records the response, and closes the context when nothing is outstanding.
   */
  private finishCall(
    canister: CanisterState,
    contextId: CallContextId,
    out: InvocationOutcome,
    heapDeltaPages: number,
    outcome: ExecutionResult["outcome"],
  ): ExecutionResult {
    const s = out.session;
    let nextCallbackId = canister.nextCallbackId;
    const outgoingCalls: OutgoingCall[] = [];
    const newCallbacks: Callback[] = [];
    for (const call of s.performedCalls) {
      const id = nextCallbackId++ as CallbackId;
      newCallbacks.push({
        id,
        callContextId: contextId,
        callee: call.callee,
        onReply: call.onReply,
        onReject: call.onReject,
        onCleanup: call.onCleanup,
        cyclesSent: call.cycles,
      });
      outgoingCalls.push({ callee: call.callee, method: call.method, arg: call.arg, cycles: call.cycles, callbackId: id });
    }
    const callbacks = [...canister.callbacks, ...newCallbacks];
    const responses: OutgoingResponse[] = [];
    const contexts: CallContext[] = [];
    for (const c of canister.callContexts) {
      if (c.id !== contextId) {
        contexts.push(c);
        continue;
      }
      let ctx: CallContext = { ...c, availableCycles: s.availableCycles };
      if (s.reply !== undefined && !c.responded) {
        responses.push({ origin: c.origin, response: this.responseOf(canister.id, s), refundedCycles: ctx.availableCycles });
        ctx = { ...ctx, responded: true, availableCycles: 0n };
      }
      const outstanding = callbacks.some((cb) => cb.callContextId === contextId);
      if (outstanding) {
        contexts.push(ctx);
      } else if (!ctx.responded && c.origin.kind !== "system") {
        responses.push({ origin: c.origin, response: this.responseOf(canister.id, s), refundedCycles: ctx.availableCycles });
      }
    }
    return {
      canister: { ...canister, callbacks, callContexts: contexts, nextCallbackId },
      outcome,
      instructionsUsed: out.instructionsUsed,
      responses,
      outgoingCalls,
      heapDeltaPages,
      debugLog: s.debugLog,
      readTime: s.usedTime,
    };
  }

  private executeQuery(
    canister: CanisterState,
    message: Extract<CanisterMessage, { kind: "query" }>,
    params: ExecutionParams,
  ): ExecutionResult {
    const origin: CallOrigin = { kind: "query", caller: message.caller };
    const exec = canister.execution;
    if (exec === undefined) {
      return WasmExecutor.rejected(canister, RejectCode.DestinationInvalid, `Canister ${canister.id} is empty (no Wasm module)`, origin);
    }
    if (canister.status !== "running") {
      return WasmExecutor.rejected(canister, RejectCode.CanisterError, `Canister ${canister.id} is ${canister.status}`, origin);
    }
    const composite = `canister_composite_query ${message.method}`;
    const isComposite = exec.exports.includes(composite);
    const entry = isComposite ? composite : exportName("query", message.method);
    if (!exec.exports.includes(entry)) {
      const why = exec.exports.includes(exportName("update", message.method))
        ? `'${message.method}' is an update method and cannot be called as a query`
        : `Canister ${canister.id} has no query method '${message.method}'`;
      return WasmExecutor.rejected(canister, RejectCode.CanisterError, why, origin);
    }
    const li = this.instanceFor(canister.id, exec);
    const out = this.invoke(
      li,
      canister,
      { memory: exec.stableMemory, pages: exec.stableMemoryPages },
      {
        context: isComposite ? "CQ" : "NRQ",
        caller: message.caller,
        arg: message.arg,
        responsePending: true,
        availableCycles: 0n,
        refundedCycles: 0n,
        rejectCode: 0,
        rejectMessage: "",
        ...(message.dataCertificate === undefined ? {} : { dataCertificate: message.dataCertificate }),
        run: (x) => x.callExport(entry),
      },
      params,
      0n,
    );
    this.discard(canister.id, li, exec);
    return this.discardedResult(canister, origin, out, 0n);
  }

  /**
   * The result of a call whose effects are thrown away (a trap, or a query): the canister is
   * unchanged and the caller gets the reply, or a CANISTER_ERROR reject naming the trap.
   */
  private discardedResult(canister: CanisterState, origin: CallOrigin, out: InvocationOutcome, refundedCycles: bigint): ExecutionResult {
    const response: Response =
      out.trap !== undefined
        ? { kind: "reject", code: RejectCode.CanisterError, message: `Canister ${canister.id} trapped: ${out.trap.message}` }
        : this.responseOf(canister.id, out.session);
    return {
      canister,
      outcome: out.trap !== undefined ? { kind: "trapped", message: out.trap.message } : { kind: "completed" },
      instructionsUsed: out.instructionsUsed,
      responses: [{ origin, response, refundedCycles }],
      outgoingCalls: [],
      heapDeltaPages: 0,
      debugLog: out.session.debugLog,
      readTime: out.session.usedTime,
    };
  }

  private executeResponse(
    canister: CanisterState,
    message: Extract<CanisterMessage, { kind: "response" }>,
    params: ExecutionParams,
    composite = false,
  ): ExecutionResult {
    const callback = canister.callbacks.find((c) => c.id === message.callbackId);
    if (callback === undefined) {
      return WasmExecutor.rejected(canister, RejectCode.DestinationInvalid, `no callback ${message.callbackId} in ${canister.id}`);
    }
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
      return { ...WasmExecutor.rejected(consumed, RejectCode.DestinationInvalid, "callback target no longer exists"), canister: consumed };
    }
    const isReply = message.response.kind === "reply";
    const closure = isReply ? callback.onReply : callback.onReject;
    const li = this.instanceFor(canister.id, exec);
    const common = {
      // msg_caller in a callback is the caller of the call being answered (its call context).
      caller: callerOf(context.origin),
      availableCycles: context.availableCycles,
      refundedCycles: message.refundedCycles,
      rejectCode: message.response.kind === "reject" ? message.response.code : (0 as const),
      rejectMessage: message.response.kind === "reject" ? message.response.message : "",
      responsePending: !context.responded && context.origin.kind !== "system",
      ...(composite ? { compositeCalls: true } : {}),
    };
    const out = this.invoke(
      li,
      consumed,
      { memory: exec.stableMemory, pages: exec.stableMemoryPages },
      {
        ...common,
        context: composite ? (isReply ? "CRy" : "CRt") : isReply ? "Ry" : "Rt",
        arg: message.response.kind === "reply" ? message.response.data : new Uint8Array(),
        run: (x) => x.callClosure(closure.fun, closure.env),
      },
      params,
      0n,
    );
    if (out.trap === undefined) {
      const heapDeltaPages = li.dirtyPageCount() + out.session.stableDirty.size;
      const committed = this.commit(consumed, exec, li, out.session);
      return this.finishCall(committed, context.id, out, heapDeltaPages, { kind: "completed" });
    }
    // Trap: roll back, then run the cleanup closure (its changes persist if it does not trap).
    this.discard(canister.id, li, exec);
    let state = consumed;
    let used = out.instructionsUsed;
    let heapDeltaPages = 0;
    const log = [...out.session.debugLog];
    const cleanup = callback.onCleanup;
    if (cleanup !== undefined) {
      const li2 = this.instanceFor(canister.id, exec);
      const c = this.invoke(
        li2,
        consumed,
        { memory: exec.stableMemory, pages: exec.stableMemoryPages },
        { ...common, context: composite ? "CC" : "C", arg: new Uint8Array(), run: (x) => x.callClosure(cleanup.fun, cleanup.env) },
        params,
        0n,
      );
      used += c.instructionsUsed;
      log.push(...c.session.debugLog);
      if (c.trap === undefined) {
        heapDeltaPages = li2.dirtyPageCount() + c.session.stableDirty.size;
        state = this.commit(consumed, exec, li2, c.session);
        state = { ...state, version: consumed.version };
      } else {
        this.discard(canister.id, li2, exec);
        log.push(`cleanup callback trapped: ${c.trap.message}`);
      }
    }
    // Close the context if nothing else is outstanding.
    const responses: OutgoingResponse[] = [];
    const outstanding = state.callbacks.some((cb) => cb.callContextId === context.id);
    let contexts = state.callContexts;
    if (!outstanding) {
      contexts = contexts.filter((c) => c.id !== context.id);
      if (!context.responded && context.origin.kind !== "system") {
        responses.push({
          origin: context.origin,
          response: { kind: "reject", code: RejectCode.CanisterError, message: `Canister ${canister.id} trapped: ${out.trap.message}` },
          refundedCycles: context.availableCycles,
        });
      }
    }
    return {
      canister: { ...state, callContexts: contexts },
      outcome: { kind: "trapped", message: out.trap.message },
      instructionsUsed: used,
      responses,
      outgoingCalls: [],
      heapDeltaPages,
      debugLog: log,
      readTime: out.session.usedTime,
    };
  }

  private executeTask(canister: CanisterState, task: "heartbeat" | "global-timer", params: ExecutionParams): ExecutionResult {
    const exec = canister.execution;
    const entry = task === "heartbeat" ? "canister_heartbeat" : "canister_global_timer";
    // The global timer is deactivated once it is scheduled (spec "Global timer").
    const base: CanisterState = task === "global-timer" ? { ...canister, globalTimerNs: 0n } : canister;
    if (exec === undefined || canister.status !== "running" || !exec.exports.includes(entry)) {
      return { ...WasmExecutor.rejected(base, RejectCode.DestinationInvalid, `no ${entry} to run`), canister: base };
    }
    const contextId = canister.nextCallContextId as CallContextId;
    const origin: CallOrigin = { kind: "system", task };
    const li = this.instanceFor(canister.id, exec);
    const out = this.invoke(
      li,
      base,
      { memory: exec.stableMemory, pages: exec.stableMemoryPages },
      {
        context: "T",
        caller: MANAGEMENT_CANISTER,
        arg: new Uint8Array(),
        responsePending: false,
        availableCycles: 0n,
        refundedCycles: 0n,
        rejectCode: 0,
        rejectMessage: "",
        run: (x) => x.callExport(entry),
      },
      params,
      0n,
    );
    if (out.trap !== undefined) {
      this.discard(canister.id, li, exec);
      return {
        canister: base,
        outcome: { kind: "trapped", message: out.trap.message },
        instructionsUsed: out.instructionsUsed,
        responses: [],
        outgoingCalls: [],
        heapDeltaPages: 0,
        debugLog: out.session.debugLog,
        readTime: out.session.usedTime,
      };
    }
    const heapDeltaPages = li.dirtyPageCount() + out.session.stableDirty.size;
    const context: CallContext = { id: contextId, origin, responded: false, availableCycles: 0n };
    const committed = this.commit(
      { ...base, nextCallContextId: base.nextCallContextId + 1n, callContexts: [...base.callContexts, context] },
      exec,
      li,
      out.session,
    );
    return this.finishCall(committed, contextId, out, heapDeltaPages, { kind: "completed" });
  }

  // --- composite queries -----------------------------------------------------------------------------

  /**
   * A query with its whole call tree (ic-protocol.md §4.12: composite queries may call query and
   * composite query methods of canisters on the same subnet, depth ≤ 6, one instruction budget
   * for the tree). Runs on `lookup`'s states and keeps nothing: changes live in throw-away copies.
   * A plain query method runs exactly as `executeMessage` would run it.
   */
  executeQueryTree(
    lookup: (id: CanisterId) => CanisterState | undefined,
    target: CanisterId,
    message: Extract<CanisterMessage, { kind: "query" }>,
    params: ExecutionParams,
  ): { readonly response: Response; readonly instructionsUsed: bigint; readonly debugLog: readonly string[]; readonly readTime: boolean } {
    const temp = new Map<CanisterId, CanisterState>();
    const log: string[] = [];
    let used = 0n;
    let readTime = false;
    const remaining = (): ExecutionParams => ({ ...params, instructionLimit: params.instructionLimit - used });
    const rejectWith = (code: RejectCode, text: string): Response => ({ kind: "reject", code, message: text });
    const call = (id: CanisterId, method: string, arg: Uint8Array, caller: PrincipalText, depth: number): Response => {
      const c = temp.get(id) ?? lookup(id);
      if (c === undefined) return rejectWith(RejectCode.DestinationInvalid, `Canister ${id} not found`);
      const exec = c.execution;
      const composite = `canister_composite_query ${method}`;
      if (exec === undefined || !exec.exports.includes(composite)) {
        const r = this.executeQuery(c, { kind: "query", caller, method, arg }, remaining());
        used += r.instructionsUsed;
        log.push(...r.debugLog);
        readTime ||= r.readTime;
        return r.responses[0]?.response ?? rejectWith(RejectCode.CanisterError, "no response");
      }
      if (c.status !== "running") return rejectWith(RejectCode.CanisterError, `Canister ${c.id} is ${c.status}`);
      if (used >= params.instructionLimit) return rejectWith(RejectCode.CanisterError, "composite query instruction limit exceeded");
      const origin: CallOrigin = { kind: "query", caller };
      const contextId = c.nextCallContextId as CallContextId;
      const li = this.instanceFor(c.id, exec);
      const out = this.invoke(
        li,
        c,
        { memory: exec.stableMemory, pages: exec.stableMemoryPages },
        {
          context: "CQ",
          caller,
          arg,
          responsePending: true,
          availableCycles: 0n,
          refundedCycles: 0n,
          rejectCode: 0,
          rejectMessage: "",
          compositeCalls: true,
          ...(message.dataCertificate === undefined || depth > 0 ? {} : { dataCertificate: message.dataCertificate }),
          run: (x) => x.callExport(composite),
        },
        remaining(),
        0n,
      );
      used += out.instructionsUsed;
      log.push(...out.session.debugLog);
      readTime ||= out.session.usedTime;
      if (out.trap !== undefined) {
        this.discard(c.id, li, exec);
        return rejectWith(RejectCode.CanisterError, `Canister ${c.id} trapped: ${out.trap.message}`);
      }
      const context: CallContext = { id: contextId, origin, responded: false, availableCycles: 0n };
      const committed = this.commit(
        { ...c, nextCallContextId: c.nextCallContextId + 1n, callContexts: [...c.callContexts, context] },
        exec,
        li,
        out.session,
      );
      const first = this.finishCall(committed, contextId, out, 0, { kind: "completed" });
      temp.set(c.id, first.canister);
      let response = first.responses.find((r) => r.origin.kind === "query")?.response;
      const queue = [...first.outgoingCalls];
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const answer =
          depth + 1 >= MAX_COMPOSITE_QUERY_DEPTH
            ? rejectWith(RejectCode.CanisterError, `composite query call depth exceeds ${MAX_COMPOSITE_QUERY_DEPTH}`)
            : call(next.callee, next.method, next.arg, c.id as string as PrincipalText, depth + 1);
        const now = temp.get(c.id);
        if (now === undefined) break;
        const r = this.executeResponse(now, { kind: "response", callbackId: next.callbackId, response: answer, refundedCycles: 0n }, remaining(), true);
        used += r.instructionsUsed;
        log.push(...r.debugLog);
        readTime ||= r.readTime;
        temp.set(c.id, r.canister);
        queue.push(...r.outgoingCalls);
        response ??= r.responses.find((x) => x.origin.kind === "query")?.response;
      }
      return response ?? rejectWith(RejectCode.CanisterError, `Canister ${c.id} did not reply to the call`);
    };
    const response = call(target, message.method, message.arg, message.caller, 0);
    if (used > params.instructionLimit) {
      return { response: rejectWith(RejectCode.CanisterError, "composite query instruction limit exceeded"), instructionsUsed: used, debugLog: log, readTime };
    }
    return { response, instructionsUsed: used, debugLog: log, readTime };
  }

  // --- ingress inspection ---------------------------------------------------------------------------

  /**
   * Runs canister_inspect_message for an ingress message (non-replicated, nothing is kept;
   * ic-protocol.md §4.12: 200 M instruction budget). An empty canister refuses everything; a
   * canister without the export accepts everything; otherwise the message is accepted iff the
   * method calls ic0.accept_message and does not trap.
   */
  inspectMessage(
    canister: CanisterState,
    message: { readonly caller: PrincipalText; readonly method: string; readonly arg: Uint8Array },
    params: ExecutionParams,
  ): InspectResult {
    const exec = canister.execution;
    if (exec === undefined) return { accepted: false, message: `Canister ${canister.id} is empty (no Wasm module)`, instructionsUsed: 0n };
    if (!exec.exports.includes("canister_inspect_message")) return { accepted: true, message: "", instructionsUsed: 0n };
    const li = this.instanceFor(canister.id, exec);
    const out = this.invoke(
      li,
      canister,
      { memory: exec.stableMemory, pages: exec.stableMemoryPages },
      {
        context: "F",
        caller: message.caller,
        arg: message.arg,
        methodName: message.method,
        responsePending: false,
        availableCycles: 0n,
        refundedCycles: 0n,
        rejectCode: 0,
        rejectMessage: "",
        run: (x) => x.callExport("canister_inspect_message"),
      },
      params,
      0n,
    );
    this.discard(canister.id, li, exec);
    if (out.trap !== undefined) {
      return { accepted: false, message: `Canister ${canister.id} trapped in canister_inspect_message: ${out.trap.message}`, instructionsUsed: out.instructionsUsed };
    }
    if (!out.session.accepted) {
      return { accepted: false, message: `Canister ${canister.id} did not accept the message (no ic0.accept_message)`, instructionsUsed: out.instructionsUsed };
    }
    return { accepted: true, message: "", instructionsUsed: out.instructionsUsed };
  }

  // --- install_code -------------------------------------------------------------------------------

  installCode(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
    const fail = (code: RejectCode, message: string, instructionsUsed = 0n, debugLog: readonly string[] = []): LifecycleResult => ({
      ok: false,
      canister,
      code,
      message,
      instructionsUsed,
      debugLog,
    });
    if (!canister.controllers.includes(args.sender)) {
      return fail(RejectCode.CanisterError, `Only controllers of canister ${canister.id} can call install_code (sender ${args.sender})`);
    }
    let module: CompiledModule;
    try {
      module = this.modules.get(args.wasmModule);
    } catch (e) {
      if (e instanceof InvalidModuleError) return fail(RejectCode.CanisterError, `Invalid Wasm module: ${e.message}`);
      throw e;
    }
    switch (args.mode) {
      case "install":
        if (canister.execution !== undefined) {
          return fail(RejectCode.CanisterError, `Canister ${canister.id} is not empty; use mode reinstall or upgrade`);
        }
        return this.freshInstall(canister, module, args, params);
      case "reinstall":
        return this.freshInstall(canister, module, args, params);
      case "upgrade":
        if (canister.execution === undefined) {
          return fail(RejectCode.CanisterError, `Canister ${canister.id} has no Wasm module to upgrade`);
        }
        return this.upgrade(canister, canister.execution, module, args, params);
    }
  }

  private freshInstall(
    canister: CanisterState,
    module: CompiledModule,
    args: InstallCodeArgs,
    params: ExecutionParams,
  ): LifecycleResult {
    const start: CanisterState = {
      ...canister,
      certifiedData: new Uint8Array(),
      globalTimerNs: 0n,
      callbacks: [],
      callContexts: [],
    };
    const li = this.instantiate(canister.id, module);
    if (typeof li === "string") return { ok: false, canister, code: RejectCode.CanisterError, message: li, instructionsUsed: 0n, debugLog: [] };
    const r = this.startAndInit(li, start, { memory: PageMap.empty(), pages: 0n }, args, params, 0n, "canister_init");
    if (!r.ok) {
      return { ok: false, canister, code: RejectCode.CanisterError, message: r.message, instructionsUsed: r.used, debugLog: r.log };
    }
    const done = this.installed(canister, start, module, li, args, r);
    // Reinstall drops the old module's callbacks: every open call context that still owes an answer
    // is rejected now (as uninstall_code does), so that no caller waits forever.
    const responses: OutgoingResponse[] = canister.callContexts
      .filter((c) => !c.responded && c.origin.kind !== "system")
      .map((c) => ({
        origin: c.origin,
        response: { kind: "reject", code: RejectCode.CanisterReject, message: `Canister ${canister.id} has been reinstalled.` },
        refundedCycles: c.availableCycles,
      }));
    return done.ok && responses.length > 0 ? { ...done, responses } : done;
  }

  private upgrade(
    canister: CanisterState,
    old: ExecutionState,
    module: CompiledModule,
    args: InstallCodeArgs,
    params: ExecutionParams,
  ): LifecycleResult {
    const log: string[] = [];
    let used = 0n;
    let stable = { memory: old.stableMemory, pages: old.stableMemoryPages };
    let state: CanisterState = canister;
    let heap = { memory: old.wasmMemory, pages: old.wasmMemoryPages };
    const failed = (message: string): LifecycleResult => ({
      ok: false,
      canister,
      code: RejectCode.CanisterError,
      message,
      instructionsUsed: used,
      debugLog: log,
    });
    if (!args.skipPreUpgrade && old.exports.includes("canister_pre_upgrade")) {
      const oldLi = this.instanceFor(canister.id, old);
      const out = this.invoke(
        oldLi,
        canister,
        stable,
        {
          context: "G",
          caller: args.sender,
          arg: new Uint8Array(),
          responsePending: false,
          availableCycles: 0n,
          refundedCycles: 0n,
          rejectCode: 0,
          rejectMessage: "",
          run: (x) => x.callExport("canister_pre_upgrade"),
        },
        params,
        0n,
      );
      used = out.instructionsUsed;
      log.push(...out.session.debugLog);
      if (out.trap !== undefined) {
        this.discard(canister.id, oldLi, old);
        return failed(`Canister ${canister.id} trapped in canister_pre_upgrade: ${out.trap.message}`);
      }
      heap = {
        memory: old.wasmMemory.resized(oldLi.memoryPages() * WASM_PAGE_BYTES).withOwnedPages(oldLi.dirtyPages()),
        pages: oldLi.memoryPages(),
      };
      stable = { memory: applyStable(stable.memory, out.session), pages: out.session.stablePages };
      state = {
        ...canister,
        cyclesBalance: out.session.cyclesBalance,
        certifiedData: out.session.certifiedData,
      };
      // The old instance no longer mirrors the (still unchanged) canister state.
      this.live.remove(canister.id, oldLi);
    }
    const li = this.instantiate(canister.id, module);
    if (typeof li === "string") return failed(li);
    const keep = (args.wasmMemoryPersistence ?? (module.customSections.includes(EOP_SECTION) ? "keep" : "replace")) === "keep";
    if (keep) li.loadState(heap.memory, heap.pages, li.readGlobals());
    state = { ...state, globalTimerNs: 0n };
    const r = this.startAndInit(li, state, stable, args, params, used, "canister_post_upgrade");
    log.push(...r.log);
    used = r.used;
    if (!r.ok) return failed(r.message);
    return this.installed(canister, state, module, li, args, { ...r, log });
  }

  /**
   * A fresh instance for an install or upgrade, or why the module cannot be instantiated (a data
   * or element segment outside its memory or table): the install fails, it does not throw.
   */
  private instantiate(id: CanisterId, module: CompiledModule): LiveInstance | string {
    try {
      return new LiveInstance(module, this.memoryLimitPages);
    } catch (e) {
      if (!isRuntimeError(e)) throw e;
      return `Canister ${id}: the Wasm module could not be instantiated: ${e.message}`;
    }
  }

  /** Runs (start) and then canister_init / canister_post_upgrade on a fresh instance. */
  private startAndInit(
    li: LiveInstance,
    canister: CanisterState,
    stable: { memory: PageMap; pages: bigint },
    args: InstallCodeArgs,
    params: ExecutionParams,
    alreadyUsed: bigint,
    initExport: "canister_init" | "canister_post_upgrade",
  ):
    | { ok: true; used: bigint; log: string[]; stable: { memory: PageMap; pages: bigint }; session: SystemApiSession | undefined }
    | { ok: false; used: bigint; log: string[]; message: string } {
    const log: string[] = [];
    let used = alreadyUsed;
    let state = canister;
    let lastSession: SystemApiSession | undefined;
    const steps: { context: ApiContext; name: string }[] = [];
    if (li.module.hasStart) steps.push({ context: "s", name: "__start" });
    if (li.module.exports.includes(initExport)) steps.push({ context: "I", name: initExport });
    for (const step of steps) {
      const out = this.invoke(
        li,
        state,
        stable,
        {
          context: step.context,
          caller: args.sender,
          arg: step.context === "I" ? args.arg : new Uint8Array(),
          responsePending: false,
          availableCycles: 0n,
          refundedCycles: 0n,
          rejectCode: 0,
          rejectMessage: "",
          run: (x) => x.callExport(step.name),
        },
        params,
        used,
      );
      used = out.instructionsUsed;
      log.push(...out.session.debugLog);
      if (out.trap !== undefined) {
        const where = step.context === "s" ? "(start)" : initExport;
        return { ok: false, used, log, message: `Canister ${canister.id} trapped in ${where}: ${out.trap.message}` };
      }
      stable = { memory: applyStable(stable.memory, out.session), pages: out.session.stablePages };
      state = {
        ...state,
        cyclesBalance: out.session.cyclesBalance,
        certifiedData: out.session.certifiedData,
        globalTimerNs: out.session.globalTimerNs,
      };
      lastSession = out.session;
    }
    return { ok: true, used, log, stable, session: lastSession };
  }

  private installed(
    original: CanisterState,
    state: CanisterState,
    module: CompiledModule,
    li: LiveInstance,
    args: InstallCodeArgs,
    r: { used: bigint; log: string[]; stable: { memory: PageMap; pages: bigint }; session: SystemApiSession | undefined },
  ): LifecycleResult {
    // Data segments were written by the engine, not through the barrier: every non-zero page of
    // the memory counts as written (heap delta), found among the pages that were ever written.
    const wasmMemory = li.memory === undefined ? PageMap.empty() : PageMap.empty().resized(li.memoryPages() * WASM_PAGE_BYTES).withOwnedPages(li.writtenPages());
    const globals = li.readGlobals();
    li.mirrors = { memory: wasmMemory, globals };
    this.keep(original.id, li);
    const s = r.session;
    const execution: ExecutionState = {
      moduleHash: module.moduleHash,
      wasmModule: args.wasmModule,
      wasmMemory,
      wasmMemoryPages: li.memoryPages(),
      stableMemory: r.stable.memory,
      stableMemoryPages: r.stable.pages,
      globals,
      exports: module.exports.filter((e) => e.startsWith("canister_")),
    };
    const canister: CanisterState = {
      ...state,
      execution,
      cyclesBalance: s?.cyclesBalance ?? state.cyclesBalance,
      certifiedData: s?.certifiedData ?? state.certifiedData,
      globalTimerNs: s?.globalTimerNs ?? state.globalTimerNs,
      version: original.version + 1n,
    };
    assert(canister.id === original.id, "install changed the canister id");
    return {
      ok: true,
      canister,
      instructionsUsed: r.used,
      // Everything the install wrote is new: count the non-zero pages of both memories.
      heapDeltaPages: wasmMemory.nonZeroPageIndices().length + r.stable.memory.nonZeroPageIndices().length,
      debugLog: r.log,
    };
  }
}
