// Item 6 of the hardening issue (#11): long executions show progress, and the host can stop one
// (a wall-time budget in the CLI) with a harness verdict — without the results ever depending on it.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import {
  canisterIdFromU64,
  ExecutionAborted,
  formatInstructions,
  lifecycle,
  ModuleCache,
  WasmExecutor,
  type CanisterMessage,
  type CanisterState,
  type ExecutionProgress,
  type ExecutionResult,
  type PrincipalText,
  type ProgressCallback,
} from "../../harness/execution/index.ts";
import { canisterStateHash } from "../../harness/state/canister-codec.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";
import { u32le, wat } from "./helpers.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const TIME = 1_700_000_000_000_000_000n;

/**
 * `spin n` (n: u32 LE argument) runs n iterations that write the heap, add to a global and print
 * every 256th step (System API charges between the marks), then replies; `boom n` does the same
 * and traps; canister_init spins as long as its argument says.
 */
const SPINNER = wat(`(module
  (import "ic0" "msg_arg_data_size" (func $size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (memory 3)
  (global $sum (mut i64) (i64.const 0))
  (func $spin (local $i i32) (local $n i32)
    (if (i32.lt_u (call $size) (i32.const 4)) (then (return)))
    (call $copy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store (i32.add (i32.const 64) (i32.and (i32.mul (local.get $i) (i32.const 4)) (i32.const 0x1fff0))) (local.get $i))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 255))) (then (call $print (i32.const 0) (i32.const 4))))
      (global.set $sum (i64.add (global.get $sum) (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  (func (export "canister_init") (call $spin))
  (func (export "canister_update spin") (call $spin) (call $reply))
  (func (export "canister_update boom") (call $spin) (unreachable)))`);

const EVERY = 7_919n; // a prime: marks fall at odd places within loop iterations and System API calls

function create(): CanisterState {
  return lifecycle.createCanister({ id: canisterIdFromU64(7n), controllers: [SENDER], cycles: 10n ** 12n });
}

function ingress(method: string, n: number, k: number): CanisterMessage {
  return { kind: "ingress", messageId: `m${k}`, caller: SENDER, method, arg: u32le(n) };
}

/** What a result says, with the canister state reduced to its hash. */
function observable(r: ExecutionResult): unknown {
  return {
    outcome: r.outcome,
    instructionsUsed: r.instructionsUsed,
    state: canisterStateHash(r.canister),
    responses: r.responses.map((x) => ({ ...x.response, data: x.response.kind === "reply" ? [...x.response.data] : undefined })),
    heapDeltaPages: r.heapDeltaPages,
    debugLog: r.debugLog.length,
  };
}

/** Install (init spins 3,000) and a run of messages, among them an instruction-limit trap. */
function scenario(executor: WasmExecutor): unknown[] {
  const seen: unknown[] = [];
  const installed = executor.installCode(create(), { mode: "install", wasmModule: SPINNER, arg: u32le(3_000), sender: SENDER }, { instructionLimit: 10n ** 9n, timeNs: TIME });
  if (!installed.ok) throw new Error(installed.message);
  seen.push({ install: installed.instructionsUsed, state: canisterStateHash(installed.canister) });
  let c = installed.canister;
  const steps: [string, number, bigint][] = [
    ["spin", 5_000, 10n ** 9n],
    ["spin", 1_000_000, 300_000n], // traps at the instruction limit
    ["boom", 2_000, 10n ** 9n],
    ["spin", 40_000, 10n ** 9n],
    ["spin", 100, 10n ** 9n],
  ];
  steps.forEach(([method, n, limit], k) => {
    const r = executor.executeMessage(c, ingress(method, n, k), { instructionLimit: limit, timeNs: TIME });
    seen.push(observable(r));
    c = r.canister;
  });
  return seen;
}

test("item 6: progress marks change nothing — instruction counts, traps and states are the same with and without them", (t) => {
  const calls: ExecutionProgress[] = [];
  const watched = scenario(new WasmExecutor(new ModuleCache(), { onProgress: (p) => (calls.push(p), "continue"), progressEveryInstructions: EVERY }));
  const plain = scenario(new WasmExecutor(new ModuleCache()));
  t.deepEqual(watched, plain);
  // The watch did look: an instruction-limit trap and a long spin among the results, marks in between.
  t.regex(JSON.stringify(plain, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)), /instruction limit/);
  const marks = calls.filter((p) => !p.starting);
  t.true(marks.length > 50, `${marks.length} progress marks`);
  t.deepEqual(calls.filter((p) => p.starting).map((p) => p.entryPoint), ["canister_init", "canister_update spin", "canister_update spin", "canister_update boom", "canister_update spin", "canister_update spin"]);
  // Marks are EVERY apart at least, below the limit, within one execution increasing.
  let previous = 0n;
  for (const p of calls) {
    if (p.starting) {
      previous = 0n;
      continue;
    }
    t.true(p.instructionsSoFar >= previous + EVERY, `${p.instructionsSoFar} after ${previous}`);
    t.true(p.instructionsSoFar <= p.instructionLimit);
    previous = p.instructionsSoFar;
  }
});

