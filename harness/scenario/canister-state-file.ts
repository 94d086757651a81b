// The canister state file: one canister's saved state (harness/execution/saved-canister-state.ts)
// as `subnetlab snapshot save` writes it and a scenario's `fromSnapshot` reads it.
//
// Format, version 1 (integers big-endian):
//
//   offset 0   magic        10 bytes  "SLCANSTATE"
//          10  version      u16       1
//          12  total bytes  u64       the whole file, trailer included (a shorter file is truncated)
//          20  meta length  u32, then the meta record (harness/wire.ts encoding):
//                origin: canister id (str), scenario (str), seed (uint), replica (str),
//                        height (uint), batch time ns (u64)
//                module hash (hex), canister version (u64), certified data (bytes ≤ 32),
//                global timer ns (u64), globals (list of: type u8 0=i32 1=i64 2=f32 3=f64, bits u64),
//                heap size in 64 KiB pages (u32), stable memory size in 64 KiB pages (u64),
//                module bytes (uint), heap pages stored (uint), stable pages stored (uint)
//              module       the module's bytes
//              heap         per stored page: page index (uint), 4096 bytes; indices ascending
//              stable       the same for stable memory
//   last 32    content hash SHA-256 of every byte before it
//
// Only non-zero 4 KiB pages are stored, so a sparse stable memory of many GiB costs its written
// pages. Written to a temporary file beside the target, synced and renamed: a reader never sees a
// half-written file under the final name. Reading checks magic, version, length, content hash and
// every field's bounds before anything is used, and streams the file (never the whole of it in memory).
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { assert } from "../assert.ts";
import type { GlobalValue } from "../execution/interfaces.ts";
import { moduleHashOf, WASM_PAGE_BYTES, type SavedCanisterState } from "../execution/saved-canister-state.ts";
import { PAGE_SIZE_BYTES, PageMap } from "../state/page-map.ts";
import type { HashHex } from "../types.ts";
import { WireDecodeError, WireReader, WireWriter } from "../wire.ts";

export const CANISTER_STATE_MAGIC = "SLCANSTATE";
export const CANISTER_STATE_VERSION = 1;
const FIXED_HEADER_BYTES = 10 + 2 + 8;
const TRAILER_BYTES = 32;
const PAGE_RECORD_BYTES = 8 + PAGE_SIZE_BYTES;
/** The IC's limits: 4 GiB of heap (wasm32), 500 GiB of stable memory. */
const MAX_HEAP_WASM_PAGES = 65_536;
const MAX_STABLE_WASM_PAGES = (500n << 30n) / BigInt(WASM_PAGE_BYTES);
/** The IC's module size limit is 100 MiB (uncompressed). */
const MAX_MODULE_BYTES = 100 << 20;
const GLOBAL_TYPES: readonly GlobalValue["type"][] = ["i32", "i64", "f32", "f64"];

/** Why a file cannot be read as a canister state. */
export type CanisterStateFileProblem = "missing" | "not-a-state-file" | "unsupported-version" | "truncated" | "altered" | "malformed";

export type CanisterStateRead =
  | { readonly ok: true; readonly saved: SavedCanisterState; readonly contentHash: HashHex }
  | { readonly ok: false; readonly problem: CanisterStateFileProblem; readonly message: string };

// ---- writing ---------------------------------------------------------------------------------------

function metaRecord(saved: SavedCanisterState, heapPages: readonly number[], stablePages: readonly number[]): Uint8Array {
  const o = saved.origin;
  return new WireWriter()
    .str(o.canisterId).str(o.scenario).uint(o.seed).str(o.replica).uint(o.height).u64(o.batchTimeNs)
    .hex(saved.moduleHash).u64(saved.canisterVersion).bytes(saved.certifiedData).u64(saved.globalTimerNs)
    .list(saved.globals, (w, g) => w.u8(GLOBAL_TYPES.indexOf(g.type)).u64(g.bits))
    .u32(saved.wasmMemoryPages).u64(saved.stableMemoryPages)
    .uint(saved.wasmModule.length).uint(heapPages.length).uint(stablePages.length)
    .finish();
}

