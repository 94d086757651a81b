// Instrumentation: honest instruction accounting, the instruction-limit trap, module validation,
// the write barrier, NaN canonicalisation and the module cache.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import binaryen from "../../harness/execution/binaryen.ts";
import { performance } from "node:perf_hooks";
import {
  canisterIdFromU64,
  instrumentModule,
  InvalidModuleError,
  lifecycle,
  ModuleCache,
  RejectCode,
  WasmExecutor,
  type CanisterState,
  type PrincipalText,
} from "../../harness/execution/index.ts";
import { LiveInstance } from "../../harness/execution/instance.ts";
import { fixture, installedCanister, readU32, u32le, wat, watFixture } from "./helpers.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const TIME = 1_700_000_000_000_000_000n;

const installed = installedCanister;

// Expected cost of fixtures/canisters/wat/kernel.wat, derived by hand from the IC cost table
// (research/ic-protocol.md §4.7), NOT from harness/execution/cost-table.ts:
//   loop body, per iteration (one basic block, charged at the loop header):
//     global.get 2 + local.get 1 + i32.add 1 + global.set 2          = 6
//     local.get 1 + i32.const 1 + i32.add 1 + local.set 1            = 4
//     local.get 1 + local.get 1 + i32.lt_u 1 + br_if 2               = 5   → 15
//   `run` (one basic block, charged at function entry):
//     3 × i32.const 1 + call 5                                      = 8   (msg_arg_data_copy)
//     i32.const 1 + i32.load 1 + call 5                             = 7   (kernel)
//     call 5                                                        = 5   (msg_reply)        → 20
//   $kernel entry block: just the loop (block/loop cost 0)            = 0
//   System API (§4.7 "mostly 500" + per-byte charge of copied data):
//     msg_arg_data_copy 500 + 4 bytes = 504; msg_reply 500
const PER_ITERATION = 6 + 4 + 5;
const RUN_BLOCK = 8 + 7 + 5;
const ARG_COPY = 500 + 4;
const REPLY = 500;
const expectedKernel = (n: number): bigint => BigInt(RUN_BLOCK + ARG_COPY + PER_ITERATION * n + REPLY);

test("instruction count of a straight-line loop matches the hand-derived cost (ic-protocol.md §4.7)", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor, watFixture("kernel.wat"));
  for (const n of [1, 10, 1000]) {
    const r = executor.executeMessage(c, { kind: "ingress", messageId: `m${n}`, caller: SENDER, method: "run", arg: u32le(n) }, {
      instructionLimit: 10n ** 9n,
      timeNs: TIME,
    });
    t.is(r.outcome.kind, "completed");
    t.is(r.instructionsUsed, expectedKernel(n), `n = ${n}`);
  }
});

test("the instruction-limit trap fires exactly where the hand-derived count says", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor, watFixture("kernel.wat"));
  const n = 100;
  const run = (limit: bigint) =>
    executor.executeMessage(c, { kind: "ingress", messageId: "m", caller: SENDER, method: "run", arg: u32le(n) }, {
      instructionLimit: limit,
      timeNs: TIME,
    });
  // Exactly enough: completes.
  const exact = run(expectedKernel(n));
  t.is(exact.outcome.kind, "completed");
  // One less: the final msg_reply pushes the count over the limit → trap, state unchanged.
  const short = run(expectedKernel(n) - 1n);
  t.is(short.outcome.kind, "trapped");
  t.is(short.instructionsUsed, expectedKernel(n));
  t.is(short.canister, c);
  t.is(short.responses[0]?.response.kind, "reject");
  // A limit that allows k loop iterations: the check at the header of iteration k+1 fires, after
  // that iteration's block was charged (§4.7: "counter decremented by the static cost of the
  // block; at reentrant blocks an overflow check").
  const beforeLoop = BigInt(RUN_BLOCK + ARG_COPY);
  for (const k of [0, 1, 37]) {
    const r = run(beforeLoop + BigInt(PER_ITERATION * k));
    t.is(r.outcome.kind, "trapped", `k = ${k}`);
    if (r.outcome.kind === "trapped") t.regex(r.outcome.message, /instruction limit/);
    t.is(r.instructionsUsed, beforeLoop + BigInt(PER_ITERATION * (k + 1)), `k = ${k}`);
  }
});

