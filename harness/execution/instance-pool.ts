// Live instances of canister modules: which one a message runs on, and what becomes of it after.
//
// An instance that mirrors a canister's committed state (memory and globals) can run its next
// message without loading that state again; the pool keeps a few of them. Results never depend on
// the pool: a pooled instance mirrors exactly the state a fresh one would load.
import type { CanisterId, ExecutionState } from "./interfaces.ts";
import { LiveInstance } from "./instance.ts";
import type { CompiledModule, ModuleCache } from "./module-cache.ts";
import { hypervisorUserError, type HypervisorError, type UserError } from "./reject-codes.ts";
import { isRuntimeError } from "./webassembly.ts";

/**
 * Live instances, at most `perCanister` per canister and `total` overall, least recently used
 * evicted first. Two per canister cover the common pairs: queries on the certified state next to
 * updates on the newest one, or two replicas of one canister sharing an executor.
 */
class InstancePool {
  private readonly lists = new Map<CanisterId, LiveInstance[]>();
  private readonly order: { id: CanisterId; li: LiveInstance }[] = [];

  constructor(
    private readonly perCanister: number,
    private readonly total: number,
  ) {}

  find(id: CanisterId, module: CompiledModule, exec: ExecutionState): LiveInstance | undefined {
    const li = this.lists
      .get(id)
      ?.find((x) => x.module === module && x.mirrors?.memory === exec.wasmMemory && x.mirrors.globals === exec.globals);
    if (li !== undefined) this.touch(id, li);
    return li;
  }

  add(id: CanisterId, li: LiveInstance): void {
    const list = this.lists.get(id) ?? [];
    list.push(li);
    this.lists.set(id, list);
    this.order.push({ id, li });
    if (list.length > this.perCanister) this.remove(id, list[0] as LiveInstance);
    while (this.order.length > this.total) {
      const oldest = this.order[0];
      if (oldest === undefined) break;
      this.remove(oldest.id, oldest.li);
    }
  }

  remove(id: CanisterId, li: LiveInstance): void {
    const list = (this.lists.get(id) ?? []).filter((x) => x !== li);
    if (list.length === 0) this.lists.delete(id);
    else this.lists.set(id, list);
    const i = this.order.findIndex((x) => x.li === li);
    if (i >= 0) this.order.splice(i, 1);
  }

  removeAll(id: CanisterId): void {
    for (const li of [...(this.lists.get(id) ?? [])]) this.remove(id, li);
  }

  private touch(id: CanisterId, li: LiveInstance): void {
    const i = this.order.findIndex((x) => x.li === li);
    if (i >= 0 && i !== this.order.length - 1) {
      this.order.splice(i, 1);
      this.order.push({ id, li });
    }
  }
}

export interface LiveInstancesOptions {
  /** Live instances kept per canister and in total. */
  readonly perCanister: number;
  readonly total: number;
  /** The engine's bound on a main memory, in Wasm pages (memory.grow beyond it returns −1). */
  readonly memoryLimitPages: number;
}

/** The lifecycle of live instances: taken for a message, pooled after it, rolled back or dropped. */
export class LiveInstances {
  private readonly pool: InstancePool;
  private readonly memoryLimitPages: number;

  constructor(
    private readonly modules: ModuleCache,
    options: LiveInstancesOptions,
  ) {
    this.pool = new InstancePool(options.perCanister, options.total);
    this.memoryLimitPages = options.memoryLimitPages;
  }

  /**
   * A live instance holding `exec`'s memory and globals: a pooled one that mirrors exactly this
   * state, or a fresh one. A module that can change instance-only state (mutatesInstance: dropped
   * data segments, table writes) always gets a fresh instance, as every message does on the IC:
   * reusing it would make a message's result depend on which messages ran on it before.
   */
  instanceFor(id: CanisterId, exec: ExecutionState): LiveInstance {
    const module = this.modules.getWithHash(exec.moduleHash, exec.wasmModule);
    if (!module.mutatesInstance) {
      const cached = this.pool.find(id, module, exec);
      if (cached !== undefined) return cached;
    }
    const li = new LiveInstance(module, this.memoryLimitPages);
    li.loadState(exec.wasmMemory, exec.wasmMemoryPages, exec.globals);
    this.keep(id, li);
    return li;
  }

  /**
   * A fresh instance for an install or upgrade, or why the module cannot be instantiated (a data
   * or element segment outside its memory or table): the install fails, it does not throw.
   */
  instantiate(id: CanisterId, module: CompiledModule): LiveInstance | UserError {
    try {
      return new LiveInstance(module, this.memoryLimitPages);
    } catch (e) {
      if (!isRuntimeError(e)) throw e;
      return hypervisorUserError(id, instantiationError(e.message));
    }
  }

  /** Pools an instance for the next message on the state it mirrors (unless its module forbids it). */
  keep(id: CanisterId, li: LiveInstance): void {
    if (!li.module.mutatesInstance) this.pool.add(id, li);
  }

  /** After a trap or a query: the instance mirrors `exec` again, or leaves the pool if it cannot. */
  discard(id: CanisterId, li: LiveInstance, exec: ExecutionState): void {
    if (!li.rollback(exec.globals)) this.pool.remove(id, li);
  }

  /** The instance mirrors no state any more (stopped half-way, or its state moved on without it). */
  drop(id: CanisterId, li: LiveInstance): void {
    this.pool.remove(id, li);
  }

  /** Drops the pooled instances of a canister (e.g. when it is deleted). */
  forget(id: CanisterId): void {
    this.pool.removeAll(id);
  }
}

/**
 * A module whose segments do not fit its memory or table. The IC finds a data segment outside the
 * initial memory while instrumenting (WasmInstrumentationError::InvalidDataSegment, reported as
 * InstrumentationFailed, IC0505, with the toolchain hint: rs/embedders data segments `validate`,
 * rs/types/wasm_types/src/errors.rs); the detail here is the engine's message, not the IC's
 * "Wasm module has invalid data segment of <len> bytes at <offset>".
 */
function instantiationError(engineMessage: string): HypervisorError {
  return { kind: "instrumentation-failed", detail: engineMessage };
}
