// A live Wasm instance of one canister, plus the host side of the instrumentation: instruction
// counter access, the dirty pages reported by the write barrier (dirty-pages.ts), and rollback.
// An instance mirrors exactly one (wasmMemory, globals) pair of a canister state; the executor
// re-materialises it from the page map whenever the state it is given is not the one the instance
// mirrors.
import { assert } from "../assert.ts";
import { PAGE_SIZE_BYTES, type PageMap } from "../state/page-map.ts";
import { DirtyPages, NO_DIRTY_PAGE_BASE } from "./dirty-pages.ts";
import type { GlobalValue } from "./interfaces.ts";
import type { CompiledModule } from "./module-cache.ts";
import { CanisterTrap, type InstanceAccess, type SystemApiSession } from "./system-api.ts";
import { TrapCode } from "./reject-codes.ts";
import { Wasm, type ImportObject, type WasmGlobal, type WasmInstance, type WasmMemory, type WasmTable } from "./webassembly.ts";

export const WASM_PAGE_BYTES = 65_536;
/**
 * Deterministic stack limit: the sum of the frame bounds (instrument.ts `frameBytes`) of the
 * active Wasm frames. V8's stack is 984 KiB on the main thread; this leaves 472 KiB for the host
 * frames below the canister (the simulator, the executor; HOST_STACK_HEADROOM_BYTES) and above
 * it (ic0 calls). Frame bounds over-estimate V8's frames, so the host never overflows first while
 * the host below uses at most that headroom; if it does anyway, HostStackExhausted is thrown (a
 * harness error, never a canister trap that could differ between replicas).
 */
export const WASM_STACK_LIMIT_BYTES = 512 * 1024;
/** Host stack the executor may find already in use when it enters a canister (see above). */
export const HOST_STACK_HEADROOM_BYTES = 384 * 1024;

/**
 * The host's JS stack ran out inside canister code before the deterministic limit: the result
 * would depend on the host, so the run stops (harness error) instead of trapping the canister.
 */
export class HostStackExhausted extends Error {
  override readonly name = "HostStackExhausted";
}
/** Default wasm_memory_limit: 3 GiB (ic-protocol.md §4.8) in 64 KiB pages. */
export const DEFAULT_WASM_MEMORY_LIMIT_PAGES = (3 * 1024 * 1024 * 1024) / 65_536;
/** 32-bit linear memory cap: 4 GiB = 65,536 Wasm pages (ic-protocol.md §4.11). */
const MAX_WASM_PAGES = 65_536;

export class InstructionLimitExceeded extends CanisterTrap {}

/**
 * The IC's trap code for a V8 Wasm trap. The replica maps wasmtime's traps: stack overflow, memory
 * out of bounds (→ heap), table out of bounds, integer division by zero (also remainder),
 * unreachable; everything else (integer overflow, bad float conversion, a null or mismatched
 * indirect call, which V8 does not tell apart) is "unknown" (rs/embedders wasmtime_embedder.rs).
 */
export function trapCodeOfV8(message: string): TrapCode {
  if (/divide by zero|remainder by zero/.test(message)) return TrapCode.IntegerDivByZero;
  if (/memory access out of bounds/.test(message)) return TrapCode.HeapOutOfBounds;
  if (/table index is out of bounds/.test(message)) return TrapCode.TableOutOfBounds;
  if (/^unreachable/.test(message)) return TrapCode.Unreachable;
  return TrapCode.Other;
}

/**
 * The host's periodic look at a long execution (WasmExecutorOptions.onProgress): `check` runs
 * each time another `everyInstructions` have been counted. It cannot change the execution: the
 * counter, the limit it is compared with and every trap stay what they are without it; `check`
 * may only end the run by throwing (a harness decision, never a canister trap).
 */
export interface ProgressWatch {
  readonly everyInstructions: bigint;
  readonly check: (instructionsSoFar: bigint) => void;
}

