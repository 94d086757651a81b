// One direction of a proxied connection: bytes read from the source socket pass the proxy's toxic
// chain for that direction, stage by stage, and are written to the destination socket. When the
// stream ends (the source ended and everything before it was written, or a toxic closed it), the
// destination socket is closed — Toxiproxy closes the whole socket, there is no half-close.
import type { Socket } from "node:net";
import { Stage, nowMs, type Downstream, type StageHost } from "./stage.ts";
import type { ToxicEntry } from "./toxic-chains.ts";
import type { Chunk } from "./toxics/io.ts";
import type { Direction } from "./types.ts";

/**
 * Flow control: the source is paused while this many bytes are inside the link or waiting in the
 * destination socket's buffer. Large enough that a latency toxic pipelines (Toxiproxy buffers up to
 * 1024 chunks per latency stage) without letting one link hold unbounded memory.
 */
const IN_FLIGHT_BYTES_MAX = 16 * 1024 * 1024;

export interface LinkHost {
  rollToxicity(toxicity: number): boolean;
  randomBelow(bound: number): number;
  /** The stream ended: close `dest` (gracefully or with RST, the connection decides). */
  closeDestination(link: Link): void;
  fail(error: unknown): void;
}

export class Link implements StageHost {
  private stages: Stage[] = [];
  private inFlightBytes = 0;
  private sourcePaused = false;
  private sourceEnded = false;
  private finished = false;
  private readonly sink: Downstream;

  constructor(
    readonly direction: Direction,
    readonly source: Socket,
    readonly dest: Socket,
    chain: readonly ToxicEntry[],
    private readonly host: LinkHost,
  ) {
    this.sink = { accept: (chunk) => this.write(chunk), end: () => this.finish() };
    for (const entry of chain) this.stages.push(new Stage(entry, this.sink, this));
    this.stages.forEach((stage, i) => (stage.output = this.stages[i + 1] ?? this.sink));
    dest.on("drain", () => this.adjustFlow());
  }

  /** Starts every stage's run and begins reading the source. */
  start(): void {
    for (const stage of this.stages) stage.start();
    this.source.resume();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Bytes read from the source. */
  receive(data: Buffer): void {
    if (this.sourceEnded || this.finished) return;
    this.inFlightBytes += data.length;
    this.head().accept({ data, readAtMs: nowMs() });
    this.adjustFlow();
  }

  /** The source will give nothing more (EOF, error, or the other direction closed it). */
  endOfSource(): void {
    if (this.sourceEnded) return;
    this.sourceEnded = true;
    this.head().end();
  }

  /** The destination socket is gone: nothing can be written any more. */
  destinationGone(): void {
    this.finished = true;
    this.dispose();
  }

  dispose(): void {
    for (const stage of this.stages) stage.dispose();
  }

  /** A toxic joins the end of the chain (Toxiproxy: the previous last toxic re-runs and rolls again). */
  async addToxic(entry: ToxicEntry): Promise<void> {
    if (this.finished) return;
    const previous = this.stages.at(-1);
    const stage = new Stage(entry, this.sink, this);
    if (previous !== undefined && !(await previous.interrupt())) {
      // The stream already closed at the previous toxic: the new one has nothing to act on.
      this.stages.push(stage);
      return;
    }
    this.stages.push(stage);
    if (previous !== undefined) previous.output = stage;
    stage.start();
    previous?.start();
  }

  /** A toxic's attributes or toxicity changed: its run restarts (and rolls again). */
  async updateToxic(entry: ToxicEntry): Promise<void> {
    const stage = this.stages.find((s) => s.entry === entry);
    if (stage !== undefined && (await stage.interrupt())) stage.start();
  }

  /** A toxic leaves the chain; what it holds goes on, and its predecessor re-runs. */
  async removeToxic(entry: ToxicEntry): Promise<void> {
    const stage = this.stages.find((s) => s.entry === entry);
    if (stage === undefined || !(await stage.interrupt())) return;
    if (entry.kind.closesLinkWhenRemoved) return stage.close();
    const index = this.stages.indexOf(stage);
    const previous = index > 0 ? this.stages[index - 1] : undefined;
    this.stages.splice(index, 1);
    if (previous !== undefined) previous.output = stage.output;
    stage.handOver();
    if (previous !== undefined && (await previous.interrupt())) previous.start();
  }

  release(bytes: number): void {
    this.inFlightBytes -= bytes;
    this.adjustFlow();
  }

  rollToxicity(toxicity: number): boolean {
    return this.host.rollToxicity(toxicity);
  }

  randomBelow(bound: number): number {
    return this.host.randomBelow(bound);
  }

  fail(error: unknown): void {
    this.host.fail(error);
  }

  private head(): Downstream {
    return this.stages[0] ?? this.sink;
  }

  private write(chunk: Chunk): void {
    this.inFlightBytes -= chunk.data.length;
    if (!this.finished && !this.dest.destroyed && this.dest.writable) this.dest.write(chunk.data);
    this.adjustFlow();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.host.closeDestination(this);
  }

  private adjustFlow(): void {
    const full = this.inFlightBytes + this.dest.writableLength > IN_FLIGHT_BYTES_MAX;
    if (full && !this.sourcePaused) {
      this.sourcePaused = true;
      this.source.pause();
    } else if (!full && this.sourcePaused) {
      this.sourcePaused = false;
      this.source.resume();
    }
  }
}
