// ExecutionLab: a single-replica, PocketIC-style driver of the execution layer (in the spirit of
// @dfinity/pic). It owns a set of canisters, a virtual clock and a FIFO of pending inter-canister
// messages, and exposes create / install / upgrade / update / query / snapshots / time.
//
// Two modes:
//  - direct (default): messages run one after another right away, each with the per-message
//    instruction limit; an update returns once its ingress message is answered. Its call tree
//    runs generation by generation (the messages one generation sends are the next), and each
//    generation after the first is a round of its own: the clock moves on by `roundIntervalNs`
//    and heartbeats and due global timers run before it, as between the rounds of a subnet;
//  - rounds (`new ExecutionLab({ rounds: APP_SUBNET_ROUND_CONFIG })`): every `tick()` is one
//    execution round of round.ts (credit scheduler, cores, round budget, deterministic time
//    slicing), and the clock moves on by `roundIntervalNs` after it; an update submits its
//    ingress message and ticks until it is answered; calls to the management canister go through
//    the subnet queue between rounds.
// Either way a call tree that is still not answered after `maxRoundsPerCall` rounds is given up
// with an error naming the bound (a canister that calls itself forever), never a message count.
import { INSPECT_MESSAGE_INSTRUCTION_LIMIT } from "./interfaces.ts";
export { INSPECT_MESSAGE_INSTRUCTION_LIMIT };
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import {
  ANONYMOUS_PRINCIPAL,
  canisterIdFromU64,
  canisterIdIndex,
  comparePrincipals,
  MANAGEMENT_CANISTER,
  principalText,
  RejectCode,
  type CallbackId,
  type CallOrigin,
  type CanisterId,
  type CanisterMessage,
  type CanisterSnapshot,
  type CanisterState,
  type ExecutionFees,
  type ExecutionParams,
  type ExecutionResult,
  type InstallMode,
  type OutgoingResponse,
  type PrincipalText,
  type Response,
} from "./interfaces.ts";
import { WasmExecutor } from "./executor.ts";
import * as lifecycle from "./lifecycle.ts";
import { executeManagementCall, type ManagementContext, type ManagementOutcome } from "./management.ts";
import { QueryCache } from "./query-cache.ts";
import { loadableExecution } from "./snapshot-transfer.ts";
import { withLoggedOutput } from "./canister-log.ts";
import { expireCallbacks, isExpiredRequest } from "./deadlines.ts";
import { hookDue } from "./low-wasm-memory.ts";
import type { ThresholdKey } from "./cycles-costs.ts";
import { Rng } from "../sim/rng.ts";
import { assert } from "../assert.ts";
import {
  asCanisterResponse,
  canisterNotFound,
  canisterNotRunningAtInduction,
  noRouteToCanister,
  stopCanisterTimedOut,
  userReject,
  type ErrorCode,
} from "./reject-codes.ts";
import {
  executeRound,
  initialRoundState,
  requestFrom,
  responseTo,
  withCanisters,
  type ExecutionRoundState,
  type InductedMessage,
  type RoundConfig,
  type RoundOutput,
} from "./round.ts";

/** Per-message budget without DTS on an application subnet (ic-protocol.md §4.1). */
export const DEFAULT_INSTRUCTION_LIMIT = 5_000_000_000n;
/** install_code budget (ic-protocol.md §4.1: 300 B on application subnets). */
export const DEFAULT_INSTALL_INSTRUCTION_LIMIT = 300_000_000_000n;
/**
 * Time between two execution rounds: about one block per second, the order of an IC application
 * subnet's block rate (and of the simulator's own subnets: a 1,000 ms block-maker unit delay,
 * 300 ms initial notary delay). Configurable: `LabOptions.roundIntervalNs`.
 */
export const DEFAULT_ROUND_INTERVAL_NS = 1_000_000_000n;
/** Default start time: 2025-01-01T00:00:00Z in ns (any fixed value keeps runs reproducible). */
export const DEFAULT_START_TIME_NS = 1_735_689_600_000_000_000n;
/** Default lab user: the self-authenticating principal of a fixed 32-byte key. */
export const DEFAULT_SENDER = principalText(Principal.selfAuthenticating(new Uint8Array(32).fill(7)).toText());

