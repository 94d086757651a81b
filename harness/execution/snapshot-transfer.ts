// Canister snapshots downloaded and uploaded through the management canister (IC interface spec,
// "IC method read_canister_snapshot_metadata / read_canister_snapshot_data /
// upload_canister_snapshot_metadata / upload_canister_snapshot_data"): a builder backs a canister
// up by reading a snapshot's metadata and then its module, heap and stable memory in slices, and
// restores or forks it by uploading the same to a snapshot of any canister they control and
// loading that snapshot. Pure functions over canister states, like lifecycle.ts.
//
// Modelling choices: readers must be controllers (the `snapshot_visibility` setting is not
// modelled); the Wasm chunk store is not modelled (metadata lists no chunks, chunk uploads are
// refused); the `on_low_wasm_memory` hook status is the canister's when the snapshot was taken, and
// absent for an uploaded snapshot (an uploaded status is not checked or kept); for a snapshot taken from
// the canister, `canister_version` is the canister's version when the metadata is read.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { PageMap } from "../state/page-map.ts";
import type { HashHex } from "../types.ts";
import { type RejectCode, type CanisterSnapshot, type CanisterState, type ExecutionState, type GlobalValue, type PrincipalText } from "./interfaces.ts";
import { addSnapshot, failWith, notController, snapshotSize, type Outcome } from "./lifecycle.ts";
import type { WasmExecutor } from "./executor.ts";
import { InvalidModuleError } from "./invalid-module.ts";
import type { LowWasmMemoryHookStatus } from "./low-wasm-memory.ts";
import { rejectCodeOf, snapshotImmutable, snapshotInconsistent, snapshotNotFound, snapshotSliceInvalid, snapshotSliceTooLarge, type ErrorCode } from "./reject-codes.ts";

/** The most bytes one read_canister_snapshot_data answers (canister_manager MAX_SLICE_SIZE_BYTES). */
export const MAX_SNAPSHOT_SLICE_BYTES = 2_000_000n;
const WASM_PAGE_BYTES = 65_536n;
const OS_PAGE_BYTES = 4096;

/** The binary parts of a snapshot that can be read and uploaded in slices. */
export type SnapshotDataKind = "wasm_module" | "wasm_memory" | "stable_memory";

/** read_canister_snapshot_metadata's answer, and what upload_canister_snapshot_metadata takes. */
export interface SnapshotMetadata {
  readonly source: "taken_from_canister" | "metadata_upload";
  readonly takenAtNs: bigint;
  readonly wasmModuleSize: bigint;
  readonly globals: readonly GlobalValue[];
  readonly wasmMemorySize: bigint;
  readonly stableMemorySize: bigint;
  readonly canisterVersion: bigint;
  readonly certifiedData: Uint8Array;
  /** The global timer's deadline (0: inactive); undefined when an upload did not give it. */
  readonly globalTimerNs: bigint | undefined;
  /** The low-memory hook's status when the snapshot was taken; undefined for an uploaded snapshot (not modelled). */
  readonly lowWasmMemoryHook: LowWasmMemoryHookStatus | undefined;
}

function findSnapshot(canister: CanisterState, snapshotId: string): CanisterSnapshot | undefined {
  return canister.snapshots.find((s) => s.id === snapshotId);
}

export function readSnapshotMetadata(canister: CanisterState, sender: PrincipalText, snapshotId: string): Outcome<{ metadata: SnapshotMetadata }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  const s = findSnapshot(canister, snapshotId);
  if (s === undefined) return failWith(snapshotNotFound(canister.id, snapshotId));
  const e = s.execution;
  return {
    ok: true,
    metadata: {
      source: s.upload === undefined ? "taken_from_canister" : "metadata_upload",
      takenAtNs: s.takenAtNs,
      wasmModuleSize: BigInt(e.wasmModule.length),
      globals: e.globals,
      wasmMemorySize: BigInt(e.wasmMemoryPages) * WASM_PAGE_BYTES,
      stableMemorySize: e.stableMemoryPages * WASM_PAGE_BYTES,
      canisterVersion: canister.version,
      certifiedData: s.certifiedData,
      globalTimerNs: s.upload?.timerGiven === false ? undefined : s.globalTimerNs,
      lowWasmMemoryHook: s.upload === undefined ? (s.lowWasmMemoryHook ?? "condition_not_satisfied") : undefined,
    },
  };
}

