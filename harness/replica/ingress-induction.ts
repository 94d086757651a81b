// Induction: how a batch's messages enter the execution state (ic-protocol.md §3.3). An ingress
// message becomes a canister message, a subnet call (for the management canister) or a failed
// status in the ingress history; a certified stream slice from another subnet is inducted into
// the canisters' input queues within their capacity (harness/routing/streams.ts decides each
// message). The state machine (harness/replica/execution-state-machine.ts) runs these in batch
// order: loopback and subnet queue first, then the slices, then ingress.
import { Principal } from "@dfinity/principal";
import { sha256 } from "@noble/hashes/sha2.js";
import { hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { memoizeBounded } from "../memo.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import { canisterId, MANAGEMENT_CANISTER, type CanisterId, type CanisterState, type PrincipalText } from "../execution/interfaces.ts";
import { canisterNotFound, canisterNotRunningAtInduction, ErrorCode, rejectCodeOf, type UserError } from "../execution/reject-codes.ts";
import type { ExecutionRoundState, InductedMessage } from "../execution/round.ts";
import type { Registry, SubnetId } from "../routing/registry.ts";
import { inductSlice, type InductionCanary, type RoutingState, type StreamSlice, type SubnetCall } from "../routing/streams.ts";
import type { HistoryJournal } from "./history-journal.ts";
import type { Batch, IngressStatus } from "./interfaces.ts";

/** The caller of an ingress message: the envelope's authenticated sender, or a simulated user's principal. */
export function callerOf(message: IngressMessage): PrincipalText {
  return message.envelope !== undefined ? (message.sender as PrincipalText) : senderPrincipal(message.sender);
}

/** A user name's principal: self-authenticating over a key derived from the name (simulation). */
export const senderPrincipal: (sender: string) => PrincipalText = memoizeBounded(
  (sender) => Principal.selfAuthenticating(sha256(utf8ToBytes(`subnetlab-user|${sender}`))).toText() as PrincipalText,
  16_384,
  "senderPrincipal",
);

/**
 * An ingress message becomes a canister message (or a subnet call, for the management canister),
 * or fails at induction with a reject. Its status ("received" or "failed") goes through `journal`.
 */
export function inductIngress(message: IngressMessage, batch: Batch, canisters: readonly CanisterState[], journal: HistoryJournal): InductedMessage | "subnet-call" | undefined {
  // The envelope's principal is kept with the status (the HTTP interface shows it to its sender only).
  const sender = message.envelope === undefined ? undefined : message.sender;
  const fail = (error: UserError): undefined => {
    const status: IngressStatus = { status: "failed", height: batch.height, code: rejectCodeOf(error.code), message: error.description, errorCode: error.code };
    journal.set(message.id, status, batch.timeNs, sender);
    return undefined;
  };
  // A message without a call is the key-value placeholder's: there is no canister to run it.
  if (message.call === undefined) return fail({ code: ErrorCode.CanisterNotFound, description: "The ingress message names no canister (a key-value placeholder message)" });
  if (message.call.canister === MANAGEMENT_CANISTER) {
    journal.set(message.id, { status: "received", height: batch.height }, batch.timeNs, sender);
    return "subnet-call";
  }
  let target: CanisterId;
  try {
    target = canisterId(message.call.canister);
  } catch {
    return fail(canisterNotFound(message.call.canister));
  }
  const canister = canisters.find((c) => c.id === target);
  // Induction refusals as the IC's valid set rule (ic-protocol.md §3.3): no such canister → IC0301,
  // stopped → IC0508, stopping → IC0509, with StateError's texts.
  if (canister === undefined) return fail(canisterNotFound(target));
  if (canister.status !== "running") return fail(canisterNotRunningAtInduction(target, canister.status));
  journal.set(message.id, { status: "received", height: batch.height }, batch.timeNs, sender);
  return {
    canister: target,
    message: { kind: "ingress", messageId: message.id, caller: callerOf(message), method: message.call.method, arg: hexToBytes(message.call.argHex) },
  };
}

/** An ingress message to the management canister as a subnet call (inductIngress said "subnet-call"). */
export function subnetCallOf(message: IngressMessage): SubnetCall {
  assert(message.call !== undefined, "a subnet call names a method");
  return { origin: { kind: "ingress", messageId: message.id, caller: callerOf(message) }, method: message.call.method, arg: hexToBytes(message.call.argHex), cycles: 0n };
}

/** What a slice's induction changed: the routing state after it, the messages it took, their stream indices. */
export interface SliceInduction {
  readonly routing: RoutingState;
  readonly inducted: readonly InductedMessage[];
  readonly indices: readonly bigint[];
}

/**
 * Inducts one certified stream slice (consensus validated its certification) into `state`'s
 * canisters. A slice for another subnet, or from a subnet the registry does not know, takes nothing.
 */
export function inductStreamSlice(
  slice: StreamSlice,
  routing: RoutingState,
  state: ExecutionRoundState,
  subnet: { readonly id: SubnetId; readonly registry: Registry },
  canary: InductionCanary | undefined,
): SliceInduction {
  if (slice.destination !== subnet.id || subnet.registry.subnet(slice.source) === undefined) return { routing, inducted: [], indices: [] };
  const queued = queuedRequestCounts(state);
  const canisters = new Map<string, CanisterState>(state.canisters.map((c) => [c.id, c]));
  const result = inductSlice(routing, slice, {
    hasCanister: (id) => canisters.has(id),
    statusOf: (id) => canisters.get(id)?.status,
    queuedRequests: (to, from) => queued.get(`${to}|${from}`) ?? 0,
  }, canary);
  return { routing: result.state, inducted: result.inducted, indices: result.indices };
}

/** Requests waiting per (receiver, sender) pair, for the input queue capacity at induction. */
function queuedRequestCounts(state: ExecutionRoundState): Map<string, number> {
  const counts = new Map<string, number>();
  for (const q of state.queues) {
    for (const m of q.messages) if (m.kind === "request") counts.set(`${q.id}|${m.caller}`, (counts.get(`${q.id}|${m.caller}`) ?? 0) + 1);
  }
  return counts;
}