export class LiveInstance implements InstanceAccess {
  readonly instance: WasmInstance;
  readonly memory: WasmMemory | undefined;
  readonly table: WasmTable | undefined;
  private readonly globals: WasmGlobal[];
  private readonly used: WasmGlobal;
  private readonly limit: WasmGlobal;
  /** `__dirty_page_base`: byte address of a page marked dirty in this invocation (instrument.ts). */
  private readonly dirtyPageBase: WasmGlobal;
  private readonly stackUsed: WasmGlobal;
  /** Pages written by this invocation, and what undoes them. */
  private readonly dirty = new DirtyPages();
  private session: SystemApiSession | undefined;
  private pagesAtStart = 0;
  private hasRun = false;
  /** The message's instruction limit; `__instr_limit` holds it, or the next progress mark below it. */
  private messageLimit = 0n;
  private watch: ProgressWatch | undefined;
  private instantiatedPages = 0;
  private memoryView: Uint8Array | undefined;
  /** The state this instance mirrors (identity comparison); see mirror(). */
  private mirrored: { memory: PageMap; globals: readonly GlobalValue[] } | undefined;
  /**
   * The memory holds exactly `mirrored.memory` (not yet written by an invocation since it was
   * mirrored, or rolled back to it): that map is then the undo source of the next invocation.
   */
  private memoryIsMirror = false;
  /** memoryIsMirror at begin(): what a rollback returns to. */
  private memoryWasMirror = false;

  constructor(
    readonly module: CompiledModule,
    /** Wasm pages the engine lets the main memory grow to (default 3 GiB; the setting is checked by the session). */
    private readonly memoryLimitPages: number = DEFAULT_WASM_MEMORY_LIMIT_PAGES,
  ) {
    const ic0: Record<string, (...args: never[]) => unknown> = {};
    for (const imp of module.imports) {
      const returnsI64 = imp.results[0] === "i64";
      ic0[imp.name] = (...args: (number | bigint)[]): unknown => {
        const s = this.session;
        if (s === undefined) throw new CanisterTrap(`ic0.${imp.name} called outside of a message execution`);
        const r = s.invoke(imp.name, args);
        if (imp.results.length === 0) return undefined;
        if (r === undefined) return returnsI64 ? 0n : 0;
        if (returnsI64) return typeof r === "bigint" ? BigInt.asIntN(64, r) : BigInt(r);
        return typeof r === "bigint" ? Number(BigInt.asIntN(32, r)) : r | 0;
      };
    }
    const imports: ImportObject = {
      ic0,
      __: {
        out_of_instructions: () => this.counterPassedMark(this.used.value as bigint),
        stack_exceeded: () => {
          throw new CanisterTrap(`stack overflow: the call stack exceeds ${WASM_STACK_LIMIT_BYTES} bytes`, { kind: "trapped", trap: TrapCode.StackOverflow });
        },
        memory_grow: (delta: number) => this.growMemory(delta >>> 0),
        mark_dirty: (addr: number, len: number) => this.markWritten(addr >>> 0, len >>> 0),
        mark_range: (addr: number, len: number) => {
          const n = len >>> 0;
          this.chargeInstructions(BigInt(n));
          if (n > 0) this.markWritten(addr >>> 0, n);
        },
      },
    };
    this.instance = new Wasm.Instance(module.compiled, imports);
    const ex = this.instance.exports;
    this.memory = ex["__memory"] as WasmMemory | undefined;
    this.table = ex["__table"] as WasmTable | undefined;
    this.globals = module.mutableGlobals.map((g) => ex[g.exportName] as WasmGlobal);
    this.used = ex["__instr_used"] as WasmGlobal;
    this.limit = ex["__instr_limit"] as WasmGlobal;
    this.dirtyPageBase = ex["__dirty_page_base"] as WasmGlobal;
    this.stackUsed = ex["__stack_used"] as WasmGlobal;
    this.instantiatedPages = this.memory === undefined ? 0 : this.memory.buffer.byteLength / PAGE_SIZE_BYTES;
    (ex["__stack_limit"] as WasmGlobal).value = WASM_STACK_LIMIT_BYTES;
  }

  // --- InstanceAccess -----------------------------------------------------------------------

  memoryBytes(): Uint8Array {
    if (this.memory === undefined) throw new CanisterTrap("the canister has no memory");
    // One view per buffer (memory.grow replaces the buffer): the barrier asks for it at every mark.
    const buffer = this.memory.buffer;
    if (this.memoryView?.buffer !== buffer) this.memoryView = new Uint8Array(buffer);
    return this.memoryView;
  }

