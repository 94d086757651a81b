// State manifest: a file table and a chunk table over the checkpointed state, with a root hash
// that names the whole state (research/ic-protocol.md §5.4, following the IC's manifest v1 shape:
// files sorted by path, chunks of at most 1 MiB, domain-separated SHA-256 with big-endian ints).
//
//   chunk hash    = H(ds("ic-state-chunk") · bytes)
//   file hash     = H(ds("ic-state-file") · u32 #chunks · per chunk (u32 size · u64 offset · hash))
//   manifest root = H(ds("ic-state-manifest") · u32 version · u32 #files ·
//                     per file (u32 len · path · u64 size · hash) · u32 #chunks ·
//                     per chunk (u32 file index · u32 size · u64 offset · hash))
//
// Chunk hashes of memory files are memoised on the page map's immutable 1 MiB subtrees, so a
// manifest after k dirty pages rehashes at most k chunks (the IC likewise reuses the previous
// manifest for unchanged chunks).
import { assert } from "../assert.ts";
import type { CanisterState } from "../execution/interfaces.ts";
import { canisterMemories, encodeCanisterSystemState } from "./canister-codec.ts";
import { ByteWriter, sha256Bytes } from "./encoding.ts";
import { PAGE_SIZE_BYTES, type PageMap } from "./page-map.ts";

export const MANIFEST_VERSION = 1;
export const CHUNK_SIZE_BYTES = 1 << 20;
const CHUNK_LEVEL = Math.log2(CHUNK_SIZE_BYTES / PAGE_SIZE_BYTES); // 256 pages per chunk

export interface ManifestFile {
  readonly path: string;
  readonly sizeBytes: number;
  readonly hash: string;
}
export interface ManifestChunk {
  readonly fileIndex: number;
  readonly offset: number;
  readonly sizeBytes: number;
  readonly hash: string;
}
export interface Manifest {
  readonly version: number;
  readonly files: readonly ManifestFile[];
  readonly chunks: readonly ManifestChunk[];
  readonly rootHash: string;
}

/** A file of the checkpoint layout: plain bytes or a memory. */
export type StateFile =
  | { readonly path: string; readonly bytes: Uint8Array }
  | { readonly path: string; readonly pageMap: PageMap };

/** The checkpoint file layout of a subnet state (paths as in the IC's `canister_states/<id>/…`). */
export function stateFiles(canisters: readonly CanisterState[], metadata: Uint8Array): StateFile[] {
  const files: StateFile[] = [{ path: "system_metadata.bin", bytes: metadata }];
  for (const c of canisters) {
    const dir = `canister_states/${c.id}`;
    files.push({ path: `${dir}/canister.bin`, bytes: encodeCanisterSystemState(c) });
    if (c.execution !== undefined) files.push({ path: `${dir}/software.wasm`, bytes: c.execution.wasmModule });
    for (const s of c.snapshots) files.push({ path: `${dir}/snapshots/${s.id}/software.wasm`, bytes: s.execution.wasmModule });
    for (const m of canisterMemories(c)) files.push({ path: `${dir}/${m.role}.bin`, pageMap: m.pageMap });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function chunkHash(bytes: Uint8Array): Uint8Array {
  return sha256Bytes(new ByteWriter().domain("ic-state-chunk").raw(bytes).finish());
}

const zeroChunkHashes = new Map<number, Uint8Array>();
const memoChunkHashes = new WeakMap<object, Map<number, Uint8Array>>();

function memoryChunkHashes(pageMap: PageMap): Uint8Array[] {
  const ids = pageMap.blockIdentities(CHUNK_LEVEL);
  const out: Uint8Array[] = [];
  for (let i = 0; i < ids.length; i++) {
    const offset = i * CHUNK_SIZE_BYTES;
    const size = Math.min(CHUNK_SIZE_BYTES, pageMap.sizeBytes - offset);
    const id = ids[i] ?? null;
    const memo = id === null ? zeroChunkHashes : (memoChunkHashes.get(id) ?? new Map<number, Uint8Array>());
    if (id !== null) memoChunkHashes.set(id, memo);
    let h = memo.get(size);
    if (h === undefined) {
      h = chunkHash(id === null ? new Uint8Array(size) : pageMap.readBytes(offset, size));
      memo.set(size, h);
    }
    out.push(h);
  }
  return out;
}

function byteChunkHashes(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += CHUNK_SIZE_BYTES) {
    out.push(chunkHash(bytes.subarray(offset, offset + CHUNK_SIZE_BYTES)));
  }
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export function computeManifest(files: readonly StateFile[]): Manifest {
  for (let i = 1; i < files.length; i++) assert(files[i - 1]!.path < files[i]!.path, "manifest files must be sorted and distinct");
  const outFiles: ManifestFile[] = [];
  const outChunks: ManifestChunk[] = [];
  files.forEach((f, fileIndex) => {
    const sizeBytes = "bytes" in f ? f.bytes.length : f.pageMap.sizeBytes;
    const hashes = "bytes" in f ? byteChunkHashes(f.bytes) : memoryChunkHashes(f.pageMap);
    const fw = new ByteWriter().domain("ic-state-file").u32(hashes.length);
    hashes.forEach((h, i) => {
      const offset = i * CHUNK_SIZE_BYTES;
      const size = Math.min(CHUNK_SIZE_BYTES, sizeBytes - offset);
      fw.u32(size).u64(offset).raw(h);
      outChunks.push({ fileIndex, offset, sizeBytes: size, hash: hex(h) });
    });
    outFiles.push({ path: f.path, sizeBytes, hash: hex(sha256Bytes(fw.finish())) });
  });
  const w = new ByteWriter().domain("ic-state-manifest").u32(MANIFEST_VERSION).u32(outFiles.length);
  for (const f of outFiles) w.str(f.path).u64(f.sizeBytes).raw(Buffer.from(f.hash, "hex"));
  w.u32(outChunks.length);
  for (const c of outChunks) w.u32(c.fileIndex).u32(c.sizeBytes).u64(c.offset).raw(Buffer.from(c.hash, "hex"));
  return { version: MANIFEST_VERSION, files: outFiles, chunks: outChunks, rootHash: hex(sha256Bytes(w.finish())) };
}

export interface ManifestDiff {
  /** Paths present in both with different hashes, or present in only one, sorted. */
  readonly differentFiles: readonly string[];
  /** Chunks of `b` that `a` does not have at the same (path, offset) with the same hash. */
  readonly chunksToFetch: readonly { readonly path: string; readonly offset: number }[];
}

/** What differs between two manifests (state sync diff; names the files of a divergent canister). */
export function diffManifests(a: Manifest, b: Manifest): ManifestDiff {
  const fa = new Map(a.files.map((f) => [f.path, f.hash]));
  const fb = new Map(b.files.map((f) => [f.path, f.hash]));
  const paths = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  const differentFiles = paths.filter((p) => fa.get(p) !== fb.get(p));
  const have = new Set(a.chunks.map((c) => `${a.files[c.fileIndex]!.path}@${c.offset}#${c.hash}`));
  const chunksToFetch = b.chunks
    .filter((c) => !have.has(`${b.files[c.fileIndex]!.path}@${c.offset}#${c.hash}`))
    .map((c) => ({ path: b.files[c.fileIndex]!.path, offset: c.offset }));
  return { differentFiles, chunksToFetch };
}
