// The only door between the replica core and the world (DESIGN.md rule 1: sans-IO).
// The simulator implements it with virtual time and a simulated network; real mode will implement
// it with sockets and the wall clock. Replica code never reaches past it.
import type { Rng } from "./rng.ts";
import type { ReplicaId, TimeUs } from "../types.ts";

/** Something the replica writes into the trace; `kind` is a short dotted name like `block.propose`. */
export interface TraceEvent {
  readonly kind: string;
  /** Small, canonical detail: numbers and strings only, fixed field order. */
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
  /** True when a fault injector did this on purpose (DESIGN.md rule 6). */
  readonly malicious?: boolean;
}

/** A key-value disk that survives crashes; values are opaque snapshots owned by the writer. */
export interface Disk {
  write(key: string, value: unknown, sizeBytes: number): void;
  read<T>(key: string): T | undefined;
  remove(key: string): void;
  keys(prefix: string): string[];
}

export interface TimerHandle {
  readonly id: number;
}

export interface Env<Message> {
  readonly self: ReplicaId;
  now(): TimeUs;
  send(to: ReplicaId, message: Message): void;
  /** Calls back `onTimer(tag)` on the replica at `at` (or now, if `at` is in the past). */
  setTimer(at: TimeUs, tag: string): TimerHandle;
  cancelTimer(handle: TimerHandle): void;
  readonly rng: Rng;
  readonly disk: Disk;
  trace(event: TraceEvent): void;
}
