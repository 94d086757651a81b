// The ic0 System API (IC interface specification, "Overview of imports" and the sections after it;
// digest in research/ic-protocol.md §7). One SystemApiSession serves one Wasm entry-point
// invocation: it holds the message data, the reply being built, the calls being made, and a
// copy-on-write view of stable memory, and it enforces the spec's availability table (which
// functions may be called from which entry point) by trapping with a clear message.
import { PAGE_SIZE_BYTES, type PageMap } from "../state/page-map.ts";
import { systemApiOverhead, STABLE_DIRTY_PAGE_OVERHEAD } from "./cost-table.ts";
import {
  principalBytes,
  type CanisterId,
  type CanisterStatus,
  type EnvironmentVariable,
  type PrincipalText,
  type RejectCode,
  type SystemTask,
  type WasmClosure,
} from "./interfaces.ts";
import { Principal } from "@dfinity/principal";
import {
  acceptMessageTwice,
  alreadyRepliedViolation,
  apiModeName,
  certifiedDataTooLarge,
  DEBUG_PRINT_OUT_OF_BOUNDS,
  noCallUnderConstruction,
  payloadTooLarge,
  subsliceViolation,
  TRAP_MESSAGE_OUT_OF_BOUNDS,
  TrapCode,
  wrongModeViolation,
  type HypervisorError,
  type ToolchainContractViolation,
  type UserContractViolation,
} from "./reject-codes.ts";
import { MAX_ENVIRONMENT_VARIABLE_NAME_BYTES } from "./environment-variables.ts";
import { boundedTimeoutSeconds } from "./deadlines.ts";
import { effectiveWasmMemoryLimit, exceedsWasmMemoryLimit } from "./low-wasm-memory.ts";
import {
  costCall,
  costCreateCanister,
  costHttpRequest,
  costThresholdKey,
  REFERENCE_SUBNET_SIZE,
  type ThresholdKey,
  type ThresholdScheme,
} from "./cycles-costs.ts";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * A trap: the invocation's state changes are discarded. `message` is the lab's own diagnosis (kept
 * in the execution outcome); `error` is what the IC would report (reject-codes.ts turns it into
 * the code and text callers see). By default a System API misuse: a contract violation.
 */
export class CanisterTrap extends Error {
  override readonly name = "CanisterTrap";
  readonly error: HypervisorError;
  constructor(message: string, error?: HypervisorError) {
    super(message);
    this.error = error ?? { kind: "contract-violation", error: message };
  }
}

/** A contract violation the replica words itself: the lab's diagnosis is the replica's text. */
function violation(error: ToolchainContractViolation | UserContractViolation): CanisterTrap {
  return new CanisterTrap(error.error, error);
}

/**
 * Entry-point kinds, with the spec's letters: s (start), I (init / post_upgrade), G (pre_upgrade),
 * U (update), RQ (query in replicated mode), NRQ (query in non-replicated mode), Ry / Rt (reply /
 * reject callback), C (cleanup), F (canister_inspect_message), T (system task: heartbeat, global
 * timer), CQ / CRy / CRt / CC (composite query and its reply / reject / cleanup callbacks).
 */
export type ApiContext = "s" | "I" | "G" | "U" | "RQ" | "NRQ" | "CQ" | "Ry" | "Rt" | "CRy" | "CRt" | "C" | "CC" | "F" | "T";

const ALL: readonly ApiContext[] = ["I", "G", "U", "RQ", "NRQ", "CQ", "Ry", "Rt", "CRy", "CRt", "C", "CC", "F", "T"];
const ALL_S: readonly ApiContext[] = [...ALL, "s"];
const ctx = (s: string): readonly ApiContext[] => s.split(" ") as ApiContext[];

/** Availability of each import (spec "Overview of imports"; CQ/CRy/CRt/CC/F/TQ not modelled). */
export const AVAILABILITY: Readonly<Record<string, readonly ApiContext[]>> = {
  msg_arg_data_size: ctx("I U RQ NRQ CQ Ry CRy F"),
  msg_arg_data_copy: ctx("I U RQ NRQ CQ Ry CRy F"),
  msg_method_name_size: ctx("F"),
  msg_method_name_copy: ctx("F"),
  accept_message: ctx("F"),
  msg_caller_size: ALL,
  msg_caller_copy: ALL,
  msg_reject_code: ctx("Ry Rt CRy CRt C"),
  msg_reject_msg_size: ctx("Rt CRt"),
  msg_reject_msg_copy: ctx("Rt CRt"),
  msg_deadline: ctx("U RQ NRQ CQ Ry Rt CRy CRt"),
  msg_reply_data_append: ctx("U RQ NRQ CQ Ry Rt CRy CRt"),
  msg_reply: ctx("U RQ NRQ CQ Ry Rt CRy CRt"),
  msg_reject: ctx("U RQ NRQ CQ Ry Rt CRy CRt"),
  msg_cycles_available128: ctx("U RQ Rt Ry"),
  msg_cycles_refunded128: ctx("Rt Ry"),
  msg_cycles_accept128: ctx("U RQ Rt Ry"),
  msg_cycles_available: ctx("U RQ Rt Ry"),
  msg_cycles_refunded: ctx("Rt Ry"),
  msg_cycles_accept: ctx("U RQ Rt Ry"),
  cycles_burn128: ctx("I G U RQ Ry Rt C T"),
  canister_self_size: ALL,
  canister_self_copy: ALL,
  canister_cycle_balance128: ALL,
  canister_liquid_cycle_balance128: ALL,
  canister_cycle_balance: ALL,
  canister_status: ALL,
  canister_version: ALL,
  subnet_self_size: ALL,
  subnet_self_copy: ALL,
  call_new: ctx("U CQ Ry Rt CRy CRt T"),
  call_on_cleanup: ctx("U CQ Ry Rt CRy CRt T"),
  call_data_append: ctx("U CQ Ry Rt CRy CRt T"),
  call_with_best_effort_response: ctx("U CQ Ry Rt CRy CRt T"),
  call_cycles_add128: ctx("U Ry Rt T"),
  call_cycles_add: ctx("U Ry Rt T"),
  call_perform: ctx("U CQ Ry Rt CRy CRt T"),
  stable64_size: ALL_S,
  stable64_grow: ALL_S,
  stable64_write: ALL_S,
  stable64_read: ALL_S,
  stable_size: ALL_S,
  stable_grow: ALL_S,
  stable_write: ALL_S,
  stable_read: ALL_S,
  certified_data_set: ctx("I G U Ry Rt T"),
  data_certificate_present: ALL,
  data_certificate_size: ctx("NRQ CQ"),
  data_certificate_copy: ctx("NRQ CQ"),
  time: ALL,
  global_timer_set: ctx("I G U Ry Rt C T"),
  performance_counter: ALL_S,
  is_controller: ALL_S,
  in_replicated_execution: ALL_S,
  debug_print: ALL_S,
  trap: ALL_S,
  root_key_size: ctx("I G U RQ Ry Rt C T"),
  root_key_copy: ctx("I G U RQ Ry Rt C T"),
  env_var_count: ALL,
  env_var_name_size: ALL,
  env_var_name_copy: ALL,
  env_var_name_exists: ALL,
  env_var_value_size: ALL,
  env_var_value_copy: ALL,
  cost_call: ALL_S,
  cost_create_canister: ALL_S,
  cost_http_request: ALL_S,
  cost_sign_with_ecdsa: ALL_S,
  cost_sign_with_schnorr: ALL_S,
  cost_vetkd_derive_key: ALL_S,
};