/** Buffers writes to a file descriptor and hashes everything written. */
class HashingFileWriter {
  private readonly hash = createHash("sha256");
  private readonly buffer = new Uint8Array(1 << 20);
  private used = 0;
  written = 0;
  constructor(private readonly fd: number) {}

  write(bytes: Uint8Array): void {
    if (this.used + bytes.length > this.buffer.length) this.flush();
    if (bytes.length >= this.buffer.length) {
      this.emit(bytes);
      return;
    }
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Flushes and returns the SHA-256 of everything written. */
  digest(): Uint8Array {
    this.flush();
    return this.hash.digest();
  }

  private flush(): void {
    if (this.used === 0) return;
    this.emit(this.buffer.subarray(0, this.used));
    this.used = 0;
  }

  private emit(bytes: Uint8Array): void {
    this.hash.update(bytes);
    for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at, bytes.length - at);
    this.written += bytes.length;
  }
}

function u64Bytes(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v));
  return out;
}

function writePages(out: HashingFileWriter, memory: PageMap, indices: readonly number[]): void {
  for (const index of indices) {
    out.write(u64Bytes(index));
    out.write(memory.readPage(index));
  }
}

/**
 * Writes `saved` to `path` (temporary file, fsync, rename) and returns its content hash. Throws
 * the file system's error when the directory is missing or not writable; the target is then untouched.
 */
export function writeCanisterStateFile(path: string, saved: SavedCanisterState): HashHex {
  const heapPages = saved.wasmMemory.nonZeroPageIndices();
  const stablePages = saved.stableMemory.nonZeroPageIndices();
  const meta = metaRecord(saved, heapPages, stablePages);
  const total = FIXED_HEADER_BYTES + 4 + meta.length + saved.wasmModule.length + (heapPages.length + stablePages.length) * PAGE_RECORD_BYTES + TRAILER_BYTES;
  const header = new WireWriter().raw(new TextEncoder().encode(CANISTER_STATE_MAGIC)).u8(CANISTER_STATE_VERSION >> 8).u8(CANISTER_STATE_VERSION & 0xff).uint(total).u32(meta.length).finish();
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, "w", 0o644);
  try {
    const out = new HashingFileWriter(fd);
    out.write(header);
    out.write(meta);
    out.write(saved.wasmModule);
    writePages(out, saved.wasmMemory, heapPages);
    writePages(out, saved.stableMemory, stablePages);
    const hash = out.digest();
    writeSync(fd, hash);
    assert(out.written + TRAILER_BYTES === total, `canister state file: wrote ${out.written + TRAILER_BYTES} bytes, planned ${total}`);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporary, path);
    return Buffer.from(hash).toString("hex") as HashHex;
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(temporary, { force: true });
    throw error;
  }
}

// ---- reading ---------------------------------------------------------------------------------------

/** Sequential reads of a byte range of a file, through a 1 MiB buffer. */
class SequentialFileReader {
  private readonly buffer = new Uint8Array(1 << 20);
  private start = 0;
  private end = 0;
  constructor(private readonly fd: number, private position: number, private readonly limit: number) {}

  /** The next `n` bytes (a fresh array), or undefined when the range ends first. */
  take(n: number): Uint8Array | undefined {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.start === this.end && !this.refill()) return undefined;
      const k = Math.min(n - filled, this.end - this.start);
      out.set(this.buffer.subarray(this.start, this.start + k), filled);
      this.start += k;
      filled += k;
    }
    return out;
  }

  private refill(): boolean {
    const want = Math.min(this.buffer.length, this.limit - this.position);
    if (want <= 0) return false;
    const got = readSync(this.fd, this.buffer, 0, want, this.position);
    if (got === 0) return false;
    this.position += got;
    this.start = 0;
    this.end = got;
    return true;
  }
}

class Refused extends Error {
  constructor(readonly problem: CanisterStateFileProblem, message: string) {
    super(message);
  }
}

/** SHA-256 of bytes [0, length) of the file. */
function hashPrefix(fd: number, length: number): Uint8Array {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(1 << 20);
  for (let at = 0; at < length; ) {
    const got = readSync(fd, buffer, 0, Math.min(buffer.length, length - at), at);
    if (got === 0) throw new Refused("truncated", `ends at byte ${at}, before its content hash`);
    hash.update(buffer.subarray(0, got));
    at += got;
  }
  return hash.digest();
}

