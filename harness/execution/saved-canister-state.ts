// A canister's state saved out of one run and loaded into the genesis of another (issue 14 item
// 4: "start a new scenario from a saved state instead of loading dummy data"). It holds what a
// canister snapshot holds — module, heap, stable memory, globals, certified data, global timer —
// plus the canister version and where it came from. Pure functions over canister states, like
// lifecycle.ts; the file format is harness/scenario/canister-state-file.ts.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { PageMap } from "../state/page-map.ts";
import { PAGE_SIZE_BYTES } from "../state/page-map.ts";
import type { HashHex } from "../types.ts";
import type { CanisterSnapshot, CanisterState, GlobalValue, PrincipalText } from "./interfaces.ts";
import type { WasmExecutor } from "./executor.ts";
import { deleteSnapshot, loadSnapshot, type Outcome } from "./lifecycle.ts";
import { loadableExecution, MAX_SNAPSHOT_SLICE_BYTES, uploadSnapshotData, uploadSnapshotMetadata, type SnapshotDataKind } from "./snapshot-transfer.ts";

export const WASM_PAGE_BYTES = 65_536;

/** Where a saved state was taken: informative (shown, kept in the file), never applied on load. */
export interface SavedStateOrigin {
  readonly canisterId: string;
  readonly scenario: string;
  readonly seed: number;
  /** Replica name, e.g. "r0". */
  readonly replica: string;
  /** The height whose execution produced the state. */
  readonly height: number;
  /** That batch's time (the saved global timer is an absolute deadline on the same clock). */
  readonly batchTimeNs: bigint;
}

export interface SavedCanisterState {
  readonly origin: SavedStateOrigin;
  readonly wasmModule: Uint8Array;
  /** SHA-256 of wasmModule, as the IC's module_hash. */
  readonly moduleHash: HashHex;
  /** Heap, sized wasmMemoryPages × 64 KiB. */
  readonly wasmMemory: PageMap;
  readonly wasmMemoryPages: number;
  /** Stable memory, sized stableMemoryPages × 64 KiB; only non-zero pages cost anything. */
  readonly stableMemory: PageMap;
  readonly stableMemoryPages: bigint;
  readonly globals: readonly GlobalValue[];
  readonly certifiedData: Uint8Array;
  /** Absolute deadline in ns, 0 = no timer. */
  readonly globalTimerNs: bigint;
  /** The canister's version when saved (recorded only: loading a snapshot bumps the version, as on the IC). */
  readonly canisterVersion: bigint;
}

export type SavedStateResult = { readonly ok: true; readonly saved: SavedCanisterState } | { readonly ok: false; readonly reason: string };

/**
 * The state of `canister`: the fields take_canister_snapshot copies (lifecycle.takeSnapshot), read
 * from outside the canister — saving needs no controller and leaves no snapshot in the state.
 */
export function savedStateOf(canister: CanisterState, origin: SavedStateOrigin): SavedStateResult {
  const e = canister.execution;
  if (e === undefined) return { ok: false, reason: `canister ${canister.id} has no module installed at height ${origin.height} (nothing to save)` };
  return {
    ok: true,
    saved: {
      origin,
      wasmModule: e.wasmModule,
      moduleHash: e.moduleHash,
      wasmMemory: e.wasmMemory,
      wasmMemoryPages: e.wasmMemoryPages,
      stableMemory: e.stableMemory,
      stableMemoryPages: e.stableMemoryPages,
      globals: e.globals,
      certifiedData: canister.certifiedData,
      globalTimerNs: canister.globalTimerNs,
      canisterVersion: canister.version,
    },
  };
}

export function moduleHashOf(wasm: Uint8Array): HashHex {
  return bytesToHex(sha256(wasm)) as HashHex;
}

/** The most whole 4 KiB pages one upload slice carries (a slice is at most MAX_SNAPSHOT_SLICE_BYTES). */
const PAGES_PER_SLICE = Math.floor(Number(MAX_SNAPSHOT_SLICE_BYTES) / PAGE_SIZE_BYTES);