export class LabError extends Error {
  override readonly name = "LabError";
  constructor(
    readonly code: RejectCode,
    message: string,
    /** The IC's error code when the lab knows it (reject-codes.ts). */
    readonly errorCode?: ErrorCode,
  ) {
    super(message);
  }
}

/** Canister ids the lab's one subnet holds, as the first subnet of an IC: [0, 2^20) (routing table ranges of 1,048,576 ids). */
export const LAB_SUBNET_CANISTER_IDS = 1n << 20n;

export interface LabOptions {
  readonly startTimeNs?: bigint;
  readonly instructionLimit?: bigint;
  readonly installInstructionLimit?: bigint;
  readonly executor?: WasmExecutor;
  /** Query cache on/off (default on). */
  readonly queryCache?: boolean;
  /** Run messages in execution rounds (round.ts) with this configuration instead of directly. */
  readonly rounds?: RoundConfig;
  /** Give up on a call tree after this many rounds without an answer (default 1,000). */
  readonly maxRoundsPerCall?: number;
  /** Time between two execution rounds (default DEFAULT_ROUND_INTERVAL_NS, 1 s). */
  readonly roundIntervalNs?: bigint;
  /** Charge execution fees in cycles (e.g. APP_SUBNET_FEES); default: free. */
  readonly fees?: ExecutionFees;
  /** Seed of the randomness served by the management canister's raw_rand (default 0). */
  readonly seed?: number | bigint | string;
  /** Nodes of the lab's subnet, for the ic0.cost_* fees (default 13; ignored with `executor`). */
  readonly subnetSize?: number;
  /** Threshold keys for ic0.cost_sign_with_* / cost_vetkd_derive_key (default none; ignored with `executor`). */
  readonly thresholdKeys?: readonly ThresholdKey[];
}

export interface CallOptions {
  readonly caller?: PrincipalText;
}

export interface CallResult {
  readonly response: Response;
  /** Instructions of the top-level message (callbacks it caused are in `totalInstructions`). */
  readonly instructionsUsed: bigint;
  readonly totalInstructions: bigint;
  readonly debugLog: readonly string[];
  /** Served from the query cache (queries only). */
  readonly cached: boolean;
}

interface Pending {
  readonly target: CanisterId;
  readonly message: CanisterMessage;
}


export class ExecutionLab {
  readonly executor: WasmExecutor;
  private readonly canisters = new Map<CanisterId, CanisterState>();
  private readonly deleted = new Set<CanisterId>();
  private readonly queue: Pending[] = [];
  private readonly responses = new Map<string, OutgoingResponse>();
  private readonly queryCache = new QueryCache<CallResult>();
  private nextCanister = 0n;
  private nextIngress = 0n;
  private now: bigint;
  private readonly limit: bigint;
  private readonly installLimit: bigint;
  private readonly cacheEnabled: boolean;
  private totalInstructionsUsed = 0n;
  private readonly roundConfig: RoundConfig | undefined;
  private readonly fees: ExecutionFees | undefined;
  private readonly rng: Rng;
  private readonly maxRoundsPerCall: number;
  private readonly roundIntervalNs: bigint;
  private roundState: ExecutionRoundState | undefined;
  private roundNumber = 0;
  private inducted: InductedMessage[] = [];
  /** Rounds mode: the output of the latest round (executed messages, slices, per-core use). */
  lastRound: RoundOutput | undefined;

  constructor(options: LabOptions = {}) {
    this.executor = options.executor ?? new WasmExecutor(undefined, {
      ...(options.subnetSize === undefined ? {} : { subnetSize: options.subnetSize }),
      ...(options.thresholdKeys === undefined ? {} : { thresholdKeys: options.thresholdKeys }),
    });
    this.now = options.startTimeNs ?? DEFAULT_START_TIME_NS;
    this.limit = options.instructionLimit ?? DEFAULT_INSTRUCTION_LIMIT;
    this.installLimit = options.installInstructionLimit ?? DEFAULT_INSTALL_INSTRUCTION_LIMIT;
    this.cacheEnabled = options.queryCache ?? true;
    this.roundConfig = options.rounds;
    this.fees = options.fees;
    this.rng = Rng.fromSeed(options.seed ?? 0).fork("raw_rand");
    this.maxRoundsPerCall = options.maxRoundsPerCall ?? 1_000;
    this.roundIntervalNs = options.roundIntervalNs ?? DEFAULT_ROUND_INTERVAL_NS;
    if (this.roundIntervalNs < 0n) throw new RangeError(`roundIntervalNs must not be negative (got ${this.roundIntervalNs})`);
    if (!Number.isSafeInteger(this.maxRoundsPerCall) || this.maxRoundsPerCall < 1) throw new RangeError(`maxRoundsPerCall must be a positive integer (got ${this.maxRoundsPerCall})`);
  }

