// Checkpoints through the replica's `Disk` (harness/sim/env.ts): the whole subnet state at a
// height, written incrementally and read back bit for bit (research/ic-protocol.md §5.4).
//
// Disk layout (keys):
//   pages/<page hash>            one 4 KiB page, content-addressed: written once, shared by every
//                                checkpoint and canister holding it (so a checkpoint writes only
//                                pages that are new since the previous one — the heap delta)
//   modules/<module hash>        module bytes
//   checkpoint/<height, 12 digits>  CheckpointRecord: system state bytes, page lists, manifest root
// Everything is bytes (the Disk contract). Reads verify: a page must hash to its key, the record is
// a checksummed record (harness/sim/disk-records.ts), and the manifest recomputed from what was
// read must have the recorded root. Pages and modules are written and synced before the record,
// so a crash in between leaves pages without a record, never a record without its pages.
import { createHash } from "node:crypto";
import { assert } from "../assert.ts";
import type { CanisterState } from "../execution/interfaces.ts";
import { Blob, readRecord, writeRecord } from "../sim/disk-records.ts";
import type { Disk } from "../sim/env.ts";
import type { HashHex } from "../types.ts";
import { canisterMemories, canisterModules, decodeCanisterSystemState, encodeCanisterSystemState } from "./canister-codec.ts";
import { computeManifest, stateFiles, type Manifest } from "./manifest.ts";
import { PAGE_SIZE_BYTES, PageMap } from "./page-map.ts";

export interface MemoryRecord {
  readonly role: string;
  readonly sizeBytes: number;
  /** Non-zero pages: ascending indices and their content hashes (keys under `pages/`). */
  readonly pageIndices: readonly number[];
  readonly pageHashes: readonly string[];
}

export interface CanisterRecord {
  readonly id: string;
  readonly systemState: Uint8Array;
  readonly memories: readonly MemoryRecord[];
}

export interface CheckpointRecord {
  readonly format: "subnetlab-checkpoint-v1";
  readonly height: number;
  readonly canisters: readonly CanisterRecord[];
  readonly metadata: Uint8Array;
  readonly manifestRoot: string;
}

export interface CheckpointWriteStats {
  readonly pagesWritten: number;
  readonly pagesReused: number;
  readonly bytesWritten: number;
}

const checkpointKey = (height: number): string => `checkpoint/${String(height).padStart(12, "0")}`;
const pageKey = (hash: string): string => `pages/${hash}`;
const moduleKey = (hash: string): string => `modules/${hash}`;

/** Heights of the checkpoints on the disk, ascending. */
export function listCheckpoints(disk: Disk): number[] {
  return disk
    .keys("checkpoint/")
    .map((k) => Number(k.slice("checkpoint/".length)))
    .sort((a, b) => a - b);
}

/** Writes the state at `height`; pages and modules already on the disk are not written again. */
export function writeCheckpoint(
  disk: Disk,
  height: number,
  canisters: readonly CanisterState[],
  metadata: Uint8Array,
  manifest: Manifest,
): CheckpointWriteStats {
  let pagesWritten = 0;
  let pagesReused = 0;
  let bytesWritten = 0;
  const records: CanisterRecord[] = [];
  for (const c of canisters) {
    for (const m of canisterModules(c)) {
      if (!disk.has(moduleKey(m.moduleHash))) {
        disk.write(moduleKey(m.moduleHash), m.bytes);
        bytesWritten += m.bytes.length;
      }
    }
    const memories: MemoryRecord[] = [];
    for (const { role, pageMap } of canisterMemories(c)) {
      const pageIndices = pageMap.nonZeroPageIndices();
      const pageHashes = pageIndices.map((i) => pageMap.pageHash(i));
      pageIndices.forEach((index, k) => {
        const key = pageKey(pageHashes[k]!);
        if (disk.has(key)) {
          pagesReused++;
          return;
        }
        disk.writeBlobs(key, [pageBlob(pageMap.readPage(index))]);
        pagesWritten++;
        bytesWritten += PAGE_SIZE_BYTES;
      });
      memories.push({ role, sizeBytes: pageMap.sizeBytes, pageIndices, pageHashes });
    }
    records.push({ id: c.id, systemState: encodeCanisterSystemState(c), memories });
  }
  const record: CheckpointRecord = {
    format: "subnetlab-checkpoint-v1",
    height,
    canisters: records,
    metadata: metadata.slice(),
    manifestRoot: manifest.rootHash,
  };
  disk.sync();
  const recordBytes = writeRecord(disk, checkpointKey(height), record);
  disk.sync();
  return { pagesWritten, pagesReused, bytesWritten: bytesWritten + recordBytes };
}

