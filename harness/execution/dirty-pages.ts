// Which 4 KiB pages of a live instance's memory one invocation wrote, and how to undo them (the
// host side of the write barrier in instrument.ts; issue 13 items 2 and 5).
//
// The instance's memory is its own working copy: the barrier lets the canister write it in place.
// Committed states never share bytes with it — a commit copies the written pages once into the new
// PageMap (PageMap.withPagesCopiedFrom) — so nothing another holder can see (an older height, a
// snapshot, the query path, a replica that adopted the state) changes when the memory does.
//
// Undo: when the memory equals a committed PageMap at the start of the invocation (the usual case:
// the instance mirrors the canister state it was given), that map already holds every old page,
// so a first write costs one bit and one list entry and a rollback copies the written pages back
// from the map. Only when there is no such map (the steps of an install, after each other) are old
// pages copied at their first write, as an undo log.
import { assert } from "../assert.ts";
import { PAGE_SIZE_BYTES, type PageMap } from "../state/page-map.ts";

/**
 * The write barrier's `__dirty_page_base` (instrument.ts) when no page is marked yet: no 33-bit
 * Wasm address lies within a page of it.
 */
export const NO_DIRTY_PAGE_BASE = 2n ** 40n;

/** Pages per membership chunk: a byte each, so a chunk covers 16 MiB of memory in 4 KiB. */
const CHUNK_PAGES = 4096;

/**
 * A set of page indices: a byte per page for membership, in chunks allocated where pages are
 * (a canister writing near the top of a 3 GiB memory pays 4 KiB, not 768 KiB), and a list in
 * first-add order.
 */
class PageSet {
  private readonly chunks: (Uint8Array | undefined)[] = [];
  private readonly list: number[] = [];

  /** Adds `page`; true when it was not in the set yet. */
  add(page: number): boolean {
    const c = Math.floor(page / CHUNK_PAGES);
    const chunk = (this.chunks[c] ??= new Uint8Array(CHUNK_PAGES));
    const at = page % CHUNK_PAGES;
    if (chunk[at] === 1) return false;
    chunk[at] = 1;
    this.list.push(page);
    return true;
  }

  get size(): number {
    return this.list.length;
  }

  /** Members in the order they were added. */
  inAddOrder(): readonly number[] {
    return this.list;
  }

  clear(): void {
    for (const page of this.list) this.chunks[Math.floor(page / CHUNK_PAGES)]![page % CHUNK_PAGES] = 0;
    this.list.length = 0;
  }
}

export class DirtyPages {
  /** Pages written since begin(). */
  private readonly dirty = new PageSet();
  /**
   * Pages that may differ from zero because the barrier saw a write or a state was loaded; with
   * the instantiated memory (data segments) they bound the non-zero pages (LiveInstance.writtenPages).
   */
  private readonly everWritten = new PageSet();
  /** What the memory held at begin(), when a committed map holds exactly that. */
  private base: PageMap | undefined;
  /** Old contents of written pages, only when there is no base. */
  private undo = new Map<number, Uint8Array>();

  /** Starts an invocation; `base` is the page map the memory equals now, if any. */
  begin(base: PageMap | undefined): void {
    this.dirty.clear();
    this.undo = new Map();
    this.base = base;
  }

  /** The first write of this invocation to `page` (inside `memory`) is about to happen. */
  mark(page: number, memory: Uint8Array): void {
    if (!this.dirty.add(page)) return;
    this.everWritten.add(page);
    if (this.base === undefined) this.undo.set(page, memory.slice(page * PAGE_SIZE_BYTES, (page + 1) * PAGE_SIZE_BYTES));
  }

  /** Pages loaded from a state: they may be non-zero although the barrier never saw them written. */
  noteLoaded(pages: readonly number[]): void {
    for (const page of pages) this.everWritten.add(page);
  }

  get count(): number {
    return this.dirty.size;
  }

  /** Pages written since begin(), ascending. */
  sorted(): Uint32Array {
    return Uint32Array.from(this.dirty.inAddOrder()).sort();
  }

  /** Every page the barrier ever saw written or a state loaded, ascending. */
  everWrittenSorted(): Uint32Array {
    return Uint32Array.from(this.everWritten.inAddOrder()).sort();
  }

  /**
   * Puts back the contents every written page had at begin() (pages beyond the memory, after a
   * shrink that cannot happen in Wasm, are skipped) and forgets the writes.
   */
  restore(memory: Uint8Array): void {
    const base = this.base;
    const pageLimit = memory.length / PAGE_SIZE_BYTES;
    for (const page of this.dirty.inAddOrder()) {
      if (page >= pageLimit) continue;
      const at = page * PAGE_SIZE_BYTES;
      const old = base === undefined ? this.undo.get(page) : base.readPage(page);
      assert(old !== undefined, `page ${page} was written without its old contents being saved`);
      memory.set(old, at);
      // A partial last page of the map holds only its valid bytes; the rest of the page is zero.
      if (old.length < PAGE_SIZE_BYTES) memory.fill(0, at + old.length, at + PAGE_SIZE_BYTES);
    }
    this.dirty.clear();
    this.undo = new Map();
  }
}
