// The typed refusal of a canister module (install_code answers it as "Invalid Wasm module: …").
export class InvalidModuleError extends Error {
  override readonly name = "InvalidModuleError";
}
