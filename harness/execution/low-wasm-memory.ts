// The low-memory hook (IC interface spec: "On low wasm memory hook", canister settings
// `wasm_memory_limit` and `wasm_memory_threshold`): when a canister's Wasm memory leaves less than
// `wasm_memory_threshold` bytes below `wasm_memory_limit`, the system runs its
// `canister_on_low_wasm_memory` export once, as a system task; it runs again only after the
// condition stopped holding and holds again.
//
// Facts from dfinity/ic (read, not copied):
//  - rs/replicated_state/src/canister_state/system_state.rs: the condition is
//    `wasm_memory_threshold > wasm_memory_limit - wasm_memory_usage`, re-evaluated after
//    executions and settings changes (`update_on_low_wasm_memory_hook_status`);
//  - rs/replicated_state/src/canister_state/system_state/task_queue.rs: the status moves
//    ConditionNotSatisfied → Ready when the condition holds, Ready → Executed when the task is
//    taken (it goes before heartbeat and timer tasks), back to ConditionNotSatisfied from either
//    when it stops holding; Executed stays Executed while it holds;
//  - the status is what `read_canister_snapshot_metadata` reports as `on_low_wasm_memory_hook_status`.
import type { CanisterState } from "./interfaces.ts";
import type { HypervisorError } from "./reject-codes.ts";
import type { ApiContext } from "./system-api.ts";

/** The IC's default `wasm_memory_limit` for new canisters (what canister_status reports): 3 GiB. */
export const DEFAULT_WASM_MEMORY_LIMIT_BYTES = 3n * 1024n ** 3n;
const WASM_PAGE_BYTES = 65_536n;

/** The hook's status, by the names the management canister's Candid gives them. */
export type LowWasmMemoryHookStatus = "condition_not_satisfied" | "ready" | "executed";

export const wasmMemoryLimitOf = (c: CanisterState): bigint => c.wasmMemoryLimitBytes ?? DEFAULT_WASM_MEMORY_LIMIT_BYTES;
export const wasmMemoryThresholdOf = (c: CanisterState): bigint => c.wasmMemoryThresholdBytes ?? 0n;
export const hookStatusOf = (c: CanisterState): LowWasmMemoryHookStatus => c.lowWasmMemoryHook ?? "condition_not_satisfied";

/** Bytes of Wasm (main) memory in use: its size in 64 KiB pages; 0 for an empty canister. */
export function wasmMemoryUsageBytes(c: CanisterState): bigint {
  return BigInt(c.execution?.wasmMemoryPages ?? 0) * WASM_PAGE_BYTES;
}

/** threshold > limit − usage (the difference saturating at 0, as the replica's NumBytes does). */
export function hookConditionHolds(c: CanisterState): boolean {
  const limit = wasmMemoryLimitOf(c);
  const usage = wasmMemoryUsageBytes(c);
  const left = usage >= limit ? 0n : limit - usage;
  return wasmMemoryThresholdOf(c) > left;
}

/** The status after re-evaluating the condition (task_queue.rs). */
export function nextHookStatus(status: LowWasmMemoryHookStatus, holds: boolean): LowWasmMemoryHookStatus {
  if (!holds) return "condition_not_satisfied";
  return status === "condition_not_satisfied" ? "ready" : status;
}

/** The canister with this hook status (the field is absent for condition_not_satisfied, so canisters that never use the hook keep their encoding). */
export function withHookStatus(c: CanisterState, status: LowWasmMemoryHookStatus): CanisterState {
  if (status === hookStatusOf(c)) return c;
  const { lowWasmMemoryHook: _old, ...rest } = c;
  return status === "condition_not_satisfied" ? rest : { ...rest, lowWasmMemoryHook: status };
}

/** Re-evaluates the condition after an execution or a settings change; the same object when nothing changes. */
export function updateHookStatus(c: CanisterState): CanisterState {
  return withHookStatus(c, nextHookStatus(hookStatusOf(c), hookConditionHolds(c)));
}

/** The hook is due: Ready, running, with the export (a canister without it is marked Executed when the task is taken). */
export function hookDue(c: CanisterState): boolean {
  return c.status === "running" && c.execution !== undefined && hookStatusOf(c) === "ready";
}

// --- enforcing wasm_memory_limit ------------------------------------------------------------------
//
// The replica holds a canister to its `wasm_memory_limit` (dfinity/ic, read, not copied):
//  - rs/embedders/src/wasmtime_embedder/system_api.rs `effective_wasm_memory_limit`: only in
//    canister_init / canister_post_upgrade, the start function and update methods. Not in queries
//    of any kind or canister_inspect_message (so data can still be downloaded), not in reply,
//    reject or cleanup callbacks (a new failure there could break canisters written before the
//    limit existed), not in system tasks (heartbeat, timers, the low-memory hook), not in
//    canister_pre_upgrade (so a canister can be upgraded to a version that uses less memory);
//  - same file, `try_grow_wasm_memory`: a memory.grow the engine allowed (a −1 of the engine is
//    left as it is) that takes the memory above the limit fails the message with
//    WasmMemoryLimitExceeded, the new size as the peak usage; a limit of 0 means unlimited;
//  - rs/execution_environment/src/execution/update.rs `CallOrTaskHelper::new`: an update call
//    (not a replicated query, not a task) to a canister whose memory is already above the limit
//    (after the limit was lowered) fails before it runs, the current size as the peak usage;
//  - rs/execution_environment/src/execution/install_code.rs `InstallCodeHelper::finish`: an
//    install, reinstall or upgrade that leaves the memory above the limit fails.

/** Whether `usageBytes` of Wasm memory is more than `limitBytes` allows (0: unlimited). */
export function exceedsWasmMemoryLimit(limitBytes: bigint, usageBytes: bigint): boolean {
  return limitBytes !== 0n && usageBytes > limitBytes;
}

/** The limit memory.grow is held to in an entry point; undefined where the replica does not apply it. */
export function effectiveWasmMemoryLimit(context: ApiContext, limitBytes: bigint): bigint | undefined {
  return context === "I" || context === "s" || context === "U" ? limitBytes : undefined;
}

/** The error of a canister whose Wasm memory, `usageBytes`, is above its limit; undefined if it is not. */
export function wasmMemoryLimitError(c: CanisterState, usageBytes: bigint): HypervisorError | undefined {
  const limitBytes = wasmMemoryLimitOf(c);
  return exceedsWasmMemoryLimit(limitBytes, usageBytes) ? { kind: "wasm-memory-limit", peakBytes: usageBytes, limitBytes } : undefined;
}
