// Static instruction costs of the IC's Wasm instrumentation (research/ic-protocol.md §4.7, after
// dfinity/ic rs/embedders/src/wasm_utils/instrumentation.rs) and System API overheads (§4.7,
// system_api_complexity.rs). Costs are charged per basic block, at its start.
//
// Entries not named in §4.7 (drop, return, nop, unreachable, unary integer ops such as eqz/clz,
// float neg/abs/ceil/floor/…) use the table's default of 1.

export const COST = {
  default: 1,
  /** block, loop, end, else: free. */
  structural: 0,
  const: 1,
  intArith: 1,
  intDivRem: 10,
  local: 1,
  select: 1,
  global: 2,
  /** load/store on a 32-bit memory (Wasm64: 2). */
  memoryAccess32: 1,
  memoryAccess64: 2,
  call: 5,
  callIndirect: 10,
  returnCall: 3,
  returnCallIndirect: 60,
  /** br, br_if, br_table, if. */
  branch: 2,
  memoryGrow: 300,
  tableGrow: 300,
  memorySize: 20,
  tableSize: 100,
  /** memory.copy / memory.fill / memory.init static part; plus 1 per byte at run time. */
  bulkMemory: 100,
  dataDrop: 300,
  refFunc: 130,
  floatAddSubMul: 2,
  f32Div: 3,
  f64Div: 5,
  floatMinMax: 18,
  f32Sqrt: 5,
  f64Sqrt: 8,
  floatToIntTrunc: 20,
  intToFloatUnsigned: 16,
  intToFloatSigned: 3,
} as const;

/** Fixed instruction overhead of each System API call (§4.7); copies add 1 per byte. */
export const SYSTEM_API_OVERHEAD: Readonly<Record<string, bigint>> = {
  call_new: 1_500n,
  call_perform: 5_000n,
  is_controller: 1_000n,
  performance_counter: 200n,
  debug_print: 100n,
  stable64_read: 20n,
  stable64_write: 20n,
  stable64_size: 20n,
  stable_read: 20n,
  stable_write: 20n,
  stable_size: 20n,
};
/** Overhead of every System API call not listed above. */
export const SYSTEM_API_DEFAULT_OVERHEAD = 500n;
/** Instructions charged per newly dirtied 4 KiB page of stable memory (ic-protocol.md §4.6). */
export const STABLE_DIRTY_PAGE_OVERHEAD = 1_000n;

export function systemApiOverhead(name: string): bigint {
  return SYSTEM_API_OVERHEAD[name] ?? SYSTEM_API_DEFAULT_OVERHEAD;
}
