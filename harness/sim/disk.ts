// A replica's simulated disk (the `Disk` contract in env.ts): bytes only, copied on write and on
// read, with writes pending until `sync()`. The harness keeps it while the replica is down; at a
// crash it decides what the pending writes become (a process crash keeps them, a power loss —
// storage fault `lose-unsynced` — drops them, `torn-write` leaves a prefix of the last one), and
// storage faults can flip bits in what is stored.
import { Blob } from "./disk-records.ts";
import type { Disk } from "./env.ts";

/** A stored value: bytes the disk owns, or immutable blobs one after the other (shared, not copied). */
type Stored = Uint8Array | readonly Blob[];

const bytesOf = (value: Stored): Uint8Array => (value instanceof Uint8Array ? value : Blob.concat(value));
const lengthOf = (value: Stored): number => (value instanceof Uint8Array ? value.length : value.reduce((n, b) => n + b.length, 0));

/** What a crash does to the writes not yet synced. */
export type CrashLoss = "none" | "lose-unsynced" | "torn-write";

export interface CrashOutcome {
  readonly loss: CrashLoss;
  /** Writes and removes pending at the crash. */
  readonly pending: number;
  /** Of those, how many never reached the disk (the torn one included). */
  readonly lost: number;
  /** torn-write: the write that reached the disk in part. */
  readonly torn?: { readonly key: string; readonly keptBytes: number; readonly ofBytes: number };
}

export class SimDisk implements Disk {
  private readonly durable = new Map<string, Stored>();
  /** Changes since the last sync in the order made (a key changed again moves to the end); null = removed. */
  private readonly pending = new Map<string, Stored | null>();
  bytesWritten = 0;
  syncs = 0;

  write(key: string, bytes: Uint8Array): void {
    this.store(key, bytes.slice());
  }

  writeBlobs(key: string, blobs: readonly Blob[]): void {
    this.store(key, [...blobs]);
  }

  read(key: string): Uint8Array | undefined {
    const stored = this.current(key);
    if (stored === undefined) return undefined;
    return stored instanceof Uint8Array ? stored.slice() : Blob.concat(stored);
  }

  has(key: string): boolean {
    return this.current(key) !== undefined;
  }

  remove(key: string): void {
    if (!this.has(key)) return;
    this.pending.delete(key);
    this.pending.set(key, null);
  }

  keys(prefix: string): string[] {
    const out = new Set<string>();
    for (const k of this.durable.keys()) if (k.startsWith(prefix)) out.add(k);
    for (const [k, v] of this.pending) {
      if (!k.startsWith(prefix)) continue;
      if (v === null) out.delete(k);
      else out.add(k);
    }
    return [...out].sort();
  }

  sync(): void {
    for (const [k, v] of this.pending) this.apply(k, v);
    this.pending.clear();
    this.syncs++;
  }

  /** Number of writes and removes not yet synced. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * The replica's process died. `none`: the operating system still writes what it was given (a
   * process crash loses nothing); `lose-unsynced`: power loss, every pending change is gone;
   * `torn-write`: the pending changes reach the disk in order but the last write only in part
   * (the first half of its bytes) — a removal that is last simply does not happen.
   */
  crash(loss: CrashLoss): CrashOutcome {
    const pending = [...this.pending];
    this.pending.clear();
    if (loss === "none") {
      for (const [k, v] of pending) this.apply(k, v);
      return { loss, pending: pending.length, lost: 0 };
    }
    if (loss === "lose-unsynced" || pending.length === 0) return { loss, pending: pending.length, lost: pending.length };
    const [lastKey, lastValue] = pending[pending.length - 1]!;
    for (const [k, v] of pending.slice(0, -1)) this.apply(k, v);
    if (lastValue === null) return { loss, pending: pending.length, lost: 1 };
    const bytes = bytesOf(lastValue);
    const keptBytes = Math.floor(bytes.length / 2);
    this.durable.set(lastKey, bytes.slice(0, keptBytes));
    return { loss, pending: pending.length, lost: 1, torn: { key: lastKey, keptBytes, ofBytes: bytes.length } };
  }

  /**
   * Bit rot: flips the lowest bit of the byte at `offsetOf(length)` in the value under `key`.
   * Returns the offset, or undefined when there is no such value (or it is empty).
   */
  corrupt(key: string, offsetOf: (length: number) => number): number | undefined {
    const stored = this.current(key);
    if (stored === undefined || lengthOf(stored) === 0) return undefined;
    // Blobs are shared with other disks: the rot is this disk's own copy.
    const bytes = stored instanceof Uint8Array ? stored : bytesOf(stored);
    const offset = offsetOf(bytes.length);
    bytes[offset] = (bytes[offset] ?? 0) ^ 0x01;
    if (bytes !== stored) (this.pending.has(key) ? this.pending : this.durable).set(key, bytes);
    return offset;
  }

  /** Loses everything (a replaced machine). */
  wipe(): void {
    this.durable.clear();
    this.pending.clear();
  }

  private store(key: string, value: Stored): void {
    this.pending.delete(key);
    this.pending.set(key, value);
    this.bytesWritten += lengthOf(value);
  }

  private current(key: string): Stored | undefined {
    if (this.pending.has(key)) return this.pending.get(key) ?? undefined;
    return this.durable.get(key);
  }

  private apply(key: string, value: Stored | null): void {
    if (value === null) this.durable.delete(key);
    else this.durable.set(key, value);
  }
}
