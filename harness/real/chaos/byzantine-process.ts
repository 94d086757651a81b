// Byzantine faults inside a real-mode replica process (issue 12 item 9). `run --real` starts the
// faulty replica with `--byzantine <json>` (`{"faults": [FaultSpec, ...]}`, the scenario's Byzantine
// faults naming it); this module turns them into the simulator's own injectors — the behaviour of
// harness/faults/schedule.ts and, on the execution subnet real mode runs, the diverge corruptors of
// harness/scenario/runner.ts — so real mode runs the very code the simulator runs, not a copy.
//
// Fault windows count from the run's origin (the scenario's second 0), which the parent sends over
// IPC once the canister is deployed (`run-origin`). Before it arrives nothing is active.
import { compileFaults } from "../../faults/schedule.ts";
import { BYZANTINE_KINDS, replicasOf, type FaultSpec } from "../../faults/spec.ts";
import type { NodeSigner } from "../../crypto/interfaces.ts";
import type { ReplicaBehaviour } from "../../replica/behaviour.ts";
import type { ExecutionMachineOptions } from "../../replica/execution-state-machine.ts";
import { executionCorruptor } from "../../scenario/runner.ts";
import type { TraceEvent } from "../../sim/env.ts";
import type { ReplicaId, TimeUs } from "../../types.ts";
import type { FrameTransport } from "../env.ts";

export const BYZANTINE_OPTION = "--byzantine";

/** The command-line value for a replica's Byzantine faults (undefined when it has none). */
export function byzantineArgument(faults: readonly FaultSpec[], replica: number): string | undefined {
  const own = faults.filter((f) => BYZANTINE_KINDS.has(f.kind) && replicasOf(f).includes(replica));
  return own.length === 0 ? undefined : JSON.stringify({ faults: own });
}

export class ByzantineArgumentError extends Error {}

export function parseByzantineArgument(text: string): readonly FaultSpec[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new ByzantineArgumentError(`${BYZANTINE_OPTION} takes JSON {"faults": [...]}: ${(error as Error).message}`);
  }
  const faults = (doc as { faults?: unknown } | null)?.faults;
  if (!Array.isArray(faults) || faults.some((f) => typeof f !== "object" || f === null || !BYZANTINE_KINDS.has((f as FaultSpec).kind))) {
    throw new ByzantineArgumentError(`${BYZANTINE_OPTION}: "faults" must list Byzantine faults (${[...BYZANTINE_KINDS].join(", ")})`);
  }
  return faults as FaultSpec[];
}

export interface ByzantineHost {
  readonly self: ReplicaId;
  readonly n: number;
  readonly signer: NodeSigner;
  /** The replica's clock: µs since the epoch. */
  now(): number;
  /** Records a malicious act (trace and event file). */
  log(event: TraceEvent): void;
}

export interface ByzantineProcess {
  readonly behaviour: ReplicaBehaviour | undefined;
  /** The ExecutionStateMachine options of `diverge` faults (corrupt state, replies or execution). */
  readonly machineOptions: Pick<ExecutionMachineOptions, "corrupt" | "corruptReplies" | "perturbExecution">;
  /** The transport the Env sends through: bytes rewritten when a `garble` fault says so. */
  wrapTransport(transport: FrameTransport): FrameTransport;
  /** The run's origin arrived (wall µs of scenario second 0). */
  setOrigin(atUs: number): void;
}

/** Before the origin is known the injectors see a time before every window. */
const BEFORE_THE_RUN = -1 as TimeUs;

export function byzantineProcess(faults: readonly FaultSpec[], host: ByzantineHost): ByzantineProcess {
  let originUs: number | undefined;
  const runTime = (): TimeUs => (originUs === undefined ? BEFORE_THE_RUN : ((host.now() - originUs) as TimeUs));
  const compiled = compileFaults(faults);
  const behaviour = compiled.behaviourOf(host.self, { self: host.self, n: host.n, signer: host.signer, now: runTime, log: (event) => host.log({ ...event, malicious: true }) });
  const shifted = (target: "state" | "replies" | "execution", kind: string): ((h: number, timeNs: bigint) => boolean) | undefined => {
    const corruptor = executionCorruptor(faults, host.self, target, (h) => host.log({ kind, malicious: true, detail: { height: h } }));
    if (corruptor === undefined) return undefined;
    // Block times are wall time; the fault's window is scenario time.
    return (h, timeNs) => originUs !== undefined && corruptor(h, timeNs - BigInt(originUs) * 1000n);
  };
  const corrupt = shifted("state", "fault.diverge-execution");
  const corruptReplies = shifted("replies", "fault.diverge-replies");
  const perturbExecution = shifted("execution", "fault.diverge-inside-execution");
  const rewriteWire = behaviour?.rewriteWire;
  return {
    behaviour,
    machineOptions: {
      ...(corrupt === undefined ? {} : { corrupt }),
      ...(corruptReplies === undefined ? {} : { corruptReplies }),
      ...(perturbExecution === undefined ? {} : { perturbExecution }),
    },
    wrapTransport: (transport) =>
      rewriteWire === undefined ? transport : { send: (to, bytes) => transport.send(to, rewriteWire(to, bytes)), setFrameHandler: (handler) => transport.setFrameHandler(handler) },
    setOrigin: (atUs) => {
      originUs = atUs;
    },
  };
}
