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
//  - every reject carries the IC's code and text, in the form its receiver sees (reject-codes.ts);
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
  type SystemTask,
} from "./interfaces.ts";
import { hookStatusOf, updateHookStatus, wasmMemoryLimitError, wasmMemoryLimitOf, wasmMemoryUsageBytes, withHookStatus } from "./low-wasm-memory.ts";
import { DEFAULT_WASM_MEMORY_LIMIT_PAGES, LiveInstance, WASM_PAGE_BYTES, type ProgressWatch } from "./instance.ts";
import { DEFAULT_PROGRESS_EVERY_INSTRUCTIONS, ExecutionAborted, type ProgressCallback } from "./progress.ts";
import { InvalidModuleError } from "./invalid-module.ts";
import { ModuleCache, sharedModuleCache, type CompiledModule } from "./module-cache.ts";
import { isRuntimeError } from "./webassembly.ts";
import { callDeadlineNs } from "./deadlines.ts";
import { managementQuery } from "./management.ts";
import { REFERENCE_SUBNET_SIZE, type ThresholdKey } from "./cycles-costs.ts";
import {
  canisterNotFound,
  canisterNotRunning,
  compositeCalleeReject,
  compositeQueryInReplicatedMode,
  compositeQueryInstructionLimit,
  compositeQueryTooDeep,
  explicitReject,
  canisterNonEmpty,
  hypervisorUserError,
  invalidController,
  messageRejected,
  noReplyFor,
  outOfCycles,
  queryDidNotRespond,
  rejectCodeOf,
  rejectFor,
  userReject,
  type HypervisorError,
  type UserError,
} from "./reject-codes.ts";
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
  /** ic0.msg_deadline: the best-effort deadline of the request or response executing (0 when absent). */
  readonly msgDeadlineNs?: bigint;
  /** Composite query tree: calls from CQ/CRy/CRt are executed (see executeQueryTree). */
  readonly compositeCalls?: boolean;
  /** Context T: the task that runs. */
  readonly systemTask?: SystemTask;
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
      return canisterOrigin(message);
    case "query":
      return { kind: "query", caller: message.caller };
    default:
      return undefined;
  }
}

/** The export each system task runs. */
const TASK_ENTRY: Readonly<Record<SystemTask, string>> = {
  heartbeat: "canister_heartbeat",
  "global-timer": "canister_global_timer",
  "on-low-wasm-memory": "canister_on_low_wasm_memory",
};

