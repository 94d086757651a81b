import type { ModuleRefusalHelp } from "./reject-codes.ts";

// The typed refusal of a canister module (install_code answers it as the IC's InvalidWasm error),
// and the instrumenter's own harness error. Kept apart from instrument.ts so that catching them
// does not load binaryen (instrumenter.ts).
export class InvalidModuleError extends Error {
  override readonly name = "InvalidModuleError";
  /**
   * `message` is the detail after "Canister's Wasm module is not valid: " (the IC's text where the
   * IC has the same check, WasmValidationError's display); `help` the hint line the IC gives it
   * (a toolchain error unless it is a limit the developer can stay within).
   */
  constructor(
    message: string,
    readonly help: ModuleRefusalHelp = { kind: "toolchain" },
  ) {
    super(message);
  }
}

/** A limit's refusal with the IC's suggestion and documentation anchor (rs/types/wasm_types/src/errors.rs). */
export function limitRefusal(message: string, suggestion: string, anchor: string): InvalidModuleError {
  return new InvalidModuleError(message, { kind: "user", suggestion, anchor });
}

/**
 * The host's JS stack ran out while the pass walked deeply nested code (it recurses over the
 * expression tree). How deep it can go depends on the host (its stack in use, JIT tiers), so this
 * is a harness error like HostStackExhausted, never a refusal that could differ between replicas
 * or processes; it is not cached.
 */
export class InstrumentationStackExhausted extends Error {
  override readonly name = "InstrumentationStackExhausted";
}
