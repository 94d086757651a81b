// Instrumented, compiled modules cached by the SHA-256 of the uploaded module (DESIGN.md
// "Execution": instrument each module once). The cache is an optimisation only: its contents are a
// pure function of the module bytes (and of this code), so replicas sharing one cache stay
// independent. Paranoid runs (harness/paranoia.ts) check that claim: every new module is
// instrumented twice and the two binaries must be identical, and the entries are frozen.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { HashHex } from "../types.ts";
import { Wasm, type WasmModule } from "./webassembly.ts";
import { instrumentModule, InvalidModuleError, type InstrumentedModule } from "./instrument.ts";
import { checkModuleSize, uncompressedModule } from "./module-limits.ts";
import { freezeShared, paranoid } from "../paranoia.ts";

export interface CompiledModule extends InstrumentedModule {
  readonly moduleHash: HashHex;
  readonly compiled: WasmModule;
}

export function moduleHash(bytes: Uint8Array): HashHex {
  return bytesToHex(sha256(bytes)) as HashHex;
}

export class ModuleCache {
  private readonly entries = new Map<string, CompiledModule | InvalidModuleError>();
  private instrumentations = 0;

  /**
   * Instruments and compiles once per distinct module (as uploaded: gzip-compressed or not, cached
   * by the hash of those bytes); throws InvalidModuleError if rejected.
   */
  get(bytes: Uint8Array): CompiledModule {
    checkModuleSize(bytes); // an oversized module is refused before hashing its 100+ MiB
    return this.getWithHash(moduleHash(bytes), bytes);
  }

  /** As get(), when the caller already knows the module's hash (e.g. from the canister state). */
  getWithHash(hash: HashHex, bytes: Uint8Array): CompiledModule {
    let entry = this.entries.get(hash);
    if (entry === undefined) {
      try {
        const wasm = uncompressedModule(bytes);
        const inst = instrumentModule(wasm);
        this.instrumentations++;
        if (paranoid) checkInstrumentationIsDeterministic(hash, inst, wasm);
        let compiled: WasmModule;
        try {
          compiled = new Wasm.Module(inst.binary);
        } catch (e) {
          throw new InvalidModuleError(`module does not compile: ${e instanceof Error ? e.message : String(e)}`);
        }
        entry = freezeShared({ ...inst, moduleHash: hash, compiled });
      } catch (e) {
        if (!(e instanceof InvalidModuleError)) throw e;
        entry = e;
      }
      this.entries.set(hash, entry);
    }
    if (entry instanceof InvalidModuleError) throw entry;
    return entry;
  }

  /** Number of modules instrumented so far (for tests of the cache). */
  get instrumentationCount(): number {
    return this.instrumentations;
  }
}

/** One cache per process by default. */
export const sharedModuleCache = new ModuleCache();

/** A second instrumentation of the same bytes must give the same binary (paranoid runs). */
function checkInstrumentationIsDeterministic(hash: HashHex, first: InstrumentedModule, bytes: Uint8Array): void {
  const second = instrumentModule(bytes);
  if (!Buffer.from(first.binary).equals(second.binary) || first.maxFrameBytes !== second.maxFrameBytes || first.mutatesInstance !== second.mutatesInstance) {
    throw new Error(`instrumentation of module ${hash} is nondeterministic: two runs over the same bytes differ (a bug in instrument.ts)`);
  }
}
