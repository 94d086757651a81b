// Note [interned items] (harness/p2p/codec.ts): frozen decoded items are shared between recipients
// through a process-wide memo that forgets its oldest entry first when full. Its insertion order is
// kept beside the Map (issue 13 item 4: evicting through the Map's own iterator walked past every
// deleted entry); these tests pin the order of forgetting and the bound over many evictions.
import test from "ava";
import { processMemos, type ProcessMemo } from "../../harness/memo.ts";
import { bundleSize, decodeBundleShared, encodeBundle } from "../../harness/p2p/codec.ts";
import type { WireItem } from "../../harness/p2p/messages.ts";
import { height } from "../../harness/types.ts";

const internedItems = (): ProcessMemo => {
  const memo = processMemos().find((m) => m.name === "p2p.internedItems");
  if (memo === undefined) throw new Error("p2p.internedItems is registered");
  return memo;
};

/** A status report (no byte arrays: decoded once per distinct bytes, then shared) as a one-item bundle. */
function statusBundle(finalized: number): Uint8Array {
  const items: WireItem[] = [{ kind: "status", status: { finalizedHeight: height(finalized), notarizedHeight: height(finalized), beaconHeight: height(finalized), cupHeight: height(0) } }];
  return encodeBundle({ items, sizeBytes: bundleSize(items) });
}

/** The decoded item (unknown: only its identity matters here). */
function decodedItem(finalized: number): unknown {
  const decoded = decodeBundleShared(statusBundle(finalized));
  if (!decoded.ok) throw new Error(decoded.reason);
  return decoded.value.items[0];
}

// One test: the memo is process-wide, so its capacity is changed and restored in one place.
test("issue 13 item 4: interned items are forgotten oldest first, and stay within their capacity over many evictions", (t) => {
  const memo = internedItems();
  const capacity = memo.capacity;
  try {
    memo.capacity = 3;
    const first = [1, 2, 3, 4, 5].map(decodedItem);
    t.is(memo.size, 3);
    // Newest first, so that no lookup inserts anything before the last check.
    for (const h of [5, 4, 3]) t.is(decodedItem(h), first[h - 1], `height ${h} is still shared`);
    t.not(decodedItem(1), first[0], "height 1 was forgotten (decoded again)");
    t.not(decodedItem(3), first[2], "inserting height 1 forgot height 3, the oldest");
    t.is(decodedItem(5), first[4]);

    // Thousands of evictions: the kept order is compacted along the way and stays the Map's.
    memo.capacity = 100;
    const kept = new Map<number, unknown>();
    for (let h = 1_000; h < 6_000; h++) {
      kept.set(h, decodedItem(h));
      if (memo.size > 100) return t.fail(`${memo.size} items at height ${h}`);
    }
    for (let h = 5_999; h >= 5_900; h--) t.is(decodedItem(h), kept.get(h), `height ${h}, among the last 100, is shared`);
    t.not(decodedItem(5_899), kept.get(5_899), "the 101st newest was forgotten");
    memo.capacity = 10;
    t.is(memo.size, 10, "lowering the capacity forgets at once");
    t.is(decodedItem(5_999), kept.get(5_999), "the newest are the ones kept");
  } finally {
    memo.capacity = capacity;
  }
});
