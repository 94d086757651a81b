// Instrumented, compiled modules cached by the SHA-256 of the uploaded module (DESIGN.md
// "Execution": instrument each module once). The cache is an optimisation only: its contents are a
// pure function of the module bytes (and of this code), so replicas sharing one cache stay
// independent. Behind the in-memory cache, the process-wide cache also reads and writes
// instrumentations on disk (module-disk-cache.ts), so a new process does not instrument a module
// that an earlier one did. Paranoid runs (harness/paranoia.ts) check that claim: every new module
// is instrumented twice — or once more beside its disk entry — and the binaries must be identical,
// and the entries are frozen.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { HashHex } from "../types.ts";
import { Wasm, type WasmModule } from "./webassembly.ts";
import type { InstrumentedModule } from "./instrument.ts";
import { instrumentModule } from "./instrumenter.ts";
import { InvalidModuleError } from "./invalid-module.ts";
import { diskCacheFromEnvironment, type ModuleDiskCache } from "./module-disk-cache.ts";
import { activeDataPages, checkModuleSize, uncompressedModule } from "./module-limits.ts";
import { PAGE_SIZE_BYTES } from "../state/page-map.ts";
import { freezeShared, paranoid } from "../paranoia.ts";
import { BoundedMap } from "../memo.ts";

const MODULES_KEPT = 64;

export interface CompiledModule extends InstrumentedModule {
  readonly moduleHash: HashHex;
  readonly compiled: WasmModule;
  /**
   * The module as uploaded (the bytes the hash is of), held once per distinct module: canister
   * states keep these bytes rather than their own copy, so a fleet of 80,000 canisters running one
   * module holds it once (Wasm deduplication, issue 14 item 2). Never written to.
   */
  readonly uploaded: Uint8Array;
  /**
   * The 4 KiB pages the module's active data segments write at instantiation (module-limits.ts
   * activeDataPages); undefined when an offset is not constant (every initial page may hold data).
   */
  readonly dataPages: readonly number[] | undefined;
}

export function moduleHash(bytes: Uint8Array): HashHex {
  return bytesToHex(sha256(bytes)) as HashHex;
}

export interface ModuleCacheOptions {
  /** Instrumentations kept between processes (none by default: a cache of its own is in memory only). */
  readonly disk?: ModuleDiskCache;
  /** Paranoid checks (default: the process's paranoid mode). */
  readonly paranoid?: boolean;
}

export class ModuleCache {
  /** Bounded: a fuzz worker or a long-lived `up` may see any number of distinct modules. */
  private readonly entries = new BoundedMap<string, CompiledModule | InvalidModuleError>("compiledModules", MODULES_KEPT);
  private instrumentations = 0;
  readonly disk: ModuleDiskCache | undefined;
  private readonly paranoid: boolean;

  constructor(options: ModuleCacheOptions = {}) {
    this.disk = options.disk;
    this.paranoid = options.paranoid ?? paranoid;
  }

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
        const inst = this.instrumented(hash, bytes);
        let compiled: WasmModule;
        try {
          compiled = new Wasm.Module(inst.binary);
        } catch (e) {
          throw new InvalidModuleError(`module does not compile: ${e instanceof Error ? e.message : String(e)}`);
        }
        // A copy (a Buffer's slice() would be a view): the caller may reuse its buffer, and every
        // canister running the module shares this one.
        const uploaded = new Uint8Array(bytes);
        entry = freezeShared({ ...inst, moduleHash: hash, compiled, uploaded, dataPages: activeDataPages(uncompressedModule(uploaded), PAGE_SIZE_BYTES) });
      } catch (e) {
        if (!(e instanceof InvalidModuleError)) throw e;
        entry = e;
      }
      this.entries.set(hash, entry);
    }
    if (entry instanceof InvalidModuleError) throw entry;
    return entry;
  }

  /** From disk, or instrumented here (and then written to disk); throws InvalidModuleError. */
  private instrumented(hash: HashHex, bytes: Uint8Array): InstrumentedModule {
    const cached = this.disk?.read(hash);
    if (cached !== undefined) {
      if (this.paranoid) this.checkAgainstFresh(hash, cached, uncompressedModule(bytes), "its disk cache entry");
      return cached;
    }
    const wasm = uncompressedModule(bytes);
    const inst = instrumentModule(wasm);
    this.instrumentations++;
    if (this.paranoid) this.checkAgainstFresh(hash, inst, wasm, "the first instrumentation");
    this.disk?.write(hash, inst);
    return inst;
  }

  /** Another instrumentation of the same bytes must give the same binary (paranoid runs). */
  private checkAgainstFresh(hash: HashHex, first: InstrumentedModule, wasm: Uint8Array, what: string): void {
    const second = instrumentModule(wasm);
    if (!sameInstrumentation(first, second)) {
      throw new Error(`instrumentation of module ${hash} is nondeterministic: a new instrumentation of the same bytes differs from ${what} (a bug in instrument.ts, or a stale disk cache key)`);
    }
  }

  /** Number of modules instrumented so far, not counting paranoid re-instrumentations nor disk hits (for tests of the cache). */
  get instrumentationCount(): number {
    return this.instrumentations;
  }
}

/** One cache per process by default, backed by the disk cache unless SUBNETLAB_MODULE_CACHE=off. */
export const sharedModuleCache = new ModuleCache({ ...withDisk(diskCacheFromEnvironment()) });

function withDisk(disk: ModuleDiskCache | undefined): { disk?: ModuleDiskCache } {
  return disk === undefined ? {} : { disk };
}

function sameInstrumentation(a: InstrumentedModule, b: InstrumentedModule): boolean {
  const { binary: binaryA, ...restA } = a;
  const { binary: binaryB, ...restB } = b;
  return Buffer.from(binaryA).equals(binaryB) && JSON.stringify(restA) === JSON.stringify(restB);
}