  markWritten(addr: number, len: number): void {
    if (len === 0) return;
    const bytes = this.memory === undefined ? 0 : this.memory.buffer.byteLength;
    const lo = Math.floor(addr / PAGE_SIZE_BYTES);
    const hi = Math.floor((addr + len - 1) / PAGE_SIZE_BYTES);
    const pageLimit = bytes / PAGE_SIZE_BYTES;
    if (hi - lo > 1) {
      // bulk range: save all pages inside the memory
      for (let p = lo; p <= hi && p < pageLimit; p++) this.save(p);
    } else {
      if (lo < pageLimit) this.save(lo);
      if (hi !== lo && hi < pageLimit) this.save(hi);
    }
    // The barrier skips stores within this page from now on: only ever a page marked dirty (one
    // beyond the memory could become part of it through memory.grow without being marked).
    const skip = hi < pageLimit ? hi : lo < pageLimit ? lo : -1;
    this.dirtyPageBase.value = skip < 0 ? NO_DIRTY_PAGE_BASE : BigInt(skip * PAGE_SIZE_BYTES);
  }

  private save(page: number): void {
    this.dirty.mark(page, this.memoryBytes());
  }

  instructionsUsed(): bigint {
    return this.used.value as bigint;
  }

  chargeInstructions(n: bigint): void {
    const v = (this.used.value as bigint) + n;
    this.used.value = v;
    if (v > (this.limit.value as bigint)) this.counterPassedMark(v);
  }

  /**
   * The counter passed `__instr_limit`: a trap beyond the message's limit, else a progress mark
   * (only set when a watch is armed): re-arm the next mark, then let the watch look.
   */
  private counterPassedMark(used: bigint): void {
    if (used > this.messageLimit) throw this.limitExceeded();
    const watch = this.watch;
    assert(watch !== undefined, `instruction counter ${used} passed ${this.limit.value as bigint} below the limit without a progress watch`);
    this.armNextMark(used, watch);
    watch.check(used);
  }

  private armNextMark(used: bigint, watch: ProgressWatch): void {
    const next = used + watch.everyInstructions;
    this.limit.value = next < this.messageLimit ? next : this.messageLimit;
  }

  private limitExceeded(): InstructionLimitExceeded {
    return new InstructionLimitExceeded(`Canister exceeded the instruction limit for single message execution (${this.messageLimit})`, {
      kind: "instruction-limit",
      limit: this.messageLimit,
    });
  }

  /**
   * memory.grow: -1 beyond the engine's bound (deterministically, whatever the host could
   * allocate); a grow within it that passes the canister's wasm_memory_limit traps, as the
   * replica's try_grow_wasm_memory runs after the engine's grow (also for a grow by 0).
   */
  private growMemory(delta: number): number {
    const old = this.memoryPages();
    const max = Math.min(this.memoryLimitPages, this.module.maximumMemoryPages ?? MAX_WASM_PAGES);
    if (this.memory === undefined || old + delta > max) return -1;
    this.session?.checkWasmMemoryGrow(old + delta);
    if (delta === 0) return old;
    try {
      return this.memory.grow(delta);
    } catch {
      // The host could not allocate although the limit allows it: not a canister fault.
      throw new Error(`host out of memory growing a canister memory to ${old + delta} pages`);
    }
  }

  // --- state mirroring ----------------------------------------------------------------------

  /** Overwrites memory and globals with a state's; only on a new instance that has not run yet. */
  loadState(memory: PageMap, memoryPages: number, globals: readonly GlobalValue[]): void {
    assert(!this.hasRun, "loadState on an instance that has already run: it may hold state the canister state does not");
    if (this.memory !== undefined) {
      const instantiatedBytes = this.memory.buffer.byteLength;
      const current = instantiatedBytes / WASM_PAGE_BYTES;
      if (memoryPages > current) this.memory.grow(memoryPages - current);
      const bytes = this.memoryBytes();
      // Only the pages the data segments filled (or a start function wrote) can hold bytes; the
      // rest is fresh zero memory that the engine maps lazily. Writing zeros there, or anything
      // but the state's pages, would cost time and resident memory in proportion to the memory's
      // size instead of to the pages that hold data: a page fault per 4 KiB, ≈ 8 ms per load of
      // the fuzz gate's 1.5 MB ledger instances, a third of a `fuzz --ic` run's CPU.
      for (const p of this.pagesThatMayHoldBytes()) bytes.fill(0, p * PAGE_SIZE_BYTES, (p + 1) * PAGE_SIZE_BYTES);
      memory.copyInto(bytes, true);
      this.dirty.noteLoaded(memory.nonZeroPageIndices());
    }
    this.setGlobals(globals);
    this.mirror(memory, globals);
  }

