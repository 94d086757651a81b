// The `Disk` contract (harness/sim/env.ts) as one suite that every disk runs: the simulated disk
// (test/sim/disk.test.ts, issue 11 item 7) and the file-backed one (test/real/file-disk.test.ts,
// issue 12 item 4). Each disk's own crash behaviour beyond a process crash is tested beside it.
import test from "ava";
import { Blob } from "../../harness/sim/disk-records.ts";
import type { Disk } from "../../harness/sim/env.ts";

export interface DiskUnderTest extends Disk {
  /** Keys written or removed since the last sync. */
  readonly pendingCount: number;
}

export interface DiskMaker<D extends DiskUnderTest> {
  /** Shown in the test titles, e.g. "item 7, SimDisk". */
  readonly label: string;
  /** A new, empty disk. */
  make(): D;
  /** The disk as a restarted process finds it after its process was killed (no power loss). */
  restartAfterKill(disk: D): D;
}

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

export function diskContract<D extends DiskUnderTest>(maker: DiskMaker<D>): void {
  const title = (what: string): string => `${maker.label}: ${what}`;

  test(title("values are bytes, copied on write and on read — changing memory afterwards never changes the disk"), (t) => {
    const disk = maker.make();
    const written = bytes(1, 2, 3);
    disk.write("k", written);
    written[0] = 99;
    t.deepEqual(disk.read("k"), bytes(1, 2, 3), "a write keeps its own copy");
    const read = disk.read("k")!;
    read[1] = 99;
    t.deepEqual(disk.read("k"), bytes(1, 2, 3), "a read hands out a copy");
    disk.sync();
    t.deepEqual(disk.read("k"), bytes(1, 2, 3));
    disk.write("empty", new Uint8Array(0));
    t.deepEqual(disk.read("empty"), new Uint8Array(0), "an empty value is a value");
    t.true(disk.has("empty"));
  });

  test(title("writes and removes are pending until sync; reads, has and keys see them at once"), (t) => {
    const disk = maker.make();
    disk.write("a/1", bytes(1));
    disk.write("a/2", bytes(2));
    disk.write("b/1", bytes(3));
    t.is(disk.pendingCount, 3);
    t.deepEqual(disk.keys("a/"), ["a/1", "a/2"]);
    disk.sync();
    t.is(disk.pendingCount, 0);
    disk.remove("a/1");
    t.false(disk.has("a/1"));
    t.deepEqual(disk.keys("a/"), ["a/2"]);
    t.is(disk.read("a/1"), undefined);
    disk.remove("missing");
    t.is(disk.pendingCount, 1, "removing what is not there is no change");
    disk.write("a/1", bytes(4));
    disk.write("a/1", bytes(5, 5));
    t.deepEqual(disk.read("a/1"), bytes(5, 5), "the latest write wins");
    t.is(disk.pendingCount, 1, "one key changed three times is one pending change");
  });

  test(title("keys are any strings, listed ascending by prefix"), (t) => {
    const disk = maker.make();
    const keys = ["pages/ab", "pages/a/b", "pages/a%2F", "", "..", "../x", "with space", "line\nbreak", "ünïcödé/😀", "pages", "pages/\u0000nul", "x".repeat(300)];
    keys.forEach((k, i) => disk.write(k, bytes(i)));
    t.deepEqual(disk.keys(""), [...keys].sort());
    t.deepEqual(disk.keys("pages/"), ["pages/\u0000nul", "pages/a%2F", "pages/a/b", "pages/ab"]);
    keys.forEach((k, i) => t.deepEqual(disk.read(k), bytes(i), JSON.stringify(k)));
    t.deepEqual(disk.keys("nothing"), []);
  });

  test(title("writeBlobs stores the blobs' bytes one after the other"), (t) => {
    const disk = maker.make();
    const source = bytes(1, 2, 3);
    const blob = Blob.copyOf(source);
    source[0] = 9;
    disk.writeBlobs("k", [blob, Blob.copyOf(bytes(4)), blob]);
    disk.writeBlobs("none", []);
    t.deepEqual(disk.read("k"), bytes(1, 2, 3, 4, 1, 2, 3));
    t.deepEqual(disk.read("none"), new Uint8Array(0));
    disk.read("k")![0] = 7;
    t.deepEqual(disk.read("k"), bytes(1, 2, 3, 4, 1, 2, 3));
  });

  test(title("a killed process loses nothing that was written, synced or not"), (t) => {
    let disk = maker.make();
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    disk.write("synced", bytes(1));
    disk.write("gone", bytes(2));
    disk.write("big", big);
    disk.sync();
    disk.remove("gone");
    disk.write("unsynced", bytes(3));
    disk.write("synced", bytes(4));
    disk = maker.restartAfterKill(disk);
    t.deepEqual(disk.keys(""), ["big", "synced", "unsynced"]);
    t.deepEqual(disk.read("synced"), bytes(4));
    t.deepEqual(disk.read("unsynced"), bytes(3));
    t.deepEqual(disk.read("big"), big);
    t.is(disk.read("gone"), undefined);
    disk.write("after", bytes(5));
    disk.sync();
    disk = maker.restartAfterKill(disk);
    t.deepEqual(disk.read("after"), bytes(5), "a restarted disk takes new writes");
  });
}
