// The IC management canister (`aaaaa-aa`) for canister lifecycle calls, Candid in and out, so that
// ingress messages (e.g. from @dfinity/agent's management actor) and inter-canister calls can
// create, install, stop, snapshot … canisters. Types follow the management canister's Candid
// interface (IC interface spec "The IC management canister"); only the lifecycle subset below is
// served, everything else is rejected with a clear message.
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { hexToBytes } from "@noble/hashes/utils.js";
import type { WasmExecutor } from "./executor.ts";
import {
  RejectCode,
  type CanisterId,
  type CanisterSnapshot,
  type EnvironmentVariable,
  type GlobalValue,
  type CanisterState,
  type ExecutionParams,
  type OutgoingResponse,
  type PrincipalText,
  type Response,
} from "./interfaces.ts";
import * as lifecycle from "./lifecycle.ts";
import {
  canisterIdAlreadyExists,
  canisterNotFound,
  ErrorCode,
  userReject,
  computeAllocationOutOfRange,
  invalidController,
  managedCanisterNotFound,
  managementMethodNotFound,
  managementPayloadUndecodable,
  rejectCodeOf,
  snapshotInconsistent,
  tooManyControllers,
  type UserError,
} from "./reject-codes.ts";
import {
  loadableExecution,
  readSnapshotData,
  readSnapshotMetadata,
  uploadSnapshotData,
  uploadSnapshotMetadata,
  type SnapshotDataKind,
  type SnapshotMetadata,
} from "./snapshot-transfer.ts";
import { appendToLog } from "./canister-log.ts";
import { validateEnvironmentVariables, type EnvironmentVariablesResult } from "./environment-variables.ts";
import { updateHookStatus, wasmMemoryLimitOf, wasmMemoryThresholdOf } from "./low-wasm-memory.ts";

// --- Candid types (subset of the management canister interface) ------------------------------------

const canisterIdType = IDL.Principal;
const snapshotIdType = IDL.Vec(IDL.Nat8);
const logVisibility = IDL.Variant({ controllers: IDL.Null, public: IDL.Null, allowed_viewers: IDL.Vec(IDL.Principal) });
const environmentVariable = IDL.Record({ name: IDL.Text, value: IDL.Text });
const canisterSettings = IDL.Record({
  controllers: IDL.Opt(IDL.Vec(IDL.Principal)),
  compute_allocation: IDL.Opt(IDL.Nat),
  memory_allocation: IDL.Opt(IDL.Nat),
  freezing_threshold: IDL.Opt(IDL.Nat),
  reserved_cycles_limit: IDL.Opt(IDL.Nat),
  log_visibility: IDL.Opt(logVisibility),
  wasm_memory_limit: IDL.Opt(IDL.Nat),
  wasm_memory_threshold: IDL.Opt(IDL.Nat),
  environment_variables: IDL.Opt(IDL.Vec(environmentVariable)),
});
const definiteSettings = IDL.Record({
  controllers: IDL.Vec(IDL.Principal),
  compute_allocation: IDL.Nat,
  memory_allocation: IDL.Nat,
  freezing_threshold: IDL.Nat,
  reserved_cycles_limit: IDL.Nat,
  log_visibility: logVisibility,
  wasm_memory_limit: IDL.Nat,
  wasm_memory_threshold: IDL.Nat,
  environment_variables: IDL.Vec(environmentVariable),
});
const installMode = IDL.Variant({
  install: IDL.Null,
  reinstall: IDL.Null,
  upgrade: IDL.Opt(
    IDL.Record({
      skip_pre_upgrade: IDL.Opt(IDL.Bool),
      wasm_memory_persistence: IDL.Opt(IDL.Variant({ keep: IDL.Null, replace: IDL.Null })),
    }),
  ),
});
const snapshotType = IDL.Record({ id: snapshotIdType, taken_at_timestamp: IDL.Nat64, total_size: IDL.Nat64 });
const canisterOnly = IDL.Record({ canister_id: canisterIdType });
const snapshotGlobal = IDL.Variant({ i32: IDL.Int32, i64: IDL.Int64, f32: IDL.Float32, f64: IDL.Float64, v128: IDL.Nat });
const globalTimer = IDL.Opt(IDL.Variant({ inactive: IDL.Null, active: IDL.Nat64 }));
const lowWasmMemoryHookStatus = IDL.Opt(IDL.Variant({ condition_not_satisfied: IDL.Null, ready: IDL.Null, executed: IDL.Null }));
const snapshotSlice = IDL.Record({ offset: IDL.Nat64, size: IDL.Nat64 });

