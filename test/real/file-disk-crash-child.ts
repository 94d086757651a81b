// Child process of the FileDisk crash test (file-disk.test.ts, issue 12 item 4): runs steps of
// file-disk-crash-model.ts on the disk in argv[2] forever, continuing after the last whole step on
// the disk, and prints each step's number only after its sync returned — so every number the
// parent reads was synced before the parent could have killed us.
import { writeSync } from "node:fs";
import { FileDisk } from "../../harness/real/file-disk.ts";
import { CHILD_COMPACT_DEAD_BYTES_MIN, lastStep, runStep } from "./file-disk-crash-model.ts";

const dir = process.argv[2];
if (dir === undefined) throw new Error("usage: file-disk-crash-child.ts DIR");
const disk = new FileDisk(dir, { compactDeadBytesMin: CHILD_COMPACT_DEAD_BYTES_MIN });
for (let step = (lastStep(disk) ?? -1) + 1; ; step++) {
  runStep(disk, step);
  disk.sync();
  writeSync(1, `${step}\n`);
}