// --- signatures ------------------------------------------------------------------------------------

/** A parameter or result: `I` is pointer-sized (i64 in a canister whose memory is 64-bit). */
type Slot = "I" | "i32" | "i64";

interface Ic0Signature {
  readonly params: readonly Slot[];
  readonly results: readonly Slot[];
  /** Only for canisters with a 32-bit memory (or none). */
  readonly wasm32Only?: true;
}

const I = "I";
const i32 = "i32";
const i64 = "i64";
const sig = (params: readonly Slot[], results: readonly Slot[] = [], wasm32Only = false): Ic0Signature =>
  wasm32Only ? { params, results, wasm32Only: true } : { params, results };
const COPY = sig([I, I, I]);

/**
 * Every function of the `ic0` module with its type (interface specification, "Overview of
 * imports", where `I ∈ {i32, i64}` follows the bit-width of the declared memory), plus
 * `mint_cycles`/`mint_cycles128`, which the replica also accepts at install
 * (dfinity/ic rs/embedders/src/wasm_utils/validation.rs). Imports are checked against it when a
 * module is installed (instrument.ts): an unknown name or another type refuses the module, as on
 * the IC. Functions listed here that subnetlab does not implement trap when called.
 */
export const IC0_SIGNATURES: Readonly<Record<string, Ic0Signature>> = {
  msg_arg_data_size: sig([], [I]),
  msg_arg_data_copy: COPY,
  msg_caller_size: sig([], [I]),
  msg_caller_copy: COPY,
  msg_caller_info_data_size: sig([], [I]),
  msg_caller_info_data_copy: COPY,
  msg_caller_info_signer_size: sig([], [I]),
  msg_caller_info_signer_copy: COPY,
  msg_reject_code: sig([], [i32]),
  msg_reject_msg_size: sig([], [I]),
  msg_reject_msg_copy: COPY,
  msg_deadline: sig([], [i64]),
  msg_reply_data_append: sig([I, I]),
  msg_reply: sig([]),
  msg_reject: sig([I, I]),
  msg_cycles_available128: sig([I]),
  msg_cycles_refunded128: sig([I]),
  msg_cycles_accept128: sig([i64, i64, I]),
  cycles_burn128: sig([i64, i64, I]),
  canister_self_size: sig([], [I]),
  canister_self_copy: COPY,
  canister_cycle_balance128: sig([I]),
  canister_liquid_cycle_balance128: sig([I]),
  canister_status: sig([], [i32]),
  canister_version: sig([], [i64]),
  subnet_self_size: sig([], [I]),
  subnet_self_copy: COPY,
  msg_method_name_size: sig([], [I]),
  msg_method_name_copy: COPY,
  accept_message: sig([]),
  call_new: sig([I, I, I, I, I, I, I, I]),
  call_on_cleanup: sig([I, I]),
  call_data_append: sig([I, I]),
  call_with_best_effort_response: sig([i32]),
  call_cycles_add128: sig([i64, i64]),
  call_perform: sig([], [i32]),
  stable64_size: sig([], [i64]),
  stable64_grow: sig([i64], [i64]),
  stable64_write: sig([i64, i64, i64]),
  stable64_read: sig([i64, i64, i64]),
  root_key_size: sig([], [I]),
  root_key_copy: COPY,
  certified_data_set: sig([I, I]),
  data_certificate_present: sig([], [i32]),
  data_certificate_size: sig([], [I]),
  data_certificate_copy: COPY,
  time: sig([], [i64]),
  global_timer_set: sig([i64], [i64]),
  performance_counter: sig([i32], [i64]),
  is_controller: sig([I, I], [i32]),
  in_replicated_execution: sig([], [i32]),
  cost_call: sig([i64, i64, I]),
  cost_create_canister: sig([I]),
  cost_http_request: sig([i64, i64, I]),
  cost_sign_with_ecdsa: sig([I, I, i32, I], [i32]),
  cost_sign_with_schnorr: sig([I, I, i32, I], [i32]),
  cost_vetkd_derive_key: sig([I, I, i32, I], [i32]),
  env_var_count: sig([], [I]),
  env_var_name_size: sig([I], [I]),
  env_var_name_copy: sig([I, I, I, I]),
  env_var_name_exists: sig([I, I], [i32]),
  env_var_value_size: sig([I, I], [I]),
  env_var_value_copy: sig([I, I, I, I, I]),
  debug_print: sig([I, I]),
  trap: sig([I, I]),
  mint_cycles: sig([i64], [i64]),
  mint_cycles128: sig([i64, i64, I]),
  msg_cycles_available: sig([], [i64], true),
  msg_cycles_refunded: sig([], [i64], true),
  msg_cycles_accept: sig([i64], [i64], true),
  canister_cycle_balance: sig([], [i64], true),
  call_cycles_add: sig([i64], [], true),
  stable_size: sig([], [i32], true),
  stable_grow: sig([i32], [i32], true),
  stable_write: sig([i32, i32, i32], [], true),
  stable_read: sig([i32, i32, i32], [], true),
};

/** The type `ic0.<name>` has in a canister with a 32- or 64-bit memory; undefined if there is none. */
export function ic0Signature(name: string, memory64: boolean): { params: ("i32" | "i64")[]; results: ("i32" | "i64")[] } | undefined {
  if (!Object.hasOwn(IC0_SIGNATURES, name)) return undefined;
  const s = IC0_SIGNATURES[name] as Ic0Signature;
  if (memory64 && s.wasm32Only === true) return undefined;
  const width = (slot: Slot): "i32" | "i64" => (slot === "I" ? (memory64 ? "i64" : "i32") : slot);
  return { params: s.params.map(width), results: s.results.map(width) };
}

