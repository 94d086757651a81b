// One toxic of a chain on one live link: an input queue and the toxic's current run. A run starts
// with a toxicity roll (failed roll → the data passes untouched) and lasts until it is interrupted
// — the chain changed, so the run restarts and rolls again — or until it closes the stream.
import { performance } from "node:perf_hooks";
import { assert } from "../../assert.ts";
import type { ToxicEntry } from "./toxic-chains.ts";
import { DEADLINE, END, passThrough, STOP, type Chunk, type StageIo, type Taken, type ToxicState } from "./toxics/io.ts";

/** Where a stage (or the link's reader) hands chunks: the next stage or the destination socket. */
export interface Downstream {
  accept(chunk: Chunk): void;
  /** No more chunks will come. */
  end(): void;
}

/** What a stage needs from its link. */
export interface StageHost {
  /** Bytes left the link without reaching the destination (dropped). */
  release(bytes: number): void;
  /** Does this run of a toxic with this toxicity apply? */
  rollToxicity(toxicity: number): boolean;
  randomBelow(bound: number): number;
  /** A toxic run threw: a bug; the link's connection is torn down. */
  fail(error: unknown): void;
}

export const nowMs = (): number => performance.now();

export class Stage implements Downstream {
  readonly state: ToxicState = { bytesSent: 0 };
  output: Downstream;
  private queue: Chunk[] = [];
  private inputEnded = false;
  private closed = false;
  private disposed = false;
  private interrupting = false;
  private running: Promise<void> | undefined;
  /** Re-checks the condition the current run waits on (it waits on at most one thing at a time). */
  private wake: (() => void) | undefined;

  constructor(
    readonly entry: ToxicEntry,
    output: Downstream,
    private readonly host: StageHost,
  ) {
    this.output = output;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  accept(chunk: Chunk): void {
    if (this.closed || this.disposed) return this.host.release(chunk.data.length);
    this.queue.push(chunk);
    this.wake?.();
  }

  end(): void {
    this.inputEnded = true;
    this.wake?.();
  }

  /** Starts a run: rolls the toxicity and reads the toxic's attributes as they are now. */
  start(): void {
    if (this.disposed || this.closed) return;
    assert(this.running === undefined, `toxic ${this.entry.name} started twice on one link`);
    const io = this.io();
    const applies = this.host.rollToxicity(this.entry.toxicity);
    const run = applies ? this.entry.kind.run(io, { ...this.entry.attributes }, this.state) : passThrough(io);
    this.running = run.catch((error: unknown) => this.host.fail(error)).finally(() => (this.running = undefined));
  }

  /** Stops the current run (it hands on what it holds). False when the stage already closed the stream. */
  async interrupt(): Promise<boolean> {
    if (this.closed || this.disposed) return false;
    if (this.running !== undefined) {
      this.interrupting = true;
      this.wake?.();
      await this.running;
      this.interrupting = false;
    }
    return !this.closed && !this.disposed;
  }

  /** Ends the stream here without a run (cleanup of a removed timeout, or a closed predecessor). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropQueue();
    this.output.end();
  }

  /** The stage leaves the chain: what waits in its queue, and its end, go on to its output. */
  handOver(): void {
    assert(this.running === undefined, `toxic ${this.entry.name} removed while running`);
    this.disposed = true;
    const waiting = this.queue;
    this.queue = [];
    for (const chunk of waiting) this.output.accept(chunk);
    if (this.inputEnded) this.output.end();
  }

  /** The connection is gone: stop waiting, drop everything, never run again. */
  dispose(): void {
    this.disposed = true;
    this.dropQueue();
    this.wake?.();
  }

  private dropQueue(): void {
    for (const chunk of this.queue) this.host.release(chunk.data.length);
    this.queue = [];
  }

  private stopping(): boolean {
    return this.interrupting || this.disposed;
  }

  private nextInput(deadlineAtMs: number | undefined): Taken | undefined {
    if (this.stopping()) return STOP;
    const chunk = this.queue.shift();
    if (chunk !== undefined) return chunk;
    if (this.inputEnded) return END;
    if (deadlineAtMs !== undefined && nowMs() >= deadlineAtMs) return DEADLINE;
    return undefined;
  }

  private io(): StageIo {
    return {
      take: (deadlineAtMs) => this.take(deadlineAtMs),
      sleep: (ms) => this.sleep(ms, true),
      sleepThrough: async (ms) => void (await this.sleep(ms, false)),
      emit: (chunk) => (this.disposed ? this.host.release(chunk.data.length) : this.output.accept(chunk)),
      discard: (chunk) => this.host.release(chunk.data.length),
      close: () => this.close(),
      nowMs,
      randomBelow: (bound) => this.host.randomBelow(bound),
    };
  }

  private take(deadlineAtMs: number | undefined): Promise<Taken> {
    const ready = this.nextInput(deadlineAtMs);
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (taken: Taken): void => {
        this.wake = undefined;
        if (timer !== undefined) clearTimeout(timer);
        resolve(taken);
      };
      this.wake = () => {
        const taken = this.nextInput(deadlineAtMs);
        if (taken !== undefined) settle(taken);
      };
      if (deadlineAtMs !== undefined) {
        timer = setTimeout(() => settle(this.nextInput(deadlineAtMs) ?? DEADLINE), Math.max(0, deadlineAtMs - nowMs()));
      }
    });
  }

  /** Resolves true after `ms`; false early when interrupted (if `interruptible`) or disposed. */
  private sleep(ms: number, interruptible: boolean): Promise<boolean> {
    const cut = (): boolean => this.disposed || (interruptible && this.interrupting);
    if (cut()) return Promise.resolve(false);
    if (!(ms > 0)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(true);
      }, ms);
      this.wake = () => {
        if (!cut()) return;
        clearTimeout(timer);
        this.wake = undefined;
        resolve(false);
      };
    });
  }
}
