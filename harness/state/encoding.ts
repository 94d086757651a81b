// Canonical byte encoding for everything the state layer hashes or writes to disk
// (DESIGN.md rule 4): big-endian fixed-width integers, length-prefixed byte strings, fixed field
// order chosen by the caller. Domain separators follow the IC's convention: one length byte, then
// the ASCII name (research/ic-protocol.md §5.4).
import { hash as nodeHash } from "node:crypto";
import { assert } from "../assert.ts";

const utf8 = new TextEncoder();
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

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
    assert(Number.isInteger(v) && v >= 0 && v < 256, `u8 out of range: ${v}`);
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
  u64(v: bigint | number): this {
    const b = BigInt(v);
    assert(b >= 0n && b < 1n << 64n, `u64 out of range: ${b}`);
    this.reserve(8);
    this.view.setBigUint64(this.len, b);
    this.len += 8;
    return this;
  }
  /** Unsigned integer of any size: u32 byte count, then big-endian magnitude. */
  nat(v: bigint): this {
    assert(v >= 0n, `nat must be non-negative: ${v}`);
    if (v <= MAX_SAFE_BIGINT) return this.safeNat(Number(v));
    const hex = v.toString(16);
    const bytes = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex");
    return this.bytes(bytes);
  }
  /** nat() below 2^53 without the hex round trip (a round's metadata writes two per canister). */
  private safeNat(n: number): this {
    let length = 0;
    for (let x = n; x > 0; x = Math.floor(x / 256)) length++;
    this.u32(length);
    this.reserve(length);
    for (let i = length - 1, x = n; i >= 0; i--, x = Math.floor(x / 256)) this.buf[this.len + i] = x % 256;
    this.len += length;
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  /** Raw bytes without a length prefix (fixed-size fields such as hashes). */
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
    return this.bytes(utf8.encode(s));
  }
  /** IC-style domain separator: one length byte, then the name. */
  domain(name: string): this {
    const b = utf8.encode(name);
    return this.u8(b.length).raw(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export class ByteReader {
  private pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    assert(this.pos + n <= this.buf.length, `truncated encoding at byte ${this.pos} (+${n})`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }
  nat(): bigint {
    const b = this.bytes();
    return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString("hex")}`);
  }
  bool(): boolean {
    const v = this.u8();
    assert(v === 0 || v === 1, `invalid bool byte ${v}`);
    return v === 1;
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  bytes(): Uint8Array {
    return this.raw(this.u32());
  }
  str(): string {
    return utf8Decoder.decode(this.bytes());
  }
  done(): boolean {
    return this.pos === this.buf.length;
  }
  expectDone(what: string): void {
    assert(this.done(), `${what}: ${this.buf.length - this.pos} trailing bytes`);
  }
}

export function sha256Bytes(data: Uint8Array): Uint8Array {
  return nodeHash("sha256", data, "buffer");
}

export function sha256HexOf(data: Uint8Array): string {
  return nodeHash("sha256", data, "hex");
}

export function hexToBytes(hex: string): Uint8Array {
  assert(/^([0-9a-f]{2})*$/.test(hex), `invalid hex string`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}