test("item 6: answering abort stops the execution with ExecutionAborted naming the canister, the method and the count; the executor stays sound", (t) => {
  let abortAt: bigint | undefined = 50_000n;
  const onProgress: ProgressCallback = (p) => (abortAt !== undefined && !p.starting && p.instructionsSoFar >= abortAt ? "abort" : "continue");
  const executor = new WasmExecutor(new ModuleCache(), { onProgress, progressEveryInstructions: EVERY });
  const installed = executor.installCode(create(), { mode: "install", wasmModule: SPINNER, arg: u32le(10), sender: SENDER }, { instructionLimit: 10n ** 9n, timeNs: TIME });
  if (!installed.ok) throw new Error(installed.message);
  const message = ingress("spin", 1_000_000, 1);
  const error = t.throws(() => executor.executeMessage(installed.canister, message, { instructionLimit: 10n ** 10n, timeNs: TIME }), { instanceOf: ExecutionAborted });
  t.is(error?.progress.canisterId, installed.canister.id);
  t.is(error?.progress.entryPoint, "canister_update spin");
  t.true((error?.progress.instructionsSoFar ?? 0n) >= 50_000n);
  t.regex(error?.message ?? "", new RegExp(`canister ${installed.canister.id}, canister_update spin, after \\d+ instructions`));
  // The aborted instance had half the loop's writes: the same message afterwards must give what a
  // fresh executor gives (the instance was dropped, not reused).
  abortAt = undefined;
  const again = executor.executeMessage(installed.canister, message, { instructionLimit: 10n ** 10n, timeNs: TIME });
  const fresh = new WasmExecutor(new ModuleCache()).executeMessage(installed.canister, message, { instructionLimit: 10n ** 10n, timeNs: TIME });
  t.deepEqual(observable(again), observable(fresh));
});

test("item 6: a looping canister_init is stopped at install by the host, naming canister_init", (t) => {
  const executor = new WasmExecutor(new ModuleCache(), { onProgress: (p) => (p.instructionsSoFar >= 200_000n ? "abort" : "continue"), progressEveryInstructions: 100_000n });
  const error = t.throws(
    () => executor.installCode(create(), { mode: "install", wasmModule: SPINNER, arg: u32le(0xffff_ffff), sender: SENDER }, { instructionLimit: 300_000_000_000n, timeNs: TIME }),
    { instanceOf: ExecutionAborted },
  );
  t.is(error?.progress.entryPoint, "canister_init");
  t.is(error?.progress.instructionLimit, 300_000_000_000n);
});

test("item 6: instruction counts are printed short", (t) => {
  t.is(formatInstructions(3_200_000_000n), "3.2e9");
  t.is(formatInstructions(12_345n), "12345");
  t.is(formatInstructions(40_000_000_000n), "4.0e10");
});

test("item 6: a run whose genesis canister_init loops ends with ExecutionAborted from the runner's progress hook, naming replica, canister and canister_init", (t) => {
  const scenario = defineScenario({
    name: "looping-init",
    description: "a genesis canister whose canister_init never returns",
    n: 4,
    durationS: 5,
    canisters: [{ name: "hostile", wasm: "fixtures/canisters/wat/loop-init.wasm" }],
    expect: { verdict: "pass" },
  });
  const seen: string[] = [];
  const error = t.throws(
    () =>
      runScenario(scenario, {
        seed: 1,
        onExecutionProgress: (replica, p) => {
          seen.push(`${replica} ${p.entryPoint} ${p.starting ? "start" : formatInstructions(p.instructionsSoFar)}`);
          return p.starting ? "continue" : "abort";
        },
      }),
    { instanceOf: ExecutionAborted },
  );
  t.deepEqual(seen, ["r0 canister_init start", "r0 canister_init 1.0e9"]);
  t.is(error?.progress.entryPoint, "canister_init");
  t.regex(error?.message ?? "", /canister \S+-cai, canister_init, after 1\.0e9 instructions/);
});
