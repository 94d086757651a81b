// The real replicated state machine behind MessageRouting (issue 4, step 1): each finalized batch
// is inducted into canister input queues and executed by one execution round (credit scheduler,
// DTS, instruction limits) on Wasm canisters; the state manager commits the subnet state, hashes
// it and checkpoints it at summary heights. Ingress replies and rejects go to the ingress history.
// Message routing around the round: loopback responses and the subnet queue (management calls)
// from the previous round, certified XNet slices (harness/routing/streams.ts), then ingress; after
// the round the stream builder routes calls and responses for other subnets into the streams.
//
// The machine owns the replica's execution state, ingress history, routing state and state
// manager; it runs each batch or adopts another replica's outcome of it (shared-execution.ts) and
// hashes and keeps every height. The jobs around that live beside it: batch-execution.ts (one
// batch's steps: induction, management calls, round, stream builder), ingress-induction.ts,
// subnet-messages.ts, execution-faults.ts (the divergence faults), genesis-state.ts (the height-0
// state and its cache), execution-checkpoint.ts (the state hash, the checkpoint extras, restart
// and state-sync snapshots), recent-heights.ts (hashes and states of recent heights,
// certification, read_state and stream witnesses), execution-queries.ts (queries, the ingress
// filter, canister info) and certified-view.ts (the certified tree).
import { bytesToHex } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import type { CanisterExecutor, CanisterId, CanisterState, PrincipalText, Response } from "../execution/interfaces.ts";
import { WasmExecutor, type ExecutionCanary, type WasmExecutorOptions } from "../execution/executor.ts";
import type { TrappedChange } from "./trap-watch.ts";
import { PerturbedExecutor } from "../execution/perturbed-executor.ts";
import type { ProgressCallback } from "../execution/progress.ts";
import { APP_SUBNET_ROUND_CONFIG, decodeRoundMetadata, encodeRoundMetadata, type ExecutionRoundState, type RoundConfig } from "../execution/round.ts";
import { StateManager, stateDigest, type SubnetState } from "../state/state-manager.ts";
import type { Disk } from "../sim/env.ts";
import { height, type HashHex, type Height } from "../types.ts";
import { Registry, subnetIdOf, type SubnetId } from "../routing/registry.ts";
import { decodeRoutingState, emptyRoutingState, encodeRoutingState, streamTo, type InductionCanary, type RoutingState } from "../routing/streams.ts";
import type { HashTree } from "../crypto/hash-tree.ts";
import type { CertifiedState } from "../state/certified-tree.ts";
import type { Certification } from "./certification.ts";
import { CertifiedView } from "./certified-view.ts";
import { IngressHistory, type IngressHistoryData } from "./ingress-history.ts";
import { executionKey } from "./batch-key.ts";
import { batchWorkOf, type BatchWork } from "./execution-time.ts";
import { replayHistoryOps } from "./history-journal.ts";
import { runsHonestExecution, type BatchOutcome, type ExecutionSharing } from "./shared-execution.ts";
import type { Batch, CanisterInfo, IngressFilterRejection, IngressStatus, MessageRouting, StateSnapshot } from "./interfaces.ts";
import { executeBatchOn, type BatchExecutionContext } from "./batch-execution.ts";
import { genesisStateFor, type GenesisCanister } from "./genesis-state.ts";
import { senderPrincipal } from "./ingress-induction.ts";
import { checkpointSnapshot, decodeExecutionSnapshot, executionStateHash, restoreLatestCheckpoint, snapshotMatchesItsHash, writeCheckpointExtras } from "./execution-checkpoint.ts";
import { RecentHeights, STATE_HASH_KEEP, type HeldExecution } from "./recent-heights.ts";
import { canisterInfoAt, filterIngressAt, queryAt } from "./execution-queries.ts";

export type { GenesisCanister } from "./genesis-state.ts";
export { callerOf, senderPrincipal } from "./ingress-induction.ts";
export { decodeExecutionSnapshot } from "./execution-checkpoint.ts";

