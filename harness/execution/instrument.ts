// Module validation and instrumentation with binaryen (DESIGN.md "Execution"; research/
// wasm-toolchain.md §3 "Prototype instrumentation pass", option (a)).
//
// What the pass does, once per module (cached by the module's SHA-256 in module-cache.ts):
//  - refuses, with an InvalidModuleError that says why: modules over the IC's limits (checked on
//    the raw bytes first, module-limits.ts), nondeterministic or unsupported features, named
//    (threads/atomics/shared memory, relaxed SIMD, exceptions, tail calls, GC, …), imports other
//    than `ic0` or not typed as the System API declares them, imported memories/globals;
//  - lowers a 64-bit memory (Motoko's enhanced orthogonal persistence) to 32 bits;
//  - instruction counter: an exported i64 global `__instr_used` grows by the static cost of each
//    basic block at the block's start (cost-table.ts); function entries and loop headers then
//    compare it with `__instr_limit` and call `__.out_of_instructions` when it is exceeded;
//  - write barrier: before every store, if the written bytes are not all on the page that starts at
//    `__dirty_page_base` (the last page the host marked dirty), call `__.mark_dirty(addr, len)`;
//    memory.copy/fill/init call `__.mark_range(dst, len)` (which also charges 1 instruction per
//    byte). One unsigned compare per store; the host records each page at its first mark
//    (dirty-pages.ts) and so knows the heap delta exactly;
//  - canonicalises NaNs produced by scalar float arithmetic (IC: Wasmtime NaN canonicalisation);
//  - memory.grow goes through the host (`__.memory_grow`), which applies a deterministic limit;
//  - stack: every function entry adds a static upper bound of its native frame size (frameBytes:
//    locals, parameters, operand stack) to `__stack_used` and traps beyond `__stack_limit`, so
//    that deep recursion traps at the same point on every replica and at any host stack depth
//    (V8's own overflow point depends on the tier, on the frames' sizes and on the host's stack);
//  - records whether the module can change an instance in ways the canister state does not hold
//    (data.drop, table.set, table.grow): such instances are never reused between messages;
//  - exports every mutable global (`__global_<i>`), the memory (`__memory`), the table
//    (`__table`), and the start function as `__start` instead of running it at instantiation.
import type Binaryen from "binaryen";
import binaryen from "./binaryen.ts";
import { COST } from "./cost-table.ts";
import { NO_DIRTY_PAGE_BASE } from "./dirty-pages.ts";
import { InstrumentationStackExhausted, InvalidModuleError, limitRefusal } from "./invalid-module.ts";
import { checkExportedMethods, scanModule } from "./module-limits.ts";
import { ic0Signature, isWasm32OnlyIc0 } from "./system-api.ts";

export { InstrumentationStackExhausted, InvalidModuleError } from "./invalid-module.ts";
export { MAX_FUNCTIONS, MAX_GLOBALS, MAX_EXPORTED_METHODS, MAX_EXPORTED_NAME_BYTES } from "./module-limits.ts";

export type ValueTypeName = "i32" | "i64" | "f32" | "f64" | "v128";

export interface ImportSignature {
  readonly name: string;
  readonly params: readonly ValueTypeName[];
  readonly results: readonly ValueTypeName[];
}

export interface InstrumentedModule {
  readonly binary: Uint8Array;
  /** `ic0` imports with their signatures (i64 pointers for memory64 canisters). */
  readonly imports: readonly ImportSignature[];
  /** Exported function names, sorted. */
  readonly exports: readonly string[];
  /** Mutable globals in declaration order: the export name and type of each. */
  readonly mutableGlobals: readonly { readonly exportName: string; readonly type: "i32" | "i64" | "f32" | "f64" }[];
  readonly hasStart: boolean;
  readonly hasMemory: boolean;
  /** The declared memory was 64-bit (lowered to 32 bits here). */
  readonly memory64: boolean;
  /** Initial size of the declared memory in 64 KiB pages. */
  readonly initialMemoryPages: number;
  /** Declared maximum of the memory in 64 KiB pages, if any. */
  readonly maximumMemoryPages: number | undefined;
  /** Names of custom sections in the original module (e.g. `icp:public candid:service`). */
  readonly customSections: readonly string[];
  /**
   * The code can change what an instance remembers beyond memory and mutable globals (drop a data
   * segment, write or grow the table). On the IC every message starts from a fresh instance, so
   * the executor must not carry such an instance over to the next message.
   */
  readonly mutatesInstance: boolean;
  /** The largest frame bound of any function (frameBytes), for tests and diagnostics. */
  readonly maxFrameBytes: number;
}

// binaryen.js has expression wrappers at run time that index.d.ts does not declare.
type Ref = number;
interface RawApi {
  [name: string]: unknown;
}
const raw = binaryen as unknown as RawApi;
function rawFn(name: string): (...args: number[]) => number {
  const f = raw[`_Binaryen${name}`];
  if (typeof f !== "function") throw new Error(`binaryen API _Binaryen${name} is missing`);
  return f as (...args: number[]) => number;
}
interface BlockApi {
  getChildren(e: Ref): Ref[];
  setChildren(e: Ref, children: readonly Ref[]): void;
}
const BlockW = (binaryen as unknown as { Block: BlockApi }).Block;

