// The real replicated state machine behind MessageRouting (issue 4, step 1): each finalized batch
// is inducted into canister input queues and executed by one execution round (credit scheduler,
// DTS, instruction limits) on Wasm canisters; the state manager commits the subnet state, hashes
// it and checkpoints it at summary heights. Ingress replies and rejects go to the ingress history.
// Message routing around the round: loopback responses and the subnet queue (management calls)
// from the previous round, certified XNet slices (harness/routing/streams.ts), then ingress; after
// the round the stream builder routes calls and responses for other subnets into the streams.
import { Principal } from "@dfinity/principal";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { memoizeBounded } from "../memo.ts";
import { assert } from "../assert.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import * as lifecycle from "../execution/lifecycle.ts";
import {
  canisterId,
  INSPECT_MESSAGE_INSTRUCTION_LIMIT,
  MANAGEMENT_CANISTER,
  principalBytes,
  RejectCode,
  type CallbackId,
  type CanisterExecutor,
  type CanisterId,
  type CanisterState,
  type OutgoingResponse,
  type PrincipalText,
  type Response,
} from "../execution/interfaces.ts";
import { WasmExecutor, type ExecutionCanary, type WasmExecutorOptions } from "../execution/executor.ts";
import { TrapWatchingExecutor, type TrappedChange } from "./trap-watch.ts";
import { PerturbedExecutor } from "../execution/perturbed-executor.ts";
import type { ProgressCallback } from "../execution/progress.ts";
import { freezeShared } from "../paranoia.ts";
import { APP_SUBNET_ROUND_CONFIG, decodeRoundMetadata, encodeRoundMetadata, executeAndCommit, executeQuery, initialRoundState, type ExecutionRoundState, type InductedMessage, type RoundConfig } from "../execution/round.ts";
import { StateManager, stateDigest, type SubnetState } from "../state/state-manager.ts";
import { checkpointFiles, loadCheckpoint } from "../state/checkpoint.ts";
import { CheckpointFilesDisk, decodeCheckpointFiles, encodeCheckpointFiles } from "../state/state-sync.ts";
import type { Disk } from "../sim/env.ts";
import { readRecord, writeRecord } from "../sim/disk-records.ts";
import { height, type HashHex, type Height } from "../types.ts";
import { Registry, subnetIdOf, type CanisterRange, type SubnetId } from "../routing/registry.ts";
import {
  buildStreams,
  decodeRoutingState,
  emptyRoutingState,
  encodeRoutingState,
  inductSlice,
  encodeStreamMessage,
  sliceOf,
  streamTo,
  takeLocalWork,
  type InductionCanary,
  type RoutingState,
  type StreamSlice,
  type SubnetCall,
} from "../routing/streams.ts";
import type { HashTree } from "../crypto/hash-tree.ts";
import type { CertifiedState } from "../state/certified-tree.ts";
import { dataCertificate, readStateCertificate } from "../state/state-certification.ts";
import type { Certification } from "./certification.ts";
import { CertifiedView, metadataOf } from "./certified-view.ts";
import { indexLabel, subnetLabel } from "../routing/xnet.ts";
import { IngressHistory, ingressHistoryDataOf, type IngressHistoryData } from "./ingress-history.ts";
import { executeSubnetCalls } from "./subnet-messages.ts";
import { executionKey } from "./batch-key.ts";
import { batchWorkOf, type BatchWork } from "./execution-time.ts";
import { HistoryJournal, replayHistoryOps } from "./history-journal.ts";
import { runsHonestExecution, type BatchOutcome, type ExecutionSharing } from "./shared-execution.ts";
import type { Batch, CanisterInfo, IngressFilterRefusal, IngressFilterRejection, IngressStatus, MessageRouting, StateSnapshot } from "./interfaces.ts";
import { canisterNotFound, canisterNotRunningAtInduction, ErrorCode, errorCodeOfResponse, rejectCodeOf, userReject, type UserError } from "../execution/reject-codes.ts";
import { executeManagementQuery, managementIngressRefusal } from "../execution/management.ts";
import { loadSavedState, type SavedCanisterState } from "../execution/saved-canister-state.ts";

export interface GenesisCanister {
  readonly id: CanisterId;
  readonly wasm: Uint8Array;
  readonly arg?: Uint8Array;
  /** Instead of installing `wasm`: this saved state, loaded into the created canister (and its file's content hash). */
  readonly saved?: { readonly state: SavedCanisterState; readonly contentHash: string };
}

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

/**
 * A checkpoint as state sync carries it: `StateSnapshot.data` holds the checkpoint's files on the
 * sender's disk (state/state-sync.ts) — the state manager's record, its pages and modules, and the
 * extras record — and the receiver reads them with the code a restart uses (decodeSnapshot).
 */
