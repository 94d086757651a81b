// A replica's disk on the real file system, with the contract the simulated disk enforces
// (harness/sim/env.ts `Disk`, harness/sim/disk.ts).
//
// Shape: one append-only write-ahead log per directory; every `write`, `writeBlobs` and `remove`
// appends one self-checking record to it at once, `sync()` is one fdatasync, and an in-memory index
// (key → where its value is in the log) answers `read`, `has` and `keys`. Values live in the log,
// not in memory; keys are stored inside the records, so any string works as a key and nothing has
// to be encoded into file names.
//
// Why a log rather than a file per key written to a temporary name and renamed: both are easy to
// prove, but the log is the one whose behaviour under a crash is exactly the simulated disk's.
// - A record reaches the operating system when the call returns, so killing the process (SIGKILL
//   at any instant) loses nothing that a call completed — the simulated disk's `crash("none")`.
//   A record cut short by the kill is the log's last one, and it belonged to a call that never
//   returned.
// - `sync()` returns after fdatasync of the log, so every record before it is on the device.
// - Reopening scans the log from the start and keeps the longest prefix of whole, checksummed
//   records (CRC-32 over kind, lengths, key and value; a magic number and length bounds first), then
//   cuts the file there. A power loss can only damage what came after the last sync, and whatever it
//   leaves, what survives is a prefix of the changes in the order they were made, all of them whole
//   — the simulated disk's `lose-unsynced` and `torn-write` (which the replica already survives).
// - The log is rewritten (compaction) only inside `sync()`, after the fdatasync, once dead records
//   outweigh the live ones: live records are copied to `log-<g+1>.tmp`, which is fsynced, renamed to
//   `log-<g+1>` (the commit point), the directory fsynced, and only then `log-<g>` deleted. Opening
//   picks the highest generation and deletes the rest and any `.tmp`, so a crash at any step leaves
//   either the old log or the new one, both complete.
// A file per key would need an fsync per key per sync (thousands for a checkpoint of pages, where
// the log needs one) and leaves a half-applied sync visible after a kill.
//
// Not covered: two processes opening the same directory at once (the caller's run directory is
// per replica), and rot of synced bytes after they were written (the replica's records carry their
// own checksums, harness/sim/disk-records.ts).
import { closeSync, constants, existsSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync, writevSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { assert } from "../assert.ts";
import { Blob } from "../sim/disk-records.ts";
import type { Disk } from "../sim/env.ts";

const MAGIC = 0x53464431; // "SFD1"
const KIND_PUT = 1;
const KIND_REMOVE = 2;
/** magic u32 · kind u8 · key length u32 · value length u32 · CRC-32 u32 (all big-endian). */
const HEADER_BYTES = 17;
const CRC_OFFSET = 13;
export const MAX_KEY_BYTES = 4096;
/** Values are read back into one Uint8Array; stay well inside what Node allocates. */
export const MAX_VALUE_BYTES = 1 << 30;
const LOG_NAME = /^log-(\d{8})$/;
const LOG_TMP_NAME = /^log-\d{8}\.tmp$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface FileDiskOptions {
  /** Compaction runs once dead bytes exceed both the live bytes and this (default 64 MiB). */
  readonly compactDeadBytesMin?: number;
}

/** Where a live value is in the log. */
interface Location {
  readonly valueOffset: number;
  readonly valueBytes: number;
  /** The whole record's size (header, key, value): what becomes dead when the key changes. */
  readonly recordBytes: number;
}

/** What opening found and repaired. */
export interface FileDiskRecovery {
  readonly generation: number;
  readonly records: number;
  /** Bytes cut from the end of the log because they were not whole records, and why. */
  readonly droppedTailBytes: number;
  readonly droppedTailReason?: string;
  /** Files left by an interrupted compaction and deleted. */
  readonly removedFiles: readonly string[];
}

const logName = (generation: number): string => `log-${String(generation).padStart(8, "0")}`;

export class FileDisk implements Disk {
  private readonly index = new Map<string, Location>();
  /** Keys changed since the last sync (the simulated disk's `pendingCount` counts the same). */
  private readonly changed = new Set<string>();
  private fd: number;
  private generation: number;
  private endOffset: number;
  private liveBytes = 0;
  private closed = false;
  private readonly compactDeadBytesMin: number;
  readonly recovery: FileDiskRecovery;
  bytesWritten = 0;
  syncs = 0;
  compactions = 0;

  constructor(
    readonly dir: string,
    options: FileDiskOptions = {},
  ) {
    this.compactDeadBytesMin = options.compactDeadBytesMin ?? 64 << 20;
    assert(Number.isInteger(this.compactDeadBytesMin) && this.compactDeadBytesMin >= 0, `compactDeadBytesMin must be a non-negative integer, got ${this.compactDeadBytesMin}`);
    mkdirSync(dir, { recursive: true });
    const { generation, removedFiles } = pickGeneration(dir);
    this.generation = generation;
    const path = join(dir, logName(generation));
    const created = !existsSync(path);
    // Read-write, created if missing, no O_APPEND: every write names its position.
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    if (created || removedFiles.length > 0) fsyncDirectory(dir);
    const scan = this.scan();
    this.endOffset = scan.validBytes;
    if (scan.droppedBytes > 0) {
      ftruncateSync(this.fd, scan.validBytes);
      fsyncSync(this.fd);
    }
    this.recovery = {
      generation,
      records: scan.records,
      droppedTailBytes: scan.droppedBytes,
      ...(scan.reason === undefined ? {} : { droppedTailReason: scan.reason }),
      removedFiles,
    };
  }

  write(key: string, bytes: Uint8Array): void {
    this.put(key, [bytes], bytes.length);
  }

  writeBlobs(key: string, blobs: readonly Blob[]): void {
    const value = Blob.concat(blobs);
    this.put(key, [value], value.length);
  }

  read(key: string): Uint8Array | undefined {
    this.assertOpen();
    const at = this.index.get(key);
    if (at === undefined) return undefined;
    const out = new Uint8Array(at.valueBytes);
    readFully(this.fd, out, at.valueOffset);
    return out;
  }

  has(key: string): boolean {
    this.assertOpen();
    return this.index.has(key);
  }

  remove(key: string): void {
    this.assertOpen();
    if (!this.index.has(key)) return;
    const keyBytes = encodeKey(key);
    this.append(KIND_REMOVE, keyBytes, [], 0);
    this.forget(key);
    this.changed.add(key);
  }

  keys(prefix: string): string[] {
    this.assertOpen();
    const out: string[] = [];
    for (const k of this.index.keys()) if (k.startsWith(prefix)) out.push(k);
    return out.sort();
  }

  sync(): void {
    this.assertOpen();
    if (this.changed.size > 0) fdatasyncSync(this.fd);
    this.changed.clear();
    this.syncs++;
    if (this.shouldCompact()) this.compact();
  }

  /** Number of keys written or removed since the last sync. */
  get pendingCount(): number {
    return this.changed.size;
  }

  /** Bytes in the log file (live and dead records). */
  get logBytes(): number {
    return this.endOffset;
  }

  /**
   * Closes the file without syncing: what was written stays with the operating system (as after a
   * process crash); call `sync()` first for it to survive a power loss too.
   */
  close(): void {
    if (this.closed) return;
    closeSync(this.fd);
    this.closed = true;
  }

  private put(key: string, value: readonly Uint8Array[], valueBytes: number): void {
    this.assertOpen();
    if (valueBytes > MAX_VALUE_BYTES) throw new RangeError(`FileDisk: value of ${valueBytes} bytes under ${JSON.stringify(key.slice(0, 80))} exceeds the maximum of ${MAX_VALUE_BYTES}`);
    const keyBytes = encodeKey(key);
    const recordStart = this.append(KIND_PUT, keyBytes, value, valueBytes);
    this.forget(key);
    const recordBytes = HEADER_BYTES + keyBytes.length + valueBytes;
    this.index.set(key, { valueOffset: recordStart + HEADER_BYTES + keyBytes.length, valueBytes, recordBytes });
    this.liveBytes += recordBytes;
    this.changed.add(key);
    this.bytesWritten += valueBytes;
  }

  private forget(key: string): void {
    const old = this.index.get(key);
    if (old === undefined) return;
    this.liveBytes -= old.recordBytes;
    this.index.delete(key);
  }

  /** Appends one record; returns its offset. A failed append is cut off again so the log stays whole. */
  private append(kind: number, keyBytes: Uint8Array, value: readonly Uint8Array[], valueBytes: number): number {
    const header = makeHeader(kind, keyBytes, value, valueBytes);
    const start = this.endOffset;
    const total = HEADER_BYTES + keyBytes.length + valueBytes;
    try {
      writeAllv(this.fd, [header, keyBytes, ...value], start, total);
    } catch (error) {
      ftruncateSync(this.fd, start);
      throw error;
    }
    this.endOffset = start + total;
    return start;
  }

  /** Rebuilds the index from the log; stops at the first record that is not whole. */
  private scan(): { validBytes: number; droppedBytes: number; records: number; reason?: string } {
    const fileBytes = fstatSync(this.fd).size;
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    let offset = 0;
    let records = 0;
    let body = new Uint8Array(64 * 1024);
    const stop = (reason: string) => ({ validBytes: offset, droppedBytes: fileBytes - offset, records, reason });
    while (offset < fileBytes) {
      if (fileBytes - offset < HEADER_BYTES) return stop(`a header cut short at ${offset}`);
      readFully(this.fd, header, offset);
      if (view.getUint32(0) !== MAGIC) return stop(`no record magic at ${offset}`);
      const kind = view.getUint8(4);
      const keyBytes = view.getUint32(5);
      const valueBytes = view.getUint32(9);
      if (kind !== KIND_PUT && kind !== KIND_REMOVE) return stop(`unknown record kind ${kind} at ${offset}`);
      if (keyBytes > MAX_KEY_BYTES || valueBytes > MAX_VALUE_BYTES || (kind === KIND_REMOVE && valueBytes !== 0)) return stop(`impossible lengths at ${offset}`);
      const bodyBytes = keyBytes + valueBytes;
      if (fileBytes - offset - HEADER_BYTES < bodyBytes) return stop(`a record cut short at ${offset}`);
      if (body.length < bodyBytes) body = new Uint8Array(Math.max(bodyBytes, body.length * 2));
      readFully(this.fd, body.subarray(0, bodyBytes), offset + HEADER_BYTES);
      const crc = crc32(body.subarray(0, bodyBytes), crc32(header.subarray(0, CRC_OFFSET)));
      if (crc !== view.getUint32(CRC_OFFSET)) return stop(`checksum mismatch at ${offset}`);
      let key: string;
      try {
        key = UTF8.decode(body.subarray(0, keyBytes));
      } catch {
        return stop(`a key that is not UTF-8 at ${offset}`);
      }
      this.forget(key);
      if (kind === KIND_PUT) {
        const recordBytes = HEADER_BYTES + bodyBytes;
        this.index.set(key, { valueOffset: offset + HEADER_BYTES + keyBytes, valueBytes, recordBytes });
        this.liveBytes += recordBytes;
      }
      offset += HEADER_BYTES + bodyBytes;
      records++;
    }
    return { validBytes: offset, droppedBytes: 0, records };
  }

  private shouldCompact(): boolean {
    const deadBytes = this.endOffset - this.liveBytes;
    return deadBytes > this.compactDeadBytesMin && deadBytes > this.liveBytes;
  }

  /** Copies the live records to the next generation's log (see the top of this file for why it is safe). */
  private compact(): void {
    const next = this.generation + 1;
    const tmpPath = join(this.dir, `${logName(next)}.tmp`);
    const tmp = openSync(tmpPath, "w+");
    const moved = new Map<string, Location>();
    let offset = 0;
    try {
      const writer = new ChunkWriter(tmp);
      for (const [key, at] of [...this.index].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const keyBytes = encodeKey(key);
        const value = new Uint8Array(at.valueBytes);
        readFully(this.fd, value, at.valueOffset);
        writer.add(makeHeader(KIND_PUT, keyBytes, [value], value.length));
        writer.add(keyBytes);
        writer.add(value);
        moved.set(key, { valueOffset: offset + HEADER_BYTES + keyBytes.length, valueBytes: at.valueBytes, recordBytes: at.recordBytes });
        offset += at.recordBytes;
      }
      writer.flush();
      fsyncSync(tmp);
    } catch (error) {
      closeSync(tmp);
      unlinkSync(tmpPath);
      throw error;
    }
    const nextPath = join(this.dir, logName(next));
    renameSync(tmpPath, nextPath);
    fsyncDirectory(this.dir);
    // From here the new log is the disk; the old one is garbage whether or not its deletion lands
    // (opening deletes it if a crash comes first).
    const old = { fd: this.fd, path: join(this.dir, logName(this.generation)) };
    this.fd = tmp;
    this.generation = next;
    this.endOffset = offset;
    this.index.clear();
    for (const [k, v] of moved) this.index.set(k, v);
    this.compactions++;
    closeSync(old.fd);
    unlinkSync(old.path);
  }

  private assertOpen(): void {
    assert(!this.closed, `FileDisk ${this.dir} is closed`);
  }
}

/** The log generation to open: the highest complete one. Older logs and `log-*.tmp` files are deleted. */
function pickGeneration(dir: string): { generation: number; removedFiles: string[] } {
  const names = readdirSync(dir);
  const generations = names.flatMap((n) => {
    const m = LOG_NAME.exec(n);
    return m === null ? [] : [Number(m[1])];
  });
  const generation = generations.length === 0 ? 1 : Math.max(...generations);
  // Only the disk's own files: the directory may hold others (they are left alone).
  const removedFiles = names.filter((n) => LOG_TMP_NAME.test(n) || (LOG_NAME.test(n) && n !== logName(generation))).sort();
  for (const n of removedFiles) unlinkSync(join(dir, n));
  return { generation, removedFiles };
}

function encodeKey(key: string): Uint8Array {
  if (LONE_SURROGATE.test(key)) throw new TypeError(`FileDisk: key ${JSON.stringify(key.slice(0, 80))} is not well-formed Unicode (a lone surrogate cannot be stored as UTF-8)`);
  const bytes = Buffer.from(key, "utf8");
  if (bytes.length > MAX_KEY_BYTES) throw new RangeError(`FileDisk: key of ${bytes.length} UTF-8 bytes exceeds the maximum of ${MAX_KEY_BYTES}: ${JSON.stringify(key.slice(0, 80))}…`);
  return bytes;
}

function makeHeader(kind: number, keyBytes: Uint8Array, value: readonly Uint8Array[], valueBytes: number): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, MAGIC);
  view.setUint8(4, kind);
  view.setUint32(5, keyBytes.length);
  view.setUint32(9, valueBytes);
  let crc = crc32(keyBytes, crc32(header.subarray(0, CRC_OFFSET)));
  for (const part of value) crc = crc32(part, crc);
  view.setUint32(CRC_OFFSET, crc);
  return header;
}

