// The runners' side of "execute once, verify always" (issue 13 item 1): one SharedExecution per
// simulated subnet, switched by the scenario (`execution: { sharing, audit }`) and the run options
// (`--no-shared-execution`), handed to each replica's state machines as that replica's member.
import type { WasmExecutor, WasmExecutorOptions } from "../execution/executor.ts";
import type { ExecutionMachineOptions } from "../replica/execution-state-machine.ts";
import { SharedExecution, type SharedExecutionStats } from "../replica/shared-execution.ts";
import type { Rng } from "../sim/rng.ts";
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
  /** Sees each subnet's SharedExecution when the run builds it (tests: its size after the run). */
  readonly onSharedExecution?: (shared: SharedExecution) => void;
}

/** The subnet's SharedExecution; its audit stream is `<subnet rng>/execution-audit`. */
export function sharedExecutionOf(scenario: Scenario, options: ExecutionSharingOptions, subnet: string, subnetRng: Rng): SharedExecution {
  const shared = new SharedExecution({
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

/** The figures for report.json over all subnets of a run. */
export function executionStatsOf(shared: readonly SharedExecution[]): SharedExecutionStats & { readonly sharing: boolean } {
  const sum = (f: (s: SharedExecutionStats) => number): number => shared.reduce((t, s) => t + f(s.stats), 0);
  return {
    sharing: shared.some((s) => s.sharing),
    executions: sum((s) => s.executions),
    shared: sum((s) => s.shared),
    audited: sum((s) => s.audited),
    mismatches: sum((s) => s.mismatches),
  };
}
