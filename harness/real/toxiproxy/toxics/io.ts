// What one run of a toxic sees of its stage in a link's chain. A link moves data as chunks (one per
// socket read, stamped with when it was read); each toxic of the proxy's chain for that direction
// is one stage, and a run is the toxic's behaviour on that stage from when it (re)starts — at
// connection accept, or when the chain changes — until it is interrupted or closes the stream.
import { defined } from "../../../assert.ts";
import type { Attributes, ToxicType } from "../types.ts";

export interface Chunk {
  readonly data: Buffer;
  /** performance.now() when the bytes were read from the source socket; latency moves it on. */
  readAtMs: number;
}

/** The source ended (EOF, error or the other side closed); the run should close the stream. */
export const END = Symbol("end");
/** The run was interrupted: return promptly, handing on any chunk held (never drop data). */
export const STOP = Symbol("stop");
/** `take(deadline)` reached the deadline with no input. */
export const DEADLINE = Symbol("deadline");

export type Taken = Chunk | typeof END | typeof STOP | typeof DEADLINE;

export interface StageIo {
  /** The next input chunk in order, END, STOP, or DEADLINE once `deadlineAtMs` (performance.now time) passes. */
  take(deadlineAtMs?: number): Promise<Taken>;
  /** Waits `ms`; false when interrupted first. */
  sleep(ms: number): Promise<boolean>;
  /** Waits `ms` whatever happens (an interrupt waits for it, as Toxiproxy's reset_peer does). */
  sleepThrough(ms: number): Promise<void>;
  /** Hands a chunk to the next stage (or the destination socket). */
  emit(chunk: Chunk): void;
  /** Drops a chunk on the floor (releases its bytes from the link's flow control). */
  discard(chunk: Chunk): void;
  /** Ends the stream: the destination socket is closed once everything emitted before is written. */
  close(): void;
  nowMs(): number;
  /** Uniform integer in [0, bound) from the server's seeded PRNG. */
  randomBelow(bound: number): number;
}

/** Per link and toxic, created when the toxic joins the link; survives re-runs (limit_data's count). */
export interface ToxicState {
  bytesSent: number;
}

export interface ToxicKind {
  readonly type: ToxicType;
  /** Attribute names in the Go struct's field order (the JSON output order). */
  readonly fields: readonly string[];
  /** Runs the toxic until interrupted (STOP) or it closes the stream; `attributes` holds every field. */
  run(io: StageIo, attributes: Attributes, state: ToxicState): Promise<void>;
  /** Removing the toxic from a live link closes that link (timeout's cleanup hook). */
  readonly closesLinkWhenRemoved?: boolean;
  /** Connections accepted while this toxic exists close abortively (SO_LINGER 0 → RST). */
  readonly abortiveClose?: boolean;
}

/** An attribute's value; `fields` guarantees presence, so a missing one is a bug. */
export function attribute(attributes: Attributes, name: string): number {
  return defined(attributes[name], `toxic attribute ${name}`);
}

/** Passes everything through unchanged: a toxic whose toxicity roll failed runs this. */
export async function passThrough(io: StageIo): Promise<void> {
  for (;;) {
    const item = await io.take();
    if (item === STOP) return;
    if (item === END) return io.close();
    if (item === DEADLINE) continue;
    io.emit(item);
  }
}