/** Who waits for a canister's request: the caller's callback, and the call's deadline if best-effort. */
function canisterOrigin(message: Extract<CanisterMessage, { kind: "request" }>): CallOrigin {
  return {
    kind: "canister",
    caller: message.caller,
    callbackId: message.callerCallbackId,
    ...(message.deadlineNs === undefined ? {} : { deadlineNs: message.deadlineNs }),
  };
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
/** A composite query's call graph broke one of its limits: the whole query fails with `error`. */
class QueryGraphFailure extends Error {
  constructor(readonly error: UserError) {
    super(error.description);
  }
}

/** What a composite query's caller sees of its callee's answer: a canister sees no error code. */
function calleeAnswer(r: Response): Response {
  return r.kind === "reject" ? { kind: "reject", code: r.code, message: r.message } : r;
}

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
  /**
   * The engine's bound on the main memory (default 3 GiB; the replica's engine: 4 GiB for 32-bit
   * memories): memory.grow beyond it returns −1. The canister's own `wasm_memory_limit` setting is
   * enforced within it (low-wasm-memory.ts).
   */
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
  /**
   * The DER-encoded public key of the IC's root of trust, which `ic0.root_key_size/copy` hand out
   * (spec "Overview of imports"). Without one those imports trap: an environment without a root
   * key has nothing true to give.
   */
  readonly rootKeyDer?: Uint8Array;
  /**
   * Nodes of the subnet this executor's canisters live on: the `ic0.cost_*` fees scale with it
   * (default 13, the IC's reference size; the replica falls back to the same when it does not
   * know its subnet: sandbox_safe_system_state.rs SMALL_APP_SUBNET_MAX_SIZE).
   */
  readonly subnetSize?: number;
  /**
   * Threshold keys some subnet of the simulated IC holds (`cost_sign_with_ecdsa/schnorr`,
   * `cost_vetkd_derive_key`). None by default: subnetlab models no threshold signing, so every
   * key name answers 2 ("no such key"), as on an IC whose registry lists no key.
   */
  readonly thresholdKeys?: readonly ThresholdKey[];
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
  private readonly rootKeyDer: Uint8Array | undefined;
  private readonly subnetSize: number;
  private readonly thresholdKeys: readonly ThresholdKey[];
  private readonly canary: ExecutionCanary | undefined;

  constructor(
    readonly modules: ModuleCache = sharedModuleCache,
    options: WasmExecutorOptions = {},
  ) {
    this.onProgress = options.onProgress;
    this.canary = options.canary;
    this.stableDirtyPageLimits = { ...STABLE_DIRTY_PAGE_LIMITS, ...options.stableDirtyPageLimits };
    this.rootKeyDer = options.rootKeyDer;
    this.subnetSize = options.subnetSize ?? REFERENCE_SUBNET_SIZE;
    assert(Number.isSafeInteger(this.subnetSize) && this.subnetSize > 0, "subnetSize must be a positive integer");
    this.thresholdKeys = options.thresholdKeys ?? [];
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
      ...(inv.systemTask === undefined ? {} : { systemTask: inv.systemTask }),
      wasmMemoryLimitBytes: wasmMemoryLimitOf(canister),
      outstandingCalls: (callee) => canister.callbacks.reduce((n, c) => n + (c.callee === callee ? 1 : 0), 0),
      stableDirtyPageLimit: this.stableDirtyPageLimits[stableDirtyLimitKind(inv.context)],
      ...(canister.environmentVariables === undefined ? {} : { environmentVariables: canister.environmentVariables }),
      ...(this.rootKeyDer === undefined ? {} : { rootKeyDer: this.rootKeyDer }),
      ...(inv.msgDeadlineNs === undefined ? {} : { msgDeadlineNs: inv.msgDeadlineNs }),
      subnetSize: this.subnetSize,
      thresholdKeys: this.thresholdKeys,
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
    const wasmMemory = li.committedMemory(exec.wasmMemory);
    const globals = li.readGlobals();
    const stableMemory = applyStable(exec.stableMemory, s);
    li.mirror(wasmMemory, globals);
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
    const wasmMemory = li.committedMemory(exec.wasmMemory);
    const globals = li.readGlobals();
    li.mirror(wasmMemory, globals);
    return { ...canister, execution: { ...exec, wasmMemory, wasmMemoryPages: li.memoryPages(), globals } };
  }

  private discard(id: CanisterId, li: LiveInstance, exec: ExecutionState): void {
    if (!li.rollback(exec.globals)) this.live.remove(id, li);
  }

  // --- messages ---------------------------------------------------------------------------------

  executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    if (message.kind === "query") return this.charged(canister, message, params);
    // After every replicated execution the low-memory hook's condition is evaluated again
    // (low-wasm-memory.ts); nothing changes for a canister that never set a threshold.
    const r = this.charged(canister, message, params);
    const updated = updateHookStatus(r.canister);
    return updated === r.canister ? r : { ...r, canister: updated };
  }

  private charged(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    const fees = params.fees;
    if (fees === undefined || message.kind === "query") return this.execute(canister, message, params);
    // Prepayment (ic-protocol.md §4.11): the canister must afford a message that uses its whole
    // budget; afterwards it pays for the instructions used (also when it trapped). Responses are
    // always executed (the IC reserves their cycles when the call is made).
    const maxFee = executionFee(fees, params.instructionLimit);
    if (canister.cyclesBalance < maxFee && canister.execution !== undefined && message.kind !== "response") {
      const origin = originOf(message);
      const r = WasmExecutor.rejected(canister, outOfCycles(canister.id, canister.cyclesBalance, maxFee), origin);
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
      case "on-low-wasm-memory":
        return this.executeTask(canister, message.kind, params);
    }
  }

  /** Nothing to run and nobody to answer (a stale callback, a task without its export). */
  private static notRun(canister: CanisterState, why: string): ExecutionResult {
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
  private static droppedResponse(canister: CanisterState, message: Extract<CanisterMessage, { kind: "response" }>): ExecutionResult {
    const credited = message.refundedCycles === 0n ? canister : { ...canister, cyclesBalance: canister.cyclesBalance + message.refundedCycles };
    return WasmExecutor.notRun(credited, `best-effort response for callback ${message.callbackId} dropped: its deadline expired`);
  }

  /** The message could not run (reject-codes.ts: told to its origin in the form the IC uses for it). */
  private static rejected(canister: CanisterState, error: UserError, origin?: CallOrigin): ExecutionResult {
    return {
      canister,
      outcome: { kind: "rejected", code: rejectCodeOf(error.code), message: error.description },
      instructionsUsed: 0n,
      responses: origin === undefined ? [] : [{ origin, response: rejectFor(origin, error), refundedCycles: 0n }],
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
      message.kind === "ingress" ? { kind: "ingress", messageId: message.messageId, caller: message.caller } : canisterOrigin(message);
    const cycles = message.kind === "request" ? message.cycles : 0n;
    const reject = (error: UserError): ExecutionResult => {
      const r = WasmExecutor.rejected(canister, error, origin);
      return { ...r, responses: r.responses.map((x) => ({ ...x, refundedCycles: cycles })) };
    };
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
        // Spec "ic0.msg_deadline": a best-effort request's deadline for update methods; 0 for
        // ingress and for query methods, also in replicated mode.
        ...(message.kind === "request" && message.deadlineNs !== undefined && !replicatedQuery ? { msgDeadlineNs: message.deadlineNs } : {}),
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
    return this.finishCall(committed, contextId, out, heapDeltaPages, { kind: "completed" }, params.timeNs);
  }

  /** The reply/reject a session produced for `origin`, or the IC's "no reply" reject when it produced none. */
  private responseOf(id: CanisterId, s: SystemApiSession, origin: CallOrigin): Response {
    if (s.reply === undefined) return noReplyFor(origin, id);
    return s.reply.kind === "reply" ? { kind: "reply", data: s.reply.data } : explicitReject(origin, s.reply.message);
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
    timeNs: bigint,
  ): ExecutionResult {
    const s = out.session;
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
        responses.push({ origin: c.origin, response: this.responseOf(canister.id, s, c.origin), refundedCycles: ctx.availableCycles });
        ctx = { ...ctx, responded: true, availableCycles: 0n };
      }
      const outstanding = callbacks.some((cb) => cb.callContextId === contextId);
      if (outstanding) {
        contexts.push(ctx);
      } else if (!ctx.responded && c.origin.kind !== "system") {
        responses.push({ origin: c.origin, response: this.responseOf(canister.id, s, c.origin), refundedCycles: ctx.availableCycles });
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
    // As the IC's query handler: a module exporting the method first, then a running canister.
    const exec = canister.execution;
    if (exec === undefined) return WasmExecutor.rejected(canister, hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }), origin);
    const composite = `canister_composite_query ${message.method}`;
    const isComposite = exec.exports.includes(composite);
    const entry = isComposite ? composite : exportName("query", message.method);
    if (!exec.exports.includes(entry)) {
      return WasmExecutor.rejected(canister, hypervisorUserError(canister.id, { kind: "method-not-found", method: "query", name: message.method }), origin);
    }
    if (canister.status !== "running") return WasmExecutor.rejected(canister, canisterNotRunning(canister.id, canister.status), origin);
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
      out.trap !== undefined ? rejectFor(origin, hypervisorUserError(canister.id, out.trap.error)) : this.responseOf(canister.id, out.session, origin);
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

  private executeResponse(
    canister: CanisterState,
    message: Extract<CanisterMessage, { kind: "response" }>,
    params: ExecutionParams,
    composite = false,
  ): ExecutionResult {
    const callback = canister.callbacks.find((c) => c.id === message.callbackId);
    if (callback === undefined) {
      // A best-effort response whose callback is gone (its deadline expired and the reject ran):
      // dropped, its refund credited (the IC's push_input).
      if (message.deadlineNs !== undefined) return WasmExecutor.droppedResponse(canister, message);
      return WasmExecutor.notRun(canister, `no callback ${message.callbackId} in ${canister.id}`);
    }
    // The callback expired and its SYS_UNKNOWN reject is queued: the callee's answer came too late.
    if (callback.expired === true && message.deadlineExpired !== true) return WasmExecutor.droppedResponse(canister, message);
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
      return WasmExecutor.notRun(consumed, "callback target no longer exists");
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
      // ic0.msg_deadline in a callback: the deadline of the call it answers (0 if guaranteed).
      ...(callback.deadlineNs === undefined || composite ? {} : { msgDeadlineNs: callback.deadlineNs }),
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
      return this.finishCall(committed, context.id, out, heapDeltaPages, { kind: "completed" }, params.timeNs);
    }
    // Trap: roll back, then run the cleanup closure (its changes persist if it does not trap).
    this.discard(canister.id, li, exec);
    let state = consumed;
    let used = out.instructionsUsed;
    let heapDeltaPages = 0;
    const log = [...out.session.debugLog];
    let error: HypervisorError = out.trap.error;
    let diagnosis = out.trap.message;
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
        error = { kind: "cleanup", callback: out.trap.error, cleanup: c.trap.error };
        diagnosis = `${out.trap.message}; the cleanup callback trapped too: ${c.trap.message}`;
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
          response: rejectFor(context.origin, hypervisorUserError(canister.id, error)),
          refundedCycles: context.availableCycles,
        });
      }
    }
    return {
      canister: { ...state, callContexts: contexts },
      outcome: { kind: "trapped", message: diagnosis, error },
      instructionsUsed: used,
      responses,
      outgoingCalls: [],
      heapDeltaPages,
      debugLog: log,
      readTime: out.session.usedTime,
    };
  }

  private executeTask(canister: CanisterState, task: SystemTask, params: ExecutionParams): ExecutionResult {
    const exec = canister.execution;
    const entry = TASK_ENTRY[task];
    // The global timer is deactivated once it is scheduled (spec "Global timer"); the low-memory
    // hook is Executed once its task is taken, whether it then runs, traps or is not exported.
    if (task === "on-low-wasm-memory" && hookStatusOf(canister) !== "ready") return WasmExecutor.notRun(canister, "the low-memory hook is not Ready");
    const base: CanisterState =
      task === "global-timer" ? { ...canister, globalTimerNs: 0n } : task === "on-low-wasm-memory" ? withHookStatus(canister, "executed") : canister;
    if (exec === undefined || canister.status !== "running" || !exec.exports.includes(entry)) {
      return WasmExecutor.notRun(base, `no ${entry} to run`);
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
        systemTask: task,
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
        outcome: { kind: "trapped", message: out.trap.message, error: out.trap.error },
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
    return this.finishCall(committed, contextId, out, heapDeltaPages, { kind: "completed" }, params.timeNs);
  }

  // --- composite queries -----------------------------------------------------------------------------

  /**
   * A query with its whole call tree (ic-protocol.md §4.12; the IC's query_handler/query_context.rs
   * and query_call_graph.rs): composite queries may call query and composite query methods of
   * canisters on the same subnet, one instruction budget for the tree. Every call runs on the
   * callee's state in `lookup` (the state the query runs against), never on a caller's state in
   * progress: a composite query that calls its own canister sees the committed state. Nothing is
   * kept: a call context's changes live in its own throw-away copy. A node at depth
   * MAX_COMPOSITE_QUERY_DEPTH that makes calls, or a tree past its budget, fails the whole query
   * (IC0525, IC0526). A callee's error reaches its caller as the description alone; the root's
   * answer is the user's (reject-codes.ts).
   */
  executeQueryTree(
    lookup: (id: CanisterId) => CanisterState | undefined,
    target: CanisterId,
    message: Extract<CanisterMessage, { kind: "query" }>,
    params: ExecutionParams,
  ): { readonly response: Response; readonly instructionsUsed: bigint; readonly debugLog: readonly string[]; readonly readTime: boolean } {
    const log: string[] = [];
    let used = 0n;
    let readTime = false;
    const remaining = (): ExecutionParams => ({ ...params, instructionLimit: params.instructionLimit - used });
    const account = (r: { readonly instructionsUsed: bigint; readonly debugLog: readonly string[]; readonly readTime: boolean }): void => {
      used += r.instructionsUsed;
      log.push(...r.debugLog);
      readTime ||= r.readTime;
    };
    const checkBudget = (): void => {
      if (used >= params.instructionLimit) throw new QueryGraphFailure(compositeQueryInstructionLimit);
    };
    /**
     * A composite query's call to the management canister: its query methods run against the
     * query's state on behalf of the calling canister (query_context.rs `handle_ic00_request`,
     * dfinity/ic PR #10987); any other method is "not found" (subnet_query.rs).
     */
    const managementQueryAnswer = (caller: CanisterId, method: string, arg: Uint8Array): Response => {
      const r = managementQuery(lookup, caller as string as PrincipalText, method, arg);
      return r.ok ? { kind: "reply", data: r.data } : compositeCalleeReject(r.error);
    };
    /** Runs one call context to its answer; `caller` undefined for the user's call at the root. */
    const call = (id: CanisterId, method: string, arg: Uint8Array, caller: CanisterId | undefined, depth: number): Response => {
      const origin: CallOrigin = { kind: "query", caller: caller === undefined ? message.caller : (caller as string as PrincipalText) };
      const asAnswer = (e: UserError): Response => (caller === undefined ? userReject(e) : compositeCalleeReject(e));
      if (caller !== undefined && (id as string) === MANAGEMENT_CANISTER) return managementQueryAnswer(caller, method, arg);
      const committed = lookup(id);
      if (committed === undefined) return asAnswer(canisterNotFound(id));
      const exec = committed.execution;
      const composite = `canister_composite_query ${method}`;
      if (exec === undefined || !exec.exports.includes(composite)) {
        const r = this.executeQuery(committed, { kind: "query", caller: origin.caller, method, arg }, remaining());
        account(r);
        const answer = r.responses[0]?.response;
        assert(answer !== undefined, "a query produced no answer");
        return caller === undefined ? answer : calleeAnswer(answer);
      }
      if (committed.status !== "running") return asAnswer(canisterNotRunning(committed.id, committed.status));
      const contextId = committed.nextCallContextId as CallContextId;
      const li = this.instanceFor(committed.id, exec);
      const out = this.invoke(
        li,
        committed,
        { memory: exec.stableMemory, pages: exec.stableMemoryPages },
        {
          context: "CQ",
          caller: origin.caller,
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
      account({ instructionsUsed: out.instructionsUsed, debugLog: out.session.debugLog, readTime: out.session.usedTime });
      if (out.trap !== undefined) {
        this.discard(committed.id, li, exec);
        return asAnswer(hypervisorUserError(committed.id, out.trap.error));
      }
      const context: CallContext = { id: contextId, origin, responded: false, availableCycles: 0n };
      const opened = this.commit(
        { ...committed, nextCallContextId: committed.nextCallContextId + 1n, callContexts: [...committed.callContexts, context] },
        exec,
        li,
        out.session,
      );
      const first = this.finishCall(opened, contextId, out, 0, { kind: "completed" }, params.timeNs);
      // This context's own copy of the canister, advanced by its callbacks only.
      let current = first.canister;
      let response = first.responses.find((r) => r.origin.kind === "query")?.response;
      const queue = [...first.outgoingCalls];
      if (response === undefined && queue.length > 0 && depth >= MAX_COMPOSITE_QUERY_DEPTH) throw new QueryGraphFailure(compositeQueryTooDeep);
      for (let next = queue.shift(); response === undefined && next !== undefined; next = queue.shift()) {
        checkBudget();
        const answer = call(next.callee, next.method, next.arg, committed.id, depth + 1);
        checkBudget();
        const r = this.executeResponse(current, { kind: "response", callbackId: next.callbackId, response: answer, refundedCycles: 0n }, remaining(), true);
        account(r);
        current = r.canister;
        queue.push(...r.outgoingCalls);
        response = r.responses.find((x) => x.origin.kind === "query")?.response;
      }
      if (response === undefined) return asAnswer(queryDidNotRespond(committed.id));
      return caller === undefined ? response : calleeAnswer(response);
    };
    let response: Response;
    try {
      response = call(target, message.method, message.arg, undefined, 0);
    } catch (e) {
      if (!(e instanceof QueryGraphFailure)) throw e;
      response = userReject(e.error);
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
    const refused = (refusal: UserError, instructionsUsed: bigint): InspectResult => ({ accepted: false, message: refusal.description, refusal, instructionsUsed });
    if (exec === undefined) return refused(hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }), 0n);
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
    // The IC's should_accept_ingress_message: a trap is reported as it is, a missing
    // ic0.accept_message as HypervisorError::MessageRejected (IC0406, no hint line).
    if (out.trap !== undefined) return refused(hypervisorUserError(canister.id, out.trap.error), out.instructionsUsed);
    if (!out.session.accepted) return refused(messageRejected(canister.id), out.instructionsUsed);
    return { accepted: true, message: "", instructionsUsed: out.instructionsUsed };
  }

  // --- install_code -------------------------------------------------------------------------------

  installCode(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
    // A new or replaced Wasm memory: the low-memory hook's condition is evaluated again.
    const r = this.install(canister, args, params);
    return r.ok ? { ...r, canister: updateHookStatus(r.canister) } : r;
  }

  private install(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
    const fail = (code: RejectCode, message: string, instructionsUsed = 0n, debugLog: readonly string[] = []): LifecycleResult => ({
      ok: false,
      canister,
      code,
      message,
      instructionsUsed,
      debugLog,
    });
    const failWith = (e: UserError): LifecycleResult => ({ ok: false, canister, code: rejectCodeOf(e.code), message: e.description, errorCode: e.code, instructionsUsed: 0n, debugLog: [] });
    if (!canister.controllers.includes(args.sender)) return failWith(invalidController(canister.id, canister.controllers, args.sender));
    let module: CompiledModule;
    try {
      module = this.modules.get(args.wasmModule);
    } catch (e) {
      // HypervisorError::InvalidWasm through CanisterManagerError::Hypervisor (errors.rs).
      if (e instanceof InvalidModuleError) return failWith(hypervisorUserError(canister.id, { kind: "invalid-wasm", detail: e.message, help: e.help }));
      throw e;
    }
    switch (args.mode) {
      case "install":
        if (canister.execution !== undefined) return failWith(canisterNonEmpty(canister.id));
        return this.freshInstall(canister, module, args, params);
      case "reinstall":
        return this.freshInstall(canister, module, args, params);
      case "upgrade":
        // upgrade.rs: an empty canister fails with HypervisorError::WasmModuleNotFound.
        if (canister.execution === undefined) return failWith(hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }));
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
    if (!(li instanceof LiveInstance)) return { ok: false, canister, code: rejectCodeOf(li.code), message: li.description, errorCode: li.code, instructionsUsed: 0n, debugLog: [] };
    const r = this.startAndInit(li, start, { memory: PageMap.empty(), pages: 0n }, args, params, 0n, "canister_init");
    if (!r.ok) return { ok: false, canister, code: rejectCodeOf(r.error.code), message: r.error.description, errorCode: r.error.code, instructionsUsed: r.used, debugLog: r.log };
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
    // A trap in pre_upgrade or post_upgrade is reported as the IC's canister manager does:
    // CanisterManagerError::Hypervisor → the trap's own error.
    const trapped = (e: UserError): LifecycleResult => ({
      ok: false,
      canister,
      code: rejectCodeOf(e.code),
      message: e.description,
      errorCode: e.code,
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
        return trapped(hypervisorUserError(canister.id, out.trap.error));
      }
      heap = {
        memory: oldLi.committedMemory(old.wasmMemory),
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
    if (!(li instanceof LiveInstance)) return trapped(li);
    const keep = (args.wasmMemoryPersistence ?? (module.customSections.includes(EOP_SECTION) ? "keep" : "replace")) === "keep";
    if (keep) li.loadState(heap.memory, heap.pages, li.readGlobals());
    state = { ...state, globalTimerNs: 0n };
    const r = this.startAndInit(li, state, stable, args, params, used, "canister_post_upgrade");
    log.push(...r.log);
    used = r.used;
    if (!r.ok) return trapped(r.error);
    return this.installed(canister, state, module, li, args, { ...r, log });
  }

  /**
   * A fresh instance for an install or upgrade, or why the module cannot be instantiated (a data
   * or element segment outside its memory or table): the install fails, it does not throw.
   */
  private instantiate(id: CanisterId, module: CompiledModule): LiveInstance | UserError {
    try {
      return new LiveInstance(module, this.memoryLimitPages);
    } catch (e) {
      if (!isRuntimeError(e)) throw e;
      return hypervisorUserError(id, instantiationError(e.message));
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
    | { ok: false; used: bigint; log: string[]; error: UserError } {
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
      if (out.trap !== undefined) return { ok: false, used, log, error: hypervisorUserError(canister.id, out.trap.error) };
      stable = { memory: applyStable(stable.memory, out.session), pages: out.session.stablePages };
      state = {
        ...state,
        cyclesBalance: out.session.cyclesBalance,
        certifiedData: out.session.certifiedData,
        globalTimerNs: out.session.globalTimerNs,
      };
      lastSession = out.session;
    }
    // An install or upgrade may not leave the memory above wasm_memory_limit, however it got there
    // (a module's initial memory too): install_code.rs InstallCodeHelper::finish.
    const overLimit = wasmMemoryLimitError(canister, BigInt(li.memoryPages()) * BigInt(WASM_PAGE_BYTES));
    if (overLimit !== undefined) return { ok: false, used, log, error: hypervisorUserError(canister.id, overLimit) };
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
    li.mirror(wasmMemory, globals);
    this.keep(original.id, li);
    const s = r.session;
    const execution: ExecutionState = {
      moduleHash: module.moduleHash,
      wasmModule: module.uploaded,
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

/**
 * A module whose segments do not fit its memory or table. The IC finds a data segment outside the
 * initial memory while instrumenting (WasmInstrumentationError::InvalidDataSegment, reported as
 * InstrumentationFailed, IC0505, with the toolchain hint: rs/embedders data segments `validate`,
 * rs/types/wasm_types/src/errors.rs); the detail here is the engine's message, not the IC's
 * "Wasm module has invalid data segment of <len> bytes at <offset>".
 */
function instantiationError(engineMessage: string): HypervisorError {
  return { kind: "instrumentation-failed", detail: engineMessage };
}
