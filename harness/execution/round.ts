// One execution round (`execute_round`, research/ic-protocol.md §4.2) and its inner iterations
// (§4.4), on top of the credit scheduler (scheduler.ts), deferred-commit time slicing (dts.ts) and
// any CanisterExecutor (interfaces.ts; WasmExecutor in production, a model in some tests).
//
// Round: heartbeat / global-timer tasks → heap-delta gate → plan (priorities, cores; canisters
// over their heap-delta debit are skipped) → iterations: every core runs its canisters in order
// with a copy of the remaining budget (a core and an iteration also stop at 200 MB of heap delta);
// the round budget drops by the largest amount any core used; same-subnet requests/responses are
// inducted between iterations → charge priorities → abort paused executions (all of them in a
// checkpoint round, those beyond the limit otherwise) → debits shrink by the rate limit.
// Not modelled here: subnet (management canister) messages and long install_code executions,
// ingress expiry, resource charging, the NextScheduledMethod rotation (tasks always go first).
// Cores are simulated one after another; that is equivalent to running them in parallel because a
// canister is on one core only and messages between canisters move only between iterations.
// A round visits only the canisters with queued messages, long executions, tasks (heartbeat and
// timer candidates come from canister-activity.ts) or changes of its own — never all of them — so
// it costs what the busy canisters cost on a subnet of any size.
import { assert } from "../assert.ts";
import { canisterStateHash } from "../state/canister-codec.ts";
import { compareCanisterIds } from "../state/canister-order.ts";
import { ByteReader, ByteWriter } from "../state/encoding.ts";
import { BoundedMap } from "../memo.ts";
import { heapDeltaBytes, type CommitResult, type StateManager } from "../state/state-manager.ts";
import { continueSliced, startSliced, type PausedExecution, type SliceStep } from "./dts.ts";
import { CanisterActivity } from "./canister-activity.ts";
import { withLoggedOutput } from "./canister-log.ts";
import { CanisterInputQueues } from "./input-queue.ts";
import { expireCallbacks, isExpiredRequest } from "./deadlines.ts";
import { hookDue } from "./low-wasm-memory.ts";
import {
  RejectCode,
  type CallbackId,
  type CallOrigin,
  type CanisterExecutor,
  type CanisterId,
  type CanisterMessage,
  type CanisterState,
  type ExecutionOutcome,
  type ExecutionResult,
  type OutgoingCall,
  type OutgoingResponse,
  type PrincipalText,
} from "./interfaces.ts";
import {
  APP_SUBNET_SCHEDULER_CONFIG,
  coreRoundBudget,
  finishRound,
  planRound,
  reconcileSchedulingStates,
  SchedulingStates,
  type CanisterSchedulingState,
  type CanisterWork,
  type SchedulerConfig,
} from "./scheduler.ts";

const GiB = 1024 ** 3;

export interface RoundConfig {
  readonly scheduler: SchedulerConfig;
  /** Time slicing on (update-like messages may use maxInstructionsPerMessage over several rounds). */
  readonly dtsEnabled: boolean;
  /** Subnet heap delta capacity and burst reserve (§4.1: 140 GiB, 32 GiB). */
  readonly heapDeltaCapacityBytes: number;
  readonly heapDeltaInitialReserveBytes: number;
  /** Checkpoint interval, used by the heap-delta gate's schedule (§4.2 step 3). */
  readonly checkpointIntervalRounds: number;
  /** Safety bound on inner iterations per round. */
  readonly maxIterations: number;
  /**
   * Per-canister heap delta rate limit (§4.6; app subnet 75 MiB): a canister's debit grows by the
   * pages it writes, shrinks by this much per round, and the canister is skipped while it is ≥ this.
   * Default 75 MiB.
   */
  readonly heapDeltaRateLimitBytes?: number;
  /** An iteration (and a core within it) stops once this much heap delta was produced. Default 200 MB. */
  readonly maxHeapDeltaPerIterationBytes?: number;
  readonly subnetId?: PrincipalText;
}

export const APP_SUBNET_ROUND_CONFIG: RoundConfig = {
  scheduler: APP_SUBNET_SCHEDULER_CONFIG,
  dtsEnabled: true,
  heapDeltaCapacityBytes: 140 * GiB,
  heapDeltaInitialReserveBytes: 32 * GiB,
  checkpointIntervalRounds: 500,
  maxIterations: 100,
  heapDeltaRateLimitBytes: 75 * 1024 * 1024,
  maxHeapDeltaPerIterationBytes: 200_000_000,
};

const DEFAULT_HEAP_DELTA_RATE_LIMIT_BYTES = 75 * 1024 * 1024;
const DEFAULT_MAX_HEAP_DELTA_PER_ITERATION_BYTES = 200_000_000;
const PAGE_BYTES = 4096;

export interface HeapDeltaDebit {
  readonly id: CanisterId;
  readonly bytes: number;
}

export interface QueuedMessages {
  readonly id: CanisterId;
  /** Canonical order (input-queue.ts): a resumed message first, then each source's queue in key order. */
  readonly messages: readonly CanisterMessage[];
  /** The source served last (the round-robin point); absent before the first pop. */
  readonly lastSource?: string;
}

