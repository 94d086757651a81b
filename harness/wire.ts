// Canonical binary encoding of values that cross a boundary between replicas (or between a replica
// and the world): the P2P wire, state sync, XNet. Everything a peer sends is untrusted, so the
// reader never throws anything but `WireDecodeError`, which `decodeWith` turns into a typed
// failure; it never allocates more than the bytes in hand can fill, and every length is bounded.
//
// Canonical: every value has exactly one encoding. Integers are big-endian and fixed-width, a
// bool is 0 or 1, an optional field is a presence byte 0 or 1, strings are UTF-8 (no BOM is
// stripped, invalid UTF-8 is refused) and a hex string — hashes, signatures — travels as its bytes
// (tag 0) unless it is not lowercase hex of even length, in which case it travels as text (tag 1,
// refused when it would have been tag 0). A reader must consume its bytes exactly.
import { assert } from "./assert.ts";

export class WireDecodeError extends Error {
  override readonly name = "WireDecodeError";
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Bounds of one field; a longer one is refused as it is read. */
export const MAX_STRING_BYTES = 16 * 1024 * 1024;
export const MAX_BYTES_FIELD = 0x7fff_ffff;
export const MAX_LIST_ITEMS = 1_000_000;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const HEX = "0123456789abcdef";
const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => `${HEX[i >> 4]}${HEX[i & 15]}`);
/** Nibble of a lowercase hex char code, or -1. */
const NIBBLE = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < 16; i++) table[HEX.charCodeAt(i)] = i;
  return table;
})();

