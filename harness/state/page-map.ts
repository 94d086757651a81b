// A canister memory (Wasm heap or stable memory) as an immutable map of 4 KiB pages
// (DESIGN.md "State"; research/ic-protocol.md §4.6, §5.4).
//
// Shape: a persistent binary trie over page indices. A leaf is a content-addressed `Page`; an
// absent subtree means "all zero". `withPages` copies only the paths to the written pages, so
// untouched pages and subtrees are shared between versions. Equal pages are shared between
// canisters and replicas through a process-wide content-addressed page store: when a page is
// first hashed, a leaf whose content is already stored is swapped for the stored page (same
// bytes, so the swap is invisible) and the copy is dropped.
//
// Hash (canonical, depends only on sizeBytes and the bytes):
//   page hash   = SHA-256(4096 bytes)   (exactly 4096-byte inputs; inner inputs are 65 bytes)
//   inner hash  = SHA-256(0x01 · left · right)                        (absent subtree: zero-tree hash)
//   root        = SHA-256("subnetlab/page-map\0" · u64be sizeBytes · u32be depth · tree hash)
// with depth = the smallest d such that 2^d ≥ pageCount. Page and inner hashes are computed
// lazily and memoised on the immutable nodes: after a write only the k written pages and the
// O(k·log n) nodes above them are hashed again — never the whole memory — and only when a hash is
// needed (per-round digest, checkpoint), so a message pays just for copying its dirty pages.
//
// Heap delta: every PageMap carries the set of page indices written since the last checkpoint
// (`markCheckpointed()` clears it). Pages are counted when written, as the IC counts dirty pages,
// even if the new content equals the old.
import { hash as nodeHash } from "node:crypto";
import { assert } from "../assert.ts";
import { SLAB_PAGES, leaseSlab, type SlabLease } from "./page-slabs.ts";

export const PAGE_SIZE_BYTES = 4096;

const ROOT_DOMAIN = new TextEncoder().encode("subnetlab/page-map\0");
const INNER_TAG = 0x01;
/** Largest supported memory: 2^40 pages = 4 PiB (stable memory is capped at 500 GiB on the IC). */
const MAX_DEPTH = 40;

function sha256(data: Uint8Array): Uint8Array {
  return nodeHash("sha256", data, "buffer");
}

/** Hash computations so far (diagnostics; lets tests check that hashing is incremental). */
const hashCounts = { pages: 0, inner: 0 };
export function pageMapHashCounts(): { readonly pages: number; readonly inner: number } {
  return { ...hashCounts };
}

function hashPageBytes(bytes: Uint8Array): Uint8Array {
  hashCounts.pages++;
  return sha256(bytes);
}

function hashInner(left: Uint8Array, right: Uint8Array): Uint8Array {
  hashCounts.inner++;
  const buf = new Uint8Array(65);
  buf[0] = INNER_TAG;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256(buf);
}

const ZERO_PAGE: Uint8Array = new Uint8Array(PAGE_SIZE_BYTES);
/** zeroTreeHash[l] = hash of an all-zero subtree covering 2^l pages. */
const zeroTreeHash: Uint8Array[] = [hashPageBytes(ZERO_PAGE)];
for (let l = 1; l <= MAX_DEPTH; l++) {
  const below = zeroTreeHash[l - 1]!;
  zeroTreeHash.push(hashInner(below, below));
}

