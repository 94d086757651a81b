// The contract of the execution layer (DESIGN.md "Execution"): a scheduler hands a canister's
// state and one message in, and gets the canister's next state and the message's outputs back,
// without knowing anything about Wasm. Everything here is plain immutable data; replicated values
// are integers (bigint for cycles, instructions and nanoseconds), never floats.
//
// Sources: IC interface specification ("Canister module format", "Overview of imports",
// "Reject codes", "IC management canister"), summarised in research/ic-protocol.md §3.5, §4, §7.
import { Principal } from "@dfinity/principal";
import type { PageMap } from "../state/page-map.ts";
import { memoizeBounded } from "../memo.ts";
import type { Brand, HashHex } from "../types.ts";
import type { ErrorCode, HypervisorError, UserError } from "./reject-codes.ts";

// ---------------------------------------------------------------------------------------------
// Ids

/** A canister id in its textual form (`rrkah-fqaaa-aaaaa-aaaaq-cai`). */
export type CanisterId = Brand<string, "CanisterId">;
/** Any principal (user, canister, anonymous, management canister) in textual form. */
export type PrincipalText = Brand<string, "PrincipalText">;
/** A callback registered by `call_perform`, unique per canister (never reused). */
export type CallbackId = Brand<bigint, "CallbackId">;
/** A call context (one per incoming call that is being answered), unique per canister. */
export type CallContextId = Brand<bigint, "CallContextId">;

