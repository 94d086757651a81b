// Item 5 of the hardening issue (#11): the IC's per-message limits. This file: the stable memory a
// single execution may modify (2 GiB per update, 8 GiB per install/upgrade, 1 GiB per query),
// checked by a counter before anything is copied.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import {
  canisterIdFromU64,
  lifecycle,
  ModuleCache,
  WasmExecutor,
  type CanisterState,
  type ExecutionResult,
  type PrincipalText,
} from "../../harness/execution/index.ts";
import { STABLE_DIRTY_PAGE_LIMITS } from "../../harness/execution/system-api.ts";
import { u32le, wat } from "./helpers.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const TIME = 1_700_000_000_000_000_000n;

/**
 * `touch n` (u32 LE argument): grows stable memory and writes one byte to each of its first n
 * 4 KiB pages, one stable64_write each (also as a query, and as post_upgrade with the install
 * argument). `big`: one stable64_write of 2 GiB + 4 KiB from a heap grown past 2 GiB.
 */
const STABLE_WRITER = wat(`(module
  (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (func $touch (local $i i64) (local $n i64)
    (call $copy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i64.extend_i32_u (i32.load (i32.const 0))))
    (drop (call $sgrow (i64.add (i64.div_u (local.get $n) (i64.const 16)) (i64.const 1))))
    (i32.store8 (i32.const 8) (i32.const 0xab))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $swrite (i64.mul (local.get $i) (i64.const 4096)) (i64.const 8) (i64.const 1))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next))))
  (func (export "canister_update touch") (call $touch) (call $reply))
  (func (export "canister_query touch_q") (call $touch) (call $reply))
  (func (export "canister_post_upgrade") (call $touch))
  (func (export "canister_update big")
    (drop (memory.grow (i32.const 32768)))
    (drop (call $sgrow (i64.const 32769)))
    (call $swrite (i64.const 0) (i64.const 0) (i64.const ${2 * 1024 ** 3 + 4096}))
    (call $reply)))`);

function installed(executor: WasmExecutor): CanisterState {
  const c = lifecycle.createCanister({ id: canisterIdFromU64(5n), controllers: [SENDER], cycles: 10n ** 12n });
  const r = executor.installCode(c, { mode: "install", wasmModule: STABLE_WRITER, arg: new Uint8Array(), sender: SENDER }, { instructionLimit: 10n ** 10n, timeNs: TIME });
  if (!r.ok) throw new Error(r.message);
  return r.canister;
}

function call(executor: WasmExecutor, c: CanisterState, method: string, arg: Uint8Array, kind: "ingress" | "query" = "ingress"): ExecutionResult {
  const message = kind === "query" ? ({ kind, caller: SENDER, method, arg } as const) : ({ kind, messageId: `m-${method}`, caller: SENDER, method, arg } as const);
  return executor.executeMessage(c, message, { instructionLimit: 5n * 10n ** 9n, timeNs: TIME });
}

test("item 5: the stable memory limits per execution are the IC's (2 GiB update, 8 GiB install/upgrade, 1 GiB query, in 4 KiB pages)", (t) => {
  t.deepEqual({ ...STABLE_DIRTY_PAGE_LIMITS }, { message: 524_288, upgrade: 2_097_152, query: 262_144 });
});

test("item 5: an update modifying more stable memory than 2 GiB traps before copying and is rolled back", (t) => {
  const executor = new WasmExecutor(new ModuleCache());
  const c = installed(executor);
  const start = process.hrtime.bigint();
  const r = call(executor, c, "big", new Uint8Array());
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  t.is(r.outcome.kind, "trapped");
  t.regex(r.outcome.kind === "trapped" ? r.outcome.message : "", /exceeded the limit of 524288 modified stable memory pages \(2 GiB\) for a single message execution/);
  t.is(r.canister, c, "rolled back: the canister state is unchanged");
  t.is(r.heapDeltaPages, 0);
  t.is(r.responses[0]?.response.kind, "reject");
  // The 2 GiB + 4 KiB copy is charged (1 instruction per byte) before the limit is checked.
  t.true(r.instructionsUsed > 2n * 1024n ** 3n);
  t.true(seconds < 20, `${seconds.toFixed(1)} s`);
});

test("item 5: the stable page limit depends on the kind of execution and counts pages per execution", (t) => {
  const executor = new WasmExecutor(new ModuleCache(), { stableDirtyPageLimits: { message: 100, upgrade: 60, query: 30 } });
  const c = installed(executor);
  const atLimit = call(executor, c, "touch", u32le(100));
  t.is(atLimit.outcome.kind, "completed");
  t.is(atLimit.heapDeltaPages, 100 + 1);
  // Per execution: the next update may modify 100 pages again.
  t.is(call(executor, atLimit.canister, "touch", u32le(100)).outcome.kind, "completed");
  const over = call(executor, c, "touch", u32le(101));
  t.is(over.outcome.kind, "trapped");
  t.regex(over.outcome.kind === "trapped" ? over.outcome.message : "", /limit of 100 modified stable memory pages \(400 KiB\) for a single message execution/);
  t.is(over.canister, c);

  t.is(call(executor, c, "touch_q", u32le(30), "query").responses[0]?.response.kind, "reply");
  const query = call(executor, c, "touch_q", u32le(31), "query");
  t.regex(query.outcome.kind === "trapped" ? query.outcome.message : "", /limit of 30 .* single query execution/);
  // An update call to a query method runs in replicated mode, still a query for this limit.
  t.regex(JSON.stringify(call(executor, c, "touch_q", u32le(31)).outcome), /single query execution/);

  const upgrade = (n: number) =>
    executor.installCode(c, { mode: "upgrade", wasmModule: STABLE_WRITER, arg: u32le(n), sender: SENDER }, { instructionLimit: 10n ** 10n, timeNs: TIME });
  t.true(upgrade(60).ok);
  const tooMuch = upgrade(61);
  t.false(tooMuch.ok);
  // Worded as the IC's canister manager reports an install's trap (reject-codes.ts): the hypervisor
  // error itself, IC0524's "Canister exceeded memory access limits: …".
  t.regex(tooMuch.ok ? "" : tooMuch.message, /Canister exceeded memory access limits: Canister exceeded the limit of 60 modified stable memory pages .* install or upgrade execution/);
});
