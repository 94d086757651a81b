// Issue 14 item 5: a canister with tens of GiB of stable memory, sparse. The IC allows 500 GiB of
// stable memory (interface spec "Stable memory"; ic-protocol.md §4.11); memory and checkpoint cost
// must follow the pages in use and the pages changed, not the size. The canister is
// fixtures/canisters/wat/sparse-stable.wat.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { ExecutionLab } from "../../harness/execution/lab.ts";
import { StateManager } from "../../harness/state/state-manager.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import type { CanisterId } from "../../harness/execution/interfaces.ts";
import { fixture } from "./helpers.ts";

const GiB = 1n << 30n;
const WASM_PAGE = 65_536n;
const FILL_BYTES = 100 * 1024; // 25 pages of 4 KiB

const u64 = (v: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};
const readU64 = (b: Uint8Array): bigint => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
function fillArg(offset: bigint, length: number, byte: number): Uint8Array {
  const b = new Uint8Array(13);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, offset, true);
  v.setUint32(8, length, true);
  b[12] = byte;
  return b;
}
function readArg(offset: bigint, length: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, offset, true);
  v.setUint32(8, length, true);
  return b;
}

function reply(lab: ExecutionLab, id: CanisterId, method: string, arg: Uint8Array, query = false): Uint8Array {
  const r = query ? lab.queryRaw(id, method, arg) : lab.updateRaw(id, method, arg);
  if (r.response.kind !== "reply") throw new Error(`${method}: ${r.response.message}`);
  return r.response.data;
}

test("item 5: 40 GiB of sparse stable memory works, holds only the pages written, and reads zeros elsewhere", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("wat/sparse-stable.wasm"));
  const buffersBefore = process.memoryUsage().arrayBuffers;
  const pages = (40n * GiB) / WASM_PAGE;
  t.is(readU64(reply(lab, id, "grow", u64(pages))), 0n, "grew from 0");
  t.is(readU64(reply(lab, id, "size", new Uint8Array(), true)), pages);
  const offsets = [0n, 20n * GiB, 40n * GiB - BigInt(FILL_BYTES)];
  offsets.forEach((offset, i) => reply(lab, id, "fill", fillArg(offset, FILL_BYTES, i + 1)));
  offsets.forEach((offset, i) => {
    // The last block ends where the memory ends: read 4 bytes there, 8 (4 into zeros) elsewhere.
    const back = reply(lab, id, "read", readArg(offset + BigInt(FILL_BYTES) - 4n, i < 2 ? 8 : 4), true);
    t.deepEqual([...back.subarray(0, 4)], [i + 1, i + 1, i + 1, i + 1], `the end of block ${i}`);
    if (i < 2) t.deepEqual([...back.subarray(4)], [0, 0, 0, 0], `never written after block ${i}`);
  });
  const stable = lab.canister(id).execution!.stableMemory;
  t.is(stable.nonZeroPageIndices().length, 3 * (FILL_BYTES / 4096), "only the written 4 KiB pages are held");
  const grownBytes = process.memoryUsage().arrayBuffers - buffersBefore;
  t.true(grownBytes < 64 * 1024 * 1024, `array buffers grew by ${grownBytes} bytes for 40 GiB of stable memory`);
});

test("item 5: a checkpoint of a large sparse stable memory writes the pages that changed since the last one, not the memory's size", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("wat/sparse-stable.wasm"));
  reply(lab, id, "grow", u64((40n * GiB) / WASM_PAGE));
  for (const [i, offset] of [0n, 10n * GiB, 30n * GiB].entries()) reply(lab, id, "fill", fillArg(offset, FILL_BYTES, i + 1));
  const sm = new StateManager(new SimDisk(), { checkpointIntervalRounds: 1, keepCheckpoints: 2 });
  const first = sm.commit(1, { canisters: [lab.canister(id)], metadata: new Uint8Array([1]) });
  const stablePages = 3 * (FILL_BYTES / 4096);
  t.true(first.checkpoint!.stats.pagesWritten >= stablePages, `first checkpoint: ${first.checkpoint!.stats.pagesWritten} pages`);
  t.true(first.checkpoint!.stats.pagesWritten < stablePages + 40, "… and not many more (the heap's few pages)");

  reply(lab, id, "fill", fillArg(35n * GiB, 4096, 9));
  const second = sm.commit(2, { canisters: [lab.canister(id)], metadata: new Uint8Array([2]) });
  const stats = second.checkpoint!.stats;
  t.true(stats.pagesWritten <= 4, `second checkpoint wrote ${stats.pagesWritten} pages: the new stable page and the heap pages the call touched`);
  t.true(stats.bytesWritten < 64 * 1024, `${stats.bytesWritten} bytes written for one changed page of 40 GiB`);
  t.true(stats.pagesReused >= stablePages, `${stats.pagesReused} pages reused`);
});

test("item 5: stable memory grows up to the IC's 500 GiB and no further (stable64_grow answers -1)", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("wat/sparse-stable.wasm"));
  const limit = (500n * GiB) / WASM_PAGE;
  t.is(readU64(reply(lab, id, "grow", u64(limit))), 0n);
  t.is(readU64(reply(lab, id, "grow", u64(1n))), (1n << 64n) - 1n, "one page more is refused");
  t.is(readU64(reply(lab, id, "size", new Uint8Array(), true)), limit);
});
