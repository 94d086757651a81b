// Canister environment variables: the `environment_variables` canister setting and what the
// `ic0.env_var_*` imports read. Limits are the replica's (dfinity/ic
// rs/config/src/execution_environment.rs: at most 20 variables, names and values at most 128
// bytes each); the variables are kept sorted by name, as the replica's map orders them, so an
// index passed to `ic0.env_var_name_size/copy` names the same variable on every replica.
import type { EnvironmentVariable } from "./interfaces.ts";
import { duplicateEnvironmentVariables, ErrorCode, type UserError } from "./reject-codes.ts";

export const MAX_ENVIRONMENT_VARIABLES = 20;
export const MAX_ENVIRONMENT_VARIABLE_NAME_BYTES = 128;
export const MAX_ENVIRONMENT_VARIABLE_VALUE_BYTES = 128;

const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/** Orders names by their UTF-8 bytes (what the replica's map of names compares). */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * A refusal is the IC's error: CanisterManagerError::EnvironmentVariables* (canister_manager/types.rs)
 * or UpdateSettingsError::DuplicateEnvironmentVariables (canister_settings.rs), all
 * InvalidManagementPayload without a help line.
 */
export type EnvironmentVariablesResult =
  | { readonly ok: true; readonly variables: readonly EnvironmentVariable[] }
  | { readonly ok: false; readonly error: UserError };

const invalidPayload = (description: string): EnvironmentVariablesResult => ({ ok: false, error: { code: ErrorCode.InvalidManagementPayload, description } });

/** Checks a settings' environment_variables against the IC's limits and sorts them by name. */
export function validateEnvironmentVariables(given: readonly EnvironmentVariable[]): EnvironmentVariablesResult {
  // The replica refuses duplicates while it reads the settings (canister_settings.rs), before the
  // canister manager checks the limits.
  if (new Set(given.map((v) => v.name)).size !== given.length) return { ok: false, error: duplicateEnvironmentVariables };
  if (given.length > MAX_ENVIRONMENT_VARIABLES) {
    return invalidPayload(`Too many environment variables: ${given.length} (max: ${MAX_ENVIRONMENT_VARIABLES})`);
  }
  const sorted = [...given].sort((a, b) => compareNames(a.name, b.name));
  for (const v of sorted) {
    if (utf8Length(v.name) > MAX_ENVIRONMENT_VARIABLE_NAME_BYTES) {
      return invalidPayload(`Environment variable name "${v.name}" exceeds the maximum allowed length of ${MAX_ENVIRONMENT_VARIABLE_NAME_BYTES}.`);
    }
    if (utf8Length(v.value) > MAX_ENVIRONMENT_VARIABLE_VALUE_BYTES) {
      return invalidPayload(`Environment variable value "${v.value}" exceeds the maximum allowed length of ${MAX_ENVIRONMENT_VARIABLE_VALUE_BYTES}.`);
    }
  }
  return { ok: true, variables: sorted };
}
