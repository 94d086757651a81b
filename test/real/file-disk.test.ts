// Issue 12 item 4: the file-backed disk of real mode (harness/real/file-disk.ts). It runs the same
// contract suite as the simulated disk (test/sim/disk-contract.ts), then what only a real file
// shows: a log damaged after its last sync (what a power loss may leave) reopens as a prefix of the
// changes, compaction and its interrupted states, and processes SIGKILLed at random moments.
import test from "ava";
import { spawn } from "node:child_process";
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileDisk, MAX_KEY_BYTES } from "../../harness/real/file-disk.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { diskContract } from "../sim/disk-contract.ts";
import { lastStep, possibleKeySets, valueOf } from "./file-disk-crash-model.ts";

const ROOT = mkdtempSync(join(tmpdir(), "subnetlab-file-disk-"));
let dirs = 0;
const freshDir = (): string => join(ROOT, `d${dirs++}`);
test.after.always(() => rmSync(ROOT, { recursive: true, force: true }));

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const logPath = (dir: string): string => {
  const logs = readdirSync(dir).filter((n) => /^log-\d{8}$/.test(n));
  if (logs.length !== 1) throw new Error(`expected one log in ${dir}, found ${logs.join(", ")}`);
  return join(dir, logs[0]!);
};
const contents = (disk: FileDisk): Record<string, string> => Object.fromEntries(disk.keys("").map((k) => [k, Buffer.from(disk.read(k)!).toString("hex")]));

diskContract({
  label: "item 4, FileDisk",
  make: () => new FileDisk(freshDir()),
  restartAfterKill: (disk) => {
    disk.close();
    return new FileDisk(disk.dir);
  },
});

/** A disk with synced changes, then unsynced ones; the states after each prefix of the unsynced ones. */
function diskWithUnsyncedTail(): { dir: string; syncedBytes: number; fileBytes: number; prefixStates: Record<string, string>[] } {
  const dir = freshDir();
  const disk = new FileDisk(dir);
  disk.write("a", bytes(1, 2, 3));
  disk.write("b", bytes(4));
  disk.sync();
  const syncedBytes = disk.logBytes;
  const prefixStates = [contents(disk)];
  const changes: ((d: FileDisk) => void)[] = [
    (d) => d.write("c", bytes(5, 6)),
    (d) => d.remove("a"),
    (d) => d.write("b", bytes(7, 7, 7, 7, 7, 7, 7, 7)),
    (d) => d.write("d/ü", new Uint8Array(40).fill(9)),
  ];
  for (const change of changes) {
    change(disk);
    prefixStates.push(contents(disk));
  }
  const fileBytes = disk.logBytes;
  disk.close();
  return { dir, syncedBytes, fileBytes, prefixStates };
}

function reopenCopy(source: string, damage: (path: string) => void): FileDisk {
  const dir = freshDir();
  new FileDisk(dir).close();
  copyFileSync(logPath(source), logPath(dir));
  damage(logPath(dir));
  return new FileDisk(dir);
}

test("item 4: a log cut at any byte after its last sync reopens as the synced state plus a whole prefix of the later changes", (t) => {
  const { dir, syncedBytes, fileBytes, prefixStates } = diskWithUnsyncedTail();
  const seen = new Set<number>();
  for (let cut = syncedBytes; cut <= fileBytes; cut++) {
    const disk = reopenCopy(dir, (path) => truncateSync(path, cut));
    const state = contents(disk);
    const prefix = prefixStates.findIndex((s) => JSON.stringify(s) === JSON.stringify(state));
    t.true(prefix >= 0, `cut at ${cut}: ${JSON.stringify(state)} is no prefix state`);
    seen.add(prefix);
    t.is(disk.logBytes + disk.recovery.droppedTailBytes, cut, "what was not kept was cut off");
    // The repaired log takes appends that a later reopen reads back.
    disk.write("after", bytes(1));
    disk.close();
    const again = new FileDisk(disk.dir);
    t.deepEqual(again.read("after"), bytes(1), `cut at ${cut}: an append after the repair survives`);
    t.is(again.recovery.droppedTailBytes, 0);
    again.close();
  }
  t.deepEqual([...seen].sort(), [0, 1, 2, 3, 4], "every prefix occurs for some cut");
});

test("item 4: garbage, zeros or a flipped bit after the last sync cost only the changes from the damage on", (t) => {
  const { dir, prefixStates } = diskWithUnsyncedTail();
  const full = prefixStates[prefixStates.length - 1]!;
  const rng = Rng.fromSeed("file-disk-garbage");
  const garbage = new Uint8Array(500).map(() => rng.below(256));
  const withGarbage = reopenCopy(dir, (path) => appendFileSync(path, garbage));
  t.deepEqual(contents(withGarbage), full);
  t.is(withGarbage.recovery.droppedTailBytes, 500);
  t.regex(withGarbage.recovery.droppedTailReason ?? "", /magic|cut short|checksum|kind|lengths/);

  const withZeros = reopenCopy(dir, (path) => appendFileSync(path, new Uint8Array(4096)));
  t.deepEqual(contents(withZeros), full);
  t.regex(withZeros.recovery.droppedTailReason ?? "", /no record magic/);

  // Flip one bit in the value of the third unsynced change (b := 7,7,…): it and what follows go.
  const flipped = reopenCopy(dir, (path) => {
    const log = readFileSync(path);
    const at = log.lastIndexOf(Buffer.from([7, 7, 7, 7, 7, 7, 7, 7]));
    log[at + 3]! ^= 0x01;
    writeFileSync(path, log);
  });
  t.deepEqual(contents(flipped), prefixStates[2]);
  t.regex(flipped.recovery.droppedTailReason ?? "", /checksum mismatch/);
});

