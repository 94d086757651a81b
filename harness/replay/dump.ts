// `replay --dump rN`: a readable snapshot of one replica where the replay stopped — its finalized
// chain tail, pool contents by height, ingress pool, state machine and checkpoints.
import type { SimSubnet } from "../replica/subnet.ts";
import { KvStateMachine } from "../replica/kv-state-machine.ts";
import { height, replicaName, type ReplicaId } from "../types.ts";

export function dumpReplica(subnet: SimSubnet, id: ReplicaId, chainTail = 12): string {
  const replica = subnet.replica(id);
  const lines: string[] = [`== ${replicaName(id)} at ${(subnet.loop.now() / 1e6).toFixed(3)} s (virtual)`];
  if (replica === undefined) return `${lines[0]}: down (crashed)\n`;
  const pool = replica.consensusPool;
  lines.push(`heights: finalized ${replica.finalizedHeight}, notarized ${replica.notarizedHeight}, delivered ${replica.deliveredHeight}, beacon ${pool.beaconHeight}, CUP ${replica.cupHeight}`);
  lines.push("finalized chain (newest first):");
  for (let h = replica.finalizedHeight; h > Math.max(0, replica.finalizedHeight - chainTail); h--) {
    const block = pool.finalizedBlock(height(h));
    lines.push(block === undefined
      ? `  ${h}: (block purged or missing)`
      : `  ${h}: ${block.hash.slice(0, 16)} maker ${replicaName(block.maker)} rank ${block.rank} ingress ${block.ingress.length} ${block.isSummary ? "summary" : ""} state ${replica.stateMachine.stateHashAt(height(h))?.slice(0, 16) ?? "-"}`);
  }
  lines.push("pool (validated) by height:");
  const heights = new Set<number>([...pool.proposals.keys(), ...pool.notarizations.keys(), ...pool.finalizations.keys(), ...pool.notarizationShares.keys(), ...pool.finalizationShares.keys(), ...pool.beacons.keys()]);
  for (const h of [...heights].sort((a, b) => b - a).slice(0, chainTail)) {
    const hh = height(h);
    const shares = (m: Map<string, Map<number, unknown>> | undefined): string =>
      [...(m?.entries() ?? [])].map(([hash, s]) => `${hash.slice(0, 8)}×${s.size}`).join(" ") || "-";
    lines.push(`  ${h}: proposals ${pool.proposals.get(hh)?.size ?? 0}, notarization shares ${shares(pool.notarizationShares.get(hh))}, notarized ${[...(pool.notarizations.get(hh)?.keys() ?? [])].map((x) => x.slice(0, 8)).join(",") || "-"}, finalization shares ${shares(pool.finalizationShares.get(hh))}, finalized ${[...(pool.finalizations.get(hh)?.keys() ?? [])].map((x) => x.slice(0, 8)).join(",") || "-"}, beacon ${pool.beacons.has(hh) ? "yes" : "no"}, equivocations ${pool.equivocations.get(hh)?.size ?? 0}`);
  }
  lines.push(`unvalidated artifacts: ${pool.unvalidated.size}; ingress pool: ${replica.ingressPoolSize} messages`);
  const machine = replica.stateMachine;
  if (machine instanceof KvStateMachine) {
    lines.push(`state: ${machine.entryCount} keys; state hash at delivered height ${machine.stateHashAt(replica.deliveredHeight) ?? "-"}`);
  }
  return `${lines.join("\n")}\n`;
}
