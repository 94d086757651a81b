// install_code: a fresh install or reinstall (start, then canister_init on a new instance) and an
// upgrade (canister_pre_upgrade on the old instance, then start and canister_post_upgrade on the
// new one, the Wasm memory kept or replaced). One instruction budget for all the steps; the install
// is atomic: on any failure the canister is left as it was.
import { assert } from "../assert.ts";
import { PageMap } from "../state/page-map.ts";
import { RejectCode, type CanisterState, type ExecutionParams, type ExecutionState, type InstallCodeArgs, type LifecycleResult, type OutgoingResponse } from "./interfaces.ts";
import { updateHookStatus, wasmMemoryLimitError } from "./low-wasm-memory.ts";
import { LiveInstance, WASM_PAGE_BYTES } from "./instance.ts";
import { InvalidModuleError } from "./invalid-module.ts";
import type { CompiledModule, ModuleCache } from "./module-cache.ts";
import { applyStable, invokeOn, NOTHING_RECEIVED, stableOf, type ExecutionContext, type StableMemory } from "./invocation.ts";
import { canisterNonEmpty, hypervisorUserError, invalidController, rejectCodeOf, type UserError } from "./reject-codes.ts";
import type { ApiContext, SystemApiSession } from "./system-api.ts";

const EOP_SECTION = "icp:private enhanced-orthogonal-persistence";

export interface InstallContext extends ExecutionContext {
  /** Where an uploaded module is instrumented and compiled (once per module hash). */
  readonly modules: ModuleCache;
}

/** What (start) and the init or post_upgrade export left behind. */
type InitOutcome =
  | { ok: true; used: bigint; log: string[]; stable: StableMemory; session: SystemApiSession | undefined }
  | { ok: false; used: bigint; log: string[]; error: UserError };

export function installCode(ctx: InstallContext, canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
  // A new or replaced Wasm memory: the low-memory hook's condition is evaluated again.
  const r = install(ctx, canister, args, params);
  return r.ok ? { ...r, canister: updateHookStatus(r.canister) } : r;
}

/** The install fails with `error` after `instructionsUsed`; the canister stays as it was. */
function failed(canister: CanisterState, error: UserError, instructionsUsed = 0n, debugLog: readonly string[] = []): LifecycleResult {
  return { ok: false, canister, code: rejectCodeOf(error.code), message: error.description, errorCode: error.code, instructionsUsed, debugLog };
}

function install(ctx: InstallContext, canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
  if (!canister.controllers.includes(args.sender)) return failed(canister, invalidController(canister.id, canister.controllers, args.sender));
  let module: CompiledModule;
  try {
    module = ctx.modules.get(args.wasmModule);
  } catch (e) {
    // HypervisorError::InvalidWasm through CanisterManagerError::Hypervisor (errors.rs).
    if (e instanceof InvalidModuleError) return failed(canister, hypervisorUserError(canister.id, { kind: "invalid-wasm", detail: e.message, help: e.help }));
    throw e;
  }
  switch (args.mode) {
    case "install":
      if (canister.execution !== undefined) return failed(canister, canisterNonEmpty(canister.id));
      return freshInstall(ctx, canister, module, args, params);
    case "reinstall":
      return freshInstall(ctx, canister, module, args, params);
    case "upgrade":
      // upgrade.rs: an empty canister fails with HypervisorError::WasmModuleNotFound.
      if (canister.execution === undefined) return failed(canister, hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }));
      return upgrade(ctx, canister, canister.execution, module, args, params);
  }
}