/** Parses and normalises a canister id; throws on malformed text. */
export const canisterId: (text: string) => CanisterId = memoizeBounded(
  (text) => Principal.fromText(text).toText() as CanisterId,
  4096,
  "canisterId",
);
/** Canister id number `n` in the IC's opaque id scheme (u64 big-endian ‖ 0x01 0x01). */
export function canisterIdFromU64(n: bigint): CanisterId {
  const bytes = new Uint8Array(10);
  new DataView(bytes.buffer).setBigUint64(0, n);
  bytes[8] = 0x01;
  bytes[9] = 0x01;
  return Principal.fromUint8Array(bytes).toText() as CanisterId;
}
/** The number of a canister id of the opaque scheme (the inverse of canisterIdFromU64), or undefined for any other principal. */
export function canisterIdIndex(text: string): bigint | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Principal.fromText(text).toUint8Array();
  } catch {
    return undefined;
  }
  if (bytes.length !== 10 || bytes[8] !== 0x01 || bytes[9] !== 0x01) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
}
export function principalText(text: string): PrincipalText {
  return Principal.fromText(text).toText() as PrincipalText;
}
export function principalBytes(text: string): Uint8Array {
  return Principal.fromText(text).toUint8Array();
}
/** Canonical order of principals (by bytes, as the IC's BTreeMaps do); ties impossible. */
export function comparePrincipals(a: string, b: string): number {
  const x = principalBytes(a);
  const y = principalBytes(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
export const ANONYMOUS_PRINCIPAL = "2vxsx-fae" as PrincipalText;
export const MANAGEMENT_CANISTER = "aaaaa-aa" as PrincipalText;

// ---------------------------------------------------------------------------------------------
// Canister state

export type CanisterStatus = "running" | "stopping" | "stopped";

/** A value of an exported mutable global. Floats are kept as their IEEE bits (no floats in state). */
export interface GlobalValue {
  readonly type: "i32" | "i64" | "f32" | "f64";
  /** Raw bits: i32/f32 as an unsigned 32-bit value, i64/f64 as an unsigned 64-bit value. */
  readonly bits: bigint;
}

/** The part of a canister that exists only while a module is installed. */
export interface ExecutionState {
  /** SHA-256 of the module as uploaded (before instrumentation). */
  readonly moduleHash: HashHex;
  /** The module as uploaded (the executor instruments and caches it by moduleHash). */
  readonly wasmModule: Uint8Array;
  /** Main linear memory, 4 KiB pages. */
  readonly wasmMemory: PageMap;
  /** Size of the main memory in 64 KiB Wasm pages (what `memory.size` returns). */
  readonly wasmMemoryPages: number;
  /** Stable memory, 4 KiB pages. */
  readonly stableMemory: PageMap;
  /** Size of stable memory in 64 KiB Wasm pages (what `stable64_size` returns). */
  readonly stableMemoryPages: bigint;
  /** The module's mutable globals in declaration order. */
  readonly globals: readonly GlobalValue[];
  /** Exported entry points (`canister_update inc` → kind "update", name "inc"), sorted by name. */
  readonly exports: readonly string[];
}

/** Who is waiting for the answer of a call context. */
export type CallOrigin =
  | { readonly kind: "ingress"; readonly messageId: string; readonly caller: PrincipalText }
  | {
      readonly kind: "canister";
      readonly caller: CanisterId;
      /** The caller's callback that our response will invoke. */
      readonly callbackId: CallbackId;
      /** A best-effort call's deadline (ns, whole seconds); its response carries it back. Absent: guaranteed response. */
      readonly deadlineNs?: bigint;
    }
  | { readonly kind: "query"; readonly caller: PrincipalText }
  | { readonly kind: "system"; readonly task: SystemTask };

/** The system tasks (spec: heartbeat, global timer, the low-memory hook), run with context T. */
export type SystemTask = "heartbeat" | "global-timer" | "on-low-wasm-memory";

export interface CallContext {
  readonly id: CallContextId;
  readonly origin: CallOrigin;
  /** True once a reply or reject has been produced; later attempts trap. */
  readonly responded: boolean;
  /** Cycles attached to the incoming call that have not been accepted yet. */
  readonly availableCycles: bigint;
}

/** A closure registered with `call_new`: table index + environment for each continuation. */
export interface WasmClosure {
  readonly fun: number;
  readonly env: bigint;
}
export interface Callback {
  readonly id: CallbackId;
  readonly callContextId: CallContextId;
  readonly callee: CanisterId;
  readonly onReply: WasmClosure;
  readonly onReject: WasmClosure;
  readonly onCleanup: WasmClosure | undefined;
  readonly cyclesSent: bigint;
  /**
   * A best-effort call's deadline in ns (whole seconds, the IC's CoarseTime; deadlines.ts): once
   * the batch time has passed it without a response, the callback is answered with SYS_UNKNOWN.
   * Absent for a guaranteed-response call.
   */
  readonly deadlineNs?: bigint;
  /** Its deadline passed and the "deadline expired" reject was enqueued: any other response is dropped. */
  readonly expired?: true;
}

export interface CanisterState {
  readonly id: CanisterId;
  /** Sorted by comparePrincipals; at most 10. */
  readonly controllers: readonly PrincipalText[];
  readonly status: CanisterStatus;
  readonly cyclesBalance: bigint;
  /** 0..100 (percent of one core), integral. */
  readonly computeAllocationPercent: number;
  /** ≤ 32 bytes, set by `certified_data_set`. */
  readonly certifiedData: Uint8Array;
  /** Absolute deadline in ns, 0 = no timer. */
  readonly globalTimerNs: bigint;
  /** Increments on every successful change (spec "canister_version"). */
  readonly version: bigint;
  /** Undefined for an empty canister (created, or uninstalled). */
  readonly execution: ExecutionState | undefined;
  /** Open call contexts, sorted by id. */
  readonly callContexts: readonly CallContext[];
  /** Outstanding callbacks, sorted by id. */
  readonly callbacks: readonly Callback[];
  /** Next id handed out for a call context / callback (monotonic, never reused). */
  readonly nextCallContextId: bigint;
  readonly nextCallbackId: bigint;
  /** Snapshots taken of this canister, sorted by id. */
  readonly snapshots: readonly CanisterSnapshot[];
  /** Its debug prints and traps, newest last (absent until it first logs; canister-log.ts). */
  readonly log?: CanisterLog;
  /** Settings' environment_variables, sorted by name (UTF-8 bytes); absent when there are none. */
  readonly environmentVariables?: readonly EnvironmentVariable[];
  /** Settings' wasm_memory_limit in bytes; absent: the default (3 GiB, low-wasm-memory.ts). */
  readonly wasmMemoryLimitBytes?: bigint;
  /** Settings' wasm_memory_threshold in bytes; absent: 0 (the hook never runs). */
  readonly wasmMemoryThresholdBytes?: bigint;
  /** The low-memory hook's status; absent: condition_not_satisfied (low-wasm-memory.ts). */
  readonly lowWasmMemoryHook?: "ready" | "executed";
}

/** One canister environment variable (spec "Environment Variables"; names are unique). */
export interface EnvironmentVariable {
  readonly name: string;
  readonly value: string;
}

/** One line of a canister's log (spec "fetch_canister_logs": idx, timestamp_nanos, content). */
export interface CanisterLogRecord {
  readonly idx: bigint;
  readonly timestampNs: bigint;
  readonly content: Uint8Array;
}

export interface CanisterLog {
  /** The newest records that fit the log's size limit, oldest first. */
  readonly records: readonly CanisterLogRecord[];
  /** The idx of the next record (never reused, also after old records were dropped). */
  readonly nextIdx: bigint;
}

export interface CanisterSnapshot {
  /** `<canister id>-<n>`; n increases per canister. */
  readonly id: string;
  readonly takenAtNs: bigint;
  readonly execution: ExecutionState;
  readonly certifiedData: Uint8Array;
  readonly globalTimerNs: bigint;
  readonly totalSizeBytes: bigint;
  /**
   * Present on a snapshot created by `upload_canister_snapshot_metadata` (absent: taken from the
   * canister). Its `execution` holds what was uploaded so far — module bytes, memories, globals —
   * with no exports until `load_canister_snapshot` checks the module; `timerGiven` false means
   * loading it leaves the canister's global timer as it is (spec: an absent timer is not updated).
   */
  readonly upload?: { readonly timerGiven: boolean };
  /** The canister's low-memory hook status when the snapshot was taken (absent: condition_not_satisfied). */
  readonly lowWasmMemoryHook?: "ready" | "executed";
}

// ---------------------------------------------------------------------------------------------
// Messages

/** IC interface spec "Reject codes". */
export const RejectCode = {
  SysFatal: 1,
  SysTransient: 2,
  DestinationInvalid: 3,
  CanisterReject: 4,
  CanisterError: 5,
  /** Only for best-effort calls: the deadline passed or the response was dropped (spec "Reject codes"). */
  SysUnknown: 6,
} as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

export type Response =
  | { readonly kind: "reply"; readonly data: Uint8Array }
  | {
      readonly kind: "reject";
      readonly code: RejectCode;
      readonly message: string;
      /**
       * The IC's error code, on rejects meant for users (ingress, queries); a canister sees only
       * the reject code and message (reject-codes.ts).
       */
      readonly errorCode?: ErrorCode;
    };

/** One unit of work for a canister (an input queue entry or a system task). */
export type CanisterMessage =
  | {
      readonly kind: "ingress";
      readonly messageId: string;
      readonly caller: PrincipalText;
      readonly method: string;
      readonly arg: Uint8Array;
    }
  | {
      /** Non-replicated query; also usable for a replicated query sent as an update. */
      readonly kind: "query";
      readonly caller: PrincipalText;
      readonly method: string;
      readonly arg: Uint8Array;
      /** Certificate of the state this query runs against (for data_certificate_*). */
      readonly dataCertificate?: Uint8Array;
    }
  | {
      readonly kind: "request";
      readonly caller: CanisterId;
      /** The caller's callback id that the response must carry back. */
      readonly callerCallbackId: CallbackId;
      readonly method: string;
      readonly arg: Uint8Array;
      readonly cycles: bigint;
      /** A best-effort call's deadline (ns); absent for a guaranteed-response call. */
      readonly deadlineNs?: bigint;
    }
  | {
      readonly kind: "response";
      /** Our callback id (as handed out in OutgoingCall.callbackId). */
      readonly callbackId: CallbackId;
      readonly response: Response;
      readonly refundedCycles: bigint;
      /** The call's deadline when it was a best-effort call (the IC's Response.deadline). */
      readonly deadlineNs?: bigint;
      /** The system's "deadline expired" reject for an expired callback (deadlines.ts), not the callee's answer. */
      readonly deadlineExpired?: true;
    }
  | { readonly kind: "heartbeat" }
  | { readonly kind: "global-timer" }
  /** canister_on_low_wasm_memory, once its status is Ready (low-wasm-memory.ts). */
  | { readonly kind: "on-low-wasm-memory" };

/** A call made with call_new … call_perform, to be routed by message routing. */
export interface OutgoingCall {
  readonly callee: CanisterId;
  readonly method: string;
  readonly arg: Uint8Array;
  readonly cycles: bigint;
  /** Goes back in the CanisterMessage "response" for this call. */
  readonly callbackId: CallbackId;
  /** A best-effort call's deadline (ns); absent for a guaranteed-response call. */
  readonly deadlineNs?: bigint;
}

/** An answer to a call context that some sender is waiting for. */
export interface OutgoingResponse {
  readonly origin: CallOrigin;
  readonly response: Response;
  /** Cycles returned to the caller (attached and not accepted). */
  readonly refundedCycles: bigint;
}

// ---------------------------------------------------------------------------------------------
// Executing

export interface ExecutionParams {
  /** Instruction budget of this execution (ic-protocol.md §4.1: 5 B without DTS, 40 B with). */
  readonly instructionLimit: bigint;
  /** Batch time in nanoseconds since the epoch; `ic0.time` returns it. */
  readonly timeNs: bigint;
  /** The subnet this canister lives on (for subnet_self_*); defaults to the management id. */
  readonly subnetId?: PrincipalText;
  /** Charge execution fees in cycles (update-like messages only); no charge when absent. */
  readonly fees?: ExecutionFees;
}

/** Execution fees (ic-protocol.md §4.11; the IC scales the 13-node prices by subnetSize / 13). */
export interface ExecutionFees {
  /** Per update-like execution: 5 M cycles on a 13-node application subnet. */
  readonly updateMessageExecutionFee: bigint;
  /** Per instruction: 1 cycle on a 13-node application subnet. */
  readonly cyclesPerInstruction: bigint;
  readonly subnetSize: number;
}

/** Instructions canister_inspect_message may use (ic-protocol.md §4.1: 200 M). */
export const INSPECT_MESSAGE_INSTRUCTION_LIMIT = 200_000_000n;

export const APP_SUBNET_FEES: ExecutionFees = {
  updateMessageExecutionFee: 5_000_000n,
  cyclesPerInstruction: 1n,
  subnetSize: 13,
};

/** Cycles charged for an execution that used `instructions` (integer arithmetic, rounded down). */
export function executionFee(fees: ExecutionFees, instructions: bigint): bigint {
  return ((fees.updateMessageExecutionFee + instructions * fees.cyclesPerInstruction) * BigInt(fees.subnetSize)) / 13n;
}

export type ExecutionOutcome =
  | { readonly kind: "completed" }
  /** Trapped (explicit trap, Wasm trap, instruction limit, System API misuse); state rolled back. */
  | {
      readonly kind: "trapped";
      /** The lab's own diagnosis. */
      readonly message: string;
      /** What the IC reports (reject-codes.ts), and what its canister log records. */
      readonly error?: HypervisorError;
    }
  /** The message could not run at all (no such method, empty canister, stopped, …); state unchanged. */
  | { readonly kind: "rejected"; readonly code: RejectCode; readonly message: string };

export interface ExecutionResult {
  /** The canister after the message: committed changes, or the rolled-back state on a trap. */
  readonly canister: CanisterState;
  readonly outcome: ExecutionOutcome;
  /** Instructions consumed, System API overheads included (charged even when trapped). */
  readonly instructionsUsed: bigint;
  /** Responses produced for call contexts (the reply to this message, or to an older context). */
  readonly responses: readonly OutgoingResponse[];
  /** Calls enqueued with call_perform, in call order (empty on trap). */
  readonly outgoingCalls: readonly OutgoingCall[];
  /** Distinct 4 KiB pages written in main + stable memory (0 for queries and traps). */
  readonly heapDeltaPages: number;
  /** Lines passed to ic0.debug_print, in order (also kept for traps and queries). */
  readonly debugLog: readonly string[];
  /** The execution called ic0.time (a query cache must then also key on time). */
  readonly readTime: boolean;
}

/** Outcome of canister_inspect_message for one ingress message (spec "Ingress message inspection"). */
export interface InspectResult {
  readonly accepted: boolean;
  /** Why the message was refused (empty when accepted). */
  readonly message: string;
  /** The refusal as the IC reports it to the sender (reject-codes.ts); absent when accepted. */
  readonly refusal?: UserError;
  readonly instructionsUsed: bigint;
}

export type InstallMode = "install" | "reinstall" | "upgrade";

export interface InstallCodeArgs {
  readonly mode: InstallMode;
  readonly wasmModule: Uint8Array;
  readonly arg: Uint8Array;
  /** Who asks; must be a controller. */
  readonly sender: PrincipalText;
  /** Upgrade only: skip canister_pre_upgrade. */
  readonly skipPreUpgrade?: boolean;
  /**
   * Upgrade only: keep the main memory (spec `wasm_memory_persistence = opt keep`). Defaults to
   * "keep" for modules with the `enhanced-orthogonal-persistence` custom section (Motoko EOP),
   * else "replace".
   */
  readonly wasmMemoryPersistence?: "keep" | "replace";
}

export type LifecycleResult =
  | {
      readonly ok: true;
      readonly canister: CanisterState;
      readonly instructionsUsed: bigint;
      readonly heapDeltaPages: number;
      readonly debugLog: readonly string[];
      /** Answers to call contexts closed by the operation (reinstall rejects the open ones). */
      readonly responses?: readonly OutgoingResponse[];
    }
  | {
      readonly ok: false;
      /** Unchanged canister (or with cycles charged for the attempt). */
      readonly canister: CanisterState;
      readonly code: RejectCode;
      readonly message: string;
      /** The IC's error code where the lab knows it (reject-codes.ts). */
      readonly errorCode?: ErrorCode;
      readonly instructionsUsed: bigint;
      readonly debugLog: readonly string[];
    };

/**
 * What a scheduler calls. Implementations are deterministic functions of their arguments (the
 * module cache is an optimisation only). `harness/execution/executor.ts` provides `WasmExecutor`.
 */
export interface CanisterExecutor {
  executeMessage(
    canister: CanisterState,
    message: CanisterMessage,
    params: ExecutionParams,
  ): ExecutionResult;
  installCode(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult;
}
