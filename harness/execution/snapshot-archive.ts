// A canister snapshot as a builder downloads it and uploads it again (issue 14 item 4): metadata
// plus module, heap and stable memory bytes, moved in slices through the management canister's
// read_canister_snapshot_* and upload_canister_snapshot_* methods — the same calls a builder's
// tooling makes against the IC. Works with anything that can call `aaaaa-aa` (ExecutionLab, the
// HTTP interface through an agent) given as a `CallManagement` function.
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { assert } from "../assert.ts";
import { MANAGEMENT_TYPES } from "./management.ts";
import { MAX_SNAPSHOT_SLICE_BYTES } from "./snapshot-transfer.ts";

/** One call to the management canister: Candid argument bytes in, reply bytes out (throws on a reject). */
export type CallManagement = (method: string, arg: Uint8Array) => Uint8Array;

/** read_canister_snapshot_metadata's record, as Candid decodes it. */
export type SnapshotMetadataRecord = {
  readonly source: Record<string, null>;
  readonly taken_at_timestamp: bigint;
  readonly wasm_module_size: bigint;
  readonly globals: readonly Record<string, unknown>[];
  readonly wasm_memory_size: bigint;
  readonly stable_memory_size: bigint;
  readonly canister_version: bigint;
  readonly certified_data: Uint8Array;
  readonly global_timer: [] | [Record<string, bigint | null>];
  readonly on_low_wasm_memory_hook_status: [] | [Record<string, null>];
};

export interface SnapshotArchive {
  readonly metadata: SnapshotMetadataRecord;
  readonly wasmModule: Uint8Array;
  readonly wasmMemory: Uint8Array;
  readonly stableMemory: Uint8Array;
}

type DataKind = "wasm_module" | "wasm_memory" | "stable_memory";

function call<T>(callManagement: CallManagement, method: keyof typeof MANAGEMENT_TYPES, arg: unknown): T {
  const types = MANAGEMENT_TYPES[method];
  assert(types.arg !== undefined, `${method} takes no argument`);
  const reply = callManagement(method, IDL.encode([types.arg], [arg]));
  return IDL.decode([...types.ret], reply)[0] as T;
}

/** Downloads a snapshot: its metadata, then each binary part in slices of at most `sliceBytes`. */
export function downloadSnapshot(callManagement: CallManagement, canisterId: string, snapshotId: Uint8Array, sliceBytes = Number(MAX_SNAPSHOT_SLICE_BYTES)): SnapshotArchive {
  const canister_id = Principal.fromText(canisterId);
  const metadata = call<SnapshotMetadataRecord>(callManagement, "read_canister_snapshot_metadata", { canister_id, snapshot_id: snapshotId });
  const read = (kind: DataKind, size: bigint): Uint8Array => {
    const out = new Uint8Array(Number(size));
    for (let offset = 0; offset < out.length; offset += sliceBytes) {
      const n = Math.min(sliceBytes, out.length - offset);
      const { chunk } = call<{ chunk: Uint8Array }>(callManagement, "read_canister_snapshot_data", {
        canister_id,
        snapshot_id: snapshotId,
        kind: { [kind]: { offset: BigInt(offset), size: BigInt(n) } },
      });
      out.set(chunk, offset);
    }
    return out;
  };
  return {
    metadata,
    wasmModule: read("wasm_module", metadata.wasm_module_size),
    wasmMemory: read("wasm_memory", metadata.wasm_memory_size),
    stableMemory: read("stable_memory", metadata.stable_memory_size),
  };
}

/** upload_canister_snapshot_metadata's argument that recreates a downloaded snapshot's metadata. */
export function uploadMetadataArgs(canisterId: string, m: SnapshotMetadataRecord, replaceSnapshot?: Uint8Array) {
  return {
    canister_id: Principal.fromText(canisterId),
    replace_snapshot: replaceSnapshot === undefined ? [] : [replaceSnapshot],
    wasm_module_size: m.wasm_module_size,
    globals: m.globals,
    wasm_memory_size: m.wasm_memory_size,
    stable_memory_size: m.stable_memory_size,
    certified_data: m.certified_data,
    global_timer: m.global_timer,
    on_low_wasm_memory_hook_status: m.on_low_wasm_memory_hook_status,
  };
}

/**
 * Uploads an archive as a new snapshot of `canisterId` and returns its id. Slices that are all
 * zero are skipped: an uploaded snapshot starts zeroed, so a large sparse stable memory costs only
 * its written pages.
 */
export function uploadSnapshot(
  callManagement: CallManagement,
  canisterId: string,
  archive: SnapshotArchive,
  options: { readonly replaceSnapshot?: Uint8Array; readonly sliceBytes?: number } = {},
): Uint8Array {
  const canister_id = Principal.fromText(canisterId);
  const sliceBytes = options.sliceBytes ?? Number(MAX_SNAPSHOT_SLICE_BYTES);
  const { snapshot_id } = call<{ snapshot_id: Uint8Array }>(callManagement, "upload_canister_snapshot_metadata", uploadMetadataArgs(canisterId, archive.metadata, options.replaceSnapshot));
  const write = (kind: DataKind, bytes: Uint8Array): void => {
    for (let offset = 0; offset < bytes.length; offset += sliceBytes) {
      const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + sliceBytes));
      if (chunk.every((b) => b === 0)) continue;
      call<undefined>(callManagement, "upload_canister_snapshot_data", { canister_id, snapshot_id, kind: { [kind]: { offset: BigInt(offset) } }, chunk });
    }
  };
  write("wasm_module", archive.wasmModule);
  write("wasm_memory", archive.wasmMemory);
  write("stable_memory", archive.stableMemory);
  return snapshot_id;
}