function freshInstall(ctx: InstallContext, canister: CanisterState, module: CompiledModule, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
  const start: CanisterState = {
    ...canister,
    certifiedData: new Uint8Array(),
    globalTimerNs: 0n,
    callbacks: [],
    callContexts: [],
  };
  const li = ctx.instances.instantiate(canister.id, module);
  if (!(li instanceof LiveInstance)) return failed(canister, li);
  const r = startAndInit(ctx, li, start, { memory: PageMap.empty(), pages: 0n }, args, params, 0n, "canister_init");
  if (!r.ok) return failed(canister, r.error, r.used, r.log);
  const done = installed(ctx, canister, start, module, li, r);
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

function upgrade(ctx: InstallContext, canister: CanisterState, old: ExecutionState, module: CompiledModule, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
  // A trap in pre_upgrade or post_upgrade is reported as the IC's canister manager does:
  // CanisterManagerError::Hypervisor → the trap's own error.
  const pre = preUpgrade(ctx, canister, old, args, params);
  if (!pre.ok) return failed(canister, pre.error, pre.used, pre.log);
  const log = pre.log;
  const li = ctx.instances.instantiate(canister.id, module);
  if (!(li instanceof LiveInstance)) return failed(canister, li, pre.used, log);
  const keep = (args.wasmMemoryPersistence ?? (module.customSections.includes(EOP_SECTION) ? "keep" : "replace")) === "keep";
  if (keep) li.loadState(pre.heap.memory, pre.heap.pages, li.readGlobals());
  const state = { ...pre.state, globalTimerNs: 0n };
  const r = startAndInit(ctx, li, state, pre.stable, args, params, pre.used, "canister_post_upgrade");
  log.push(...r.log);
  if (!r.ok) return failed(canister, r.error, r.used, log);
  return installed(ctx, canister, state, module, li, { ...r, log });
}

/**
 * canister_pre_upgrade on the old instance, if the module has it and the upgrade does not skip
 * it: the heap, stable memory and state the new module starts from.
 */
function preUpgrade(
  ctx: InstallContext,
  canister: CanisterState,
  old: ExecutionState,
  args: InstallCodeArgs,
  params: ExecutionParams,
):
  | { ok: true; used: bigint; log: string[]; heap: { memory: PageMap; pages: number }; stable: StableMemory; state: CanisterState }
  | { ok: false; used: bigint; log: string[]; error: UserError } {
  const unchanged = { ok: true as const, used: 0n, log: [], heap: { memory: old.wasmMemory, pages: old.wasmMemoryPages }, stable: stableOf(old), state: canister };
  if (args.skipPreUpgrade || !old.exports.includes("canister_pre_upgrade")) return unchanged;
  const { li: oldLi, out } = invokeOn(ctx, canister, old, {
    ...NOTHING_RECEIVED,
    context: "G",
    caller: args.sender,
    arg: new Uint8Array(),
    responsePending: false,
    run: (x) => x.callExport("canister_pre_upgrade"),
  }, params);
  const used = out.instructionsUsed;
  const log = [...out.session.debugLog];
  if (out.trap !== undefined) {
    ctx.instances.discard(canister.id, oldLi, old);
    return { ok: false, used, log, error: hypervisorUserError(canister.id, out.trap.error) };
  }
  const heap = { memory: oldLi.committedMemory(old.wasmMemory), pages: oldLi.memoryPages() };
  const stable = { memory: applyStable(unchanged.stable.memory, out.session), pages: out.session.stablePages };
  const state = { ...canister, cyclesBalance: out.session.cyclesBalance, certifiedData: out.session.certifiedData };
  // The old instance no longer mirrors the (still unchanged) canister state.
  ctx.instances.drop(canister.id, oldLi);
  return { ok: true, used, log, heap, stable, state };
}

/** Runs (start) and then canister_init / canister_post_upgrade on a fresh instance. */
function startAndInit(
  ctx: ExecutionContext,
  li: LiveInstance,
  canister: CanisterState,
  stable: StableMemory,
  args: InstallCodeArgs,
  params: ExecutionParams,
  alreadyUsed: bigint,
  initExport: "canister_init" | "canister_post_upgrade",
): InitOutcome {
  const log: string[] = [];
  let used = alreadyUsed;
  let state = canister;
  let lastSession: SystemApiSession | undefined;
  const steps: { context: ApiContext; name: string }[] = [];
  if (li.module.hasStart) steps.push({ context: "s", name: "__start" });
  if (li.module.exports.includes(initExport)) steps.push({ context: "I", name: initExport });
  for (const step of steps) {
    const out = ctx.invoker.invoke(
      li,
      state,
      stable,
      {
        ...NOTHING_RECEIVED,
        context: step.context,
        caller: args.sender,
        arg: step.context === "I" ? args.arg : new Uint8Array(),
        responsePending: false,
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

/** The installed canister: the new module, the instance's memory and globals, and what init left. */
function installed(
  ctx: InstallContext,
  original: CanisterState,
  state: CanisterState,
  module: CompiledModule,
  li: LiveInstance,
  r: Extract<InitOutcome, { ok: true }>,
): LifecycleResult {
  // Data segments were written by the engine, not through the barrier: every non-zero page of
  // the memory counts as written (heap delta), found among the pages that were ever written.
  const wasmMemory = li.memory === undefined ? PageMap.empty() : PageMap.empty().resized(li.memoryPages() * WASM_PAGE_BYTES).withOwnedPages(li.writtenPages());
  const globals = li.readGlobals();
  li.mirror(wasmMemory, globals);
  ctx.instances.keep(original.id, li);
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