/** Replicated execution state of a subnet (besides what lives inside each CanisterState). */
export interface ExecutionRoundState {
  /** Sorted by compareCanisterIds. */
  readonly canisters: readonly CanisterState[];
  /** Input queues, sorted by canister id, non-empty only. */
  readonly queues: readonly QueuedMessages[];
  /** The scheduler's per-canister state, same canisters as `canisters` once a round ran. */
  readonly scheduling: SchedulingStates;
  /** Long executions in progress, by canister id. Their canisters show the pre-message state. */
  readonly paused: readonly PausedExecution[];
  /** Canisters whose long execution was aborted; the message is at the front of their queue. */
  readonly aborted: readonly CanisterId[];
  /** Heap delta debits (§4.6), non-zero only, by canister id. Absent = none. */
  readonly heapDeltaDebits?: readonly HeapDeltaDebit[];
}

export interface InductedMessage {
  readonly canister: CanisterId;
  readonly message: CanisterMessage;
}

export interface RoundInput {
  readonly round: number;
  /** Batch time; `ic0.time`. */
  readonly timeNs: bigint;
  /** Messages inducted into input queues before the round, in induction order. */
  readonly messages: readonly InductedMessage[];
  /** The state manager will checkpoint after this round: paused executions are aborted. */
  readonly isCheckpointRound: boolean;
  /** Heap delta since the last checkpoint (state manager), for the gate. Default 0. */
  readonly heapDeltaEstimateBytes?: number;
  readonly roundsUntilCheckpoint?: number;
}

export interface ExecutedMessage {
  readonly canister: CanisterId;
  readonly message: CanisterMessage;
  readonly outcome: ExecutionOutcome;
  /** Total instructions of the message (all slices). */
  readonly instructionsUsed: bigint;
  readonly startedRound: number;
  readonly committedRound: number;
  readonly slices: number;
}

export interface RoundOutput {
  readonly state: ExecutionRoundState;
  /** Messages whose effects became visible in this round, in commit order. */
  readonly executed: readonly ExecutedMessage[];
  /** Responses for ingress messages (ingress history), in commit order. */
  readonly ingressResponses: readonly OutgoingResponse[];
  /** Calls and responses addressed to canisters not on this subnet (for the XNet streams). */
  readonly remoteCalls: readonly { readonly from: CanisterId; readonly call: OutgoingCall }[];
  readonly remoteResponses: readonly { readonly from: CanisterId; readonly response: OutgoingResponse }[];
  /** Paused executions aborted at the end of this round. */
  readonly aborted: readonly CanisterId[];
  /** The heap-delta gate stopped all canister execution this round. */
  readonly skippedForHeapDelta: boolean;
  /** Instructions charged per core in this round (slices and overheads included). */
  readonly instructionsPerCore: readonly bigint[];
  readonly iterations: number;
  /**
   * Canisters that still had work and did not get a full round (not charged by the scheduler), in
   * id order; every other canister had a full round. Empty when the heap-delta gate skipped the round.
   */
  readonly notFullyExecuted: readonly CanisterId[];
}

// ---------------------------------------------------------------------------------------------

const byId = <T extends { readonly id: CanisterId }>(xs: readonly T[]): T[] => [...xs].sort((a, b) => compareCanisterIds(a.id, b.id));

export function initialRoundState(canisters: readonly CanisterState[]): ExecutionRoundState {
  const sorted = byId(canisters);
  return { canisters: sorted, queues: [], scheduling: reconcileSchedulingStates(SchedulingStates.EMPTY, sorted), paused: [], aborted: [] };
}

/** Adds or replaces canisters (install, create) keeping scheduling states consistent. */
export function withCanisters(state: ExecutionRoundState, canisters: readonly CanisterState[]): ExecutionRoundState {
  const map = new Map(state.canisters.map((c) => [c.id, c]));
  for (const c of canisters) map.set(c.id, c);
  const sorted = byId([...map.values()]);
  return { ...state, canisters: sorted, scheduling: reconcileSchedulingStates(state.scheduling, sorted) };
}

const isDtsMessage = (m: CanisterMessage): boolean => m.kind !== "query";

/** §4.2 step 3: scheduled_limit = capacity − (capacity − reserve) × rounds_left / (interval + 1). */
export function heapDeltaScheduledLimitBytes(config: RoundConfig, roundsUntilCheckpoint: number): number {
  const cap = BigInt(config.heapDeltaCapacityBytes);
  const reserve = BigInt(config.heapDeltaInitialReserveBytes);
  const limit = cap - ((cap - reserve) * BigInt(roundsUntilCheckpoint)) / BigInt(config.checkpointIntervalRounds + 1);
  return Number(limit);
}

/**
 * The round's canisters: the state's array (never modified) plus the ones this round replaced.
 * Lookups go through the scheduling states' id index (same canisters, same order), so starting a
 * round does not copy or index every canister.
 */
class CanisterTable {
  private readonly replaced = new Map<CanisterId, CanisterState>();

  constructor(
    readonly base: readonly CanisterState[],
    private readonly scheduling: SchedulingStates,
  ) {}

  has(id: CanisterId): boolean {
    return this.scheduling.indexOf(id) !== undefined;
  }

  get(id: CanisterId): CanisterState | undefined {
    const replaced = this.replaced.get(id);
    if (replaced !== undefined) return replaced;
    const index = this.scheduling.indexOf(id);
    return index === undefined ? undefined : this.base[index];
  }

  set(id: CanisterId, canister: CanisterState): void {
    assert(canister.id === id && this.has(id), `canister ${id} is not on this subnet`);
    this.replaced.set(id, canister);
  }