  /** Number of rounds executed so far (rounds mode). */
  get round(): number {
    return this.roundNumber;
  }

  // --- canisters ------------------------------------------------------------------------------

  createCanister(options: { controllers?: readonly PrincipalText[]; cycles?: bigint; sender?: PrincipalText } = {}): CanisterId {
    let id = canisterIdFromU64(this.nextCanister++);
    while (this.canisters.has(id) || this.deleted.has(id)) id = canisterIdFromU64(this.nextCanister++);
    const controllers = options.controllers ?? [options.sender ?? DEFAULT_SENDER];
    this.canisters.set(id, lifecycle.createCanister({ id, controllers, cycles: options.cycles ?? 100_000_000_000_000n }));
    return id;
  }

  canister(id: CanisterId): CanisterState {
    const c = this.canisters.get(id);
    if (c === undefined) {
      const notFound = canisterNotFound(id);
      throw new LabError(RejectCode.DestinationInvalid, this.deleted.has(id) ? `Canister ${id} was deleted` : notFound.description, notFound.code);
    }
    return c;
  }

  /** Canister ids in canonical order. */
  canisterIds(): CanisterId[] {
    return [...this.canisters.keys()].sort(comparePrincipals);
  }

  installCode(
    id: CanisterId,
    wasmModule: Uint8Array,
    options: {
      arg?: Uint8Array;
      mode?: InstallMode;
      sender?: PrincipalText;
      skipPreUpgrade?: boolean;
      wasmMemoryPersistence?: "keep" | "replace";
    } = {},
  ): { instructionsUsed: bigint; debugLog: readonly string[] } {
    const r = this.executor.installCode(
      this.canister(id),
      {
        mode: options.mode ?? "install",
        wasmModule,
        arg: options.arg ?? new Uint8Array(),
        sender: options.sender ?? DEFAULT_SENDER,
        ...(options.skipPreUpgrade === undefined ? {} : { skipPreUpgrade: options.skipPreUpgrade }),
        ...(options.wasmMemoryPersistence === undefined ? {} : { wasmMemoryPersistence: options.wasmMemoryPersistence }),
      },
      { instructionLimit: this.installLimit, timeNs: this.now },
    );
    this.totalInstructionsUsed += r.instructionsUsed;
    if (!r.ok) throw new LabError(r.code, r.message, r.errorCode);
    this.canisters.set(id, r.canister);
    for (const response of r.responses ?? []) this.route(response);
    return { instructionsUsed: r.instructionsUsed, debugLog: r.debugLog };
  }

  upgradeCanister(id: CanisterId, wasmModule: Uint8Array, options: { arg?: Uint8Array; sender?: PrincipalText } = {}) {
    return this.installCode(id, wasmModule, { ...options, mode: "upgrade" });
  }

  reinstallCode(id: CanisterId, wasmModule: Uint8Array, options: { arg?: Uint8Array; sender?: PrincipalText } = {}) {
    return this.installCode(id, wasmModule, { ...options, mode: "reinstall" });
  }

  private apply<T extends { canister: CanisterState }>(r: lifecycle.Outcome<T>): T {
    if (!r.ok) throw new LabError(r.code, r.message, r.errorCode);
    this.canisters.set(r.canister.id, r.canister);
    return r;
  }

  stopCanister(id: CanisterId, sender: PrincipalText = DEFAULT_SENDER): void {
    this.apply(lifecycle.stopCanister(this.canister(id), sender));
    this.drain();
  }

  startCanister(id: CanisterId, sender: PrincipalText = DEFAULT_SENDER): void {
    this.apply(lifecycle.startCanister(this.canister(id), sender));
  }

