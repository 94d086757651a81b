// Public API of the state layer (DESIGN.md "State"; research/ic-protocol.md §4.6, §5.3, §5.4).
export { PAGE_SIZE_BYTES, PageMap, pageMapHashCounts, sharedPageStoreSize } from "./page-map.ts";
export { compareCanisterIds } from "./canister-order.ts";
export {
  canisterMemories,
  canisterModules,
  canisterStateHash,
  decodeCanisterSystemState,
  encodeCanisterSystemState,
  type DecodeResolvers,
  type MemoryRef,
  type ModuleRef,
} from "./canister-codec.ts";
export { CHUNK_SIZE_BYTES, MANIFEST_VERSION, computeManifest, diffManifests, stateFiles, type Manifest, type ManifestChunk, type ManifestDiff, type ManifestFile, type StateFile } from "./manifest.ts";
export { listCheckpoints, loadCheckpoint, pruneCheckpoints, writeCheckpoint, type CheckpointRecord, type CheckpointWriteStats, type LoadedCheckpoint } from "./checkpoint.ts";
export {
  DEFAULT_STATE_MANAGER_CONFIG,
  StateManager,
  diffStates,
  heapDeltaBytes,
  sortCanisters,
  stateDigest,
  type CommitResult,
  type StateDivergence,
  type StateManagerConfig,
  type SubnetState,
} from "./state-manager.ts";
export { ByteReader, ByteWriter, sha256Bytes, sha256HexOf, hexToBytes } from "./encoding.ts";
