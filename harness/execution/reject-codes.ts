// Every reject the lab's executor can produce, with the IC's error code (IC<code>), reject code and
// text, as the replica writes them (facts from dfinity/ic: rs/types/error_types/src/lib.rs for the
// codes, rs/interfaces/src/execution_environment/errors.rs for the hypervisor errors' texts and
// hint lines, rs/types/wasm_types/src/errors.rs for the documentation links,
// rs/execution_environment/src/execution/common.rs and rs/types/types/src/messages/inter_canister.rs
// for who sees which form, rs/replicated_state/src/replicated_state.rs for induction refusals,
// rs/execution_environment/src/query_handler/ for queries and composite queries).
//
// One error, three forms, depending on who is told:
//  - a user (ingress status, read_state, a query's HTTP answer): reject code, description, error code;
//  - a canister whose update call failed: reject code and the error's display, "IC<code>: " + description
//    (the IC's `Payload::from(Err(user_error))` and `action_to_request_response` use the display);
//  - a canister whose composite query's callee failed: reject code and the description alone
//    (the query handler's `RejectContext::from(user_error)`).
import { RejectCode, type CallOrigin, type CanisterId, type CanisterStatus, type Response, type SystemTask } from "./interfaces.ts";
import type { ApiContext } from "./system-api.ts";