function sizeOf(e: ExecutionState, kind: SnapshotDataKind): bigint {
  switch (kind) {
    case "wasm_module":
      return BigInt(e.wasmModule.length);
    case "wasm_memory":
      return BigInt(e.wasmMemoryPages) * WASM_PAGE_BYTES;
    case "stable_memory":
      return e.stableMemoryPages * WASM_PAGE_BYTES;
  }
}

export function readSnapshotData(
  canister: CanisterState,
  sender: PrincipalText,
  snapshotId: string,
  kind: SnapshotDataKind,
  offset: bigint,
  size: bigint,
): Outcome<{ chunk: Uint8Array }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  const s = findSnapshot(canister, snapshotId);
  if (s === undefined) return failWith(snapshotNotFound(canister.id, snapshotId));
  if (size > MAX_SNAPSHOT_SLICE_BYTES) return failWith(snapshotSliceTooLarge(size, MAX_SNAPSHOT_SLICE_BYTES));
  if (offset + size > sizeOf(s.execution, kind)) return failWith(snapshotSliceInvalid(offset, size));
  const start = Number(offset);
  const length = Number(size);
  switch (kind) {
    case "wasm_module":
      return { ok: true, chunk: s.execution.wasmModule.slice(start, start + length) };
    case "wasm_memory":
      return { ok: true, chunk: s.execution.wasmMemory.readBytes(start, length) };
    case "stable_memory":
      return { ok: true, chunk: s.execution.stableMemory.readBytes(start, length) };
  }
}

/** What upload_canister_snapshot_metadata takes (its `replace_snapshot` aside). */
export type UploadedMetadata = Omit<SnapshotMetadata, "source" | "takenAtNs" | "canisterVersion" | "lowWasmMemoryHook">;

/**
 * A new snapshot of `canister` from uploaded metadata: a module of the given size (zeros), memories
 * of the given sizes (zero pages), globals, certified data and timer as given. Its data is then
 * uploaded in slices; `load_canister_snapshot` checks it is a consistent canister.
 */
export function uploadSnapshotMetadata(
  canister: CanisterState,
  sender: PrincipalText,
  nowNs: bigint,
  replaceSnapshot: string | undefined,
  m: UploadedMetadata,
): Outcome<{ canister: CanisterState; snapshot: CanisterSnapshot }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  for (const [what, bytes] of [["wasm_memory_size", m.wasmMemorySize], ["stable_memory_size", m.stableMemorySize]] as const) {
    if (bytes % WASM_PAGE_BYTES !== 0n) return failWith(snapshotInconsistent(`The ${what} ${bytes} is not a multiple of the Wasm page size (65536 bytes).`));
  }
  if (m.certifiedData.length > 32) return failWith(snapshotInconsistent(`The certified data is ${m.certifiedData.length} bytes long; at most 32 bytes are allowed.`));
  const wasmModule = new Uint8Array(Number(m.wasmModuleSize));
  const execution: ExecutionState = {
    moduleHash: moduleHashOf(wasmModule),
    wasmModule,
    wasmMemory: PageMap.empty().resized(Number(m.wasmMemorySize)),
    wasmMemoryPages: Number(m.wasmMemorySize / WASM_PAGE_BYTES),
    stableMemory: PageMap.empty().resized(Number(m.stableMemorySize)),
    stableMemoryPages: m.stableMemorySize / WASM_PAGE_BYTES,
    globals: m.globals,
    exports: [],
  };
  const body = { execution, certifiedData: m.certifiedData, globalTimerNs: m.globalTimerNs ?? 0n };
  return addSnapshot(canister, replaceSnapshot, (id) => ({
    id,
    takenAtNs: nowNs,
    ...body,
    totalSizeBytes: snapshotSize(body),
    upload: { timerGiven: m.globalTimerNs !== undefined },
  }));
}

