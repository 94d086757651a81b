// Ingress inspection: canister_inspect_message, run before an ingress message is accepted
// (non-replicated, nothing is kept; ic-protocol.md §4.12: 200 M instruction budget).
import type { CanisterState, ExecutionParams, InspectResult, PrincipalText } from "./interfaces.ts";
import { invokeOn, NOTHING_RECEIVED, type ExecutionContext } from "./invocation.ts";
import { hypervisorUserError, messageRejected, type UserError } from "./reject-codes.ts";

/**
 * An empty canister refuses everything; a canister without the export accepts everything;
 * otherwise the message is accepted iff the method calls ic0.accept_message and does not trap.
 */
export function inspectMessage(
  ctx: ExecutionContext,
  canister: CanisterState,
  message: { readonly caller: PrincipalText; readonly method: string; readonly arg: Uint8Array },
  params: ExecutionParams,
): InspectResult {
  const exec = canister.execution;
  const refused = (refusal: UserError, instructionsUsed: bigint): InspectResult => ({ accepted: false, message: refusal.description, refusal, instructionsUsed });
  if (exec === undefined) return refused(hypervisorUserError(canister.id, { kind: "wasm-module-not-found" }), 0n);
  if (!exec.exports.includes("canister_inspect_message")) return { accepted: true, message: "", instructionsUsed: 0n };
  const { li, out } = invokeOn(ctx, canister, exec, {
    ...NOTHING_RECEIVED,
    context: "F",
    caller: message.caller,
    arg: message.arg,
    methodName: message.method,
    responsePending: false,
    run: (x) => x.callExport("canister_inspect_message"),
  }, params);
  ctx.instances.discard(canister.id, li, exec);
  // The IC's should_accept_ingress_message: a trap is reported as it is, a missing
  // ic0.accept_message as HypervisorError::MessageRejected (IC0406, no hint line).
  if (out.trap !== undefined) return refused(hypervisorUserError(canister.id, out.trap.error), out.instructionsUsed);
  if (!out.session.accepted) return refused(messageRejected(canister.id), out.instructionsUsed);
  return { accepted: true, message: "", instructionsUsed: out.instructionsUsed };
}
