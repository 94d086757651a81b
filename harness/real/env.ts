// The real-mode `Env` (harness/sim/env.ts): what a replica process hands its replica core instead
// of the simulator's — the wall clock, Node timers, a trace sink, a seeded PRNG, a disk (FileDisk)
// and a frame transport (TcpTransport) behind a message codec. The replica core stays as it is:
// it calls the same `Env` methods and gets `onMessage`/`onTimer` calls, now from the event loop.
import { closeSync, openSync, writeSync } from "node:fs";
import { assert } from "../assert.ts";
import type { Disk, Env, TimerHandle, TraceEvent } from "../sim/env.ts";
import { Rng } from "../sim/rng.ts";
import type { ReplicaId, TimeUs } from "../types.ts";
import type { FrameHandler } from "./tcp-transport.ts";

// ---- clock -----------------------------------------------------------------------------------------------

export interface ClockSources {
  /** Wall-clock time, ms since the Unix epoch (read once, at the anchor). */
  readonly wallMs: () => number;
  /** A monotonic clock in ms (any origin). */
  readonly monotonicMs: () => number;
}

const SYSTEM_CLOCK: ClockSources = { wallMs: () => Date.now(), monotonicMs: () => performance.now() };

/**
 * Replica time in real mode: µs since the Unix epoch, read from a monotonic clock anchored to the
 * wall clock once, when the clock is made. Anchored, because replica time meets the outside world —
 * the agent's ingress_expiry is checked against it, and the agent checks a certificate's /time
 * against its own clock. Monotonic, because the replica core assumes time never goes back (its
 * timers, timeouts and rank delays are differences of now()), and the wall clock can be stepped
 * (NTP, an operator) while a process runs. The price is drift from the wall clock over a long run
 * (the monotonic clock is not slewed like the wall clock), well inside the minutes the agent allows.
 * Across a restart the new anchor is the wall clock again; `notBeforeUs` (e.g. the last time the
 * previous incarnation recorded) keeps time from going back if the wall clock did.
 */
export class RealClock {
  private readonly sources: ClockSources;
  private readonly anchorWallUs: number;
  private readonly anchorMonotonicMs: number;
  private lastUs: number;

  constructor(options: { readonly sources?: ClockSources; readonly notBeforeUs?: number } = {}) {
    this.sources = options.sources ?? SYSTEM_CLOCK;
    this.anchorWallUs = Math.round(this.sources.wallMs() * 1000);
    this.anchorMonotonicMs = this.sources.monotonicMs();
    this.lastUs = Math.max(0, options.notBeforeUs ?? 0);
  }

  now(): TimeUs {
    const elapsedUs = Math.floor((this.sources.monotonicMs() - this.anchorMonotonicMs) * 1000);
    // max: the clamp to notBeforeUs, and a guard against a monotonic source that is not.
    this.lastUs = Math.max(this.lastUs, this.anchorWallUs + elapsedUs);
    return this.lastUs as TimeUs;
  }
}

// ---- timers ----------------------------------------------------------------------------------------------

/** Node's setTimeout takes at most 2^31 − 1 ms; a later deadline re-arms on the way. */
const TIMEOUT_MAX_MS = 2 ** 31 - 1;

/**
 * `setTimer(at, tag)` on Node timers. A timer never fires before `at` by the clock, and timers fire
 * in the order of their deadlines (equal deadlines in the order they were set): one Node timeout
 * stands for the earliest pending deadline, and each wake fires every timer that is due, in order.
 * (One Node timeout per timer could fire out of order: Node timers have ms resolution, a wake a few
 * µs early must re-arm, and on a busy loop the re-armed one could come after a later deadline.)
 */
export class RealTimers {
  /** Pending timers sorted by (at, id). */
  private readonly queue: { readonly id: number; readonly at: TimeUs; readonly tag: string }[] = [];
  private nextId = 0;
  private timeout: NodeJS.Timeout | undefined;
  private armedFor: TimeUs | undefined;

  constructor(
    private readonly clock: RealClock,
    private readonly fire: (tag: string) => void,
  ) {}

  set(at: TimeUs, tag: string): TimerHandle {
    const timer = { id: this.nextId++, at, tag };
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.at > at) i--; // after every timer due no later: (at, id) order
    this.queue.splice(i, 0, timer);
    this.schedule();
    return { id: timer.id };
  }

  cancel(handle: TimerHandle): void {
    const i = this.queue.findIndex((x) => x.id === handle.id);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.schedule();
  }

  cancelAll(): void {
    this.queue.length = 0;
    this.schedule();
  }

  get size(): number {
    return this.queue.length;
  }

  /** One Node timeout, for the earliest deadline (none when nothing is pending). */
  private schedule(): void {
    const head = this.queue[0];
    if (head !== undefined && this.timeout !== undefined && this.armedFor === head.at) return;
    clearTimeout(this.timeout);
    this.timeout = undefined;
    this.armedFor = undefined;
    if (head === undefined) return;
    const delayMs = Math.min(TIMEOUT_MAX_MS, Math.max(0, Math.ceil((head.at - this.clock.now()) / 1000)));
    this.armedFor = head.at;
    this.timeout = setTimeout(() => this.wake(), delayMs);
  }

  /** Fires every due timer in deadline order (a wake a little early fires none and re-arms). */
  private wake(): void {
    this.timeout = undefined;
    this.armedFor = undefined;
    try {
      for (let head = this.queue[0]; head !== undefined && head.at <= this.clock.now(); head = this.queue[0]) {
        this.queue.shift();
        this.fire(head.tag);
      }
    } finally {
      this.schedule(); // the rest stay armed even if a handler threw
    }
  }
}