  deleteCanister(id: CanisterId, sender: PrincipalText = DEFAULT_SENDER): void {
    const r = lifecycle.checkDeletable(this.canister(id), sender);
    if (!r.ok) throw new LabError(r.code, r.message, r.errorCode);
    this.canisters.delete(id);
    this.deleted.add(id);
    this.executor.forget(id);
  }

  uninstallCode(id: CanisterId, sender: PrincipalText = DEFAULT_SENDER): void {
    const r = this.apply(lifecycle.uninstallCode(this.canister(id), sender));
    for (const response of r.responses) this.route(response);
  }

  // --- snapshots --------------------------------------------------------------------------------

  takeSnapshot(id: CanisterId, options: { sender?: PrincipalText; replaceSnapshot?: string } = {}): CanisterSnapshot {
    return this.apply(lifecycle.takeSnapshot(this.canister(id), options.sender ?? DEFAULT_SENDER, this.now, options.replaceSnapshot))
      .snapshot;
  }

  loadSnapshot(id: CanisterId, snapshotId: string, sender: PrincipalText = DEFAULT_SENDER): void {
    const canister = this.canister(id);
    const snapshot = canister.snapshots.find((s) => s.id === snapshotId);
    const loadable = snapshot === undefined || !canister.controllers.includes(sender) ? undefined : loadableExecution(snapshot, this.executor);
    if (loadable !== undefined && !loadable.ok) throw new LabError(loadable.code, loadable.message, loadable.errorCode);
    this.apply(lifecycle.loadSnapshot(canister, sender, snapshotId, loadable?.execution));
  }

  listSnapshots(id: CanisterId, sender: PrincipalText = DEFAULT_SENDER): readonly CanisterSnapshot[] {
    const r = lifecycle.listSnapshots(this.canister(id), sender);
    if (!r.ok) throw new LabError(r.code, r.message, r.errorCode);
    return r.snapshots;
  }

  deleteSnapshot(id: CanisterId, snapshotId: string, sender: PrincipalText = DEFAULT_SENDER): void {
    this.apply(lifecycle.deleteSnapshot(this.canister(id), sender, snapshotId));
  }

  // --- calls ------------------------------------------------------------------------------------

  /** An update call with raw argument bytes; runs every message it causes until it is answered. */
  updateRaw(id: CanisterId, method: string, arg: Uint8Array, options: CallOptions = {}): CallResult {
    const messageId = `ingress-${this.nextIngress++}`;
    const caller = options.caller ?? ANONYMOUS_PRINCIPAL;
    const before = this.totalInstructionsUsed;
    if (id === (MANAGEMENT_CANISTER as string)) return this.managementCall(caller, method, arg);
    const target = this.canister(id);
    const refused = (response: Response, instructionsUsed = 0n): CallResult => ({ response, instructionsUsed, totalInstructions: instructionsUsed, debugLog: [], cached: false });
    // Induction refuses a message to a canister that is not running (the IC's valid set rule).
    if (target.status !== "running") return refused(userReject(canisterNotRunningAtInduction(id, target.status)));
    // Ingress inspection happens before the message is accepted into the subnet (spec "Ingress
    // message inspection"); a refusal never reaches execution.
    const inspect = this.executor.inspectMessage(target, { caller, method, arg }, {
      instructionLimit: INSPECT_MESSAGE_INSTRUCTION_LIMIT,
      timeNs: this.now,
    });
    if (inspect.refusal !== undefined && target.execution !== undefined) return refused(userReject(inspect.refusal), inspect.instructionsUsed);
    const message: CanisterMessage = { kind: "ingress", messageId, caller, method, arg };
    let first: { instructionsUsed: bigint; debugLog: readonly string[] };
    if (this.roundConfig === undefined) {
      first = this.run(id, message);
      this.runGenerations(() => this.responses.has(messageId));
    } else {
      this.inducted.push({ canister: id, message });
      first = { instructionsUsed: 0n, debugLog: [] };
      for (let n = 0; n < this.maxRoundsPerCall && !this.responses.has(messageId); n++) {
        this.tick();
        const done = this.lastRound?.executed.find((e) => e.message === message);
        if (done !== undefined) first = { instructionsUsed: done.instructionsUsed, debugLog: [] };
      }
    }
    const answer = this.responses.get(messageId);
    this.responses.delete(messageId);
    if (answer === undefined) {
      throw new LabError(RejectCode.SysTransient, `ingress ${messageId} to ${id}.${method} was not answered after ${this.maxRoundsPerCall} rounds (LabOptions.maxRoundsPerCall)`);
    }
    return {
      response: answer.response,
      instructionsUsed: first.instructionsUsed,
      totalInstructions: this.totalInstructionsUsed - before,
      debugLog: first.debugLog,
      cached: false,
    };
  }