const ID = {
  Block: binaryen.BlockId,
  If: binaryen.IfId,
  Loop: binaryen.LoopId,
  Break: binaryen.BreakId,
  Switch: binaryen.SwitchId,
  Call: binaryen.CallId,
  CallIndirect: binaryen.CallIndirectId,
  LocalGet: binaryen.LocalGetId,
  LocalSet: binaryen.LocalSetId,
  GlobalGet: binaryen.GlobalGetId,
  GlobalSet: binaryen.GlobalSetId,
  Load: binaryen.LoadId,
  Store: binaryen.StoreId,
  Const: binaryen.ConstId,
  Unary: binaryen.UnaryId,
  Binary: binaryen.BinaryId,
  Select: binaryen.SelectId,
  Drop: binaryen.DropId,
  Return: binaryen.ReturnId,
  MemorySize: binaryen.MemorySizeId,
  MemoryGrow: binaryen.MemoryGrowId,
  Nop: binaryen.NopId,
  Unreachable: binaryen.UnreachableId,
  SIMDExtract: binaryen.SIMDExtractId,
  SIMDReplace: binaryen.SIMDReplaceId,
  SIMDShuffle: binaryen.SIMDShuffleId,
  SIMDTernary: binaryen.SIMDTernaryId,
  SIMDShift: binaryen.SIMDShiftId,
  SIMDLoad: binaryen.SIMDLoadId,
  SIMDLoadStoreLane: binaryen.SIMDLoadStoreLaneId,
  MemoryInit: binaryen.MemoryInitId,
  DataDrop: binaryen.DataDropId,
  MemoryCopy: binaryen.MemoryCopyId,
  MemoryFill: binaryen.MemoryFillId,
  RefNull: binaryen.RefNullId,
  RefIsNull: binaryen.RefIsNullId,
  RefFunc: binaryen.RefFuncId,
  RefEq: binaryen.RefEqId,
  TableGet: binaryen.TableGetId,
  TableSet: binaryen.TableSetId,
  TableSize: binaryen.TableSizeId,
  TableGrow: binaryen.TableGrowId,
  TupleMake: binaryen.TupleMakeId,
  TupleExtract: binaryen.TupleExtractId,
  Pop: binaryen.PopId,
} as const;
const ID_NAMES = new Map<number, string>(Object.entries(ID).map(([k, v]) => [v, k]));

/** Single-child fields per expression kind (evaluation order), via the C API getters/setters. */
const FIELDS: ReadonlyMap<number, readonly string[]> = new Map<number, readonly string[]>([
  [ID.LocalSet, ["Value"]],
  [ID.GlobalSet, ["Value"]],
  [ID.Load, ["Ptr"]],
  [ID.Store, ["Ptr", "Value"]],
  [ID.Unary, ["Value"]],
  [ID.Binary, ["Left", "Right"]],
  [ID.Select, ["IfTrue", "IfFalse", "Condition"]],
  [ID.Drop, ["Value"]],
  [ID.Return, ["Value"]],
  [ID.MemoryGrow, ["Delta"]],
  [ID.Break, ["Value", "Condition"]],
  [ID.Switch, ["Value", "Condition"]],
  [ID.If, ["Condition"]],
  [ID.SIMDExtract, ["Vec"]],
  [ID.SIMDReplace, ["Vec", "Value"]],
  [ID.SIMDShuffle, ["Left", "Right"]],
  [ID.SIMDTernary, ["A", "B", "C"]],
  [ID.SIMDShift, ["Vec", "Shift"]],
  [ID.SIMDLoad, ["Ptr"]],
  [ID.SIMDLoadStoreLane, ["Ptr", "Vec"]],
  [ID.MemoryInit, ["Dest", "Offset", "Size"]],
  [ID.MemoryCopy, ["Dest", "Source", "Size"]],
  [ID.MemoryFill, ["Dest", "Value", "Size"]],
  [ID.RefIsNull, ["Value"]],
  [ID.RefEq, ["Left", "Right"]],
  [ID.TableGet, ["Index"]],
  [ID.TableSet, ["Index", "Value"]],
  [ID.TableGrow, ["Value", "Delta"]],
  [ID.TupleExtract, ["Tuple"]],
]);
/** Kinds with an operand list (Call/CallIndirect also have a target for CallIndirect). */
const LIST_KINDS: ReadonlyMap<number, string> = new Map([
  [ID.Call, "Call"],
  [ID.CallIndirect, "CallIndirect"],
  [ID.TupleMake, "TupleMake"],
]);
const LEAVES = new Set<number>([
  ID.LocalGet,
  ID.GlobalGet,
  ID.Const,
  ID.MemorySize,
  ID.Nop,
  ID.Unreachable,
  ID.DataDrop,
  ID.RefNull,
  ID.RefFunc,
  ID.TableSize,
  ID.Pop,
]);
const CONTROL = new Set<number>([ID.Block, ID.Loop, ID.If, ID.Break, ID.Switch, ID.Return, ID.Unreachable]);

function kindName(id: number): string {
  return ID_NAMES.get(id) ?? `expression id ${id}`;
}

function getField(kind: string, field: string, e: Ref): Ref {
  return rawFn(`${kind}Get${field}`)(e);
}
function setField(kind: string, field: string, e: Ref, child: Ref): void {
  rawFn(`${kind}Set${field}`)(e, child);
}

// --- cost table by operator ---------------------------------------------------------------------

const B = binaryen as unknown as Record<string, number>;
function ops(...names: string[]): Set<number> {
  return new Set(
    names.map((n) => {
      const v = B[n];
      if (typeof v !== "number") throw new Error(`binaryen operator ${n} is missing`);
      return v;
    }),
  );
}
const INT_DIV_REM = ops(
  "DivSInt32", "DivUInt32", "RemSInt32", "RemUInt32", "DivSInt64", "DivUInt64", "RemSInt64", "RemUInt64",
);
const FLOAT_ADD_SUB_MUL = ops("AddFloat32", "SubFloat32", "MulFloat32", "AddFloat64", "SubFloat64", "MulFloat64");
const FLOAT_MIN_MAX = ops("MinFloat32", "MaxFloat32", "MinFloat64", "MaxFloat64");
const F32_DIV = ops("DivFloat32");
const F64_DIV = ops("DivFloat64");
const F32_SQRT = ops("SqrtFloat32");
const F64_SQRT = ops("SqrtFloat64");
const FLOAT_TO_INT = ops(
  "TruncSFloat32ToInt32", "TruncSFloat32ToInt64", "TruncUFloat32ToInt32", "TruncUFloat32ToInt64",
  "TruncSFloat64ToInt32", "TruncSFloat64ToInt64", "TruncUFloat64ToInt32", "TruncUFloat64ToInt64",
  "TruncSatSFloat32ToInt32", "TruncSatSFloat32ToInt64", "TruncSatUFloat32ToInt32", "TruncSatUFloat32ToInt64",
  "TruncSatSFloat64ToInt32", "TruncSatSFloat64ToInt64", "TruncSatUFloat64ToInt32", "TruncSatUFloat64ToInt64",
);
const INT_TO_FLOAT_UNSIGNED = ops(
  "ConvertUInt32ToFloat32", "ConvertUInt32ToFloat64", "ConvertUInt64ToFloat32", "ConvertUInt64ToFloat64",
);
const INT_TO_FLOAT_SIGNED = ops(
  "ConvertSInt32ToFloat32", "ConvertSInt32ToFloat64", "ConvertSInt64ToFloat32", "ConvertSInt64ToFloat64",
);
/** Scalar float ops whose result may be a NaN with an engine-chosen payload. */
// Unary and binary operators are numbered independently in binaryen: keep the sets apart.
const NAN_PRODUCING_BINARY_F32 = ops("AddFloat32", "SubFloat32", "MulFloat32", "DivFloat32", "MinFloat32", "MaxFloat32");
const NAN_PRODUCING_BINARY_F64 = ops("AddFloat64", "SubFloat64", "MulFloat64", "DivFloat64", "MinFloat64", "MaxFloat64");
const NAN_PRODUCING_UNARY_F32 = ops(
  "SqrtFloat32", "CeilFloat32", "FloorFloat32", "TruncFloat32", "NearestFloat32", "DemoteFloat64",
);
const NAN_PRODUCING_UNARY_F64 = ops(
  "SqrtFloat64", "CeilFloat64", "FloorFloat64", "TruncFloat64", "NearestFloat64", "PromoteFloat32",
);

