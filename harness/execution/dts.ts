// Deterministic time slicing by deferred commit (DESIGN.md "Deterministic time slicing";
// research/ic-protocol.md §4.5).
//
// A long message is executed to completion at once, on the canister state as it was when the
// message started (states are immutable values, so that *is* a copy). Its result — new canister
// state, responses, outgoing calls — is held in a PausedExecution and nothing of it is visible.
// The round driver then charges the message's instructions slice by slice, one slice per round in
// which the canister gets a core, exactly as a suspended execution would consume them; the round
// in which the last instruction is charged commits the held result. Meanwhile the canister runs
// nothing else, queries see the old state, and a checkpoint round aborts the execution: the held
// result is dropped and the message goes back to the front of the canister's queue, to be
// executed again from scratch later. Observable behaviour (what is visible in which round, which
// instructions are charged in which round) is the same as with real suspension.
import { assert } from "../assert.ts";
import type { CanisterId, CanisterMessage, ExecutionResult } from "./interfaces.ts";

export interface PausedExecution {
  readonly canister: CanisterId;
  readonly message: CanisterMessage;
  /** The complete result, computed when the message started; committed when all slices ran. */
  readonly held: ExecutionResult;
  /** Instructions charged to rounds so far (< held.instructionsUsed while paused). */
  readonly instructionsDone: bigint;
  readonly startedRound: number;
  /** Slices executed so far (one per round in which the canister got a core). */
  readonly slicesDone: number;
}

/** Outcome of giving a message (new or paused) up to `available` instructions in this round. */
export type SliceStep =
  | { readonly kind: "finished"; readonly instructionsThisRound: bigint; readonly result: ExecutionResult; readonly slices: number }
  | { readonly kind: "paused"; readonly instructionsThisRound: bigint; readonly paused: PausedExecution };

/** Starts a freshly executed message: finished now if it fits one slice, else paused. */
export function startSliced(
  canister: CanisterId,
  message: CanisterMessage,
  result: ExecutionResult,
  allowance: bigint,
  round: number,
): SliceStep {
  assert(allowance > 0n, "a message starts only with budget left");
  if (result.instructionsUsed <= allowance) {
    return { kind: "finished", instructionsThisRound: result.instructionsUsed, result, slices: 1 };
  }
  return {
    kind: "paused",
    instructionsThisRound: allowance,
    paused: { canister, message, held: result, instructionsDone: allowance, startedRound: round, slicesDone: 1 },
  };
}

/** Runs one more slice of a paused execution. */
export function continueSliced(p: PausedExecution, allowance: bigint): SliceStep {
  assert(allowance > 0n, "a slice runs only with budget left");
  const left = p.held.instructionsUsed - p.instructionsDone;
  assert(left > 0n, "paused execution has nothing left");
  if (left <= allowance) return { kind: "finished", instructionsThisRound: left, result: p.held, slices: p.slicesDone + 1 };
  return { kind: "paused", instructionsThisRound: allowance, paused: { ...p, instructionsDone: p.instructionsDone + allowance, slicesDone: p.slicesDone + 1 } };
}

/** Slices a message of `instructions` needs when every round grants a full slice. */
export function slicesNeeded(instructions: bigint, sliceLimit: bigint): number {
  assert(sliceLimit > 0n, "slice limit must be positive");
  return instructions <= 0n ? 1 : Number((instructions + sliceLimit - 1n) / sliceLimit);
}