  /** A query with raw argument bytes (cached by canister, method, argument, caller). */
  queryRaw(id: CanisterId, method: string, arg: Uint8Array, options: CallOptions = {}): CallResult {
    const caller = options.caller ?? ANONYMOUS_PRINCIPAL;
    const canister = this.canister(id);
    if (canister.execution?.exports.includes(`canister_composite_query ${method}`)) {
      // A composite query depends on other canisters too: run its call tree, never cache it.
      const r = this.executor.executeQueryTree((x) => this.canisters.get(x), id, { kind: "query", caller, method, arg }, this.params());
      return { response: r.response, instructionsUsed: r.instructionsUsed, totalInstructions: r.instructionsUsed, debugLog: r.debugLog, cached: false };
    }
    const key = { canister: id, method, arg, caller };
    if (this.cacheEnabled) {
      const hit = this.queryCache.get(key, canister, this.now);
      if (hit !== undefined) return { ...hit, cached: true };
    }
    const r = this.executor.executeMessage(canister, { kind: "query", caller, method, arg }, this.params());
    const response = r.responses[0]?.response;
    assert(response !== undefined, `query ${id}.${method} produced no answer`);
    const result: CallResult = {
      response,
      instructionsUsed: r.instructionsUsed,
      totalInstructions: r.instructionsUsed,
      debugLog: r.debugLog,
      cached: false,
    };
    if (this.cacheEnabled) this.queryCache.set(key, canister, this.now, r.readTime, result);
    return result;
  }

  /** Candid update: encodes `args` with `argTypes`, decodes the reply with `retTypes`. */
  update(id: CanisterId, method: string, argTypes: IDL.Type[], args: unknown[], retTypes: IDL.Type[], options: CallOptions = {}): unknown[] {
    return decodeReply(this.updateRaw(id, method, IDL.encode(argTypes, args), options), retTypes, method);
  }

  /** Candid query. */
  query(id: CanisterId, method: string, argTypes: IDL.Type[], args: unknown[], retTypes: IDL.Type[], options: CallOptions = {}): unknown[] {
    return decodeReply(this.queryRaw(id, method, IDL.encode(argTypes, args), options), retTypes, method);
  }

  // --- time and rounds ----------------------------------------------------------------------------

  get timeNs(): bigint {
    return this.now;
  }

  /** Sets the clock (never backwards: batch time is monotonic). */
  setTime(ns: bigint): void {
    if (ns < this.now) throw new RangeError(`time only moves forward (${ns} < ${this.now})`);
    this.now = ns;
  }

  advanceTime(ns: bigint): void {
    if (ns < 0n) throw new RangeError("time only moves forward");
    this.now += ns;
  }

  /**
   * One round: heartbeats and due global timers of every running canister (in canister id order),
   * then every message they cause. Returns the instructions used.
   */
  tick(): bigint {
    if (this.roundConfig !== undefined) return this.tickRound(this.roundConfig);
    const before = this.totalInstructionsUsed;
    this.timeOutDirect();
    this.runSystemTasks();
    this.drain();
    for (const id of this.canisterIds()) this.canisters.set(id, lifecycle.finalizeStopping(this.canister(id)));
    return this.totalInstructionsUsed - before;
  }

