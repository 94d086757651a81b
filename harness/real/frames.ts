// Length-prefixed frames on a byte stream (real mode's replica links, harness/real/tcp-transport.ts):
// each frame is a u32 big-endian payload length, then the payload. A reader never trusts a length
// beyond its maximum, so a peer cannot make it buffer without bound.
import { assert } from "../assert.ts";
import type { ReplicaId } from "../types.ts";

export const FRAME_HEADER_BYTES = 4;
/** u32 length prefix: nothing larger can be framed. */
export const FRAME_BYTES_LIMIT = 0xffff_ffff;

export function frameHeader(payloadBytes: number): Uint8Array {
  assert(Number.isInteger(payloadBytes) && payloadBytes >= 0 && payloadBytes <= FRAME_BYTES_LIMIT, `frame length ${payloadBytes} out of range`);
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, payloadBytes);
  return header;
}

/** One frame as one array (header and payload), for tests and small frames. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  out.set(frameHeader(payload.length), 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

export type FrameRead = { readonly ok: true; readonly frames: Uint8Array[] } | { readonly ok: false; readonly frames: Uint8Array[]; readonly reason: string };

/**
 * Cuts a byte stream into frames. Chunks go in as they arrive; whole frames come out, each in
 * its own new array (nothing shares memory with the chunks). A length above `maxFrameBytes` (for
 * the stream's first frame, `firstFrameMaxBytes`: a hello is small) is an error and the reader
 * stays failed: the stream can no longer be trusted.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  private buffered = 0;
  private failure: string | undefined;
  private framesRead = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly firstFrameMaxBytes = maxFrameBytes,
  ) {
    for (const max of [maxFrameBytes, firstFrameMaxBytes]) assert(Number.isInteger(max) && max >= 0 && max <= FRAME_BYTES_LIMIT, `bad maximum frame size ${max}`);
  }

  push(chunk: Uint8Array): FrameRead {
    const frames: Uint8Array[] = [];
    if (this.failure !== undefined) return { ok: false, frames, reason: this.failure };
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const length = new DataView(this.peek(FRAME_HEADER_BYTES).buffer).getUint32(0);
      const max = this.framesRead === 0 ? this.firstFrameMaxBytes : this.maxFrameBytes;
      if (length > max) {
        this.failure = `frame of ${length} bytes exceeds the maximum of ${max}`;
        this.chunks = [];
        return { ok: false, frames, reason: this.failure };
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      this.take(FRAME_HEADER_BYTES);
      frames.push(this.take(length));
      this.framesRead++;
    }
    return { ok: true, frames };
  }

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Uint8Array {
    return this.copy(n, false);
  }

  private take(n: number): Uint8Array {
    return this.copy(n, true);
  }

  private copy(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let index = 0;
    let offset = this.head;
    while (filled < n) {
      const chunk = this.chunks[index]!;
      const part = Math.min(n - filled, chunk.length - offset);
      out.set(chunk.subarray(offset, offset + part), filled);
      filled += part;
      offset += part;
      if (offset === chunk.length) {
        index++;
        offset = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, index);
      this.head = offset;
      this.buffered -= n;
    }
    return out;
  }
}

// ---- hello ---------------------------------------------------------------------------------------------

const HELLO_MAGIC = 0x534c4831; // "SLH1"
const MAX_NETWORK_BYTES = 255;
/** The largest hello frame's payload (magic, replica id, network name length and bytes). */
export const HELLO_MAX_BYTES = 4 + 4 + 1 + MAX_NETWORK_BYTES;
const TEXT = new TextEncoder();
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The first frame each side of a link sends: who it is, and which network (subnet, run) it belongs to. */
export interface Hello {
  readonly replica: ReplicaId;
  readonly network: string;
}

export function encodeHello(hello: Hello): Uint8Array {
  const network = TEXT.encode(hello.network);
  assert(network.length <= MAX_NETWORK_BYTES, `network name of ${network.length} bytes exceeds ${MAX_NETWORK_BYTES}`);
  const out = new Uint8Array(9 + network.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, HELLO_MAGIC);
  view.setUint32(4, hello.replica);
  view.setUint8(8, network.length);
  out.set(network, 9);
  return out;
}

export type HelloRead = { readonly ok: true; readonly hello: Hello } | { readonly ok: false; readonly reason: string };

export function decodeHello(payload: Uint8Array): HelloRead {
  if (payload.length < 9) return { ok: false, reason: `hello of ${payload.length} bytes is too short` };
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (view.getUint32(0) !== HELLO_MAGIC) return { ok: false, reason: "not a hello (bad magic)" };
  const networkBytes = view.getUint8(8);
  if (payload.length !== 9 + networkBytes) return { ok: false, reason: `hello of ${payload.length} bytes, expected ${9 + networkBytes}` };
  try {
    return { ok: true, hello: { replica: view.getUint32(4) as ReplicaId, network: UTF8.decode(payload.subarray(9)) } };
  } catch {
    return { ok: false, reason: "hello network name is not UTF-8" };
  }
}