/** Whether `ic0.<name>` exists only for 32-bit memories (for the refusal's wording). */
export function isWasm32OnlyIc0(name: string): boolean {
  return Object.hasOwn(IC0_SIGNATURES, name) && IC0_SIGNATURES[name]?.wasm32Only === true;
}

// --- per-message limits --------------------------------------------------------------------------

/**
 * Stable memory pages (4 KiB) one execution may modify, by kind of execution: 2 GiB for updates,
 * callbacks and system tasks, 8 GiB for install and upgrade, 1 GiB for queries (replicated,
 * non-replicated, composite, and canister_inspect_message). dfinity/ic rs/config/src/embedders.rs
 * STABLE_MEMORY_DIRTY_PAGE_LIMIT_{MESSAGE,UPGRADE,QUERY}; the portal's "Canister resource limits"
 * lists the same ("Wasm stable memory, data written per replicated message 2GiB", …). The heap has
 * no such per-message limit on the IC (a message may rewrite its whole memory: the comment on
 * SUBNET_HEAP_DELTA_CAPACITY in rs/config/src/execution_environment.rs); wasm_memory_limit bounds it.
 */
export const STABLE_DIRTY_PAGE_LIMITS = {
  message: (2 * 1024 ** 3) / PAGE_SIZE_BYTES,
  upgrade: (8 * 1024 ** 3) / PAGE_SIZE_BYTES,
  query: 1024 ** 3 / PAGE_SIZE_BYTES,
} as const;

export type StableDirtyPageLimits = { readonly [K in keyof typeof STABLE_DIRTY_PAGE_LIMITS]: number };

/** Which of the limits applies to an entry point. */
export function stableDirtyLimitKind(context: ApiContext): keyof typeof STABLE_DIRTY_PAGE_LIMITS {
  switch (context) {
    case "s":
    case "I":
    case "G":
      return "upgrade";
    case "RQ":
    case "NRQ":
    case "CQ":
    case "CRy":
    case "CRt":
    case "CC":
    case "F":
      return "query";
    case "U":
    case "Ry":
    case "Rt":
    case "C":
    case "T":
      return "message";
  }
}


/** Largest reply/call payload (spec "maximum response size"; ic-protocol.md §2: 2 MiB). */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;
/**
 * The largest reply a non-replicated or composite query may build: 3 MiB (system_api.rs
 * MAX_NON_REPLICATED_QUERY_REPLY_SIZE); every other context answers with at most MAX_PAYLOAD_BYTES.
 */
export const MAX_NON_REPLICATED_QUERY_REPLY_BYTES = 3 * 1024 * 1024;
const maxReplyBytes = (context: ApiContext): number => (context === "NRQ" || context === "CQ" ? MAX_NON_REPLICATED_QUERY_REPLY_BYTES : MAX_PAYLOAD_BYTES);
/** Stable memory cap in 64 KiB pages (500 GiB, ic-protocol.md §4.11). */
export const MAX_STABLE_PAGES = (500n * 1024n * 1024n * 1024n) / 65_536n;
const WASM_PAGE = 65_536;
const U64 = (1n << 64n) - 1n;

export interface PendingCall {
  callee: CanisterId;
  method: string;
  arg: Uint8Array[];
  cycles: bigint;
  onReply: WasmClosure;
  onReject: WasmClosure;
  onCleanup: WasmClosure | undefined;
  /** Set by call_with_best_effort_response (bounded by MAX_CALL_TIMEOUT_SECONDS): a best-effort call. */
  timeoutSeconds?: number;
}

export interface PerformedCall {
  readonly callee: CanisterId;
  readonly method: string;
  readonly arg: Uint8Array;
  readonly cycles: bigint;
  readonly onReply: WasmClosure;
  readonly onReject: WasmClosure;
  readonly onCleanup: WasmClosure | undefined;
  /** A best-effort call's timeout (bounded); absent for a guaranteed-response call. */
  readonly timeoutSeconds?: number;
}

/** What the host needs from the running instance. */
export interface InstanceAccess {
  memoryBytes(): Uint8Array;
  /** Marks [addr, addr+len) as about to be written (undo log + heap delta). */
  markWritten(addr: number, len: number): void;
  instructionsUsed(): bigint;
  chargeInstructions(n: bigint): void;
}

export interface SessionInit {
  readonly context: ApiContext;
  readonly canisterId: CanisterId;
  readonly subnetId: PrincipalText;
  readonly caller: PrincipalText;
  readonly arg: Uint8Array;
  readonly timeNs: bigint;
  readonly status: CanisterStatus;
  readonly version: bigint;
  readonly controllers: readonly PrincipalText[];
  readonly cyclesBalance: bigint;
  readonly availableCycles: bigint;
  readonly refundedCycles: bigint;
  readonly certifiedData: Uint8Array;
  readonly dataCertificate: Uint8Array | undefined;
  readonly globalTimerNs: bigint;
  readonly stableMemory: PageMap;
  readonly stableMemoryPages: bigint;
  /** Whether the call being executed still expects a response (false once replied). */
  readonly responsePending: boolean;
  readonly rejectCode: RejectCode | 0;
  readonly rejectMessage: string;
  readonly memory64: boolean;
  /** canister_inspect_message only: the method the ingress message calls. */
  readonly methodName?: string;
  /** Composite query contexts: calls are executed as part of a query tree (executeQueryTree). */
  readonly compositeCalls?: boolean;
  /** Calls to `callee` still awaiting their response (the output queue's reserved slots). */
  readonly outstandingCalls?: (callee: string) => number;
  /** Stable pages this invocation may modify (default: STABLE_DIRTY_PAGE_LIMITS for its context). */
  readonly stableDirtyPageLimit?: number;
  /** The DER-encoded root public key for ic0.root_key_*; they trap when absent. */
  readonly rootKeyDer?: Uint8Array;
  /** The canister's environment variables, sorted by name (none when absent). */
  readonly environmentVariables?: readonly EnvironmentVariable[];
  /** What ic0.msg_deadline returns: the best-effort deadline of the message executing, 0 for none. */
  readonly msgDeadlineNs?: bigint;
  /** Nodes of the canister's subnet, which the ic0.cost_* fees scale with (default 13). */
  readonly subnetSize?: number;
  /** Threshold keys the simulated IC holds, for ic0.cost_sign_with_* / cost_vetkd_derive_key (none by default). */
  readonly thresholdKeys?: readonly ThresholdKey[];
  /** Context T: the task that runs (the replica names the mode after it). */
  readonly systemTask?: SystemTask;
  /** The canister's `wasm_memory_limit` setting in bytes (0: unlimited); absent: not enforced. */
  readonly wasmMemoryLimitBytes?: bigint;
}

/** DEFAULT_QUEUE_CAPACITY of the IC's canister queues (ic-protocol.md §3.2). */
export const OUTPUT_QUEUE_CAPACITY = 500;

