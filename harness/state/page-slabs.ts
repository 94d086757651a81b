// Recycled 1 MiB slabs for the pages a commit copies out of a live Wasm memory (issue 13 items 2
// and 5).
//
// Why: a message that writes 50 MB commits 12,800 page copies. Copying into freshly allocated
// memory costs the kernel a page fault and a zeroed page per 4 KiB (measured on the 2-vCPU VM:
// 40–90 ms for 50 MB, against 5.5 ms for the same copy into memory already in use), and the freed
// slabs cost the GC as much again. Slabs whose pages are all unreachable are handed out again.
//
// Safety: a slab is reused only after the garbage collector proved that no Page cut from it can be
// reached (each Page holds its slab's lease). Page bytes are therefore only read while their Page
// is reachable: PageMap hands them out for immediate use (hashing, copying), and callers that keep
// bytes keep a copy (PageMap.readPage). Which buffer a page lands in is never observable: the
// bytes written are the same. When the collector has not reclaimed anything yet, a fresh slab is
// allocated, as without reuse.

export const SLAB_PAGES = 256;
const SLAB_BYTES = SLAB_PAGES * 4096;
/** Most free slabs kept for reuse (memory held beyond what is reachable: 256 MiB). */
const FREE_SLABS_MAX = 256;

/** One use of a slab: pages cut from it hold this, and the slab is free again once it is collected. */
export class SlabLease {}

const freeSlabs: ArrayBuffer[] = [];
const returned = new FinalizationRegistry<ArrayBuffer>((buffer) => {
  if (freeSlabs.length < FREE_SLABS_MAX) freeSlabs.push(buffer);
});

/** Slabs handed out so far, and how many of them were reused (diagnostics, tests). */
const counts = { leased: 0, reused: 0 };
export function slabCounts(): { readonly leased: number; readonly reused: number } {
  return { ...counts };
}

/**
 * A 1 MiB slab (SLAB_PAGES pages) and its lease: every page cut from `bytes` must hold `lease`.
 * Its old contents are arbitrary (callers overwrite every byte of every page they cut).
 */
export function leaseSlab(): { readonly bytes: Uint8Array; readonly lease: SlabLease } {
  counts.leased++;
  const reused = freeSlabs.pop();
  if (reused !== undefined) counts.reused++;
  const buffer = reused ?? new ArrayBuffer(SLAB_BYTES);
  const lease = new SlabLease();
  returned.register(lease, buffer);
  return { bytes: new Uint8Array(buffer), lease };
}
