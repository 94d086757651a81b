// Issue 11, item 7: the disk contract (harness/sim/env.ts `Disk`, harness/sim/disk.ts) and the
// self-checking records written on it (harness/sim/disk-records.ts). The contract every disk keeps
// is one suite (disk-contract.ts), shared with the file-backed disk of real mode.
import test from "ava";
import fc from "fast-check";
import { SimDisk } from "../../harness/sim/disk.ts";
import { diskContract } from "./disk-contract.ts";
import { Blob, crc32, decodeValue, encodeValue, openRecord, openRecords, readRecord, sealRecord, writeRecord } from "../../harness/sim/disk-records.ts";

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

diskContract({
  label: "item 7, SimDisk",
  make: () => new SimDisk(),
  restartAfterKill: (disk) => {
    disk.crash("none");
    return disk;
  },
});

test("item 7: a process crash keeps pending writes; lose-unsynced drops them; torn-write keeps the others and half of the last", (t) => {
  const setUp = (): SimDisk => {
    const disk = new SimDisk();
    disk.write("synced", bytes(1));
    disk.sync();
    disk.write("p1", bytes(2));
    disk.remove("synced");
    disk.write("p2", bytes(1, 2, 3, 4, 5, 6));
    return disk;
  };
  const plain = setUp();
  t.deepEqual(plain.crash("none"), { loss: "none", pending: 3, lost: 0 });
  t.deepEqual(plain.keys(""), ["p1", "p2"]);

  const lost = setUp();
  t.deepEqual(lost.crash("lose-unsynced"), { loss: "lose-unsynced", pending: 3, lost: 3 });
  t.deepEqual(lost.keys(""), ["synced"], "only what was synced survives a power loss");

  const torn = setUp();
  t.deepEqual(torn.crash("torn-write"), { loss: "torn-write", pending: 3, lost: 1, torn: { key: "p2", keptBytes: 3, ofBytes: 6 } });
  t.deepEqual(torn.keys(""), ["p1", "p2"]);
  t.deepEqual(torn.read("p2"), bytes(1, 2, 3), "the last write reached the disk in part");

  const rewritten = new SimDisk();
  rewritten.write("x", bytes(1, 1));
  rewritten.write("y", bytes(2, 2));
  rewritten.write("x", bytes(3, 3, 3, 3));
  t.is(rewritten.crash("torn-write").torn?.key, "x", "a key written again is the latest write");
});

test("item 7: corrupt flips one bit where it is stored, synced or not", (t) => {
  const disk = new SimDisk();
  disk.write("k", bytes(0, 0, 0));
  disk.sync();
  t.is(disk.corrupt("k", () => 1), 1);
  t.deepEqual(disk.read("k"), bytes(0, 1, 0));
  t.is(disk.corrupt("none", () => 0), undefined);
});

test("item 7: records find torn and flipped bytes; values round-trip bytes, bigints and undefined array slots", (t) => {
  const value = { bytes: bytes(1, 2, 255), big: 2n ** 70n, list: [1, undefined, "x"], nested: { ok: true } };
  t.deepEqual(decodeValue(encodeValue(value)), value);
  t.deepEqual(decodeValue(encodeValue({ buffer: Buffer.from([7, 8]) })), { buffer: bytes(7, 8) }, "a Buffer is written as bytes");
  t.throws(() => encodeValue({ map: new Map() }), { message: /Map cannot be written to disk/ });
  t.is(crc32(new TextEncoder().encode("123456789")), 0xcbf43926, "the standard CRC-32 check value");
  t.is(crc32(new Uint8Array(0)), 0);

  const record = sealRecord(encodeValue(value));
  t.true(openRecord(record).ok);
  t.regex(JSON.stringify(openRecord(record.subarray(0, record.length - 1))), /torn record/);
  t.regex(JSON.stringify(openRecord(record.subarray(0, 5))), /torn record/);
  for (const offset of [0, 6, 9, 20, record.length - 1]) {
    const flipped = record.slice();
    flipped[offset] = (flipped[offset] ?? 0) ^ 0x10;
    t.false(openRecord(flipped).ok, `a bit flipped at ${offset} is found`);
  }

  const disk = new SimDisk();
  writeRecord(disk, "r", { hash: "abc" });
  t.deepEqual(readRecord(disk, "r"), { ok: true, value: { hash: "abc" } });
  t.is(readRecord(disk, "missing"), undefined);
  disk.corrupt("r", (length) => length - 2);
  const rotten = readRecord(disk, "r");
  t.false(rotten?.ok);
  t.regex(rotten?.ok === false ? rotten.reason : "", /^r: corrupt record: checksum mismatch/);
});

test("item 7: one write of several records splits back into their payloads; a torn or flipped one fails the whole", (t) => {
  const parts = [encodeValue({ a: 1 }), encodeValue("two"), new Uint8Array(0)].map(sealRecord);
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    joined.set(p, offset);
    offset += p.length;
  }
  const opened = openRecords(joined);
  t.true(opened.ok);
  t.deepEqual(opened.ok ? opened.payloads.map((p) => p.length) : [], [7, 5, 0]);
  t.regex(JSON.stringify(openRecords(joined.subarray(0, joined.length - 3))), /record 3: torn record/);
  t.regex(JSON.stringify(openRecords(joined.subarray(0, parts[0]!.length + 4))), /record 2: torn record/);
  const flipped = joined.slice();
  flipped[parts[0]!.length + 14] = (flipped[parts[0]!.length + 14] ?? 0) ^ 1;
  t.regex(JSON.stringify(openRecords(flipped)), /record 2: corrupt record: checksum mismatch/);
});

test("item 7: a blob is kept by reference on many disks yet nothing can change it; rot and tears stay on one disk", (t) => {
  const source = bytes(1, 2, 3, 4);
  const blob = Blob.copyOf(source);
  source[0] = 99;
  const [a, b] = [new SimDisk(), new SimDisk()];
  a.writeBlobs("k", [blob, blob]);
  b.writeBlobs("k", [blob]);
  t.deepEqual(a.read("k"), bytes(1, 2, 3, 4, 1, 2, 3, 4), "the blob was copied when made");
  a.read("k")![0] = 77;
  a.sync();
  a.corrupt("k", () => 0);
  t.deepEqual(a.read("k"), bytes(0, 2, 3, 4, 1, 2, 3, 4));
  t.deepEqual(b.read("k"), bytes(1, 2, 3, 4), "the other disk's copy did not rot");
  t.deepEqual(b.crash("torn-write").torn, { key: "k", keptBytes: 2, ofBytes: 4 });
  t.deepEqual(b.read("k"), bytes(1, 2));
  t.deepEqual(Blob.concat([blob]), bytes(1, 2, 3, 4));
});

/** CRC-32 bit by bit (IEEE 802.3, reflected): the definition the records' checksum must keep. */
function crc32Reference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test("issue 13 item 4: the records' CRC-32 (zlib's) equals the bitwise definition, whatever the bytes and their offset in a buffer", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000, size: "max" }), fc.nat(16), (data, offset) => {
      const inside = new Uint8Array(offset + data.length + 3);
      inside.set(data, offset);
      const view = inside.subarray(offset, offset + data.length);
      return crc32(data) === crc32Reference(data) && crc32(view) === crc32Reference(data);
    }),
    { numRuns: 300 },
  );
  t.pass();
});
