// The lab's checkers (DESIGN.md rule 7: each has a scenario or test that makes it fire).
//
// - safety: no two honest replicas deliver different blocks at one height (so finalized chains
//   are prefixes of one another);
// - state agreement: replicas that executed the same block reach the same state hash; a replica
//   that differs from the majority is named with the first height where it differs;
// - validity: honest replicas finalize only valid ingress, each message at most once;
// - liveness: after the last fault heals, every live honest replica keeps finalizing, and every
//   valid message is finalized within the bound.
import type { HashHex, Height, ReplicaId } from "../types.ts";
import { replicaName } from "../types.ts";
import type { RunRecorder } from "./observations.ts";

/** "invariant": an application invariant the scenario declares (ledger conservation, probes, answers). */
export type Property = "safety" | "state-divergence" | "validity" | "liveness" | "invariant";
export const PROPERTIES_BY_SEVERITY: readonly Property[] = ["safety", "state-divergence", "validity", "liveness", "invariant"];

export interface Violation {
  readonly property: Property;
  readonly message: string;
  /** Replica names involved (`r3`). */
  readonly replicas: readonly string[];
  readonly height?: number;
  readonly atUs?: number;
}

export interface CheckInput {
  readonly recorder: RunRecorder;
  readonly byzantine: ReadonlySet<ReplicaId>;
  readonly permanentlyDown: ReadonlySet<ReplicaId>;
  readonly validIngress: ReadonlySet<HashHex>;
  /** When an honest replica first accepted each valid message (the liveness clock starts there). */
  readonly submitTimes: ReadonlyMap<HashHex, number>;
  readonly healUs: number | undefined;
  readonly endUs: number;
  readonly livenessBoundUs: number;
}

export interface CheckResult {
  readonly violations: Violation[];
  readonly livenessChecked: boolean;
  readonly notes: string[];
}

const replicaIds = (n: number): ReplicaId[] => Array.from({ length: n }, (_, i) => i as ReplicaId);

export function honestReplicas(input: CheckInput): ReplicaId[] {
  return replicaIds(input.recorder.n).filter((r) => !input.byzantine.has(r));
}

