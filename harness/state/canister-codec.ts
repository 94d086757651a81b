// Canonical encoding of a canister's state and the per-canister state hash.
//
// A canister is split, like the IC's checkpoint layout (research/ic-protocol.md §5.4), into
//   - its system state ("canister.bin"): everything except module bytes and memory contents,
//     in a fixed field order (this file);
//   - its memories: page maps, referenced by role ("vmemory_0", "stable_memory", and the same per
//     snapshot), each hashed incrementally by PageMap;
//   - its module bytes, referenced by module hash.
// The canister hash combines the system-state bytes with the memory hashes, so after a message
// only the written pages (and the small system state) are hashed again. Hashes are memoised per
// CanisterState object (states are immutable values).
import { assert } from "../assert.ts";
import type {
  CallContext,
  CallOrigin,
  Callback,
  CanisterLog,
  CanisterLogRecord,
  CanisterSnapshot,
  CanisterState,
  EnvironmentVariable,
  ExecutionState,
  GlobalValue,
  WasmClosure,
} from "../execution/interfaces.ts";
import type { CallbackId, CallContextId, CanisterId, PrincipalText } from "../execution/interfaces.ts";
import type { HashHex } from "../types.ts";
import { ByteReader, ByteWriter, sha256HexOf } from "./encoding.ts";
import type { PageMap } from "./page-map.ts";

/** A memory of a canister, named as in the checkpoint file layout. */
export interface MemoryRef {
  /** `vmemory_0`, `stable_memory`, `snapshots/<id>/vmemory_0`, `snapshots/<id>/stable_memory`. */
  readonly role: string;
  readonly pageMap: PageMap;
}

/** The module bytes a canister references (its own and its snapshots'), by module hash. */
export interface ModuleRef {
  readonly moduleHash: HashHex;
  readonly bytes: Uint8Array;
}

const GLOBAL_TYPES = ["i32", "i64", "f32", "f64"] as const;
const STATUSES = ["running", "stopping", "stopped"] as const;
const SYSTEM_TASKS = ["heartbeat", "global-timer", "on-low-wasm-memory"] as const;
/** The low-memory hook's status in the v4 encoding (undefined: condition_not_satisfied). */
const HOOK_STATUSES = [undefined, "ready", "executed"] as const;

function hasMemorySettings(c: CanisterState): boolean {
  return (
    c.wasmMemoryLimitBytes !== undefined ||
    c.wasmMemoryThresholdBytes !== undefined ||
    c.lowWasmMemoryHook !== undefined ||
    c.snapshots.some((s) => s.lowWasmMemoryHook !== undefined)
  );
}

/** A presence flag and a u64 that is 0 when absent (only that form is canonical). */
function readOptionalU64(r: ByteReader): bigint | undefined {
  const present = r.bool();
  const value = r.u64();
  assert(present || value === 0n, "an absent setting is encoded as 0");
  return present ? value : undefined;
}

function readHookStatus(r: ByteReader): "ready" | "executed" | undefined {
  const tag = r.u8();
  assert(tag < HOOK_STATUSES.length, `invalid low-memory hook status tag ${tag}`);
  return HOOK_STATUSES[tag];
}

export function canisterMemories(c: CanisterState): MemoryRef[] {
  const out: MemoryRef[] = [];
  if (c.execution !== undefined) {
    out.push({ role: "vmemory_0", pageMap: c.execution.wasmMemory });
    out.push({ role: "stable_memory", pageMap: c.execution.stableMemory });
  }
  for (const s of c.snapshots) {
    out.push({ role: `snapshots/${s.id}/vmemory_0`, pageMap: s.execution.wasmMemory });
    out.push({ role: `snapshots/${s.id}/stable_memory`, pageMap: s.execution.stableMemory });
  }
  return out;
}