export type LoadedCheckpoint =
  | {
      readonly ok: true;
      readonly height: number;
      readonly canisters: readonly CanisterState[];
      readonly metadata: Uint8Array;
      readonly manifest: Manifest;
    }
  | { readonly ok: false; readonly height: number; readonly reason: string };

export interface LoadOptions {
  /** The canary skip-checksum: no record checksum, page hash or manifest check (a known bug). */
  readonly unchecked?: boolean;
}

/**
 * Reads the checkpoint at `height` and verifies it: the record's checksum, each page against its
 * content hash (a page that fails is removed from the disk, so the next checkpoint writes it
 * again instead of reusing the rotten copy), and the manifest recomputed from what was read
 * against the recorded root. A corrupted or incomplete checkpoint is reported, not returned.
 * Loaded memories have an empty heap delta (they are the checkpoint).
 */
export function loadCheckpoint(disk: Disk, height: number, options: LoadOptions = {}): LoadedCheckpoint {
  const unchecked = options.unchecked === true;
  const read = readRecord<CheckpointRecord>(disk, checkpointKey(height), unchecked);
  if (read === undefined) return { ok: false, height, reason: "no such checkpoint" };
  if (!read.ok) return { ok: false, height, reason: read.reason };
  const record = read.value;
  if (record.format !== "subnetlab-checkpoint-v1") return { ok: false, height, reason: `unknown checkpoint format ${JSON.stringify(record.format)}` };
  try {
    return verifiedCheckpoint(disk, height, record, unchecked);
  } catch (error) {
    // Only an unchecked (canary) read can get here: a checked record passed its checksum.
    return { ok: false, height, reason: `checkpoint does not decode: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function verifiedCheckpoint(disk: Disk, height: number, record: CheckpointRecord, unchecked: boolean): LoadedCheckpoint {
  const canisters: CanisterState[] = [];
  for (const cr of record.canisters) {
    const memoryByRole = new Map(cr.memories.map((m) => [m.role, m]));
    let missing: string | undefined;
    const canister = decodeCanisterSystemState(cr.systemState, {
      memory(role, sizeBytes) {
        const m = memoryByRole.get(role);
        if (m === undefined || m.sizeBytes !== sizeBytes) {
          missing ??= `memory ${cr.id}/${role}`;
          return PageMap.empty().resized(sizeBytes);
        }
        const pages = new Map<number, Uint8Array>();
        m.pageIndices.forEach((index, k) => {
          const hash = m.pageHashes[k]!;
          const bytes = disk.read(pageKey(hash));
          if (bytes === undefined || bytes.length !== PAGE_SIZE_BYTES) missing ??= `page ${hash}`;
          else if (!unchecked && pageHashOf(bytes) !== hash) {
            missing ??= `page ${hash} (its bytes do not match its hash)`;
            disk.remove(pageKey(hash));
          } else pages.set(index, bytes);
        });
        return PageMap.empty().resized(sizeBytes).withPages(pages).resized(sizeBytes).markCheckpointed();
      },
      module(moduleHash: HashHex) {
        const bytes = disk.read(moduleKey(moduleHash));
        if (bytes === undefined) {
          missing ??= `module ${moduleHash}`;
          return new Uint8Array(0);
        }
        return bytes;
      },
    });
    if (missing !== undefined) return { ok: false, height, reason: `checkpoint incomplete: missing ${missing}` };
    canisters.push(canister);
  }
  const metadata = record.metadata.slice();
  const manifest = computeManifest(stateFiles(canisters, metadata));
  if (!unchecked && manifest.rootHash !== record.manifestRoot) {
    return { ok: false, height, reason: `manifest root mismatch: recorded ${record.manifestRoot}, recomputed ${manifest.rootHash}` };
  }
  return { ok: true, height, canisters, metadata, manifest };
}

/** Keeps the newest `keep` checkpoints and deletes pages and modules no kept checkpoint uses. */
export function pruneCheckpoints(disk: Disk, keep: number): { readonly removedCheckpoints: number; readonly removedPages: number } {
  assert(Number.isInteger(keep) && keep >= 1, `keep must be ≥ 1, got ${keep}`);
  const heights = listCheckpoints(disk);
  const drop = heights.slice(0, Math.max(0, heights.length - keep));
  if (drop.length === 0) return { removedCheckpoints: 0, removedPages: 0 };
  for (const h of drop) disk.remove(checkpointKey(h));
  const livePages = new Set<string>();
  const liveModules = new Set<string>();
  for (const h of heights.slice(drop.length)) {
    const read = readRecord<CheckpointRecord>(disk, checkpointKey(h));
    if (read === undefined || !read.ok) continue;
    const referenced = referencedFiles(read.value);
    for (const k of referenced.pages) livePages.add(k);
    for (const k of referenced.modules) liveModules.add(k);
  }
  let removedPages = 0;
  for (const k of disk.keys("pages/")) {
    if (!livePages.has(k)) {
      disk.remove(k);
      removedPages++;
    }
  }
  for (const k of disk.keys("modules/")) if (!liveModules.has(k)) disk.remove(k);
  return { removedCheckpoints: drop.length, removedPages };
}

/** The keys of the pages and modules a checkpoint record refers to. */
function referencedFiles(record: CheckpointRecord): { readonly pages: ReadonlySet<string>; readonly modules: ReadonlySet<string> } {
  const pages = new Set<string>();
  const modules = new Set<string>();
  for (const c of record.canisters) {
    for (const m of c.memories) for (const p of m.pageHashes) pages.add(pageKey(p));
    const decoded = decodeCanisterSystemState(c.systemState, {
      memory: (_role, size) => PageMap.empty().resized(size),
      module: (hash) => {
        modules.add(moduleKey(hash));
        return new Uint8Array(0);
      },
    });
    assert(decoded.id === c.id, "checkpoint record id mismatch");
  }
  return { pages, modules };
}

/**
 * The files of the checkpoint at `height` as they are on the disk — its record, then the pages and
 * modules it refers to — for state sync (state-sync.ts); undefined when the record is not there,
 * does not verify, or a file it refers to is missing. The reader verifies the rest.
 */
export function checkpointFiles(disk: Disk, height: number): [string, Uint8Array][] | undefined {
  const key = checkpointKey(height);
  const read = readRecord<CheckpointRecord>(disk, key);
  const recordBytes = disk.read(key);
  if (read === undefined || !read.ok || recordBytes === undefined) return undefined;
  const files: [string, Uint8Array][] = [[key, recordBytes]];
  const referenced = referencedFiles(read.value);
  for (const k of [...referenced.pages, ...referenced.modules]) {
    const bytes = disk.read(k);
    if (bytes === undefined) return undefined;
    files.push([k, bytes]);
  }
  return files;
}

/** A page's content address: hex SHA-256 of its bytes (PageMap.pageHash). */
function pageHashOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * A page as an immutable blob, once per page object: a PageMap's pages never change (it copies
 * what it is given), and replicas with equal pages share them, so every disk that checkpoints the
 * page holds the same blob instead of a copy of its own.
 */
const blobOfPage = new WeakMap<Uint8Array, Blob>();
function pageBlob(page: Uint8Array): Blob {
  let blob = blobOfPage.get(page);
  if (blob === undefined) {
    blob = Blob.copyOf(page);
    blobOfPage.set(page, blob);
  }
  return blob;
}