  /**
   * `ids` (canisters of the subnet, each once) in canister id order: sorted by their position in
   * the id-ordered array, which is compareCanisterIds order without decoding any principal.
   */
  inIdOrder(ids: Iterable<CanisterId>): CanisterId[] {
    const indices: number[] = [];
    for (const id of ids) {
      const index = this.scheduling.indexOf(id);
      assert(index !== undefined, `canister ${id} is not on this subnet`);
      indices.push(index);
    }
    return indices.sort((a, b) => a - b).map((i) => this.base[i]!.id);
  }

  /** Ids of the canisters this round replaced (in no particular order). */
  replacedIds(): IterableIterator<CanisterId> {
    return this.replaced.keys();
  }

  /** The replaced canisters that differ from the round's start, in id order. */
  changes(): { readonly before: CanisterState; readonly after: CanisterState }[] {
    return this.inIdOrder(this.replaced.keys())
      .map((id) => ({ before: this.base[this.scheduling.indexOf(id)!]!, after: this.replaced.get(id)! }))
      .filter(({ before, after }) => before !== after);
  }

  /** All canisters in id order: the state's own array when nothing changed, else a patched copy. */
  toArray(changes: readonly { readonly before: CanisterState; readonly after: CanisterState }[]): readonly CanisterState[] {
    if (changes.length === 0) return this.base;
    const out = this.base.slice();
    for (const { after } of changes) out[this.scheduling.indexOf(after.id)!] = after;
    return out;
  }
}

/** Mutable working copy of the round state (local to executeRound). */
class Work {
  readonly canisters: CanisterTable;
  /** Heartbeats, timers, deadlines and hooks of the round's starting canisters. */
  readonly activity: CanisterActivity;
  readonly queues = new Map<CanisterId, CanisterInputQueues>();
  /** Heartbeat / global-timer tasks of this round (§4.4 step 2); dropped at the end of the round. */
  readonly tasks = new Map<CanisterId, CanisterMessage[]>();
  readonly paused: Map<CanisterId, PausedExecution>;
  readonly aborted: Set<CanisterId>;
  readonly executed: ExecutedMessage[] = [];
  readonly ingressResponses: OutgoingResponse[] = [];
  readonly remoteCalls: { from: CanisterId; call: OutgoingCall }[] = [];
  readonly remoteResponses: { from: CanisterId; response: OutgoingResponse }[] = [];
  /** Local messages produced in this iteration, inducted before the next one. */
  pendingLocal: InductedMessage[] = [];
  readonly debits: Map<CanisterId, number>;
  /** Heap delta committed so far in this round (bytes); iterations and cores measure differences. */
  deltaBytes = 0;

  /** `scheduling` holds exactly the canisters of `state.canisters`, in the same order. */
  constructor(state: ExecutionRoundState, scheduling: SchedulingStates) {
    this.canisters = new CanisterTable(state.canisters, scheduling);
    this.activity = CanisterActivity.of(state.canisters);
    // Queues, paused executions and debits of canisters that no longer exist (deleted) are dropped.
    this.paused = new Map(state.paused.filter((p) => this.canisters.has(p.canister)).map((p) => [p.canister, p]));
    this.aborted = new Set(state.aborted.filter((id) => this.canisters.has(id)));
    for (const q of state.queues) {
      if (this.canisters.has(q.id)) this.queues.set(q.id, CanisterInputQueues.from(q.messages, q.lastSource, this.aborted.has(q.id)));
    }
    this.debits = new Map((state.heapDeltaDebits ?? []).filter((d) => this.canisters.has(d.id)).map((d) => [d.id, d.bytes]));
  }

  enqueue(canister: CanisterId, message: CanisterMessage, front = false): void {
    let q = this.queues.get(canister);
    if (q === undefined) this.queues.set(canister, (q = new CanisterInputQueues()));
    q.push(message, front);
  }

  /**
   * Every canister that may have work (a superset of those for which hasWork holds), in id order:
   * work comes from a long execution, a queue, a task, or a due low-memory hook — which a canister
   * has only if it had it at the start of the round or an execution of this round changed it.
   */
  mayHaveWork(): CanisterId[] {
    const ids = new Set<CanisterId>([...this.paused.keys(), ...this.aborted, ...this.queues.keys(), ...this.tasks.keys(), ...this.activity.hookReady, ...this.canisters.replacedIds()]);
    return this.canisters.inIdOrder(ids);
  }

  hasWork(id: CanisterId): boolean {
    return this.paused.has(id) || (this.queues.get(id)?.size ?? 0) > 0 || (this.tasks.get(id)?.length ?? 0) > 0 || this.hookDue(id);
  }

  /** The low-memory hook is Ready (low-wasm-memory.ts): the canister's next execution runs it. */
  private hookDue(id: CanisterId): boolean {
    const c = this.canisters.get(id);
    return c !== undefined && hookDue(c);
  }

  /** Over its heap-delta debit (§4.6): skipped this round. */
  rateLimited(id: CanisterId, limitBytes: number): boolean {
    return (this.debits.get(id) ?? 0) >= limitBytes;
  }

  /**
   * Next thing to run: the low-memory hook once it is Ready (the replica's task queue puts it in
   * front, also when an execution of this round made it Ready), then this round's tasks, then the
   * input queue.
   */
  nextMessage(id: CanisterId): CanisterMessage | undefined {
    if (!this.aborted.has(id) && this.hookDue(id)) return { kind: "on-low-wasm-memory" };
    const tasks = this.tasks.get(id);
    if (tasks !== undefined && tasks.length > 0) return tasks.shift();
    return this.queues.get(id)?.pop();
  }

