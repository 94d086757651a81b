// Progress of long executions, and the harness's way to stop one (issue #11 item 6).
//
// The executor can hand the host a look at a running message every N instructions
// (WasmExecutorOptions.onProgress): the instruction counter's limit check, which instrumented code
// runs at function entries and loop headers, is armed at the next progress mark instead of at the
// message's limit, and re-armed after each look. The look cannot change the execution (the counter
// and the trap points are the same with and without it); it can only end the whole run by answering
// "abort", which throws ExecutionAborted — a harness verdict, never a canister trap, because what
// decides it (typically a wall-time budget read by the CLI) differs between hosts and runs.
import type { CanisterId } from "./interfaces.ts";

export interface ExecutionProgress {
  readonly canisterId: CanisterId;
  /** What runs: `canister_init`, `canister_update inc`, `reply callback`, … */
  readonly entryPoint: string;
  /** Instructions counted so far in this execution (install: (start) and init together). */
  readonly instructionsSoFar: bigint;
  readonly instructionLimit: bigint;
  /** True for the call made as an execution starts, before any instruction of it ran. */
  readonly starting: boolean;
}

/** "abort", or an abort with the reason the harness error should give (e.g. a wall-time budget). */
export type ProgressVerdict = "continue" | "abort" | { readonly abort: string };

/** Sees every execution start and every progress mark; "abort" ends the run (ExecutionAborted). */
export type ProgressCallback = (progress: ExecutionProgress) => ProgressVerdict;

/** Default distance between progress marks: 10^9 instructions (about a second of canister code). */
export const DEFAULT_PROGRESS_EVERY_INSTRUCTIONS = 1_000_000_000n;

/**
 * The host stopped an execution (its progress callback answered "abort"). Not a canister trap:
 * the run ends with a harness error that names the canister, the entry point and the count.
 */
export class ExecutionAborted extends Error {
  override readonly name = "ExecutionAborted";

  constructor(
    readonly progress: ExecutionProgress,
    readonly reason = "the host's progress callback stopped it",
  ) {
    super(`execution aborted: canister ${progress.canisterId}, ${progress.entryPoint}, after ${formatInstructions(progress.instructionsSoFar)} instructions: ${reason}`);
  }
}

/** 3200000000n → "3.2e9"; small counts as they are. */
export function formatInstructions(n: bigint): string {
  if (n < 1_000_000n) return n.toString();
  const digits = n.toString();
  const exponent = digits.length - 1;
  const mantissa = `${digits[0]}.${digits[1] ?? "0"}`;
  return `${mantissa}e${exponent}`;
}
