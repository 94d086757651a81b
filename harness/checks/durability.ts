// Acknowledged updates survive (issue 11, item 7: storage faults). An update is acknowledged once
// a replica executed it in a finalized block; from then on that replica's state must hold it, even
// after its disk lost unsynced writes, tore one, or rotted — recovery (an older checkpoint and
// re-execution, or state sync from peers) must bring it back. At the end of a run whose faults
// healed at least a liveness bound earlier, every live honest replica's current state is asked
// about every message it executed (within the ingress TTL, after which the history forgets it).
import { MAX_INGRESS_TTL_US } from "../consensus/config.ts";
import { replicaName, type HashHex, type Height, type ReplicaId } from "../types.ts";
import type { Violation } from "./checks.ts";
import type { RunRecorder } from "./observations.ts";

/** A replica's state as it is at the end of the run. */
export interface FinalState {
  /** The last height its state machine executed (or installed by state sync). */
  readonly executedHeight: number;
  /** Whether its state's ingress history holds the message (any status). */
  knows(id: HashHex): boolean;
}

export interface DurabilityInput {
  readonly recorder: RunRecorder;
  /** Judged: honest replicas that are up at the end. */
  readonly replicas: readonly ReplicaId[];
  readonly stateOf: (r: ReplicaId) => FinalState | undefined;
  readonly endUs: number;
}

/** One violation per replica whose state lost updates it had executed. */
export function checkAcknowledgedUpdates(input: DurabilityInput): Violation[] {
  const violations: Violation[] = [];
  const oldestJudgedUs = input.endUs - MAX_INGRESS_TTL_US;
  for (const r of input.replicas) {
    const state = input.stateOf(r);
    if (state === undefined) continue;
    const lost: { id: HashHex; height: Height }[] = [];
    for (const [h, batch] of input.recorder.delivered[r] ?? []) {
      if (batch.block.context.timeUs < oldestJudgedUs) continue;
      for (const message of batch.block.ingress) if (!state.knows(message.id)) lost.push({ id: message.id, height: h });
    }
    if (lost.length === 0) continue;
    lost.sort((a, b) => a.height - b.height || (a.id < b.id ? -1 : 1));
    const first = lost[0]!;
    violations.push({
      property: "invariant",
      height: first.height,
      replicas: [replicaName(r)],
      message: `acknowledged updates lost: ${replicaName(r)} executed ${lost.length} message(s) that its state (now at height ${state.executedHeight}) no longer holds, the first ${first.id.slice(0, 12)} at height ${first.height}`,
    });
  }
  return violations;
}
