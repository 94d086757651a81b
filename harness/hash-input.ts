// Bytes that are hashed and never parsed (state-hash entries, trace records), written into one
// reusable buffer: hashing them allocates no string and no array per value. The encoding is
// injective — fixed-width numbers, length-prefixed UTF-8 text — so distinct inputs never give
// equal bytes (DESIGN.md rule 4: canonical byte encodings for everything hashed). Unlike
// harness/wire.ts nothing here is read back, so there is no reader and no bound to check.
import { hash } from "node:crypto";

const utf8 = new TextEncoder();
const SCRATCH_KEEP_BYTES = 1024 * 1024;
const VIEWS_KEPT = 1024;

export class HashInput {
  protected bytes: Uint8Array;
  protected view: DataView;
  /** Views of the first n bytes, by n (see written()). */
  private views: (Uint8Array | undefined)[] = [];
  /** Bytes written since the last reset. */
  length = 0;

  constructor(initialBytes = 256) {
    this.bytes = new Uint8Array(initialBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Starts over; a buffer that grew for one large value is replaced by a small one. */
  reset(): this {
    this.length = 0;
    if (this.bytes.length > SCRATCH_KEEP_BYTES) {
      this.replaceBuffer(new Uint8Array(256));
    }
    return this;
  }

  u8(v: number): this {
    this.ensure(1);
    this.bytes[this.length++] = v;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
    return this;
  }

  i32(v: number): this {
    this.ensure(4);
    this.view.setInt32(this.length, v);
    this.length += 4;
    return this;
  }

  /** Any number, exactly (IEEE 754 binary64): heights, times, counts, and whatever a trace detail holds. */
  f64(v: number): this {
    this.ensure(8);
    this.view.setFloat64(this.length, v);
    this.length += 8;
    return this;
  }

  /** UTF-8 with its byte length in front. ASCII is copied by a loop: the common case, and no call into the encoder. */
  text(s: string): this {
    const n = s.length;
    this.ensure(4 + 3 * n);
    const start = this.length + 4;
    const bytes = this.bytes;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[start + i] = c;
    }
    const written = i === n ? n : i + utf8.encodeInto(s.slice(i), bytes.subarray(start + i)).written;
    this.view.setUint32(this.length, written);
    this.length = start + written;
    return this;
  }

  /** SHA-256 of the bytes written, as a 32-character string of byte values (cheaper than any other output form). */
  sha256Latin1(): string {
    return hash("sha256", this.written(), "binary");
  }

  sha256Hex(): string {
    return hash("sha256", this.written(), "hex");
  }

  /** The bytes written, as a view that is reused for the same length until the buffer changes (no view per hash). */
  protected written(): Uint8Array {
    const n = this.length;
    if (n >= VIEWS_KEPT) return this.bytes.subarray(0, n);
    let view = this.views[n];
    if (view === undefined) {
      view = this.bytes.subarray(0, n);
      this.views[n] = view;
    }
    return view;
  }

  /** XORs SHA-256 of the bytes written into `acc` (an incremental set hash). */
  xorSha256Into(acc: Uint8Array): void {
    const digest = this.sha256Latin1();
    for (let i = 0; i < 32; i++) acc[i] = (acc[i] as number) ^ digest.charCodeAt(i);
  }

  /** Room for `n` more bytes; a subclass may instead hand the bytes so far on (and reset). */
  protected ensure(n: number): void {
    if (this.length + n > this.bytes.length) this.grow(n);
  }

  protected grow(n: number): void {
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.replaceBuffer(next);
  }

  private replaceBuffer(next: Uint8Array): void {
    this.bytes = next;
    this.view = new DataView(next.buffer);
    this.views = [];
  }
}