export interface ExecutionMachineOptions {
  readonly genesis: readonly GenesisCanister[];
  /** Checkpoint every this many heights (consensus summary heights: dkgIntervalLength + 1). */
  readonly checkpointInterval: number;
  readonly executor?: CanisterExecutor;
  /**
   * How this replica builds its own executor when `executor` is absent (default: a plain
   * WasmExecutor). Tests only: a subclass that misbehaves the way a buggy executor would, which
   * the lab does not know about (the execution audit's target) — unlike `executor`, it does not
   * keep the replica from sharing executions.
   */
  readonly makeExecutor?: (options: WasmExecutorOptions) => WasmExecutor;
  /**
   * The replica's handle on its subnet's shared executions (harness/replica/shared-execution.ts).
   * Used only when no execution-affecting hook or canary is set (runsHonestExecution).
   */
  readonly sharing?: ExecutionSharing;
  /**
   * Given to the replica's own executor (when `executor` is absent): sees long executions every
   * 10^9 instructions and may stop the run (WasmExecutorOptions.onProgress; harness only, results
   * never depend on it).
   */
  readonly executionProgress?: ProgressCallback;
  /**
   * Fault injection (divergent replica): when it returns true for a batch, the replica's state
   * after that batch is perturbed — one byte of the first canister's heap changed — as a
   * nondeterministic or buggy execution would. Called with the batch height and time.
   */
  readonly corrupt?: (h: number, timeNs: bigint) => boolean;
  /** The subnet's canister limit (registry max_number_of_canisters); default: none. */
  readonly maxCanisters?: number;
  /** Fault injection: when it returns true for a batch, every reply recorded in it has its last byte changed. */
  readonly corruptReplies?: (h: number, timeNs: bigint) => boolean;
  /**
   * Observation for the stream check (harness/checks/streams.ts): after each batch, the stream
   * indices inducted from each source subnet's stream, in order (called for every batch).
   */
  readonly onInducted?: (h: Height, inducted: readonly (readonly [SubnetId, readonly bigint[]])[]) => void;
  /**
   * Observation for the invariant "a trapped update changes nothing" (harness/checks/traps.ts):
   * called when an update call trapped and its canister's state still changed.
   */
  readonly onTrappedChange?: (h: Height, change: TrappedChange) => void;
  /** Tests only: a known bug switched on in this replica's own executor (see ExecutionCanary). */
  readonly executionCanary?: ExecutionCanary;
  /**
   * Tests only (ConsensusConfig.canary "state-sync-unverified"): verifySnapshot accepts any
   * snapshot, so state sync installs a peer's checkpoint unchecked.
   */
  readonly snapshotCanary?: "state-sync-unverified";
  /** Tests only: a known bug switched on in the stream inductor (see InductionCanary). */
  readonly inductionCanary?: InductionCanary;
  /** The canary skip-checksum: a restart adopts its checkpoint without verifying it (a known bug). */
  readonly skipChecksums?: boolean;
  /**
   * Fault injection inside execution: when it returns true for a batch, the round runs on a
   * PerturbedExecutor (every call's argument has a bit flipped before the canister sees it).
   */
  readonly perturbExecution?: (h: number, timeNs: bigint) => boolean;
  /**
   * This subnet and the registry (default: a registry of this one subnet, named "a"), and the
   * subnets' certification keys for /subnet/<id>/public_key when known.
   */
  readonly subnet?: {
    readonly id: SubnetId;
    readonly registry: Registry;
    readonly publicKeyDerOf?: (id: SubnetId) => Uint8Array | undefined;
    /** Node ids and DER keys for /subnet/<id>/node (query signature keys), when known. */
    readonly nodesOf?: (id: SubnetId) => readonly (readonly [Uint8Array, Uint8Array])[] | undefined;
  };
}

export class ExecutionStateMachine implements MessageRouting {
  private state: ExecutionRoundState;
  private history = new IngressHistory();
  private readonly sharing: ExecutionSharing | undefined;
  /** The settings outside the state that execution depends on (part of the sharing key). */
  private readonly configuration: string;
  private nextHeight: Height = height(1);
  private stateManager: StateManager;
  private readonly executor: CanisterExecutor;
  private readonly perturbedExecutor: CanisterExecutor;
  private readonly roundConfig: RoundConfig;
  private routing: RoutingState = emptyRoutingState();
  /** Hashes and states of recent heights, the newest certification, and the read paths served from them. */
  private readonly recent: RecentHeights;
  private readonly certifiedView: CertifiedView;
  /** Time of the last executed batch (queries run at it). */
  private lastBatchTimeNs = 0n;
  private lastWork: BatchWork | undefined;
  readonly subnetId: SubnetId;
  readonly registry: Registry;