export function checkSafety(input: CheckInput): Violation[] {
  const byHeight = new Map<number, Map<HashHex, ReplicaId[]>>();
  for (const r of honestReplicas(input)) {
    for (const [h, batch] of input.recorder.delivered[r] ?? []) {
      const groups = byHeight.get(h) ?? new Map<HashHex, ReplicaId[]>();
      byHeight.set(h, groups);
      const list = groups.get(batch.block.hash) ?? [];
      list.push(r);
      groups.set(batch.block.hash, list);
    }
  }
  const heights = [...byHeight.keys()].sort((a, b) => a - b);
  for (const h of heights) {
    const groups = byHeight.get(h);
    if (groups === undefined || groups.size < 2) continue;
    const sides = [...groups.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const described = sides.map(([hash, rs]) => `${rs.map(replicaName).join(",")} finalized ${hash.slice(0, 12)}`).join("; ");
    return [{
      property: "safety",
      height: h,
      replicas: sides.flatMap(([, rs]) => rs.map(replicaName)),
      message: `fork at height ${h}: ${described}`,
    }];
  }
  return [];
}

export function checkStateAgreement(input: CheckInput): Violation[] {
  const n = input.recorder.n;
  const firstDivergence = new Map<ReplicaId, { height: number; ours: HashHex; majority: HashHex }>();
  const maxHeight = Math.max(0, ...replicaIds(n).map((r) => input.recorder.finalHeight(r)));
  for (let h = 1; h <= maxHeight; h++) {
    // Group by block: only replicas that executed the same block must agree on the state.
    const byBlock = new Map<HashHex, Map<HashHex, ReplicaId[]>>();
    for (const r of replicaIds(n)) {
      const batch = input.recorder.delivered[r]?.get(h as Height);
      if (batch === undefined || firstDivergence.has(r)) continue;
      const byState = byBlock.get(batch.block.hash) ?? new Map<HashHex, ReplicaId[]>();
      byBlock.set(batch.block.hash, byState);
      byState.set(batch.stateHash, [...(byState.get(batch.stateHash) ?? []), r]);
    }
    for (const byState of byBlock.values()) {
      if (byState.size < 2) continue;
      const ranked = [...byState.entries()].sort((a, b) => b[1].length - a[1].length || (a[1][0] ?? 0) - (b[1][0] ?? 0));
      const majority = ranked[0];
      if (majority === undefined) continue;
      for (const [hash, rs] of ranked.slice(1)) {
        for (const r of rs) firstDivergence.set(r, { height: h, ours: hash, majority: majority[0] });
      }
    }
  }
  return [...firstDivergence.entries()].sort((a, b) => a[0] - b[0]).map(([r, d]) => ({
    property: "state-divergence" as const,
    height: d.height,
    replicas: [replicaName(r)],
    message: `${replicaName(r)} diverged at height ${d.height}: state ${d.ours.slice(0, 12)}, majority ${d.majority.slice(0, 12)}`,
  }));
}

export function checkValidity(input: CheckInput): Violation[] {
  const violations: Violation[] = [];
  for (const r of honestReplicas(input)) {
    const seen = new Set<HashHex>();
    const heights = [...(input.recorder.delivered[r]?.keys() ?? [])].sort((a, b) => a - b);
    for (const h of heights) {
      const batch = input.recorder.delivered[r]?.get(h);
      for (const message of batch?.block.ingress ?? []) {
        const problem = !input.validIngress.has(message.id) ? "invalid ingress" : seen.has(message.id) ? "ingress finalized twice" : undefined;
        seen.add(message.id);
        if (problem === undefined) continue;
        violations.push({
          property: "validity",
          height: h,
          replicas: [replicaName(r), `maker:${replicaName(batch?.block.maker ?? (0 as ReplicaId))}`],
          message: `${replicaName(r)} finalized ${problem} ${message.id.slice(0, 12)} at height ${h}`,
        });
        if (violations.length >= 10) return violations;
      }
    }
  }
  return violations;
}

export function checkLiveness(input: CheckInput): { violations: Violation[]; checked: boolean; note?: string } {
  const heal = input.healUs ?? 0;
  if (!Number.isFinite(heal)) return { violations: [], checked: false, note: "liveness not checked: a fault never heals" };
  if (heal + input.livenessBoundUs > input.endUs) {
    return { violations: [], checked: false, note: "liveness not checked: the run ends less than one bound after the last heal" };
  }
  const live = honestReplicas(input).filter((r) => !input.permanentlyDown.has(r));
  const violations: Violation[] = [];
  const cutoff = input.endUs - input.livenessBoundUs;
  // Consensus makes a block every round even without ingress, so a live replica's height must
  // rise within the last bound, and reach what any live honest replica had one bound earlier.
  const target = Math.max(0, ...live.map((r) => input.recorder.heightAt(r, cutoff)));
  for (const r of live) {
    const final = input.recorder.finalHeight(r);
    const before = input.recorder.heightAt(r, Math.max(heal, cutoff));
    if (final <= before || final < target) {
      violations.push({
        property: "liveness",
        replicas: [replicaName(r)],
        height: final,
        message: `${replicaName(r)} ended at height ${final}: ${final <= before ? `no progress in the last ${input.livenessBoundUs / 1e6}s after the heal` : `behind ${target}, the height live honest replicas had one bound before the end`}`,
      });
    }
  }
  const late: HashHex[] = [];
  for (const id of input.validIngress) {
    const submitted = input.submitTimes.get(id);
    if (submitted === undefined) continue;
    const deadline = Math.max(submitted, heal) + input.livenessBoundUs;
    if (deadline > input.endUs) continue;
    const finalizedAt = input.recorder.finalizedIngressAt.get(id);
    if (finalizedAt === undefined || finalizedAt > deadline) late.push(id);
  }
  if (late.length > 0) {
    violations.push({
      property: "liveness",
      replicas: [],
      message: `${late.length} valid ingress message(s) not finalized within ${input.livenessBoundUs / 1e6}s, e.g. ${late.slice(0, 3).map((id) => id.slice(0, 12)).join(", ")}`,
    });
  }
  return { violations, checked: true };
}

export function runChecks(input: CheckInput): CheckResult {
  const liveness = checkLiveness(input);
  const violations = [...checkSafety(input), ...checkStateAgreement(input), ...checkValidity(input), ...liveness.violations];
  return { violations, livenessChecked: liveness.checked, notes: liveness.note === undefined ? [] : [liveness.note] };
}

export type VerdictText = "pass" | Property;

/** The most severe violated property, or pass. */
export function verdictOf(violations: readonly Violation[]): VerdictText {
  for (const p of PROPERTIES_BY_SEVERITY) if (violations.some((v) => v.property === p)) return p;
  return "pass";
}