export class SystemApiSession {
  readonly context: ApiContext;
  // Mutable outcome of the invocation, read by the executor afterwards.
  reply: { kind: "reply"; data: Uint8Array } | { kind: "reject"; message: string } | undefined;
  readonly performedCalls: PerformedCall[] = [];
  readonly debugLog: string[] = [];
  cyclesBalance: bigint;
  availableCycles: bigint;
  certifiedData: Uint8Array;
  globalTimerNs: bigint;
  stablePages: bigint;
  /** Current contents of stable pages written in this invocation (copy-on-write). */
  readonly stableDirty = new Map<number, Uint8Array>();
  usedTime = false;
  /** canister_inspect_message called ic0.accept_message. */
  accepted = false;

  private replyBuffer: Uint8Array[] = [];
  private replyBufferBytes = 0;
  private pending: PendingCall | undefined;
  private instance: InstanceAccess | undefined;

  private readonly stableDirtyPageLimit: number;

  constructor(private readonly init: SessionInit) {
    this.context = init.context;
    this.stableDirtyPageLimit = init.stableDirtyPageLimit ?? STABLE_DIRTY_PAGE_LIMITS[stableDirtyLimitKind(init.context)];
    this.cyclesBalance = init.cyclesBalance;
    this.availableCycles = init.availableCycles;
    this.certifiedData = init.certifiedData;
    this.globalTimerNs = init.globalTimerNs;
    this.stablePages = init.stableMemoryPages;
    this.reply = undefined;
  }

  attach(instance: InstanceAccess): void {
    this.instance = instance;
  }

  private get inst(): InstanceAccess {
    if (this.instance === undefined) throw new Error("system API session has no instance attached");
    return this.instance;
  }

  /** Entry for every ic0 import: availability check, overhead, then the function itself. */
  invoke(name: string, args: readonly (number | bigint)[]): number | bigint | undefined {
    const allowed = AVAILABILITY[name];
    if (allowed === undefined) throw new CanisterTrap(`ic0.${name} is not supported by subnetlab`);
    if (!allowed.includes(this.context)) throw this.wrongMode(name);
    this.inst.chargeInstructions(systemApiOverhead(name));
    const impl = SystemApiSession.IMPLS[name];
    if (impl === undefined) throw new CanisterTrap(`ic0.${name} is not supported by subnetlab`);
    return impl(this, args);
  }

  /**
   * memory.grow to `newPages` that the engine allows: the trap when it takes the memory above the
   * canister's wasm_memory_limit in an entry point held to it (low-wasm-memory.ts).
   */
  checkWasmMemoryGrow(newPages: number): void {
    const setting = this.init.wasmMemoryLimitBytes;
    const limitBytes = setting === undefined ? undefined : effectiveWasmMemoryLimit(this.context, setting);
    const peakBytes = BigInt(newPages) * BigInt(WASM_PAGE);
    if (limitBytes === undefined || !exceedsWasmMemoryLimit(limitBytes, peakBytes)) return;
    throw new CanisterTrap(`memory.grow to ${peakBytes} bytes exceeds the canister's wasm_memory_limit of ${limitBytes} bytes`, {
      kind: "wasm-memory-limit",
      peakBytes,
      limitBytes,
    });
  }

  /** The replica's refusal of `ic0.<name>` in this kind of execution. */
  private wrongMode(name: string): CanisterTrap {
    return violation(wrongModeViolation(name, apiModeName(this.context, this.init.systemTask)));
  }

  // --- memory helpers -----------------------------------------------------------------------

  private addr(x: number | bigint | undefined): number {
    if (x === undefined) throw new Error("missing System API argument");
    if (typeof x === "bigint") {
      const u = BigInt.asUintN(64, x);
      if (u > BigInt(Number.MAX_SAFE_INTEGER)) throw new CanisterTrap("address or size out of range");
      return Number(u);
    }
    return x >>> 0;
  }

  /**
   * [src, src+size) of the memory. `what` is the replica's name for the range in its
   * out-of-bounds text (system_api.rs valid_subslice); without one the lab words the violation.
   */
  private read(src: number, size: number, what?: string): Uint8Array {
    const mem = this.inst.memoryBytes();
    if (src + size > mem.length) {
      if (what !== undefined) throw violation(subsliceViolation(what, src, size, mem.length));
      throw new CanisterTrap(`System API read [${src}, ${src + size}) is outside the Wasm memory (${mem.length} bytes)`);
    }
    this.inst.chargeInstructions(BigInt(size));
    return mem.slice(src, src + size);
  }

  private write(dst: number, data: Uint8Array): void {
    const mem = this.inst.memoryBytes();
    if (dst + data.length > mem.length) {
      throw new CanisterTrap(
        `System API write [${dst}, ${dst + data.length}) is outside the Wasm memory (${mem.length} bytes)`,
      );
    }
    this.inst.chargeInstructions(BigInt(data.length));
    if (data.length === 0) return;
    this.inst.markWritten(dst, data.length);
    this.inst.memoryBytes().set(data, dst);
  }

  /**
   * The `*_copy(dst, offset, size)` idiom, checked as the replica does: first the destination in
   * the memory ("ic0.<name> heap"), then the range of the data ("ic0.<name> <blobLabel>"), both with
   * valid_subslice's text (system_api.rs, e.g. ic0_msg_arg_data_copy: label "payload").
   */
  private copyOut(name: string, blobLabel: string, blob: Uint8Array, args: readonly (number | bigint)[]): undefined {
    const dst = this.addr(args[0]);
    const offset = this.addr(args[1]);
    const size = this.addr(args[2]);
    const memoryBytes = this.inst.memoryBytes().length;
    if (dst + size > memoryBytes) throw violation(subsliceViolation(`ic0.${name} heap`, dst, size, memoryBytes));
    if (offset + size > blob.length) throw violation(subsliceViolation(`ic0.${name} ${blobLabel}`, offset, size, blob.length));
    this.write(dst, blob.subarray(offset, offset + size));
    return undefined;
  }

  /** ic0.data_certificate_copy: the range of the certificate first, then the memory (system_api.rs). */
  private copyOutDataCertificate(cert: Uint8Array, args: readonly (number | bigint)[]): undefined {
    const dst = this.addr(args[0]);
    const offset = this.addr(args[1]);
    const size = this.addr(args[2]);
    const memoryBytes = this.inst.memoryBytes().length;
    if (offset + size > cert.length) {
      throw violation({
        kind: "toolchain-contract-violation",
        error: `ic0_data_certificate_copy failed because offset + size is out of bounds. Found offset = ${offset} and size = ${size} while offset + size must be <= ${cert.length}`,
      });
    }
    if (dst + size > memoryBytes) {
      throw violation({
        kind: "toolchain-contract-violation",
        error: `ic0_data_certificate_copy failed because dst + size is out of bounds. Found dst = ${dst} and size = ${size} while dst + size must be <= ${memoryBytes}`,
      });
    }
    this.write(dst, cert.subarray(offset, offset + size));
    return undefined;
  }