/** The IC's user-facing error codes (ic_error_types::ErrorCode) that the lab produces. */
export const ErrorCode = {
  MaxNumberOfCanistersReached: "IC0102",
  CanisterQueueFull: "IC0201",
  CanisterIdAlreadyExists: "IC0205",
  StopCanisterRequestTimeout: "IC0206",
  CanisterOutOfCycles: "IC0207",
  CanisterNotFound: "IC0301",
  CanisterSnapshotNotFound: "IC0305",
  CanisterRejectedMessage: "IC0406",
  UnknownManagementMessage: "IC0407",
  InvalidManagementPayload: "IC0408",
  CanisterSnapshotImmutable: "IC0409",
  CanisterTrapped: "IC0502",
  CanisterCalledTrap: "IC0503",
  CanisterContractViolation: "IC0504",
  CanisterInvalidWasm: "IC0505",
  CanisterDidNotReply: "IC0506",
  CanisterOutOfMemory: "IC0507",
  CanisterStopped: "IC0508",
  CanisterStopping: "IC0509",
  CanisterNotStopped: "IC0510",
  CanisterInvalidController: "IC0512",
  CanisterNonEmpty: "IC0514",
  CanisterInstructionLimitExceeded: "IC0522",
  CanisterMemoryAccessLimitExceeded: "IC0524",
  QueryCallGraphTooDeep: "IC0525",
  QueryCallGraphTotalInstructionLimitExceeded: "IC0526",
  CompositeQueryCalledInReplicatedMode: "IC0527",
  CanisterMethodNotFound: "IC0536",
  CanisterWasmModuleNotFound: "IC0537",
  CanisterWasmMemoryLimitExceeded: "IC0539",
  /** 6xx: SYS_UNKNOWN (error_types lib.rs); only best-effort calls' callers see it, never a user. */
  DeadlineExpired: "IC0601",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The reject code of an error code: its first digit (the IC's `From<ErrorCode> for RejectCode`). */
export function rejectCodeOf(code: ErrorCode): RejectCode {
  const digit = Number(code.charAt(3));
  if (digit < RejectCode.SysFatal || digit > RejectCode.SysUnknown) throw new Error(`error code ${code} has no reject code`);
  return digit as RejectCode;
}

/** An error as the IC tells a user about it (ic_error_types::UserError). */
export interface UserError {
  readonly code: ErrorCode;
  readonly description: string;
}

/** The IC's `Display` of a UserError: "IC0503: Error from Canister …". */
export const displayUserError = (e: UserError): string => `${e.code}: ${e.description}`;

/** Wasm traps (the IC's TrapCode) with the texts the replica prints for them. */
export const TrapCode = {
  StackOverflow: "stack overflow",
  HeapOutOfBounds: "heap out of bounds",
  StableMemoryOutOfBounds: "stable memory out of bounds",
  StableMemoryTooBigFor32Bit: "32 bit stable memory api used on a memory larger than 4GB",
  IntegerDivByZero: "integer division by 0",
  Unreachable: "unreachable",
  TableOutOfBounds: "table out of bounds",
  Other: "unknown",
} as const;
export type TrapCode = (typeof TrapCode)[keyof typeof TrapCode];

/** What went wrong inside a canister's execution (the IC's HypervisorError, the variants the lab produces). */
export type HypervisorError =
  | { readonly kind: "called-trap"; readonly message: string }
  | { readonly kind: "trapped"; readonly trap: TrapCode }
  /** A System API misuse the lab words itself (the replica's own text is not modelled for it): no hint line. */
  | { readonly kind: "contract-violation"; readonly error: string }
  /** The replica's ToolchainContractViolation: its text, then the toolchain hint line. */
  | { readonly kind: "toolchain-contract-violation"; readonly error: string }
  /**
   * The replica's UserContractViolation: its text and, when it has one, a suggestion with a
   * documentation anchor ("" for none: the IC then writes "See documentation: " with nothing after).
   */
  | { readonly kind: "user-contract-violation"; readonly error: string; readonly suggestion: string; readonly anchor: string }
  | { readonly kind: "instruction-limit"; readonly limit: bigint }
  | { readonly kind: "method-not-found"; readonly method: "update" | "query" | "composite_query" | "system"; readonly name: string }
  | { readonly kind: "wasm-module-not-found" }
  | { readonly kind: "memory-access-limit"; readonly detail: string }
  | { readonly kind: "wasm-memory-limit"; readonly peakBytes: bigint; readonly limitBytes: bigint }
  | { readonly kind: "invalid-wasm"; readonly detail: string; readonly help: ModuleRefusalHelp }
  | { readonly kind: "instrumentation-failed"; readonly detail: string }
  | { readonly kind: "cleanup"; readonly callback: HypervisorError; readonly cleanup: HypervisorError };

export type ToolchainContractViolation = Extract<HypervisorError, { kind: "toolchain-contract-violation" }>;
export type UserContractViolation = Extract<HypervisorError, { kind: "user-contract-violation" }>;

/**
 * The help line of a refused module (the IC's `AsErrorHelp for WasmValidationError`,
 * rs/types/wasm_types/src/errors.rs): the toolchain's fault (malformed or unsupported code) or a
 * suggestion with its documentation anchor (a limit the developer can stay within).
 */
export type ModuleRefusalHelp = { readonly kind: "toolchain" } | { readonly kind: "user"; readonly suggestion: string; readonly anchor: string };

/** ErrorHelp::ToolchainError's line (rs/types/wasm_types/src/errors.rs). */
export const TOOLCHAIN_ERROR_HELP =
  "This is likely an error with the compiler/CDK toolchain being used to build the canister. Please report the error to IC devs on the forum: https://forum.dfinity.org and include which language/CDK was used to create the canister.";

/**
 * The IC's execution-errors page, where each hint line points (rs/types/wasm_types doc_ref). An
 * older replica wrote "http://"; rejects of current replicas (PocketIC, mainnet through the agents)
 * show "https://".
 */
const DOC_BASE = "https://internetcomputer.org/docs/current/references/execution-errors#";
const GRACEFUL = "Consider gracefully handling failures from this canister or altering the canister to handle exceptions.";

/** The hint line the IC appends to an error ("<suggestion> See documentation: <link>"), or "" for none. */
function hintOf(e: HypervisorError): string {
  const hint = (suggestion: string, anchor: string): string => `${suggestion} See documentation: ${DOC_BASE}${anchor}`;
  switch (e.kind) {
    case "called-trap":
      return hint(GRACEFUL, "trapped-explicitly");
    case "trapped":
      return hint(GRACEFUL, "trapped");
    case "method-not-found":
      return hint("Check that the method being called is exported by the target canister.", "method-not-found");
    case "instruction-limit":
      return hint("Try optimizing this method to consume fewer instructions or split the work across multiple messages.", "instruction-limit-exceeded");
    case "wasm-module-not-found":
      return hint("Please install code to this canister before calling it.", "wasm-module-not-found");
    case "memory-access-limit":
      return hint("Try optimizing the use of stable memory so that individual messages don't need to access as much stable memory.", "memory-access-limit-exceeded");
    case "wasm-memory-limit":
      return hint("Try checking the canister for a possible memory leak or modifying it to use more stable memory instead of Wasm memory.", "wasm-memory-limit-exceeded");
    case "invalid-wasm":
      return e.help.kind === "toolchain" ? TOOLCHAIN_ERROR_HELP : hint(e.help.suggestion, e.help.anchor);
    case "instrumentation-failed":
      // WasmInstrumentationError::InvalidDataSegment (and the other variants the lab could meet) are toolchain errors.
      return TOOLCHAIN_ERROR_HELP;
    case "toolchain-contract-violation":
      return TOOLCHAIN_ERROR_HELP;
    case "user-contract-violation":
      // ErrorHelp::UserError writes nothing for an empty suggestion (rs/types/wasm_types/src/errors.rs).
      return e.suggestion === "" ? "" : `${e.suggestion} See documentation: ${e.anchor === "" ? "" : DOC_BASE + e.anchor}`;
    case "contract-violation":
      // A violation the lab words itself: it cannot tell a toolchain's from a developer's, so no hint.
    case "cleanup":
      return "";
  }
}

/** The error's own text (the IC's `Display for HypervisorError`). */
function displayOf(e: HypervisorError): string {
  switch (e.kind) {
    case "called-trap":
      return `Canister called \`ic0.trap\` with message: '${e.message}'`;
    case "trapped":
      return `Canister trapped: ${e.trap}`;
    case "contract-violation":
    case "toolchain-contract-violation":
    case "user-contract-violation":
      return `Canister violated contract: ${e.error}`;
    case "instruction-limit":
      return `Canister exceeded the limit of ${e.limit} instructions for single message execution.`;
    case "method-not-found":
      return `Canister has no ${e.method} method '${e.name}'.`;
    case "wasm-module-not-found":
      return "Attempted to execute a message, but the canister contains no Wasm module.";
    case "memory-access-limit":
      return `Canister exceeded memory access limits: ${e.detail}`;
    case "wasm-memory-limit":
      return (
        `Canister exceeded its current Wasm memory limit of ${e.limitBytes} bytes. The peak Wasm memory usage was ${e.peakBytes} bytes. ` +
        "If the canister reaches 4GiB, then it may stop functioning and may become unrecoverable. " +
        "Please reach out to the canister owner to investigate the reason for the increased memory usage. " +
        "It might be necessary to move data from the Wasm memory to the stable memory. " +
        "If such high Wasm memory usage is expected and safe, then the developer can increase the Wasm memory limit in the canister settings."
      );
    case "invalid-wasm":
      return `Canister's Wasm module is not valid: ${e.detail}`;
    case "instrumentation-failed":
      return `Could not instrument wasm module of canister: ${e.detail}`;
    case "cleanup":
      return `${displayOf(e.callback)}\n\ncall_on_cleanup also failed:\n\n${displayOf(e.cleanup)}`;
  }
}

function errorCodeOfHypervisor(e: HypervisorError): ErrorCode {
  switch (e.kind) {
    case "called-trap":
      return ErrorCode.CanisterCalledTrap;
    case "trapped":
      return ErrorCode.CanisterTrapped;
    case "contract-violation":
    case "toolchain-contract-violation":
    case "user-contract-violation":
      return ErrorCode.CanisterContractViolation;
    case "instruction-limit":
      return ErrorCode.CanisterInstructionLimitExceeded;
    case "method-not-found":
      return ErrorCode.CanisterMethodNotFound;
    case "wasm-module-not-found":
      return ErrorCode.CanisterWasmModuleNotFound;
    case "memory-access-limit":
      return ErrorCode.CanisterMemoryAccessLimitExceeded;
    case "wasm-memory-limit":
      return ErrorCode.CanisterWasmMemoryLimitExceeded;
    case "invalid-wasm":
    case "instrumentation-failed":
      return ErrorCode.CanisterInvalidWasm;
    case "cleanup":
      // The IC keeps the callback's code.
      return errorCodeOfHypervisor(e.callback);
  }
}

/**
 * A canister's execution error as the IC reports it (`HypervisorError::into_user_error`):
 * "Error from Canister <id>: <display>" and, when there is one, ".\n<hint>". The IC appends the
 * period even after a display that ends with one ("… method 'foo'..").
 */
export function hypervisorUserError(canister: CanisterId, e: HypervisorError): UserError {
  const hint = hintOf(e);
  const head = `Error from Canister ${canister}: ${displayOf(e)}`;
  return { code: errorCodeOfHypervisor(e), description: hint === "" ? head : `${head}.\n${hint}` };
}

// --- System API contract violations (rs/embedders/src/wasmtime_embedder/system_api.rs) ---------------

/** The names the replica gives the kinds of execution in its texts (system_api.rs `ApiType::as_str`). */
const MODE_NAMES: Readonly<Record<Exclude<ApiContext, "T">, string>> = {
  s: "start",
  I: "init",
  G: "pre upgrade",
  U: "update",
  RQ: "replicated query",
  NRQ: "non replicated query",
  CQ: "composite query",
  Ry: "reply callback",
  Rt: "reject callback",
  CRy: "composite reply callback",
  CRt: "composite reject callback",
  C: "cleanup",
  CC: "composite cleanup",
  F: "inspect message",
};
const TASK_MODE_NAMES: Readonly<Record<SystemTask, string>> = {
  heartbeat: "heartbeat",
  "global-timer": "global timer",
  "on-low-wasm-memory": "on low Wasm memory",
};

/** The replica's name for a kind of execution; a system task is named by the task it runs. */
export function apiModeName(context: ApiContext, task: SystemTask | undefined): string {
  if (context !== "T") return MODE_NAMES[context];
  return TASK_MODE_NAMES[task ?? "heartbeat"];
}

/**
 * How the replica names an ic0 function in the wrong-mode text: `ic0_<name>`, except the two
 * functions whose implementation passes `ic0.<name>` (system_api.rs ic0_root_key_copy,
 * ic0_subnet_self_copy).
 */
function ic0NameInModeError(name: string): string {
  return name === "root_key_copy" || name === "subnet_self_copy" ? `ic0.${name}` : `ic0_${name}`;
}

/** An ic0 function called where it is not available (system_api.rs `error_for`). */
export const wrongModeViolation = (name: string, mode: string): UserContractViolation => ({
  kind: "user-contract-violation",
  error: `"${ic0NameInModeError(name)}" cannot be executed in ${mode} mode`,
  suggestion: "Check the ICP documentation to make sure APIs are being called in the correct message types.",
  anchor: "calling-a-system-api-from-the-wrong-mode",
});

/**
 * A range [src, src+length) outside a byte slice (system_api.rs `valid_subslice`): `what` names the
 * function and the slice, e.g. "ic0.msg_arg_data_copy heap" (the canister's memory) or
 * "ic0.msg_arg_data_copy payload" (the data copied from).
 */
export const subsliceViolation = (what: string, src: number | bigint, length: number | bigint, sliceSize: number): ToolchainContractViolation => ({
  kind: "toolchain-contract-violation",
  error: `${what}: src=${src} + length=${length} exceeds the slice size=${sliceSize}`,
});

/** The call was already answered (system_api.rs ic0_msg_reply, ic0_msg_reply_data_append, ic0_msg_reject; the periods are the replica's). */
export function alreadyRepliedViolation(name: "msg_reply" | "msg_reply_data_append" | "msg_reject"): ToolchainContractViolation {
  const end = name === "msg_reply_data_append" ? "." : "";
  return { kind: "toolchain-contract-violation", error: `ic0.${name}: the call is already replied${end}` };
}

/** call_data_append, call_on_cleanup, call_cycles_add(128), call_perform without ic0.call_new (system_api.rs). */
export function noCallUnderConstruction(name: string): ToolchainContractViolation {
  // ic0_call_cycles_add_helper passes the function's `ic0_` name; the others write `ic0.`.
  const shown = name.startsWith("call_cycles_add") ? `ic0_${name}` : `ic0.${name}`;
  return { kind: "toolchain-contract-violation", error: `${shown} called when no call is under construction.` };
}

/** ic0.accept_message called a second time (system_api.rs ic0_accept_message). */
export const acceptMessageTwice: ToolchainContractViolation = {
  kind: "toolchain-contract-violation",
  error: "ic0.accept_message: the function was already called.",
};

/** A reply or reject larger than the call may answer with (system_api.rs ic0_msg_reply_data_append, ic0_msg_reject). */
export function payloadTooLarge(name: "msg_reply_data_append" | "msg_reject", size: number, maxReplyBytes: number): UserContractViolation {
  return name === "msg_reply_data_append"
    ? {
        kind: "user-contract-violation",
        error: `ic0.msg_reply_data_append: application payload size (${size}) cannot be larger than ${maxReplyBytes}.`,
        suggestion: "Consider checking the response size and returning an error if it is too long.",
        anchor: "msg_reply_data_append-payload-too-large",
      }
    : {
        kind: "user-contract-violation",
        error: `ic0.msg_reject: application payload size (${size}) cannot be larger than ${maxReplyBytes}.`,
        suggestion: "Try truncating the error messages that are too long.",
        anchor: "msg_reject-payload-too-large",
      };
}

/** ic0.certified_data_set with more than 32 bytes (system_api.rs ic0_certified_data_set). */
export const certifiedDataTooLarge = (size: number, max: number): UserContractViolation => ({
  kind: "user-contract-violation",
  error: `ic0_certified_data_set failed because the passed data must be no larger than ${max} bytes. Found ${size} bytes.`,
  suggestion: "Try certifying just the hash of your data instead of the full contents.",
  anchor: "certified_data_set-payload-too-large",
});

/** What the replica logs for a debug_print / trap message outside the memory (system_api.rs ic0_debug_print, ic0_trap). */
export const DEBUG_PRINT_OUT_OF_BOUNDS = "(debug message out of memory bounds)";
export const TRAP_MESSAGE_OUT_OF_BOUNDS = "(trap message out of memory bounds)";

// --- errors outside a canister's code --------------------------------------------------------------

/** canister_inspect_message ran without calling ic0.accept_message (HypervisorError::MessageRejected). */
export const messageRejected = (canister: CanisterId): UserError => ({
  code: ErrorCode.CanisterRejectedMessage,
  description: `Error from Canister ${canister}: Canister rejected the message`,
});

export const canisterNotFound = (canister: string): UserError => ({ code: ErrorCode.CanisterNotFound, description: `Canister ${canister} not found` });

/** Execution found the canister stopped or stopping (execution/common.rs validate_canister). */
export function canisterNotRunning(canister: CanisterId, status: Exclude<CanisterStatus, "running">): UserError {
  return { code: status === "stopped" ? ErrorCode.CanisterStopped : ErrorCode.CanisterStopping, description: `Canister ${canister} is not running` };
}

/** Induction (an ingress message or a request) found the canister stopped or stopping (StateError's display). */
export function canisterNotRunningAtInduction(canister: string, status: Exclude<CanisterStatus, "running">): UserError {
  return { code: status === "stopped" ? ErrorCode.CanisterStopped : ErrorCode.CanisterStopping, description: `Canister ${canister} is ${status}` };
}

/** An update call's context closed without a reply (to its ingress sender). */
export const didNotReply = (canister: CanisterId): UserError => ({
  code: ErrorCode.CanisterDidNotReply,
  description: `Canister ${canister} did not reply to the call`,
});

/** A query's call context closed without a reply (query_context.rs empty_response / action_to_result). */
export const queryDidNotRespond = (canister: CanisterId): UserError => ({
  code: ErrorCode.CanisterDidNotReply,
  description: `Canister ${canister} did not produce a response`,
});

/** What a calling canister gets when its callee's context closed without a reply. */
export const CALLEE_NO_RESPONSE = "No response";

export const compositeQueryInReplicatedMode: UserError = {
  code: ErrorCode.CompositeQueryCalledInReplicatedMode,
  description: "Composite query cannot be called in replicated mode",
};
export const compositeQueryTooDeep: UserError = {
  code: ErrorCode.QueryCallGraphTooDeep,
  description: "Composite query calls exceeded the maximum call depth.",
};
export const compositeQueryInstructionLimit: UserError = {
  code: ErrorCode.QueryCallGraphTotalInstructionLimitExceeded,
  description: "Composite query calls exceeded the instruction limit.",
};

/** Prepayment failed (CanisterOutOfCyclesError's display, reveal_top_up; no freezing threshold in the lab). */
export function outOfCycles(canister: CanisterId, balance: bigint, needed: bigint): UserError {
  return {
    code: ErrorCode.CanisterOutOfCycles,
    description: `Canister ${canister} is out of cycles: please top up the canister with at least ${needed - balance} additional cycles`,
  };
}

/** A call to a canister id that no subnet's range holds (stream_builder.rs). Canisters only: no error code. */
export const noRouteToCanister = (canister: string): Response => ({ kind: "reject", code: RejectCode.DestinationInvalid, message: `No route to canister ${canister}` });

// --- the management canister's errors (CanisterManagerError, rs/execution_environment canister_manager/types.rs) ---

/** "<text>" and, with a suggestion, "\n<suggestion> See documentation: <link>" (the IC's additional_help). */
function managerError(code: ErrorCode, text: string, suggestion: string, link: string): UserError {
  return { code, description: `${text}\n${suggestion} See documentation: ${link}` };
}

export function invalidController(canister: string, controllers: readonly string[], sender: string): UserError {
  return managerError(
    ErrorCode.CanisterInvalidController,
    `Only the controllers of the canister ${canister} can control it.\nCanister's controllers: ${controllers.join(" ")}\nSender's ID: ${sender}`,
    "Execute this call from a controller of the target canister or add the current caller as a controller.",
    `${DOC_BASE}invalid-controller`,
  );
}

export const managedCanisterNotFound = (canister: string): UserError =>
  managerError(ErrorCode.CanisterNotFound, `Canister ${canister} not found.`, "Check the ICP dashboard to ensure the canister exists.", `${DOC_BASE}canister-not-found`);

export const deleteCanisterNotStopped = (canister: string): UserError =>
  managerError(ErrorCode.CanisterNotStopped, `Canister ${canister} must be stopped before it is deleted.`, "Stop the canister before deleting it.", `${DOC_BASE}delete-canister-not-stopped`);

export const canisterNonEmpty = (canister: string): UserError =>
  managerError(
    ErrorCode.CanisterNonEmpty,
    `Canister ${canister} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead.`,
    "Check that you want to overwrite the canister and, if so, use mode='reinstall'.",
    `${DOC_BASE}canister-not-empty`,
  );

export const snapshotNotFound = (canister: string, snapshot: string): UserError =>
  managerError(
    ErrorCode.CanisterSnapshotNotFound,
    `Could not find the snapshot ID ${snapshot} for canister ${canister}.`,
    "Use the `list_canister_snapshot` API to see which snapshots are present.",
    `${DOC_BASE}canister-snapshot-not-found`,
  );

/** The IC gives this suggestion a bare anchor, not a link. */
export const snapshotLimitExceeded = (canister: string, limit: number): UserError =>
  managerError(
    ErrorCode.CanisterRejectedMessage,
    `Canister ${canister} has reached the maximum number of snapshots allowed: ${limit}.`,
    "Consider deleting an unnecessary snapshot of the specified canister before creating a new one.",
    "canister-snapshot-limit-exceeded",
  );

/** The IC's ErrorHelp::InternalError line (ic_error_types), the help of errors a user cannot cause on mainnet. */
export const INTERNAL_ERROR_HELP = "This is an internal error on the IC. Please report it to IC devs on the forum: https://forum.dfinity.org";

/** provisional_create_canister_with_cycles with a specified_id that is taken (CanisterManagerError::CanisterIdAlreadyExists). */
export const canisterIdAlreadyExists = (canister: string): UserError => ({
  code: ErrorCode.CanisterIdAlreadyExists,
  description: `Unsuccessful canister creation: canister id ${canister} already exists.\n${INTERNAL_ERROR_HELP}`,
});

/**
 * create_canister beyond the subnet's canister limit (CanisterManagerError::MaxNumberOfCanistersReached,
 * canister_manager/types.rs; the IC checks the number of canisters against the registry's
 * `max_number_of_canisters`).
 */
export const maxNumberOfCanistersReached = (subnet: string, max: number): UserError =>
  managerError(
    ErrorCode.MaxNumberOfCanistersReached,
    `Subnet ${subnet} has reached the allowed canister limit of ${max} canisters. Retry creating the canister.`,
    "Try creating the canister on another subnet.",
    `${DOC_BASE}maximum-number-of-canisters-reached`,
  );

/**
 * A stop_canister that the canister does not finish (ErrorCode::StopCanisterRequestTimeout,
 * rs/types/error_types/src/lib.rs: IC0206, SYS_TRANSIENT). The IC answers it once the stop request
 * has waited its timeout; its message contains this phrase (what PocketIC-based tests of
 * dfinity/orbit assert on). subnetlab gives the answer as soon as the canister did not stop.
 */
export const stopCanisterTimedOut: UserError = { code: ErrorCode.StopCanisterRequestTimeout, description: "Stop canister request timed out" };

/** Two environment variables with one name (canister_settings.rs UpdateSettingsError::DuplicateEnvironmentVariables). */
export const duplicateEnvironmentVariables: UserError = {
  code: ErrorCode.InvalidManagementPayload,
  description: "Duplicate environment variables are not allowed",
};

/**
 * More than 10 controllers in settings. The IC refuses the argument while decoding it (the
 * settings' `controllers` is a BoundedVec of 10, rs/types/management_canister_types bounded_vec.rs,
 * whose serde error candid reports as "Deserialize error: …"), with InvalidManagementPayload;
 * the context the candid crate adds around that message is not reproduced.
 */
export const tooManyControllers = (max: number): UserError => ({
  code: ErrorCode.InvalidManagementPayload,
  description: `Error decoding candid: Deserialize error: The number of elements exceeds maximum allowed ${max}`,
});

/** A method the IC's management canister does not have (execution_environment.rs, ParseError::VariantNotFound). */
export const managementMethodNotFound = (method: string): UserError => ({
  code: ErrorCode.CanisterMethodNotFound,
  description: `Management canister has no method '${method}'`,
});

/**
 * An argument that does not decode (execution_environment.rs `candid_error_to_user_error`). The IC
 * appends the Rust candid crate's message; ours is @dfinity/candid's, so only the prefix and the
 * code match.
 */
export const managementPayloadUndecodable = (decoderMessage: string): UserError => ({
  code: ErrorCode.CanisterContractViolation,
  description: `Error decoding candid: ${decoderMessage}`,
});

/** compute_allocation above 100 in create_canister or update_settings (UpdateSettingsError::ComputeAllocation). */
export const computeAllocationOutOfRange = (given: bigint): UserError => ({
  code: ErrorCode.CanisterContractViolation,
  description: `ComputeAllocation expected to be in the range [0..100], got ${candidNatText(given)}`,
});

/** A Nat as the Rust candid crate displays it: digits in groups of three joined by "_" (1000 → "1_000"). */
export function candidNatText(n: bigint): string {
  const digits = n.toString();
  const head = digits.length % 3 === 0 ? 3 : digits.length % 3;
  const groups = [digits.slice(0, head)];
  for (let i = head; i < digits.length; i += 3) groups.push(digits.slice(i, i + 3));
  return groups.join("_");
}

/** Snapshot download/upload (canister_manager types.rs): no suggestion line on these. */
export const snapshotSliceInvalid = (offset: bigint, size: bigint): UserError => ({
  code: ErrorCode.InvalidManagementPayload,
  description: `Invalid subslice into wasm module / main memory / stable memory: offset: ${offset}, size: ${size}`,
});
export const snapshotSliceTooLarge = (requested: bigint, allowed: bigint): UserError => ({
  code: ErrorCode.InvalidManagementPayload,
  description: `Requested slice too large: ${requested} > ${allowed}`,
});
export const snapshotImmutable = (): UserError => ({
  code: ErrorCode.CanisterSnapshotImmutable,
  description: "Only canister snapshots created by metadata upload can be mutated.",
});
/** An uploaded snapshot that cannot be loaded as it is; the IC's text is the message alone. */
export const snapshotInconsistent = (message: string): UserError => ({ code: ErrorCode.InvalidManagementPayload, description: message });

/** The IC's text ends with a colon and has no suggestion. */
export const snapshotOfEmptyCanister = (canister: string): UserError => ({
  code: ErrorCode.CanisterRejectedMessage,
  description: `Failed to create snapshot for empty canister ${canister}:`,
});

// --- the three forms ---------------------------------------------------------------------------------

/** The reject a user sees: code, description, and the error code next to them. */
export const userReject = (e: UserError): Response => ({ kind: "reject", code: rejectCodeOf(e.code), message: e.description, errorCode: e.code });

/** The reject a canister sees for its update call: the error's display, "IC<code>: …". */
export const canisterReject = (e: UserError): Response => ({ kind: "reject", code: rejectCodeOf(e.code), message: displayUserError(e) });

/** The reject a canister sees for a query call inside a composite query: the description alone. */
export const compositeCalleeReject = (e: UserError): Response => ({ kind: "reject", code: rejectCodeOf(e.code), message: e.description });

/**
 * A reject made for a user, as a canister gets it: a reject with an error code becomes
 * "IC<code>: <message>" without the code beside it; anything else passes unchanged.
 */
export function asCanisterResponse(r: Response): Response {
  return r.kind === "reject" && r.errorCode !== undefined ? { kind: "reject", code: r.code, message: `${r.errorCode}: ${r.message}` } : r;
}

/** The reject for whoever waits on `origin`. */
export function rejectFor(origin: CallOrigin, e: UserError): Response {
  return origin.kind === "canister" ? canisterReject(e) : userReject(e);
}

/** A canister's explicit reject (ic0.msg_reject): CANISTER_REJECT with its text; users also see IC0406. */
export function explicitReject(origin: CallOrigin, message: string): Response {
  return origin.kind === "canister"
    ? { kind: "reject", code: RejectCode.CanisterReject, message }
    : { kind: "reject", code: RejectCode.CanisterReject, message, errorCode: ErrorCode.CanisterRejectedMessage };
}

/** The context closed without a reply, told to whoever waits on `origin`. */
export function noReplyFor(origin: CallOrigin, canister: CanisterId): Response {
  switch (origin.kind) {
    case "canister":
      return { kind: "reject", code: RejectCode.CanisterError, message: CALLEE_NO_RESPONSE };
    case "query":
      return userReject(queryDidNotRespond(canister));
    case "ingress":
    case "system":
      return userReject(didNotReply(canister));
  }
}

/**
 * The error code a user sees for a reject that carries none (a management canister answer the lab
 * has not mapped, a reject relayed from elsewhere): the IC's most common code of that reject code.
 */
export function errorCodeOfResponse(r: Extract<Response, { kind: "reject" }>): ErrorCode {
  if (r.errorCode !== undefined) return r.errorCode;
  return REPRESENTATIVE_CODE[r.code];
}

const REPRESENTATIVE_CODE: Readonly<Record<RejectCode, ErrorCode>> = {
  [RejectCode.SysFatal]: ErrorCode.MaxNumberOfCanistersReached,
  [RejectCode.SysTransient]: ErrorCode.CanisterQueueFull,
  [RejectCode.DestinationInvalid]: ErrorCode.CanisterNotFound,
  [RejectCode.CanisterReject]: ErrorCode.CanisterRejectedMessage,
  [RejectCode.CanisterError]: ErrorCode.CanisterCalledTrap,
  [RejectCode.SysUnknown]: ErrorCode.DeadlineExpired,
};