function binaryOpCost(op: number): number {
  if (INT_DIV_REM.has(op)) return COST.intDivRem;
  if (FLOAT_ADD_SUB_MUL.has(op)) return COST.floatAddSubMul;
  if (FLOAT_MIN_MAX.has(op)) return COST.floatMinMax;
  if (F32_DIV.has(op)) return COST.f32Div;
  if (F64_DIV.has(op)) return COST.f64Div;
  return COST.intArith; // = default 1 for every other binary operator
}
function unaryOpCost(op: number): number {
  if (F32_SQRT.has(op)) return COST.f32Sqrt;
  if (F64_SQRT.has(op)) return COST.f64Sqrt;
  if (FLOAT_TO_INT.has(op)) return COST.floatToIntTrunc;
  if (INT_TO_FLOAT_UNSIGNED.has(op)) return COST.intToFloatUnsigned;
  if (INT_TO_FLOAT_SIGNED.has(op)) return COST.intToFloatSigned;
  return COST.default; // eqz, clz, extend, wrap, float neg/abs/ceil/…: default 1
}

/** Static cost of one expression node (children excluded), ic-protocol.md §4.7. */
export function nodeCost(e: Ref, memory64: boolean): number {
  const id = binaryen.getExpressionId(e);
  const mem = memory64 ? COST.memoryAccess64 : COST.memoryAccess32;
  switch (id) {
    case ID.Block:
    case ID.Loop:
    case ID.TupleMake:
    case ID.TupleExtract:
    case ID.Pop:
      return COST.structural;
    case ID.Const:
      return COST.const;
    case ID.LocalGet:
    case ID.LocalSet:
      return COST.local;
    case ID.GlobalGet:
    case ID.GlobalSet:
      return COST.global;
    case ID.Select:
      return COST.select;
    case ID.Load:
    case ID.Store:
    case ID.SIMDLoad:
    case ID.SIMDLoadStoreLane:
      return mem;
    case ID.Call:
      return rawFn("CallIsReturn")(e) ? COST.returnCall : COST.call;
    case ID.CallIndirect:
      return rawFn("CallIndirectIsReturn")(e) ? COST.returnCallIndirect : COST.callIndirect;
    case ID.Break:
    case ID.Switch:
    case ID.If:
      return COST.branch;
    case ID.MemoryGrow:
      return COST.memoryGrow;
    case ID.TableGrow:
      return COST.tableGrow;
    case ID.MemorySize:
      return COST.memorySize;
    case ID.TableSize:
      return COST.tableSize;
    case ID.MemoryCopy:
    case ID.MemoryFill:
    case ID.MemoryInit:
      return COST.bulkMemory;
    case ID.DataDrop:
      return COST.dataDrop;
    case ID.RefFunc:
      return COST.refFunc;
    case ID.Unary:
      return unaryOpCost(rawFn("UnaryGetOp")(e));
    case ID.Binary:
      return binaryOpCost(rawFn("BinaryGetOp")(e));
    default:
      return COST.default;
  }
}

/** Children of e in evaluation order (If: condition only; Block/Loop: none — they are regions). */
function valueChildren(e: Ref, id: number): Ref[] {
  const out: Ref[] = [];
  const fields = FIELDS.get(id);
  if (fields !== undefined) {
    const kind = kindName(id);
    for (const f of fields) {
      const c = getField(kind, f, e);
      if (c !== 0) out.push(c);
    }
    return out;
  }
  const listKind = LIST_KINDS.get(id);
  if (listKind !== undefined) {
    const n = rawFn(`${listKind}GetNumOperands`)(e);
    for (let i = 0; i < n; i++) out.push(rawFn(`${listKind}GetOperandAt`)(e, i));
    if (id === ID.CallIndirect) out.push(rawFn("CallIndirectGetTarget")(e));
    return out;
  }
  if (LEAVES.has(id) || id === ID.Block || id === ID.Loop) return out;
  throw new InvalidModuleError(`unsupported instruction kind ${kindName(id)}`);
}

interface RegionCost {
  cost: number;
  control: boolean;
}
/** Cost of e's straight-line part: e and its operands, not the bodies of blocks, loops, if-arms. */
function regionCost(e: Ref, memory64: boolean): RegionCost {
  const id = binaryen.getExpressionId(e);
  let cost = nodeCost(e, memory64);
  let control = CONTROL.has(id);
  if (id === ID.Block || id === ID.Loop) return { cost, control };
  for (const c of valueChildren(e, id)) {
    const r = regionCost(c, memory64);
    cost += r.cost;
    control ||= r.control;
  }
  return { cost, control };
}

// --- native frame bound -------------------------------------------------------------------------

/**
 * Fixed part of a frame bound: return address, frame pointer, instance and feedback slots, the
 * instrumentation's spill room. Measured on Node 20 (V8 11.3): a Liftoff frame of a function with
 * one i32 parameter and one local takes 64 bytes, a TurboFan frame 40.
 */