  /**
   * Direct mode, at the start of a round (before its tasks and messages, as round.ts does): a
   * best-effort request still waiting past its deadline is dropped unexecuted, and every expired
   * callback without a response on its way gets its SYS_UNKNOWN reject (deadlines.ts).
   */
  private timeOutDirect(): void {
    const kept = this.queue.filter((p) => !isExpiredRequest(p.message, this.now));
    this.queue.splice(0, this.queue.length, ...kept);
    for (const id of this.canisterIds()) {
      const canister = this.canister(id);
      if (!canister.callbacks.some((cb) => cb.deadlineNs !== undefined && cb.expired !== true)) continue;
      const answered = (cb: CallbackId): boolean => this.queue.some((p) => p.target === id && p.message.kind === "response" && p.message.callbackId === cb);
      const expired = expireCallbacks(canister, this.now, answered);
      this.canisters.set(id, expired.canister);
      for (const message of expired.responses) this.queue.push({ target: id, message });
    }
  }

  /** Direct mode, at the start of a round: heartbeats and due global timers, in canister id order. */
  private runSystemTasks(): void {
    for (const id of this.canisterIds()) {
      const c = this.canister(id);
      if (c.status !== "running" || c.execution === undefined) continue;
      if (hookDue(c)) this.run(id, { kind: "on-low-wasm-memory" });
      if (this.canister(id).execution?.exports.includes("canister_heartbeat") === true) this.run(id, { kind: "heartbeat" });
      const now = this.canister(id);
      if (now.globalTimerNs !== 0n && now.globalTimerNs <= this.now && now.execution?.exports.includes("canister_global_timer")) {
        this.run(id, { kind: "global-timer" });
      }
    }
  }

  /** One execution round of round.ts: system tasks and queued messages are inducted first. */
  private tickRound(config: RoundConfig): bigint {
    const messages = this.inducted;
    this.inducted = [];
    for (const id of this.canisterIds()) {
      const c = this.canister(id);
      if (c.status !== "running" || c.execution === undefined) continue;
      if (c.execution.exports.includes("canister_heartbeat")) messages.push({ canister: id, message: { kind: "heartbeat" } });
      if (c.globalTimerNs !== 0n && c.globalTimerNs <= this.now && c.execution.exports.includes("canister_global_timer")) {
        messages.push({ canister: id, message: { kind: "global-timer" } });
      }
    }
    const live = [...this.canisters.values()];
    const base = this.roundState ?? initialRoundState(live);
    const state = withCanisters({ ...base, canisters: base.canisters.filter((c) => this.canisters.has(c.id)) }, live);
    const out = executeRound(this.executor, config, state, {
      round: ++this.roundNumber,
      timeNs: this.now,
      messages: messages.filter((m) => this.canisters.has(m.canister)),
      isCheckpointRound: false,
    });
    this.lastRound = out;
    this.roundState = out.state;
    for (const c of out.state.canisters) this.canisters.set(c.id, lifecycle.finalizeStopping(c));
    let used = 0n;
    for (const e of out.executed) used += e.instructionsUsed;
    this.totalInstructionsUsed += used;
    for (const r of out.ingressResponses) this.route(r);
    for (const { from, call } of out.remoteCalls) {
      // The management canister's calls go through the subnet queue between rounds; every other
      // canister of the lab is on this subnet, so the rest go to canisters that do not exist.
      if (call.callee === (MANAGEMENT_CANISTER as string)) this.runSubnetCall(from, call);
      else this.inducted.push({ canister: from, message: responseTo(callerOrigin(from, call), { response: missingCallee(call.callee), refundedCycles: call.cycles }) });
    }
    this.now += this.roundIntervalNs;
    return used;
  }

  /** A canister's call to the management canister: executed at once, its answer routed back to the caller. */
  private runSubnetCall(caller: CanisterId, call: { readonly callbackId: CallbackId; readonly method: string; readonly arg: Uint8Array; readonly cycles: bigint }): void {
    const out = this.applyManagement(executeManagementCall(this.managementContext(), caller as string as PrincipalText, call.method, call.arg, call.cycles));
    const response = asCanisterResponse(out.response ?? userReject(stopCanisterTimedOut));
    this.route({ origin: { kind: "canister", caller, callbackId: call.callbackId }, response, refundedCycles: 0n });
  }

  /** Query cache counters (hits, misses, invalidations). */
  get queryCacheStats(): { readonly hits: number; readonly misses: number; readonly invalidations: number } {
    return { ...this.queryCache.stats };
  }