  /** Makes a finished message's effects visible and routes its outputs. */
  commit(id: CanisterId, message: CanisterMessage, result: ExecutionResult, startedRound: number, round: number, slices: number): void {
    this.canisters.set(id, result.canister);
    const delta = result.heapDeltaPages * PAGE_BYTES;
    this.deltaBytes += delta;
    if (delta > 0) this.debits.set(id, (this.debits.get(id) ?? 0) + delta);
    this.executed.push({ canister: id, message, outcome: result.outcome, instructionsUsed: result.instructionsUsed, startedRound, committedRound: round, slices });
    for (const r of result.responses) {
      if (r.origin.kind === "ingress") this.ingressResponses.push(r);
      else if (r.origin.kind === "canister") {
        const response: CanisterMessage = responseTo(r.origin, r);
        if (this.canisters.has(r.origin.caller)) this.pendingLocal.push({ canister: r.origin.caller, message: response });
        else this.remoteResponses.push({ from: id, response: r });
      }
    }
    for (const call of result.outgoingCalls) {
      if (this.canisters.has(call.callee)) {
        this.pendingLocal.push({
          canister: call.callee,
          message: requestFrom(id, call),
        });
      } else this.remoteCalls.push({ from: id, call });
    }
  }

  /**
   * The start of a round, before induction (the IC's state machine times out messages, then
   * callbacks, then inducts): best-effort requests still waiting past their deadline leave the
   * input queues unexecuted, and expired callbacks get their SYS_UNKNOWN reject (deadlines.ts).
   * A canister with a paused long execution is left for a later round: its held result was
   * computed from the state before, and marking its callbacks now would be lost at commit.
   */
  timeOut(nowNs: bigint): void {
    for (const q of this.queues.values()) q.dropWhere((m) => isExpiredRequest(m, nowNs));
    for (const id of this.canisters.inIdOrder(this.activity.deadlines)) {
      const canister = this.canisters.get(id)!;
      if (this.paused.has(id) || !canister.callbacks.some((cb) => cb.deadlineNs !== undefined && cb.expired !== true)) continue;
      const queue = this.queues.get(id);
      const expired = expireCallbacks(canister, nowNs, (cb) => queue?.hasResponseFor(cb) ?? false);
      if (expired.canister === canister) continue;
      this.canisters.set(id, expired.canister);
      for (const m of expired.responses) this.enqueue(id, m);
    }
  }

  toState(scheduling: SchedulingStates, rateLimitBytes: number): ExecutionRoundState {
    // §4.2 step 9: every debit shrinks by the rate limit at the end of the round.
    const heapDeltaDebits = [...this.debits.entries()]
      .map(([id, bytes]) => ({ id, bytes: Math.max(0, bytes - rateLimitBytes) }))
      .filter((d) => d.bytes > 0)
      .sort((a, b) => compareCanisterIds(a.id, b.id));
    const queues = [...this.queues.entries()]
      .filter(([, q]) => q.size > 0) // an emptied queue starts its rotation afresh
      .map(([id, q]): QueuedMessages => ({ id, messages: q.messages(), ...(q.lastSource === undefined ? {} : { lastSource: q.lastSource }) }));
    const changes = this.canisters.changes();
    const canisters = this.canisters.toArray(changes);
    // The next round finds its indexes without walking the canisters (canister-activity.ts, and
    // the scheduling states' match with the canisters).
    if (changes.length > 0) {
      CanisterActivity.remember(canisters, this.activity.withChanged(changes));
      scheduling.rememberMatch(this.canisters.base, canisters, changes);
    }
    return {
      canisters,
      queues: byId(queues),
      scheduling,
      paused: [...this.paused.values()].sort((a, b) => compareCanisterIds(a.canister, b.canister)),
      aborted: [...this.aborted].sort(compareCanisterIds),
      ...(heapDeltaDebits.length > 0 ? { heapDeltaDebits } : {}),
    };
  }
}

/**
 * Canisters that may get a heartbeat or global-timer task this round, in id order: those indexed
 * as getting heartbeats or with a due timer at the start of the round, and any the round has
 * changed since (the caller checks each one's current state).
 */
function taskCandidates(w: Work, nowNs: bigint): CanisterId[] {
  const ids = new Set<CanisterId>([...w.activity.heartbeat, ...w.activity.dueTimers(nowNs), ...w.canisters.replacedIds()]);
  return w.canisters.inIdOrder(ids);
}

/** The request a performed call becomes in the callee's input queue. */
export function requestFrom(caller: CanisterId, call: OutgoingCall): CanisterMessage {
  return {
    kind: "request",
    caller,
    callerCallbackId: call.callbackId,
    method: call.method,
    arg: call.arg,
    cycles: call.cycles,
    ...(call.deadlineNs === undefined ? {} : { deadlineNs: call.deadlineNs }),
  };
}

/** The response an answered call context sends its calling canister (carrying a best-effort call's deadline back). */
export function responseTo(origin: Extract<CallOrigin, { kind: "canister" }>, r: Pick<OutgoingResponse, "response" | "refundedCycles">): CanisterMessage {
  return {
    kind: "response",
    callbackId: origin.callbackId,
    response: r.response,
    refundedCycles: r.refundedCycles,
    ...(origin.deadlineNs === undefined ? {} : { deadlineNs: origin.deadlineNs }),
  };
}