export const FRAME_BASE_BYTES = 128;
/**
 * Per local or parameter. V8 spills a value in 8 bytes (Liftoff: i32/f32 in 4), a v128 in 16;
 * TurboFan frames of functions whose locals all live across a call measured within 1 % of
 * 8/16 bytes per slot (test/execution/stack-probe.ts), so the bound adds 25 % on top.
 */
const SLOT_BYTES = 10;
const V128_SLOT_BYTES = 20;
/** Per value on the operand stack (Liftoff spills the whole value stack at a call); v128-sized. */
const OPERAND_BYTES = 20;
/** The instrumentation's own calls (mark_dirty's two arguments, NaN canonicalisation) may add this much. */
const INSTRUMENTATION_OPERANDS = 3;

/**
 * A static upper bound of a function's native frame in bytes: what the deterministic stack limit
 * charges per call. test/execution/stack.test.ts checks that V8 never needs more (both tiers).
 */
function frameBytes(slots: readonly Binaryen.Type[], operandHeightMax: number): number {
  let bytes = FRAME_BASE_BYTES + OPERAND_BYTES * (operandHeightMax + INSTRUMENTATION_OPERANDS);
  for (const t of slots) bytes += t === binaryen.v128 ? V128_SLOT_BYTES : SLOT_BYTES;
  return bytes;
}

/**
 * The most values an expression keeps on the operand stack at once: while the i-th operand is
 * evaluated, the i earlier ones wait on the stack. Blocks and arms start from an empty stack.
 */
function operandHeight(e: Ref): number {
  if (e === 0) return 0;
  const id = binaryen.getExpressionId(e);
  if (id === ID.Block) {
    let h = 0;
    for (const c of BlockW.getChildren(e)) h = Math.max(h, operandHeight(c));
    return h;
  }
  if (id === ID.Loop) return operandHeight(getField("Loop", "Body", e));
  if (id === ID.If) {
    return Math.max(
      operandHeight(getField("If", "Condition", e)),
      operandHeight(getField("If", "IfTrue", e)),
      operandHeight(getField("If", "IfFalse", e)),
    );
  }
  let h = binaryen.expandType(binaryen.getExpressionType(e)).length;
  valueChildren(e, id).forEach((c, i) => {
    h = Math.max(h, i + operandHeight(c));
  });
  return h;
}

/** Instructions that change an instance beyond memory and mutable globals. */
const INSTANCE_MUTATIONS = new Set<number>([ID.DataDrop, ID.TableSet, ID.TableGrow]);

// --- the rewriting pass ---------------------------------------------------------------------------

const USED = "__instr_used";
const LIMIT = "__instr_limit";
const DIRTY_PAGE_BASE = "__dirty_page_base";
const OOI = "__out_of_instructions";
const MARK_DIRTY = "__mark_dirty";
const MARK_RANGE = "__mark_range";
const MEMORY_GROW = "__memory_grow";
const STACK_USED = "__stack_used";
const STACK_LIMIT = "__stack_limit";
const STACK_EXCEEDED = "__stack_exceeded";
const FN_EXIT = "__fn_exit";
const CANON32 = "__canon_f32";
const CANON64 = "__canon_f64";

/**
 * Most instructions in one function body: 1,000,000 (rs/embedders/src/wasm_utils/validation.rs
 * WASM_FUNCTION_SIZE_LIMIT; portal: "a function with more than 1_000_000 Wasm instructions").
 * Counted over binaryen IR, which has a node per instruction (no `end`s, a block per block).
 */
export const MAX_FUNCTION_INSTRUCTIONS = 1_000_000;

class FunctionRewriter {
  private ptrLocal = -1;
  private instanceMutation = false;
  /** Expressions rewritten so far (the function's size in instructions). */
  instructions = 0;
  private readonly m: Binaryen.Module;

  constructor(
    m: Binaryen.Module,
    private readonly func: Binaryen.FunctionRef,
    private readonly memory64: boolean,
  ) {
    this.m = m;
  }

  private addLocal(type: Binaryen.Type): number {
    return rawFn("FunctionAddVar")(this.func, type);
  }

  private charge(cost: number, check: boolean): Ref[] {
    const m = this.m;
    const out: Ref[] = [];
    if (cost > 0) {
      out.push(
        m.global.set(USED, m.i64.add(m.global.get(USED, binaryen.i64), m.i64.const(BigInt(cost) as never))),
      );
    }
    if (check) {
      out.push(
        m.if(
          m.i64.gt_u(m.global.get(USED, binaryen.i64), m.global.get(LIMIT, binaryen.i64)),
          m.call(OOI, [], binaryen.none),
        ),
      );
    }
    return out;
  }

  /** Rewrites a statement list: a charge at the start of each basic block. */
  private list(children: readonly Ref[], reentrant: boolean): Ref[] {
    const out: Ref[] = [];
    let pending: Ref[] = [];
    let pendingCost = 0;
    let first = true;
    const flush = (): void => {
      if (pending.length === 0 && !(first && reentrant)) return;
      // Appended one by one: a spread of a long straight-line region would overflow the stack.
      for (const item of this.charge(pendingCost, first && reentrant)) out.push(item);
      for (const item of pending) out.push(item);
      pending = [];
      pendingCost = 0;
      first = false;
    };
    for (const child of children) {
      const { cost, control } = regionCost(child, this.memory64);
      pending.push(this.rewrite(child));
      pendingCost += cost;
      if (control) flush();
    }
    flush();
    return out;
  }

  /** Rewrites an arm/body expression that is its own region. */
  body(e: Ref, reentrant: boolean): Ref {
    if (e !== 0 && binaryen.getExpressionId(e) === ID.Block) {
      BlockW.setChildren(e, this.list(BlockW.getChildren(e), reentrant));
      return e;
    }
    const type = e === 0 ? binaryen.none : binaryen.getExpressionType(e);
    const items = this.list(e === 0 ? [] : [e], reentrant);
    if (items.length === 1 && items[0] === e) return e;
    return this.m.block(null, items, type);
  }

