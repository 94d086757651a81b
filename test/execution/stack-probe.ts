// Child-process probe for stack.test.ts (run under a chosen V8 tier): random recursive functions
// run until the deterministic stack limit traps, from a host stack HEADROOM bytes deep; prints
// {cases, trapped, worst} where worst is the largest ratio of V8's real frame size to the bound.
import binaryen from "../../harness/execution/binaryen.ts";
import { WasmExecutor } from "../../harness/execution/executor.ts";
import { LiveInstance } from "../../harness/execution/instance.ts";
import { ModuleCache } from "../../harness/execution/module-cache.ts";
import { canisterIdFromU64, type PrincipalText } from "../../harness/execution/interfaces.ts";
import * as lifecycle from "../../harness/execution/lifecycle.ts";
import { atHostStackDepth, hostStackCapacityFrames } from "./stack-helpers.ts";
import { ensureInstrumenter } from "../../harness/execution/instrumenter.ts";

// A child process loads binaryen itself (harness code loads it on demand only).
await ensureInstrumenter();

const V8_STACK_BYTES = 984 * 1024;
const [casesArg = "20", headroomArg = "393216"] = process.argv.slice(2);
const cases = Number(casesArg);
const headroomBytes = Number(headroomArg);
const SENDER = "2vxsx-fae" as PrincipalText;

let seed = 12345;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const TYPES = ["i32", "i64", "f32", "f64", "v128"] as const;
const one = (t: string): string => (t === "v128" ? "(v128.const i64x2 1 1)" : `(${t}.const 1)`);
/** A value loaded from memory: the recursive call may change memory, so no tier can recompute it. */
const loaded = (t: string, i: number): string => `(${t}.load offset=${(i * 16) % 60000} (i32.const 0))`;

/** A function $r(n, p…) with random locals, kept live across a call nested in `height` operands. */
let lastShape = "";
function randomModule(): string {
  const params = Array.from({ length: rand(9) }, () => TYPES[rand(4)] as string);
  const localCount = [0, 1, 5, 20, 100, 400, 1500][rand(7)] ?? 0;
  const locals = Array.from({ length: localCount }, () => TYPES[rand(5)] as string);
  const height = rand(12);
  lastShape = `params ${params.join(",")} locals ${localCount} height ${height} types ${[...new Set(locals)].join(",")}`;
  const first = 1 + params.length;
  const sets = locals.map((t, i) => `(local.set ${first + i} ${loaded(t, i)})`).join(" ");
  // Every local is read after the call (folded into the result), so every tier keeps it.
  const asI32 = (t: string, x: string): string =>
    t === "i32" ? x : t === "i64" ? `(i32.wrap_i64 ${x})` : t === "v128" ? `(i32x4.extract_lane 0 ${x})` : `(i32.trunc_sat_${t}_s ${x})`;
  const uses = locals.reduce((acc, t, i) => `(i32.add ${acc} ${asI32(t, `(local.get ${first + i})`)})`, "(i32.const 0)");
  const args = params.map((_, i) => `(local.get ${i + 1})`).join(" ");
  let callExpr = `(call $r (i32.sub (local.get 0) (i32.const 1)) ${args})`;
  for (let i = 0; i < height; i++) callExpr = `(i32.add (i32.const ${i}) ${callExpr})`;
  const paramDecl = params.length === 0 ? "" : `(param ${params.join(" ")})`;
  const localDecl = locals.length === 0 ? "" : `(local ${locals.join(" ")})`;
  const callArgs = params.map((t) => one(t)).join(" ");
  return `(module
    (import "ic0" "msg_reply" (func $reply))
    (memory 1)
    (func $r (param i32) ${paramDecl} (result i32) ${localDecl}
      ${sets}
      (if (i32.eqz (local.get 0)) (then (return (i32.const 0))))
      (i32.add ${callExpr} ${uses}))
    (func (export "canister_update rec")
      (drop (call $r (i32.const 1000000000) ${callArgs}))
      (call $reply)))`;
}

function compile(text: string): Uint8Array {
  const m = binaryen.parseText(text);
  try {
    m.setFeatures(binaryen.Features.MVP | binaryen.Features.MutableGlobals | binaryen.Features.SIMD128 | binaryen.Features.Multivalue | binaryen.Features.NontrappingFPToInt);
    if (!m.validate()) throw new Error("probe module does not validate");
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

/** Bound bytes in use when V8 itself overflows, with the deterministic limit lifted. */
function boundAtNativeOverflow(cache: ModuleCache, bytes: Uint8Array): number {
  const li = new LiveInstance(cache.get(bytes));
  const ex = li.instance.exports as Record<string, { value: number | bigint }>;
  (ex["__stack_limit"] as { value: number }).value = 0x7fffffff;
  (ex["__instr_limit"] as { value: bigint }).value = 2n ** 62n;
  try {
    li.callExport("canister_update rec");
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  return (ex["__stack_used"] as { value: number }).value;
}

const capacity = hostStackCapacityFrames();
const hostFrames = Math.floor((capacity * headroomBytes) / V8_STACK_BYTES);
let trapped = 0;
let worst = 0;
for (let i = 0; i < cases; i++) {
  const bytes = compile(randomModule());
  const cache = new ModuleCache();
  const executor = new WasmExecutor(cache);
  const created = lifecycle.createCanister({ id: canisterIdFromU64(1n), controllers: [SENDER], cycles: 10n ** 12n });
  const inst = executor.installCode(created, { mode: "install", wasmModule: bytes, arg: new Uint8Array(), sender: SENDER }, { instructionLimit: 10n ** 12n, timeNs: 0n });
  if (!inst.ok) throw new Error(inst.message);
  for (let warm = 0; warm < 2; warm++) {
    const r = atHostStackDepth(hostFrames, () =>
      executor.executeMessage(inst.canister, { kind: "ingress", messageId: `m${warm}`, caller: SENDER, method: "rec", arg: new Uint8Array() }, { instructionLimit: 10n ** 11n, timeNs: 0n }),
    );
    if (warm === 1 && r.outcome.kind === "trapped" && /stack overflow: the call stack exceeds/.test(r.outcome.message)) trapped++;
  }
  const bound = boundAtNativeOverflow(cache, bytes);
  worst = Math.max(worst, V8_STACK_BYTES / bound);
  if (process.env["PROBE_VERBOSE"]) console.error((V8_STACK_BYTES / bound).toFixed(3), cache.get(bytes).maxFrameBytes, lastShape);
}
console.log(JSON.stringify({ cases, trapped, worst }));