/** [first page, page count] of the runs of consecutive non-zero pages, each at most `maxPages` long. */
export function nonZeroPageRuns(memory: PageMap, maxPages = PAGES_PER_SLICE): [number, number][] {
  const runs: [number, number][] = [];
  for (const index of memory.nonZeroPageIndices()) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0] + last[1] === index && last[1] < maxPages) last[1]++;
    else runs.push([index, 1]);
  }
  return runs;
}

/**
 * Loads a saved state into `canister` (at genesis: a fresh, empty canister) through the steps a
 * builder takes with the management canister — upload_canister_snapshot_metadata, then
 * upload_canister_snapshot_data for the module and every run of non-zero memory pages, then
 * load_canister_snapshot (which checks the module and its globals), then delete_canister_snapshot
 * so that no snapshot is left behind. The same pure functions the management canister applies,
 * without the Candid round trip; all-zero pages are skipped as an uploaded snapshot starts zeroed.
 */
export function loadSavedState(canister: CanisterState, controller: PrincipalText, saved: SavedCanisterState, executor: WasmExecutor, nowNs: bigint): Outcome<{ canister: CanisterState }> {
  const created = uploadSnapshotMetadata(canister, controller, nowNs, undefined, {
    wasmModuleSize: BigInt(saved.wasmModule.length),
    globals: saved.globals,
    wasmMemorySize: BigInt(saved.wasmMemoryPages) * BigInt(WASM_PAGE_BYTES),
    stableMemorySize: saved.stableMemoryPages * BigInt(WASM_PAGE_BYTES),
    certifiedData: saved.certifiedData,
    globalTimerNs: saved.globalTimerNs,
  });
  if (!created.ok) return created;
  const snapshotId = created.snapshot.id;
  let current = created.canister;
  const upload = (kind: SnapshotDataKind, offset: number, chunk: Uint8Array): Outcome<object> => {
    const r = uploadSnapshotData(current, controller, snapshotId, kind, BigInt(offset), chunk);
    if (r.ok) current = r.canister;
    return r;
  };
  const sliceBytes = Number(MAX_SNAPSHOT_SLICE_BYTES);
  for (let offset = 0; offset < saved.wasmModule.length; offset += sliceBytes) {
    const r = upload("wasm_module", offset, saved.wasmModule.subarray(offset, offset + sliceBytes));
    if (!r.ok) return r;
  }
  for (const [kind, memory] of [["wasm_memory", saved.wasmMemory], ["stable_memory", saved.stableMemory]] as const) {
    for (const [first, count] of nonZeroPageRuns(memory)) {
      const r = upload(kind, first * PAGE_SIZE_BYTES, memory.readBytes(first * PAGE_SIZE_BYTES, count * PAGE_SIZE_BYTES));
      if (!r.ok) return r;
    }
  }
  const snapshot = current.snapshots.find((s) => s.id === snapshotId);
  assert(snapshot !== undefined, `the uploaded snapshot ${snapshotId} vanished`);
  const loadable = loadableExecution(snapshot, executor);
  if (!loadable.ok) return loadable;
  const loaded = loadSnapshot(current, controller, snapshotId, loadable.execution);
  if (!loaded.ok) return loaded;
  return deleteSnapshot(loaded.canister, controller, snapshotId);
}

/**
 * Why load_canister_snapshot would refuse the saved state (its module is not a valid canister
 * module, or its globals do not fit the module), or undefined when it would load. Lets the
 * scenario layer refuse a bad file with a clear message before any replica loads it.
 */
export function savedStateLoadProblem(saved: SavedCanisterState, executor: WasmExecutor): string | undefined {
  const probe: CanisterSnapshot = {
    id: `${saved.origin.canisterId}-probe`,
    takenAtNs: 0n,
    execution: { moduleHash: saved.moduleHash, wasmModule: saved.wasmModule, wasmMemory: saved.wasmMemory, wasmMemoryPages: saved.wasmMemoryPages, stableMemory: saved.stableMemory, stableMemoryPages: saved.stableMemoryPages, globals: saved.globals, exports: [] },
    certifiedData: saved.certifiedData,
    globalTimerNs: saved.globalTimerNs,
    totalSizeBytes: 0n,
    upload: { timerGiven: true },
  };
  const loadable = loadableExecution(probe, executor);
  return loadable.ok ? undefined : loadable.message;
}