export class WireWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialBytes = 1024) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xff, `u8 out of range: ${v}`);
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u32(v: number): this {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff, `u32 out of range: ${v}`);
    this.reserve(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  /** A non-negative safe integer (heights, times, sizes) as 8 bytes. */
  uint(v: number): this {
    assert(Number.isSafeInteger(v) && v >= 0, `not a non-negative safe integer: ${v}`);
    this.reserve(8);
    this.view.setUint32(this.len, Math.floor(v / 0x1_0000_0000));
    this.view.setUint32(this.len + 4, v % 0x1_0000_0000);
    this.len += 8;
    return this;
  }

  u64(v: bigint): this {
    assert(v >= 0n && v < 1n << 64n, `u64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigUint64(this.len, v);
    this.len += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  raw(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  bytes(b: Uint8Array): this {
    return this.u32(b.length).raw(b);
  }

  str(s: string): this {
    // At most 3 bytes per UTF-16 unit; encodeInto writes straight into the buffer.
    this.reserve(4 + 3 * s.length);
    const at = this.len;
    const { written } = utf8.encodeInto(s, this.buf.subarray(at + 4));
    this.view.setUint32(at, written);
    this.len = at + 4 + written;
    return this;
  }

  /** A hex string (hash, signature) as its bytes; anything else as tagged text (see the file comment). */
  hex(s: string): this {
    if (s.length % 2 === 0) {
      const n = s.length / 2;
      this.reserve(5 + n);
      const at = this.len + 5;
      let i = 0;
      for (; i < n; i++) {
        const hi = hexNibble(s, 2 * i);
        const lo = hexNibble(s, 2 * i + 1);
        if (hi < 0 || lo < 0) break;
        this.buf[at + i] = (hi << 4) | lo;
      }
      if (i === n) {
        this.buf[this.len] = 0;
        this.view.setUint32(this.len + 1, n);
        this.len = at + n;
        return this;
      }
    }
    return this.u8(1).str(s);
  }

  optional<T>(value: T | undefined, write: (w: this, v: T) => void): this {
    if (value === undefined) return this.u8(0);
    this.u8(1);
    write(this, value);
    return this;
  }

  list<T>(items: readonly T[], write: (w: this, item: T) => void): this {
    this.u32(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /** Reserves a u32 to be filled in later (`patchU32`) with a length known only after writing. */
  placeholderU32(): number {
    const at = this.len;
    this.u32(0);
    return at;
  }

  patchU32(at: number, v: number): void {
    assert(at + 4 <= this.len && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff, `bad u32 patch at ${at}`);
    this.view.setUint32(at, v);
  }

  /** The bytes written, in an array of their own. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Starts over (the buffer is kept, or replaced by a small one when it grew large). */
  reset(): this {
    this.len = 0;
    if (this.buf.length > SCRATCH_KEEP_BYTES) {
      this.buf = new Uint8Array(1024);
      this.view = new DataView(this.buf.buffer);
    }
    return this;
  }
}

const SCRATCH_KEEP_BYTES = 4 * 1024 * 1024;

function hexNibble(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? (NIBBLE[c] as number) : -1;
}

const isLowerHexEven = (s: string): boolean => s.length % 2 === 0 && /^[0-9a-f]*$/.test(s);

export class WireReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(reason: string): never {
    throw new WireDecodeError(`${reason} (at byte ${this.pos})`);
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) this.fail(`${what}: ${n} bytes needed, ${this.buf.length - this.pos} left`);
  }

  u8(what = "u8"): number {
    this.need(1, what);
    return this.buf[this.pos++] as number;
  }

  u32(what = "u32"): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  /** A u32 no larger than `max`. */
  u32Max(max: number, what: string): number {
    const v = this.u32(what);
    if (v > max) this.fail(`${what} ${v} exceeds ${max}`);
    return v;
  }

  uint(what = "integer"): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    if (hi > 0x1f_ffff) this.fail(`${what} exceeds 2^53 - 1`);
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  u64(what = "u64"): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  bool(what = "bool"): boolean {
    const v = this.u8(what);
    if (v > 1) this.fail(`${what}: ${v} is not a bool`);
    return v === 1;
  }

  /** `n` raw bytes in an array of their own. */
  raw(n: number, what = "bytes"): Uint8Array {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(max = MAX_BYTES_FIELD, what = "bytes"): Uint8Array {
    const n = this.u32Max(max, `${what} length`);
    return this.raw(n, what);
  }

  str(max = MAX_STRING_BYTES, what = "string"): string {
    const n = this.u32Max(max, `${what} length`);
    this.need(n, what);
    let s: string;
    try {
      s = utf8Decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    } catch {
      this.fail(`${what} is not UTF-8`);
    }
    this.pos += n;
    return s;
  }

  hex(max = MAX_STRING_BYTES, what = "hex"): string {
    const tag = this.u8(`${what} tag`);
    if (tag === 1) {
      const text = this.str(max, what);
      if (isLowerHexEven(text)) this.fail(`${what}: hex text sent as text (not canonical)`);
      return text;
    }
    if (tag !== 0) this.fail(`${what}: unknown tag ${tag}`);
    const n = this.u32Max(Math.floor(max / 2), `${what} length`);
    this.need(n, what);
    let s = "";
    for (let i = 0; i < n; i++) s += HEX_PAIRS[this.buf[this.pos + i] as number];
    this.pos += n;
    return s;
  }

  optional<T>(read: (r: this) => T, what = "optional"): T | undefined {
    const present = this.u8(`${what} presence`);
    if (present === 0) return undefined;
    if (present !== 1) this.fail(`${what}: presence byte ${present}`);
    return read(this);
  }

  /** A list of at most `max` items, each at least `minItemBytes` long (so a claimed count is checked against the bytes left). */
  list<T>(read: (r: this) => T, options: { readonly max?: number; readonly minItemBytes: number; readonly what: string }): T[] {
    const count = this.u32Max(options.max ?? MAX_LIST_ITEMS, `${options.what} count`);
    if (count * options.minItemBytes > this.remaining) this.fail(`${options.what}: ${count} items cannot fit in ${this.remaining} bytes`);
    const out: T[] = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = read(this);
    return out;
  }

  /** The next `n` bytes as a view (not a copy: only to look at, e.g. to hash them). */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A sub-reader over the next `n` bytes (this reader moves past them). */
  slice(n: number, what: string): WireReader {
    this.need(n, what);
    const sub = new WireReader(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return sub;
  }

  end(what: string): void {
    if (this.pos !== this.buf.length) this.fail(`${what}: ${this.buf.length - this.pos} trailing bytes`);
  }
}

/** One writer reused by every encoding (encodings do not nest: `write` must not call encodeWith). */
const scratch = new WireWriter(64 * 1024);
let scratchInUse = false;

/** Encodes into the shared scratch writer and returns a copy of exactly the bytes written. */
export function encodeWith(write: (w: WireWriter) => void): Uint8Array {
  assert(!scratchInUse, "encodeWith does not nest");
  scratchInUse = true;
  try {
    write(scratch.reset());
    return scratch.finish();
  } finally {
    scratchInUse = false;
  }
}

/**
 * Decodes untrusted bytes: the value, or why the bytes are not one. Only a `WireDecodeError` is
 * turned into a failure; anything else is a bug in the reader and propagates.
 */
export function decodeWith<T>(bytes: Uint8Array, read: (r: WireReader) => T, what: string): Decoded<T> {
  try {
    const r = new WireReader(bytes);
    const value = read(r);
    r.end(what);
    return { ok: true, value };
  } catch (error) {
    if (error instanceof WireDecodeError) return { ok: false, reason: `${what}: ${error.message}` };
    throw error;
  }
}