export function canisterModules(c: CanisterState): ModuleRef[] {
  const byHash = new Map<string, ModuleRef>();
  const add = (e: ExecutionState): void => {
    byHash.set(e.moduleHash, { moduleHash: e.moduleHash, bytes: e.wasmModule });
  };
  if (c.execution !== undefined) add(c.execution);
  for (const s of c.snapshots) add(s.execution);
  return [...byHash.values()].sort((a, b) => (a.moduleHash < b.moduleHash ? -1 : a.moduleHash > b.moduleHash ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Encoding

function writeExecution(w: ByteWriter, e: ExecutionState): void {
  w.str(e.moduleHash);
  w.u32(e.wasmMemoryPages);
  w.u64(e.stableMemoryPages);
  w.u64(e.wasmMemory.sizeBytes);
  w.u64(e.stableMemory.sizeBytes);
  w.u32(e.globals.length);
  for (const g of e.globals) w.u8(GLOBAL_TYPES.indexOf(g.type)).u64(g.bits);
  w.u32(e.exports.length);
  for (const x of e.exports) w.str(x);
}

function writeOrigin(w: ByteWriter, o: CallOrigin): void {
  switch (o.kind) {
    case "ingress":
      w.u8(0).str(o.messageId).str(o.caller);
      return;
    case "canister":
      // A best-effort call's context (tag 4) also keeps the call's deadline.
      w.u8(o.deadlineNs === undefined ? 1 : 4).str(o.caller).u64(o.callbackId);
      if (o.deadlineNs !== undefined) w.u64(o.deadlineNs);
      return;
    case "query":
      w.u8(2).str(o.caller);
      return;
    case "system":
      w.u8(3).u8(SYSTEM_TASKS.indexOf(o.task));
      return;
  }
}

function writeClosure(w: ByteWriter, c: WasmClosure): void {
  w.u32(c.fun).u64(c.env);
}

/** A snapshot's source byte in the v3 encoding. */
const SNAPSHOT_TAKEN = 0;
const SNAPSHOT_UPLOADED = 1;
const SNAPSHOT_UPLOADED_WITH_TIMER = 2;

/** The system state of a canister: all fields except module bytes and memory contents. */
export function encodeCanisterSystemState(c: CanisterState): Uint8Array {
  const w = new ByteWriter();
  // A canister with environment variables is encoded as v2 (v1 + a log flag + the variables), so
  // every canister without them keeps its v1 encoding and hash; one holding a snapshot created by
  // metadata upload as v3 (v2 + a source byte per snapshot).
  // One with a best-effort callback or low-memory hook state as v4 (v3 + a deadline and an expiry
  // flag per callback, a hook status per snapshot, and wasm_memory_limit, wasm_memory_threshold
  // and the hook status at the end).
  const env = c.environmentVariables ?? [];
  const bestEffort = c.callbacks.some((cb) => cb.deadlineNs !== undefined) || hasMemorySettings(c);
  const uploads = bestEffort || c.snapshots.some((s) => s.upload !== undefined);
  const extended = uploads || env.length > 0;
  w.domain(bestEffort ? "subnetlab-canister-v4" : uploads ? "subnetlab-canister-v3" : env.length > 0 ? "subnetlab-canister-v2" : "subnetlab-canister-v1");
  w.str(c.id);
  w.u32(c.controllers.length);
  for (const p of c.controllers) w.str(p);
  w.u8(STATUSES.indexOf(c.status));
  w.nat(c.cyclesBalance);
  w.u8(c.computeAllocationPercent);
  w.bytes(c.certifiedData);
  w.u64(c.globalTimerNs);
  w.u64(c.version);
  w.bool(c.execution !== undefined);
  if (c.execution !== undefined) writeExecution(w, c.execution);
  w.u32(c.callContexts.length);
  for (const cc of c.callContexts) {
    w.u64(cc.id);
    writeOrigin(w, cc.origin);
    w.bool(cc.responded);
    w.nat(cc.availableCycles);
  }
  w.u32(c.callbacks.length);
  for (const cb of c.callbacks) {
    w.u64(cb.id).u64(cb.callContextId).str(cb.callee);
    writeClosure(w, cb.onReply);
    writeClosure(w, cb.onReject);
    w.bool(cb.onCleanup !== undefined);
    if (cb.onCleanup !== undefined) writeClosure(w, cb.onCleanup);
    w.nat(cb.cyclesSent);
    // Deadlines are whole seconds after the epoch, never 0: 0 stands for a guaranteed response.
    if (bestEffort) w.u64(cb.deadlineNs ?? 0n).bool(cb.expired === true);
  }
  w.u64(c.nextCallContextId);
  w.u64(c.nextCallbackId);
  w.u32(c.snapshots.length);
  for (const s of c.snapshots) {
    w.str(s.id).u64(s.takenAtNs);
    writeExecution(w, s.execution);
    w.bytes(s.certifiedData).u64(s.globalTimerNs).u64(s.totalSizeBytes);
    if (uploads) w.u8(s.upload === undefined ? SNAPSHOT_TAKEN : s.upload.timerGiven ? SNAPSHOT_UPLOADED_WITH_TIMER : SNAPSHOT_UPLOADED);
    if (bestEffort) w.u8(HOOK_STATUSES.indexOf(s.lowWasmMemoryHook));
  }
  // The log comes last and only once there is one, so a canister that never logged keeps the
  // encoding (and hash) it had before logs existed.
  if (extended) w.bool(c.log !== undefined);
  if (c.log !== undefined) {
    w.u64(c.log.nextIdx).u32(c.log.records.length);
    for (const r of c.log.records) w.u64(r.idx).u64(r.timestampNs).bytes(r.content);
  }
  if (extended) {
    w.u32(env.length);
    for (const v of env) w.str(v.name).str(v.value);
  }
  // Each memory setting as a presence flag and its value (0 when absent): a set value may be 0.
  if (bestEffort) w.bool(c.wasmMemoryLimitBytes !== undefined).u64(c.wasmMemoryLimitBytes ?? 0n).bool(c.wasmMemoryThresholdBytes !== undefined).u64(c.wasmMemoryThresholdBytes ?? 0n).u8(HOOK_STATUSES.indexOf(c.lowWasmMemoryHook));
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding (checkpoint load)

export interface DecodeResolvers {
  /** The page map of `role` (see MemoryRef), of the given size. */
  memory(role: string, sizeBytes: number): PageMap;
  /** The module bytes with this hash. */
  module(moduleHash: HashHex): Uint8Array;
}

function readExecution(r: ByteReader, prefix: string, resolve: DecodeResolvers): ExecutionState {
  const moduleHash = r.str() as HashHex;
  const wasmMemoryPages = r.u32();
  const stableMemoryPages = r.u64();
  const wasmSize = Number(r.u64());
  const stableSize = Number(r.u64());
  const globals: GlobalValue[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const type = GLOBAL_TYPES[r.u8()];
    assert(type !== undefined, "invalid global type tag");
    globals.push({ type, bits: r.u64() });
  }
  const exports: string[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) exports.push(r.str());
  return {
    moduleHash,
    wasmModule: resolve.module(moduleHash),
    wasmMemory: resolve.memory(`${prefix}vmemory_0`, wasmSize),
    wasmMemoryPages,
    stableMemory: resolve.memory(`${prefix}stable_memory`, stableSize),
    stableMemoryPages,
    globals,
    exports,
  };
}

function readOrigin(r: ByteReader): CallOrigin {
  const tag = r.u8();
  switch (tag) {
    case 0:
      return { kind: "ingress", messageId: r.str(), caller: r.str() as PrincipalText };
    case 1:
      return { kind: "canister", caller: r.str() as CanisterId, callbackId: r.u64() as CallbackId };
    case 4:
      return { kind: "canister", caller: r.str() as CanisterId, callbackId: r.u64() as CallbackId, deadlineNs: r.u64() };
    case 2:
      return { kind: "query", caller: r.str() as PrincipalText };
    case 3: {
      const task = SYSTEM_TASKS[r.u8()];
      assert(task !== undefined, "invalid system task tag");
      return { kind: "system", task };
    }
    default:
      throw new Error(`invalid call origin tag ${tag}`);
  }
}

function readClosure(r: ByteReader): WasmClosure {
  return { fun: r.u32(), env: r.u64() };
}

const CANISTER_ENCODINGS = ["subnetlab-canister-v1", "subnetlab-canister-v2", "subnetlab-canister-v3", "subnetlab-canister-v4"];

export function decodeCanisterSystemState(bytes: Uint8Array, resolve: DecodeResolvers): CanisterState {
  const r = new ByteReader(bytes);
  const domain = new TextDecoder().decode(r.raw(r.u8()));
  const encoding = CANISTER_ENCODINGS.indexOf(domain) + 1;
  assert(encoding > 0, `unknown canister encoding ${domain}`);
  const hasEnv = encoding >= 2;
  const hasSnapshotSource = encoding >= 3;
  const hasDeadlines = encoding >= 4;
  const id = r.str() as CanisterId;
  const controllers: PrincipalText[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) controllers.push(r.str() as PrincipalText);
  const status = STATUSES[r.u8()];
  assert(status !== undefined, "invalid status tag");
  const cyclesBalance = r.nat();
  const computeAllocationPercent = r.u8();
  const certifiedData = r.bytes();
  const globalTimerNs = r.u64();
  const version = r.u64();
  const execution = r.bool() ? readExecution(r, "", resolve) : undefined;
  const callContexts: CallContext[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    callContexts.push({ id: r.u64() as CallContextId, origin: readOrigin(r), responded: r.bool(), availableCycles: r.nat() });
  }
  const callbacks: Callback[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const cbId = r.u64() as CallbackId;
    const callContextId = r.u64() as CallContextId;
    const callee = r.str() as CanisterId;
    const onReply = readClosure(r);
    const onReject = readClosure(r);
    const onCleanup = r.bool() ? readClosure(r) : undefined;
    const cyclesSent = r.nat();
    const deadlineNs = hasDeadlines ? r.u64() : 0n;
    const expired = hasDeadlines && r.bool();
    callbacks.push({
      id: cbId,
      callContextId,
      callee,
      onReply,
      onReject,
      onCleanup,
      cyclesSent,
      ...(deadlineNs === 0n ? {} : { deadlineNs }),
      ...(expired ? { expired: true as const } : {}),
    });
  }
  const nextCallContextId = r.u64();
  const nextCallbackId = r.u64();
  const snapshots: CanisterSnapshot[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const snapId = r.str();
    const takenAtNs = r.u64();
    const snapExecution = readExecution(r, `snapshots/${snapId}/`, resolve);
    const body = { id: snapId, takenAtNs, execution: snapExecution, certifiedData: r.bytes(), globalTimerNs: r.u64(), totalSizeBytes: r.u64() };
    const source = hasSnapshotSource ? r.u8() : SNAPSHOT_TAKEN;
    assert(source <= SNAPSHOT_UPLOADED_WITH_TIMER, `invalid snapshot source tag ${source}`);
    const hook = hasDeadlines ? readHookStatus(r) : undefined;
    const withHook = hook === undefined ? body : { ...body, lowWasmMemoryHook: hook };
    snapshots.push(source === SNAPSHOT_TAKEN ? withHook : { ...withHook, upload: { timerGiven: source === SNAPSHOT_UPLOADED_WITH_TIMER } });
  }
  const log = (hasEnv ? r.bool() : !r.done()) ? readLog(r) : undefined;
  const environmentVariables: EnvironmentVariable[] = [];
  if (hasEnv) for (let n = r.u32(), i = 0; i < n; i++) environmentVariables.push({ name: r.str(), value: r.str() });
  let memory: Pick<CanisterState, "wasmMemoryLimitBytes" | "wasmMemoryThresholdBytes" | "lowWasmMemoryHook"> = {};
  if (hasDeadlines) {
    const limit = readOptionalU64(r);
    const threshold = readOptionalU64(r);
    const hook = readHookStatus(r);
    memory = {
      ...(limit === undefined ? {} : { wasmMemoryLimitBytes: limit }),
      ...(threshold === undefined ? {} : { wasmMemoryThresholdBytes: threshold }),
      ...(hook === undefined ? {} : { lowWasmMemoryHook: hook }),
    };
  }
  r.expectDone("canister state");
  return {
    id,
    controllers,
    status,
    cyclesBalance,
    computeAllocationPercent,
    certifiedData,
    globalTimerNs,
    version,
    execution,
    callContexts,
    callbacks,
    nextCallContextId,
    nextCallbackId,
    snapshots,
    ...(log === undefined ? {} : { log }),
    ...(environmentVariables.length === 0 ? {} : { environmentVariables }),
    ...memory,
  };
}

function readLog(r: ByteReader): CanisterLog {
  const nextIdx = r.u64();
  const records: CanisterLogRecord[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) records.push({ idx: r.u64(), timestampNs: r.u64(), content: r.bytes() });
  return { records, nextIdx };
}

// ---------------------------------------------------------------------------------------------
// Per-canister state hash

const canisterHashCache = new WeakMap<CanisterState, HashHex>();

/**
 * Hex SHA-256 over (system state bytes, each memory's role and PageMap hash in order). Incremental:
 * PageMap hashes are maintained over dirty pages and memoised; the result is memoised per object.
 */
export function canisterStateHash(c: CanisterState): HashHex {
  const cached = canisterHashCache.get(c);
  if (cached !== undefined) return cached;
  const w = new ByteWriter();
  w.domain("subnetlab-canister-hash");
  w.bytes(encodeCanisterSystemState(c));
  const memories = canisterMemories(c);
  w.u32(memories.length);
  for (const m of memories) w.str(m.role).str(m.pageMap.hash());
  const h = sha256HexOf(w.finish()) as HashHex;
  canisterHashCache.set(c, h);
  return h;
}
