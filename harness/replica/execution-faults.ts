// Fault injection into the execution state machine's results (the `diverge` fault's divergent
// replicas: ExecutionMachineOptions.corrupt and corruptReplies): the damage a nondeterministic or
// buggy execution would do, applied after the round while the executor itself stays honest.
// PerturbedExecutor (harness/execution/perturbed-executor.ts) is the other kind, inside the round.
import type { CanisterState } from "../execution/interfaces.ts";
import type { ExecutionRoundState } from "../execution/round.ts";

/** A reply with its last byte changed (an execution bug that answers differently). */
export function corruptedReply(data: Uint8Array): Uint8Array {
  const out = data.length === 0 ? new Uint8Array(1) : data.slice();
  out[out.length - 1] = ((out[out.length - 1] ?? 0) + 1) & 0xff;
  return out;
}

/** Bumps the first byte of the first canister's highest non-zero heap page (a corrupted execution). */
export function perturbHeap(state: ExecutionRoundState): ExecutionRoundState {
  const target = state.canisters.find((c) => c.execution !== undefined);
  const exec = target?.execution;
  if (target === undefined || exec === undefined) return state;
  const pages = exec.wasmMemory.nonZeroPageIndices();
  const index = pages[pages.length - 1] ?? 0;
  const page = exec.wasmMemory.readPage(index).slice();
  // Add rather than flip: flipping twice would restore the page on the next perturbed batch.
  page[0] = ((page[0] ?? 0) + 1) & 0xff;
  const corrupted: CanisterState = { ...target, execution: { ...exec, wasmMemory: exec.wasmMemory.withPages(new Map([[index, page]])) } };
  return { ...state, canisters: state.canisters.map((c) => (c === target ? corrupted : c)) };
}
