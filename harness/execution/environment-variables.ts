// Canister environment variables: the `environment_variables` canister setting and what the
// `ic0.env_var_*` imports read. Limits are the replica's (dfinity/ic
// rs/config/src/execution_environment.rs: at most 20 variables, names and values at most 128
// bytes each); the variables are kept sorted by name, as the replica's map orders them, so an
// index passed to `ic0.env_var_name_size/copy` names the same variable on every replica.
import type { EnvironmentVariable } from "./interfaces.ts";

export const MAX_ENVIRONMENT_VARIABLES = 20;
export const MAX_ENVIRONMENT_VARIABLE_NAME_BYTES = 128;
export const MAX_ENVIRONMENT_VARIABLE_VALUE_BYTES = 128;

const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/** Orders names by their UTF-8 bytes (what the replica's map of names compares). */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export type EnvironmentVariablesResult =
  | { readonly ok: true; readonly variables: readonly EnvironmentVariable[] }
  | { readonly ok: false; readonly message: string };

/** Checks a settings' environment_variables against the IC's limits and sorts them by name. */
export function validateEnvironmentVariables(given: readonly EnvironmentVariable[]): EnvironmentVariablesResult {
  if (given.length > MAX_ENVIRONMENT_VARIABLES) {
    return { ok: false, message: `Too many environment variables: ${given.length} (max: ${MAX_ENVIRONMENT_VARIABLES})` };
  }
  const sorted = [...given].sort((a, b) => compareNames(a.name, b.name));
  for (const [i, v] of sorted.entries()) {
    if (utf8Length(v.name) > MAX_ENVIRONMENT_VARIABLE_NAME_BYTES) {
      return { ok: false, message: `Environment variable name "${v.name}" exceeds the maximum length of ${MAX_ENVIRONMENT_VARIABLE_NAME_BYTES} bytes` };
    }
    if (utf8Length(v.value) > MAX_ENVIRONMENT_VARIABLE_VALUE_BYTES) {
      return { ok: false, message: `Environment variable "${v.name}" has a value longer than ${MAX_ENVIRONMENT_VARIABLE_VALUE_BYTES} bytes` };
    }
    if (i > 0 && sorted[i - 1]?.name === v.name) {
      return { ok: false, message: `Duplicate environment variable name "${v.name}"` };
    }
  }
  return { ok: true, variables: sorted };
}
