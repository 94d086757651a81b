// One batch executed on a replica's own executor (harness/replica/execution-state-machine.ts),
// in the IC's order: the loopback and subnet queue left by the previous round, the certified XNet
// slices, the batch's ingress (ingress-induction.ts); then the management calls (subnet-messages.ts),
// the execution round with its commit in the state manager, the ingress statuses the round
// decided, and the stream builder routing calls and responses for other subnets. The state
// machine gives the pre-state and keeps the result; a replica that adopts a shared outcome
// (shared-execution.ts) skips all of this.
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { WasmExecutor } from "../execution/executor.ts";
import { MANAGEMENT_CANISTER, type CallbackId, type CanisterExecutor, type CanisterId, type OutgoingResponse, type Response } from "../execution/interfaces.ts";
import { executeAndCommit, type ExecutionRoundState, type InductedMessage, type RoundConfig, type RoundOutput } from "../execution/round.ts";
import { errorCodeOfResponse } from "../execution/reject-codes.ts";
import type { CanisterRange, Registry, SubnetId } from "../routing/registry.ts";
import { buildStreams, takeLocalWork, type RoutingState, type StreamSlice, type SubnetCall } from "../routing/streams.ts";
import type { StateManager } from "../state/state-manager.ts";
import type { HashHex } from "../types.ts";
import { corruptedReply, perturbHeap } from "./execution-faults.ts";
import type { ExecutionMachineOptions } from "./execution-state-machine.ts";
import { HistoryJournal } from "./history-journal.ts";
import { inductIngress, inductStreamSlice, subnetCallOf } from "./ingress-induction.ts";
import type { IngressHistory } from "./ingress-history.ts";
import type { Batch, IngressStatus } from "./interfaces.ts";
import type { BatchOutcome } from "./shared-execution.ts";
import { executeSubnetCalls } from "./subnet-messages.ts";
import { TrapWatchingExecutor, type TrappedChange } from "./trap-watch.ts";

/** What executing a batch needs from its replica besides the pre-state. */
export interface BatchExecutionContext {
  readonly executor: CanisterExecutor;
  /** The executor of batches `perturbExecution` picks. */
  readonly perturbedExecutor: CanisterExecutor;
  readonly roundConfig: RoundConfig;
  readonly stateManager: StateManager;
  readonly subnetId: SubnetId;
  readonly registry: Registry;
  readonly hooks: Pick<ExecutionMachineOptions, "onInducted" | "onTrappedChange" | "perturbExecution" | "corrupt" | "corruptReplies" | "inductionCanary" | "maxCanisters">;
}

/** The state before a batch. `history` is the replica's own and is written through the batch's journal. */
export interface BatchPreState {
  readonly state: ExecutionRoundState;
  readonly routing: RoutingState;
  readonly history: IngressHistory;
}

/**
 * A batch's result, committed in the state manager but not yet hashed or certified: the parts of
 * its shared outcome that execution decides, and what the machine hashes and charges from.
 */
export interface ExecutedBatch extends Pick<BatchOutcome, "state" | "routing" | "commit" | "inducted" | "trapped"> {
  /** The batch's writes to the history (adopters replay them). */
  readonly journal: HistoryJournal;
  readonly output: RoundOutput;
}

/**
 * Executes `batch` on `before`. `watchTraps`: record trapped updates (for adopters) even without
 * an onTrappedChange observer.
 */
export function executeBatchOn(context: BatchExecutionContext, before: BatchPreState, batch: Batch, watchTraps: boolean): ExecutedBatch {
  return new BatchRun(context, before, batch).execute(watchTraps);
}

/** One batch's execution: the working state and routing state, changed step by step. */
class BatchRun {
  private state: ExecutionRoundState;
  private routing: RoutingState;
  private readonly history: IngressHistory;
  private readonly journal: HistoryJournal;

  constructor(private readonly context: BatchExecutionContext, before: BatchPreState, private readonly batch: Batch) {
    this.state = before.state;
    this.routing = before.routing;
    this.history = before.history;
    this.journal = new HistoryJournal(before.history);
  }

