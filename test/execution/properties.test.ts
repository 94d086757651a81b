// Property tests (fast-check) of the write barrier and of rollback: for random sequences of
// writes — single bytes, words that may straddle a 4 KiB page boundary, memory.fill ranges — in
// updates, trapping updates and queries, the committed heap always equals a plain byte-array model,
// and the reported heap delta is exactly the set of 4 KiB pages written.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import fc from "fast-check";
import { canisterIdFromU64, lifecycle, ModuleCache, WasmExecutor, type CanisterMessage, type PrincipalText } from "../../harness/execution/index.ts";
import { watFixture } from "./helpers.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const params = { instructionLimit: 1_000_000_000n, timeNs: 1n };
const PAGE = 4096;
const STAGING = 0x3f000; // where poke.wat copies its argument (page 63)
const MEMORY = 4 * 65_536;

interface Rec {
  addr: number;
  len: number;
  byte: number;
}
const rec = fc
  .record({ len: fc.constantFrom(1, 4, 17, 300, 9000), byte: fc.integer({ min: 0, max: 255 }), at: fc.nat() })
  .map(({ len, byte, at }): Rec => ({ addr: at % (STAGING - len), len, byte }));
const op = fc.record({ kind: fc.constantFrom("poke", "poke_then_trap", "poke_in_query"), recs: fc.array(rec, { minLength: 1, maxLength: 6 }) });

function encode(recs: readonly Rec[]): Uint8Array {
  const out = new Uint8Array(recs.length * 7);
  const view = new DataView(out.buffer);
  recs.forEach((r, i) => {
    view.setUint32(i * 7, r.addr, true);
    view.setUint16(i * 7 + 4, r.len, true);
    out[i * 7 + 6] = r.byte;
  });
  return out;
}

test("committed heap equals the model and heap delta equals the pages written", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const empty = lifecycle.createCanister({ id: canisterIdFromU64(3n), controllers: [SENDER], cycles: 0n });
  const installed = executor.installCode(empty, { mode: "install", wasmModule: watFixture("poke.wat"), arg: new Uint8Array(), sender: SENDER }, params);
  if (!installed.ok) throw new Error(installed.message);
  let runs = 0;
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 8 }), (ops) => {
      runs++;
      let state = installed.canister;
      const model = new Uint8Array(MEMORY);
      for (const [i, o] of ops.entries()) {
        const arg = encode(o.recs);
        const message: CanisterMessage =
          o.kind === "poke_in_query"
            ? { kind: "query", caller: SENDER, method: o.kind, arg }
            : { kind: "ingress", messageId: `m${i}`, caller: SENDER, method: o.kind, arg };
        const r = executor.executeMessage(state, message, params);
        const pages = new Set<number>();
        if (o.kind === "poke") {
          model.set(arg, STAGING);
          pages.add(STAGING / PAGE);
          for (const x of o.recs) {
            const len = x.len;
            model.fill(x.byte, x.addr, x.addr + len);
            for (let p = Math.floor(x.addr / PAGE); p <= Math.floor((x.addr + len - 1) / PAGE); p++) pages.add(p);
          }
          if (r.outcome.kind !== "completed") return false;
        } else if (o.kind === "poke_then_trap") {
          if (r.outcome.kind !== "trapped" || r.canister !== state) return false;
        }
        if (r.heapDeltaPages !== pages.size) return false;
        state = r.canister;
        const heap = state.execution?.wasmMemory.toBytes();
        if (heap === undefined || Buffer.compare(Buffer.from(heap), Buffer.from(model.subarray(0, heap.length))) !== 0) return false;
      }
      return true;
    }),
    { numRuns: 40, seed: 42 },
  );
  t.is(runs >= 40, true);
});