/** Executes one round. Pure apart from the executor's internal caches. */
export function executeRound(executor: CanisterExecutor, config: RoundConfig, state: ExecutionRoundState, input: RoundInput): RoundOutput {
  const sc = config.scheduler;
  const scheduling = reconcileSchedulingStates(state.scheduling, state.canisters); // the same states unless canisters changed
  assert(scheduling === state.scheduling || scheduling.matches(state.canisters), "round state canisters must be sorted by id");
  const w = new Work(state, scheduling);
  w.timeOut(input.timeNs);
  for (const m of input.messages) {
    assert(w.canisters.has(m.canister), `message for unknown canister ${m.canister}`);
    w.enqueue(m.canister, m.message);
  }
  const instructionsPerCore = Array.from({ length: sc.cores }, () => 0n);

  // §4.4 step 2 (first iteration only): heartbeat and due global-timer tasks for running canisters
  // that export them; not for canisters with a paused or aborted execution (they resume that first),
  // and not when the caller already queued that task for the canister (e.g. ExecutionLab does).
  const queuedTasks = new Set<string>();
  for (const [id, q] of w.queues) for (const m of q.messages()) if (m.kind === "heartbeat" || m.kind === "global-timer" || m.kind === "on-low-wasm-memory") queuedTasks.add(`${id} ${m.kind}`);
  for (const id of taskCandidates(w, input.timeNs)) {
    const c = w.canisters.get(id)!;
    const exports = c.execution?.exports ?? [];
    if (c.status !== "running" || w.paused.has(c.id) || w.aborted.has(c.id)) continue;
    const tasks: CanisterMessage[] = [];
    if (exports.includes("canister_heartbeat") && !queuedTasks.has(`${c.id} heartbeat`)) tasks.push({ kind: "heartbeat" });
    const due = c.globalTimerNs > 0n && c.globalTimerNs <= input.timeNs;
    if (due && exports.includes("canister_global_timer") && !queuedTasks.has(`${c.id} global-timer`)) tasks.push({ kind: "global-timer" });
    if (tasks.length > 0) w.tasks.set(c.id, tasks);
  }

  // §4.2 step 3: the heap-delta gate.
  const limit = heapDeltaScheduledLimitBytes(config, input.roundsUntilCheckpoint ?? 0);
  if ((input.heapDeltaEstimateBytes ?? 0) >= limit) {
    return finish(w, config, input, scheduling, undefined, new Set(), instructionsPerCore, 0, true);
  }

  const rateLimit = config.heapDeltaRateLimitBytes ?? DEFAULT_HEAP_DELTA_RATE_LIMIT_BYTES;
  const maxIterationDelta = config.maxHeapDeltaPerIterationBytes ?? DEFAULT_MAX_HEAP_DELTA_PER_ITERATION_BYTES;
  const work: CanisterWork[] = [];
  for (const id of w.mayHaveWork()) {
    work.push({ id, hasWork: w.hasWork(id), hasLongExecution: w.paused.has(id) || w.aborted.has(id), rateLimited: w.rateLimited(id, rateLimit) });
  }
  const schedule = planRound(sc, input.round, scheduling, work);
  const rank = new Map(schedule.order.map((id, i) => [id, i]));
  const fully = new Set<CanisterId>();
  const slicedThisRound = new Set<CanisterId>();
  let roundBudget = coreRoundBudget(sc);
  let iterations = 0;

  while (roundBudget > 0n && iterations < config.maxIterations) {
    // Core assignment: the round plan in the first iteration; afterwards the canisters that (still
    // or newly) have work, in the round's priority order, over the same cores.
    const cores = iterations === 0 ? schedule.cores : reassign(schedule.cores.length, schedule.longExecutionCores, schedule.prioritized, w, rank, slicedThisRound, rateLimit);
    iterations++;
    let maxUsed = 0n;
    let anyRan = false;
    const iterationStartDelta = w.deltaBytes;
    cores.forEach((canisters, core) => {
      let budget = roundBudget;
      const coreStartDelta = w.deltaBytes;
      canisters.forEach((id, position) => {
        if (budget <= 0n || w.deltaBytes - coreStartDelta >= maxIterationDelta) return;
        if (iterations === 1 && position === 0) fully.add(id);
        const used = runCanister(executor, config, w, id, budget, input, slicedThisRound, fully, coreStartDelta, maxIterationDelta);
        if (used > 0n) anyRan = true;
        budget -= used;
      });
      const used = roundBudget - budget;
      instructionsPerCore[core] = instructionsPerCore[core]! + used;
      if (used > maxUsed) maxUsed = used;
    });
    roundBudget -= maxUsed;
    // §4.4 step 6: induct same-subnet messages for the next iteration.
    const local = w.pendingLocal;
    w.pendingLocal = [];
    for (const m of local) w.enqueue(m.canister, m.message);
    if (!anyRan && local.length === 0) break;
    if (w.deltaBytes - iterationStartDelta >= maxIterationDelta) break; // §4.4 step 5
    if (!w.mayHaveWork().some((id) => w.hasWork(id) && !slicedThisRound.has(id))) break;
  }
  return finish(w, config, input, scheduling, schedule, fully, instructionsPerCore, iterations, false);
}