function isZero(bytes: Uint8Array): boolean {
  if (bytes.byteOffset % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    for (let i = words.length * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** One immutable 4 KiB page (a view, possibly into a slab shared with pages of the same write). */
class Page {
  private memoHash: Uint8Array | undefined = undefined;
  constructor(
    readonly bytes: Uint8Array,
    /** The recycled slab `bytes` is cut from, kept leased while this page lives (page-slabs.ts). */
    readonly lease?: SlabLease,
  ) {}
  /** SHA-256 of the bytes, computed on first use. */
  get hash(): Uint8Array {
    this.memoHash ??= hashPageBytes(this.bytes);
    return this.memoHash;
  }
}

class Inner {
  /** Memoised subtree hash (a cache: the node's content never changes). */
  cachedHash: Uint8Array | undefined = undefined;
  constructor(
    // Reassigned only to swap a page for its content-equal stored copy (canonicalPage).
    public left: TrieNode,
    public right: TrieNode,
  ) {}
}

type TrieNode = Inner | Page | null;

// ---------------------------------------------------------------------------------------------
// Content-addressed page store (process-wide; sharing is an optimisation, never observable).

const pageStore = new Map<string, WeakRef<Page>>();
const pageStoreCleanup = new FinalizationRegistry<string>((key) => {
  const ref = pageStore.get(key);
  if (ref !== undefined && ref.deref() === undefined) pageStore.delete(key);
});

/** The stored page with this page's content (registering this one if there is none yet). */
function canonicalPage(page: Page): Page {
  const h = page.hash;
  const key = Buffer.from(h.buffer, h.byteOffset, h.length).toString("latin1");
  const existing = pageStore.get(key)?.deref();
  if (existing !== undefined) return existing;
  pageStore.set(key, new WeakRef(page));
  pageStoreCleanup.register(page, key);
  return page;
}

// New pages of one write are copied into shared allocations of SLAB_PAGES pages (1 MiB).

/**
 * Copies page contents into fresh immutable Pages; all-zero pages become absent (null). Bytes from
 * `validBytes[k]` on are zero (a partial last page). One allocation per 256 pages: allocating an
 * ArrayBuffer per 4 KiB page costs more than copying it. (Adopting the caller's arrays instead was
 * tried and rejected: callers such as the checkpoint loader legitimately keep and reuse them.)
 */
function copyPages(sources: readonly Uint8Array[], validBytes: readonly number[], owned = false): (Page | null)[] {
  const out: (Page | null)[] = [];
  let slab: Uint8Array | undefined;
  let used = SLAB_PAGES;
  sources.forEach((src, k) => {
    const valid = validBytes[k] ?? PAGE_SIZE_BYTES;
    assert(src.length === PAGE_SIZE_BYTES || src.length === valid, `page must be ${PAGE_SIZE_BYTES} bytes, got ${src.length}`);
    const content = valid < src.length ? src.subarray(0, valid) : src;
    if (isZero(content)) {
      out.push(null);
      return;
    }
    if (owned && valid === PAGE_SIZE_BYTES && src.byteOffset === 0 && src.buffer.byteLength === PAGE_SIZE_BYTES) {
      out.push(new Page(src));
      return;
    }
    if (slab === undefined || used === SLAB_PAGES) {
      slab = new Uint8Array(Math.min(SLAB_PAGES, sources.length - k) * PAGE_SIZE_BYTES);
      used = 0;
    }
    const view = slab.subarray(used * PAGE_SIZE_BYTES, (used + 1) * PAGE_SIZE_BYTES);
    view.set(content);
    used++;
    out.push(new Page(view));
  });
  return out;
}

/**
 * Copies the pages `indices` of `source` (4 KiB each, page k at byte k · 4096) into fresh immutable
 * Pages, like copyPages: all-zero pages become absent, one allocation per 256 pages, and bytes of
 * the page `partialIndex` from `partialBytes` on are left zero. No per-page views of the source
 * are made: the copy loop allocates nothing but the Pages themselves.
 */
function copyPagesFrom(source: Uint8Array, indices: ArrayLike<number>, partialIndex: number, partialBytes: number): (Page | null)[] {
  const out: (Page | null)[] = new Array<Page | null>(indices.length);
  const words = source.byteOffset % 4 === 0 ? new Uint32Array(source.buffer, source.byteOffset, source.length >>> 2) : undefined;
  let slab: { readonly bytes: Uint8Array; readonly lease?: SlabLease } | undefined;
  let used = SLAB_PAGES;
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k]!;
    const start = index * PAGE_SIZE_BYTES;
    const valid = index === partialIndex ? partialBytes : PAGE_SIZE_BYTES;
    assert(start + valid <= source.length, `page ${index} is beyond the source (${source.length} bytes)`);
    if (words === undefined ? isZero(source.subarray(start, start + valid)) : isZeroWords(words, start >>> 2, valid)) {
      out[k] = null;
      continue;
    }
    if (slab === undefined || used === SLAB_PAGES) {
      slab = slabFor(indices.length - k);
      used = 0;
    }
    const at = used * PAGE_SIZE_BYTES;
    slab.bytes.set(source.subarray(start, start + valid), at);
    if (valid < PAGE_SIZE_BYTES) slab.bytes.fill(0, at + valid, at + PAGE_SIZE_BYTES);
    out[k] = new Page(slab.bytes.subarray(at, at + valid), slab.lease);
    used++;
  }
  return out;
}

/**
 * Where the next `pagesLeft` pages go: a whole recycled slab when they fill one (large commits,
 * where fresh memory would cost a page fault per page), else an allocation of just their size (a
 * page kept alive pins its whole slab).
 */
function slabFor(pagesLeft: number): { readonly bytes: Uint8Array; readonly lease?: SlabLease } {
  return pagesLeft >= SLAB_PAGES ? leaseSlab() : { bytes: new Uint8Array(pagesLeft * PAGE_SIZE_BYTES) };
}

/** Whether `bytes` bytes from word `firstWord` of `words` are all zero. */
function isZeroWords(words: Uint32Array, firstWord: number, bytes: number): boolean {
  const end = firstWord + (bytes >>> 2);
  for (let w = firstWord; w < end; w++) if (words[w] !== 0) return false;
  const tail = new Uint8Array(words.buffer, words.byteOffset + end * 4, bytes & 3);
  return bytes % 4 === 0 || isZero(tail);
}

/** Number of distinct live pages in the process-wide store (diagnostics / tests of sharing). */
export function sharedPageStoreSize(): number {
  let n = 0;
  for (const ref of pageStore.values()) if (ref.deref() !== undefined) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Trie operations

function depthFor(pageCount: number): number {
  let d = 0;
  while (2 ** d < pageCount) d++;
  assert(d <= MAX_DEPTH, `page map too large: ${pageCount} pages`);
  return d;
}

function makeInner(left: TrieNode, right: TrieNode): TrieNode {
  return left === null && right === null ? null : new Inner(left, right);
}

function lookup(root: TrieNode, depth: number, index: number): Page | null {
  let node = root;
  for (let level = depth; level > 0; level--) {
    if (node === null) return null;
    assert(node instanceof Inner, "page-map trie: expected inner node");
    const bit = Math.floor(index / 2 ** (level - 1)) % 2;
    node = bit === 0 ? node.left : node.right;
  }
  assert(node === null || node instanceof Page, "page-map trie: expected page");
  return node;
}

/** Path-copying batch update; `entries` sorted by index, all inside [base, base + 2^level). */
function update(
  node: TrieNode,
  level: number,
  base: number,
  entries: readonly (readonly [number, Page | null])[],
  lo: number,
  hi: number,
): TrieNode {
  if (lo >= hi) return node;
  if (level === 0) return entries[hi - 1]![1]; // last write to the same index wins
  const half = 2 ** (level - 1);
  const mid = base + half;
  let split = lo;
  while (split < hi && entries[split]![0] < mid) split++;
  const left = node instanceof Inner ? node.left : null;
  const right = node instanceof Inner ? node.right : null;
  const newLeft = update(left, level - 1, base, entries, lo, split);
  const newRight = update(right, level - 1, mid, entries, split, hi);
  if (newLeft === left && newRight === right && node !== null) return node;
  return makeInner(newLeft, newRight);
}

function subtreeHash(node: TrieNode, level: number): Uint8Array {
  if (node === null) return zeroTreeHash[level]!;
  if (node instanceof Page) return node.hash;
  if (node.cachedHash === undefined) {
    if (node.left instanceof Page) node.left = canonicalPage(node.left);
    if (node.right instanceof Page) node.right = canonicalPage(node.right);
    node.cachedHash = hashInner(subtreeHash(node.left, level - 1), subtreeHash(node.right, level - 1));
  }
  return node.cachedHash;
}

function forEachPage(node: TrieNode, level: number, base: number, visit: (index: number, page: Page) => void): void {
  if (node === null) return;
  if (node instanceof Page) {
    visit(base, node);
    return;
  }
  const half = 2 ** (level - 1);
  forEachPage(node.left, level - 1, base, visit);
  forEachPage(node.right, level - 1, base + half, visit);
}

/** Visits pages whose content differs between two tries of equal depth (shared subtrees skipped). */
function forEachDifference(
  a: TrieNode,
  b: TrieNode,
  level: number,
  base: number,
  visit: (index: number, page: Page | null) => void,
): void {
  if (a === b) return;
  if (level === 0) {
    const pa = a as Page | null;
    const pb = b as Page | null;
    if (pa !== null && pb !== null && Buffer.compare(pa.bytes, pb.bytes) === 0) return;
    visit(base, pa);
    return;
  }
  const half = 2 ** (level - 1);
  const al = a instanceof Inner ? a.left : null;
  const ar = a instanceof Inner ? a.right : null;
  const bl = b instanceof Inner ? b.left : null;
  const br = b instanceof Inner ? b.right : null;
  forEachDifference(al, bl, level - 1, base, visit);
  forEachDifference(ar, br, level - 1, base + half, visit);
}

/** Re-roots a trie from depth `from` to a larger depth `to` (the old tree becomes the leftmost). */
function deepen(root: TrieNode, from: number, to: number): TrieNode {
  let node = root;
  for (let d = from; d < to; d++) node = makeInner(node, null);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Heap delta: the set of page indices written since the last checkpoint, as persistent bitmaps of
// 1024 pages each (copy-on-write per touched bitmap) with a running count, so that a write costs
// O(pages written + bitmaps) and the heap-delta size is O(1) however long since the checkpoint.

const DELTA_CHUNK_PAGES = 1024;

class DeltaSet {
  static readonly EMPTY = new DeltaSet(new Map(), 0);
  private constructor(
    private readonly chunks: ReadonlyMap<number, Uint32Array>,
    readonly count: number,
  ) {}

  with(indices: ArrayLike<number>): DeltaSet {
    const chunks = new Map(this.chunks);
    const fresh = new Set<number>();
    let count = this.count;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      const c = Math.floor(i / DELTA_CHUNK_PAGES);
      const bit = i % DELTA_CHUNK_PAGES;
      let words = chunks.get(c);
      if (words === undefined || !fresh.has(c)) {
        words = words === undefined ? new Uint32Array(DELTA_CHUNK_PAGES / 32) : words.slice();
        chunks.set(c, words);
        fresh.add(c);
      }
      const mask = 1 << (bit & 31);
      if ((words[bit >>> 5]! & mask) === 0) {
        words[bit >>> 5] = words[bit >>> 5]! | mask;
        count++;
      }
    }
    return new DeltaSet(chunks, count);
  }

  indices(): number[] {
    const out: number[] = [];
    for (const c of [...this.chunks.keys()].sort((a, b) => a - b)) {
      const words = this.chunks.get(c)!;
      for (let w = 0; w < words.length; w++) {
        const word = words[w]!;
        if (word === 0) continue;
        for (let b = 0; b < 32; b++) if (((word >>> b) & 1) === 1) out.push(c * DELTA_CHUNK_PAGES + w * 32 + b);
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------

export class PageMap {
  private cachedRoot: string | undefined = undefined;
  private cachedDelta: readonly number[] | undefined = undefined;

  private constructor(
    readonly sizeBytes: number,
    private readonly depth: number,
    private readonly root: TrieNode,
    private readonly delta: DeltaSet,
  ) {}

  private static readonly EMPTY = new PageMap(0, 0, null, DeltaSet.EMPTY);

  static empty(): PageMap {
    return PageMap.EMPTY;
  }

  /** A page map holding exactly `bytes` (sizeBytes = bytes.length); all-zero pages are not stored. */
  static fromBytes(bytes: Uint8Array): PageMap {
    const pageCount = Math.ceil(bytes.length / PAGE_SIZE_BYTES);
    const depth = depthFor(pageCount);
    const indices: number[] = [];
    const sources: Uint8Array[] = [];
    const tails: number[] = [];
    for (let i = 0; i < pageCount; i++) {
      const view = bytes.subarray(i * PAGE_SIZE_BYTES, (i + 1) * PAGE_SIZE_BYTES);
      if (isZero(view)) continue;
      indices.push(i);
      sources.push(view);
      tails.push(view.length);
    }
    const pages = copyPages(sources, tails);
    const entries = indices.map((i, k) => [i, pages[k]!] as const);
    const root = update(null, depth, 0, entries, 0, entries.length);
    return new PageMap(bytes.length, depth, root, DeltaSet.EMPTY);
  }

  /** Number of 4 KiB pages covering sizeBytes (the last one may be partial). */
  pageCount(): number {
    return Math.ceil(this.sizeBytes / PAGE_SIZE_BYTES);
  }

  /**
   * The page's bytes (a shared zero page if absent or beyond the end), for immediate use: callers
   * never mutate them, and keep a copy if they keep them (the array may be a view into a recycled
   * slab, valid while this map or another holder of the page is reachable; page-slabs.ts).
   */
  readPage(index: number): Uint8Array {
    assert(Number.isInteger(index) && index >= 0, `invalid page index ${index}`);
    if (index >= this.pageCount()) return ZERO_PAGE;
    return lookup(this.root, this.depth, index)?.bytes ?? ZERO_PAGE;
  }

  /**
   * A new map with the given pages replaced (4096 bytes each). The pages are copied, so callers
   * may pass views straight into a live Wasm memory and may reuse their buffers afterwards.
   * Writing past the end grows sizeBytes to cover the written page. Bytes of a partial last page
   * beyond sizeBytes are kept zero so that the map stays canonical.
   */
  withPages(dirty: ReadonlyMap<number, Uint8Array>): PageMap {
    return this.write(dirty, false);
  }

  /**
   * Like withPages, but the map takes ownership of the arrays: a standalone 4 KiB array (its own
   * ArrayBuffer, e.g. from `slice()`) is kept without copying. The caller must never touch the
   * arrays again (the map and its hash would silently change). For executors that build fresh page
   * copies anyway: saves one copy of every dirty page.
   */
  withOwnedPages(dirty: ReadonlyMap<number, Uint8Array>): PageMap {
    return this.write(dirty, true);
  }

  /**
   * A new map with the pages `indices` (ascending, distinct) replaced by the pages at the same
   * indices of `source` (a whole memory, e.g. a live Wasm memory: page k at byte k · 4096). Each
   * page is copied once, so the caller may go on writing `source`. Otherwise as withPages.
   */
  withPagesCopiedFrom(source: Uint8Array, indices: ArrayLike<number>): PageMap {
    if (indices.length === 0) return this;
    for (let k = 1; k < indices.length; k++) assert(indices[k - 1]! < indices[k]!, "withPagesCopiedFrom: indices must be ascending and distinct");
    const sizeBytes = Math.max(this.sizeBytes, (indices[indices.length - 1]! + 1) * PAGE_SIZE_BYTES);
    const partialIndex = sizeBytes % PAGE_SIZE_BYTES === 0 ? -1 : Math.floor(sizeBytes / PAGE_SIZE_BYTES);
    const pages = copyPagesFrom(source, indices, partialIndex, sizeBytes % PAGE_SIZE_BYTES);
    return this.replaced(sizeBytes, indices, pages);
  }

  /** This map grown to `sizeBytes` with page indices[k] replaced by pages[k] (indices ascending). */
  private replaced(sizeBytes: number, indices: ArrayLike<number>, pages: readonly (Page | null)[]): PageMap {
    assert(Number.isInteger(indices[0]) && indices[0]! >= 0, `invalid page index ${indices[0]}`);
    const entries = pages.map((page, k) => [indices[k]!, page] as const);
    const depth = depthFor(Math.ceil(sizeBytes / PAGE_SIZE_BYTES));
    const root = update(deepen(this.root, this.depth, depth), depth, 0, entries, 0, entries.length);
    return new PageMap(sizeBytes, depth, root, this.delta.with(indices));
  }

  private write(dirty: ReadonlyMap<number, Uint8Array>, owned: boolean): PageMap {
    if (dirty.size === 0) return this;
    const indices = [...dirty.keys()].sort((a, b) => a - b);
    const maxIndex = indices[indices.length - 1]!;
    const sizeBytes = Math.max(this.sizeBytes, (maxIndex + 1) * PAGE_SIZE_BYTES);
    const lastPartial = sizeBytes % PAGE_SIZE_BYTES === 0 ? -1 : Math.floor(sizeBytes / PAGE_SIZE_BYTES);
    const pages = copyPages(
      indices.map((i) => dirty.get(i)!),
      indices.map((i) => (i === lastPartial ? sizeBytes % PAGE_SIZE_BYTES : PAGE_SIZE_BYTES)),
      owned,
    );
    return this.replaced(sizeBytes, indices, pages);
  }

  /**
   * A map of another size (Wasm `memory.grow`, stable grow); shrinking drops the pages beyond the
   * new end. Resizing is not a write: it adds nothing to the heap delta.
   */
  resized(sizeBytes: number): PageMap {
    assert(Number.isInteger(sizeBytes) && sizeBytes >= 0, `invalid size ${sizeBytes}`);
    if (sizeBytes === this.sizeBytes) return this;
    const pageCount = Math.ceil(sizeBytes / PAGE_SIZE_BYTES);
    const depth = depthFor(pageCount);
    if (sizeBytes > this.sizeBytes && sizeBytes % PAGE_SIZE_BYTES === 0) {
      return new PageMap(sizeBytes, Math.max(depth, this.depth), deepen(this.root, this.depth, depth), this.delta);
    }
    // Shrinking (or a partial last page): rebuild from the surviving pages.
    const entries: (readonly [number, Page | null])[] = [];
    const tail = sizeBytes % PAGE_SIZE_BYTES;
    forEachPage(this.root, this.depth, 0, (index, page) => {
      if (index >= pageCount) return;
      if (tail !== 0 && index === pageCount - 1) {
        entries.push([index, copyPages([page.bytes], [tail])[0]!]);
      } else {
        entries.push([index, page]);
      }
    });
    const delta = this.delta.count === 0 ? this.delta : DeltaSet.EMPTY.with(this.heapDeltaPageIndices().filter((i) => i < pageCount));
    return new PageMap(sizeBytes, depth, update(null, depth, 0, entries, 0, entries.length), delta);
  }

  /**
   * Writes the memory into `target` (its first min(target.length, sizeBytes) bytes). Absent pages
   * are zero-filled unless the caller says the target is already zeroed.
   */
  copyInto(target: Uint8Array, targetIsZeroed = false): void {
    const limit = Math.min(target.length, this.sizeBytes);
    if (!targetIsZeroed) target.fill(0, 0, limit);
    forEachPage(this.root, this.depth, 0, (index, page) => {
      const start = index * PAGE_SIZE_BYTES;
      if (start >= limit) return;
      const n = Math.min(PAGE_SIZE_BYTES, limit - start);
      target.set(n === PAGE_SIZE_BYTES ? page.bytes : page.bytes.subarray(0, n), start);
    });
  }

  /**
   * Updates `target`, which holds the bytes of `previous`, to hold this map's bytes, touching only
   * pages that differ (shared subtrees are skipped without looking at them). Cheap when `this` was
   * derived from `previous` by a few writes.
   */
  copyChangedInto(target: Uint8Array, previous: PageMap): void {
    if (previous.depth !== this.depth) {
      this.copyInto(target);
      return;
    }
    const limit = Math.min(target.length, this.sizeBytes);
    forEachDifference(this.root, previous.root, this.depth, 0, (index, page) => {
      const start = index * PAGE_SIZE_BYTES;
      if (start >= limit) return;
      const n = Math.min(PAGE_SIZE_BYTES, limit - start);
      if (page === null) target.fill(0, start, start + n);
      else target.set(n === PAGE_SIZE_BYTES ? page.bytes : page.bytes.subarray(0, n), start);
    });
    if (previous.sizeBytes > this.sizeBytes) target.fill(0, limit, Math.min(target.length, previous.sizeBytes));
  }

  toBytes(): Uint8Array {
    const out = new Uint8Array(this.sizeBytes);
    this.copyInto(out, true);
    return out;
  }

  /** Hex SHA-256 of (sizeBytes, contents); incremental: only nodes above written pages are rehashed. */
  hash(): string {
    if (this.cachedRoot === undefined) {
      const tree = subtreeHash(this.root, this.depth); // (a single-page map keeps its own page)
      const buf = new Uint8Array(ROOT_DOMAIN.length + 8 + 4 + 32);
      buf.set(ROOT_DOMAIN, 0);
      const view = new DataView(buf.buffer);
      view.setBigUint64(ROOT_DOMAIN.length, BigInt(this.sizeBytes));
      view.setUint32(ROOT_DOMAIN.length + 8, this.depth);
      buf.set(tree, ROOT_DOMAIN.length + 12);
      this.cachedRoot = Buffer.from(sha256(buf)).toString("hex");
    }
    return this.cachedRoot;
  }

  /** Hex SHA-256 of one page (content address); the zero page's hash if absent. */
  pageHash(index: number): string {
    const page = index < this.pageCount() ? lookup(this.root, this.depth, index) : null;
    return Buffer.from(page?.hash ?? zeroTreeHash[0]!).toString("hex");
  }

  /** Indices of the non-zero pages, ascending. */
  nonZeroPageIndices(): number[] {
    const out: number[] = [];
    forEachPage(this.root, this.depth, 0, (index) => out.push(index));
    return out;
  }

  /** Page indices written since the last checkpoint (the heap delta), ascending, distinct. */
  heapDeltaPageIndices(): readonly number[] {
    this.cachedDelta ??= this.delta.indices();
    return this.cachedDelta;
  }

  /** Bytes of heap delta since the last checkpoint (distinct written pages × 4 KiB). */
  heapDeltaBytes(): number {
    return this.delta.count * PAGE_SIZE_BYTES;
  }

  /** The same contents with an empty heap delta (called when a checkpoint has been written). */
  markCheckpointed(): PageMap {
    if (this.delta.count === 0) return this;
    const out = new PageMap(this.sizeBytes, this.depth, this.root, DeltaSet.EMPTY);
    out.cachedRoot = this.cachedRoot;
    return out;
  }

  /**
   * Bytes [offset, offset + length) of the memory (zeros beyond sizeBytes). A fresh array.
   */
  readBytes(offset: number, length: number): Uint8Array {
    assert(Number.isInteger(offset) && offset >= 0 && Number.isInteger(length) && length >= 0, "invalid byte range");
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.sizeBytes);
    for (let p = Math.floor(offset / PAGE_SIZE_BYTES); p * PAGE_SIZE_BYTES < end; p++) {
      const bytes = lookup(this.root, this.depth, p)?.bytes;
      if (bytes === undefined) continue;
      const pageStart = p * PAGE_SIZE_BYTES;
      const from = Math.max(offset, pageStart);
      const to = Math.min(end, pageStart + PAGE_SIZE_BYTES);
      out.set(bytes.subarray(from - pageStart, to - pageStart), from - offset);
    }
    return out;
  }

  /**
   * Opaque identities of the aligned subtrees of 2^level pages, one per block covering sizeBytes
   * (`null` = all zero). Nodes are immutable, so equal identity implies equal content: callers can
   * memoise per-block work (manifest chunk hashes) and redo it only for blocks that were written.
   */
  blockIdentities(level: number): (object | null)[] {
    const blockPages = 2 ** level;
    const blocks = Math.ceil(this.pageCount() / blockPages);
    if (this.depth <= level) return blocks === 0 ? [] : [this.root];
    const out: (object | null)[] = [];
    const walk = (node: TrieNode, l: number, base: number): void => {
      if (base >= blocks) return;
      if (l === level) {
        out[base] = node;
        return;
      }
      const half = 2 ** (l - level - 1);
      const inner = node instanceof Inner ? node : null;
      walk(inner?.left ?? null, l - 1, base);
      walk(inner?.right ?? null, l - 1, base + half);
    };
    walk(this.root, this.depth, 0);
    return out;
  }

  /** Same size and contents (compared by hash, i.e. by content). */
  equals(other: PageMap): boolean {
    return this === other || (this.sizeBytes === other.sizeBytes && this.hash() === other.hash());
  }
}
