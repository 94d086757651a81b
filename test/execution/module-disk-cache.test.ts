// Issue 13 item 4: instrumented modules cached on disk by module hash, so a new process (a fuzz
// worker, a test file, a CLI run) does not instrument the ledger again. The key holds the
// instrumenter's own code, entries carry a checksum, and paranoid mode re-checks a hit.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModuleCache, moduleHash } from "../../harness/execution/module-cache.ts";
import { instrumenterCodeHash, localImportClosure, ModuleDiskCache } from "../../harness/execution/module-disk-cache.ts";
import { LiveInstance } from "../../harness/execution/instance.ts";

const COUNTER = readFileSync(new URL("../../fixtures/canisters/c/counter.wasm", import.meta.url));
const cacheDir = (): string => mkdtempSync(join(tmpdir(), "subnetlab-module-cache-"));

test("issue 13 item 4: a second process's cache reads the instrumentation from disk instead of instrumenting", (t) => {
  const dir = cacheDir();
  const first = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: false });
  const written = first.get(COUNTER);
  t.is(first.instrumentationCount, 1);
  t.is(first.disk?.stats.writes, 1);

  const second = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: false });
  const read = second.get(COUNTER);
  t.is(second.instrumentationCount, 0, "a hit instruments nothing");
  t.is(second.disk?.stats.hits, 1);
  t.deepEqual(Buffer.from(read.binary), Buffer.from(written.binary));
  const { binary: _a, compiled: _b, ...writtenMetadata } = written;
  const { binary: _c, compiled: _d, ...readMetadata } = read;
  t.deepEqual(JSON.parse(JSON.stringify(readMetadata)), JSON.parse(JSON.stringify(writtenMetadata)));
  t.truthy(new LiveInstance(read).memory, "the cached module compiles and instantiates");
});

test("issue 13 item 4: another instrumenter key never meets the old entry", (t) => {
  const dir = cacheDir();
  new ModuleCache({ disk: new ModuleDiskCache(dir, () => "instrumenter v1"), paranoid: false }).get(COUNTER);
  const changed = new ModuleCache({ disk: new ModuleDiskCache(dir, () => "instrumenter v2"), paranoid: false });
  changed.get(COUNTER);
  t.is(changed.instrumentationCount, 1, "a changed instrumenter instruments again");
  t.is(changed.disk?.stats.hits, 0);
  t.is(changed.disk?.stats.misses, 1);
  const same = new ModuleCache({ disk: new ModuleDiskCache(dir, () => "instrumenter v1"), paranoid: false });
  same.get(COUNTER);
  t.is(same.instrumentationCount, 0, "the unchanged key still hits");
});

test("issue 13 item 4: the instrumenter key covers the code instrument.ts imports, transitively, and binaryen's version", (t) => {
  const files = localImportClosure(new URL("../../harness/execution/instrument.ts", import.meta.url).pathname).map((f) => f.replace(/^.*\/harness\//, ""));
  for (const f of ["execution/instrument.ts", "execution/cost-table.ts", "execution/system-api.ts", "execution/module-limits.ts", "execution/binaryen.ts", "state/page-map.ts"]) {
    t.true(files.includes(f), `${f} in ${files.join(", ")}`);
  }
  t.regex(instrumenterCodeHash(), /^[0-9a-f]{64}$/);
});

for (const [name, damage] of [
  ["truncated", (bytes: Buffer): Buffer => bytes.subarray(0, bytes.length - 100)],
  ["one byte of the binary flipped", (bytes: Buffer): Buffer => { const copy = Buffer.from(bytes); copy.writeUInt8(copy.readUInt8(copy.length - 200) ^ 0x01, copy.length - 200); return copy; }],
  ["empty", (): Buffer => Buffer.alloc(0)],
] as const) {
  test(`issue 13 item 4: a disk entry that is ${name} is ignored, instrumented again and replaced`, (t) => {
    const dir = cacheDir();
    const disk = new ModuleDiskCache(dir);
    const original = new ModuleCache({ disk, paranoid: false }).get(COUNTER);
    const path = disk.pathOf(moduleHash(COUNTER));
    writeFileSync(path, damage(readFileSync(path)));

    const next = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: false });
    const module = next.get(COUNTER);
    t.is(next.disk?.stats.rejected, 1);
    t.is(next.instrumentationCount, 1, "instrumented again, not trusted");
    t.deepEqual(Buffer.from(module.binary), Buffer.from(original.binary));
    const after = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: false });
    after.get(COUNTER);
    t.is(after.disk?.stats.hits, 1, "the entry was written again whole");
  });
}

test("issue 13 item 4: paranoid mode instruments a disk hit again and refuses an entry that differs", (t) => {
  const dir = cacheDir();
  const disk = new ModuleDiskCache(dir);
  const { moduleHash: _hash, compiled: _compiled, uploaded: _uploaded, dataPages: _dataPages, ...real } = new ModuleCache({ disk, paranoid: false }).get(COUNTER);
  // A well-formed entry under the right key whose binary is not what the instrumenter makes (a
  // stale key or a bug): its checksum is right, so only re-instrumenting can tell.
  const forged = Buffer.from(real.binary);
  forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 0x01, forged.length - 1);
  disk.write(moduleHash(COUNTER), { ...real, binary: forged });

  const paranoidCache = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: true });
  t.throws(() => paranoidCache.get(COUNTER), { message: /nondeterministic.*disk cache entry/ });
  const trusting = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: false });
  t.deepEqual(Buffer.from(trusting.get(COUNTER).binary), Buffer.from(forged), "without paranoia the entry is used as written (that is why paranoid runs re-check)");

  disk.write(moduleHash(COUNTER), real);
  const checked = new ModuleCache({ disk: new ModuleDiskCache(dir), paranoid: true });
  t.notThrows(() => checked.get(COUNTER));
  t.is(checked.disk?.stats.hits, 1);
});