  /** Total instructions executed by this lab so far (install_code included). */
  get instructionsUsed(): bigint {
    return this.totalInstructionsUsed;
  }

  cyclesBalance(id: CanisterId): bigint {
    return this.canister(id).cyclesBalance;
  }

  /** Tops up a canister (like the cycles ledger / provisional_top_up_canister). */
  addCycles(id: CanisterId, amount: bigint): bigint {
    if (amount < 0n) throw new RangeError("cannot add a negative amount of cycles");
    const c = this.canister(id);
    this.canisters.set(id, { ...c, cyclesBalance: c.cyclesBalance + amount });
    return c.cyclesBalance + amount;
  }

  setControllers(id: CanisterId, controllers: readonly PrincipalText[], sender: PrincipalText = DEFAULT_SENDER): void {
    this.apply(lifecycle.setControllers(this.canister(id), sender, controllers));
  }

  // --- management canister ---------------------------------------------------------------------------

  private managementContext(): ManagementContext {
    return {
      executor: this.executor,
      installParams: { instructionLimit: this.installLimit, timeNs: this.now },
      nowNs: this.now,
      canister: (id) => this.canisters.get(id),
      newCanisterId: () => {
        let id = canisterIdFromU64(this.nextCanister++);
        while (this.canisters.has(id) || this.deleted.has(id)) id = canisterIdFromU64(this.nextCanister++);
        return id;
      },
      drawRawRand: () => {
        const out = new Uint8Array(32);
        const view = new DataView(out.buffer);
        for (let i = 0; i < 8; i++) view.setUint32(i * 4, this.rng.nextU32());
        return out;
      },
    };
  }

  private applyManagement(out: ManagementOutcome): ManagementOutcome {
    this.totalInstructionsUsed += out.instructionsUsed;
    for (const c of out.updated) this.canisters.set(c.id, c);
    for (const id of out.deleted) {
      this.canisters.delete(id);
      this.deleted.add(id);
      this.executor.forget(id);
    }
    for (const r of out.responses) this.route(r);
    return out;
  }

  /** An ingress call to the management canister (aaaaa-aa), Candid in and out. */
  private managementCall(caller: PrincipalText, method: string, arg: Uint8Array): CallResult {
    const out = this.applyManagement(executeManagementCall(this.managementContext(), caller, method, arg));
    let response = out.response;
    if (response === undefined) {
      // stop_canister with open call contexts: run what is pending, then check again.
      this.drain();
      for (const id of this.canisterIds()) this.canisters.set(id, lifecycle.finalizeStopping(this.canister(id)));
      const stopped = out.updated.every((c) => this.canister(c.id).status === "stopped");
      response = stopped
        ? { kind: "reply", data: IDL.encode([], []) }
        : userReject(stopCanisterTimedOut);
    }
    return { response, instructionsUsed: out.instructionsUsed, totalInstructions: out.instructionsUsed, debugLog: [], cached: false };
  }

  // --- internals ------------------------------------------------------------------------------------

  private params(): ExecutionParams {
    return { instructionLimit: this.limit, timeNs: this.now, ...(this.fees === undefined ? {} : { fees: this.fees }) };
  }

  private run(id: CanisterId, message: CanisterMessage): ExecutionResult {
    // As the replica's task queue: a Ready low-memory hook runs before the canister's next message.
    if (message.kind !== "on-low-wasm-memory" && hookDue(this.canister(id))) this.run(id, { kind: "on-low-wasm-memory" });
    const r = withLoggedOutput(this.executor.executeMessage(this.canister(id), message, this.params()), this.now);
    this.totalInstructionsUsed += r.instructionsUsed;
    this.canisters.set(id, r.canister);
    for (const call of r.outgoingCalls) this.queue.push({ target: call.callee, message: requestFrom(id, call) });
    for (const response of r.responses) this.route(response);
    return r;
  }

  private route(response: OutgoingResponse): void {
    const origin = response.origin;
    switch (origin.kind) {
      case "ingress":
        this.responses.set(origin.messageId, response);
        return;
      case "canister": {
        const message = responseTo(origin, response);
        // Rounds mode inducts it into the next round; direct mode runs it in the next generation.
        if (this.roundConfig === undefined) this.queue.push({ target: origin.caller, message });
        else this.inducted.push({ canister: origin.caller, message });
        return;
      }
      case "query":
      case "system":
        return;
    }
  }