  rewrite(e: Ref): Ref {
    const m = this.m;
    const id = binaryen.getExpressionId(e);
    this.instructions++;
    if (id === ID.Block) {
      BlockW.setChildren(e, this.list(BlockW.getChildren(e), false));
      return e;
    }
    if (id === ID.Loop) {
      setField("Loop", "Body", e, this.body(getField("Loop", "Body", e), true));
      return e;
    }
    if (id === ID.If) {
      setField("If", "Condition", e, this.rewrite(getField("If", "Condition", e)));
      setField("If", "IfTrue", e, this.body(getField("If", "IfTrue", e), false));
      const ifFalse = getField("If", "IfFalse", e);
      if (ifFalse !== 0) setField("If", "IfFalse", e, this.body(ifFalse, false));
      return e;
    }
    // Generic: rewrite children in place.
    const fields = FIELDS.get(id);
    if (fields !== undefined) {
      const kind = kindName(id);
      for (const f of fields) {
        const c = getField(kind, f, e);
        if (c !== 0) {
          const n = this.rewrite(c);
          if (n !== c) setField(kind, f, e, n);
        }
      }
    } else {
      const listKind = LIST_KINDS.get(id);
      if (listKind !== undefined) {
        const n = rawFn(`${listKind}GetNumOperands`)(e);
        for (let i = 0; i < n; i++) {
          const c = rawFn(`${listKind}GetOperandAt`)(e, i);
          const r = this.rewrite(c);
          if (r !== c) rawFn(`${listKind}SetOperandAt`)(e, i, r);
        }
        if (id === ID.CallIndirect) {
          const t = rawFn("CallIndirectGetTarget")(e);
          const r = this.rewrite(t);
          if (r !== t) rawFn("CallIndirectSetTarget")(e, r);
        }
      } else if (!LEAVES.has(id)) {
        throw new InvalidModuleError(`unsupported instruction kind ${kindName(id)}`);
      }
    }
    if (INSTANCE_MUTATIONS.has(id)) this.instanceMutation = true;
    switch (id) {
      case ID.MemoryGrow:
        // The host decides (deterministic memory limit instead of the engine's allocation luck).
        return m.call(MEMORY_GROW, [getField("MemoryGrow", "Delta", e)], binaryen.i32);
      case ID.Return:
        // Every exit goes through the function's epilogue (call-depth bookkeeping).
        return m.br(FN_EXIT, 0, getField("Return", "Value", e));
      case ID.Store:
        return this.barrierStore(e, "Store", rawFn("StoreGetOffset")(e), rawFn("StoreGetBytes")(e));
      case ID.SIMDLoadStoreLane:
        if (rawFn("SIMDLoadStoreLaneIsStore")(e)) {
          return this.barrierStore(e, "SIMDLoadStoreLane", rawFn("SIMDLoadStoreLaneGetOffset")(e), 16);
        }
        return e;
      case ID.MemoryCopy:
        return this.barrierRange(e, "MemoryCopy", ["Dest", "Source", "Size"], binaryen.i32);
      case ID.MemoryFill:
        return this.barrierRange(e, "MemoryFill", ["Dest", "Value", "Size"], binaryen.i32);
      case ID.MemoryInit:
        return this.barrierRange(e, "MemoryInit", ["Dest", "Offset", "Size"], binaryen.i32);
      case ID.Unary: {
        const op = rawFn("UnaryGetOp")(e);
        if (NAN_PRODUCING_UNARY_F32.has(op)) return m.call(CANON32, [e], binaryen.f32);
        if (NAN_PRODUCING_UNARY_F64.has(op)) return m.call(CANON64, [e], binaryen.f64);
        return e;
      }
      case ID.Binary: {
        const op = rawFn("BinaryGetOp")(e);
        if (NAN_PRODUCING_BINARY_F32.has(op)) return m.call(CANON32, [e], binaryen.f32);
        if (NAN_PRODUCING_BINARY_F64.has(op)) return m.call(CANON64, [e], binaryen.f64);
        return e;
      }
      default:
        return e;
    }
  }

  /**
   * Wraps a rewritten body: `__stack_used` += frameBytes (trap beyond the limit), the body as a
   * block that every `return` leaves, `__stack_used` −= frameBytes. V8's own overflow point is not
   * deterministic (it differs between Liftoff and TurboFan frames and with the host's own stack
   * depth); this bound is a function of the code alone.
   */
  wrapFunction(body: Ref, results: Binaryen.Type, frameBytes: number): Ref {
    const m = this.m;
    const used = (): Ref => m.global.get(STACK_USED, binaryen.i32);
    const enter = [
      m.global.set(STACK_USED, m.i32.add(used(), m.i32.const(frameBytes))),
      m.if(m.i32.gt_u(used(), m.global.get(STACK_LIMIT, binaryen.i32)), m.call(STACK_EXCEEDED, [], binaryen.none)),
    ];
    const leave = m.global.set(STACK_USED, m.i32.sub(used(), m.i32.const(frameBytes)));
    const inner = m.block(FN_EXIT, [body], results);
    if (results === binaryen.none) return m.block(null, [...enter, inner, leave], binaryen.none);
    const result = this.addLocal(results);
    return m.block(null, [...enter, m.local.set(result, inner), leave, m.local.get(result, results)], results);
  }

  /** Whether the rewritten code contains an instruction that changes instance-only state. */
  get mutatesInstance(): boolean {
    return this.instanceMutation;
  }

  private ptr(): number {
    if (this.ptrLocal < 0) this.ptrLocal = this.addLocal(binaryen.i32);
    return this.ptrLocal;
  }

