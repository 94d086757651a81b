// Shared helpers for the execution tests: committed fixtures and WAT compilation.
import { readFileSync } from "node:fs";
import binaryen from "../../harness/execution/binaryen.ts";

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
