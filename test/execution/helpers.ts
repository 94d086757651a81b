// Shared helpers for the execution tests: committed fixtures and WAT compilation.
import { readFileSync } from "node:fs";
import binaryen from "../../harness/execution/binaryen.ts";
import type { WasmExecutor } from "../../harness/execution/executor.ts";
import { canisterIdFromU64, type CanisterState, type PrincipalText } from "../../harness/execution/interfaces.ts";
import * as lifecycle from "../../harness/execution/lifecycle.ts";

/** The anonymous principal, as the sender of test calls and controller of test canisters. */
export const TEST_SENDER = "2vxsx-fae" as PrincipalText;
/** A fixed batch time for execution tests (2023-11-14). */
export const TEST_TIME_NS = 1_700_000_000_000_000_000n;

const FIXTURES = new URL("../../fixtures/canisters/", import.meta.url);

/** A committed fixture build, e.g. `motoko/counter.classic.wasm` or `c/kv.wasm`. */
export function fixture(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(path, FIXTURES)));
}

/** Compiles WAT text (with the features canisters may use) to a Wasm binary. */
export function wat(text: string, features = binaryen.Features.MVP | binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt | binaryen.Features.SignExt | binaryen.Features.NontrappingFPToInt | binaryen.Features.Multivalue): Uint8Array {
  const m = binaryen.parseText(text);
  try {
    m.setFeatures(features);
    if (!m.validate()) throw new Error("WAT fixture does not validate");
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

export function watFixture(name: string): Uint8Array {
  return wat(readFileSync(new URL(`wat/${name}`, FIXTURES), "utf8"));
}

export const u32le = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
export const readU32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
export const readU64 = (b: Uint8Array): bigint => new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);

/** A canister (id 1, controlled by the anonymous sender) with `module` installed, no init argument. */
export function installedCanister(executor: WasmExecutor, module: Uint8Array): CanisterState {
  const created = lifecycle.createCanister({ id: canisterIdFromU64(1n), controllers: [TEST_SENDER], cycles: 10n ** 12n });
  const r = executor.installCode(created, { mode: "install", wasmModule: module, arg: new Uint8Array(), sender: TEST_SENDER }, {
    instructionLimit: 10n ** 12n,
    timeNs: TEST_TIME_NS,
  });
  if (!r.ok) throw new Error(r.message);
  return r.canister;
}

/**
 * A management canister `canister_settings` record (Candid opt fields) with every field unset but
 * those given: `settingsRecord({ compute_allocation: [10n] })`.
 */
export function settingsRecord(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    controllers: [],
    compute_allocation: [],
    memory_allocation: [],
    freezing_threshold: [],
    reserved_cycles_limit: [],
    log_visibility: [],
    wasm_memory_limit: [],
    wasm_memory_threshold: [],
    environment_variables: [],
    ...fields,
  };
}