  /**
   * `if (u64(ptr) + offset − __dirty_page_base > 4096 − bytes) mark_dirty(ptr + offset, bytes)`:
   * the written bytes [a, a + bytes) lie on the page at `base` iff 0 ≤ a − base ≤ 4096 − bytes,
   * one compare in 64 bits (the effective address needs 33; the sentinel base is far above it).
   */
  private barrierStore(e: Ref, kind: string, offset: number, bytes: number): Ref {
    const m = this.m;
    const p = this.ptr();
    const ptrExpr = getField(kind, "Ptr", e);
    setField(kind, "Ptr", e, m.local.get(p, binaryen.i32));
    const ptr64 = m.i64.extend_u(m.local.get(p, binaryen.i32));
    const address = offset === 0 ? ptr64 : m.i64.add(ptr64, m.i64.const(BigInt(offset >>> 0) as never));
    const check = m.if(
      m.i64.gt_u(m.i64.sub(address, m.global.get(DIRTY_PAGE_BASE, binaryen.i64)), m.i64.const(BigInt(4096 - bytes) as never)),
      m.call(
        MARK_DIRTY,
        [m.i32.add(m.local.get(p, binaryen.i32), m.i32.const(offset | 0)), m.i32.const(bytes)],
        binaryen.none,
      ),
    );
    return m.block(null, [m.local.set(p, ptrExpr), check, e], binaryen.none);
  }

  private barrierRange(e: Ref, kind: string, fields: readonly [string, string, string], type: Binaryen.Type): Ref {
    const m = this.m;
    const locals = fields.map((f) => {
      const c = getField(kind, f, e);
      const l = this.addLocal(f === "Value" ? binaryen.i32 : type);
      setField(kind, f, e, m.local.get(l, f === "Value" ? binaryen.i32 : type));
      return { l, c, t: f === "Value" ? binaryen.i32 : type };
    });
    const [dest, , size] = locals;
    if (dest === undefined || size === undefined) throw new Error("unreachable: bulk fields");
    return m.block(
      null,
      [
        ...locals.map((x) => m.local.set(x.l, x.c)),
        m.call(MARK_RANGE, [m.local.get(dest.l, dest.t), m.local.get(size.l, size.t)], binaryen.none),
        e,
      ],
      binaryen.none,
    );
  }
}

// --- module-level checks and transforms ------------------------------------------------------------

const BASE_FEATURES =
  binaryen.Features.MutableGlobals |
  binaryen.Features.NontrappingFPToInt |
  binaryen.Features.BulkMemory |
  binaryen.Features.BulkMemoryOpt |
  binaryen.Features.SignExt |
  binaryen.Features.Multivalue |
  binaryen.Features.SIMD128;

function typeNames(t: Binaryen.Type): ValueTypeName[] {
  return binaryen.expandType(t).map((x) => {
    if (x === binaryen.i32) return "i32";
    if (x === binaryen.i64) return "i64";
    if (x === binaryen.f32) return "f32";
    if (x === binaryen.f64) return "f64";
    if (x === binaryen.v128) return "v128";
    throw new InvalidModuleError(`unsupported value type ${x} in a signature or global`);
  });
}

const SYSTEM_ENTRY_POINTS = new Set([
  "canister_init",
  "canister_pre_upgrade",
  "canister_post_upgrade",
  "canister_inspect_message",
  "canister_heartbeat",
  "canister_global_timer",
  "canister_on_low_wasm_memory",
]);
const RESERVED_EXPORTS = new Set([
  "__memory",
  "__table",
  "__start",
  "__instr_used",
  "__instr_limit",
  "__dirty_page_base",
  "__stack_used",
  "__stack_limit",
]);

/** Spec "Canister module format": which `canister_*` exports are allowed, each method once. */
function checkEntryPoints(exports: readonly string[]): void {
  for (const name of exports) {
    if (!name.startsWith("canister_") || SYSTEM_ENTRY_POINTS.has(name)) continue;
    if (!/^canister_(update|query|composite_query) /s.test(name)) throw new InvalidModuleError(`export "${name}" is not a valid canister entry point`);
  }
  checkExportedMethods(exports);
}

/**
 * An `ic0` import must name a System API function with the spec's type for this module's memory
 * width (IC0_SIGNATURES): refused at install, as the IC does, not when first called.
 */
function checkIc0Import(name: string, params: readonly ValueTypeName[], results: readonly ValueTypeName[], memory64: boolean): void {
  const expected = ic0Signature(name, memory64);
  if (expected === undefined) {
    if (memory64 && isWasm32OnlyIc0(name)) {
      throw new InvalidModuleError(`module imports ic0.${name}, which exists only for canisters with a 32-bit memory (this one's is 64-bit)`);
    }
    throw new InvalidModuleError(`module imports ic0.${name}, which is not a function of the System API`);
  }
  const show = (ps: readonly string[], rs: readonly string[]): string => `(${ps.join(", ")}) -> (${rs.join(", ")})`;
  if (show(params, results) !== show(expected.params, expected.results)) {
    throw new InvalidModuleError(
      `module imports ic0.${name} with type ${show(params, results)}; the System API's is ${show(expected.params, expected.results)}` +
        ` for a canister with a ${memory64 ? "64" : "32"}-bit memory`,
    );
  }
}

/**
 * Runs binaryen's validator with its console output captured (it prints its findings instead of
 * returning them); returns whether the module is valid and what the validator said.
 */
