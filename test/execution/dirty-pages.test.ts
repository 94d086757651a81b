// The write barrier's host side (dirty-pages.ts): an instance writes its memory in place, undoes a
// trapped message from the committed map it started from, and commits by copying each written page
// once — so no committed state ever sees a later write (issue 13 items 2 and 5).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { ModuleCache, WasmExecutor, type CanisterMessage, type CanisterState } from "../../harness/execution/index.ts";
import { PageMap } from "../../harness/state/page-map.ts";
import { installedCanister, readU32, TEST_SENDER, TEST_TIME_NS, wat } from "./helpers.ts";

const PAGE = 4096;
const params = { instructionLimit: 10n ** 10n, timeNs: TEST_TIME_NS };

// `fill`: arg (pages: u32, value: u32) stores `value + k` at the first word and at the last word of
// each page k < pages (plain i32.store, so every first write goes through the per-store barrier);
// `fill_then_trap` does the same, then traps; `checksum` (a query) answers the sum of those words
// over 512 pages, read from the memory of whichever instance runs it.
const PAGES_CANISTER = wat(`(module
  (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (memory 40)
  (func $fill (local $k i32) (local $pages i32) (local $value i32)
    (call $copy (i32.const 0x200000) (i32.const 0) (i32.const 8))
    (local.set $pages (i32.load (i32.const 0x200000)))
    (local.set $value (i32.load (i32.const 0x200004)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $pages)))
      (i32.store (i32.mul (local.get $k) (i32.const ${PAGE})) (i32.add (local.get $value) (local.get $k)))
      (i32.store (i32.add (i32.mul (local.get $k) (i32.const ${PAGE})) (i32.const ${PAGE - 4})) (i32.add (local.get $value) (local.get $k)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next))))
  (func (export "canister_update fill") (call $fill) (call $reply))
  (func (export "canister_update fill_then_trap") (call $fill) (call $trap (i32.const 0) (i32.const 0)))
  (func (export "canister_query checksum") (local $k i32) (local $sum i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (i32.const 512)))
      (local.set $sum (i32.add (local.get $sum) (i32.add
        (i32.load (i32.mul (local.get $k) (i32.const ${PAGE})))
        (i32.load (i32.add (i32.mul (local.get $k) (i32.const ${PAGE})) (i32.const ${PAGE - 4}))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    (i32.store (i32.const 0x200100) (local.get $sum))
    (call $append (i32.const 0x200100) (i32.const 4))
    (call $reply))
)`);

let seq = 0;
function fillMessage(method: "fill" | "fill_then_trap", pages: number, value: number): CanisterMessage {
  const arg = new Uint8Array(8);
  new DataView(arg.buffer).setUint32(0, pages, true);
  new DataView(arg.buffer).setUint32(4, value, true);
  return { kind: "ingress", messageId: `m${seq++}`, caller: TEST_SENDER, method, arg };
}

/** The checksum `fill(pages, value)` on a zero memory leaves: 2 · Σ (value + k), mod 2^32. */
function expectedChecksum(pages: number, value: number): number {
  let sum = 0;
  for (let k = 0; k < pages; k++) sum = (sum + 2 * (value + k)) >>> 0;
  return sum;
}

function checksum(executor: WasmExecutor, state: CanisterState): number {
  const r = executor.executeMessage(state, { kind: "query", caller: TEST_SENDER, method: "checksum", arg: new Uint8Array() }, params);
  if (r.outcome.kind !== "completed" || r.responses[0]?.response.kind !== "reply") throw new Error(`checksum failed: ${JSON.stringify(r.outcome)}`);
  return readU32(r.responses[0].response.data);
}

function heapOf(state: CanisterState): PageMap {
  const heap = state.execution?.wasmMemory;
  if (heap === undefined) throw new Error("no heap");
  return heap;
}

test("issue 13 item 5: a trap after writes to many pages restores all of them (pooled instance and state)", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const installed = installedCanister(executor, PAGES_CANISTER);
  const committed = executor.executeMessage(installed, fillMessage("fill", 100, 1000), params);
  t.is(committed.outcome.kind, "completed");
  const before = committed.canister;
  const hashBefore = heapOf(before).hash();

  // 300 pages written (100 that hold data, 200 that were zero), then a trap: nothing may remain.
  const trapped = executor.executeMessage(before, fillMessage("fill_then_trap", 300, 7_000_000), params);
  t.is(trapped.outcome.kind, "trapped");
  t.is(trapped.canister, before, "a trapped message leaves the canister state as it was");
  t.is(heapOf(trapped.canister).hash(), hashBefore);

  // The query runs on the pooled instance that executed the trapped message: its memory must be
  // the committed one again, page for page (a fresh executor rebuilds it from the page map).
  t.is(checksum(executor, before), expectedChecksum(100, 1000));
  t.is(checksum(new WasmExecutor(new ModuleCache()), before), expectedChecksum(100, 1000));

  // And the next update continues from the committed memory: only its own writes are new.
  const next = executor.executeMessage(before, fillMessage("fill", 1, 5), params);
  t.is(next.outcome.kind, "completed");
  const bytes = heapOf(next.canister).toBytes();
  t.is(new DataView(bytes.buffer).getUint32(PAGE, true), 1001, "page 1 keeps the committed value");
  t.is(new DataView(bytes.buffer).getUint32(150 * PAGE, true), 0, "page 150, written only by the trapped message, is zero again");
  t.is(next.heapDeltaPages, 2, "page 0 and the page the argument is copied to");
});

test("issue 13 item 2: a page of a committed state, held by a second reader, is unchanged after a later message writes the same page in place", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const installed = installedCanister(executor, PAGES_CANISTER);
  const first = executor.executeMessage(installed, fillMessage("fill", 200, 1), params);
  t.is(first.outcome.kind, "completed");
  const held = first.canister; // e.g. an older height, a snapshot, another replica's adopted state
  const heldHeap = heapOf(held);
  const heldBytes = heldHeap.toBytes();

  // The pooled instance mirrors `held` and writes the same pages in place, twice.
  const second = executor.executeMessage(held, fillMessage("fill", 200, 50_000), params);
  const third = executor.executeMessage(second.canister, fillMessage("fill", 200, 90_000), params);
  t.is(third.outcome.kind, "completed");

  t.deepEqual(heapOf(held).toBytes(), heldBytes, "the held state's pages kept their bytes");
  t.is(heapOf(held).hash(), PageMap.fromBytes(heldBytes).hash(), "and its hash is that of those bytes");
  t.is(checksum(executor, held), expectedChecksum(200, 1), "a query on the held state reads the old values");
  t.is(checksum(executor, third.canister), expectedChecksum(200, 90_000));
  t.is(checksum(executor, second.canister), expectedChecksum(200, 50_000), "the middle state too");
});
