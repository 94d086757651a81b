// The only door between the replica core and the world (DESIGN.md rule 1: sans-IO).
// The simulator implements it with virtual time and a simulated network; real mode will implement
// it with sockets and the wall clock. Replica code never reaches past it.
import type { Blob } from "./disk-records.ts";
import type { Rng } from "./rng.ts";
import type { ReplicaId, TimeUs } from "../types.ts";
import type { XNetMessage, XNetPeer } from "../replica/interfaces.ts";

/** Something the replica writes into the trace; `kind` is a short dotted name like `block.propose`. */
export interface TraceEvent {
  readonly kind: string;
  /** Small, canonical detail: numbers and strings only, fixed field order. */
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
  /** True when a fault injector did this on purpose (DESIGN.md rule 6). */
  readonly malicious?: boolean;
}

/**
 * A replica's disk: keys to bytes. The contract a real disk keeps, and the simulated one enforces:
 * - values are bytes, copied on write and on read, so nothing done in memory afterwards changes
 *   what is on the disk (encode objects with harness/sim/disk-records.ts);
 * - `write` and `remove` are pending until `sync()`: reads see them at once, but a power loss
 *   (the storage fault `lose-unsynced`) drops every pending change and a torn write leaves a
 *   prefix of the last one; a process crash alone loses nothing;
 * - what was synced survives crashes, unless a storage fault corrupts it (detect with checksums).
 */
export interface Disk {
  write(key: string, bytes: Uint8Array): void;
  /** Writes the blobs' bytes one after the other as the value of `key` (blobs are immutable: no copy needed). */
  writeBlobs(key: string, blobs: readonly Blob[]): void;
  read(key: string): Uint8Array | undefined;
  /** Whether a value is stored under `key` (no copy). */
  has(key: string): boolean;
  remove(key: string): void;
  /** Keys starting with `prefix`, ascending. */
  keys(prefix: string): string[];
  /** Makes every pending write and remove durable. */
  sync(): void;
}

export interface TimerHandle {
  readonly id: number;
}

/** A message the simulator queued for the replica instead of delivering it as an event. */
export interface QueuedMessage<Message> {
  readonly from: ReplicaId;
  readonly message: Message;
  /** When it reached the replica (the replica takes it at its next input, at or after this). */
  readonly atUs: TimeUs;
}

export interface Env<Message> {
  readonly self: ReplicaId;
  now(): TimeUs;
  send(to: ReplicaId, message: Message): void;
  /** Multi-subnet: a message to a replica of another subnet (the XNet transport); absent on a lone subnet. */
  sendXNet?(to: XNetPeer, message: XNetMessage): void;
  /** Calls back `onTimer(tag)` on the replica at `at` (or now, if `at` is in the past). */
  setTimer(at: TimeUs, tag: string): TimerHandle;
  cancelTimer(handle: TimerHandle): void;
  /**
   * Simulator only: peers' bundles that carry nothing but ingress — which no step reacts to — are
   * queued rather than made one event each; this hands over those that arrived up to now, in
   * (arrival time, sequence) order, each once. The replica takes them before every input, so its
   * state at each input is what delivering them one by one would have made it. Real mode delivers
   * every bundle through `onMessage` and has no queue.
   */
  takeArrivals?(): readonly QueuedMessage<Message>[];
  readonly rng: Rng;
  readonly disk: Disk;
  trace(event: TraceEvent): void;
}