  /**
   * The state this instance's memory and globals hold, if it is known (pool lookups compare
   * identity): none from begin() until a commit declares the new state or a rollback restores it.
   */
  get mirrors(): { readonly memory: PageMap; readonly globals: readonly GlobalValue[] } | undefined {
    return this.memoryIsMirror ? this.mirrored : undefined;
  }

  /**
   * Declares that the memory and globals now hold exactly this state (after a commit built it from
   * this instance, or a load). The next invocation then undoes its writes from `memory`.
   */
  mirror(memory: PageMap, globals: readonly GlobalValue[]): void {
    this.mirrored = { memory, globals };
    this.memoryIsMirror = true;
  }

  /**
   * The non-zero 4 KiB pages of the memory (for the heap after an install, whose data segments the
   * engine wrote outside the barrier): only pages that were ever written are looked at, so the
   * cost follows the pages in use, not the memory's size.
   */
  writtenPages(): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    if (this.memory === undefined) return out;
    const mem = this.memoryBytes();
    for (const p of [...this.pagesThatMayHoldBytes()].sort((a, b) => a - b)) {
      const page = mem.subarray(p * PAGE_SIZE_BYTES, (p + 1) * PAGE_SIZE_BYTES);
      if (page.length > 0 && !isZeroPage(page)) out.set(p, page.slice());
    }
    return out;
  }

  /**
   * The pages that may hold bytes other than zero besides the state's: those written through the
   * barrier (ever, e.g. by a start function) and those the engine filled from data segments at
   * instantiation (all of the initial memory when the module does not say which) — the only
   * writes the barrier does not see.
   */
  private pagesThatMayHoldBytes(): Set<number> {
    const candidates = new Set<number>(this.dirty.everWrittenSorted());
    const dataPages = this.module.dataPages ?? Array.from({ length: this.instantiatedPages }, (_, p) => p);
    for (const p of dataPages) if (p < this.instantiatedPages) candidates.add(p);
    return candidates;
  }

  /** Current memory size in Wasm pages. */
  memoryPages(): number {
    return this.memory === undefined ? 0 : this.memory.buffer.byteLength / WASM_PAGE_BYTES;
  }

  readGlobals(): GlobalValue[] {
    return this.module.mutableGlobals.map((g, i) => toGlobalValue(g.type, defined(this.globals[i]).value));
  }

  setGlobals(values: readonly GlobalValue[]): void {
    assert(values.length === this.globals.length, `expected ${this.globals.length} globals, got ${values.length}`);
    values.forEach((v, i) => {
      defined(this.globals[i]).value = fromGlobalValue(v);
    });
  }

  // --- one invocation ---------------------------------------------------------------------------

  /**
   * Prepares counters and the dirty pages; `used` starts at `alreadyUsed` (e.g. pre_upgrade's). With
   * a watch, `__instr_limit` holds the next progress mark while it is below `limit`.
   */
  begin(session: SystemApiSession, limit: bigint, alreadyUsed: bigint, watch?: ProgressWatch): void {
    this.session = session;
    this.hasRun = true;
    session.attach(this);
    this.memoryWasMirror = this.memoryIsMirror;
    this.dirty.begin(this.memoryIsMirror ? this.mirrored?.memory : undefined);
    this.memoryIsMirror = false;
    this.used.value = alreadyUsed;
    this.messageLimit = limit;
    this.watch = watch;
    this.limit.value = limit;
    if (watch !== undefined) this.armNextMark(alreadyUsed, watch);
    this.dirtyPageBase.value = NO_DIRTY_PAGE_BASE;
    this.stackUsed.value = 0;
    this.pagesAtStart = this.memoryPages();
  }

  /** Runs `fn` and converts every way Wasm can fail into a CanisterTrap. */
  run(fn: () => void): CanisterTrap | undefined {
    try {
      fn();
      if ((this.used.value as bigint) > this.messageLimit) return this.limitExceeded();
      if (this.memoryPages() > MAX_WASM_PAGES) {
        const limitBytes = BigInt(MAX_WASM_PAGES * WASM_PAGE_BYTES);
        return new CanisterTrap("Wasm memory limit exceeded", { kind: "wasm-memory-limit", peakBytes: BigInt(this.memoryPages() * WASM_PAGE_BYTES), limitBytes });
      }
      return undefined;
    } catch (e) {
      if (e instanceof CanisterTrap) return e;
      if (e instanceof Wasm.RuntimeError) return new CanisterTrap(`Wasm trap: ${e.message}`, { kind: "trapped", trap: trapCodeOfV8(e.message) });
      if (e instanceof RangeError && /call stack/i.test(e.message)) {
        throw new HostStackExhausted(
          `the host's stack ran out inside canister code at ${this.stackUsed.value as number} of ${WASM_STACK_LIMIT_BYTES} ` +
            `deterministic stack bytes (${e.message}); the executor was entered with more than ` +
            `${HOST_STACK_HEADROOM_BYTES} bytes of host stack in use`,
        );
      }
      throw e;
    } finally {
      this.session = undefined;
      this.watch = undefined;
    }
  }

  /**
   * `base` (the memory at begin()) with this invocation's size and written pages: each written page
   * is copied once, so the result never changes when this instance writes its memory again.
   */
  committedMemory(base: PageMap): PageMap {
    const resized = base.resized(this.memoryPages() * WASM_PAGE_BYTES);
    if (this.memory === undefined) return resized; // a module without memory writes no pages
    return resized.withPagesCopiedFrom(this.memoryBytes(), this.dirty.sorted());
  }

  dirtyPageCount(): number {
    return this.dirty.count;
  }

  /**
   * Undoes the writes since begin() and restores `globals`. Returns false when the instance cannot
   * mirror the old state any more (memory grew): the caller must discard it.
   */
  rollback(globals: readonly GlobalValue[]): boolean {
    if (this.memory !== undefined) this.dirty.restore(this.memoryBytes());
    this.memoryIsMirror = this.memoryWasMirror;
    this.setGlobals(globals);
    return this.memoryPages() === this.pagesAtStart;
  }

  /** Calls an exported function by name. */
  callExport(name: string): void {
    const f = this.instance.exports[name];
    if (typeof f !== "function") throw new CanisterTrap(`export ${name} is missing`);
    f();
  }

  /** Calls a table entry `(env) -> ()` (callbacks registered with call_new / call_on_cleanup). */
  callClosure(fun: number, env: bigint): void {
    const table = this.table;
    if (table === undefined) throw new CanisterTrap("callback invoked but the module has no table");
    if (fun < 0 || fun >= table.length) throw new CanisterTrap(`callback table index ${fun} out of bounds`);
    const f = table.get(fun);
    if (f === null) throw new CanisterTrap(`callback table entry ${fun} is null`);
    f(this.module.memory64 ? BigInt.asIntN(64, env) : Number(BigInt.asIntN(32, env)));
  }
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE_BYTES);

