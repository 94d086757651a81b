// npm run bench:disk — the file-backed disk of real mode (harness/real/file-disk.ts) on this
// machine: small records each followed by a sync (a replica's pool log), 4 KiB pages written and
// synced once (a checkpoint), reading them back, and reopening (the log scan). Last line: JSON.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileDisk } from "../harness/real/file-disk.ts";

const root = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "subnetlab-bench-disk-"));
const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

function smallSyncedWrites(recordBytes: number, durationS: number): number {
  const disk = new FileDisk(join(root, `small-${recordBytes}`));
  const value = new Uint8Array(recordBytes).fill(7);
  const start = process.hrtime.bigint();
  let n = 0;
  while (seconds(start) < durationS) {
    disk.write(`pool/${String(n).padStart(10, "0")}`, value);
    if (n >= 100) disk.remove(`pool/${String(n - 100).padStart(10, "0")}`);
    disk.sync();
    n++;
  }
  const perSec = n / seconds(start);
  disk.close();
  return Math.round(perSec);
}

function pages(count: number): { writeMBps: number; readMBps: number; reopenMBps: number } {
  const dir = join(root, "pages");
  const disk = new FileDisk(dir);
  const page = new Uint8Array(4096);
  const mb = (count * 4096) / 1e6;
  let start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    page[0] = i & 0xff;
    page[1] = (i >> 8) & 0xff;
    disk.write(`pages/${i.toString(16).padStart(8, "0")}`, page);
  }
  disk.sync();
  const writeMBps = mb / seconds(start);
  start = process.hrtime.bigint();
  for (const key of disk.keys("pages/")) disk.read(key);
  const readMBps = mb / seconds(start);
  disk.close();
  start = process.hrtime.bigint();
  new FileDisk(dir).close();
  const reopenMBps = mb / seconds(start);
  return { writeMBps: Math.round(writeMBps), readMBps: Math.round(readMBps), reopenMBps: Math.round(reopenMBps) };
}

try {
  const pageCount = Number(process.env.BENCH_PAGES ?? 25_600);
  const result = {
    syncedWritesPerSec200B: smallSyncedWrites(200, 3),
    syncedWritesPerSec4KiB: smallSyncedWrites(4096, 3),
    pages: pageCount,
    ...pages(pageCount),
  };
  console.log(`synced 200 B writes: ${result.syncedWritesPerSec200B}/s; synced 4 KiB writes: ${result.syncedWritesPerSec4KiB}/s`);
  console.log(`${pageCount} pages of 4 KiB: write+sync ${result.writeMBps} MB/s, read ${result.readMBps} MB/s, reopen ${result.reopenMBps} MB/s`);
  console.log(JSON.stringify(result));
} finally {
  rmSync(root, { recursive: true, force: true });
}