  /** Direct mode: executes queued inter-canister messages, generation by generation, until none is left. */
  drain(): void {
    this.runGenerations(() => true);
  }

  /**
   * Direct mode: runs the queued messages generation by generation (the messages one generation
   * sends are the next). The first generation runs in the round of the message that sent it.
   * While `answered()` is false — a caller waits for its update — each later generation is a round
   * of its own: the clock moves on by `roundIntervalNs` and heartbeats and due global timers run
   * first, as between the rounds of a subnet, so a canister waiting for its own timer sees it
   * fire. Once answered, the rest of the tree runs without further rounds (as `tick()` does).
   */
  private runGenerations(answered: () => boolean): void {
    for (let generation = 0; this.queue.length > 0; generation++) {
      if (generation >= this.maxRoundsPerCall) {
        throw new LabError(RejectCode.SysTransient, `${this.queue.length} messages still in flight after ${this.maxRoundsPerCall} rounds (LabOptions.maxRoundsPerCall): does a canister call itself forever?`);
      }
      if (generation > 0 && !answered()) {
        this.now += this.roundIntervalNs;
        this.timeOutDirect();
        this.runSystemTasks();
      }
      for (const next of this.queue.splice(0)) this.deliverQueued(next);
    }
  }

  private deliverQueued(next: Pending): void {
    if (next.target === (MANAGEMENT_CANISTER as string) && next.message.kind === "request") {
      const req = next.message;
      this.runSubnetCall(req.caller, { callbackId: req.callerCallbackId, method: req.method, arg: req.arg, cycles: req.cycles });
      return;
    }
    if (!this.canisters.has(next.target)) {
      if (next.message.kind === "request") {
        this.route({
          origin: requestOrigin(next.message),
          response: missingCallee(next.target),
          refundedCycles: next.message.cycles,
        });
      }
      return;
    }
    const status = this.canister(next.target).status;
    if (next.message.kind === "request" && status !== "running") {
      // Induction refuses a request to a canister that is not running (StateError's display).
      this.route({
        origin: requestOrigin(next.message),
        response: { kind: "reject", code: RejectCode.CanisterError, message: canisterNotRunningAtInduction(next.target, status).description },
        refundedCycles: next.message.cycles,
      });
      return;
    }
    this.run(next.target, next.message);
  }
}

/** Who waits for a request's answer (with the call's deadline when it is a best-effort call). */
function requestOrigin(request: Extract<CanisterMessage, { kind: "request" }>): Extract<CallOrigin, { kind: "canister" }> {
  return callerOrigin(request.caller, { callbackId: request.callerCallbackId, ...(request.deadlineNs === undefined ? {} : { deadlineNs: request.deadlineNs }) });
}

function callerOrigin(caller: CanisterId, call: { readonly callbackId: CallbackId; readonly deadlineNs?: bigint }): Extract<CallOrigin, { kind: "canister" }> {
  return { kind: "canister", caller, callbackId: call.callbackId, ...(call.deadlineNs === undefined ? {} : { deadlineNs: call.deadlineNs }) };
}

/**
 * What a canister gets for a call to a canister the lab does not hold: "not found" inside the lab
 * subnet's id range, "No route" outside it (the IC's induction and stream builder).
 */
function missingCallee(callee: CanisterId): Response {
  const index = canisterIdIndex(callee);
  if (index === undefined || index >= LAB_SUBNET_CANISTER_IDS) return noRouteToCanister(callee);
  // Induction's refusal is StateError's display: no error code in front.
  return { kind: "reject", code: RejectCode.DestinationInvalid, message: canisterNotFound(callee).description };
}

function decodeReply(r: CallResult, retTypes: IDL.Type[], method: string): unknown[] {
  if (r.response.kind === "reject") {
    const code = r.response.errorCode === undefined ? `${r.response.code}` : `${r.response.code}, ${r.response.errorCode}`;
    throw new LabError(r.response.code, `${method} rejected (code ${code}): ${r.response.message}`, r.response.errorCode);
  }
  return IDL.decode(retTypes, r.response.data) as unknown[];
}

export { MANAGEMENT_CANISTER };
