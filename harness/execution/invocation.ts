// One invocation: an entry point of a canister run on a live instance, in a System API session
// built from the canister's state and the message; and how a successful one is committed.
//
// Every part of the executor (messages, system tasks, composite queries, inspection, install)
// runs canister code through an Invoker and takes its instances from LiveInstances: the
// ExecutionContext below is all it is given.
import type { PageMap } from "../state/page-map.ts";
import { MANAGEMENT_CANISTER, type CanisterId, type CanisterState, type ExecutionParams, type ExecutionState, type PrincipalText, type RejectCode, type SystemTask } from "./interfaces.ts";
import { WASM_PAGE_BYTES, type LiveInstance, type ProgressWatch } from "./instance.ts";
import type { LiveInstances } from "./instance-pool.ts";
import { wasmMemoryLimitOf } from "./low-wasm-memory.ts";
import { ExecutionAborted, type ProgressCallback } from "./progress.ts";
import type { ThresholdKey } from "./cycles-costs.ts";
import { stableDirtyLimitKind, SystemApiSession, type ApiContext, type CanisterTrap, type SessionInit, type StableDirtyPageLimits } from "./system-api.ts";

/** What the parts of the executor run canister code with (executor.ts builds it once). */
export interface ExecutionContext {
  readonly instances: LiveInstances;
  readonly invoker: Invoker;
}

export interface Invocation {
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
export type EntryCaller = Pick<LiveInstance, "callExport" | "callClosure">;

export interface InvocationOutcome {
  readonly trap: CanisterTrap | undefined;
  readonly session: SystemApiSession;
  readonly instructionsUsed: bigint;
}

/** The inputs of an invocation that received no cycles and answers no reject (all but calls and callbacks). */
export const NOTHING_RECEIVED = { availableCycles: 0n, refundedCycles: 0n, rejectCode: 0, rejectMessage: "" } as const;

/** Stable memory as an invocation starts: the canister's page map and its size in Wasm pages. */
export interface StableMemory {
  readonly memory: PageMap;
  readonly pages: bigint;
}

/** How progress names a closure by the context it runs in. */
const CLOSURE_ENTRY: Partial<Record<ApiContext, string>> = {
  Ry: "reply callback",
  Rt: "reject callback",
  C: "cleanup callback",
  CRy: "composite query reply callback",
  CRt: "composite query reject callback",
  CC: "composite query cleanup callback",
};

/** The executor's settings every session sees, and who watches long executions. */
export interface InvokerSettings {
  readonly stableDirtyPageLimits: StableDirtyPageLimits;
  readonly rootKeyDer: Uint8Array | undefined;
  readonly subnetSize: number;
  readonly thresholdKeys: readonly ThresholdKey[];
  readonly onProgress: ProgressCallback | undefined;
  readonly progressEveryInstructions: bigint;
}

/** Runs entry points on live instances. */
export class Invoker {
  constructor(
    private readonly settings: InvokerSettings,
    private readonly instances: Pick<LiveInstances, "drop">,
  ) {}

  invoke(li: LiveInstance, canister: CanisterState, stable: StableMemory, inv: Invocation, params: ExecutionParams, alreadyUsed: bigint): InvocationOutcome {
    const session = new SystemApiSession(this.sessionInit(li, canister, stable, inv, params));
    const watched = this.watched(li, canister.id, inv.context, params.instructionLimit, alreadyUsed);
    li.begin(session, params.instructionLimit, alreadyUsed, watched?.watch);
    let trap: CanisterTrap | undefined;
    try {
      trap = li.run(() => inv.run(watched?.caller ?? li));
    } catch (e) {
      // Stopped half-way through the message: the instance mirrors no state any more.
      if (e instanceof ExecutionAborted) this.instances.drop(canister.id, li);
      throw e;
    }
    session.finish();
    return { trap, session, instructionsUsed: li.instructionsUsed() };
  }

  private sessionInit(li: LiveInstance, canister: CanisterState, stable: StableMemory, inv: Invocation, params: ExecutionParams): SessionInit {
    const settings = this.settings;
    return {
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
      stableDirtyPageLimit: settings.stableDirtyPageLimits[stableDirtyLimitKind(inv.context)],
      ...(canister.environmentVariables === undefined ? {} : { environmentVariables: canister.environmentVariables }),
      ...(settings.rootKeyDer === undefined ? {} : { rootKeyDer: settings.rootKeyDer }),
      ...(inv.msgDeadlineNs === undefined ? {} : { msgDeadlineNs: inv.msgDeadlineNs }),
      subnetSize: settings.subnetSize,
      thresholdKeys: settings.thresholdKeys,
    };
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
    const onProgress = this.settings.onProgress;
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
      watch: { everyInstructions: this.settings.progressEveryInstructions, check: (n) => report(n, false) },
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
}

/** The stable memory an invocation on `exec` starts from. */
export function stableOf(exec: ExecutionState): StableMemory {
  return { memory: exec.stableMemory, pages: exec.stableMemoryPages };
}

/** Stable memory after an invocation: resized to its page count, written pages replaced. */
export function applyStable(base: PageMap, s: SystemApiSession): PageMap {
  // The session's pages are its own copy-on-write copies, used by nothing after it: handed over
  // as they are (a message that writes 200,000 stable pages no longer holds them twice).
  return base.resized(Number(s.stablePages) * WASM_PAGE_BYTES).withOwnedPages(s.stableDirty);
}

/** Folds a successful invocation into the canister state; the instance then mirrors it. */
export function commit(canister: CanisterState, exec: ExecutionState, li: LiveInstance, s: SystemApiSession): CanisterState {
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

/** The pages an invocation wrote, in both memories: its heap delta. */
export function writtenPages(li: LiveInstance, s: SystemApiSession): number {
  return li.dirtyPageCount() + s.stableDirty.size;
}

/**
 * A new execution of `inv` on `canister` (whose execution state is `exec`), on an instance that
 * mirrors that state; the instance comes back with the outcome, to commit or discard.
 */
export function invokeOn(
  ctx: ExecutionContext,
  canister: CanisterState,
  exec: ExecutionState,
  inv: Invocation,
  params: ExecutionParams,
): { li: LiveInstance; out: InvocationOutcome } {
  const li = ctx.instances.instanceFor(canister.id, exec);
  return { li, out: ctx.invoker.invoke(li, canister, stableOf(exec), inv, params, 0n) };
}