// ---- trace sinks -----------------------------------------------------------------------------------------

export interface RealTraceRecord {
  readonly atUs: TimeUs;
  readonly replica: ReplicaId;
  readonly kind: string;
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
  readonly malicious?: boolean;
}

export type RealTraceSink = (record: RealTraceRecord) => void;

/**
 * Trace records as JSON lines appended to `path`. Each line is one write(2), so a SIGKILL loses at
 * most the line being written — and the lines before the crash are what one wants to read after it.
 */
export function jsonLinesTraceSink(path: string): { readonly sink: RealTraceSink; close(): void } {
  const fd = openSync(path, "a");
  let open = true;
  return {
    sink: (record) => {
      assert(open, `trace file ${path} is closed`);
      writeSync(fd, `${JSON.stringify(record)}\n`);
    },
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

// ---- the Env ---------------------------------------------------------------------------------------------

/** Messages to bytes and back. `decode` throws on bytes that are not a message. */
export interface Codec<M> {
  encode(message: M): Uint8Array;
  decode(bytes: Uint8Array): M;
}

/** What the Env needs of a transport (TcpTransport is one). */
export interface FrameTransport {
  send(to: ReplicaId, bytes: Uint8Array): void;
  setFrameHandler(handler: FrameHandler): void;
}

/** Who the Env calls back: the replica (its `onMessage` and `onTimer`). */
export interface EnvHandler<M> {
  onMessage(from: ReplicaId, message: M): void;
  onTimer(tag: string): void;
}

export interface RealEnvOptions<M> {
  readonly self: ReplicaId;
  /**
   * The run's seed; the replica's stream is `fromSeed(seed).fork("subnet").fork("replica/<id>/incarnation/<n>")`,
   * the stream the simulator's scenario runner gives the same replica.
   */
  readonly seed: number | bigint | string;
  /** Which start of this replica's process this is (a restarted one draws a fresh stream). */
  readonly incarnation?: number;
  readonly disk: Disk;
  readonly transport: FrameTransport;
  readonly codec: Codec<M>;
  /** Where trace events go (default: nowhere). */
  readonly trace?: RealTraceSink;
  readonly clock?: RealClock;
  readonly log?: (line: string) => void;
}

export interface RealEnvStats {
  readonly framesReceived: number;
  /** Frames whose bytes did not decode as a message (dropped, traced as `frame.undecodable`). */
  readonly undecodableFrames: number;
  /** Frames that arrived before `attach` (dropped). */
  readonly framesBeforeAttach: number;
  readonly pendingTimers: number;
}

export interface RealEnv<M> extends Env<M> {
  /** Names the replica that receives messages and timers; call before frames can arrive. */
  attach(handler: EnvHandler<M>): void;
  /** Cancels every timer and stops delivering frames (the disk and transport are the caller's to close). */
  close(): void;
  stats(): RealEnvStats;
}

export function createRealEnv<M>(options: RealEnvOptions<M>): RealEnv<M> {
  const clock = options.clock ?? new RealClock();
  const sink = options.trace ?? (() => undefined);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let handler: EnvHandler<M> | undefined;
  let closed = false;
  const counts = { framesReceived: 0, undecodableFrames: 0, framesBeforeAttach: 0 };
  const trace = (event: TraceEvent): void =>
    sink({
      atUs: clock.now(),
      replica: options.self,
      kind: event.kind,
      ...(event.detail === undefined ? {} : { detail: event.detail }),
      ...(event.malicious === true ? { malicious: true } : {}),
    });
  const timers = new RealTimers(clock, (tag) => {
    assert(handler !== undefined, `timer ${tag} fired before a replica was attached to r${options.self}'s Env`);
    handler.onTimer(tag);
  });

  options.transport.setFrameHandler((from, bytes) => {
    if (closed) return;
    counts.framesReceived++;
    if (handler === undefined) {
      counts.framesBeforeAttach++;
      return;
    }
    let message: M;
    try {
      message = options.codec.decode(bytes);
    } catch (error) {
      // A peer's bytes that are no message: its fault, not ours — drop, note, carry on.
      counts.undecodableFrames++;
      const why = error instanceof Error ? error.message : String(error);
      if (counts.undecodableFrames === 1) log(`r${options.self}: dropping an undecodable frame from r${from} (${bytes.length} bytes): ${why}`);
      trace({ kind: "frame.undecodable", detail: { from, bytes: bytes.length, error: why.slice(0, 200) } });
      return;
    }
    handler.onMessage(from, message);
  });

  return {
    self: options.self,
    now: () => clock.now(),
    send: (to, message) => {
      assert(to !== options.self, `replica ${to} sends to itself`);
      options.transport.send(to, options.codec.encode(message));
    },
    setTimer: (at, tag) => {
      assert(!closed, `setTimer(${tag}) on a closed Env`);
      return timers.set(at, tag);
    },
    cancelTimer: (handle) => timers.cancel(handle),
    rng: Rng.fromSeed(options.seed).fork("subnet").fork(`replica/${options.self}/incarnation/${options.incarnation ?? 0}`),
    disk: options.disk,
    trace,
    attach: (next) => {
      assert(handler === undefined, `a replica is already attached to r${options.self}'s Env`);
      handler = next;
    },
    close: () => {
      closed = true;
      timers.cancelAll();
    },
    stats: () => ({ ...counts, pendingTimers: timers.size }),
  };
}