test("a long-running Motoko message traps at the instruction limit and leaves no trace", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor, fixture("motoko/long.classic.wasm"));
  // Candid `(nat)` argument: DIDL, no types, one arg of type nat (0x7d), LEB128 value.
  const arg = (n: number): Uint8Array => {
    const leb: number[] = [];
    let v = n;
    do {
      let b = v & 0x7f;
      v = Math.floor(v / 128);
      if (v > 0) b |= 0x80;
      leb.push(b);
    } while (v > 0);
    return new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0x00, 0x01, 0x7d, ...leb]);
  };
  const small = executor.executeMessage(c, { kind: "ingress", messageId: "a", caller: SENDER, method: "spin", arg: arg(1000) }, {
    instructionLimit: 10n ** 9n,
    timeNs: TIME,
  });
  t.is(small.outcome.kind, "completed");
  const big = executor.executeMessage(c, { kind: "ingress", messageId: "b", caller: SENDER, method: "spin", arg: arg(1_000_000) }, {
    instructionLimit: small.instructionsUsed * 10n,
    timeNs: TIME,
  });
  t.is(big.outcome.kind, "trapped");
  t.true(big.instructionsUsed > small.instructionsUsed * 10n);
  t.is(big.canister, c);
  t.is(big.heapDeltaPages, 0);
});

test("modules with shared memory, atomics or relaxed SIMD are rejected with a clear error", (t) => {
  const all = binaryen.Features.All & ~binaryen.Features.GC & ~binaryen.Features.Strings;
  const shared = wat(`(module (memory 1 1 shared))`, all);
  t.throws(() => instrumentModule(shared), { instanceOf: InvalidModuleError, message: /shared memory/ });
  const atomics = wat(
    `(module (memory 1 1) (func (export "canister_update f") (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))))`,
    all,
  );
  t.throws(() => instrumentModule(atomics), { instanceOf: InvalidModuleError, message: /threads\/atomics/ });
  const relaxed = wat(
    `(module (func (export "canister_update f") (drop (f32x4.relaxed_madd (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)))))`,
    all,
  );
  t.throws(() => instrumentModule(relaxed), { instanceOf: InvalidModuleError, message: /relaxed SIMD/ });
  const foreign = wat(`(module (import "env" "f" (func)) (func (export "canister_update f") (call 0)))`);
  t.throws(() => instrumentModule(foreign), { instanceOf: InvalidModuleError, message: /only "ic0" imports/ });
  t.throws(() => instrumentModule(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), { instanceOf: InvalidModuleError, message: /magic/ });
  const truncated = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 0]);
  t.throws(() => instrumentModule(truncated), { instanceOf: InvalidModuleError, message: /malformed|truncated/ });
  // ... and install_code turns the rejection into a typed failure.
  const executor = new WasmExecutor(new ModuleCache());
  const c = lifecycle.createCanister({ id: canisterIdFromU64(1n), controllers: [SENDER], cycles: 0n });
  const r = executor.installCode(c, { mode: "install", wasmModule: shared, arg: new Uint8Array(), sender: SENDER }, {
    instructionLimit: 10n ** 9n,
    timeNs: TIME,
  });
  t.false(r.ok);
  if (!r.ok) {
    t.is(r.code, RejectCode.CanisterError);
    // errors.rs HypervisorError::InvalidWasm: IC0505, the toolchain hint (the detail is subnetlab's).
    t.regex(r.message, /: Canister's Wasm module is not valid: .*shared memory.*\.\nThis is likely an error with the compiler\/CDK toolchain/);
  }
});

test("the write barrier reports exactly the 4 KiB pages written (heap delta)", (t) => {
  const module = wat(`(module
    (import "ic0" "msg_reply" (func $reply))
    (memory 4)
    (func (export "canister_update w")
      (i32.store (i32.const 0) (i32.const 1))          ;; page 0
      (i32.store (i32.const 4000) (i32.const 1))       ;; page 0 again
      (i32.store (i32.const 8190) (i32.const 0x01010101)) ;; bytes 8190..8193: pages 1 and 2
      (memory.fill (i32.const 40960) (i32.const 9) (i32.const 8192)) ;; pages 10, 11
      (call $reply)))`);
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor, module);
  const r = executor.executeMessage(c, { kind: "ingress", messageId: "m", caller: SENDER, method: "w", arg: new Uint8Array() }, {
    instructionLimit: 10n ** 9n,
    timeNs: TIME,
  });
  t.is(r.outcome.kind, "completed");
  t.is(r.heapDeltaPages, 5); // pages 0, 1, 2, 10, 11
  const mem = r.canister.execution?.wasmMemory;
  t.is(mem?.readPage(1)[4094], 1); // byte 8190
  t.is(mem?.readPage(2)[1], 1); // byte 8193 = page 2, offset 1
  t.is(mem?.readPage(11)[4095], 9);
  t.is(mem?.readPage(12)[0], 0);
});

