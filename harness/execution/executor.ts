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
//
// The executor owns what its parts share — the live instances and the settings of every
// invocation — and charges for messages; the parts run them:
//   instance-pool.ts    live instances: taken, pooled, rolled back, dropped
//   invocation.ts       one entry point run in a System API session; committing its effects
//   call-contexts.ts    call contexts, callbacks registered, answers and their origins
//   messages.ts         ingress, requests, queries, responses (callbacks and cleanup)
//   system-tasks.ts     heartbeat, global timer, low-memory hook
//   composite-query.ts  composite query trees
//   inspect-message.ts  canister_inspect_message
//   install.ts          install_code: install, reinstall, upgrade
import { assert } from "../assert.ts";
import {
  executionFee,
  type CanisterExecutor,
  type CanisterId,
  type CanisterMessage,
  type CanisterState,
  type ExecutionParams,
  type ExecutionResult,
  type InspectResult,
  type InstallCodeArgs,
  type LifecycleResult,
  type PrincipalText,
} from "./interfaces.ts";
import { updateHookStatus } from "./low-wasm-memory.ts";
import { DEFAULT_WASM_MEMORY_LIMIT_PAGES, WASM_PAGE_BYTES } from "./instance.ts";
import { DEFAULT_PROGRESS_EVERY_INSTRUCTIONS, type ProgressCallback } from "./progress.ts";
import { ModuleCache, sharedModuleCache } from "./module-cache.ts";
import { REFERENCE_SUBNET_SIZE, type ThresholdKey } from "./cycles-costs.ts";
import { outOfCycles } from "./reject-codes.ts";
import { STABLE_DIRTY_PAGE_LIMITS, type StableDirtyPageLimits } from "./system-api.ts";
import { LiveInstances } from "./instance-pool.ts";
import { Invoker } from "./invocation.ts";
import { originOf, rejected } from "./call-contexts.ts";
import { executeCall, executeQuery, executeResponse, type ExecutionCanary, type MessageContext } from "./messages.ts";
import { executeTask } from "./system-tasks.ts";
import { executeQueryTree, type QueryTreeResult } from "./composite-query.ts";
import { inspectMessage } from "./inspect-message.ts";
import { installCode, type InstallContext } from "./install.ts";

export { MAX_COMPOSITE_QUERY_DEPTH } from "./composite-query.ts";
export type { ExecutionCanary } from "./messages.ts";

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

export class WasmExecutor implements CanisterExecutor {
  private readonly instances: LiveInstances;
  /** What every part is given: the instances, the invoker, the module cache and the canary. */
  private readonly parts: MessageContext & InstallContext;

  constructor(
    readonly modules: ModuleCache = sharedModuleCache,
    options: WasmExecutorOptions = {},
  ) {
    const subnetSize = options.subnetSize ?? REFERENCE_SUBNET_SIZE;
    assert(Number.isSafeInteger(subnetSize) && subnetSize > 0, "subnetSize must be a positive integer");
    const progressEveryInstructions = options.progressEveryInstructions ?? DEFAULT_PROGRESS_EVERY_INSTRUCTIONS;
    assert(progressEveryInstructions > 0n, "progressEveryInstructions must be positive");
    this.instances = new LiveInstances(modules, {
      perCanister: options.instancesPerCanister ?? 2,
      total: options.maxInstances ?? 256,
      memoryLimitPages: Math.floor((options.wasmMemoryLimitBytes ?? DEFAULT_WASM_MEMORY_LIMIT_PAGES * WASM_PAGE_BYTES) / WASM_PAGE_BYTES),
    });
    const invoker = new Invoker(
      {
        stableDirtyPageLimits: { ...STABLE_DIRTY_PAGE_LIMITS, ...options.stableDirtyPageLimits },
        rootKeyDer: options.rootKeyDer,
        subnetSize,
        thresholdKeys: options.thresholdKeys ?? [],
        onProgress: options.onProgress,
        progressEveryInstructions,
      },
      this.instances,
    );
    this.parts = { instances: this.instances, invoker, modules, canary: options.canary };
  }

  /** Drops the cached live instances of a canister (e.g. when it is deleted). */
  forget(id: CanisterId): void {
    this.instances.forget(id);
  }

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
      return rejected(canister, outOfCycles(canister.id, canister.cyclesBalance, maxFee), originOf(message), message.kind === "request" ? message.cycles : 0n);
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
        return executeCall(this.parts, canister, message, params);
      case "query":
        return executeQuery(this.parts, canister, message, params);
      case "response":
        return executeResponse(this.parts, canister, message, params);
      case "heartbeat":
      case "global-timer":
      case "on-low-wasm-memory":
        return executeTask(this.parts, canister, message.kind, params);
    }
  }

  /** A query with its whole call tree (composite-query.ts). */
  executeQueryTree(
    lookup: (id: CanisterId) => CanisterState | undefined,
    target: CanisterId,
    message: Extract<CanisterMessage, { kind: "query" }>,
    params: ExecutionParams,
  ): QueryTreeResult {
    return executeQueryTree(this.parts, lookup, target, message, params);
  }

  /** canister_inspect_message for an ingress message (inspect-message.ts). */
  inspectMessage(
    canister: CanisterState,
    message: { readonly caller: PrincipalText; readonly method: string; readonly arg: Uint8Array },
    params: ExecutionParams,
  ): InspectResult {
    return inspectMessage(this.parts, canister, message, params);
  }

  /** install_code: install, reinstall or upgrade (install.ts). */
  installCode(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
    return installCode(this.parts, canister, args, params);
  }
}
