// A replica's simulated disk: survives crashes (the harness keeps it while the replica is down),
// holds values by reference and counts the bytes written.
import type { Disk } from "./env.ts";

export class SimDisk implements Disk {
  private readonly store = new Map<string, unknown>();
  bytesWritten = 0;

  write(key: string, value: unknown, sizeBytes: number): void {
    this.store.set(key, value);
    this.bytesWritten += sizeBytes;
  }
  read<T>(key: string): T | undefined {
    return this.store.get(key) as T | undefined;
  }
  remove(key: string): void {
    this.store.delete(key);
  }
  keys(prefix: string): string[] {
    return [...this.store.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  /** Loses everything (a replaced machine). */
  wipe(): void {
    this.store.clear();
  }
}