/** One slice of a module or memory uploaded to a snapshot created by metadata upload. */
export function uploadSnapshotData(
  canister: CanisterState,
  sender: PrincipalText,
  snapshotId: string,
  kind: SnapshotDataKind,
  offset: bigint,
  chunk: Uint8Array,
): Outcome<{ canister: CanisterState }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  const s = findSnapshot(canister, snapshotId);
  if (s === undefined) return failWith(snapshotNotFound(canister.id, snapshotId));
  if (s.upload === undefined) return failWith(snapshotImmutable());
  const size = BigInt(chunk.length);
  if (offset + size > sizeOf(s.execution, kind)) return failWith(snapshotSliceInvalid(offset, size));
  const execution = withChunk(s.execution, kind, Number(offset), chunk);
  const updated: CanisterSnapshot = { ...s, execution };
  return { ok: true, canister: { ...canister, snapshots: canister.snapshots.map((x) => (x.id === snapshotId ? updated : x)) } };
}

function withChunk(e: ExecutionState, kind: SnapshotDataKind, offset: number, chunk: Uint8Array): ExecutionState {
  switch (kind) {
    case "wasm_module": {
      const wasmModule = e.wasmModule.slice();
      wasmModule.set(chunk, offset);
      return { ...e, wasmModule, moduleHash: moduleHashOf(wasmModule) };
    }
    case "wasm_memory":
      return { ...e, wasmMemory: writeBytes(e.wasmMemory, offset, chunk) };
    case "stable_memory":
      return { ...e, stableMemory: writeBytes(e.stableMemory, offset, chunk) };
  }
}

/** The page map with `bytes` written at `offset` (whole pages copied, the rest kept). */
function writeBytes(map: PageMap, offset: number, bytes: Uint8Array): PageMap {
  const pages = new Map<number, Uint8Array>();
  for (let at = 0; at < bytes.length; ) {
    const index = Math.floor((offset + at) / OS_PAGE_BYTES);
    const within = (offset + at) % OS_PAGE_BYTES;
    const n = Math.min(OS_PAGE_BYTES - within, bytes.length - at);
    const page = map.readPage(index).slice();
    page.set(bytes.subarray(at, at + n), within);
    pages.set(index, page);
    at += n;
  }
  return map.withOwnedPages(pages);
}

function moduleHashOf(bytes: Uint8Array): HashHex {
  return bytesToHex(sha256(bytes)) as HashHex;
}

/** What loading an uploaded snapshot needs to know about its module. */
interface ModuleFacts {
  readonly exports: readonly string[];
  readonly mutableGlobals: readonly { readonly type: GlobalValue["type"] }[];
}

/** A snapshot's module as load_canister_snapshot needs it, or why it is not a valid module. */
function describeModule(executor: WasmExecutor, wasm: Uint8Array): ModuleFacts | { readonly invalid: string } {
  try {
    const module = executor.modules.get(wasm);
    return { exports: module.exports.filter((e) => e.startsWith("canister_")), mutableGlobals: module.mutableGlobals };
  } catch (e) {
    if (e instanceof InvalidModuleError) return { invalid: e.message };
    throw e;
  }
}


/**
 * The execution state an uploaded snapshot loads as: its module must be a valid canister module
 * (`describe` instruments it, or says why not) whose mutable globals match the uploaded ones.
 * A snapshot taken from a canister loads as it is.
 */
export function loadableExecution(
  snapshot: CanisterSnapshot,
  executor: WasmExecutor,
): { readonly ok: true; readonly execution: ExecutionState } | { readonly ok: false; readonly code: RejectCode; readonly message: string; readonly errorCode: ErrorCode } {
  if (snapshot.upload === undefined) return { ok: true, execution: snapshot.execution };
  const e = snapshot.execution;
  const inconsistent = (message: string) => {
    const error = snapshotInconsistent(message);
    return { ok: false as const, code: rejectCodeOf(error.code), message: error.description, errorCode: error.code };
  };
  const facts = describeModule(executor, e.wasmModule);
  if ("invalid" in facts) return inconsistent(`The uploaded snapshot ${snapshot.id} has an invalid Wasm module: ${facts.invalid}`);
  const expected = facts.mutableGlobals.map((g) => g.type).join(",");
  const given = e.globals.map((g) => g.type).join(",");
  if (expected !== given) return inconsistent(`The uploaded snapshot ${snapshot.id} has globals [${given}], but its module declares [${expected}].`);
  return { ok: true, execution: { ...e, exports: facts.exports } };
}