interface Meta {
  readonly saved: Omit<SavedCanisterState, "wasmModule" | "wasmMemory" | "stableMemory">;
  readonly moduleBytes: number;
  readonly heapPagesStored: number;
  readonly stablePagesStored: number;
}

function decodeMeta(bytes: Uint8Array): Meta {
  const r = new WireReader(bytes);
  try {
    const origin = { canisterId: r.str(200, "canister id"), scenario: r.str(200, "scenario"), seed: r.uint("seed"), replica: r.str(20, "replica"), height: r.uint("height"), batchTimeNs: r.u64("batch time") };
    const moduleHash = r.hex(64, "module hash") as HashHex;
    const canisterVersion = r.u64("canister version");
    const certifiedData = r.bytes(32, "certified data");
    const globalTimerNs = r.u64("global timer");
    const globals = r.list((g): GlobalValue => {
      const tag = g.u8("global type");
      const type = GLOBAL_TYPES[tag] ?? g.fail(`global type ${tag} is not one of 0..3`);
      return { type, bits: g.u64("global bits") };
    }, { max: 10_000, minItemBytes: 9, what: "globals" });
    const wasmMemoryPages = r.u32Max(MAX_HEAP_WASM_PAGES, "heap size in Wasm pages");
    const stableMemoryPages = r.u64("stable memory size in Wasm pages");
    if (stableMemoryPages > MAX_STABLE_WASM_PAGES) r.fail(`stable memory of ${stableMemoryPages} Wasm pages exceeds the IC's 500 GiB`);
    const moduleBytes = r.uint("module size");
    if (moduleBytes > MAX_MODULE_BYTES) r.fail(`a module of ${moduleBytes} bytes exceeds the IC's 100 MiB`);
    const heapPagesStored = r.uint("heap pages stored");
    const stablePagesStored = r.uint("stable pages stored");
    r.end("metadata");
    return { saved: { origin, moduleHash, canisterVersion, certifiedData, globalTimerNs, globals, wasmMemoryPages, stableMemoryPages }, moduleBytes, heapPagesStored, stablePagesStored };
  } catch (error) {
    if (error instanceof WireDecodeError) throw new Refused("malformed", `its header does not decode: ${error.message}`);
    throw error;
  }
}

function readPages(reader: SequentialFileReader, count: number, sizeBytes: number, what: string): PageMap {
  const pageLimit = sizeBytes / PAGE_SIZE_BYTES;
  const pages = new Map<number, Uint8Array>();
  let previous = -1;
  for (let k = 0; k < count; k++) {
    const indexBytes = reader.take(8);
    const page = reader.take(PAGE_SIZE_BYTES);
    if (indexBytes === undefined || page === undefined) throw new Refused("malformed", `its ${what} section ends after ${k} of ${count} pages`);
    const index = Number(new DataView(indexBytes.buffer).getBigUint64(0));
    if (!(index > previous && index < pageLimit)) throw new Refused("malformed", `${what} page index ${index} is out of order or beyond the ${what}'s ${pageLimit} pages`);
    previous = index;
    pages.set(index, page);
  }
  // Owned: each page is an array of its own that nothing else holds (no copy).
  return PageMap.empty().resized(sizeBytes).withOwnedPages(pages).markCheckpointed();
}

/**
 * Checks magic, version, length and content hash (a streamed pass over the file) and returns the
 * file's size, its announced total and its content hash.
 */