interface ExecutionSnapshotData {
  readonly subnet: SubnetState;
  readonly history: IngressHistoryData;
  /** encodeRoutingState bytes. */
  readonly routing: Uint8Array;
  /** The state hash the extras record names. */
  readonly stateHash: HashHex;
}

/**
 * What a checkpoint holds beside the state manager's record (`exec-history/<h>`, a checksummed
 * record): the ingress history, the routing state and the state hash of that height.
 */
interface CheckpointExtras {
  readonly history: IngressHistoryData;
  readonly routing: Uint8Array;
  readonly stateHash: HashHex;
}

/**
 * Heights whose certified hash a replica keeps (to sign shares and to judge certifications), and
 * the most whose states (routing, execution, certified tree) it keeps while certification lags.
 * Once the subnet certifies h, the states below h are dropped: queries, read_state and the XNet
 * endpoint serve the latest certified height only. Keeping 32 full states instead doubled the
 * wall time of a 13-replica subnet at 1,000 updates/s (garbage collection over 32 versions of
 * the certified tree; docs/BENCHMARKS.md).
 */
const RECENT_HEIGHTS_KEPT = 32;

const STATE_HASH_KEEP = 512;
/**
 * Genesis states by the executor that built them and the canisters' modules and arguments. Each
 * replica incarnation has its own executor (its own live instances), so a replica never adopts a
 * genesis another executor computed: a nondeterministic executor shows up as a divergence from
 * the first height. Weak keys: an executor's genesis goes with it.
 */
const genesisCache = new WeakMap<CanisterExecutor, Map<string, ExecutionRoundState>>();

export class ExecutionStateMachine implements MessageRouting {
  private state: ExecutionRoundState;
  private history = new IngressHistory();
  /** The current batch's writes to the history (adopters replay them). */
  private journal = new HistoryJournal(this.history);
  private readonly sharing: ExecutionSharing | undefined;
  /** The settings outside the state that execution depends on (part of the sharing key). */
  private readonly configuration: string;
  private nextHeight: Height = height(1);
  private readonly stateHashes = new Map<Height, HashHex>();
  private stateManager: StateManager;
  private readonly executor: CanisterExecutor;
  private readonly perturbedExecutor: CanisterExecutor;
  private readonly roundConfig: RoundConfig;
  private routing: RoutingState = emptyRoutingState();
  private readonly routingAt = new Map<Height, RoutingState>();
  /** Execution states of recent heights: queries run against the latest certified one. */
  private readonly executionAt = new Map<Height, { readonly state: ExecutionRoundState; readonly timeNs: bigint }>();
  /** Certified tree root hashes of recent heights (shares are signed over them). */
  private readonly certifiedHashes = new Map<Height, HashHex>();
  /** Certified trees of the latest certified height and later (XNet slices and read_state are served from them). */
  private readonly certifiedAt = new Map<Height, CertifiedState>();
  private readonly certifiedView: CertifiedView;
  /** The newest certification of this subnet whose state this replica still holds. */
  private certification: Certification | undefined;
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
    this.state = this.sharing === undefined
      ? genesisState(this.executor, options.genesis)
      : this.sharing.genesis(genesisKey(options.genesis), () => genesisState(this.executor, options.genesis), (state) => stateDigest(0, { canisters: state.canisters, metadata: encodeRoundMetadata(state) }));
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

