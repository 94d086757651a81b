// System tasks: canister_heartbeat, canister_global_timer and canister_on_low_wasm_memory, run in
// context T on behalf of the system. A task is atomic like an update; the calls it makes open a
// call context whose answers nobody waits for.
import { MANAGEMENT_CANISTER, type CallOrigin, type CanisterState, type ExecutionParams, type ExecutionResult, type SystemTask } from "./interfaces.ts";
import { hookStatusOf, withHookStatus } from "./low-wasm-memory.ts";
import { finishCall, notRun, openContext } from "./call-contexts.ts";
import { commit, invokeOn, NOTHING_RECEIVED, writtenPages, type ExecutionContext } from "./invocation.ts";

/** The export each system task runs. */
const TASK_ENTRY: Readonly<Record<SystemTask, string>> = {
  heartbeat: "canister_heartbeat",
  "global-timer": "canister_global_timer",
  "on-low-wasm-memory": "canister_on_low_wasm_memory",
};

export function executeTask(ctx: ExecutionContext, canister: CanisterState, task: SystemTask, params: ExecutionParams): ExecutionResult {
  const exec = canister.execution;
  const entry = TASK_ENTRY[task];
  // The global timer is deactivated once it is scheduled (spec "Global timer"); the low-memory
  // hook is Executed once its task is taken, whether it then runs, traps or is not exported.
  if (task === "on-low-wasm-memory" && hookStatusOf(canister) !== "ready") return notRun(canister, "the low-memory hook is not Ready");
  const base: CanisterState =
    task === "global-timer" ? { ...canister, globalTimerNs: 0n } : task === "on-low-wasm-memory" ? withHookStatus(canister, "executed") : canister;
  if (exec === undefined || canister.status !== "running" || !exec.exports.includes(entry)) {
    return notRun(base, `no ${entry} to run`);
  }
  const origin: CallOrigin = { kind: "system", task };
  const { li, out } = invokeOn(ctx, base, exec, {
    ...NOTHING_RECEIVED,
    context: "T",
    systemTask: task,
    caller: MANAGEMENT_CANISTER,
    arg: new Uint8Array(),
    responsePending: false,
    run: (x) => x.callExport(entry),
  }, params);
  if (out.trap !== undefined) {
    ctx.instances.discard(canister.id, li, exec);
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
  const heapDeltaPages = writtenPages(li, out.session);
  const opened = openContext(base, origin, 0n);
  return finishCall(commit(opened.canister, exec, li, out.session), opened.contextId, out, heapDeltaPages, params.timeNs);
}