  constructor(private readonly disk: Disk, private readonly options: ExecutionMachineOptions) {
    // Its own executor: live instances are execution resources of one replica, so what one replica
    // (or a query) ran can never change what another computes. Compiled modules stay shared: they
    // are a pure function of the module bytes (module-cache.ts checks that in paranoid runs).
    this.registry = options.subnet?.registry ?? Registry.of([{ name: "a", size: 1 }]);
    this.subnetId = options.subnet?.id ?? subnetIdOf("a");
    this.recent = new RecentHeights(this.subnetId);
    // The subnet's own certification key is the root of trust of a one-subnet IC (the only setup
    // whose keys are known here); without it ic0.root_key_* trap.
    const rootKeyDer = options.subnet?.publicKeyDerOf?.(this.subnetId);
    // The ic0.cost_* fees scale with the node count of the canister's own subnet.
    const subnetSize = this.registry.subnet(this.subnetId)?.size;
    const makeExecutor = options.makeExecutor ?? ((o: WasmExecutorOptions) => new WasmExecutor(undefined, o));
    this.executor = options.executor ?? makeExecutor({
      ...(options.executionProgress === undefined ? {} : { onProgress: options.executionProgress }),
      ...(options.executionCanary === undefined ? {} : { canary: options.executionCanary }),
      ...(rootKeyDer === undefined ? {} : { rootKeyDer }),
      ...(subnetSize === undefined ? {} : { subnetSize }),
    });
    this.sharing = options.sharing?.enabled === true && runsHonestExecution(options) ? options.sharing : undefined;
    this.sharing?.join();
    this.configuration = `interval ${options.checkpointInterval}|max canisters ${options.maxCanisters ?? 0}|subnet ${this.subnetId}`;
    this.perturbedExecutor = new PerturbedExecutor(this.executor);
    this.roundConfig = { ...APP_SUBNET_ROUND_CONFIG, checkpointIntervalRounds: options.checkpointInterval, subnetId: this.subnetId as string as PrincipalText };
    this.stateManager = this.newStateManager();
    this.state = genesisStateFor(this.executor, options.genesis, this.sharing);
    this.certifiedView = new CertifiedView({
      registry: this.registry,
      ...(options.subnet?.publicKeyDerOf === undefined ? {} : { publicKeyDerOf: options.subnet.publicKeyDerOf }),
      ...(options.subnet?.nodesOf === undefined ? {} : { nodesOf: options.subnet.nodesOf }),
    });
    this.certifiedView.rebuild(0n, this.history, this.state.canisters, this.routing);
    this.restoreFromDisk();
  }

  /** Why checkpoints on the disk were passed over at the last restart (the replica traces them). */
  recovery: readonly string[] = [];

  /** After a restart: the newest checkpoint that verifies (execution-checkpoint.ts), else genesis. */
  private restoreFromDisk(): void {
    const { recovery, restored } = restoreLatestCheckpoint(this.disk, this.stateManager, this.options.skipChecksums === true);
    this.recovery = recovery;
    if (restored === undefined) return;
    this.adopt(restored.height, restored.subnet, restored.extras.history, restored.extras.routing);
  }

  expectedBatchHeight(): Height {
    return this.nextHeight;
  }

  /** What the last delivered batch made this replica do (the execution time model's input). */
  lastBatchWork(): BatchWork | undefined {
    return this.lastWork;
  }

  deliverBatch(batch: Batch): void {
    assert(batch.height === this.nextHeight, `batch ${batch.height} delivered, expected ${this.nextHeight}`);
    const sharing = this.sharing;
    if (sharing === undefined) {
      this.options.sharing?.countExecution();
      this.executeBatch(batch, false);
      return;
    }
    const key = executionKey(this.preStateHash(batch.height), batch, this.configuration);
    sharing.deliver(batch.height, key, () => this.executeBatch(batch, true), (outcome) => this.adoptOutcome(batch, outcome));
  }

  /**
   * Executes a batch on this replica's own executor, as every replica did before sharing
   * (harness/replica/shared-execution.ts; the steps are batch-execution.ts'), then hashes, keeps
   * and certifies the height. `watchTraps`: record trapped updates for adopters even without an observer.
   */
  private executeBatch(batch: Batch, watchTraps: boolean): BatchOutcome {
    this.lastBatchTimeNs = batch.timeNs;
    const executed = executeBatchOn(this.batchContext(), { state: this.state, routing: this.routing, history: this.history }, batch, watchTraps);
    this.state = executed.state;
    this.routing = executed.routing;
    const { hash, certified } = this.commitHeight(batch);
    const commit = executed.commit;
    this.lastWork = batchWorkOf(executed.output.instructionsPerCore, this.state.canisters, commit.checkpoint === undefined ? undefined : commit.committed.canisters);
    return {
      height: batch.height,
      state: this.state,
      commit,
      routing: this.routing,
      historyOps: executed.journal.ops,
      inducted: executed.inducted,
      trapped: executed.trapped,
      stateHash: hash,
      certified,
      certifiedHash: this.recent.certifiedHashAt(batch.height) as HashHex,
      work: this.lastWork,
    };
  }