export const MANAGEMENT_TYPES = {
  provisional_create_canister_with_cycles: {
    arg: IDL.Record({
      amount: IDL.Opt(IDL.Nat),
      settings: IDL.Opt(canisterSettings),
      specified_id: IDL.Opt(canisterIdType),
      sender_canister_version: IDL.Opt(IDL.Nat64),
    }),
    ret: [IDL.Record({ canister_id: canisterIdType })],
  },
  create_canister: {
    arg: IDL.Record({ settings: IDL.Opt(canisterSettings), sender_canister_version: IDL.Opt(IDL.Nat64) }),
    ret: [IDL.Record({ canister_id: canisterIdType })],
  },
  install_code: {
    arg: IDL.Record({
      mode: installMode,
      canister_id: canisterIdType,
      wasm_module: IDL.Vec(IDL.Nat8),
      arg: IDL.Vec(IDL.Nat8),
      sender_canister_version: IDL.Opt(IDL.Nat64),
    }),
    ret: [],
  },
  uninstall_code: { arg: IDL.Record({ canister_id: canisterIdType, sender_canister_version: IDL.Opt(IDL.Nat64) }), ret: [] },
  start_canister: { arg: canisterOnly, ret: [] },
  stop_canister: { arg: canisterOnly, ret: [] },
  delete_canister: { arg: canisterOnly, ret: [] },
  canister_status: {
    arg: canisterOnly,
    ret: [
      IDL.Record({
        status: IDL.Variant({ running: IDL.Null, stopping: IDL.Null, stopped: IDL.Null }),
        settings: definiteSettings,
        module_hash: IDL.Opt(IDL.Vec(IDL.Nat8)),
        memory_size: IDL.Nat,
        memory_metrics: IDL.Record({
          wasm_memory_size: IDL.Nat,
          stable_memory_size: IDL.Nat,
          global_memory_size: IDL.Nat,
          wasm_binary_size: IDL.Nat,
          custom_sections_size: IDL.Nat,
          canister_history_size: IDL.Nat,
          wasm_chunk_store_size: IDL.Nat,
          snapshots_size: IDL.Nat,
        }),
        cycles: IDL.Nat,
        reserved_cycles: IDL.Nat,
        idle_cycles_burned_per_day: IDL.Nat,
        query_stats: IDL.Record({
          num_calls_total: IDL.Nat,
          num_instructions_total: IDL.Nat,
          request_payload_bytes_total: IDL.Nat,
          response_payload_bytes_total: IDL.Nat,
        }),
      }),
    ],
  },
  update_settings: {
    arg: IDL.Record({ canister_id: canisterIdType, settings: canisterSettings, sender_canister_version: IDL.Opt(IDL.Nat64) }),
    ret: [],
  },
  provisional_top_up_canister: { arg: IDL.Record({ canister_id: canisterIdType, amount: IDL.Nat }), ret: [] },
  take_canister_snapshot: {
    arg: IDL.Record({ canister_id: canisterIdType, replace_snapshot: IDL.Opt(snapshotIdType) }),
    ret: [snapshotType],
  },
  load_canister_snapshot: {
    arg: IDL.Record({ canister_id: canisterIdType, snapshot_id: snapshotIdType, sender_canister_version: IDL.Opt(IDL.Nat64) }),
    ret: [],
  },
  list_canister_snapshots: { arg: canisterOnly, ret: [IDL.Vec(snapshotType)] },
  delete_canister_snapshot: { arg: IDL.Record({ canister_id: canisterIdType, snapshot_id: snapshotIdType }), ret: [] },
  read_canister_snapshot_metadata: {
    arg: IDL.Record({ canister_id: canisterIdType, snapshot_id: snapshotIdType }),
    ret: [
      IDL.Record({
        source: IDL.Variant({ taken_from_canister: IDL.Reserved, metadata_upload: IDL.Reserved }),
        taken_at_timestamp: IDL.Nat64,
        wasm_module_size: IDL.Nat64,
        globals: IDL.Vec(snapshotGlobal),
        wasm_memory_size: IDL.Nat64,
        stable_memory_size: IDL.Nat64,
        wasm_chunk_store: IDL.Vec(IDL.Record({ hash: IDL.Vec(IDL.Nat8) })),
        canister_version: IDL.Nat64,
        certified_data: IDL.Vec(IDL.Nat8),
        global_timer: globalTimer,
        on_low_wasm_memory_hook_status: lowWasmMemoryHookStatus,
      }),
    ],
  },
  read_canister_snapshot_data: {
    arg: IDL.Record({
      canister_id: canisterIdType,
      snapshot_id: snapshotIdType,
      kind: IDL.Variant({ wasm_module: snapshotSlice, wasm_memory: snapshotSlice, stable_memory: snapshotSlice, wasm_chunk: IDL.Record({ hash: IDL.Vec(IDL.Nat8) }) }),
    }),
    ret: [IDL.Record({ chunk: IDL.Vec(IDL.Nat8) })],
  },
  upload_canister_snapshot_metadata: {
    arg: IDL.Record({
      canister_id: canisterIdType,
      replace_snapshot: IDL.Opt(snapshotIdType),
      wasm_module_size: IDL.Nat64,
      globals: IDL.Vec(snapshotGlobal),
      wasm_memory_size: IDL.Nat64,
      stable_memory_size: IDL.Nat64,
      certified_data: IDL.Vec(IDL.Nat8),
      global_timer: globalTimer,
      on_low_wasm_memory_hook_status: lowWasmMemoryHookStatus,
    }),
    ret: [IDL.Record({ snapshot_id: snapshotIdType })],
  },
  upload_canister_snapshot_data: {
    arg: IDL.Record({
      canister_id: canisterIdType,
      snapshot_id: snapshotIdType,
      kind: IDL.Variant({
        wasm_module: IDL.Record({ offset: IDL.Nat64 }),
        wasm_memory: IDL.Record({ offset: IDL.Nat64 }),
        stable_memory: IDL.Record({ offset: IDL.Nat64 }),
        wasm_chunk: IDL.Null,
      }),
      chunk: IDL.Vec(IDL.Nat8),
    }),
    ret: [],
  },
  raw_rand: { arg: undefined, ret: [IDL.Vec(IDL.Nat8)] },
  fetch_canister_logs: {
    arg: canisterOnly,
    ret: [IDL.Record({ canister_log_records: IDL.Vec(IDL.Record({ idx: IDL.Nat64, timestamp_nanos: IDL.Nat64, content: IDL.Vec(IDL.Nat8) })) })],
  },
} as const;

