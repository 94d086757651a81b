// State sync carries a checkpoint as the files it is made of on the sender's disk — its record,
// its pages, its modules, whatever else the state machine stores beside it — as the IC's state
// sync transfers a checkpoint's files chunk by chunk. The receiver reads them back through the same
// code that reads its own checkpoints (a `Disk` over the received files), so every check a
// restart makes (record checksums, page hashes, the manifest) is made on what a peer sent.
//
// Layout (harness/wire.ts): "SLS1" · u32 file count · per file (key, bytes), keys strictly
// ascending: one encoding per set of files.
import { Blob } from "../sim/disk-records.ts";
import type { Disk } from "../sim/env.ts";
import { decodeWith, encodeWith, type Decoded } from "../wire.ts";

export type CheckpointFile = readonly [key: string, bytes: Uint8Array];

const MAGIC = [0x53, 0x4c, 0x53, 0x31] as const; // "SLS1"
const MAX_KEY_BYTES = 1024;

export function encodeCheckpointFiles(files: readonly CheckpointFile[]): Uint8Array {
  const sorted = [...files].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return encodeWith((w) => {
    for (const b of MAGIC) w.u8(b);
    w.list(sorted, (x, [key, bytes]) => x.str(key).bytes(bytes));
  });
}

export function decodeCheckpointFiles(bytes: Uint8Array): Decoded<CheckpointFile[]> {
  return decodeWith(
    bytes,
    (r) => {
      for (const b of MAGIC) if (r.u8("magic") !== b) r.fail("not a set of checkpoint files (bad magic)");
      const files = r.list((x): CheckpointFile => [x.str(MAX_KEY_BYTES, "file key"), x.bytes(undefined, "file")], { minItemBytes: 8, what: "files" });
      for (let i = 1; i < files.length; i++) {
        if (!((files[i - 1] as CheckpointFile)[0] < (files[i] as CheckpointFile)[0])) r.fail("file keys are not strictly ascending");
      }
      return files;
    },
    "checkpoint files",
  );
}

/**
 * A disk holding received files, for the code that reads checkpoints. It follows the `Disk`
 * contract (copies on read and write); nothing it holds is ever synced anywhere.
 */
export class CheckpointFilesDisk implements Disk {
  private readonly files: Map<string, Uint8Array>;

  constructor(files: readonly CheckpointFile[]) {
    this.files = new Map(files.map(([k, v]) => [k, v]));
  }

  write(key: string, bytes: Uint8Array): void {
    this.files.set(key, bytes.slice());
  }
  writeBlobs(key: string, blobs: readonly Blob[]): void {
    this.files.set(key, Blob.concat(blobs));
  }
  read(key: string): Uint8Array | undefined {
    return this.files.get(key)?.slice();
  }
  has(key: string): boolean {
    return this.files.has(key);
  }
  remove(key: string): void {
    this.files.delete(key);
  }
  keys(prefix: string): string[] {
    return [...this.files.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  sync(): void {}
}
