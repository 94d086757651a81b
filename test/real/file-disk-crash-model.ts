// The work the crash child (file-disk-crash-child.ts) does on a FileDisk, as a model the parent
// test checks the reopened disk against (issue 12 item 4). Step s: write `rec/<s>`, remove the
// record WINDOW steps older, write `meta/last` = s, sync. The state after step s depends on s only,
// so a child restarted on the same disk continues the same sequence.
import { Rng } from "../../harness/sim/rng.ts";
import type { Disk } from "../../harness/sim/env.ts";

export const WINDOW = 16;
/** Small enough that the child compacts every few steps, so kills also land inside compactions. */
export const CHILD_COMPACT_DEAD_BYTES_MIN = 256 * 1024;

export const recordKey = (step: number): string => `rec/${String(step).padStart(8, "0")}`;
const LAST = "meta/last";

/** The value step `step` writes: mostly small, every 13th 300 KiB (a kill may land inside it). */
export function valueOf(step: number): Uint8Array {
  const rng = Rng.fromSeed(`file-disk-crash/${step}`);
  const length = step % 13 === 0 ? 300 * 1024 : 50 + rng.below(4000);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const word = rng.nextU32();
    for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (word >>> (8 * j)) & 0xff;
  }
  return out;
}

export function runStep(disk: Disk, step: number): void {
  disk.write(recordKey(step), valueOf(step));
  if (step >= WINDOW) disk.remove(recordKey(step - WINDOW));
  disk.write(LAST, new TextEncoder().encode(String(step)));
}

export function lastStep(disk: Disk): number | undefined {
  const bytes = disk.read(LAST);
  return bytes === undefined ? undefined : Number(new TextDecoder().decode(bytes));
}

/**
 * The keys the disk may hold after the last whole step `m`: the state after step m, or after the
 * first one or two changes of step m+1 (the kill came inside it).
 */
export function possibleKeySets(m: number): string[][] {
  const after = (s: number): string[] => [...Array.from({ length: Math.min(WINDOW, s + 1) }, (_, i) => recordKey(s - i)), LAST].sort();
  const whole = after(m);
  const firstWrite = [...whole, recordKey(m + 1)].sort();
  const thenRemove = m + 1 >= WINDOW ? firstWrite.filter((k) => k !== recordKey(m + 1 - WINDOW)) : firstWrite;
  return [whole, firstWrite, thenRemove];
}