  execute(watchTraps: boolean): ExecutedBatch {
    const { batch, journal } = this;
    const hooks = this.context.hooks;
    journal.prune(batch.timeNs);
    const local = takeLocalWork(this.routing);
    this.routing = local.state;
    const messages: InductedMessage[] = [...local.loopback];
    const taken: [SubnetId, readonly bigint[]][] = [];
    for (const slice of batch.xnet ?? []) messages.push(...this.inductSlice(slice, taken));
    hooks.onInducted?.(batch.height, taken);
    const subnetCalls: SubnetCall[] = [...local.calls];
    for (const message of batch.ingress) {
      if (this.history.has(message.id)) continue; // induction drops duplicates, as the IC's does
      const inducted = inductIngress(message, batch, this.state.canisters, journal);
      if (inducted === "subnet-call") subnetCalls.push(subnetCallOf(message));
      else if (inducted !== undefined) messages.push(inducted);
    }
    const remoteFromSubnet = this.executeSubnetCalls(subnetCalls, messages);
    const trapped: TrappedChange[] = [];
    const executor = this.roundExecutor(watchTraps, trapped);
    const { state, output, commit } = executeAndCommit(executor, this.context.roundConfig, this.context.stateManager, this.state, {
      round: batch.height,
      timeNs: batch.timeNs,
      // Messages for canisters that no longer exist are dropped (the scheduling states index
      // exactly the subnet's canisters: no set of every id per batch).
      messages: messages.filter((m) => this.state.scheduling.indexOf(m.canister) !== undefined),
    });
    this.state = hooks.corrupt?.(batch.height, batch.timeNs) === true ? perturbHeap(state) : state;
    for (const m of output.executed) {
      // Executed but not answered (it awaits calls it made): received → processing.
      if (m.message.kind === "ingress" && this.history.status(m.message.messageId as HashHex)?.status === "received") {
        journal.set(m.message.messageId as HashHex, { status: "processing", height: batch.height }, batch.timeNs);
      }
    }
    for (const r of output.ingressResponses) {
      if (r.origin.kind === "ingress") this.recordIngressResponse(r.origin.messageId, r.response);
    }
    this.routing = buildStreams(this.routing, this.context.subnetId, this.context.registry, output.remoteCalls, [...output.remoteResponses, ...remoteFromSubnet]).state;
    return { state: this.state, routing: this.routing, journal, inducted: taken, trapped, output, commit };
  }

  /**
   * The round's executor: the replica's own, or the perturbed one when the fault picks this batch;
   * wrapped to report trapped updates that changed their canister when anyone listens.
   */
  private roundExecutor(watchTraps: boolean, trapped: TrappedChange[]): CanisterExecutor {
    const { batch, context } = this;
    const chosen = context.hooks.perturbExecution?.(batch.height, batch.timeNs) === true ? context.perturbedExecutor : context.executor;
    const report = context.hooks.onTrappedChange;
    return report === undefined && !watchTraps ? chosen : new TrapWatchingExecutor(chosen, (change) => {
      trapped.push(change);
      report?.(batch.height, change);
    });
  }

  private recordIngressResponse(messageId: string, response: Response): void {
    const batch = this.batch;
    const status: IngressStatus = response.kind === "reply"
      ? { status: "completed", height: batch.height, reply: bytesToHex(this.context.hooks.corruptReplies?.(batch.height, batch.timeNs) === true ? corruptedReply(response.data) : response.data) }
      : { status: "failed", height: batch.height, code: response.code, message: response.message, errorCode: errorCodeOfResponse(response) };
    this.journal.set(messageId as HashHex, status, batch.timeNs);
  }

  /** Inducts one certified stream slice; notes the indices it took in `taken`. */
  private inductSlice(slice: StreamSlice, taken: [SubnetId, readonly bigint[]][]): readonly InductedMessage[] {
    const { subnetId, registry, hooks } = this.context;
    const induction = inductStreamSlice(slice, this.routing, this.state, { id: subnetId, registry }, hooks.inductionCanary);
    this.routing = induction.routing;
    if (induction.indices.length > 0) taken.push([slice.source, induction.indices]);
    return induction.inducted;
  }

  /** Management canister calls run before the round; answers go to the history, the round or the streams. */
  private executeSubnetCalls(calls: readonly SubnetCall[], messages: InductedMessage[]): { from: CanisterId; response: OutgoingResponse }[] {
    if (calls.length === 0) return [];
    const { executor, subnetId, hooks } = this.context;
    assert(executor instanceof WasmExecutor, "management calls need the Wasm executor");
    const out = executeSubnetCalls(
      { executor, timeNs: this.batch.timeNs, canisterRange: this.ownRange(), randomness: hexToBytes(this.batch.randomness), maxCanisters: hooks.maxCanisters ?? 0, subnetId },
      this.state,
      calls,
    );
    this.state = out.state;
    for (const r of out.ingressResponses) this.recordIngressResponse(r.messageId, r.response);
    messages.push(...out.localResponses);
    return out.remoteResponses.map((r) => ({
      from: MANAGEMENT_CANISTER as string as CanisterId,
      response: { origin: { kind: "canister", caller: r.caller, callbackId: r.callbackId as CallbackId }, response: r.response, refundedCycles: r.refundedCycles },
    }));
  }

  private ownRange(): CanisterRange {
    const { registry, subnetId } = this.context;
    const own = registry.subnet(subnetId);
    assert(own !== undefined, `subnet ${subnetId} is not in the registry`);
    return own.canisterRange;
  }
}