function writeAllv(fd: number, parts: Uint8Array[], position: number, total: number): void {
  let written = writevSync(fd, parts, position);
  // A short write (rare on regular files) continues where it stopped.
  while (written < total) {
    let skip = written;
    const rest: Uint8Array[] = [];
    for (const p of parts) {
      if (skip >= p.length) skip -= p.length;
      else {
        rest.push(p.subarray(skip));
        skip = 0;
      }
    }
    written += writeSync(fd, rest[0]!, 0, rest[0]!.length, position + written);
  }
}

function readFully(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    assert(n > 0, `FileDisk: the log ended at ${position + done} inside a record the index points to`);
    done += n;
  }
}

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Batches small writes into 4 MiB writes (compaction copies many small records). */
class ChunkWriter {
  private readonly buffer = new Uint8Array(4 << 20);
  private used = 0;
  private position = 0;

  constructor(private readonly fd: number) {}

  add(bytes: Uint8Array): void {
    if (bytes.length > this.buffer.length) {
      this.flush();
      writeAllv(this.fd, [bytes], this.position, bytes.length);
      this.position += bytes.length;
      return;
    }
    if (this.used + bytes.length > this.buffer.length) this.flush();
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
  }

  flush(): void {
    if (this.used === 0) return;
    writeAllv(this.fd, [this.buffer.subarray(0, this.used)], this.position, this.used);
    this.position += this.used;
    this.used = 0;
  }
}
