// A fault inside execution itself (the `diverge` fault with target "execution"): an executor that
// flips the low bit of the last argument byte of every call it executes, as a bit flip in a
// faulty replica's memory or a nondeterministic executor would. Unlike perturbing the state after
// a round, the divergence starts inside execution, and everything that follows (heap, replies,
// outgoing calls, cycles) is whatever the canister computes from the flipped argument.
import type { CanisterExecutor, CanisterMessage, CanisterState, ExecutionParams, ExecutionResult, InstallCodeArgs, LifecycleResult } from "./interfaces.ts";

function flipped(arg: Uint8Array): Uint8Array {
  const out = arg.length === 0 ? new Uint8Array(1) : arg.slice();
  out[out.length - 1] = (out[out.length - 1] ?? 0) ^ 1;
  return out;
}

export class PerturbedExecutor implements CanisterExecutor {
  constructor(private readonly honest: CanisterExecutor) {}

  executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    if (message.kind !== "ingress" && message.kind !== "request") return this.honest.executeMessage(canister, message, params);
    return this.honest.executeMessage(canister, { ...message, arg: flipped(message.arg) }, params);
  }

  installCode(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
    return this.honest.installCode(canister, args, params);
  }
}
