// Fixtures and fingerprints for instance-reuse.test.ts (and its child-process twin reuse-digest.ts).
import { createHash } from "node:crypto";
import { WasmExecutor } from "../../harness/execution/executor.ts";
import { ModuleCache } from "../../harness/execution/module-cache.ts";
import { canisterIdFromU64, type CanisterState, type ExecutionResult, type PrincipalText } from "../../harness/execution/interfaces.ts";
import * as lifecycle from "../../harness/execution/lifecycle.ts";
import { fixture, wat } from "./helpers.ts";

const SENDER = "2vxsx-fae" as PrincipalText;
const TIME = 1_700_000_000_000_000_000n;
const CANDID_NO_ARGS = new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0x00, 0x00]);

/**
 * A canister with instance-only state: a passive data segment it copies, then drops. On the IC the
 * drop does not survive the message (every message gets a new instance). (Table writes need
 * reference types, which the instrumentation does not accept, so data.drop is the one such
 * instruction a valid canister can use today; instrument.ts flags table.set/grow too.)
 */
const HIDDEN_STATE_WAT = `(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data $greeting "hello")
  (func (export "canister_update init_then_drop")
    (memory.init $greeting (i32.const 16) (i32.const 0) (i32.const 5))
    (data.drop $greeting)
    (call $append (i32.const 16) (i32.const 5)) (call $reply))
  (func (export "canister_update clear") (memory.fill (i32.const 16) (i32.const 0) (i32.const 5)) (call $reply))
  (func (export "canister_query peek") (call $append (i32.const 16) (i32.const 5)) (call $reply)))`;

/** Canister name → methods the property draws from (all take no or empty Candid arguments). */
export const FIXTURE_CANISTERS: ReadonlyMap<string, readonly string[]> = new Map([
  ["wat-hidden-state", ["init_then_drop", "clear", "peek"]],
  ["c-counter", ["inc", "stable_inc", "inc_all_then_trap", "touch_pages", "get", "inc_in_query"]],
  ["motoko-counter", ["inc", "incThenTrap", "get", "incInQuery"]],
]);

export interface Call {
  readonly canister: string;
  readonly method: string;
}

function moduleOf(name: string): Uint8Array {
  switch (name) {
    case "wat-hidden-state":
      return wat(HIDDEN_STATE_WAT);
    case "c-counter":
      return fixture("c/counter.wasm");
    case "motoko-counter":
      return fixture("motoko/counter.classic.wasm");
    default:
      throw new Error(`unknown fixture canister ${name}`);
  }
}

export function installFixture(executor: WasmExecutor, name: string): CanisterState {
  const index = [...FIXTURE_CANISTERS.keys()].indexOf(name);
  const created = lifecycle.createCanister({ id: canisterIdFromU64(BigInt(index + 1)), controllers: [SENDER], cycles: 10n ** 13n });
  const arg = name.startsWith("motoko") ? CANDID_NO_ARGS : new Uint8Array();
  const r = executor.installCode(created, { mode: "install", wasmModule: moduleOf(name), arg, sender: SENDER }, { instructionLimit: 10n ** 12n, timeNs: TIME });
  if (!r.ok) throw new Error(`install ${name}: ${r.message}`);
  return r.canister;
}

export function runCall(executor: WasmExecutor, canister: CanisterState, call: Call): { result: ExecutionResult; canister: CanisterState } {
  const arg = call.canister.startsWith("motoko") ? CANDID_NO_ARGS : new Uint8Array();
  const result = executor.executeMessage(canister, { kind: "ingress", messageId: `m-${call.method}`, caller: SENDER, method: call.method, arg }, {
    instructionLimit: 10n ** 10n,
    timeNs: TIME,
  });
  return { result, canister: result.canister };
}

/** What a message produced and the state it left, in comparable form. */
export function fingerprint(result: ExecutionResult, canister: CanisterState): Record<string, string> {
  const response = result.responses[0]?.response;
  const exec = canister.execution;
  return {
    outcome: result.outcome.kind === "trapped" ? `trapped: ${result.outcome.message}` : result.outcome.kind,
    reply: response === undefined ? "none" : response.kind === "reply" ? Buffer.from(response.data).toString("hex") : `reject ${response.code} ${response.message}`,
    instructions: String(result.instructionsUsed),
    heap: exec === undefined ? "" : exec.wasmMemory.hash(),
    stable: exec === undefined ? "" : exec.stableMemory.hash(),
    globals: exec === undefined ? "" : exec.globals.map((g) => `${g.type}:${g.bits}`).join(","),
    cycles: String(canister.cyclesBalance),
  };
}

/** SHA-256 over the fingerprints of a seeded call sequence on every fixture (one executor). */
export function sequenceDigest(seed: number, length: number, executor: WasmExecutor = new WasmExecutor(new ModuleCache())): string {
  let s = seed;
  const pick = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  const names = [...FIXTURE_CANISTERS.keys()];
  const states = new Map(names.map((n) => [n, installFixture(executor, n)]));
  const h = createHash("sha256");
  for (let i = 0; i < length; i++) {
    const name = names[pick(names.length)]!;
    const methods = FIXTURE_CANISTERS.get(name)!;
    const r = runCall(executor, states.get(name)!, { canister: name, method: methods[pick(methods.length)]! });
    states.set(name, r.canister);
    h.update(JSON.stringify(fingerprint(r.result, r.canister)));
  }
  return h.digest("hex");
}