function reassign(
  coreCount: number,
  longCores: number,
  prioritized: readonly CanisterId[],
  w: Work,
  rank: ReadonlyMap<CanisterId, number>,
  slicedThisRound: ReadonlySet<CanisterId>,
  rateLimit: number,
): CanisterId[][] {
  const cores: CanisterId[][] = Array.from({ length: coreCount }, () => []);
  const eligible = w
    .mayHaveWork()
    .filter((id) => w.hasWork(id) && !slicedThisRound.has(id) && !w.rateLimited(id, rateLimit))
    // Stable sort of an id-ordered list: equal ranks (and unranked canisters) stay in id order.
    .sort((a, b) => (rank.get(a) ?? Number.MAX_SAFE_INTEGER) - (rank.get(b) ?? Number.MAX_SAFE_INTEGER));
  const prio = new Set(prioritized);
  eligible.filter((id) => prio.has(id)).forEach((id, i) => cores[i % coreCount]!.push(id));
  const first = longCores < coreCount ? longCores : 0;
  eligible.filter((id) => !prio.has(id)).forEach((id, i) => cores[first + (i % (coreCount - first))]!.push(id));
  return cores;
}

/** Runs one canister's turn on a core; returns the instructions charged to the core. */
function runCanister(
  executor: CanisterExecutor,
  config: RoundConfig,
  w: Work,
  id: CanisterId,
  budgetIn: bigint,
  input: RoundInput,
  slicedThisRound: Set<CanisterId>,
  fully: Set<CanisterId>,
  coreStartDelta: number,
  maxCoreDelta: number,
): bigint {
  const sc = config.scheduler;
  let budget = budgetIn;
  let ranAnything = false;
  // (No named closures here: this is the hot path of every round.)

  const paused = w.paused.get(id);
  if (paused !== undefined) {
    if (slicedThisRound.has(id)) return 0n;
    const step = continueSliced(paused, sc.maxInstructionsPerSlice);
    budget -= step.instructionsThisRound + sc.instructionOverheadPerExecution;
    settleSlice(w, id, step, paused.message, paused.startedRound, input.round, slicedThisRound, fully);
    slicedThisRound.add(id);
    fully.add(id);
    return budgetIn - budget + sc.instructionOverheadPerCanister;
  }
  while (budget > 0n && w.hasWork(id) && w.deltaBytes - coreStartDelta < maxCoreDelta) {
    const message = w.nextMessage(id)!;
    w.aborted.delete(id);
    const dts = config.dtsEnabled && isDtsMessage(message);
    const instructionLimit = dts ? sc.maxInstructionsPerMessage : sc.maxInstructionsPerMessageWithoutDts;
    const canister = w.canisters.get(id)!;
    // Replicated executions log their prints and traps in the canister's state (canister-log.ts).
    const result = withLoggedOutput(executor.executeMessage(canister, message, { instructionLimit, timeNs: input.timeNs, ...(config.subnetId === undefined ? {} : { subnetId: config.subnetId }) }), input.timeNs);
    assert(result.instructionsUsed <= instructionLimit, `executor used ${result.instructionsUsed} > limit ${instructionLimit}`);
    ranAnything = true;
    if (!dts) {
      budget -= result.instructionsUsed + sc.instructionOverheadPerExecution;
      w.commit(id, message, result, input.round, input.round, 1);
      continue;
    }
    const step = startSliced(id, message, result, sc.maxInstructionsPerSlice, input.round);
    budget -= step.instructionsThisRound + sc.instructionOverheadPerExecution;
    if (!settleSlice(w, id, step, message, input.round, input.round, slicedThisRound, fully)) break; // now a long execution: the turn ends
  }
  if (!w.hasWork(id)) fully.add(id); // ran out of work
  return ranAnything ? budgetIn - budget + sc.instructionOverheadPerCanister : 0n;
}

/** Records a slice step: a paused execution is held, a finished one committed. Returns "finished". */
function settleSlice(
  w: Work,
  id: CanisterId,
  step: SliceStep,
  message: CanisterMessage,
  startedRound: number,
  round: number,
  slicedThisRound: Set<CanisterId>,
  fully: Set<CanisterId>,
): boolean {
  if (step.kind === "paused") {
    w.paused.set(id, step.paused);
    slicedThisRound.add(id);
    fully.add(id); // a full slice of a long execution is a full round (§4.3)
    return false;
  }
  w.paused.delete(id);
  w.commit(id, message, step.result, startedRound, round, step.slices);
  return true;
}

function finish(
  w: Work,
  config: RoundConfig,
  input: RoundInput,
  scheduling: SchedulingStates,
  schedule: ReturnType<typeof planRound> | undefined,
  fully: Set<CanisterId>,
  instructionsPerCore: readonly bigint[],
  iterations: number,
  skipped: boolean,
): RoundOutput {
  const sc = config.scheduler;
  // Abort paused executions: all at a checkpoint round, else those beyond the limit (lowest
  // priority first: the end of the scheduler's order).
  const abortedNow: CanisterId[] = [];
  const pausedIds = [...w.paused.keys()];
  let toAbort: CanisterId[] = [];
  if (input.isCheckpointRound) toAbort = pausedIds;
  else if (pausedIds.length > sc.maxPausedExecutions) {
    const rank = new Map((schedule?.order ?? []).map((id, i) => [id, i]));
    const ordered = pausedIds.sort((a, b) => (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity) || compareCanisterIds(a, b));
    toAbort = ordered.slice(sc.maxPausedExecutions);
  }
  for (const id of toAbort.sort(compareCanisterIds)) {
    const p = w.paused.get(id)!;
    w.paused.delete(id);
    w.enqueue(id, p.message, true);
    w.aborted.add(id);
    abortedNow.push(id);
  }
  let nextScheduling = scheduling;
  const notFully: CanisterId[] = [];
  if (schedule !== undefined) {
    // Idle or drained canisters ran out of work: fully executed. The others with work left (or an
    // aborted execution waiting) were not, unless first on a core or given a full slice.
    for (const id of w.mayHaveWork()) if ((w.hasWork(id) || w.aborted.has(id)) && !fully.has(id)) notFully.push(id);
    const longAfter = new Set<CanisterId>([...w.paused.keys(), ...w.aborted]);
    nextScheduling = finishRound(sc, schedule, { notFullyExecuted: new Set(notFully), longExecutionAfter: longAfter });
  }
  return {
    state: w.toState(nextScheduling, config.heapDeltaRateLimitBytes ?? DEFAULT_HEAP_DELTA_RATE_LIMIT_BYTES),
    executed: w.executed,
    ingressResponses: w.ingressResponses,
    remoteCalls: w.remoteCalls,
    remoteResponses: w.remoteResponses,
    aborted: abortedNow,
    skippedForHeapDelta: skipped,
    instructionsPerCore,
    iterations,
    notFullyExecuted: notFully,
  };
}