function validateQuietly(m: Binaryen.Module): { ok: boolean; messages: string } {
  let captured = "";
  const out = process.stdout.write;
  const err = process.stderr.write;
  const capture = (chunk: unknown): boolean => {
    captured += String(chunk);
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  try {
    return { ok: m.validate() !== 0, messages: captured };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/**
 * Wasm features canisters may not use, each with the binaryen features that enable it. The first
 * two are refused because they are nondeterministic; the others because neither the IC's
 * instrumentation nor subnetlab's supports them.
 */
const REFUSED_FEATURES: readonly { readonly name: string; readonly features: number; readonly nondeterministic?: true }[] = [
  { name: "threads/atomics", features: binaryen.Features.Atomics | binaryen.Features.SharedEverything, nondeterministic: true },
  { name: "relaxed SIMD", features: binaryen.Features.RelaxedSIMD, nondeterministic: true },
  // Binaryen's exceptions and GC bring reference types with them (exnref, struct references).
  { name: "exception handling", features: binaryen.Features.ExceptionHandling | binaryen.Features.ReferenceTypes },
  { name: "tail calls", features: binaryen.Features.TailCall },
  { name: "garbage collection (GC)", features: binaryen.Features.GC | binaryen.Features.ReferenceTypes },
  { name: "reference types", features: binaryen.Features.ReferenceTypes },
  { name: "multiple memories", features: binaryen.Features.MultiMemory },
  { name: "extended constant expressions", features: binaryen.Features.ExtendedConst },
  { name: "stack switching", features: binaryen.Features.StackSwitching },
  { name: "strings", features: binaryen.Features.Strings },
  { name: "half-precision floats (FP16)", features: binaryen.Features.FP16 },
  { name: "custom page sizes", features: binaryen.Features.CustomPageSizes },
  { name: "wide arithmetic", features: binaryen.Features.WideArithmetic },
];

/**
 * Validates with the features canisters may use; when that fails, names the refused features the
 * module needs instead of binaryen's validator output: the first one that alone makes it valid,
 * else the set left after dropping, in order, every one it stays valid without.
 */
function validateOrExplain(m: Binaryen.Module, features: number): void {
  m.setFeatures(features);
  const first = validateQuietly(m);
  if (first.ok) return;
  const valid = (extra: number): boolean => {
    m.setFeatures(features | extra);
    const ok = validateQuietly(m).ok;
    m.setFeatures(features);
    return ok;
  };
  const union = (fs: readonly (typeof REFUSED_FEATURES)[number][]): number => fs.reduce((all, f) => all | f.features, 0);
  // The narrowest single feature that suffices (reference types rather than GC, which brings them).
  const bits = (f: (typeof REFUSED_FEATURES)[number]): number => f.features.toString(2).replace(/0/g, "").length;
  let needed = REFUSED_FEATURES.filter((f) => valid(f.features))
    .sort((a, b) => bits(a) - bits(b))
    .slice(0, 1);
  if (needed.length === 0 && valid(union(REFUSED_FEATURES))) {
    needed = [...REFUSED_FEATURES];
    for (const f of REFUSED_FEATURES) {
      const without = needed.filter((g) => g !== f);
      if (valid(union(without))) needed = without;
    }
  }
  if (needed.length > 0) {
    const names = needed.map((f) => f.name).join(", ");
    const why = needed.some((f) => f.nondeterministic) ? "which canisters may not use (nondeterministic)" : "which canisters may not use";
    throw new InvalidModuleError(`module uses ${names}, ${why}`);
  }
  const firstLine = first.messages.split("\n").find((l) => l.trim() !== "") ?? "no details";
  throw new InvalidModuleError(`module failed Wasm validation: ${firstLine.trim()}`);
}

/**
 * A failure of the instrumentation pass itself (the instrumented module does not validate): a bug
 * in subnetlab, never the canister's fault, so it is not turned into an InvalidModuleError.
 */
export class InstrumentationBug extends Error {
  override readonly name = "InstrumentationBug";
}

/**
 * Validates and instruments a canister module. Throws InvalidModuleError with a clear message:
 * the IC's module limits first, on the raw bytes (module-limits.ts), then binaryen's reading and
 * validation; whatever else binaryen throws on a module is a refusal of that module too.
 */
export function instrumentModule(bytes: Uint8Array): InstrumentedModule {
  const scan = scanModule(bytes);
  let m: Binaryen.Module;
  try {
    m = binaryen.readBinary(bytes);
  } catch (e) {
    const detail = e instanceof Error ? `: ${e.message}` : "";
    if (scan.hasTagSection) throw new InvalidModuleError(`module uses exception handling (it has a tag section), which canisters may not use${detail}`);
    throw new InvalidModuleError(`module could not be decoded (malformed Wasm binary)${detail}`);
  }
  try {
    return transform(m, scan.customSections);
  } catch (e) {
    throw asModuleRefusal(e);
  } finally {
    m.dispose();
  }
}

/** Anything thrown while binaryen works on a module refuses the module, except our own failures. */
function asModuleRefusal(e: unknown): Error {
  if (e instanceof InvalidModuleError || e instanceof InstrumentationBug) return e;
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return new InstrumentationStackExhausted(`the host's stack ran out instrumenting a module with deeply nested code (${e.message}); subnetlab cannot run it on this host`);
  }
  const detail = e instanceof Error ? e.message : String(e);
  return new InvalidModuleError(`module could not be processed (binaryen: ${detail.split("\n")[0] ?? ""})`);
}

function transform(m: Binaryen.Module, customSections: readonly string[]): InstrumentedModule {
  const hasMemory = m.hasMemory();
  const memInfo = hasMemory ? m.getMemoryInfo() : undefined;
  if (memInfo?.shared) {
    throw new InvalidModuleError("module declares a shared memory (threads), which canisters may not use");
  }
  if (memInfo !== undefined && memInfo.module !== null && memInfo.module !== "") {
    throw new InvalidModuleError("module imports its memory; canisters must define their own memory");
  }
  const memory64 = memInfo?.is64 ?? false;
  validateOrExplain(m, BASE_FEATURES | (memory64 ? binaryen.Features.Memory64 : 0));
  if (m.getNumTables() > 1) throw new InvalidModuleError("module has more than one table");
  if (memory64) {
    m.runPasses(["memory64-lowering"]);
    m.setFeatures(BASE_FEATURES);
  }

  // Imports: only ic0 functions.
  const imports: ImportSignature[] = [];
  const defined: Binaryen.FunctionRef[] = [];
  for (let i = 0; i < m.getNumFunctions(); i++) {
    const f = m.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(f);
    if (info.module !== null && info.module !== "") {
      if (info.module !== "ic0") {
        throw new InvalidModuleError(`module imports ${info.module}.${info.base}; only "ic0" imports are allowed`);
      }
      const imported = { name: info.base ?? "", params: typeNames(info.params), results: typeNames(info.results) };
      checkIc0Import(imported.name, imported.params, imported.results, memory64);
      imports.push(imported);
    } else {
      defined.push(f);
    }
  }
  for (let i = 0; i < m.getNumExports(); i++) {
    const name = binaryen.getExportInfo(m.getExportByIndex(i)).name;
    if (RESERVED_EXPORTS.has(name) || /^__global_\d+$/.test(name)) {
      throw new InvalidModuleError(`export name "${name}" is reserved by subnetlab's instrumentation`);
    }
  }
  const mutableGlobals: { exportName: string; type: "i32" | "i64" | "f32" | "f64" }[] = [];
  for (let i = 0; i < m.getNumGlobals(); i++) {
    const g = binaryen.getGlobalInfo(m.getGlobalByIndex(i));
    if (g.module !== null && g.module !== "") {
      throw new InvalidModuleError(`module imports global ${g.module}.${g.base}; canisters may not import globals`);
    }
    if (!g.mutable) continue;
    const [type] = typeNames(g.type);
    if (type === undefined || type === "v128") {
      throw new InvalidModuleError(`mutable global ${g.name} has unsupported type ${type ?? "none"}`);
    }
    const exportName = `__global_${mutableGlobals.length}`;
    m.addGlobalExport(g.name, exportName);
    mutableGlobals.push({ exportName, type });
  }

  // Exports: collect function names, find memory and table internal names.
  const exports: string[] = [];
  let memoryName: string | undefined;
  let tableName: string | undefined;
  for (let i = 0; i < m.getNumExports(); i++) {
    const x = binaryen.getExportInfo(m.getExportByIndex(i));
    if (x.kind === binaryen.ExternalFunction) {
      exports.push(x.name);
      if (x.name.startsWith("canister_")) {
        const f = binaryen.getFunctionInfo(m.getFunction(x.value));
        if (f.params !== binaryen.none || f.results !== binaryen.none) {
          throw new InvalidModuleError(`entry point "${x.name}" must have type () -> ()`);
        }
      }
    } else if (x.kind === binaryen.ExternalMemory) memoryName ??= x.value;
    else if (x.kind === binaryen.ExternalTable) tableName ??= x.value;
  }
  checkEntryPoints(exports);
  if (hasMemory) m.addMemoryExport(memoryName ?? "0", "__memory");
  if (m.getNumTables() === 1) {
    tableName ??= binaryen.getTableInfo(m.getTableByIndex(0)).name;
    m.addTableExport(tableName, "__table");
  }

  // Instrumentation runtime.
  m.addGlobal(USED, binaryen.i64, true, m.i64.const(0n as never));
  m.addGlobal(LIMIT, binaryen.i64, true, m.i64.const(0n as never));
  m.addGlobal(DIRTY_PAGE_BASE, binaryen.i64, true, m.i64.const(NO_DIRTY_PAGE_BASE as never));
  m.addGlobal(STACK_USED, binaryen.i32, true, m.i32.const(0));
  m.addGlobal(STACK_LIMIT, binaryen.i32, true, m.i32.const(0));
  m.addGlobalExport(STACK_USED, STACK_USED);
  m.addGlobalExport(STACK_LIMIT, STACK_LIMIT);
  m.addGlobalExport(USED, USED);
  m.addGlobalExport(LIMIT, LIMIT);
  m.addGlobalExport(DIRTY_PAGE_BASE, DIRTY_PAGE_BASE);
  m.addFunctionImport(OOI, "__", "out_of_instructions", binaryen.none, binaryen.none);
  m.addFunctionImport(STACK_EXCEEDED, "__", "stack_exceeded", binaryen.none, binaryen.none);
  m.addFunctionImport(MEMORY_GROW, "__", "memory_grow", binaryen.i32, binaryen.i32);
  m.addFunctionImport(MARK_DIRTY, "__", "mark_dirty", binaryen.createType([binaryen.i32, binaryen.i32]), binaryen.none);
  m.addFunctionImport(MARK_RANGE, "__", "mark_range", binaryen.createType([binaryen.i32, binaryen.i32]), binaryen.none);
  const canon = (name: string, t: Binaryen.Type, isNaN: Ref, nan: Ref): void => {
    m.addFunction(name, t, t, [], m.if(isNaN, nan, m.local.get(0, t)));
  };
  canon(CANON32, binaryen.f32, m.f32.ne(m.local.get(0, binaryen.f32), m.local.get(0, binaryen.f32)),
    m.f32.reinterpret(m.i32.const(0x7fc00000)));
  canon(CANON64, binaryen.f64, m.f64.ne(m.local.get(0, binaryen.f64), m.local.get(0, binaryen.f64)),
    m.f64.reinterpret(m.i64.const(0x7ff8000000000000n as never)));

  let mutatesInstance = false;
  let maxFrameBytes = 0;
  for (const [index, f] of defined.entries()) {
    const info = binaryen.getFunctionInfo(f);
    const operands = operandHeight(info.body);
    const rw = new FunctionRewriter(m, f, memory64);
    const body = rw.body(info.body, true);
    if (rw.instructions > MAX_FUNCTION_INSTRUCTIONS) {
      // WasmValidationError::FunctionTooLarge (index: the function's place in the code section;
      // size: its instructions, as subnetlab counts them).
      throw limitRefusal(
        `Wasm module contains a function at index ${index} of size ${rw.instructions} that exceeds the maximum allowed size of ${MAX_FUNCTION_INSTRUCTIONS}.`,
        "Try breaking large functions up into multiple smaller functions.",
        "wasm-module-function-too-large",
      );
    }
    // Slots known after the rewrite (it adds locals), plus the result local wrapFunction adds.
    const after = binaryen.getFunctionInfo(f);
    const frame = frameBytes([...binaryen.expandType(after.params), ...after.vars, ...binaryen.expandType(after.results)], operands);
    rawFn("FunctionSetBody")(f, rw.wrapFunction(body, info.results, frame));
    mutatesInstance ||= rw.mutatesInstance;
    maxFrameBytes = Math.max(maxFrameBytes, frame);
  }

  const start = m.getStart();
  if (start !== 0) {
    m.addFunctionExport(binaryen.getFunctionInfo(start).name, "__start");
    m.setStart(0 as Binaryen.FunctionRef);
  }
  const check = validateQuietly(m);
  if (!check.ok) throw new InstrumentationBug(`instrumented module failed validation (bug in the instrumentation pass): ${check.messages.slice(0, 500)}`);
  const binary = m.emitBinary();
  return {
    binary,
    imports,
    exports: exports.sort(),
    mutableGlobals,
    hasStart: start !== 0,
    hasMemory,
    memory64,
    initialMemoryPages: memInfo?.initial ?? 0,
    maximumMemoryPages: memInfo?.max,
    customSections,
    mutatesInstance,
    maxFrameBytes,
  };
}
