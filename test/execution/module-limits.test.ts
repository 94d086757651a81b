// Item 5 of the hardening issue (#11): what install_code refuses, and how. The IC's module limits
// (total size, code section, functions, globals, exported methods, function size) answered with a
// clear InvalidModuleError before binaryen works on the bytes; ic0 imports checked against the
// System API's types at install; refused Wasm features named; no raw binaryen or JS-stack exception.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import binaryen from "../../harness/execution/binaryen.ts";
import {
  canisterIdFromU64,
  instrumentModule,
  InvalidModuleError,
  lifecycle,
  ModuleCache,
  RejectCode,
  WasmExecutor,
  type PrincipalText,
} from "../../harness/execution/index.ts";
import { InstrumentationStackExhausted } from "../../harness/execution/instrument.ts";
import { wat } from "./helpers.ts";
import { activeDataPages } from "../../harness/execution/module-limits.ts";
import { ExecutionLab } from "../../harness/execution/lab.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const TIME = 1_700_000_000_000_000_000n;
const MiB = 1024 * 1024;

// --- raw module bytes ------------------------------------------------------------------------------

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const name = (s: string): number[] => [...leb(s.length), ...new TextEncoder().encode(s)];

/** A module from sections given as [id, contents]; contents may be large (typed arrays). */
function module(...sections: [number, Uint8Array | number[]][]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array(HEADER)];
  for (const [id, contents] of sections) {
    parts.push(new Uint8Array([id, ...leb(contents.length)]), contents instanceof Uint8Array ? contents : new Uint8Array(contents));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const TYPE_VOID = [1, [1, 0x60, 0, 0]] as [number, number[]];
/** `count` functions of type () -> () with empty bodies. */
function functions(count: number): [number, Uint8Array | number[]][] {
  const fsec = [...leb(count), ...new Array<number>(count).fill(0)];
  const body = [2, 0, 0x0b];
  const code = new Uint8Array([...leb(count), ...Array.from({ length: count }, () => body).flat()]);
  return [TYPE_VOID, [3, fsec], [10, code]];
}
/** One function whose body is `n` nops. */
function oneFunctionOfNops(n: number): [number, Uint8Array | number[]][] {
  const body = new Uint8Array(1 + n + 1).fill(0x01);
  body[0] = 0; // no locals
  body[body.length - 1] = 0x0b;
  const size = leb(body.length);
  const code = new Uint8Array(1 + size.length + body.length);
  code.set([1, ...size]);
  code.set(body, 1 + size.length);
  return [TYPE_VOID, [3, [1, 0]], [10, code]];
}

function install(bytes: Uint8Array): { ok: true } | { ok: false; code: RejectCode; message: string; errorCode: string | undefined } {
  const executor = new WasmExecutor(new ModuleCache());
  const c = lifecycle.createCanister({ id: canisterIdFromU64(9n), controllers: [SENDER], cycles: 10n ** 12n });
  const r = executor.installCode(c, { mode: "install", wasmModule: bytes, arg: new Uint8Array(), sender: SENDER }, { instructionLimit: 10n ** 10n, timeNs: TIME });
  return r.ok ? { ok: true } : { ok: false, code: r.code, message: r.message, errorCode: r.errorCode };
}

function refusedQuickly(t: import("ava").ExecutionContext, bytes: Uint8Array, message: RegExp, secondsMax = 3): void {
  const start = process.hrtime.bigint();
  const r = install(bytes);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  t.false(r.ok);
  if (!r.ok) {
    // HypervisorError::InvalidWasm as the canister manager reports it: IC0505, "Canister's Wasm
    // module is not valid: <WasmValidationError's display>" (rs/interfaces/src/execution_environment/errors.rs,
    // rs/types/wasm_types/src/errors.rs).
    t.is(r.code, RejectCode.CanisterError);
    t.is(r.errorCode, "IC0505");
    t.regex(r.message, /^Error from Canister \S+: Canister's Wasm module is not valid: /);
    t.regex(r.message, message);
  }
  t.true(seconds < secondsMax, `refused after ${seconds.toFixed(2)} s`);
}

// --- the IC's module limits ---------------------------------------------------------------------

test("item 5: a module with a 100 MiB data segment is refused at install as an invalid module (over the IC's 100 MiB), without binaryen", (t) => {
  const data = new Uint8Array(5 + 5 + 100 * MiB);
  const header = [1, 0x00, 0x41, 0x00, 0x0b, ...leb(100 * MiB)]; // one active segment at offset 0
  data.set(header);
  const bytes = module([5, [1, 0x00, ...leb(1601)]], [11, data.subarray(0, header.length + 100 * MiB)]);
  refusedQuickly(t, bytes, /not valid: Wasm module size of 104857\d{3} exceeds the maximum allowed size of 104857600\.\.\nTry shrinking the module using tools like `ic-wasm` or splitting the logic across multiple canisters\. See documentation: \S+#wasm-module-too-large$/, 10);
});

test("item 5: a code section over 10 MiB is refused before binaryen reads it", (t) => {
  refusedQuickly(t, module(...oneFunctionOfNops(10 * MiB + 16)), /Wasm module code section size of 104857\d\d exceeds the maximum allowed size of 10485760\.\.\n.*#wasm-module-code-section-too-large$/);
});

test("item 5: functions, globals and exported methods are limited with the IC's numbers (50,000 / 1,000 / 1,000)", (t) => {
  refusedQuickly(t, module(...functions(50_001)), /Wasm module defined 50001 functions which exceeds the maximum number allowed 50000\.\.\nTry spliting this canister into multiple canisters\. See documentation: \S+#wasm-module-too-many-functions$/);
  const globals = (n: number): [number, number[]] => [6, [...leb(n), ...Array.from({ length: n }, () => [0x7f, 0x01, 0x41, 0x00, 0x0b]).flat()]];
  refusedQuickly(t, module(globals(1_001)), /Wasm module defined 1001 globals which exceeds the maximum number allowed 1000\.\.\n.*#wasm-module-too-many-globals$/);
  t.notThrows(() => instrumentModule(module(globals(1_000))), "1,000 globals are allowed (the IC's limit; subnetlab refused more than 300)");
  const methods = (n: number): [number, number[]] => [7, [...leb(n), ...Array.from({ length: n }, (_, i) => [...name(`canister_update m${i}`), 0x00, 0x00]).flat()]];
  refusedQuickly(t, module(TYPE_VOID, [3, [1, 0]], methods(1_001), [10, [1, 2, 0, 0x0b]]), /The number of exported functions called `canister_update <name>`, `canister_query <name>`, or `canister_composite_query <name>` is 1001 which exceeds 1000\.\.\nTry combining multiple endpoints into a single endpoint\. See documentation: \S+#wasm-module-exports-too-many-methods$/);
});

test("item 5: a function of more than 1,000,000 instructions is refused", (t) => {
  const r = install(module(...oneFunctionOfNops(1_000_001)));
  t.false(r.ok);
  t.regex(r.ok ? "" : r.message, /Canister's Wasm module is not valid: Wasm module contains a function at index 0 of size 1000001 that exceeds the maximum allowed size of 1000000\.\.\nTry breaking large functions up into multiple smaller functions\. See documentation: \S+#wasm-module-function-too-large$/);
  t.notThrows(() => instrumentModule(module(...oneFunctionOfNops(999_000))));
});

// --- ic0 imports ------------------------------------------------------------------------------------

test("item 5: unknown or mistyped ic0 imports are refused at install, not when first called", (t) => {
  const refusal = (text: string): string => {
    const r = install(wat(text));
    return r.ok ? "installed" : r.message;
  };
  t.regex(refusal(`(module (import "ic0" "msg_reply_now" (func)) (memory 1))`), /imports ic0\.msg_reply_now, which is not a function of the System API/);
  t.regex(refusal(`(module (import "ic0" "msg_reply" (func (param i32))) (memory 1))`), /imports ic0\.msg_reply with type \(i32\) -> \(\); the System API's is \(\) -> \(\) for a canister with a 32-bit memory/);
  t.regex(refusal(`(module (import "ic0" "time" (func (result i32))) (memory 1))`), /ic0\.time with type \(\) -> \(i32\); the System API's is \(\) -> \(i64\)/);
  const all = binaryen.Features.MVP | binaryen.Features.Memory64 | binaryen.Features.MutableGlobals;
  // A 64-bit memory: pointers are i64, and the 32-bit-only functions do not exist.
  const r64 = install(wat(`(module (import "ic0" "msg_arg_data_copy" (func (param i32 i32 i32))) (memory i64 1))`, all));
  t.regex(r64.ok ? "" : r64.message, /ic0\.msg_arg_data_copy with type \(i32, i32, i32\) -> \(\); the System API's is \(i64, i64, i64\) -> \(\) for a canister with a 64-bit memory/);
  const stable32 = install(wat(`(module (import "ic0" "stable_size" (func (result i32))) (memory i64 1))`, all));
  t.regex(stable32.ok ? "" : stable32.message, /ic0\.stable_size, which exists only for canisters with a 32-bit memory/);
  t.true(install(wat(`(module (import "ic0" "msg_arg_data_copy" (func (param i64 i64 i64))) (memory i64 1))`, all)).ok);
  // Spec functions subnetlab does not implement are accepted (they trap if called), as are the right types.
  t.is(refusal(`(module (import "ic0" "root_key_size" (func (result i32))) (import "ic0" "stable64_write" (func (param i64 i64 i64))) (memory 1))`), "installed");
});

// --- refused features ---------------------------------------------------------------------------

test("item 5: refused Wasm features are named (exception handling, tail calls, GC, reference types, threads, relaxed SIMD) instead of a validator line", (t) => {
  const everything = binaryen.Features.All & ~binaryen.Features.Strings;
  const refusal = (text: string): string => {
    try {
      instrumentModule(wat(text, everything));
      return "accepted";
    } catch (e) {
      t.true(e instanceof InvalidModuleError, String(e));
      return (e as Error).message;
    }
  };
  t.is(refusal(`(module (tag $e (param i32)) (func (export "canister_update f") (try (do (throw $e (i32.const 1))) (catch $e (drop)))))`), "module uses exception handling, which canisters may not use");
  t.is(refusal(`(module (tag $e) (func (export "canister_update f") (block $l (try_table (catch_all $l) (throw $e)))))`), "module uses exception handling, which canisters may not use");
  t.is(refusal(`(module (func $g) (func (export "canister_update f") (return_call $g)))`), "module uses tail calls, which canisters may not use");
  t.regex(refusal(`(module (type $s (struct (field i32))) (func (export "canister_update f") (drop (struct.new $s (i32.const 1)))))`), /^module uses garbage collection \(GC\)/);
  t.is(refusal(`(module (table 1 externref) (func (export "canister_update f") (param externref) (table.set 0 (i32.const 0) (local.get 0))))`), "module uses reference types, which canisters may not use");
  t.is(refusal(`(module (memory 1 1) (func (export "canister_update f") (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))))`), "module uses threads/atomics, which canisters may not use (nondeterministic)");
  t.is(
    refusal(`(module (func (export "canister_update f") (drop (f32x4.relaxed_madd (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)))))`),
    "module uses relaxed SIMD, which canisters may not use (nondeterministic)",
  );
  // A module binaryen cannot even decode, but which has a tag section, is named for exceptions too.
  const undecodable = module(TYPE_VOID, [3, [1, 0]], [13, [1, 0, 0]], [10, [1, 3, 0, 0xff, 0x0b]]);
  t.throws(() => instrumentModule(undecodable), { instanceOf: InvalidModuleError, message: /^module uses exception handling \(it has a tag section\)/ });
});

// --- nothing raw escapes ------------------------------------------------------------------------

/** One function nesting `depth` empty blocks. */
function nestedBlocks(depth: number): Uint8Array {
  const body = [0, ...new Array<number>(depth).fill(0).flatMap(() => [0x02, 0x40]), ...new Array<number>(depth + 1).fill(0x0b)];
  return module(TYPE_VOID, [3, [1, 0]], [10, [1, ...leb(body.length), ...body]]);
}

test("item 5: code nested deeper than the host's stack allows is a named harness error, never a raw RangeError nor a refusal that could differ between hosts", (t) => {
  const error = t.throws(() => instrumentModule(nestedBlocks(100_000)));
  t.true(error instanceof InstrumentationStackExhausted, String(error));
  t.regex(error?.message ?? "", /the host's stack ran out instrumenting a module with deeply nested code/);
  // Not cached as a refusal: the module cache lets it through as the error it is.
  const cache = new ModuleCache();
  t.throws(() => cache.get(nestedBlocks(100_000)), { instanceOf: InstrumentationStackExhausted });
  t.throws(() => cache.get(nestedBlocks(100_000)), { instanceOf: InstrumentationStackExhausted });
  // Nesting that fits is instrumented as usual.
  t.notThrows(() => instrumentModule(nestedBlocks(500)));
});

test("item 5: a data or element segment outside its memory or table fails the install instead of throwing out of it", (t) => {
  const data = install(wat(`(module (memory 1) (data (i32.const 70000) "x"))`));
  t.false(data.ok);
  // The IC finds it while instrumenting: InstrumentationFailed, IC0505, with the toolchain hint
  // (errors.rs, wasm_types errors.rs); the detail after the colon is the engine's.
  t.is(data.ok ? "" : data.errorCode, "IC0505");
  t.regex(data.ok ? "" : data.message, /^Error from Canister \S+: Could not instrument wasm module of canister: .*data segment.*\.\nThis is likely an error with the compiler\/CDK toolchain/);
  const elem = install(wat(`(module (table 1 funcref) (func $f) (elem (i32.const 5) $f))`));
  t.false(elem.ok);
  t.regex(elem.ok ? "" : elem.message, /Could not instrument wasm module of canister: .*table/);
});

test("activeDataPages: the 4 KiB pages active data segments fill (an install reads only those, not every page of a fresh memory)", (t) => {
  const pages = (text: string): readonly number[] | undefined => activeDataPages(wat(text), 4096);
  t.deepEqual(pages(`(module (memory 4))`), [], "no data section");
  t.deepEqual(pages(`(module (memory 4) (data (i32.const 16) "ab") (data (i32.const 8190) "cdef") (data (i32.const 20000) "x"))`), [0, 1, 2, 4], "a segment across a page boundary covers both pages");
  t.deepEqual(pages(`(module (memory 4) (data "passive") (data (i32.const 4096) ""))`), [], "passive segments are written through the barrier; an empty one writes nothing");
  t.is(pages(`(module (import "env" "base" (global $b i32)) (memory 4) (data (global.get $b) "x"))`), undefined, "an offset that is not constant: every initial page may hold data");
  t.deepEqual(pages(`(module (memory 16) (data (i32.const 0xffff0) "y"))`), [255]);
  t.deepEqual(pages(`(module (memory 1) (data (i32.const -16) "z"))`), [0xfffff], "i32 offsets are unsigned addresses (the engine refuses this one at instantiation)");
  // Seen by an install: a module whose data lands on page 3 only commits page 3 (and what init writes).
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, wat(`(module (memory 1) (data (i32.const 12300) "data") (func (export "canister_init") (i32.store (i32.const 40000) (i32.const 7))))`));
  t.deepEqual(lab.canister(id).execution?.wasmMemory.nonZeroPageIndices(), [3, 9]);
});
