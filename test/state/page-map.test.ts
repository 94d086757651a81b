// PageMap: persistence, canonical hashing, content addressing, heap delta.
// Expected values come from a plain Uint8Array model of the same writes (the bytes a memory must
// hold), and from PageMap.fromBytes of those bytes (the canonical hash of those bytes).
import test from "ava";
import fc from "fast-check";
import { PAGE_SIZE_BYTES, PageMap, pageMapHashCounts, sharedPageStoreSize } from "../../harness/state/page-map.ts";

const page = (fill: number): Uint8Array => new Uint8Array(PAGE_SIZE_BYTES).fill(fill);

test("empty map: zero size, zero pages, reads give zero pages", (t) => {
  const m = PageMap.empty();
  t.is(m.sizeBytes, 0);
  t.is(m.pageCount(), 0);
  t.deepEqual(m.readPage(5), new Uint8Array(PAGE_SIZE_BYTES));
  t.is(m.toBytes().length, 0);
  t.is(m.hash(), PageMap.fromBytes(new Uint8Array(0)).hash());
});

test("withPages is persistent: the old map keeps its bytes and hash", (t) => {
  const a = PageMap.fromBytes(new Uint8Array(3 * PAGE_SIZE_BYTES));
  const hashA = a.hash();
  const b = a.withPages(new Map([[1, page(7)]]));
  t.is(a.readPage(1)[0], 0);
  t.is(a.hash(), hashA);
  t.is(b.readPage(1)[0], 7);
  t.not(b.hash(), hashA);
  t.is(b.sizeBytes, 3 * PAGE_SIZE_BYTES);
});

test("withPages copies: mutating the caller's arrays or the viewed buffer afterwards changes nothing", (t) => {
  const standalone = page(3);
  const m = PageMap.empty().withPages(new Map([[0, standalone]]));
  standalone.fill(9);
  t.is(m.readPage(0)[0], 3);
  const big = new Uint8Array(2 * PAGE_SIZE_BYTES).fill(4);
  const m2 = PageMap.empty().withPages(new Map([[0, big.subarray(0, PAGE_SIZE_BYTES)]]));
  big.fill(9);
  t.is(m2.readPage(0)[0], 4);
});

test("withOwnedPages keeps standalone page arrays without copying and copies views", (t) => {
  const standalone = page(3);
  const big = new Uint8Array(2 * PAGE_SIZE_BYTES).fill(4);
  const m = PageMap.empty().withOwnedPages(new Map([[0, standalone], [1, big.subarray(0, PAGE_SIZE_BYTES)]]));
  t.is(m.readPage(0), standalone); // adopted: the same array
  big.fill(9);
  t.is(m.readPage(1)[0], 4); // a view into a larger buffer is still copied
  t.is(m.hash(), PageMap.empty().withPages(new Map([[0, page(3)], [1, page(4)]])).hash());
});

test("hashing is incremental: after one write only that page and its path (depth + 1 nodes) are hashed", (t) => {
  const bytes = new Uint8Array(1024 * PAGE_SIZE_BYTES);
  for (let i = 0; i < 1024; i++) bytes[i * PAGE_SIZE_BYTES] = (i % 250) + 1; // 1024 distinct non-zero pages
  const m = PageMap.fromBytes(bytes);
  const c0 = pageMapHashCounts();
  m.hash();
  const c1 = pageMapHashCounts();
  t.is(c1.pages - c0.pages, 1024); // the first hash sees every page once
  const m2 = m.withPages(new Map([[700, page(7)]]));
  m2.hash();
  const c2 = pageMapHashCounts();
  t.is(c2.pages - c1.pages, 1); // only the written page
  t.is(c2.inner - c1.inner, 10); // depth log2(1024) = 10 inner nodes on its path
  m2.hash();
  t.deepEqual(pageMapHashCounts(), c2); // memoised
});

test("writing past the end grows the map to cover the page", (t) => {
  const m = PageMap.empty().withPages(new Map([[9, page(1)]]));
  t.is(m.sizeBytes, 10 * PAGE_SIZE_BYTES);
  t.is(m.pageCount(), 10);
  t.is(m.hash(), PageMap.fromBytes(m.toBytes()).hash());
});

test("hash depends on size: trailing zero pages are part of the memory", (t) => {
  const small = PageMap.fromBytes(new Uint8Array(PAGE_SIZE_BYTES));
  const large = PageMap.fromBytes(new Uint8Array(2 * PAGE_SIZE_BYTES));
  t.not(small.hash(), large.hash());
  t.is(small.resized(2 * PAGE_SIZE_BYTES).hash(), large.hash());
  t.is(large.resized(PAGE_SIZE_BYTES).hash(), small.hash());
});

test("equal pages are shared between independently built maps once hashed (content-addressed)", (t) => {
  const content = new Uint8Array(PAGE_SIZE_BYTES);
  content[17] = 0xab; // content unique to this test
  const r1 = PageMap.empty().resized(2 * PAGE_SIZE_BYTES).withPages(new Map([[0, content]]));
  const r2 = PageMap.fromBytes(new Uint8Array(2 * PAGE_SIZE_BYTES)).withPages(new Map([[0, content]]));
  t.not(r1.readPage(0), r2.readPage(0)); // two copies until hashed
  t.is(r1.hash(), r2.hash());
  t.is(r1.readPage(0), r2.readPage(0)); // after hashing: the same stored page, not just equal bytes
  t.true(sharedPageStoreSize() >= 1);
});

