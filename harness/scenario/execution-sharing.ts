// The runners' side of "execute once, verify always" (issue 13 item 1): one SharedExecution per
// simulated subnet, switched by the scenario (`execution: { sharing, audit }`) and the run options
// (`--no-shared-execution`), handed to each replica's state machines as that replica's member —
// the execution state machines of canister subnets, the key-value machines of the others.
import type { WasmExecutor, WasmExecutorOptions } from "../execution/executor.ts";
import type { ExecutionMachineOptions } from "../replica/execution-state-machine.ts";
import type { KvBatchOutcome, KvMachineOptions, KvStateMachine } from "../replica/kv-state-machine.ts";
import { SharedExecution, type BatchOutcome, type ExecutionSharing, type SharedExecutionStats, type SharedOutcome } from "../replica/shared-execution.ts";
import type { Rng } from "../sim/rng.ts";
import type { Disk } from "../sim/env.ts";
import type { Scenario } from "./scenario.ts";

export interface ExecutionSharingOptions {
  /** false: every replica executes every batch itself (CLI --no-shared-execution). Default: the scenario's, else on. */
  readonly sharedExecution?: boolean;
  /** false: no audit re-executions. Default: the scenario's, else on. */
  readonly executionAudit?: boolean;
  /**
   * Tests only: how a replica builds its own executor (a WasmExecutor subclass that misbehaves
   * the way a buggy executor would). The replica still shares: this is what the audit must catch.
   */
  readonly makeExecutor?: (replica: string, options: WasmExecutorOptions) => WasmExecutor;
  /**
   * Tests only, key-value subnets: how a replica builds its key-value machine (a KvStateMachine
   * subclass with a planted bug, made by its `fromDisk`). The replica still shares, as above.
   */
  readonly makeKvStateMachine?: (replica: string, disk: Disk, options: KvMachineOptions) => KvStateMachine;
  /** Sees each subnet's SharedExecution when the run builds it (tests: its size after the run). */
  readonly onSharedExecution?: (shared: SharedExecution<SharedOutcome>) => void;
}

/** The subnet's SharedExecution for outcomes of type O; its audit stream is `<subnet rng>/execution-audit`. */
export function sharedExecutionOf<O extends SharedOutcome = BatchOutcome>(scenario: Scenario, options: ExecutionSharingOptions, subnet: string, subnetRng: Rng): SharedExecution<O> {
  const shared = new SharedExecution<O>({
    subnet,
    sharing: options.sharedExecution ?? scenario.execution?.sharing ?? true,
    audit: options.executionAudit ?? scenario.execution?.audit ?? true,
    auditRng: subnetRng.fork("execution-audit"),
  });
  options.onSharedExecution?.(shared);
  return shared;
}

/** The ExecutionStateMachine options of one replica: its member handle and its executor factory. */
export function executionSharingOf(
  shared: SharedExecution,
  options: ExecutionSharingOptions,
  index: number,
  replica: string,
  byzantine: boolean,
): Pick<ExecutionMachineOptions, "sharing" | "makeExecutor"> {
  const make = options.makeExecutor;
  return {
    sharing: shared.member(index, replica, !byzantine),
    ...(make === undefined ? {} : { makeExecutor: (o: WasmExecutorOptions) => make(replica, o) }),
  };
}

/**
 * The SimSubnet options of a key-value subnet's sharing: each replica's member handle (a
 * Byzantine replica, or one the subnet hooks, only counts) and the test-only machine factory.
 */
export function kvSharingOf(
  shared: SharedExecution<KvBatchOutcome>,
  options: ExecutionSharingOptions,
  replicaName: (index: number) => string,
  byzantine: ReadonlySet<number>,
): {
  readonly kvSharing: (index: number, mayShare: boolean) => ExecutionSharing<KvBatchOutcome>;
  readonly makeKvStateMachine?: (index: number, disk: Disk, machine: KvMachineOptions) => KvStateMachine;
} {
  const make = options.makeKvStateMachine;
  return {
    kvSharing: (index, mayShare) => shared.member(index, replicaName(index), mayShare && !byzantine.has(index)),
    ...(make === undefined ? {} : { makeKvStateMachine: (index: number, disk: Disk, machine: KvMachineOptions) => make(replicaName(index), disk, machine) }),
  };
}

/**
 * The figures for report.json over all subnets of a run. `stateMachine`: what a counted batch
 * is — a canister subnet's execution round, or the key-value placeholder's application of a batch.
 */
export function executionStatsOf(
  shared: readonly SharedExecution<SharedOutcome>[],
  stateMachine: "execution" | "key-value" = "execution",
): SharedExecutionStats & { readonly sharing: boolean; readonly stateMachine: "execution" | "key-value" } {
  const sum = (f: (s: SharedExecutionStats) => number): number => shared.reduce((t, s) => t + f(s.stats), 0);
  return {
    sharing: shared.some((s) => s.sharing),
    stateMachine,
    executions: sum((s) => s.executions),
    shared: sum((s) => s.shared),
    audited: sum((s) => s.audited),
    mismatches: sum((s) => s.mismatches),
  };
}
