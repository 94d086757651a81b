// The execution state machine's non-replicated read paths (harness/replica/execution-state-machine.ts):
// queries, the ingress filter and canister info. All of them read one held execution state — the
// latest certified height's, as on the IC (RecentHeights.queryHeight) — and change nothing: a
// query runs on the replica's executor but its resulting state is thrown away.
import { hexToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import { WasmExecutor } from "../execution/executor.ts";
import {
  INSPECT_MESSAGE_INSTRUCTION_LIMIT,
  MANAGEMENT_CANISTER,
  type CanisterExecutor,
  type CanisterId,
  type CanisterState,
  type PrincipalText,
  type Response,
} from "../execution/interfaces.ts";
import { executeManagementQuery, managementIngressRefusal } from "../execution/management.ts";
import { canisterNotFound, canisterNotRunningAtInduction, rejectCodeOf, userReject, type UserError } from "../execution/reject-codes.ts";
import { executeQuery, type RoundConfig } from "../execution/round.ts";
import { metadataOf } from "./certified-view.ts";
import { callerOf } from "./ingress-induction.ts";
import type { CanisterInfo, IngressFilterRefusal, IngressFilterRejection } from "./interfaces.ts";
import type { HeldExecution } from "./recent-heights.ts";

/** What a query needs besides its state: the replica's executor and round limits, and its data certificates. */
export interface QueryContext {
  readonly executor: CanisterExecutor;
  readonly roundConfig: RoundConfig;
  readonly dataCertificateFor: (canister: CanisterId) => Uint8Array | undefined;
}

/** A query (or a composite query's call tree) against `at`, or the management canister's query methods. */
export function queryAt(context: QueryContext, at: HeldExecution, canister: CanisterId, method: string, arg: Uint8Array, caller: PrincipalText): Response {
  if ((canister as string) === MANAGEMENT_CANISTER) return executeManagementQuery((id) => at.state.canisters.find((c) => c.id === id), caller, method, arg);
  const target = at.state.canisters.find((c) => c.id === canister);
  if (target === undefined) return userReject(canisterNotFound(canister));
  const certificate = context.dataCertificateFor(canister);
  const message = { kind: "query" as const, caller, method, arg, ...(certificate === undefined ? {} : { dataCertificate: certificate }) };
  const executor = context.executor;
  if (executor instanceof WasmExecutor && target.execution?.exports.includes(`canister_composite_query ${method}`)) {
    // A composite query runs its call tree on the same state (the IC's query handler).
    const params = { instructionLimit: context.roundConfig.scheduler.maxInstructionsPerMessageWithoutDts, timeNs: at.timeNs };
    return executor.executeQueryTree((id) => at.state.canisters.find((c) => c.id === id), canister, message, params).response;
  }
  const result = executeQuery(executor, context.roundConfig, at.state, canister, message, at.timeNs);
  const reply = result.responses[0]?.response;
  assert(reply !== undefined, `query ${canister}.${method} produced no answer`);
  return reply;
}

/**
 * The ingress filter (interfaces.ts): on the state queries see, as the IC's HTTP handler does,
 * with the IC's error codes and messages (ic_error_types; canister_manager.rs for aaaaa-aa).
 */
export function filterIngressAt(executor: CanisterExecutor, at: HeldExecution, message: IngressMessage): IngressFilterRejection | undefined {
  const call = message.call;
  if (call === undefined) return undefined;
  const canisters = at.state.canisters;
  const find = (id: CanisterId): CanisterState | undefined => canisters.find((c) => c.id === id);
  if (call.canister === MANAGEMENT_CANISTER) return managementIngressRefusal(call.method, hexToBytes(call.argHex), callerOf(message), find);
  const canister = find(call.canister as CanisterId);
  const refuse = (reason: IngressFilterRefusal, e: UserError): IngressFilterRejection => ({ reason, rejectCode: rejectCodeOf(e.code), errorCode: e.code, message: e.description });
  if (canister === undefined) return refuse("canister-not-found", canisterNotFound(call.canister));
  if (canister.status !== "running") return refuse("canister-not-running", canisterNotRunningAtInduction(call.canister, canister.status));
  if (!(executor instanceof WasmExecutor)) return undefined;
  const verdict = executor.inspectMessage(canister, { caller: callerOf(message), method: call.method, arg: hexToBytes(call.argHex) }, { instructionLimit: INSPECT_MESSAGE_INSTRUCTION_LIMIT, timeNs: at.timeNs });
  if (verdict.refusal === undefined) return undefined;
  return refuse("inspect-message-refused", verdict.refusal);
}

/** Controllers and private metadata names of a canister in `at` (the IC checks its certified state). */
export function canisterInfoAt(at: HeldExecution, id: CanisterId): CanisterInfo | undefined {
  const canister = at.state.canisters.find((c) => c.id === id);
  if (canister === undefined) return undefined;
  const e = canister.execution;
  const privateMetadata = e === undefined ? [] : metadataOf(e.moduleHash, e.wasmModule).filter((s) => s.visibility === "private").map((s) => s.name);
  return { controllers: canister.controllers, privateMetadata };
}