test("item 4: compaction keeps every live value, shrinks the log, and survives reopening", (t) => {
  const dir = freshDir();
  const disk = new FileDisk(dir, { compactDeadBytesMin: 10_000 });
  for (let round = 0; round < 50; round++) {
    for (let k = 0; k < 10; k++) disk.write(`key/${k}`, new Uint8Array(500).fill(round));
    disk.remove(`gone/${round - 1}`);
    disk.write(`gone/${round}`, bytes(round));
    disk.sync();
  }
  t.true(disk.compactions >= 5, `compactions: ${disk.compactions}`);
  t.true(disk.logBytes < 3 * 11 * 530, `log of ${disk.logBytes} bytes holds ~11 live records`);
  const expected = contents(disk);
  t.deepEqual(disk.keys(""), [...Array.from({ length: 10 }, (_, k) => `key/${k}`), "gone/49"].sort());
  disk.close();
  t.deepEqual(readdirSync(dir).length, 1, "only the newest log is left");
  t.deepEqual(contents(new FileDisk(dir)), expected);
});

test("item 4: an interrupted compaction leaves the old log or the new one — opening picks the newest and deletes the rest", (t) => {
  const { dir, prefixStates } = diskWithUnsyncedTail();
  const full = prefixStates[prefixStates.length - 1]!;
  // Crashed before the rename: a partial .tmp of the next generation beside the log.
  writeFileSync(join(dir, "log-00000002.tmp"), new Uint8Array(100).fill(1));
  writeFileSync(join(dir, "someone-else.tmp"), "not the disk's");
  const beforeRename = new FileDisk(dir);
  t.deepEqual(contents(beforeRename), full);
  t.deepEqual(beforeRename.recovery.removedFiles, ["log-00000002.tmp"]);
  t.true(existsSync(join(dir, "someone-else.tmp")), "other files in the directory are left alone");
  beforeRename.close();
  // Crashed after the rename, before the old log was deleted: both logs, the newer one complete.
  const newer = freshDir();
  const compacted = new FileDisk(newer, { compactDeadBytesMin: 0 });
  for (const value of [1, 1, 2]) compacted.write("x", bytes(value));
  compacted.sync();
  t.is(compacted.recovery.generation, 1);
  compacted.close();
  t.true(existsSync(join(newer, "log-00000002")), "the sync compacted into generation 2");
  copyFileSync(logPath(dir), join(newer, "log-00000001"));
  const afterRename = new FileDisk(newer);
  t.is(afterRename.recovery.generation, 2);
  t.deepEqual(afterRename.recovery.removedFiles, ["log-00000001"]);
  t.deepEqual(contents(afterRename), { x: "02" });
});

test("item 4: keys that cannot be stored, values too large for one read, and a closed disk are clear errors", (t) => {
  const disk = new FileDisk(freshDir());
  t.throws(() => disk.write("bad\uD800key", bytes(1)), { instanceOf: TypeError, message: /not well-formed Unicode/ });
  t.throws(() => disk.write("k".repeat(MAX_KEY_BYTES + 1), bytes(1)), { instanceOf: RangeError, message: /exceeds the maximum of 4096/ });
  t.deepEqual(disk.keys(""), [], "a refused write leaves nothing behind");
  disk.close();
  t.throws(() => disk.read("k"), { message: /is closed/ });
});

/** Runs the crash child on `dir` until its first synced step, then `delayMs` more, then SIGKILLs it. */
async function runAndKill(dir: string, delayMs: number): Promise<{ acknowledged: number; exit: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", new URL("./file-disk-crash-child.ts", import.meta.url).pathname, dir], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const closed = new Promise<string>((resolve) => child.on("close", (code, signal) => resolve(`${code ?? ""}${signal ?? ""}`)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("\n")) resolve();
    });
    child.on("close", () => reject(new Error(`crash child exited before its first sync: ${err}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill("SIGKILL");
  const exit = await closed;
  // Every complete line is a step whose sync had returned; a line cut by the kill is not counted.
  const lines = out.split("\n").slice(0, -1).map(Number);
  return { acknowledged: Math.max(...lines), exit };
}

test("item 4: processes SIGKILLed at random moments lose no synced step and leave no torn or foreign value", async (t) => {
  const dir = freshDir();
  const rng = Rng.fromSeed("file-disk-crash-test");
  for (let iteration = 0; iteration < 6; iteration++) {
    const delayMs = rng.between(0, 300);
    const { acknowledged, exit } = await runAndKill(dir, delayMs);
    t.is(exit, "SIGKILL");
    const disk = new FileDisk(dir);
    const m = lastStep(disk);
    t.true(m !== undefined && m >= acknowledged, `iteration ${iteration}: last whole step ${m} < acknowledged ${acknowledged}`);
    const keys = disk.keys("");
    t.true(
      possibleKeySets(m!).some((set) => JSON.stringify(set) === JSON.stringify(keys)),
      `iteration ${iteration}: keys after step ${m} are no state the steps can leave: ${keys.join(" ")}`,
    );
    for (const key of keys.filter((k) => k.startsWith("rec/"))) {
      const step = Number(key.slice(4));
      t.deepEqual(disk.read(key), valueOf(step), `iteration ${iteration}: ${key} holds what step ${step} wrote`);
    }
    t.log(`iteration ${iteration}: killed ${delayMs} ms after the first sync, acknowledged ${acknowledged}, last whole step ${m}, ${disk.recovery.records} records, generation ${disk.recovery.generation}, tail dropped ${disk.recovery.droppedTailBytes} B, removed ${disk.recovery.removedFiles.join(",") || "-"}`);
    disk.close();
  }
});