/** A native comparison with a page of zeros (memcmp): installs look at every page of the memory. */
function isZeroPage(page: Uint8Array): boolean {
  if (page.length === PAGE_SIZE_BYTES) return Buffer.compare(page, ZERO_PAGE) === 0;
  return page.every((b) => b === 0);
}

function defined<T>(x: T | undefined): T {
  assert(x !== undefined, "global index out of range");
  return x;
}

const scratch = new DataView(new ArrayBuffer(8));

export function toGlobalValue(type: GlobalValue["type"], v: number | bigint): GlobalValue {
  switch (type) {
    case "i32":
      return { type, bits: BigInt((v as number) >>> 0) };
    case "i64":
      return { type, bits: BigInt.asUintN(64, v as bigint) };
    case "f32":
      scratch.setFloat32(0, v as number);
      return { type, bits: BigInt(scratch.getUint32(0)) };
    case "f64":
      scratch.setFloat64(0, v as number);
      return { type, bits: scratch.getBigUint64(0) };
  }
}

export function fromGlobalValue(g: GlobalValue): number | bigint {
  switch (g.type) {
    case "i32":
      return Number(BigInt.asIntN(32, g.bits));
    case "i64":
      return BigInt.asIntN(64, g.bits);
    case "f32":
      scratch.setUint32(0, Number(g.bits));
      return scratch.getFloat32(0);
    case "f64":
      scratch.setBigUint64(0, g.bits);
      return scratch.getFloat64(0);
  }
}