  /**
   * After a restart: the newest checkpoint whose record, pages, manifest, extras and state hash all
   * verify; older ones when the newest does not; genesis when none does (the replica then
   * state-syncs the CUP's checkpoint from a peer). Never a state that does not match its hash —
   * unless the canary skip-checksum is on.
   */
  private restoreFromDisk(): void {
    const unchecked = this.options.skipChecksums === true;
    let extras: CheckpointExtras | undefined;
    const recovery: string[] = [];
    const restored = this.stateManager.loadLatestCheckpoint({
      unchecked,
      onRejected: (why) => recovery.push(why),
      accept: (h, subnet, digest) => {
        const read = readRecord<CheckpointExtras>(this.disk, historyKey(h), unchecked);
        if (read === undefined || !read.ok) return `checkpoint ${h}: ${read === undefined ? "its history record is missing" : read.reason}`;
        if (!unchecked) {
          const actual = combinedHash(h, digest, IngressHistory.fromData(read.value.history), decodeRoutingState(read.value.routing));
          if (actual !== read.value.stateHash) return `checkpoint ${h}: state hash ${actual.slice(0, 16)} does not match the recorded ${read.value.stateHash.slice(0, 16)}`;
        }
        extras = read.value;
        return undefined;
      },
    });
    this.recovery = recovery;
    if (restored === undefined || extras === undefined) return;
    this.adopt(restored.height, restored.state, extras.history, extras.routing);
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
   * (harness/replica/shared-execution.ts): induction, management calls, the round, the stream
   * builder, commit. `watchTraps`: record trapped updates for adopters even without an observer.
   */
  private executeBatch(batch: Batch, watchTraps: boolean): BatchOutcome {
    const journal = (this.journal = new HistoryJournal(this.history));
    journal.prune(batch.timeNs);
    this.lastBatchTimeNs = batch.timeNs;
    const local = takeLocalWork(this.routing);
    this.routing = local.state;
    const messages: InductedMessage[] = [...local.loopback];
    const taken: [SubnetId, readonly bigint[]][] = [];
    for (const slice of batch.xnet ?? []) messages.push(...this.inductSlice(slice, taken));
    this.options.onInducted?.(batch.height, taken);
    const subnetCalls: SubnetCall[] = [...local.calls];
    for (const message of batch.ingress) {
      if (this.history.has(message.id)) continue; // induction drops duplicates, as the IC's does
      const inducted = this.induct(message, batch);
      if (inducted === "subnet-call") subnetCalls.push(this.subnetCallOf(message));
      else if (inducted !== undefined) messages.push(inducted);
    }
    const remoteFromSubnet = this.executeSubnetCalls(subnetCalls, batch, messages);
    const chosen = this.options.perturbExecution?.(batch.height, batch.timeNs) === true ? this.perturbedExecutor : this.executor;
    const report = this.options.onTrappedChange;
    const trapped: TrappedChange[] = [];
    const executor = report === undefined && !watchTraps ? chosen : new TrapWatchingExecutor(chosen, (change) => {
      trapped.push(change);
      report?.(batch.height, change);
    });
    const { state, output, commit } = executeAndCommit(executor, this.roundConfig, this.stateManager, this.state, {
      round: batch.height,
      timeNs: batch.timeNs,
      // Messages for canisters that no longer exist are dropped (the scheduling states index
      // exactly the subnet's canisters: no set of every id per batch).
      messages: messages.filter((m) => this.state.scheduling.indexOf(m.canister) !== undefined),
    });
    this.state = this.options.corrupt?.(batch.height, batch.timeNs) === true ? perturbHeap(state) : state;
    for (const m of output.executed) {
      // Executed but not answered (it awaits calls it made): received → processing.
      if (m.message.kind === "ingress" && this.history.status(m.message.messageId as HashHex)?.status === "received") {
        journal.set(m.message.messageId as HashHex, { status: "processing", height: batch.height }, batch.timeNs);
      }
    }
    for (const r of output.ingressResponses) {
      if (r.origin.kind === "ingress") this.recordIngressResponse(r.origin.messageId, r.response, batch);
    }
    this.routing = buildStreams(this.routing, this.subnetId, this.registry, output.remoteCalls, [...output.remoteResponses, ...remoteFromSubnet]).state;
    const { hash, certified } = this.commitHeight(batch);
    this.lastWork = batchWorkOf(output.instructionsPerCore, this.state.canisters, commit.checkpoint === undefined ? undefined : commit.committed.canisters);
    return {
      height: batch.height,
      state: this.state,
      commit,
      routing: this.routing,
      historyOps: journal.ops,
      inducted: taken,
      trapped,
      stateHash: hash,
      certified,
      certifiedHash: this.certifiedHashes.get(batch.height) as HashHex,
      work: this.lastWork,
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
    const known = this.stateHashes.get(previous);
    if (known !== undefined) return known;
    // Genesis and a restart from a checkpoint: the hash of the state this replica holds.
    const digest = this.stateManager.digestAt(previous) ?? stateDigest(previous, this.subnetState());
    return combinedHash(previous, digest, this.history, this.routing);
  }

  /** Hash, keep and (at summary heights) checkpoint the state after a batch. */
  private commitHeight(batch: Batch): { readonly hash: HashHex; readonly certified: CertifiedState } {
    const digest = this.stateManager.digestAt(batch.height);
    assert(digest !== undefined, `state manager has no digest for height ${batch.height}`);
    const hash = combinedHash(batch.height, digest, this.history, this.routing);
    const certified = this.certifiedView.update(batch.timeNs, this.history, this.state.canisters, this.routing);
    this.keepHeight(batch, hash, certified, bytesToHex(certified.rootHash()) as HashHex);
    return { hash, certified };
  }

  /** Keeps the hashes and states of a committed height, writes its checkpoint extras, moves on. */
  private keepHeight(batch: Batch, hash: HashHex, certified: CertifiedState, certifiedHash: HashHex): void {
    this.stateHashes.set(batch.height, hash);
    this.stateHashes.delete((batch.height - STATE_HASH_KEEP) as Height);
    this.certifiedHashes.set(batch.height, certifiedHash);
    this.certifiedHashes.delete((batch.height - RECENT_HEIGHTS_KEPT) as Height);
    this.routingAt.set(batch.height, this.routing);
    this.executionAt.set(batch.height, { state: this.state, timeNs: batch.timeNs });
    this.certifiedAt.set(batch.height, certified);
    this.releaseStatesBelow((batch.height - RECENT_HEIGHTS_KEPT + 1) as Height);
    this.stateManager.pruneDigestsBelow(batch.height - STATE_HASH_KEEP);
    if (this.stateManager.isCheckpointHeight(batch.height)) this.writeExtras(batch.height, hash);
    this.nextHeight = height(batch.height + 1);
  }

  private recordIngressResponse(messageId: string, response: Response, batch: Batch): void {
    const status: IngressStatus = response.kind === "reply"
      ? { status: "completed", height: batch.height, reply: bytesToHex(this.options.corruptReplies?.(batch.height, batch.timeNs) === true ? corruptedReply(response.data) : response.data) }
      : { status: "failed", height: batch.height, code: response.code, message: response.message, errorCode: errorCodeOfResponse(response) };
    this.journal.set(messageId as HashHex, status, batch.timeNs);
  }

  /** Inducts one certified stream slice (consensus validated its certification); notes the indices it took in `taken`. */
  private inductSlice(slice: StreamSlice, taken: [SubnetId, readonly bigint[]][]): readonly InductedMessage[] {
    if (slice.destination !== this.subnetId || this.registry.subnet(slice.source) === undefined) return [];
    const queued = queuedRequestCounts(this.state);
    const canisters = new Map<string, CanisterState>(this.state.canisters.map((c) => [c.id, c]));
    const result = inductSlice(this.routing, slice, {
      hasCanister: (id) => canisters.has(id),
      statusOf: (id) => canisters.get(id)?.status,
      queuedRequests: (to, from) => queued.get(`${to}|${from}`) ?? 0,
    }, this.options.inductionCanary);
    this.routing = result.state;
    if (result.indices.length > 0) taken.push([slice.source, result.indices]);
    return result.inducted;
  }

  /** Management canister calls run before the round; answers go to the history, the round or the streams. */
  private executeSubnetCalls(calls: readonly SubnetCall[], batch: Batch, messages: InductedMessage[]): { from: CanisterId; response: OutgoingResponse }[] {
    if (calls.length === 0) return [];
    assert(this.executor instanceof WasmExecutor, "management calls need the Wasm executor");
    const out = executeSubnetCalls(
      { executor: this.executor, timeNs: batch.timeNs, canisterRange: this.ownRange(), randomness: hexToBytes(batch.randomness), maxCanisters: this.options.maxCanisters ?? 0, subnetId: this.subnetId },
      this.state,
      calls,
    );
    this.state = out.state;
    for (const r of out.ingressResponses) this.recordIngressResponse(r.messageId, r.response, batch);
    messages.push(...out.localResponses);
    return out.remoteResponses.map((r) => ({
      from: MANAGEMENT_CANISTER as string as CanisterId,
      response: { origin: { kind: "canister", caller: r.caller, callbackId: r.callbackId as CallbackId }, response: r.response, refundedCycles: r.refundedCycles },
    }));
  }

  private ownRange(): CanisterRange {
    const own = this.registry.subnet(this.subnetId);
    assert(own !== undefined, `subnet ${this.subnetId} is not in the registry`);
    return own.canisterRange;
  }

  private subnetCallOf(message: IngressMessage): SubnetCall {
    assert(message.call !== undefined, "a subnet call names a method");
    return { origin: { kind: "ingress", messageId: message.id, caller: callerOf(message) }, method: message.call.method, arg: hexToBytes(message.call.argHex), cycles: 0n };
  }

  certifiedHashAt(h: Height): HashHex | undefined {
    return this.certifiedHashes.get(h);
  }

  /** The subnet certified height h: read_state and data certificates can be served from it. */
  onCertified(cert: Certification): void {
    // Not our state (diverged), or states older than the newest certification we hold.
    if (this.certifiedHashes.get(cert.height) !== cert.hash || !this.certifiedAt.has(cert.height)) return;
    if (this.certification === undefined || cert.height > this.certification.height) {
      this.certification = cert;
      this.releaseStatesBelow(cert.height);
    }
  }

  /** Drops the routing, execution and certified states of heights below h (their hashes stay). */
  private releaseStatesBelow(h: Height): void {
    for (const held of [this.routingAt, this.executionAt, this.certifiedAt]) {
      for (const at of held.keys()) if (at < h) held.delete(at);
    }
  }

  /**
   * A read_state response: the latest certified state pruned to `paths` (plus /time), with the
   * subnet's signature — the CBOR certificate agents verify. Undefined before the first certification.
   */
  readState(paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined {
    const cert = this.certification;
    const held = cert === undefined ? undefined : this.certifiedAt.get(cert.height);
    if (cert === undefined || held === undefined) return undefined;
    return readStateCertificate(held, cert, paths);
  }

  /** The certified tree at h pruned to our stream to `destination` from `fromIndex` on (XNet endpoint). */
  streamWitnessAt(h: Height, destination: SubnetId, fromIndex: bigint): { readonly witness: HashTree; readonly messageBytes: number } | undefined {
    const held = this.certifiedAt.get(h);
    const routing = this.routingAt.get(h);
    // No stream to the destination yet: nothing to serve (the IC's endpoint answers "no content").
    if (held === undefined || routing === undefined || !routing.streams.some(([id]) => id === destination)) return undefined;
    const slice = sliceOf(routing, this.subnetId, destination, fromIndex);
    const base = ["streams", subnetLabel(destination)];
    const paths: (string | Uint8Array)[][] = [[...base, "header"]];
    if (slice.messages.length > 0 && slice.firstIndex === slice.header.begin && slice.header.end - slice.header.begin === BigInt(slice.messages.length)) {
      paths.push([...base, "messages"]); // the whole stream: one prefix path reveals it
    } else {
      slice.messages.forEach((_, k) => paths.push([...base, "messages", indexLabel(slice.firstIndex + BigInt(k))]));
    }
    const messageBytes = slice.messages.reduce((sum, m) => sum + encodeStreamMessage(m).length, 0);
    return { witness: held.witness(paths), messageBytes };
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
    return this.stateHashes.get(h);
  }

  /**
   * The checkpoint at h as a state-sync snapshot, read back from the disk and verified: a
   * checkpoint that rotted on this replica's disk is not served (the peer asks another replica).
   */
  checkpointAt(h: Height): StateSnapshot | undefined {
    const loaded = this.stateManager.readCheckpoint(h);
    const extras = readRecord<CheckpointExtras>(this.disk, historyKey(h));
    if (!loaded.ok || extras === undefined || !extras.ok) return undefined;
    const files = checkpointFiles(this.disk, h);
    const extrasBytes = this.disk.read(historyKey(h));
    if (files === undefined || extrasBytes === undefined) return undefined;
    // sizeBytes 0: the network model has always charged nothing for an execution snapshot.
    return { height: h, stateHash: extras.value.stateHash, sizeBytes: 0, data: encodeCheckpointFiles([...files, [historyKey(h), extrasBytes]]) };
  }

  /** The checkpoint's extras (history, routing, state hash), written and synced after the state manager's record. */
  private writeExtras(h: Height, stateHash: HashHex): void {
    const extras: CheckpointExtras = { history: this.history.toData(), routing: encodeRoutingState(this.routing), stateHash };
    writeRecord(this.disk, historyKey(h), extras);
    const kept = new Set(this.stateManager.checkpointHeights().map(historyKey));
    for (const key of this.disk.keys("exec-history/")) if (!kept.has(key) && key !== historyKey(h)) this.disk.remove(key);
    this.disk.sync();
  }

  verifySnapshot(snapshot: StateSnapshot): boolean {
    if (this.options.snapshotCanary === "state-sync-unverified") return true;
    // A snapshot comes from a peer, which may be Byzantine: bytes that do not even decode are a
    // mismatch like any other, not an error of this replica.
    const decoded = decodeExecutionSnapshot(snapshot, false);
    if (!decoded.ok) return false;
    const data = decoded.data;
    return data.stateHash === snapshot.stateHash && combinedHash(snapshot.height, stateDigest(snapshot.height, data.subnet), IngressHistory.fromData(data.history), decodeRoutingState(data.routing)) === snapshot.stateHash;
  }

  installSnapshot(snapshot: StateSnapshot): void {
    assert(this.verifySnapshot(snapshot), `snapshot at ${snapshot.height} does not match its hash`);
    // The canary state-sync-unverified installs what it got without any check.
    const decoded = decodeExecutionSnapshot(snapshot, this.options.snapshotCanary === "state-sync-unverified");
    assert(decoded.ok, `snapshot at ${snapshot.height} does not decode: ${decoded.ok ? "" : decoded.reason}`);
    const data = decoded.data;
    this.stateManager = this.newStateManager();
    this.adopt(snapshot.height, data.subnet, data.history, data.routing);
    this.stateHashes.clear();
    this.routingAt.clear();
    this.executionAt.clear();
    this.certifiedAt.clear();
    this.certifiedHashes.clear();
    this.certification = undefined;
    this.stateHashes.set(snapshot.height, snapshot.stateHash);
    // Written as this replica's own checkpoint, so that a restart finds it.
    this.stateManager.checkpointInstalled(snapshot.height, data.subnet);
    this.writeExtras(snapshot.height, snapshot.stateHash);
  }

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
    const at = this.queryState();
    if ((canister as string) === MANAGEMENT_CANISTER) return executeManagementQuery((id) => at.state.canisters.find((c) => c.id === id), caller, method, arg);
    const target = at.state.canisters.find((c) => c.id === canister);
    if (target === undefined) return userReject(canisterNotFound(canister));
    const certificate = this.dataCertificateFor(canister);
    const message = { kind: "query" as const, caller, method, arg, ...(certificate === undefined ? {} : { dataCertificate: certificate }) };
    if (this.executor instanceof WasmExecutor && target.execution?.exports.includes(`canister_composite_query ${method}`)) {
      // A composite query runs its call tree on the same state (the IC's query handler).
      const params = { instructionLimit: this.roundConfig.scheduler.maxInstructionsPerMessageWithoutDts, timeNs: at.timeNs };
      return this.executor.executeQueryTree((id) => at.state.canisters.find((c) => c.id === id), canister, message, params).response;
    }
    const result = executeQuery(this.executor, this.roundConfig, at.state, canister, message, at.timeNs);
    const reply = result.responses[0]?.response;
    assert(reply !== undefined, `query ${canister}.${method} produced no answer`);
    return reply;
  }

  /**
   * The ingress filter (interfaces.ts): on the state queries see, as the IC's HTTP handler does,
   * with the IC's error codes and messages (ic_error_types; canister_manager.rs for aaaaa-aa).
   */
  filterIngress(message: IngressMessage): IngressFilterRejection | undefined {
    const call = message.call;
    if (call === undefined) return undefined;
    const canisters = this.queryState().state.canisters;
    const find = (id: CanisterId): CanisterState | undefined => canisters.find((c) => c.id === id);
    if (call.canister === MANAGEMENT_CANISTER) return managementIngressRefusal(call.method, hexToBytes(call.argHex), callerOf(message), find);
    const canister = find(call.canister as CanisterId);
    const refuse = (reason: IngressFilterRefusal, e: UserError): IngressFilterRejection => ({ reason, rejectCode: rejectCodeOf(e.code), errorCode: e.code, message: e.description });
    if (canister === undefined) return refuse("canister-not-found", canisterNotFound(call.canister));
    if (canister.status !== "running") return refuse("canister-not-running", canisterNotRunningAtInduction(call.canister, canister.status));
    if (!(this.executor instanceof WasmExecutor)) return undefined;
    const verdict = this.executor.inspectMessage(canister, { caller: callerOf(message), method: call.method, arg: hexToBytes(call.argHex) }, { instructionLimit: INSPECT_MESSAGE_INSTRUCTION_LIMIT, timeNs: this.queryState().timeNs });
    if (verdict.refusal === undefined) return undefined;
    return refuse("inspect-message-refused", verdict.refusal);
  }

  ingressSender(id: HashHex): PrincipalText | undefined {
    return this.history.sender(id) as PrincipalText | undefined;
  }

  /** Controllers and private metadata names of a canister in the state queries see (the IC checks its certified state). */
  canisterInfo(id: CanisterId): CanisterInfo | undefined {
    const canister = this.queryState().state.canisters.find((c) => c.id === id);
    if (canister === undefined) return undefined;
    const e = canister.execution;
    const privateMetadata = e === undefined ? [] : metadataOf(e.moduleHash, e.wasmModule).filter((s) => s.visibility === "private").map((s) => s.name);
    return { controllers: canister.controllers, privateMetadata };
  }

  /** The height queries run at now: the latest certified one this replica holds, else the latest executed. */
  get queryHeight(): Height {
    const cert = this.certification;
    return cert !== undefined && this.executionAt.has(cert.height) ? cert.height : height(this.nextHeight - 1);
  }

  private queryState(): { readonly state: ExecutionRoundState; readonly timeNs: bigint } {
    return this.executionAt.get(this.queryHeight) ?? { state: this.state, timeNs: this.lastBatchTimeNs };
  }

  /** What ic0.data_certificate_copy returns in a query to `canister`: /time and its certified_data. */
  private dataCertificateFor(canister: CanisterId): Uint8Array | undefined {
    const cert = this.certification;
    const held = cert === undefined ? undefined : this.certifiedAt.get(cert.height);
    if (cert === undefined || held === undefined) return undefined;
    return dataCertificate(held, cert, principalBytes(canister));
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

  /**
   * An ingress message becomes a canister message (or a subnet call, for the management canister),
   * or fails at induction with a reject.
   */
  private induct(message: IngressMessage, batch: Batch): InductedMessage | "subnet-call" | undefined {
    // The envelope's principal is kept with the status (the HTTP interface shows it to its sender only).
    const sender = message.envelope === undefined ? undefined : message.sender;
    const fail = (error: UserError): undefined => {
      const status: IngressStatus = { status: "failed", height: batch.height, code: rejectCodeOf(error.code), message: error.description, errorCode: error.code };
      this.journal.set(message.id, status, batch.timeNs, sender);
      return undefined;
    };
    // A message without a call is the key-value placeholder's: there is no canister to run it.
    if (message.call === undefined) return fail({ code: ErrorCode.CanisterNotFound, description: "The ingress message names no canister (a key-value placeholder message)" });
    if (message.call.canister === MANAGEMENT_CANISTER) {
      this.journal.set(message.id, { status: "received", height: batch.height }, batch.timeNs, sender);
      return "subnet-call";
    }
    let target: CanisterId;
    try {
      target = canisterId(message.call.canister);
    } catch {
      return fail(canisterNotFound(message.call.canister));
    }
    const canister = this.state.canisters.find((c) => c.id === target);
    // Induction refusals as the IC's valid set rule (ic-protocol.md §3.3): no such canister → IC0301,
    // stopped → IC0508, stopping → IC0509, with StateError's texts.
    if (canister === undefined) return fail(canisterNotFound(target));
    if (canister.status !== "running") return fail(canisterNotRunningAtInduction(target, canister.status));
    this.journal.set(message.id, { status: "received", height: batch.height }, batch.timeNs, sender);
    return {
      canister: target,
      message: { kind: "ingress", messageId: message.id, caller: callerOf(message), method: message.call.method, arg: hexToBytes(message.call.argHex) },
    };
  }
}

/** The caller of an ingress message: the envelope's authenticated sender, or a simulated user's principal. */
export function callerOf(message: IngressMessage): PrincipalText {
  return message.envelope !== undefined ? (message.sender as PrincipalText) : senderPrincipal(message.sender);
}

/** A user name's principal: self-authenticating over a key derived from the name (simulation). */
export const senderPrincipal: (sender: string) => PrincipalText = memoizeBounded(
  (sender) => Principal.selfAuthenticating(sha256(utf8ToBytes(`subnetlab-user|${sender}`))).toText() as PrincipalText,
  16_384,
  "senderPrincipal",
);

/** What a genesis state is a function of: each canister's id, module, init argument and saved state. */
function genesisKey(genesis: readonly GenesisCanister[]): string {
  return genesis.map((g) => `${g.id}:${bytesToHex(sha256(g.wasm))}:${g.arg === undefined ? "" : bytesToHex(g.arg)}:${g.saved?.contentHash ?? ""}`).join(",");
}

function genesisState(executor: CanisterExecutor, genesis: readonly GenesisCanister[]): ExecutionRoundState {
  const key = genesisKey(genesis);
  const built = genesisCache.get(executor) ?? new Map<string, ExecutionRoundState>();
  genesisCache.set(executor, built);
  const cached = built.get(key);
  if (cached !== undefined) return cached;
  const controller = senderPrincipal("genesis");
  const canisters = genesis.map((g) => {
    const created = lifecycle.createCanister({ id: g.id, controllers: [controller], cycles: 100_000_000_000_000n });
    if (g.saved !== undefined) return genesisFromSaved(executor, created, controller, g.saved.state);
    const installed = executor.installCode(created, { mode: "install", wasmModule: g.wasm, arg: g.arg ?? new Uint8Array(), sender: controller }, { instructionLimit: 300_000_000_000n, timeNs: 0n });
    assert(installed.ok, `genesis install of ${g.id} failed: ${installed.ok ? "" : installed.message}`);
    return installed.canister;
  });
  const state = freezeShared(initialRoundState(canisters));
  built.set(key, state);
  return state;
}

/**
 * A genesis canister started from a saved state: loaded through the snapshot upload and load steps
 * a builder takes (saved-canister-state.ts), identically on every replica. The scenario layer
 * checked the file (content hash, module = the scenario's wasm), so a refusal here is a harness bug.
 */
function genesisFromSaved(executor: CanisterExecutor, created: CanisterState, controller: PrincipalText, saved: SavedCanisterState): CanisterState {
  assert(executor instanceof WasmExecutor, "canisters from saved states need the Wasm executor");
  const loaded = loadSavedState(created, controller, saved, executor, 0n);
  assert(loaded.ok, `genesis load of ${created.id} from a saved state failed: ${loaded.ok ? "" : loaded.message}`);
  return loaded.canister;
}

/** A reply with its last byte changed (an execution bug that answers differently). */
function corruptedReply(data: Uint8Array): Uint8Array {
  const out = data.length === 0 ? new Uint8Array(1) : data.slice();
  out[out.length - 1] = ((out[out.length - 1] ?? 0) + 1) & 0xff;
  return out;
}

/** Bumps the first byte of the first canister's highest non-zero heap page (a corrupted execution). */
function perturbHeap(state: ExecutionRoundState): ExecutionRoundState {
  const target = state.canisters.find((c) => c.execution !== undefined);
  const exec = target?.execution;
  if (target === undefined || exec === undefined) return state;
  const pages = exec.wasmMemory.nonZeroPageIndices();
  const index = pages[pages.length - 1] ?? 0;
  const page = exec.wasmMemory.readPage(index).slice();
  // Add rather than flip: flipping twice would restore the page on the next perturbed batch.
  page[0] = ((page[0] ?? 0) + 1) & 0xff;
  const corrupted: CanisterState = { ...target, execution: { ...exec, wasmMemory: exec.wasmMemory.withPages(new Map([[index, page]])) } };
  return { ...state, canisters: state.canisters.map((c) => (c === target ? corrupted : c)) };
}

function combinedHash(h: number, subnetDigest: HashHex, history: IngressHistory, routing: RoutingState): HashHex {
  const routingDigest = isEmptyRouting(routing) ? "" : bytesToHex(sha256(encodeRoutingState(routing)));
  return bytesToHex(sha256(utf8ToBytes(`exec-state|${h}|${subnetDigest}|${history.digestHex()}|${history.size}|${routingDigest}`))) as HashHex;
}

const isEmptyRouting = (r: RoutingState): boolean =>
  r.subnetQueue.length === 0 && r.loopback.length === 0 && r.streams.every(([, s]) => s.messages.length === 0 && s.begin === 0n && s.signalsEnd === 0n);

/** Requests waiting per (receiver, sender) pair, for the input queue capacity at induction. */
function queuedRequestCounts(state: ExecutionRoundState): Map<string, number> {
  const counts = new Map<string, number>();
  for (const q of state.queues) {
    for (const m of q.messages) if (m.kind === "request") counts.set(`${q.id}|${m.caller}`, (counts.get(`${q.id}|${m.caller}`) ?? 0) + 1);
  }
  return counts;
}

const historyKey = (h: number): string => `exec-history/${String(h).padStart(10, "0")}`;

/**
 * A snapshot's checkpoint read from its files as a restart reads its own (record checksums, page
 * hashes, manifest, the extras record) — none of it when `unchecked` (the canary
 * state-sync-unverified) — or why it cannot be. Remembered per snapshot object: verification and
 * installation read the same one.
 */
export function decodeExecutionSnapshot(snapshot: StateSnapshot, unchecked: boolean): { readonly ok: true; readonly data: ExecutionSnapshotData } | { readonly ok: false; readonly reason: string } {
  const key = unchecked ? "unchecked" : "checked";
  const known = decodedSnapshots.get(snapshot)?.[key];
  if (known !== undefined) return known;
  const result = readSnapshotFiles(snapshot, unchecked);
  decodedSnapshots.set(snapshot, { ...decodedSnapshots.get(snapshot), [key]: result });
  return result;
}

type DecodedSnapshot = ReturnType<typeof decodeExecutionSnapshot>;
const decodedSnapshots = new WeakMap<StateSnapshot, { readonly checked?: DecodedSnapshot; readonly unchecked?: DecodedSnapshot }>();

function readSnapshotFiles(snapshot: StateSnapshot, unchecked: boolean): DecodedSnapshot {
  const files = decodeCheckpointFiles(snapshot.data);
  if (!files.ok) return files;
  const disk = new CheckpointFilesDisk(files.value);
  const loaded = loadCheckpoint(disk, snapshot.height, { unchecked });
  if (!loaded.ok) return { ok: false, reason: `checkpoint ${snapshot.height}: ${loaded.reason}` };
  const extras = readRecord<CheckpointExtras>(disk, historyKey(snapshot.height), unchecked);
  if (extras === undefined || !extras.ok) return { ok: false, reason: extras === undefined ? "no extras record" : extras.reason };
  const { history, routing, stateHash } = extras.value as Partial<Record<keyof CheckpointExtras, unknown>>;
  const checkedHistory = ingressHistoryDataOf(history);
  if (!checkedHistory.ok) return checkedHistory;
  if (!(routing instanceof Uint8Array) || typeof stateHash !== "string") return { ok: false, reason: "extras record lacks routing state or state hash" };
  try {
    decodeRoutingState(routing);
  } catch (error) {
    // The routing decoder reads trusted bytes and asserts; a peer's bytes that fail it are refused.
    return { ok: false, reason: `routing state does not decode (${error instanceof Error ? error.message : String(error)})` };
  }
  return { ok: true, data: { subnet: { canisters: loaded.canisters, metadata: loaded.metadata }, history: checkedHistory.data, routing, stateHash: stateHash as HashHex } };
}
