// What goes on a disk is bytes (harness/sim/env.ts `Disk`): this module turns plain values into
// bytes and back, and frames them as self-checking records, so that a torn or corrupted record is
// recognised when it is read instead of being taken for data.
//
// Value encoding: JSON with three tags, `{"$bytes": hex}` for byte arrays, `{"$bigint": decimal}`
// and `{"$undefined": 1}` (array slots). Maps, Sets and class instances have no encoding: writing
// one is a programmer error (it would come back as an empty object).
//
// Record frame: "SLR1" · u32 payload length · u32 CRC-32 of the payload · payload. CRC-32 finds
// every single-bit error and every burst up to 32 bits; a record cut short fails the length check.
import { crc32 as zlibCrc32 } from "node:zlib";
import { assert } from "../assert.ts";

const TEXT = new TextEncoder();
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const MAGIC = [0x53, 0x4c, 0x52, 0x31] as const; // "SLR1"
export const RECORD_HEADER_BYTES = 12;

/** A value's canonical text (its encoding before UTF-8). */
export function encodeValueText(value: unknown): string {
  return JSON.stringify(value, replacer);
}

export function encodeValue(value: unknown): Uint8Array {
  return TEXT.encode(encodeValueText(value));
}

/** Inverse of encodeValue; throws on bytes that are not an encoded value. */
export function decodeValue<T>(bytes: Uint8Array): T {
  return JSON.parse(UTF8.decode(bytes), reviver) as T;
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  // `this[key]` is the value before toJSON (a Buffer would otherwise arrive as {type, data}).
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("hex") };
  if (typeof raw === "bigint") return { $bigint: raw.toString() };
  if (raw === undefined && Array.isArray(this)) return { $undefined: 1 };
  assert(!(raw instanceof Map) && !(raw instanceof Set), `a ${raw instanceof Map ? "Map" : "Set"} cannot be written to disk (field ${JSON.stringify(key)})`);
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const tagged = value as { $bytes?: unknown; $bigint?: unknown; $undefined?: unknown };
  if (typeof tagged.$bytes === "string") return new Uint8Array(Buffer.from(tagged.$bytes, "hex"));
  if (typeof tagged.$bigint === "string") return BigInt(tagged.$bigint);
  if (tagged.$undefined === 1) return undefined;
  return value;
}

// ---- immutable blobs -------------------------------------------------------------------------------------

/**
 * Bytes nobody can change: the copy is taken once, when the blob is made, and never handed out
 * (only copied again). A disk may keep a blob by reference — the same blob on many replicas'
 * disks costs its bytes once — and still no later change in memory can alter what it holds.
 */
export class Blob {
  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  static copyOf(bytes: Uint8Array): Blob {
    return new Blob(bytes.slice());
  }

  /** A sealed record (sealRecord) of `payload`, as a blob. */
  static record(payload: Uint8Array): Blob {
    return new Blob(sealRecord(payload));
  }

  get length(): number {
    return this.#bytes.length;
  }

  copyInto(target: Uint8Array, offset: number): void {
    target.set(this.#bytes, offset);
  }

  /** The bytes of several blobs, one after the other, in a new array. */
  static concat(blobs: readonly Blob[]): Uint8Array {
    const out = new Uint8Array(blobs.reduce((n, b) => n + b.length, 0));
    let offset = 0;
    for (const b of blobs) {
      b.copyInto(out, offset);
      offset += b.length;
    }
    return out;
  }
}

// ---- CRC-32 (IEEE 802.3, reflected) -------------------------------------------------------------------

/**
 * zlib's CRC-32 (the same checksum as the table-driven loop this replaced — test/sim/disk.test.ts
 * compares them): every pool-log append seals a record per artifact, and above ~70 bytes the
 * native loop is 4–10 times faster than one in JavaScript (issue 13 item 4: ~2 % of a fuzz run).
 */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes);
}

// ---- records -------------------------------------------------------------------------------------------

/** Frames a payload as a record: header (magic, length, CRC-32) then the payload. */
export function sealRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, payload.length);
  view.setUint32(8, crc32(payload));
  out.set(payload, RECORD_HEADER_BYTES);
  return out;
}

export type OpenedRecord = { readonly ok: true; readonly payload: Uint8Array } | { readonly ok: false; readonly reason: string };

/** The payload of a record, or why the bytes are not one (torn: cut short; corrupt: checksum). */
export function openRecord(bytes: Uint8Array): OpenedRecord {
  if (bytes.length < RECORD_HEADER_BYTES) return { ok: false, reason: `torn record: ${bytes.length} bytes, shorter than its header` };
  if (MAGIC.some((b, i) => bytes[i] !== b)) return { ok: false, reason: "corrupt record: bad magic" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(4);
  const payload = bytes.subarray(RECORD_HEADER_BYTES);
  if (payload.length !== length) return { ok: false, reason: `torn record: ${payload.length} of ${length} payload bytes` };
  if (crc32(payload) !== view.getUint32(8)) return { ok: false, reason: "corrupt record: checksum mismatch" };
  return { ok: true, payload };
}

/**
 * The payloads of consecutive records (one write holding several), or why they are not: the
 * first record that is torn or corrupt fails the whole.
 */
export function openRecords(bytes: Uint8Array): { readonly ok: true; readonly payloads: Uint8Array[] } | { readonly ok: false; readonly reason: string } {
  const payloads: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < bytes.length; ) {
    const length = offset + RECORD_HEADER_BYTES <= bytes.length ? view.getUint32(offset + 4) : 0;
    const end = Math.min(bytes.length, offset + RECORD_HEADER_BYTES + length);
    const opened = openRecord(bytes.subarray(offset, end));
    if (!opened.ok) return { ok: false, reason: `record ${payloads.length + 1}: ${opened.reason}` };
    payloads.push(opened.payload);
    offset = end;
  }
  return { ok: true, payloads };
}

export type ReadRecord<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Minimal disk surface the record helpers need. */
interface RecordDisk {
  write(key: string, bytes: Uint8Array): void;
  read(key: string): Uint8Array | undefined;
}

/** Writes `value` as a record under `key`; returns the bytes written. */
export function writeRecord(disk: RecordDisk, key: string, value: unknown): number {
  const bytes = sealRecord(encodeValue(value));
  disk.write(key, bytes);
  return bytes.length;
}

/**
 * Reads the record under `key`: undefined when there is none, `ok: false` with the reason when it
 * is torn, corrupt or does not decode. `unchecked` (the canary skip-checksum) decodes the payload
 * without checking length and checksum.
 */
export function readRecord<T>(disk: RecordDisk, key: string, unchecked = false): ReadRecord<T> | undefined {
  const bytes = disk.read(key);
  if (bytes === undefined) return undefined;
  const opened = unchecked && bytes.length >= RECORD_HEADER_BYTES ? { ok: true as const, payload: bytes.subarray(RECORD_HEADER_BYTES) } : openRecord(bytes);
  if (!opened.ok) return { ok: false, reason: `${key}: ${opened.reason}` };
  try {
    return { ok: true, value: decodeValue<T>(opened.payload) };
  } catch (error) {
    return { ok: false, reason: `${key}: does not decode (${error instanceof Error ? error.message : String(error)})` };
  }
}