  /** What batch execution takes from this replica (its state manager changes when state sync installs a checkpoint). */
  private batchContext(): BatchExecutionContext {
    return {
      executor: this.executor,
      perturbedExecutor: this.perturbedExecutor,
      roundConfig: this.roundConfig,
      stateManager: this.stateManager,
      subnetId: this.subnetId,
      registry: this.registry,
      hooks: this.options,
    };
  }

  /**
   * Takes another replica's outcome of this batch on the same pre-state instead of executing it:
   * immutable parts are shared, the history operations replayed on this replica's own history,
   * the state manager commits the digest (and writes checkpoints to this replica's own disk), and
   * the observers see what they would have seen.
   */
  private adoptOutcome(batch: Batch, outcome: BatchOutcome): void {
    replayHistoryOps(this.history, outcome.historyOps);
    this.lastBatchTimeNs = batch.timeNs;
    this.options.onInducted?.(batch.height, outcome.inducted);
    const report = this.options.onTrappedChange;
    if (report !== undefined) for (const change of outcome.trapped) report(batch.height, change);
    this.stateManager.commitAdopted(outcome.commit);
    this.state = outcome.state;
    this.routing = outcome.routing;
    this.lastWork = outcome.work;
    this.certifiedView.adopt(outcome.certified, this.history, this.state.canisters, this.routing);
    this.keepHeight(batch, outcome.stateHash, outcome.certified, outcome.certifiedHash);
  }

  /** This replica's state hash before the batch at `h` (the sharing key's first part). */
  private preStateHash(h: Height): HashHex {
    const previous = height(h - 1);
    const known = this.recent.stateHashAt(previous);
    if (known !== undefined) return known;
    // Genesis and a restart from a checkpoint: the hash of the state this replica holds.
    const digest = this.stateManager.digestAt(previous) ?? stateDigest(previous, this.subnetState());
    return executionStateHash(previous, digest, this.history, this.routing);
  }

  /** Hash, keep and (at summary heights) checkpoint the state after a batch. */
  private commitHeight(batch: Batch): { readonly hash: HashHex; readonly certified: CertifiedState } {
    const digest = this.stateManager.digestAt(batch.height);
    assert(digest !== undefined, `state manager has no digest for height ${batch.height}`);
    const hash = executionStateHash(batch.height, digest, this.history, this.routing);
    const certified = this.certifiedView.update(batch.timeNs, this.history, this.state.canisters, this.routing);
    this.keepHeight(batch, hash, certified, bytesToHex(certified.rootHash()) as HashHex);
    return { hash, certified };
  }

  /** Keeps the hashes and states of a committed height, writes its checkpoint extras, moves on. */
  private keepHeight(batch: Batch, hash: HashHex, certified: CertifiedState, certifiedHash: HashHex): void {
    this.recent.keep(batch.height, { stateHash: hash, certifiedHash, routing: this.routing, execution: { state: this.state, timeNs: batch.timeNs }, certified });
    this.stateManager.pruneDigestsBelow(batch.height - STATE_HASH_KEEP);
    if (this.stateManager.isCheckpointHeight(batch.height)) this.writeExtras(batch.height, hash);
    this.nextHeight = height(batch.height + 1);
  }

  // ---- certification and the XNet endpoint (recent-heights.ts) -----------------------------------

  certifiedHashAt(h: Height): HashHex | undefined {
    return this.recent.certifiedHashAt(h);
  }

  /** The subnet certified height h: read_state and data certificates can be served from it. */
  onCertified(cert: Certification): void {
    this.recent.onCertified(cert);
  }