/** What a replica feeds into one round besides the state: the finalized batch's contents. */
export type BatchInput = Omit<RoundInput, "isCheckpointRound" | "heapDeltaEstimateBytes" | "roundsUntilCheckpoint">;

/**
 * One height of a replica's deterministic state machine, execution part: runs the round with the
 * checkpoint flag and heap-delta gate inputs taken from the state manager, then commits the result
 * (state digest; checkpoint at checkpoint heights). The returned state is what the next round
 * must start from (at a checkpoint its page maps carry an empty heap delta).
 */
export function executeAndCommit(
  executor: CanisterExecutor,
  config: RoundConfig,
  stateManager: StateManager,
  state: ExecutionRoundState,
  batch: BatchInput,
): { readonly state: ExecutionRoundState; readonly output: RoundOutput; readonly commit: CommitResult } {
  assert(
    config.checkpointIntervalRounds === stateManager.config.checkpointIntervalRounds,
    "round config and state manager disagree on the checkpoint interval",
  );
  const output = executeRound(executor, config, state, {
    ...batch,
    isCheckpointRound: stateManager.isCheckpointHeight(batch.round),
    heapDeltaEstimateBytes: heapDeltaBytes(state.canisters),
    roundsUntilCheckpoint: stateManager.roundsUntilCheckpoint(batch.round),
  });
  const commit = stateManager.commit(batch.round, { canisters: output.state.canisters, metadata: encodeRoundMetadata(output.state) });
  return { state: { ...output.state, canisters: commit.state.canisters }, output, commit };
}

/**
 * A non-replicated query against the committed state: while a long execution is paused, queries
 * see the canister as it was before that message.
 */
export function executeQuery(
  executor: CanisterExecutor,
  config: RoundConfig,
  state: ExecutionRoundState,
  canister: CanisterId,
  message: Extract<CanisterMessage, { kind: "query" }>,
  timeNs: bigint,
): ExecutionResult {
  const c = state.canisters.find((x) => x.id === canister);
  assert(c !== undefined, `query for unknown canister ${canister}`);
  return executor.executeMessage(c, message, { instructionLimit: config.scheduler.maxInstructionsPerMessageWithoutDts, timeNs });
}

// ---------------------------------------------------------------------------------------------
// Canonical encoding of the round state (the `metadata` of harness/state/state-manager.ts).

/**
 * `ByteWriter.str(id)`'s bytes for a canister id, encoded once: every height's metadata names every
 * canister (100,000 UTF-8 encodings per height on a large subnet otherwise).
 */
const encodedIds = new BoundedMap<string, Uint8Array>("roundMetadataIds", 262_144);

function encodedCanisterId(id: string): Uint8Array {
  let bytes = encodedIds.get(id);
  if (bytes === undefined) {
    bytes = new ByteWriter().str(id).finish();
    encodedIds.set(id, bytes);
  }
  return bytes;
}

function writeSigned(w: ByteWriter, v: bigint): void {
  w.bool(v < 0n).nat(v < 0n ? -v : v);
}
function readSigned(r: ByteReader): bigint {
  const neg = r.bool();
  const m = r.nat();
  return neg ? -m : m;
}

function writeMessage(w: ByteWriter, m: CanisterMessage): void {
  switch (m.kind) {
    case "ingress":
      w.u8(0).str(m.messageId).str(m.caller).str(m.method).bytes(m.arg);
      return;
    case "query":
      w.u8(1).str(m.caller).str(m.method).bytes(m.arg).bool(m.dataCertificate !== undefined);
      if (m.dataCertificate !== undefined) w.bytes(m.dataCertificate);
      return;
    case "request":
      // A best-effort request (tag 6) is a request (tag 2) followed by its deadline.
      w.u8(m.deadlineNs === undefined ? 2 : 6).str(m.caller).u64(m.callerCallbackId).str(m.method).bytes(m.arg).nat(m.cycles);
      if (m.deadlineNs !== undefined) w.u64(m.deadlineNs);
      return;
    case "response":
      // A best-effort response (tag 7) is a response (tag 3) followed by its deadline and whether
      // it is the system's "deadline expired" reject.
      w.u8(m.deadlineNs === undefined ? 3 : 7).u64(m.callbackId).nat(m.refundedCycles);
      if (m.response.kind === "reply") w.u8(0).bytes(m.response.data);
      else w.u8(1).u8(m.response.code).str(m.response.message);
      if (m.deadlineNs !== undefined) w.u64(m.deadlineNs).bool(m.deadlineExpired === true);
      return;
    case "heartbeat":
      w.u8(4);
      return;
    case "global-timer":
      w.u8(5);
      return;
    case "on-low-wasm-memory":
      w.u8(8);
      return;
  }
}

