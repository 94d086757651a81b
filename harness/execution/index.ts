// Public API of the execution layer (docs/EXECUTION.md).
export * from "./interfaces.ts";
export { WasmExecutor, type WasmExecutorOptions } from "./executor.ts";
export { MAX_COMPOSITE_QUERY_DEPTH } from "./composite-query.ts";
export { WASM_STACK_LIMIT_BYTES, HostStackExhausted, DEFAULT_WASM_MEMORY_LIMIT_PAGES } from "./instance.ts";
export { ExecutionAborted, DEFAULT_PROGRESS_EVERY_INSTRUCTIONS, formatInstructions, type ExecutionProgress, type ProgressCallback, type ProgressVerdict } from "./progress.ts";
export { ModuleCache, sharedModuleCache, moduleHash, type CompiledModule, type ModuleCacheOptions } from "./module-cache.ts";
export { ModuleDiskCache, diskCacheFromEnvironment, instrumenterCodeHash, type DiskCacheStats } from "./module-disk-cache.ts";
// instrument.ts (binaryen) is loaded on demand: ensureInstrumenter() before instrumenting.
export { ensureInstrumenter, instrumenterLoaded, instrumentModule } from "./instrumenter.ts";
export { InvalidModuleError, InstrumentationStackExhausted } from "./invalid-module.ts";
export { MAX_FUNCTIONS, MAX_GLOBALS, MAX_EXPORTED_METHODS } from "./module-limits.ts";
export type { InstrumentedModule } from "./instrument.ts";
export { CanisterTrap, AVAILABILITY, type ApiContext } from "./system-api.ts";
export { costCall, costCreateCanister, costHttpRequest, costThresholdKey, scaleToSubnet, REFERENCE_SUBNET_SIZE, APPLICATION_SUBNET_CYCLES_FEES, THRESHOLD_CURVES, type ThresholdKey, type ThresholdScheme, type ThresholdKeyCost } from "./cycles-costs.ts";
export { COST, SYSTEM_API_OVERHEAD, SYSTEM_API_DEFAULT_OVERHEAD, STABLE_DIRTY_PAGE_OVERHEAD } from "./cost-table.ts";
export * as lifecycle from "./lifecycle.ts";
export {
  ExecutionLab,
  LabError,
  DEFAULT_INSTRUCTION_LIMIT,
  DEFAULT_INSTALL_INSTRUCTION_LIMIT,
  DEFAULT_SENDER,
  DEFAULT_START_TIME_NS,
  INSPECT_MESSAGE_INSTRUCTION_LIMIT,
  type CallResult,
  type LabOptions,
} from "./lab.ts";
export { QueryCache, QUERY_CACHE_MAX_AGE_NS, type QueryCacheKey } from "./query-cache.ts";
export { executeManagementCall, MANAGEMENT_TYPES, type ManagementContext, type ManagementOutcome, type ManagementMethod } from "./management.ts";
export { MAX_SNAPSHOT_SLICE_BYTES, type SnapshotMetadata, type SnapshotDataKind } from "./snapshot-transfer.ts";
export { downloadSnapshot, uploadSnapshot, type CallManagement, type SnapshotArchive } from "./snapshot-archive.ts";