  private size(n: number): number | bigint {
    return this.init.memory64 ? BigInt(n) : n;
  }

  /**
   * A 128-bit amount written at `dst`; the replica's text when the 16 bytes do not fit
   * (system_api.rs copy_cycles_to_heap: "out of bounds." and "Found" without a space between).
   */
  private write128(dst: number | bigint | undefined, value: bigint, replicaName?: string): undefined {
    const at = this.addr(dst);
    const memoryBytes = this.inst.memoryBytes().length;
    if (replicaName !== undefined && at + 16 > memoryBytes) {
      throw violation({
        kind: "toolchain-contract-violation",
        error: `${replicaName} failed because dst + size is out of bounds.Found dst = ${at} and size = 16 while must be <= ${memoryBytes}`,
      });
    }
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, value & U64, true);
    view.setBigUint64(8, (value >> 64n) & U64, true);
    this.write(at, bytes);
    return undefined;
  }

  private amount128(hi: number | bigint | undefined, lo: number | bigint | undefined): bigint {
    return (BigInt.asUintN(64, BigInt(hi ?? 0)) << 64n) | BigInt.asUintN(64, BigInt(lo ?? 0));
  }

  private text(bytes: Uint8Array): string {
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  }

  // --- responding -----------------------------------------------------------------------------

  private checkCanRespond(name: "msg_reply" | "msg_reply_data_append" | "msg_reject"): void {
    if (!this.init.responsePending || this.reply !== undefined) throw violation(alreadyRepliedViolation(name));
  }

  // --- stable memory ---------------------------------------------------------------------------

  private stablePage(i: number): Uint8Array {
    return this.stableDirty.get(i) ?? this.init.stableMemory.readPage(i);
  }

  private stableRead(offset: bigint, size: number): Uint8Array {
    if (offset + BigInt(size) > this.stablePages * BigInt(WASM_PAGE)) {
      throw new CanisterTrap(`stable memory read [${offset}, ${offset + BigInt(size)}) is out of bounds`, { kind: "trapped", trap: TrapCode.StableMemoryOutOfBounds });
    }
    const out = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const pos = offset + BigInt(done);
      const page = Number(pos / BigInt(PAGE_SIZE_BYTES));
      const inPage = Number(pos % BigInt(PAGE_SIZE_BYTES));
      const n = Math.min(PAGE_SIZE_BYTES - inPage, size - done);
      out.set(this.stablePage(page).subarray(inPage, inPage + n), done);
      done += n;
    }
    return out;
  }

  /**
   * `stable_write`/`stable64_write`: [src, src+size) of the heap to stable memory at `offset`,
   * page by page straight from the heap (no intermediate copy of the whole range). Traps before
   * anything is copied when the range is out of bounds or would modify more stable pages than the
   * execution may (STABLE_DIRTY_PAGE_LIMITS): a counter, not a scan, decides in the common case.
   */
  private stableWriteFromHeap(offset: bigint, src: number, size: number): void {
    const mem = this.inst.memoryBytes();
    if (src + size > mem.length) {
      throw new CanisterTrap(`System API read [${src}, ${src + size}) is outside the Wasm memory (${mem.length} bytes)`);
    }
    this.inst.chargeInstructions(BigInt(size));
    if (offset + BigInt(size) > this.stablePages * BigInt(WASM_PAGE)) {
      throw new CanisterTrap(`stable memory write [${offset}, ${offset + BigInt(size)}) is out of bounds`, { kind: "trapped", trap: TrapCode.StableMemoryOutOfBounds });
    }
    if (size === 0) return;
    const first = Number(offset / BigInt(PAGE_SIZE_BYTES));
    const last = Number((offset + BigInt(size) - 1n) / BigInt(PAGE_SIZE_BYTES));
    this.checkStableDirtyLimit(first, last);
    let done = 0;
    while (done < size) {
      const pos = offset + BigInt(done);
      const page = Number(pos / BigInt(PAGE_SIZE_BYTES));
      const inPage = Number(pos % BigInt(PAGE_SIZE_BYTES));
      const n = Math.min(PAGE_SIZE_BYTES - inPage, size - done);
      let target = this.stableDirty.get(page);
      if (target === undefined) {
        target = this.init.stableMemory.readPage(page).slice();
        this.stableDirty.set(page, target);
        this.inst.chargeInstructions(STABLE_DIRTY_PAGE_OVERHEAD);
      }
      target.set(mem.subarray(src + done, src + done + n), inPage);
      done += n;
    }
  }

  /** Traps if writing pages first..last would take the modified stable pages past the limit. */
  private checkStableDirtyLimit(first: number, last: number): void {
    const limit = this.stableDirtyPageLimit;
    if (this.stableDirty.size + (last - first + 1) <= limit) return;
    let added = 0;
    for (let p = first; p <= last; p++) {
      if (this.stableDirty.has(p)) continue;
      if (this.stableDirty.size + ++added > limit) {
        const kind = stableDirtyLimitKind(this.context);
        const text =
          `Canister exceeded the limit of ${limit} modified stable memory pages (${formatBytes(limit * PAGE_SIZE_BYTES)}) ` +
          `for a single ${kind === "upgrade" ? "install or upgrade" : kind === "query" ? "query" : "message"} execution ` +
          `(the IC's limits: 2 GiB per update, callback or task, 8 GiB per install or upgrade, 1 GiB per query)`;
        throw new CanisterTrap(text, { kind: "memory-access-limit", detail: text });
      }
    }
  }

  private stableGrow(newPages: bigint, cap: bigint): bigint {
    const old = this.stablePages;
    if (newPages < 0n || old + newPages > cap) return -1n;
    this.stablePages = old + newPages;
    return old;
  }

  // --- the imports ------------------------------------------------------------------------------

  // One table for all sessions (no per-session closures): each entry gets the session.
  private static readonly IMPLS: Record<string, (s: SystemApiSession, a: readonly (number | bigint)[]) => number | bigint | undefined> = {
    msg_arg_data_size: (s) => s.size(s.init.arg.length),
    msg_arg_data_copy: (s, a) => s.copyOut("msg_arg_data_copy", "payload", s.init.arg, a),
    msg_caller_size: (s) => s.size(principalBytes(s.init.caller).length),
    msg_caller_copy: (s, a) => s.copyOut("msg_caller_copy", "id", principalBytes(s.init.caller), a),
    msg_reject_code: (s) => s.init.rejectCode,
    msg_reject_msg_size: (s) => s.size(new TextEncoder().encode(s.init.rejectMessage).length),
    msg_reject_msg_copy: (s, a) => s.copyOut("msg_reject_msg_copy", "msg", new TextEncoder().encode(s.init.rejectMessage), a),
    msg_deadline: (s) => BigInt.asIntN(64, s.init.msgDeadlineNs ?? 0n),
    msg_method_name_size: (s) => s.size(new TextEncoder().encode(s.init.methodName ?? "").length),
    msg_method_name_copy: (s, a) => s.copyOut("msg_method_name_copy", "payload", new TextEncoder().encode(s.init.methodName ?? ""), a),
    accept_message: (s) => {
      if (s.accepted) throw violation(acceptMessageTwice);
      s.accepted = true;
      return undefined;
    },
    msg_reply_data_append: (s, a) => {
      s.checkCanRespond("msg_reply_data_append");
      const size = s.addr(a[1]);
      const max = maxReplyBytes(s.context);
      if (s.replyBufferBytes + size > max) throw violation(payloadTooLarge("msg_reply_data_append", s.replyBufferBytes + size, max));
      // "msg.reply" is the replica's name for this range (system_api.rs ic0_msg_reply_data_append).
      s.replyBuffer.push(s.read(s.addr(a[0]), size, "msg.reply"));
      s.replyBufferBytes += size;
      return undefined;
    },
    msg_reply: (s) => {
      s.checkCanRespond("msg_reply");
      const data = new Uint8Array(s.replyBufferBytes);
      let pos = 0;
      for (const chunk of s.replyBuffer) {
        data.set(chunk, pos);
        pos += chunk.length;
      }
      s.reply = { kind: "reply", data };
      s.replyBuffer = [];
      s.replyBufferBytes = 0;
      return undefined;
    },
    msg_reject: (s, a) => {
      s.checkCanRespond("msg_reject");
      const size = s.addr(a[1]);
      const max = maxReplyBytes(s.context);
      if (size > max) throw violation(payloadTooLarge("msg_reject", size, max));
      s.reply = { kind: "reject", message: s.text(s.read(s.addr(a[0]), size, "ic0.msg_reject")) };
      return undefined;
    },
    msg_cycles_available128: (s, a) => s.write128(a[0], s.availableCycles, "ic0_msg_cycles_available128"),
    msg_cycles_available: (s) => BigInt.asIntN(64, s.availableCycles > U64 ? U64 : s.availableCycles),
    msg_cycles_refunded128: (s, a) => s.write128(a[0], s.init.refundedCycles, "ic0_msg_cycles_refunded128"),
    msg_cycles_refunded: (s) => BigInt.asIntN(64, s.init.refundedCycles),
    msg_cycles_accept128: (s, a) => {
      const max = s.amount128(a[0], a[1]);
      const n = max < s.availableCycles ? max : s.availableCycles;
      s.availableCycles -= n;
      s.cyclesBalance += n;
      return s.write128(a[2], n, "ic0_msg_cycles_accept128");
    },
    msg_cycles_accept: (s, a) => {
      const max = BigInt.asUintN(64, BigInt(a[0] ?? 0));
      const n = max < s.availableCycles ? max : s.availableCycles;
      s.availableCycles -= n;
      s.cyclesBalance += n;
      return BigInt.asIntN(64, n);
    },
    cycles_burn128: (s, a) => {
      const max = s.amount128(a[0], a[1]);
      const n = max < s.cyclesBalance ? max : s.cyclesBalance;
      s.cyclesBalance -= n;
      return s.write128(a[2], n, "ic0_cycles_burn128");
    },
    canister_self_size: (s) => s.size(principalBytes(s.init.canisterId).length),
    canister_self_copy: (s, a) => s.copyOut("canister_self_copy", "id", principalBytes(s.init.canisterId), a),
    subnet_self_size: (s) => s.size(principalBytes(s.init.subnetId).length),
    subnet_self_copy: (s, a) => s.copyOut("subnet_self_copy", "id", principalBytes(s.init.subnetId), a),
    canister_cycle_balance128: (s, a) => s.write128(a[0], s.cyclesBalance, "ic0_canister_cycle_balance128"),
    canister_liquid_cycle_balance128: (s, a) => s.write128(a[0], s.cyclesBalance, "ic0_canister_liquid_cycle_balance128"),
    canister_cycle_balance: (s) => BigInt.asIntN(64, s.cyclesBalance > U64 ? U64 : s.cyclesBalance),
    canister_status: (s) => (s.init.status === "running" ? 1 : s.init.status === "stopping" ? 2 : 3),
    canister_version: (s) => BigInt.asIntN(64, s.init.version),
    call_new: (s, a) => {
      const callee = s.read(s.addr(a[0]), s.addr(a[1]));
      const method = s.text(s.read(s.addr(a[2]), s.addr(a[3]), "ic0.call_new method_name"));
      let calleeText: CanisterId;
      try {
        calleeText = Principal.fromUint8Array(callee).toText() as CanisterId;
      } catch {
        throw new CanisterTrap("ic0.call_new: callee is not a valid principal");
      }
      if (s.pending !== undefined) s.cyclesBalance += s.pending.cycles; // discarded call
      s.pending = {
        callee: calleeText,
        method,
        arg: [],
        cycles: 0n,
        onReply: { fun: Number(a[4] ?? 0), env: BigInt(a[5] ?? 0) },
        onReject: { fun: Number(a[6] ?? 0), env: BigInt(a[7] ?? 0) },
        onCleanup: undefined,
      };
      return undefined;
    },
    call_on_cleanup: (s, a) => {
      const p = s.requirePending("call_on_cleanup");
      if (p.onCleanup !== undefined) throw new CanisterTrap("ic0.call_on_cleanup called twice for one call");
      p.onCleanup = { fun: Number(a[0] ?? 0), env: BigInt(a[1] ?? 0) };
      return undefined;
    },
    call_data_append: (s, a) => {
      const p = s.requirePending("call_data_append");
      const size = s.addr(a[1]);
      const total = p.arg.reduce((s, x) => s + x.length, 0) + size;
      if (total > MAX_PAYLOAD_BYTES) throw new CanisterTrap(`ic0.call_data_append: argument exceeds ${MAX_PAYLOAD_BYTES} bytes`);
      p.arg.push(s.read(s.addr(a[0]), size));
      return undefined;
    },
    call_with_best_effort_response: (s, a) => {
      // The replica's own texts for both misuses (rs/embedders/src/wasmtime_embedder/system_api.rs,
      // ToolchainContractViolation); any timeout is accepted and bounded by MAX_CALL_TIMEOUT_SECONDS.
      const p = s.requirePending("call_with_best_effort_response");
      if (p.timeoutSeconds !== undefined) {
        throw violation({ kind: "toolchain-contract-violation", error: "ic0_call_with_best_effort_response failed because a timeout is already set." });
      }
      p.timeoutSeconds = boundedTimeoutSeconds(Number(a[0] ?? 0));
      return undefined;
    },
    call_cycles_add128: (s, a) => s.addCycles(s.amount128(a[0], a[1]), "call_cycles_add128"),
    call_cycles_add: (s, a) => s.addCycles(BigInt.asUintN(64, BigInt(a[0] ?? 0)), "call_cycles_add"),
    call_perform: (s) => {
      const p = s.requirePending("call_perform");
      s.pending = undefined;
      // A composite query run outside a query tree (executeMessage) cannot call out: the call is
      // not made and call_perform says so (non-zero, spec: "not sent"; 2 = SYS_TRANSIENT).
      const composite = s.context === "CQ" || s.context === "CRy" || s.context === "CRt";
      if (composite && s.init.compositeCalls !== true) return 2;
      // The output queue to the callee holds 500 requests whose responses are outstanding; a call
      // that does not fit is not sent (SYS_TRANSIENT), as the IC's push_output_request refuses it.
      const queued = (s.init.outstandingCalls?.(p.callee) ?? 0) + s.performedCalls.filter((c) => c.callee === p.callee).length;
      if (queued >= OUTPUT_QUEUE_CAPACITY) return 2;
      const arg = new Uint8Array(p.arg.reduce((s, x) => s + x.length, 0));
      let pos = 0;
      for (const chunk of p.arg) {
        arg.set(chunk, pos);
        pos += chunk.length;
      }
      s.performedCalls.push({ ...p, arg });
      return 0;
    },
    stable64_size: (s) => s.stablePages,
    stable64_grow: (s, a) => s.stableGrow(BigInt.asUintN(64, BigInt(a[0] ?? 0)), MAX_STABLE_PAGES),
    stable64_write: (s, a) => {
      s.stableWriteFromHeap(BigInt.asUintN(64, BigInt(a[0] ?? 0)), s.addr(a[1]), s.addr(a[2]));
      return undefined;
    },
    stable64_read: (s, a) => {
      const offset = BigInt.asUintN(64, BigInt(a[1] ?? 0));
      const size = s.addr(a[2]);
      s.write(s.addr(a[0]), s.stableRead(offset, size));
      return undefined;
    },
    stable_size: (s) => {
      if (s.stablePages > 65_536n) throw new CanisterTrap("ic0.stable_size: stable memory is larger than 4 GiB", { kind: "trapped", trap: TrapCode.StableMemoryTooBigFor32Bit });
      return Number(s.stablePages);
    },
    stable_grow: (s, a) => {
      if (s.stablePages > 65_536n) throw new CanisterTrap("ic0.stable_grow: stable memory is larger than 4 GiB", { kind: "trapped", trap: TrapCode.StableMemoryTooBigFor32Bit });
      return Number(s.stableGrow(BigInt((a[0] as number) >>> 0), 65_536n));
    },
    stable_write: (s, a) => {
      s.stableWriteFromHeap(BigInt(s.addr(a[0])), s.addr(a[1]), s.addr(a[2]));
      return undefined;
    },
    stable_read: (s, a) => {
      s.write(s.addr(a[0]), s.stableRead(BigInt(s.addr(a[1])), s.addr(a[2])));
      return undefined;
    },
    certified_data_set: (s, a) => {
      const size = s.addr(a[1]);
      if (size > 32) throw violation(certifiedDataTooLarge(size, 32));
      const src = s.addr(a[0]);
      const memoryBytes = s.inst.memoryBytes().length;
      if (src + size > memoryBytes) {
        throw violation({
          kind: "toolchain-contract-violation",
          error: `ic0_certified_data_set failed because src + size is out of bounds. Found src = ${src} and size = ${size} while src + size must be <= ${memoryBytes}`,
        });
      }
      s.certifiedData = s.read(src, size);
      return undefined;
    },
    data_certificate_present: (s) => ((s.context === "NRQ" || s.context === "CQ") && s.init.dataCertificate !== undefined ? 1 : 0),
    // Without a certificate the replica refuses these as in the wrong mode (system_api.rs).
    data_certificate_size: (s) => {
      const cert = s.init.dataCertificate;
      if (cert === undefined) throw s.wrongMode("data_certificate_size");
      return s.size(cert.length);
    },
    data_certificate_copy: (s, a) => {
      const cert = s.init.dataCertificate;
      if (cert === undefined) throw s.wrongMode("data_certificate_copy");
      return s.copyOutDataCertificate(cert, a);
    },
    time: (s) => {
      s.usedTime = true;
      return BigInt.asIntN(64, s.init.timeNs);
    },
    global_timer_set: (s, a) => {
      const previous = s.globalTimerNs;
      s.globalTimerNs = BigInt.asUintN(64, BigInt(a[0] ?? 0));
      return BigInt.asIntN(64, previous);
    },
    performance_counter: (s, a) => {
      const kind = Number(a[0] ?? 0);
      if (kind !== 0 && kind !== 1) throw new CanisterTrap(`ic0.performance_counter: unknown counter type ${kind}`);
      return BigInt.asIntN(64, s.inst.instructionsUsed());
    },
    is_controller: (s, a) => {
      const size = s.addr(a[1]);
      if (size > 29) throw new CanisterTrap(`ic0.is_controller: ${size} bytes is not a principal`);
      const bytes = s.read(s.addr(a[0]), size, "ic0.is_controller");
      const text = Principal.fromUint8Array(bytes).toText();
      return s.init.controllers.includes(text as PrincipalText) ? 1 : 0;
    },
    in_replicated_execution: (s) =>
      ["NRQ", "CQ", "CRy", "CRt", "CC", "F"].includes(s.context) ? 0 : 1,
    debug_print: (s, a) => {
      const src = s.addr(a[0]);
      const size = s.addr(a[1]);
      const mem = s.inst.memoryBytes();
      s.inst.chargeInstructions(BigInt(size));
      s.debugLog.push(src + size <= mem.length ? s.text(mem.slice(src, src + size)) : DEBUG_PRINT_OUT_OF_BOUNDS);
      return undefined;
    },
    root_key_size: (s) => s.size(s.rootKey("root_key_size").length),
    root_key_copy: (s, a) => s.copyOut("root_key_copy", "bytes", s.rootKey("root_key_copy"), a),
    env_var_count: (s) => s.size(s.envVars().length),
    env_var_name_size: (s, a) => s.size(utf8(s.envVarAt("env_var_name_size", a[0]).name).length),
    env_var_name_copy: (s, a) => s.copyOut("env_var_name_copy", "name", utf8(s.envVarAt("env_var_name_copy", a[0]).name), a.slice(1)),
    env_var_name_exists: (s, a) => (s.envVarNamed("env_var_name_exists", a[0], a[1]) === undefined ? 0 : 1),
    env_var_value_size: (s, a) => s.size(utf8(s.existingEnvVar("env_var_value_size", a[0], a[1]).value).length),
    env_var_value_copy: (s, a) => s.copyOut("env_var_value_copy", "value", utf8(s.existingEnvVar("env_var_value_copy", a[0], a[1]).value), a.slice(2)),
    cost_call: (s, a) =>
      s.write128(a[2], costCall(BigInt.asUintN(64, BigInt(a[0] ?? 0)), BigInt.asUintN(64, BigInt(a[1] ?? 0)), s.subnetSize(), s.init.memory64), "ic0_cost_call"),
    cost_create_canister: (s, a) => s.write128(a[0], costCreateCanister(s.subnetSize()), "ic0_cost_create_canister"),
    cost_http_request: (s, a) =>
      s.write128(a[2], costHttpRequest(BigInt.asUintN(64, BigInt(a[0] ?? 0)), BigInt.asUintN(64, BigInt(a[1] ?? 0)), s.subnetSize()), "ic0_cost_http_request"),
    cost_sign_with_ecdsa: (s, a) => s.costOfThresholdKey("ecdsa", a),
    cost_sign_with_schnorr: (s, a) => s.costOfThresholdKey("schnorr", a),
    cost_vetkd_derive_key: (s, a) => s.costOfThresholdKey("vetkd", a),
    trap: (s, a) => {
      const src = s.addr(a[0]);
      const size = s.addr(a[1]);
      const mem = s.inst.memoryBytes();
      const msg = src + size <= mem.length ? s.text(mem.slice(src, src + size)) : TRAP_MESSAGE_OUT_OF_BOUNDS;
      throw new CanisterTrap(`Canister called \`ic0.trap\` with message: ${msg}`, { kind: "called-trap", message: msg });
    },
  };

  private subnetSize(): number {
    return this.init.subnetSize ?? REFERENCE_SUBNET_SIZE;
  }

  /**
   * `cost_sign_with_ecdsa(src, size, curve, dst)` and its siblings: traps when the key name or the
   * 16 bytes at `dst` are outside the memory (spec), else 0 with the cost written at `dst`, 1 for
   * an unknown curve/algorithm, 2 for a key no subnet holds (memory at `dst` left unchanged). The
   * name is decoded as UTF-8, invalid bytes replaced (a name that is not UTF-8 names no key).
   */
  private costOfThresholdKey(scheme: ThresholdScheme, args: readonly (number | bigint)[]): number {
    const name = this.text(this.read(this.addr(args[0]), this.addr(args[1])));
    const dst = this.addr(args[3]);
    const memoryBytes = this.inst.memoryBytes().length;
    if (dst + 16 > memoryBytes) {
      throw new CanisterTrap(`System API write [${dst}, ${dst + 16}) is outside the Wasm memory (${memoryBytes} bytes)`);
    }
    const cost = costThresholdKey(scheme, Number(args[2] ?? 0) | 0, name, this.init.thresholdKeys ?? []);
    if (cost.kind === "unknown-curve") return 1;
    if (cost.kind === "unknown-key") return 2;
    this.write128(dst, cost.cycles);
    return 0;
  }

  private rootKey(name: string): Uint8Array {
    const key = this.init.rootKeyDer;
    if (key === undefined) throw new CanisterTrap(`ic0.${name}: this executor was given no root key (WasmExecutorOptions.rootKeyDer)`);
    return key;
  }

  private envVars(): readonly EnvironmentVariable[] {
    return this.init.environmentVariables ?? [];
  }

  /** The variable at `index` in name order; traps when the index is out of bounds (spec). */
  private envVarAt(name: string, index: number | bigint | undefined): EnvironmentVariable {
    const i = this.addr(index);
    const v = this.envVars()[i];
    if (v === undefined) throw new CanisterTrap(`ic0.${name}: index ${i} is out of bounds (${this.envVars().length} environment variables)`);
    return v;
  }

  /**
   * The variable whose name is the UTF-8 text at [src, src+size); undefined if none. Traps when
   * the name is longer than a variable name may be or not UTF-8 (spec "Environment Variables").
   */
  private envVarNamed(name: string, src: number | bigint | undefined, size: number | bigint | undefined): EnvironmentVariable | undefined {
    const n = this.addr(size);
    if (n > MAX_ENVIRONMENT_VARIABLE_NAME_BYTES) {
      throw new CanisterTrap(`ic0.${name}: name of ${n} bytes exceeds the maximum length of ${MAX_ENVIRONMENT_VARIABLE_NAME_BYTES} bytes`);
    }
    const bytes = this.read(this.addr(src), n);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new CanisterTrap(`ic0.${name}: the name is not valid UTF-8`);
    }
    return this.envVars().find((v) => v.name === text);
  }

  private existingEnvVar(name: string, src: number | bigint | undefined, size: number | bigint | undefined): EnvironmentVariable {
    const v = this.envVarNamed(name, src, size);
    if (v === undefined) throw new CanisterTrap(`ic0.${name}: no environment variable with this name`);
    return v;
  }

  private requirePending(name: string): PendingCall {
    if (this.pending === undefined) throw violation(noCallUnderConstruction(name));
    return this.pending;
  }

  private addCycles(n: bigint, name: "call_cycles_add" | "call_cycles_add128"): undefined {
    const p = this.requirePending(name);
    if (n > this.cyclesBalance) {
      throw new CanisterTrap(`ic0.call_cycles_add128: ${n} cycles requested, balance is ${this.cyclesBalance}`);
    }
    this.cyclesBalance -= n;
    p.cycles += n;
    return undefined;
  }

  /** Cycles moved to calls that were never performed are returned at the end (spec call_new). */
  finish(): void {
    if (this.pending !== undefined) {
      this.cyclesBalance += this.pending.cycles;
      this.pending = undefined;
    }
  }
}

/** 2147483648 → "2 GiB"; other sizes in KiB. */
function formatBytes(n: number): string {
  return n % 1024 ** 3 === 0 ? `${n / 1024 ** 3} GiB` : n % 1024 ** 2 === 0 ? `${n / 1024 ** 2} MiB` : `${n / 1024} KiB`;
}