function verifyFile(fd: number): { size: number; total: bigint; contentHash: HashHex } {
  const size = fstatSync(fd).size;
  const fixed = new Uint8Array(FIXED_HEADER_BYTES + 4);
  const got = readSync(fd, fixed, 0, fixed.length, 0);
  const magic = new TextDecoder().decode(fixed.subarray(0, 10));
  if (got < 10 || magic !== CANISTER_STATE_MAGIC) throw new Refused("not-a-state-file", `not a subnetlab canister state file (it does not start with "${CANISTER_STATE_MAGIC}"; write one with subnetlab snapshot save)`);
  if (got < fixed.length) throw new Refused("truncated", `truncated: ${size} bytes, too short for its header`);
  const view = new DataView(fixed.buffer);
  const version = view.getUint16(10);
  if (version !== CANISTER_STATE_VERSION) throw new Refused("unsupported-version", `format version ${version}; this subnetlab reads version ${CANISTER_STATE_VERSION}`);
  const total = view.getBigUint64(12);
  if (BigInt(size) < total) throw new Refused("truncated", `truncated: ${size} bytes of the ${total} its header announces`);
  if (BigInt(size) > total) throw new Refused("altered", `${BigInt(size) - total} bytes beyond the ${total} its header announces (appended to, or altered)`);
  const trailer = new Uint8Array(TRAILER_BYTES);
  readSync(fd, trailer, 0, TRAILER_BYTES, size - TRAILER_BYTES);
  const actual = hashPrefix(fd, size - TRAILER_BYTES);
  if (Buffer.compare(actual, trailer) !== 0) {
    throw new Refused("altered", `its content hash does not match (recorded ${Buffer.from(trailer).toString("hex").slice(0, 16)}…, computed ${Buffer.from(actual).toString("hex").slice(0, 16)}…): the file was altered or corrupted`);
  }
  return { size, total, contentHash: Buffer.from(trailer).toString("hex") as HashHex };
}

function readVerified(fd: number): { saved: SavedCanisterState; contentHash: HashHex } {
  const { size, total, contentHash } = verifyFile(fd);
  const reader = new SequentialFileReader(fd, FIXED_HEADER_BYTES, size - TRAILER_BYTES);
  const metaLength = new DataView(reader.take(4)!.buffer).getUint32(0);
  const metaBytes = reader.take(metaLength);
  if (metaBytes === undefined) throw new Refused("malformed", `its header claims ${metaLength} bytes of metadata, more than the file holds`);
  const meta = decodeMeta(metaBytes);
  const expectedTotal = FIXED_HEADER_BYTES + 4 + metaLength + meta.moduleBytes + (meta.heapPagesStored + meta.stablePagesStored) * PAGE_RECORD_BYTES + TRAILER_BYTES;
  if (BigInt(expectedTotal) !== total) throw new Refused("malformed", `its sections add up to ${expectedTotal} bytes, its header says ${total}`);
  const wasmModule = reader.take(meta.moduleBytes)!;
  if (moduleHashOf(wasmModule) !== meta.saved.moduleHash) throw new Refused("malformed", `its module does not have the module hash its header records`);
  const wasmMemory = readPages(reader, meta.heapPagesStored, meta.saved.wasmMemoryPages * WASM_PAGE_BYTES, "heap");
  const stableMemory = readPages(reader, meta.stablePagesStored, Number(meta.saved.stableMemoryPages) * WASM_PAGE_BYTES, "stable memory");
  return { saved: { ...meta.saved, wasmModule, wasmMemory, stableMemory }, contentHash };
}

/** Reads and verifies a canister state file; every refusal names the file and the problem. */
export function readCanisterStateFile(path: string): CanisterStateRead {
  if (!existsSync(path)) return { ok: false, problem: "missing", message: `${path}: no such file` };
  if (!statSync(path).isFile()) return { ok: false, problem: "missing", message: `${path}: not a file` };
  const fd = openSync(path, "r");
  try {
    const { saved, contentHash } = readVerified(fd);
    return { ok: true, saved, contentHash };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, problem: error.problem, message: `${path}: ${error.message}` };
    throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * The content hash of a canister state file after checking it (magic, version, length, hash) —
 * without decoding its pages: what a replay compares with the hash its repro bundle recorded.
 */
export function canisterStateFileHash(path: string): { readonly ok: true; readonly contentHash: HashHex } | { readonly ok: false; readonly problem: CanisterStateFileProblem; readonly message: string } {
  if (!existsSync(path) || !statSync(path).isFile()) return { ok: false, problem: "missing", message: `${path}: no such file` };
  const fd = openSync(path, "r");
  try {
    return { ok: true, contentHash: verifyFile(fd).contentHash };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, problem: error.problem, message: `${path}: ${error.message}` };
    throw error;
  } finally {
    closeSync(fd);
  }
}