test("heap delta: distinct pages written since the last checkpoint", (t) => {
  const m0 = PageMap.fromBytes(new Uint8Array(8 * PAGE_SIZE_BYTES));
  const m1 = m0.withPages(new Map([[2, page(1)], [5, page(1)]]));
  const m2 = m1.withPages(new Map([[2, page(2)], [3, page(0)]]));
  t.deepEqual(m2.heapDeltaPageIndices(), [2, 3, 5]);
  t.deepEqual(m1.heapDeltaPageIndices(), [2, 5]); // persistent: m2's write did not reach m1
  t.is(m1.heapDeltaBytes(), 2 * PAGE_SIZE_BYTES);
  t.is(m2.heapDeltaBytes(), 3 * PAGE_SIZE_BYTES);
  const cp = m2.markCheckpointed();
  t.deepEqual(cp.heapDeltaPageIndices(), []);
  t.is(cp.hash(), m2.hash());
  t.deepEqual(cp.withPages(new Map([[7, page(4)]])).heapDeltaPageIndices(), [7]);
});

test("copyChangedInto brings a buffer of the previous map up to date", (t) => {
  const a = PageMap.fromBytes(new Uint8Array(16 * PAGE_SIZE_BYTES).fill(1));
  const b = a.withPages(new Map([[3, page(0)], [10, page(5)]]));
  const target = a.toBytes();
  b.copyChangedInto(target, a);
  t.deepEqual(target, b.toBytes());
});

test("a partial last page keeps bytes beyond sizeBytes out of the hash", (t) => {
  const bytes = new Uint8Array(PAGE_SIZE_BYTES + 100).fill(2);
  const m = PageMap.fromBytes(bytes);
  t.is(m.sizeBytes, PAGE_SIZE_BYTES + 100);
  const written = m.withPages(new Map([[1, page(2)]])); // writes 4096 bytes of 2 into page 1
  t.is(written.sizeBytes, 2 * PAGE_SIZE_BYTES); // a whole-page write grows to a whole page
  t.is(written.hash(), PageMap.fromBytes(written.toBytes()).hash());
});

// Property: for any sequence of page writes, the incrementally maintained map holds the same
// bytes as a plain array model, and its hash equals the hash of a map built from scratch.
test("property: random page writes → bytes match a model, hash equals fromBytes(bytes).hash(), heap delta = indices written since the checkpoint", (t) => {
  const write = fc.record({
    index: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1020, max: 1030 })),
    fill: fc.integer({ min: 0, max: 3 }), // small alphabet: zero pages and repeats are common
    poke: fc.option(fc.tuple(fc.integer({ min: 0, max: PAGE_SIZE_BYTES - 1 }), fc.integer({ min: 0, max: 255 }))),
  });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 20 }), fc.array(fc.array(write, { maxLength: 6 }), { maxLength: 8 }), (initialPages, batches) => {
      let model = new Uint8Array(initialPages * PAGE_SIZE_BYTES);
      let map = PageMap.fromBytes(model);
      const written = new Set<number>(); // model of the heap delta: every index written
      const checkpointAt = batches.length >> 1;
      for (const batch of batches) {
        const dirty = new Map<number, Uint8Array>();
        for (const w of batch) {
          const p = page(w.fill);
          if (w.poke !== null) p[w.poke[0]] = w.poke[1];
          dirty.set(w.index, p);
          const needed = (w.index + 1) * PAGE_SIZE_BYTES;
          if (needed > model.length) {
            const grown = new Uint8Array(needed);
            grown.set(model);
            model = grown;
          }
        }
        for (const [i, p] of dirty) model.set(p, i * PAGE_SIZE_BYTES);
        // alternate the copying and the owning write (pages are fresh arrays, never reused)
        map = batch.length % 2 === 0 ? map.withPages(dirty) : map.withOwnedPages(dirty);
        for (const i of dirty.keys()) written.add(i);
        // hash after every batch, so memoised inner hashes are reused by later batches
        if (map.hash() !== PageMap.fromBytes(model).hash()) return false;
        const expectedDelta = [...written].sort((a, b) => a - b);
        if (JSON.stringify(map.heapDeltaPageIndices()) !== JSON.stringify(expectedDelta)) return false;
        if (map.heapDeltaBytes() !== expectedDelta.length * PAGE_SIZE_BYTES) return false;
        if (batches.indexOf(batch) === checkpointAt) {
          map = map.markCheckpointed();
          written.clear();
        }
      }
      const bytes = map.toBytes();
      return bytes.length === model.length && Buffer.compare(bytes, model) === 0 && map.hash() === PageMap.fromBytes(bytes).hash();
    }),
    { numRuns: 200, seed: 42 },
  );
  t.pass();
});
