// Subnet messages: calls to the management canister (aaaaa-aa) from ingress and from canisters,
// executed by message routing before the round, in arrival order (the IC executes its subnet queue
// first in each round). Install and upgrade run with the install_code budget (ic-protocol.md §4.1:
// 300 B instructions) in one go — long install_code executions are not sliced here.
import { IDL } from "@dfinity/candid";
import { sha256 } from "../crypto/sha256.ts";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { WasmExecutor } from "../execution/executor.ts";
import { canisterIdFromU64, RejectCode, type CanisterId, type CanisterState, type PrincipalText, type Response } from "../execution/interfaces.ts";
import * as lifecycle from "../execution/lifecycle.ts";
import { executeManagementCall, type ManagementContext } from "../execution/management.ts";
import { asCanisterResponse } from "../execution/reject-codes.ts";
import { withCanisters, type ExecutionRoundState, type InductedMessage } from "../execution/round.ts";
import { canisterIndexOf, type CanisterRange } from "../routing/registry.ts";
import type { SubnetCall } from "../routing/streams.ts";

export const INSTALL_CODE_INSTRUCTION_LIMIT = 300_000_000_000n;

export interface SubnetCallOutcome {
  readonly state: ExecutionRoundState;
  /** Answers to ingress calls, by message id. */
  readonly ingressResponses: readonly { readonly messageId: string; readonly response: Response }[];
  /** Answers to canisters on this subnet (for this round's induction). */
  readonly localResponses: readonly InductedMessage[];
  /** Answers to canisters on other subnets (for the streams). */
  readonly remoteResponses: readonly { readonly caller: CanisterId; readonly callbackId: bigint; readonly response: Response; readonly refundedCycles: bigint }[];
}

export interface SubnetCallEnvironment {
  readonly executor: WasmExecutor;
  readonly timeNs: bigint;
  /** Ids handed out by create_canister come from here (the next index above every canister). */
  readonly canisterRange: CanisterRange;
  /** Randomness for raw_rand, from the batch (32 bytes per call, drawn in order). */
  readonly randomness: Uint8Array;
  /** The subnet's canister limit (registry `max_number_of_canisters`; 0 = no limit). */
  readonly maxCanisters: number;
}

const CREATE_METHODS: ReadonlySet<string> = new Set(["create_canister", "provisional_create_canister_with_cycles"]);

/** Executes the subnet queue against the round state; returns the new state and the answers. */
export function executeSubnetCalls(env: SubnetCallEnvironment, initial: ExecutionRoundState, calls: readonly SubnetCall[]): SubnetCallOutcome {
  let state = initial;
  const ingressResponses: { messageId: string; response: Response }[] = [];
  const localResponses: InductedMessage[] = [];
  const remoteResponses: { caller: CanisterId; callbackId: bigint; response: Response; refundedCycles: bigint }[] = [];
  let draws = 0;
  for (const call of calls) {
    const canisters = new Map(state.canisters.map((c) => [c.id, c]));
    const ctx: ManagementContext = {
      executor: env.executor,
      installParams: { instructionLimit: INSTALL_CODE_INSTRUCTION_LIMIT, timeNs: env.timeNs },
      nowNs: env.timeNs,
      canister: (id) => canisters.get(id),
      newCanisterId: () => nextCanisterId(canisters, env.canisterRange),
      drawRawRand: () => rawRand(env.randomness, draws++),
    };
    const caller = call.origin.caller as string as PrincipalText;
    const full = CREATE_METHODS.has(call.method) && env.maxCanisters > 0 && state.canisters.length >= env.maxCanisters;
    const out = full ? subnetFull(env.maxCanisters) : executeManagementCall(ctx, caller, call.method, call.arg, call.cycles);
    state = applyOutcome(state, out.updated, out.deleted);
    const response = out.response ?? stopResponse(state, out.updated);
    if (out.response === undefined) state = withCanisters(state, out.updated.map((c) => lifecycle.finalizeStopping(state.canisters.find((x) => x.id === c.id) ?? c)));
    for (const r of out.responses) if (r.origin.kind === "canister") localOrRemote(state, r.origin.caller, r.origin.callbackId, r.response, r.refundedCycles, localResponses, remoteResponses);
    if (call.origin.kind === "ingress") ingressResponses.push({ messageId: call.origin.messageId, response });
    else localOrRemote(state, call.origin.caller, call.origin.callbackId, asCanisterResponse(response), response.kind === "reject" ? call.cycles : 0n, localResponses, remoteResponses);
  }
  return { state, ingressResponses, localResponses, remoteResponses };
}

/** IC0102 MaxNumberOfCanistersReached: a 1xx error, so reject code 1 (SYS_FATAL). */
function subnetFull(limit: number): ReturnType<typeof executeManagementCall> {
  const response: Response = { kind: "reject", code: RejectCode.SysFatal, message: `IC0102: the subnet already hosts its maximum of ${limit} canisters` };
  return { response, updated: [], deleted: [], responses: [], instructionsUsed: 0n };
}

function applyOutcome(state: ExecutionRoundState, updated: readonly CanisterState[], deleted: readonly CanisterId[]): ExecutionRoundState {
  let next = updated.length === 0 ? state : withCanisters(state, updated);
  if (deleted.length > 0) {
    const gone = new Set<string>(deleted);
    next = { ...next, canisters: next.canisters.filter((c) => !gone.has(c.id)), queues: next.queues.filter((q) => !gone.has(q.id)), scheduling: next.scheduling.without(gone) };
  }
  return next;
}

/**
 * stop_canister answers once the canister is Stopped. A canister with open call contexts stays
 * Stopping; the IC would answer later — here the call is rejected as transient and the canister
 * finishes stopping on its own (a documented simplification).
 */
function stopResponse(state: ExecutionRoundState, updated: readonly CanisterState[]): Response {
  const stopped = updated.every((u) => {
    const c = state.canisters.find((x) => x.id === u.id);
    return c !== undefined && lifecycle.finalizeStopping(c).status === "stopped";
  });
  return stopped ? { kind: "reply", data: new Uint8Array(IDL.encode([], [])) } : { kind: "reject", code: RejectCode.SysTransient, message: "stop_canister: the canister is still stopping (it has open call contexts)" };
}

function localOrRemote(
  state: ExecutionRoundState,
  caller: CanisterId,
  callbackId: bigint,
  response: Response,
  refundedCycles: bigint,
  local: InductedMessage[],
  remote: { caller: CanisterId; callbackId: bigint; response: Response; refundedCycles: bigint }[],
): void {
  if (state.canisters.some((c) => c.id === caller)) {
    local.push({ canister: caller, message: { kind: "response", callbackId: callbackId as never, response, refundedCycles } });
  } else remote.push({ caller, callbackId, response, refundedCycles });
}

function nextCanisterId(canisters: ReadonlyMap<CanisterId, CanisterState>, range: CanisterRange): CanisterId {
  let next = range.start;
  for (const id of canisters.keys()) {
    const index = canisterIndexOf(id);
    if (index !== undefined && index >= next && index <= range.end) next = index + 1n;
  }
  assert(next <= range.end, "the subnet's canister id range is exhausted");
  return canisterIdFromU64(next);
}

/** 32 bytes per draw: SHA-256 of the batch randomness and the draw's index. */
function rawRand(randomness: Uint8Array, draw: number): Uint8Array {
  return sha256(concatBytes(randomness, utf8ToBytes(`|raw_rand|${draw}`)));
}
