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
import { asCanisterResponse, maxNumberOfCanistersReached, stopCanisterTimedOut, userReject } from "../execution/reject-codes.ts";
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
  /** The subnet's id (the canister-limit refusal names it). */
  readonly subnetId: string;
}

const CREATE_METHODS: ReadonlySet<string> = new Set(["create_canister", "provisional_create_canister_with_cycles"]);

/**
 * Executes the subnet queue against the round state; returns the new state and the answers. The
 * calls see each other's effects through one working set of canisters, and the round state is
 * rebuilt once at the end: a fleet upgrade of 80,000 install_code messages costs O(calls +
 * canisters), not O(calls × canisters). What each call sees is the same as when the round state
 * was rebuilt after every call (scheduling states: new canisters start at 0 and take their final
 * allocation either way; deleted ones are dropped without redistributing their balance).
 */
export function executeSubnetCalls(env: SubnetCallEnvironment, initial: ExecutionRoundState, calls: readonly SubnetCall[]): SubnetCallOutcome {
  const ingressResponses: { messageId: string; response: Response }[] = [];
  const localResponses: InductedMessage[] = [];
  const remoteResponses: { caller: CanisterId; callbackId: bigint; response: Response; refundedCycles: bigint }[] = [];
  const working = new WorkingCanisters(initial.canisters);
  let draws = 0;
  for (const call of calls) {
    const ctx: ManagementContext = {
      executor: env.executor,
      installParams: { instructionLimit: INSTALL_CODE_INSTRUCTION_LIMIT, timeNs: env.timeNs },
      nowNs: env.timeNs,
      canister: (id) => working.get(id),
      newCanisterId: () => nextCanisterId(working.ids(), env.canisterRange),
      drawRawRand: () => rawRand(env.randomness, draws++),
    };
    const caller = call.origin.caller as string as PrincipalText;
    const full = CREATE_METHODS.has(call.method) && env.maxCanisters > 0 && working.size >= env.maxCanisters;
    const out = full ? subnetFull(env.subnetId, env.maxCanisters) : executeManagementCall(ctx, caller, call.method, call.arg, call.cycles);
    working.apply(out.updated, out.deleted);
    const response = out.response ?? stopResponse(working, out.updated);
    if (out.response === undefined) working.apply(out.updated.map((c) => lifecycle.finalizeStopping(working.get(c.id) ?? c)), []);
    for (const r of out.responses) if (r.origin.kind === "canister") localOrRemote(working, r.origin.caller, r.origin.callbackId, r.response, r.refundedCycles, localResponses, remoteResponses);
    if (call.origin.kind === "ingress") ingressResponses.push({ messageId: call.origin.messageId, response });
    else localOrRemote(working, call.origin.caller, call.origin.callbackId, asCanisterResponse(response), response.kind === "reject" ? call.cycles : 0n, localResponses, remoteResponses);
  }
  return { state: working.roundState(initial), ingressResponses, localResponses, remoteResponses };
}

/** The subnet's canisters while its queue executes: by id, with what changed since the round state. */
class WorkingCanisters {
  private readonly byId: Map<CanisterId, CanisterState>;
  /** Replaced or added since the last deletion of the id, latest version. */
  private readonly changed = new Map<CanisterId, CanisterState>();
  /** Deleted at some point: a canister created again under the same id starts afresh (AP 0, no queues). */
  private readonly deleted = new Set<CanisterId>();

  constructor(canisters: readonly CanisterState[]) {
    this.byId = new Map(canisters.map((c) => [c.id, c]));
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: CanisterId): CanisterState | undefined {
    return this.byId.get(id);
  }

  has(id: CanisterId): boolean {
    return this.byId.has(id);
  }

  ids(): Iterable<CanisterId> {
    return this.byId.keys();
  }

  apply(updated: readonly CanisterState[], deleted: readonly CanisterId[]): void {
    for (const c of updated) {
      this.byId.set(c.id, c);
      this.changed.set(c.id, c);
    }
    for (const id of deleted) {
      this.byId.delete(id);
      this.changed.delete(id);
      this.deleted.add(id);
    }
  }

  /** The round state with every change applied, built once. */
  roundState(initial: ExecutionRoundState): ExecutionRoundState {
    let next = initial;
    if (this.deleted.size > 0) {
      const gone: ReadonlySet<string> = this.deleted;
      next = { ...next, canisters: next.canisters.filter((c) => !gone.has(c.id)), queues: next.queues.filter((q) => !gone.has(q.id)), scheduling: next.scheduling.without(gone) };
    }
    return this.changed.size === 0 ? next : withCanisters(next, [...this.changed.values()]);
  }
}

/** IC0102 MaxNumberOfCanistersReached: a 1xx error, so reject code 1 (SYS_FATAL). */
function subnetFull(subnetId: string, limit: number): ReturnType<typeof executeManagementCall> {
  return { response: userReject(maxNumberOfCanistersReached(subnetId, limit)), updated: [], deleted: [], responses: [], instructionsUsed: 0n };
}

/**
 * stop_canister answers once the canister is Stopped. A canister with open call contexts stays
 * Stopping; the IC would keep the request and answer later (after its timeout with IC0206) — here
 * it is answered at once with the IC's timeout reject and the canister finishes stopping on its
 * own (a documented simplification).
 */
function stopResponse(working: WorkingCanisters, updated: readonly CanisterState[]): Response {
  const stopped = updated.every((u) => {
    const c = working.get(u.id);
    return c !== undefined && lifecycle.finalizeStopping(c).status === "stopped";
  });
  return stopped ? { kind: "reply", data: new Uint8Array(IDL.encode([], [])) } : userReject(stopCanisterTimedOut);
}

function localOrRemote(
  working: WorkingCanisters,
  caller: CanisterId,
  callbackId: bigint,
  response: Response,
  refundedCycles: bigint,
  local: InductedMessage[],
  remote: { caller: CanisterId; callbackId: bigint; response: Response; refundedCycles: bigint }[],
): void {
  if (working.has(caller)) {
    local.push({ canister: caller, message: { kind: "response", callbackId: callbackId as never, response, refundedCycles } });
  } else remote.push({ caller, callbackId, response, refundedCycles });
}

function nextCanisterId(ids: Iterable<CanisterId>, range: CanisterRange): CanisterId {
  let next = range.start;
  for (const id of ids) {
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