test("NaNs produced by float arithmetic are canonical (0x7fc00000)", (t) => {
  // Two different NaN payloads divided: the result must be the canonical NaN whatever V8 does.
  const module = wat(`(module
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1)
    (func (export "canister_query nan")
      (f32.store (i32.const 0) (f32.add (f32.const nan:0x200000) (f32.const -nan:0x1234)))
      (call $append (i32.const 0) (i32.const 4)) (call $reply)))`);
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor, module);
  const r = executor.executeMessage(c, { kind: "query", caller: SENDER, method: "nan", arg: new Uint8Array() }, {
    instructionLimit: 10n ** 9n,
    timeNs: TIME,
  });
  const resp = r.responses[0]?.response;
  t.is(resp?.kind, "reply");
  if (resp?.kind === "reply") t.is(readU32(resp.data), 0x7fc00000);
});

test("modules are instrumented once per hash; compile vs cached instantiate is measured", (t) => {
  const cache = new ModuleCache();
  for (const name of ["motoko/counter.classic.wasm", "motoko/counter.eop.wasm", "c/counter.wasm"]) {
    const bytes = fixture(name);
    const t0 = performance.now();
    const m1 = cache.get(bytes);
    const t1 = performance.now();
    const m2 = cache.get(bytes.slice());
    const t2 = performance.now();
    const instance = new LiveInstance(m2);
    const t3 = performance.now();
    t.is(m1, m2);
    t.truthy(instance.memory);
    t.log(
      `${name}: ${bytes.length} B → ${m1.binary.length} B instrumented; first instrument+compile ${(t1 - t0).toFixed(1)} ms, ` +
        `cached lookup ${(t2 - t1).toFixed(2)} ms, instantiate ${(t3 - t2).toFixed(2)} ms`,
    );
  }
  t.is(cache.instrumentationCount, 3);
});

test("deep recursion traps at a fixed depth, whatever V8's tier (deterministic stack limit)", (t) => {
  // canister_update rec calls $r(n), which recurses n times. Each frame is charged its static
  // bound (instrument.ts frameBytes) against the 512 KiB limit, so the deepest n that completes
  // is a property of the code: the same before and after V8 tiers the code up (without the
  // bound the overflow point moves from ~15,700 to ~25,000 frames on Node 20).
  const module = wat(`(module
    (import "ic0" "msg_arg_data_copy" (func $arg (param i32 i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1)
    (func $r (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0)) (then (return (i32.const 0)))
        (else (i32.add (i32.const 1) (call $r (i32.sub (local.get 0) (i32.const 1)))))))
    (func (export "canister_update rec") (call $arg (i32.const 0) (i32.const 0) (i32.const 4))
      (drop (call $r (i32.load (i32.const 0)))) (call $reply)))`);
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor, module);
  const run = (n: number) =>
    executor.executeMessage(c, { kind: "ingress", messageId: "m", caller: SENDER, method: "rec", arg: u32le(n) }, {
      instructionLimit: 10n ** 10n,
      timeNs: TIME,
    }).outcome;
  const deepest = (): number => {
    let lo = 0;
    let hi = 100_000;
    while (lo + 1 < hi) {
      const mid = (lo + hi) >> 1;
      if (run(mid).kind === "completed") lo = mid;
      else hi = mid;
    }
    return lo;
  };
  const cold = deepest();
  t.true(cold > 1000 && cold < 20_000, `deepest recursion ${cold}`);
  const deep = run(cold + 1);
  t.is(deep.kind, "trapped");
  if (deep.kind === "trapped") t.regex(deep.message, /stack overflow: the call stack exceeds 524288 bytes/);
  for (let i = 0; i < 3000; i++) run(500);
  t.is(deepest(), cold, "the limit moved when V8 tiered up");
});

