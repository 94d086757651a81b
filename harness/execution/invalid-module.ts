// The typed refusal of a canister module (install_code answers it as "Invalid Wasm module: …"),
// and the instrumenter's own harness error. Kept apart from instrument.ts so that catching them
// does not load binaryen (instrumenter.ts).
export class InvalidModuleError extends Error {
  override readonly name = "InvalidModuleError";
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