export type ManagementMethod = keyof typeof MANAGEMENT_TYPES;

// --- execution -------------------------------------------------------------------------------------

export interface ManagementContext {
  readonly executor: WasmExecutor;
  /** Budget and time for install_code (ic-protocol.md §4.1: 300 B instructions). */
  readonly installParams: ExecutionParams;
  readonly nowNs: bigint;
  canister(id: CanisterId): CanisterState | undefined;
  /** A fresh canister id (never reused). */
  newCanisterId(): CanisterId;
  /** 32 bytes of the round's randomness (raw_rand). */
  drawRawRand(): Uint8Array;
  /** Cycles given to canisters created with create_canister (default 0 + attached cycles). */
  readonly defaultCycles?: bigint;
}

export interface ManagementOutcome {
  /** Undefined while a stop_canister waits for the canister to become Stopped. */
  readonly response: Response | undefined;
  /** Canisters created or changed (to store back). */
  readonly updated: readonly CanisterState[];
  readonly deleted: readonly CanisterId[];
  /** Answers to other calls caused by this one (uninstall_code rejects open call contexts). */
  readonly responses: readonly OutgoingResponse[];
  readonly instructionsUsed: bigint;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const snapshotIdBytes = (id: string): Uint8Array => encoder.encode(id);
const snapshotIdText = (bytes: Uint8Array | number[]): string => decoder.decode(Uint8Array.from(bytes));
const principal = (p: Principal): string => p.toText();
const opt = <T>(v: [] | [T] | undefined): T | undefined => (v === undefined || v.length === 0 ? undefined : v[0]);

/** The settings' environment_variables, checked and sorted; undefined when the field is absent. */
function environmentVariablesOf(settings: Record<string, unknown> | undefined): EnvironmentVariablesResult | undefined {
  const given = opt(settings?.["environment_variables"] as [] | [EnvironmentVariable[]] | undefined);
  return given === undefined ? undefined : validateEnvironmentVariables(given);
}

/**
 * The settings' wasm_memory_limit and wasm_memory_threshold applied (absent fields keep their
 * value), and the low-memory hook's condition evaluated again (low-wasm-memory.ts).
 */
function withMemorySettings(c: CanisterState, settings: Record<string, unknown> | undefined): CanisterState {
  const limit = opt(settings?.["wasm_memory_limit"] as [] | [bigint] | undefined);
  const threshold = opt(settings?.["wasm_memory_threshold"] as [] | [bigint] | undefined);
  if (limit === undefined && threshold === undefined) return c;
  const next: CanisterState = {
    ...c,
    ...(limit === undefined ? {} : { wasmMemoryLimitBytes: limit }),
    ...(threshold === undefined ? {} : { wasmMemoryThresholdBytes: threshold }),
  };
  return updateHookStatus(next);
}

/** The canister with these variables replacing its own (none: the field is dropped, as on a fresh canister). */
function withEnvironmentVariables(c: CanisterState, variables: readonly EnvironmentVariable[] | undefined): CanisterState {
  const { environmentVariables: _old, ...rest } = c;
  return variables === undefined || variables.length === 0 ? rest : { ...rest, environmentVariables: variables };
}

function reply(types: readonly IDL.Type[], values: unknown[]): Response {
  return { kind: "reply", data: IDL.encode([...types], values) };
}
/**
 * A reject; with the IC's error code it is the user's form (a canister gets "IC<code>: …" through
 * asCanisterResponse where the answer is routed).
 */
function reject(code: RejectCode, message: string, errorCode?: ErrorCode): ManagementOutcome {
  const response: Response = errorCode === undefined ? { kind: "reject", code, message } : { kind: "reject", code, message, errorCode };
  return { response, updated: [], deleted: [], responses: [], instructionsUsed: 0n };
}
const rejectWith = (e: UserError): ManagementOutcome => reject(rejectCodeOf(e.code), e.description, e.code);
const failed = (r: { readonly code: RejectCode; readonly message: string; readonly errorCode?: ErrorCode }): ManagementOutcome => reject(r.code, r.message, r.errorCode);
const refusedVariables = (r: Extract<EnvironmentVariablesResult, { ok: false }>): ManagementOutcome => rejectWith(r.error);
function ok(response: Response | undefined, updated: CanisterState[] = [], extra: Partial<ManagementOutcome> = {}): ManagementOutcome {
  return { response, updated, deleted: [], responses: [], instructionsUsed: 0n, ...extra };
}
function fromLifecycle<T extends { canister: CanisterState }>(
  r: lifecycle.Outcome<T>,
  onOk: (x: T) => ManagementOutcome,
): ManagementOutcome {
  return r.ok ? onOk(r) : failed(r);
}
/** A global's raw bits as the Candid variant the snapshot metadata carries (and back). */
function globalRecord(g: GlobalValue): Record<string, unknown> {
  const view = new DataView(new ArrayBuffer(8));
  switch (g.type) {
    case "i32":
      return { i32: Number(BigInt.asIntN(32, g.bits)) };
    case "i64":
      return { i64: BigInt.asIntN(64, g.bits) };
    case "f32":
      view.setUint32(0, Number(g.bits));
      return { f32: view.getFloat32(0) };
    case "f64":
      view.setBigUint64(0, g.bits);
      return { f64: view.getFloat64(0) };
  }
}

function decodeGlobals(values: readonly Record<string, unknown>[]): GlobalValue[] | string {
  const view = new DataView(new ArrayBuffer(8));
  const out: GlobalValue[] = [];
  for (const v of values) {
    if ("i32" in v) out.push({ type: "i32", bits: BigInt.asUintN(32, BigInt(v["i32"] as number)) });
    else if ("i64" in v) out.push({ type: "i64", bits: BigInt.asUintN(64, v["i64"] as bigint) });
    else if ("f32" in v) {
      view.setFloat32(0, v["f32"] as number);
      out.push({ type: "f32", bits: BigInt(view.getUint32(0)) });
    } else if ("f64" in v) {
      view.setFloat64(0, v["f64"] as number);
      out.push({ type: "f64", bits: view.getBigUint64(0) });
    } else return "A v128 global cannot be uploaded: subnetlab's canisters have no v128 globals.";
  }
  return out;
}

function metadataRecord(m: SnapshotMetadata) {
  return {
    source: m.source === "taken_from_canister" ? { taken_from_canister: null } : { metadata_upload: null },
    taken_at_timestamp: m.takenAtNs,
    wasm_module_size: m.wasmModuleSize,
    globals: m.globals.map(globalRecord),
    wasm_memory_size: m.wasmMemorySize,
    stable_memory_size: m.stableMemorySize,
    wasm_chunk_store: [],
    canister_version: m.canisterVersion,
    certified_data: m.certifiedData,
    global_timer: m.globalTimerNs === undefined ? [] : [m.globalTimerNs === 0n ? { inactive: null } : { active: m.globalTimerNs }],
    on_low_wasm_memory_hook_status: m.lowWasmMemoryHook === undefined ? [] : [{ [m.lowWasmMemoryHook]: null }],
  };
}

function snapshotRecord(s: CanisterSnapshot) {
  return { id: snapshotIdBytes(s.id), taken_at_timestamp: s.takenAtNs, total_size: s.totalSizeBytes };
}

/** How many controllers a call's settings list (duplicates included, as the IC's bounded list counts them). */
function settingsControllerCount(m: ManagementMethod, a: Record<string, unknown>): number {
  const settings =
    m === "update_settings"
      ? (a["settings"] as Record<string, unknown>)
      : m === "create_canister" || m === "provisional_create_canister_with_cycles"
        ? opt(a["settings"] as [] | [Record<string, unknown>])
        : undefined;
  return opt(settings?.["controllers"] as [] | [Principal[]] | undefined)?.length ?? 0;
}

/**
 * Every method of the IC's management canister (interface spec, ic.did `service ic`). A call to
 * one subnetlab does not model says so; any other name gets the IC's "has no method" reject.
 */
export const IC_MANAGEMENT_METHODS: ReadonlySet<string> = new Set([
  "create_canister", "update_settings", "upload_chunk", "clear_chunk_store", "stored_chunks", "install_code", "install_chunked_code",
  "uninstall_code", "start_canister", "stop_canister", "canister_status", "canister_info", "delete_canister", "deposit_cycles", "raw_rand",
  "http_request", "flexible_http_request", "ecdsa_public_key", "sign_with_ecdsa", "schnorr_public_key", "sign_with_schnorr",
  "vetkd_public_key", "vetkd_derive_key", "bitcoin_get_balance", "bitcoin_get_utxos", "bitcoin_send_transaction",
  "bitcoin_get_current_fee_percentiles", "bitcoin_get_block_headers", "node_metrics_history", "subnet_info",
  "provisional_create_canister_with_cycles", "provisional_top_up_canister", "take_canister_snapshot", "load_canister_snapshot",
  "read_canister_snapshot_metadata", "read_canister_snapshot_data", "upload_canister_snapshot_metadata", "upload_canister_snapshot_data",
  "list_canister_snapshots", "delete_canister_snapshot", "fetch_canister_logs",
]);

export function executeManagementCall(
  ctx: ManagementContext,
  caller: PrincipalText,
  method: string,
  arg: Uint8Array,
  attachedCycles = 0n,
): ManagementOutcome {
  if (!(method in MANAGEMENT_TYPES)) {
    if (!IC_MANAGEMENT_METHODS.has(method)) return rejectWith(managementMethodNotFound(method));
    return reject(RejectCode.DestinationInvalid, `The IC's management canister has a method '${method}'; subnetlab does not model it`);
  }
  const m = method as ManagementMethod;
  const types = MANAGEMENT_TYPES[m];
  let a: Record<string, unknown> = {};
  if (types.arg !== undefined) {
    try {
      a = IDL.decode([types.arg], arg)[0] as Record<string, unknown>;
    } catch (e) {
      return rejectWith(managementPayloadUndecodable(e instanceof Error ? e.message : String(e)));
    }
  }
  // The IC's settings hold at most 10 controllers and refuse more while decoding the argument.
  if (settingsControllerCount(m, a) > lifecycle.MAX_CONTROLLERS) return rejectWith(tooManyControllers(lifecycle.MAX_CONTROLLERS));
  const target = (): CanisterState | ManagementOutcome => {
    const id = principal(a["canister_id"] as Principal) as CanisterId;
    return ctx.canister(id) ?? rejectWith(managedCanisterNotFound(id));
  };
  const isOutcome = (x: CanisterState | ManagementOutcome): x is ManagementOutcome => "response" in x;

  switch (m) {
    case "provisional_create_canister_with_cycles":
    case "create_canister": {
      const settings = opt(a["settings"] as [] | [Record<string, unknown>]);
      const controllers = opt(settings?.["controllers"] as [] | [Principal[]] | undefined)?.map((p) => principal(p) as PrincipalText) ?? [
        caller,
      ];
      const compute = opt(settings?.["compute_allocation"] as [] | [bigint] | undefined) ?? 0n;
      const specified = m === "provisional_create_canister_with_cycles" ? opt(a["specified_id"] as [] | [Principal]) : undefined;
      const id = specified !== undefined ? (principal(specified) as CanisterId) : ctx.newCanisterId();
      if (ctx.canister(id) !== undefined) return rejectWith(canisterIdAlreadyExists(id));
      const amount =
        m === "provisional_create_canister_with_cycles"
          ? (opt(a["amount"] as [] | [bigint]) ?? 100_000_000_000_000n)
          : (ctx.defaultCycles ?? 0n) + attachedCycles;
      if (compute > 100n) return rejectWith(computeAllocationOutOfRange(compute));
      const env = environmentVariablesOf(settings);
      if (env !== undefined && !env.ok) return refusedVariables(env);
      const created = withMemorySettings(
        withEnvironmentVariables(lifecycle.createCanister({ id, controllers, cycles: amount, computeAllocationPercent: Number(compute) }), env?.variables),
        settings,
      );
      return ok(reply(types.ret, [{ canister_id: Principal.fromText(id) }]), [created]);
    }
    case "install_code": {
      const c = target();
      if (isOutcome(c)) return c;
      const mode = a["mode"] as Record<string, unknown>;
      const upgrade = "upgrade" in mode ? opt(mode["upgrade"] as [] | [Record<string, unknown>]) : undefined;
      const persistence = upgrade === undefined ? undefined : opt(upgrade["wasm_memory_persistence"] as [] | [Record<string, null>]);
      const skip = upgrade === undefined ? undefined : opt(upgrade["skip_pre_upgrade"] as [] | [boolean]);
      const r = ctx.executor.installCode(
        c,
        {
          mode: "install" in mode ? "install" : "reinstall" in mode ? "reinstall" : "upgrade",
          wasmModule: Uint8Array.from(a["wasm_module"] as Uint8Array | number[]),
          arg: Uint8Array.from(a["arg"] as Uint8Array | number[]),
          sender: caller,
          ...(skip === undefined ? {} : { skipPreUpgrade: skip }),
          ...(persistence === undefined ? {} : { wasmMemoryPersistence: "keep" in persistence ? ("keep" as const) : ("replace" as const) }),
        },
        ctx.installParams,
      );
      if (!r.ok) return { ...failed(r), instructionsUsed: r.instructionsUsed };
      // What canister_init / pre_upgrade / post_upgrade printed goes to the canister's log.
      return ok(reply([], []), [appendToLog(r.canister, r.debugLog, ctx.nowNs)], { instructionsUsed: r.instructionsUsed, responses: r.responses ?? [] });
    }
    case "uninstall_code": {
      const c = target();
      if (isOutcome(c)) return c;
      return fromLifecycle(lifecycle.uninstallCode(c, caller), (r) => ok(reply([], []), [r.canister], { responses: r.responses }));
    }
    case "start_canister": {
      const c = target();
      if (isOutcome(c)) return c;
      return fromLifecycle(lifecycle.startCanister(c, caller), (r) => ok(reply([], []), [r.canister]));
    }
    case "stop_canister": {
      const c = target();
      if (isOutcome(c)) return c;
      // The call completes when the canister is Stopped (the driver answers it after
      // lifecycle.finalizeStopping); if it already is, right away.
      return fromLifecycle(lifecycle.stopCanister(c, caller), (r) =>
        ok(r.canister.status === "stopped" ? reply([], []) : undefined, [r.canister]),
      );
    }
    case "delete_canister": {
      const c = target();
      if (isOutcome(c)) return c;
      const r = lifecycle.checkDeletable(c, caller);
      if (!r.ok) return failed(r);
      return ok(reply([], []), [], { deleted: [c.id] });
    }
    case "canister_status": {
      const c = target();
      if (isOutcome(c)) return c;
      if (!c.controllers.includes(caller)) {
        return rejectWith(invalidController(c.id, c.controllers, caller));
      }
      return ok(reply(types.ret, [canisterStatusRecord(c)]));
    }
    case "update_settings": {
      const c = target();
      if (isOutcome(c)) return c;
      if (!c.controllers.includes(caller)) {
        return rejectWith(invalidController(c.id, c.controllers, caller));
      }
      const settings = a["settings"] as Record<string, unknown>;
      let next = c;
      const controllers = opt(settings["controllers"] as [] | [Principal[]]);
      if (controllers !== undefined) {
        const r = lifecycle.setControllers(next, caller, controllers.map((p) => principal(p) as PrincipalText));
        if (!r.ok) return failed(r);
        next = r.canister;
      }
      const compute = opt(settings["compute_allocation"] as [] | [bigint]);
      if (compute !== undefined) {
        if (compute > 100n) return rejectWith(computeAllocationOutOfRange(compute));
        next = { ...next, computeAllocationPercent: Number(compute), version: next.version + 1n };
      }
      const env = environmentVariablesOf(settings);
      if (env !== undefined) {
        if (!env.ok) return refusedVariables(env);
        next = { ...withEnvironmentVariables(next, env.variables), version: next.version + 1n };
      }
      const memory = withMemorySettings(next, settings);
      if (memory !== next) next = { ...memory, version: next.version + 1n };
      return ok(reply([], []), [next]);
    }
    case "provisional_top_up_canister": {
      const c = target();
      if (isOutcome(c)) return c;
      return ok(reply([], []), [{ ...c, cyclesBalance: c.cyclesBalance + (a["amount"] as bigint) }]);
    }
    case "take_canister_snapshot": {
      const c = target();
      if (isOutcome(c)) return c;
      const replace = opt(a["replace_snapshot"] as [] | [Uint8Array]);
      return fromLifecycle(
        lifecycle.takeSnapshot(c, caller, ctx.nowNs, replace === undefined ? undefined : snapshotIdText(replace)),
        (r) => ok(reply(types.ret, [snapshotRecord(r.snapshot)]), [r.canister]),
      );
    }
    case "load_canister_snapshot": {
      const c = target();
      if (isOutcome(c)) return c;
      const snapshotId = snapshotIdText(a["snapshot_id"] as Uint8Array);
      const snapshot = c.snapshots.find((s) => s.id === snapshotId);
      // An uploaded snapshot becomes a canister only if its module and globals fit together.
      const loadable = snapshot === undefined || !c.controllers.includes(caller) ? undefined : loadableExecution(snapshot, ctx.executor);
      if (loadable !== undefined && !loadable.ok) return reject(loadable.code, loadable.message, loadable.errorCode);
      return fromLifecycle(lifecycle.loadSnapshot(c, caller, snapshotId, loadable?.execution), (r) => ok(reply([], []), [r.canister]));
    }
    case "read_canister_snapshot_metadata": {
      const c = target();
      if (isOutcome(c)) return c;
      const r = readSnapshotMetadata(c, caller, snapshotIdText(a["snapshot_id"] as Uint8Array));
      return r.ok ? ok(reply(types.ret, [metadataRecord(r.metadata)])) : failed(r);
    }
    case "read_canister_snapshot_data": {
      const c = target();
      if (isOutcome(c)) return c;
      const kind = a["kind"] as Record<string, { offset: bigint; size: bigint }>;
      if ("wasm_chunk" in kind) return rejectWith(snapshotInconsistent("The Wasm chunk store is not modelled by subnetlab: snapshots have no chunks to read."));
      const [name, slice] = Object.entries(kind)[0] as [SnapshotDataKind, { offset: bigint; size: bigint }];
      const r = readSnapshotData(c, caller, snapshotIdText(a["snapshot_id"] as Uint8Array), name, slice.offset, slice.size);
      return r.ok ? ok(reply(types.ret, [{ chunk: r.chunk }])) : failed(r);
    }
    case "upload_canister_snapshot_metadata": {
      const c = target();
      if (isOutcome(c)) return c;
      const replace = opt(a["replace_snapshot"] as [] | [Uint8Array]);
      const globals = decodeGlobals(a["globals"] as Record<string, unknown>[]);
      if (typeof globals === "string") return rejectWith(snapshotInconsistent(globals));
      const timer = opt(a["global_timer"] as [] | [Record<string, bigint | null>]);
      const r = uploadSnapshotMetadata(c, caller, ctx.nowNs, replace === undefined ? undefined : snapshotIdText(replace), {
        wasmModuleSize: a["wasm_module_size"] as bigint,
        globals,
        wasmMemorySize: a["wasm_memory_size"] as bigint,
        stableMemorySize: a["stable_memory_size"] as bigint,
        certifiedData: Uint8Array.from(a["certified_data"] as Uint8Array),
        globalTimerNs: timer === undefined ? undefined : "active" in timer ? (timer["active"] as bigint) : 0n,
      });
      return r.ok ? ok(reply(types.ret, [{ snapshot_id: snapshotIdBytes(r.snapshot.id) }]), [r.canister]) : failed(r);
    }
    case "upload_canister_snapshot_data": {
      const c = target();
      if (isOutcome(c)) return c;
      const kind = a["kind"] as Record<string, { offset: bigint } | null>;
      if ("wasm_chunk" in kind) return rejectWith(snapshotInconsistent("The Wasm chunk store is not modelled by subnetlab: a snapshot's chunks cannot be uploaded."));
      const [name, at] = Object.entries(kind)[0] as [SnapshotDataKind, { offset: bigint }];
      const r = uploadSnapshotData(c, caller, snapshotIdText(a["snapshot_id"] as Uint8Array), name, at.offset, Uint8Array.from(a["chunk"] as Uint8Array));
      return r.ok ? ok(reply([], []), [r.canister]) : failed(r);
    }
    case "list_canister_snapshots": {
      const c = target();
      if (isOutcome(c)) return c;
      const r = lifecycle.listSnapshots(c, caller);
      if (!r.ok) return failed(r);
      return ok(reply(types.ret, [r.snapshots.map(snapshotRecord)]));
    }
    case "delete_canister_snapshot": {
      const c = target();
      if (isOutcome(c)) return c;
      return fromLifecycle(lifecycle.deleteSnapshot(c, caller, snapshotIdText(a["snapshot_id"] as Uint8Array)), (r) =>
        ok(reply([], []), [r.canister]),
      );
    }
    case "raw_rand":
      return ok(reply(types.ret, [ctx.drawRawRand()]));
    case "fetch_canister_logs":
      // The replica's text until it served replicated fetches (execution_environment.rs,
      // CanisterRejectedMessage; dfinity/ic PR #10879 serves them now, which is not modelled).
      return rejectWith({ code: ErrorCode.CanisterRejectedMessage, description: "fetch_canister_logs API is only accessible in non-replicated mode" });
  }
}

/**
 * The management canister's query methods (the replica's `QueryMethod`, served by
 * rs/execution_environment/src/query_handler/subnet_query.rs): to users as non-replicated queries
 * and, since dfinity/ic PR #10987, to composite queries of canisters on the subnet
 * (query_context.rs `handle_ic00_request`), with the same access control.
 */
export const MANAGEMENT_QUERY_METHODS: readonly string[] = ["fetch_canister_logs", "canister_status", "list_canisters", "canister_metrics"];

/** subnet_query.rs `parse_query_method`: any other method is "not found" (IC0536). */
export const managementQueryMethodNotFound = (method: string): UserError => ({
  code: ErrorCode.CanisterMethodNotFound,
  description: `Query method ${method} not found.`,
});

/** canister_logs.rs `check_log_visibility_permission` (log_visibility: controllers, the only one modelled). */
export const logsNotAllowed = (caller: string): UserError => ({
  code: ErrorCode.CanisterRejectedMessage,
  description: `Caller ${caller} is not allowed to access canister logs`,
});

export type ManagementQueryResult = { readonly ok: true; readonly data: Uint8Array } | { readonly ok: false; readonly error: UserError };

/**
 * A query to the management canister, by a user (the HTTP query endpoint with the management
 * canister as canister_id) or by a composite query (`caller` is then the calling canister), against
 * `canister`, the state the query runs on. `fetch_canister_logs` and `canister_status` are modelled;
 * `list_canisters` and `canister_metrics` are query methods of the IC that subnetlab does not model.
 */
export function managementQuery(canister: (id: CanisterId) => CanisterState | undefined, caller: PrincipalText, method: string, arg: Uint8Array): ManagementQueryResult {
  const failure = (error: UserError): ManagementQueryResult => ({ ok: false, error });
  if (!MANAGEMENT_QUERY_METHODS.includes(method)) return failure(managementQueryMethodNotFound(method));
  if (method !== "fetch_canister_logs" && method !== "canister_status") {
    return failure({ code: ErrorCode.CanisterMethodNotFound, description: `The IC's management canister has a query method '${method}'; subnetlab does not model it` });
  }
  let target: CanisterId;
  try {
    const [record] = IDL.decode([canisterOnly], arg) as unknown as [{ canister_id: Principal }];
    target = record.canister_id.toText() as CanisterId;
  } catch (e) {
    return failure(managementPayloadUndecodable(e instanceof Error ? e.message : String(e)));
  }
  // subnet_query.rs get_canister: "Canister <id> not found" (no period, no help line).
  const c = canister(target);
  if (c === undefined) return failure(canisterNotFound(target));
  if (method === "canister_status") {
    if (!c.controllers.includes(caller)) return failure(invalidController(c.id, c.controllers, caller));
    return { ok: true, data: IDL.encode([...MANAGEMENT_TYPES.canister_status.ret], [canisterStatusRecord(c)]) };
  }
  if (!c.controllers.includes(caller)) return failure(logsNotAllowed(caller));
  const records = (c.log?.records ?? []).map((r) => ({ idx: r.idx, timestamp_nanos: r.timestampNs, content: r.content }));
  return { ok: true, data: IDL.encode([...MANAGEMENT_TYPES.fetch_canister_logs.ret], [{ canister_log_records: records }]) };
}

/** A user's query to the management canister: the answer, or the error with its code. */
export function executeManagementQuery(canister: (id: CanisterId) => CanisterState | undefined, caller: PrincipalText, method: string, arg: Uint8Array): Response {
  const r = managementQuery(canister, caller, method, arg);
  return r.ok ? { kind: "reply", data: r.data } : userReject(r.error);
}

/** What canister_status answers about `c` (its ic.did record). */
function canisterStatusRecord(c: CanisterState): Record<string, unknown> {
  const e = c.execution;
  const wasmMemory = BigInt(e?.wasmMemoryPages ?? 0) * 65_536n;
  const stableMemory = (e?.stableMemoryPages ?? 0n) * 65_536n;
  const globals = BigInt((e?.globals.length ?? 0) * 8);
  const binary = BigInt(e?.wasmModule.length ?? 0);
  const snapshots = c.snapshots.reduce((s, x) => s + x.totalSizeBytes, 0n);
  return {
    status: { [c.status]: null },
    settings: {
      controllers: c.controllers.map((p) => Principal.fromText(p)),
      compute_allocation: BigInt(c.computeAllocationPercent),
      memory_allocation: 0n,
      freezing_threshold: 2_592_000n,
      reserved_cycles_limit: 5_000_000_000_000n,
      log_visibility: { controllers: null },
      wasm_memory_limit: wasmMemoryLimitOf(c),
      wasm_memory_threshold: wasmMemoryThresholdOf(c),
      environment_variables: c.environmentVariables ?? [],
    },
    module_hash: e === undefined ? [] : [hexToBytes(e.moduleHash)],
    memory_size: wasmMemory + stableMemory + globals + binary + snapshots,
    memory_metrics: {
      wasm_memory_size: wasmMemory,
      stable_memory_size: stableMemory,
      global_memory_size: globals,
      wasm_binary_size: binary,
      custom_sections_size: 0n,
      canister_history_size: 0n,
      wasm_chunk_store_size: 0n,
      snapshots_size: snapshots,
    },
    cycles: c.cyclesBalance,
    reserved_cycles: 0n,
    idle_cycles_burned_per_day: 0n,
    query_stats: {
      num_calls_total: 0n,
      num_instructions_total: 0n,
      request_payload_bytes_total: 0n,
      response_payload_bytes_total: 0n,
    },
  };
}

// --- the ingress filter for calls to aaaaa-aa -----------------------------------------------------

/** Methods a user may call on the management canister, if a controller of the canister the argument names. */
const CONTROLLER_METHODS: ReadonlySet<string> = new Set([
  "canister_status",
  "start_canister",
  "stop_canister",
  "delete_canister",
  "uninstall_code",
  "update_settings",
  "install_code",
  "take_canister_snapshot",
  "load_canister_snapshot",
  "list_canister_snapshots",
  "delete_canister_snapshot",
  "read_canister_snapshot_metadata",
  "read_canister_snapshot_data",
  "upload_canister_snapshot_metadata",
  "upload_canister_snapshot_data",
]);
/** Methods any user may call (a local subnet's provisional whitelist holds everyone, as PocketIC's does). */
const PROVISIONAL_METHODS: ReadonlySet<string> = new Set(["provisional_create_canister_with_cycles", "provisional_top_up_canister"]);

export interface ManagementIngressRefusal {
  readonly reason: "management-method-refused" | "not-controller" | "invalid-management-payload" | "canister-not-found";
  readonly rejectCode: RejectCode;
  /** ic_error_types ErrorCode of the IC's refusal. */
  readonly errorCode: string;
  readonly message: string;
}

/**
 * Whether a user's call to the management canister may enter the ingress pool, as the IC's
 * canister manager decides it (dfinity/ic rs/execution_environment canister_manager.rs
 * should_accept_ingress_message): controller methods need the canister the argument names to
 * exist and the sender to control it; the provisional methods are open to the whitelist (here:
 * everyone); fetch_canister_logs is a query only; every other method — create_canister,
 * raw_rand, and anything unknown — can only be called by canisters (a user's ingress message
 * carries no cycles to pay for it).
 */
export function managementIngressRefusal(
  method: string,
  arg: Uint8Array,
  sender: PrincipalText,
  canister: (id: CanisterId) => CanisterState | undefined,
): ManagementIngressRefusal | undefined {
  if (PROVISIONAL_METHODS.has(method)) return undefined;
  if (method === "fetch_canister_logs") {
    return { reason: "management-method-refused", rejectCode: RejectCode.CanisterReject, errorCode: "IC0406", message: "fetch_canister_logs API is not accessible via ingress in replicated mode" };
  }
  if (!CONTROLLER_METHODS.has(method)) {
    return { reason: "management-method-refused", rejectCode: RejectCode.CanisterReject, errorCode: "IC0406", message: `Only canisters can call ic00 method ${method}` };
  }
  const target = effectiveCanisterIdOf(arg);
  if (target === undefined) {
    return { reason: "invalid-management-payload", rejectCode: RejectCode.CanisterReject, errorCode: "IC0408", message: `Failed to decode payload for ic00 method: ${method} (expected a record with a canister_id)` };
  }
  const c = canister(target);
  const refuse = (reason: "canister-not-found" | "not-controller", e: UserError): ManagementIngressRefusal => ({ reason, rejectCode: rejectCodeOf(e.code), errorCode: e.code, message: e.description });
  if (c === undefined) return refuse("canister-not-found", managedCanisterNotFound(target));
  if (!c.controllers.includes(sender)) return refuse("not-controller", invalidController(target, c.controllers, sender));
  return undefined;
}

/** The canister a management call is about: its argument's `canister_id` field (the IC's effective canister id). */
export function effectiveCanisterIdOf(arg: Uint8Array): CanisterId | undefined {
  try {
    const [record] = IDL.decode([canisterOnly], arg) as unknown as [{ canister_id: Principal }];
    return record.canister_id.toText() as CanisterId;
  } catch {
    return undefined;
  }
}