test("canister entry points are checked (spec 'Canister module format')", (t) => {
  const cases: [string, RegExp][] = [
    [`(module (func (export "canister_updat f")))`, /not a valid canister entry point/],
    [`(module (func (export "canister_update f")) (func (export "canister_query f")))`, /^Duplicate function 'f' exported multiple times with different call types: update, query, or composite_query\.$/], // WasmValidationError::DuplicateExport (wasm_types errors.rs)
    [`(module (func (export "canister_update f") (param i32)))`, /must have type \(\) -> \(\)/],
    [`(module (memory 1) (func (export "__memory")))`, /reserved/],
  ];
  for (const [src, expected] of cases) {
    t.throws(() => instrumentModule(wat(src)), { instanceOf: InvalidModuleError, message: expected }, src);
  }
  // Valid: system entry points and one update/query/composite method each.
  t.notThrows(() =>
    instrumentModule(
      wat(`(module (func (export "canister_init")) (func (export "canister_heartbeat")) (func (export "canister_update a"))
        (func (export "canister_query b")) (func (export "canister_composite_query c")) (func (export "helper") (param i32)))`),
    ),
  );
});

test("barrier vs page diffing, measured: the barrier misses no changed page (timings logged)", (t) => {
  // The alternative to the write barrier is to diff the whole memory against a shadow copy after
  // each message (research/wasm-toolchain.md §3). Both are run here on a Motoko update; the
  // barrier's page count must cover every page whose bytes changed.
  const executor = new WasmExecutor(new ModuleCache());
  let c = installed(executor, fixture("motoko/counter.classic.wasm"));
  const inc = { kind: "ingress" as const, messageId: "m", caller: SENDER, method: "inc", arg: new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0, 0]) };
  const params = { instructionLimit: 10n ** 9n, timeNs: TIME };
  for (let i = 0; i < 50; i++) c = executor.executeMessage(c, inc, params).canister; // warm up
  let diffMs = 0;
  let execMs = 0;
  const rounds = 200;
  for (let i = 0; i < rounds; i++) {
    const before = c.execution?.wasmMemory.toBytes() ?? new Uint8Array();
    const t0 = performance.now();
    const r = executor.executeMessage(c, inc, params);
    const t1 = performance.now();
    const after = r.canister.execution?.wasmMemory.toBytes() ?? new Uint8Array();
    const t2 = performance.now();
    let changed = 0;
    for (let p = 0; p * 4096 < after.length; p++) {
      const a = Buffer.from(before.buffer, before.byteOffset + p * 4096, Math.min(4096, Math.max(0, before.length - p * 4096)));
      const b = Buffer.from(after.buffer, after.byteOffset + p * 4096, 4096);
      if (a.length !== b.length || !a.equals(b)) changed++;
    }
    const t3 = performance.now();
    execMs += t1 - t0;
    diffMs += t3 - t2;
    t.true(changed <= r.heapDeltaPages, `message ${i}: ${changed} changed pages, barrier reported ${r.heapDeltaPages}`);
    c = r.canister;
  }
  const mib = (c.execution?.wasmMemory.sizeBytes ?? 0) / 2 ** 20;
  t.log(
    `Motoko inc with barrier: ${((execMs / rounds) * 1000).toFixed(0)} µs/message; ` +
      `diffing ${mib.toFixed(1)} MiB against a shadow copy: ${((diffMs / rounds) * 1000).toFixed(0)} µs/message extra`,
  );
});

test("memory.grow obeys a deterministic limit (wasm_memory_limit) and the declared maximum", (t) => {
  // Replies with the three memory.grow results as i32s: +1, +1, +2 pages from 2 pages.
  const module = wat(`(module
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 2 6)
    (func (export "canister_update g")
      (i32.store (i32.const 0) (memory.grow (i32.const 1)))
      (i32.store (i32.const 4) (memory.grow (i32.const 1)))
      (i32.store (i32.const 8) (memory.grow (i32.const 2)))
      (call $append (i32.const 0) (i32.const 12)) (call $reply)))`);
  const results = (executor: WasmExecutor): number[] => {
    const r = executor.executeMessage(installed(executor, module), { kind: "ingress", messageId: "m", caller: SENDER, method: "g", arg: new Uint8Array() }, {
      instructionLimit: 10n ** 9n,
      timeNs: TIME,
    });
    const resp = r.responses[0]?.response;
    if (resp?.kind !== "reply") throw new Error(JSON.stringify(resp));
    return [0, 4, 8].map((o) => new DataView(resp.data.buffer, resp.data.byteOffset).getInt32(o, true));
  };
  // Limit 4 pages: 2→3, 3→4, then +2 would be 6 > 4 → −1.
  t.deepEqual(results(new WasmExecutor(new ModuleCache(), { wasmMemoryLimitBytes: 4 * 65_536 })), [2, 3, -1]);
  // Default limit (3 GiB): the declared maximum of 6 pages allows all three.
  t.deepEqual(results(new WasmExecutor(new ModuleCache())), [2, 3, 4]);
});