  /** A read_state response from the latest certified state; undefined before the first certification. */
  readState(paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined {
    return this.recent.readState(paths);
  }

  /** The certified tree at h pruned to our stream to `destination` from `fromIndex` on (XNet endpoint). */
  streamWitnessAt(h: Height, destination: SubnetId, fromIndex: bigint): { readonly witness: HashTree; readonly messageBytes: number } | undefined {
    return this.recent.streamWitnessAt(h, destination, fromIndex);
  }

  /** Where induction of `source`'s stream stands: the next index expected and our stream's signals. */
  xnetCursor(source: SubnetId): { readonly nextIndex: bigint; readonly ownStreamBegin: bigint } {
    const s = streamTo(this.routing, source);
    return { nextIndex: s.signalsEnd, ownStreamBegin: s.begin };
  }

  get routingState(): RoutingState {
    return this.routing;
  }

  stateHashAt(h: Height): HashHex | undefined {
    return this.recent.stateHashAt(h);
  }

  // ---- checkpoints and state sync (execution-checkpoint.ts) --------------------------------------

  /** The checkpoint at h as a state-sync snapshot, if it still verifies on this replica's disk. */
  checkpointAt(h: Height): StateSnapshot | undefined {
    return checkpointSnapshot(this.disk, this.stateManager, h);
  }

  /** The checkpoint's extras (history, routing, state hash), written and synced after the state manager's record. */
  private writeExtras(h: Height, stateHash: HashHex): void {
    writeCheckpointExtras(this.disk, this.stateManager, h, { history: this.history.toData(), routing: encodeRoutingState(this.routing), stateHash });
  }

  verifySnapshot(snapshot: StateSnapshot): boolean {
    if (this.options.snapshotCanary === "state-sync-unverified") return true;
    return snapshotMatchesItsHash(snapshot);
  }

  installSnapshot(snapshot: StateSnapshot): void {
    assert(this.verifySnapshot(snapshot), `snapshot at ${snapshot.height} does not match its hash`);
    // The canary state-sync-unverified installs what it got without any check.
    const decoded = decodeExecutionSnapshot(snapshot, this.options.snapshotCanary === "state-sync-unverified");
    assert(decoded.ok, `snapshot at ${snapshot.height} does not decode: ${decoded.ok ? "" : decoded.reason}`);
    const data = decoded.data;
    this.stateManager = this.newStateManager();
    this.adopt(snapshot.height, data.subnet, data.history, data.routing);
    this.recent.restartAt(snapshot.height, snapshot.stateHash);
    // Written as this replica's own checkpoint, so that a restart finds it.
    this.stateManager.checkpointInstalled(snapshot.height, data.subnet);
    this.writeExtras(snapshot.height, snapshot.stateHash);
  }

  // ---- read paths (execution-queries.ts) ---------------------------------------------------------

  ingressStatus(id: HashHex): IngressStatus | undefined {
    return this.history.status(id);
  }

  /** The ingress history as sorted (id, status) rows, for state diffs. */
  inspectHistory(): [string, string][] {
    return this.history.describe();
  }

  /**
   * A non-replicated query against this replica's current state (the harness's read path: checkers
   * and tests; a Byzantine replica could answer anything, which is why the IC certifies replies).
   */
  query(canister: CanisterId, method: string, arg: Uint8Array, caller = senderPrincipal("observer")): Response {
    // As on the IC, queries see the latest certified state (so a data certificate matches what the
    // canister reads); before the first certification, the current one.
    const context = { executor: this.executor, roundConfig: this.roundConfig, dataCertificateFor: (id: CanisterId) => this.recent.dataCertificateFor(id) };
    return queryAt(context, this.queryState(), canister, method, arg, caller);
  }

  /** The ingress filter (interfaces.ts), on the state queries see. */
  filterIngress(message: IngressMessage): IngressFilterRejection | undefined {
    return filterIngressAt(this.executor, this.queryState(), message);
  }

  ingressSender(id: HashHex): PrincipalText | undefined {
    return this.history.sender(id) as PrincipalText | undefined;
  }

  /** Controllers and private metadata names of a canister in the state queries see (the IC checks its certified state). */
  canisterInfo(id: CanisterId): CanisterInfo | undefined {
    return canisterInfoAt(this.queryState(), id);
  }

  /** The height queries run at now: the latest certified one this replica holds, else the latest executed. */
  get queryHeight(): Height {
    return this.recent.queryHeight(height(this.nextHeight - 1));
  }

  private queryState(): HeldExecution {
    return this.recent.executionAtHeight(this.queryHeight) ?? { state: this.state, timeNs: this.lastBatchTimeNs };
  }

  /** Canisters as they are now (tests, dumps). */
  get canisters(): readonly CanisterState[] {
    return this.state.canisters;
  }

  // ---- internals ---------------------------------------------------------------------------------

  private newStateManager(): StateManager {
    return new StateManager(this.disk, { checkpointIntervalRounds: this.options.checkpointInterval, keepCheckpoints: 2 });
  }

  private adopt(h: number, subnet: SubnetState, history: IngressHistoryData, routing: Uint8Array | undefined): void {
    this.state = decodeRoundMetadata(subnet.metadata, subnet.canisters);
    this.history = IngressHistory.fromData(history);
    this.routing = routing === undefined ? emptyRoutingState() : decodeRoutingState(routing);
    this.certifiedView.rebuild(this.lastBatchTimeNs, this.history, this.state.canisters, this.routing);
    this.nextHeight = height(h + 1);
  }

  private subnetState(): SubnetState {
    return { canisters: this.state.canisters, metadata: encodeRoundMetadata(this.state) };
  }
}