function readMessage(r: ByteReader): CanisterMessage {
  const tag = r.u8();
  switch (tag) {
    case 0:
      return { kind: "ingress", messageId: r.str(), caller: r.str() as PrincipalText, method: r.str(), arg: r.bytes() };
    case 1: {
      const caller = r.str() as PrincipalText;
      const method = r.str();
      const arg = r.bytes();
      return r.bool() ? { kind: "query", caller, method, arg, dataCertificate: r.bytes() } : { kind: "query", caller, method, arg };
    }
    case 2:
    case 6: {
      const request = { kind: "request" as const, caller: r.str() as CanisterId, callerCallbackId: r.u64() as CallbackId, method: r.str(), arg: r.bytes(), cycles: r.nat() };
      return tag === 6 ? { ...request, deadlineNs: r.u64() } : request;
    }
    case 3:
    case 7: {
      const callbackId = r.u64() as CallbackId;
      const refundedCycles = r.nat();
      const response =
        r.u8() === 0 ? { kind: "reply" as const, data: r.bytes() } : { kind: "reject" as const, code: r.u8() as RejectCode, message: r.str() };
      if (tag === 3) return { kind: "response", callbackId, response, refundedCycles };
      const deadlineNs = r.u64();
      return { kind: "response", callbackId, response, refundedCycles, deadlineNs, ...(r.bool() ? { deadlineExpired: true as const } : {}) };
    }
    case 4:
      return { kind: "heartbeat" };
    case 5:
      return { kind: "global-timer" };
    case 8:
      return { kind: "on-low-wasm-memory" };
    default:
      throw new Error(`invalid message tag ${tag}`);
  }
}

/**
 * Canonical bytes of everything in the round state except the canisters themselves. A paused
 * execution is represented by its message, progress and the hash of its held canister state, so a
 * divergent held result shows up in the state digest although it is not visible yet.
 */
export function encodeRoundMetadata(state: ExecutionRoundState): Uint8Array {
  const w = new ByteWriter().domain("subnetlab-execution-round-v2");
  w.u32(state.queues.length);
  for (const q of state.queues) {
    w.str(q.id).bool(q.lastSource !== undefined);
    if (q.lastSource !== undefined) w.str(q.lastSource);
    w.u32(q.messages.length);
    for (const m of q.messages) writeMessage(w, m);
  }
  w.u32(state.scheduling.size);
  for (const s of state.scheduling.list()) {
    w.raw(encodedCanisterId(s.id)).u8(s.computeAllocationPercent);
    writeSigned(w, s.accumulatedPriority);
    writeSigned(w, s.priorityCredit);
    w.bool(s.longExecutionMode === "prioritized");
  }
  w.u32(state.paused.length);
  for (const p of state.paused) {
    w.str(p.canister);
    writeMessage(w, p.message);
    w.str(canisterStateHash(p.held.canister)).u64(p.held.instructionsUsed).u64(p.instructionsDone).u64(p.startedRound).u32(p.slicesDone);
  }
  w.u32(state.aborted.length);
  for (const id of state.aborted) w.str(id);
  const debits = state.heapDeltaDebits ?? [];
  w.u32(debits.length);
  for (const d of debits) w.str(d.id).u64(d.bytes);
  return w.finish();
}

/**
 * Restores a round state from its metadata and the canisters (e.g. from a checkpoint). Checkpoints
 * are taken after paused executions were aborted, so metadata with paused executions is refused.
 */
export function decodeRoundMetadata(bytes: Uint8Array, canisters: readonly CanisterState[]): ExecutionRoundState {
  const r = new ByteReader(bytes);
  const domain = new TextDecoder().decode(r.raw(r.u8()));
  assert(domain === "subnetlab-execution-round-v2", `unknown round metadata ${domain}`);
  const queues: QueuedMessages[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const id = r.str() as CanisterId;
    const lastSource = r.bool() ? r.str() : undefined;
    const messages: CanisterMessage[] = [];
    for (let k = r.u32(), j = 0; j < k; j++) messages.push(readMessage(r));
    queues.push({ id, messages, ...(lastSource === undefined ? {} : { lastSource }) });
  }
  const scheduling: CanisterSchedulingState[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const id = r.str() as CanisterId;
    const computeAllocationPercent = r.u8();
    const accumulatedPriority = readSigned(r);
    const priorityCredit = readSigned(r);
    scheduling.push({ id, computeAllocationPercent, accumulatedPriority, priorityCredit, longExecutionMode: r.bool() ? "prioritized" : "opportunistic" });
  }
  assert(r.u32() === 0, "round metadata with paused executions cannot be restored (checkpoints abort them)");
  const aborted: CanisterId[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) aborted.push(r.str() as CanisterId);
  const heapDeltaDebits: HeapDeltaDebit[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) heapDeltaDebits.push({ id: r.str() as CanisterId, bytes: Number(r.u64()) });
  r.expectDone("round metadata");
  return { canisters: byId(canisters), queues, scheduling: SchedulingStates.fromList(scheduling), paused: [], aborted, ...(heapDeltaDebits.length > 0 ? { heapDeltaDebits } : {}) };
}
