// The lab's checkers (DESIGN.md rule 7: each has a scenario or test that makes it fire).
//
// - safety: no two honest replicas hold different blocks as finalized at one height — executed,
//   finalized by a finalization or CUP they accepted, or on a finalized chain that a replica found
//   conflicting with what it executed (it stops there; without this the fork looks like a stall);
// - protocol rules, checked on what every run signed and aggregated rather than on their
//   consequences: no honest replica signs a finalization share at a height where it notarization-
//   shared another block; no honest replica signs shares of one kind for two different things at
//   one height (notarization: a second block only of lower rank, or after its maker equivocated);
//   every aggregate an honest replica makes or accepts has its threshold of distinct signers that
//   really signed (safety violations too);
// - state agreement: a state hash is agreed when n − f (2f+1) replicas that executed the same block
//   report it; the others are divergent from their first such height on; with no such group, "no
//   quorum at height h" lists every group. Certified hashes (from the certification shares) are
//   judged the same way where the subnet certifies;
// - validity: honest replicas finalize only valid ingress, each message at most once;
// - liveness: after the last fault heals, every live honest replica keeps finalizing, and every
//   valid message is finalized within the bound.
import type { HashHex, Height, ReplicaId } from "../types.ts";
import { faultsTolerated, replicaName } from "../types.ts";
import type { AggregateSeen, RunRecorder, ShareKind, SignedShare } from "./observations.ts";

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
  const claims = new ForkClaims();
  for (const r of honestReplicas(input)) {
    for (const [h, batch] of input.recorder.delivered[r] ?? []) claims.add(h, batch.block.hash, r, "executed");
    claimFinalizedChain(input.recorder, r, claims);
  }
  const detections = input.recorder.forks.filter((f) => !input.byzantine.has(f.replica));
  for (const fork of detections) {
    claims.add(fork.height, fork.executed, fork.replica, "executed");
    claims.add(fork.height, fork.finalized, fork.replica, "finalized");
  }
  const first = claims.firstFork();
  if (first === undefined) return [];
  const { h, sides } = first;
  const stopped = detections.length === 0
    ? ""
    : `; ${[...new Set(detections.map((f) => f.replica))].sort((a, b) => a - b).map(replicaName).join(",")} found the finalized chain conflicting with what they executed and stopped`;
  const replicas = [...new Set(sides.flatMap(([, byReplica]) => [...byReplica.keys()]))].sort((a, b) => a - b);
  return [{
    property: "safety",
    height: h,
    replicas: replicas.map(replicaName),
    message: `fork at height ${h}: ${sides.map(([hash, byReplica]) => describeSide(hash, byReplica)).join("; ")}${stopped}`,
  }];
}

/**
 * A replica's finalized chain: every block it accepted a finalization (or CUP) for and their
 * ancestors (heights finalized only implicitly have no finalization of their own). Each walk down
 * stops at a block already claimed, so the whole chain costs one step per height.
 */
function claimFinalizedChain(recorder: RunRecorder, r: ReplicaId, claims: ForkClaims): void {
  const finalized = recorder.finalized[r];
  if (finalized === undefined) return;
  const onChain = new Set<HashHex>();
  for (const h of [...finalized.keys()].sort((a, b) => a - b)) {
    for (const tip of finalized.get(h) ?? []) {
      let hash: HashHex | undefined = tip;
      for (let at = h; hash !== undefined && at >= 1 && !onChain.has(hash); at--) {
        onChain.add(hash);
        claims.add(at, hash, r, "finalized");
        hash = recorder.parentOf.get(hash);
      }
    }
  }
}

type Claim = "executed" | "finalized";

/** Per height, per block hash, which honest replicas hold it as finalized and how. */
class ForkClaims {
  private readonly byHeight = new Map<number, Map<HashHex, Map<ReplicaId, Set<Claim>>>>();

  add(h: number, hash: HashHex, r: ReplicaId, how: Claim): void {
    let byHash = this.byHeight.get(h);
    if (byHash === undefined) this.byHeight.set(h, (byHash = new Map()));
    let byReplica = byHash.get(hash);
    if (byReplica === undefined) byHash.set(hash, (byReplica = new Map()));
    const claims = byReplica.get(r);
    if (claims === undefined) byReplica.set(r, new Set([how]));
    else claims.add(how);
  }

  /** The lowest height with two blocks, its sides ordered by hash. */
  firstFork(): { h: number; sides: [HashHex, Map<ReplicaId, Set<Claim>>][] } | undefined {
    const heights = [...this.byHeight.keys()].sort((a, b) => a - b);
    for (const h of heights) {
      const byHash = this.byHeight.get(h);
      if (byHash === undefined || byHash.size < 2) continue;
      return { h, sides: [...byHash.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
    }
    return undefined;
  }
}

function describeSide(hash: HashHex, byReplica: ReadonlyMap<ReplicaId, ReadonlySet<Claim>>): string {
  const rs = [...byReplica.keys()].sort((a, b) => a - b);
  const executed = rs.filter((r) => byReplica.get(r)?.has("executed") === true);
  const finalizedOnly = rs.filter((r) => byReplica.get(r)?.has("executed") !== true);
  const parts = [
    ...(executed.length === 0 ? [] : [`executed by ${executed.map(replicaName).join(",")}`]),
    ...(finalizedOnly.length === 0 ? [] : [`finalized by ${finalizedOnly.map(replicaName).join(",")}`]),
  ];
  return `block ${hash.slice(0, 12)} ${parts.join(", ")}`;
}

// ---- protocol rules ---------------------------------------------------------------------------------

/** At most this many protocol-rule violations are reported per run (the first ones by height). */
const PROTOCOL_VIOLATIONS_MAX = 10;

/** Shares needed for an aggregate of this kind: 2f+1, or f+1 for the random beacon. */
export function thresholdOf(kind: ShareKind, n: number): number {
  const f = faultsTolerated(n);
  return kind === "beacon" ? f + 1 : n - f;
}

export function checkProtocolRules(input: CheckInput): Violation[] {
  const violations: Violation[] = [];
  for (const r of honestReplicas(input)) {
    for (const [h, shares] of input.recorder.signed[r] ?? []) {
      violations.push(...finalizationRule(r, h, shares), ...oneSubjectPerKind(r, h, shares), ...notaryRule(r, h, shares, input.byzantine));
    }
  }
  for (const aggregate of input.recorder.aggregates) {
    if (input.byzantine.has(aggregate.replica)) continue;
    const violation = underSigned(aggregate, input.recorder.n);
    if (violation !== undefined) violations.push(violation);
  }
  return violations
    .sort((a, b) => (a.height ?? 0) - (b.height ?? 0) || (a.replicas[0] ?? "").localeCompare(b.replicas[0] ?? ""))
    .slice(0, PROTOCOL_VIOLATIONS_MAX);
}

const short = (subject: string): string => subject.slice(0, 12);

/** C2 (a): a finalization share only where the replica notarization-shared no other block. */
function finalizationRule(r: ReplicaId, h: Height, shares: readonly SignedShare[]): Violation[] {
  const out: Violation[] = [];
  for (const fin of shares) {
    if (fin.kind !== "finalization") continue;
    const other = shares.find((s) => s.kind === "notarization" && s.subject !== fin.subject);
    if (other === undefined) continue;
    out.push({
      property: "safety",
      height: h,
      replicas: [replicaName(r)],
      message: `finalization rule broken: ${replicaName(r)} signed a finalization share for block ${short(fin.subject)} at height ${h} though it notarization-shared block ${short(other.subject)} there`,
    });
  }
  return out;
}

const SUBJECT_NAMES: Record<Exclude<ShareKind, "notarization">, string> = {
  finalization: "blocks",
  beacon: "parent beacons",
  cup: "catch-up contents",
  certification: "state hashes",
  proposal: "blocks",
};

/**
 * C2 (c): one finalization, beacon, CUP or certification share per replica and height; and one
 * block proposal (an honest maker never equivocates — a replica that forgot, after a restart, the
 * block it proposed would: issue 11 item 7, persist before send).
 */
function oneSubjectPerKind(r: ReplicaId, h: Height, shares: readonly SignedShare[]): Violation[] {
  const out: Violation[] = [];
  for (const kind of Object.keys(SUBJECT_NAMES) as (keyof typeof SUBJECT_NAMES)[]) {
    const subjects = [...new Set(shares.filter((s) => s.kind === kind).map((s) => s.subject))];
    if (subjects.length < 2) continue;
    out.push({
      property: "safety",
      height: h,
      replicas: [replicaName(r)],
      message: `${replicaName(r)} signed ${kind === "proposal" ? "block proposals" : `${kind} shares`} for ${subjects.length} different ${SUBJECT_NAMES[kind]} at height ${h}: ${subjects.map(short).join(", ")}`,
    });
  }
  return out;
}

/**
 * C2 (c) for notarization shares. The IC's notary supports the lowest-ranked proposals it knows,
 * so it may share a second block at a height, but only one of lower rank than every block it
 * shared before there — or after the maker of an earlier one equivocated (was disqualified),
 * which only a Byzantine maker can cause.
 */
function notaryRule(r: ReplicaId, h: Height, shares: readonly SignedShare[], byzantine: ReadonlySet<ReplicaId>): Violation[] {
  const notarizations = shares.filter((s) => s.kind === "notarization");
  for (let j = 1; j < notarizations.length; j++) {
    const later = notarizations[j];
    if (later?.rank === undefined) continue;
    for (const earlier of notarizations.slice(0, j)) {
      if (earlier.subject === later.subject || earlier.rank === undefined) continue;
      if (later.rank < earlier.rank || (earlier.maker !== undefined && byzantine.has(earlier.maker))) continue;
      return [{
        property: "safety",
        height: h,
        replicas: [replicaName(r)],
        message: `${replicaName(r)} notarization-shared two blocks at height ${h}: ${short(earlier.subject)} (rank ${earlier.rank}), then ${short(later.subject)} (rank ${later.rank}), not of lower rank`,
      }];
    }
  }
  return [];
}

/** C2 (b): an aggregate with fewer distinct signers that really signed than its threshold. */
function underSigned(aggregate: AggregateSeen, n: number): Violation | undefined {
  const threshold = thresholdOf(aggregate.kind, n);
  if (aggregate.validSigners >= threshold) return undefined;
  const claimed = aggregate.claimedSigners === undefined
    ? ""
    : ` (it names ${aggregate.claimedSigners.map(replicaName).join(",")}${aggregate.unsignedClaimed.length === 0 ? "" : `; ${aggregate.unsignedClaimed.map(replicaName).join(",")} signed no such share`})`;
  return {
    property: "safety",
    height: aggregate.height,
    replicas: [replicaName(aggregate.replica)],
    message: `${replicaName(aggregate.replica)} ${aggregate.origin === "own" ? "made" : "accepted"} a ${aggregate.kind} at height ${aggregate.height} for ${short(aggregate.subject)} with ${aggregate.validSigners} valid signer(s)${claimed}; it needs ${threshold}`,
  };
}

// ---- state agreement ----------------------------------------------------------------------------------

interface Divergence {
  readonly height: number;
  readonly what: string;
  readonly ours: string;
  readonly agreed: string;
  readonly agreedBy: number;
}

interface NoQuorum {
  readonly height: number;
  readonly what: string;
  readonly groups: readonly (readonly [string, readonly ReplicaId[]])[];
}

export function checkStateAgreement(input: CheckInput): Violation[] {
  const { recorder } = input;
  const n = recorder.n;
  const quorum = n - faultsTolerated(n);
  const divergent = new Map<ReplicaId, Divergence>();
  const noQuorum = new Map<string, { first: NoQuorum; later: number }>();
  const judge = (h: number, what: string, groups: Map<string, ReplicaId[]>): void => {
    if (groups.size < 2) return;
    const sorted = [...groups.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
    const [agreed, agreedBy] = sorted[0] ?? ["", []];
    if (agreedBy.length >= quorum) {
      for (const [hash, rs] of sorted.slice(1)) {
        for (const r of rs) if (!divergent.has(r)) divergent.set(r, { height: h, what, ours: hash, agreed, agreedBy: agreedBy.length });
      }
      return;
    }
    // Replicas already shown divergent by a quorum are expected to differ; the others must agree.
    const undecided = sorted.filter(([, rs]) => rs.some((r) => !divergent.has(r)));
    if (undecided.length < 2) return;
    const seen = noQuorum.get(what);
    if (seen === undefined) noQuorum.set(what, { first: { height: h, what, groups: sorted }, later: 0 });
    else seen.later++;
  };
  const maxHeight = Math.max(0, ...Array.from({ length: n }, (_, r) => recorder.finalHeight(r as ReplicaId)));
  const certified = new Set(recorder.certifiedHeights());
  for (let h = 1; h <= maxHeight; h++) {
    for (const groups of stateGroups(recorder, h as Height)) judge(h, "state", groups);
    if (certified.has(h as Height)) judge(h, "certified state", certifiedGroups(recorder, h as Height));
  }
  const violations: Violation[] = [...divergent.entries()].sort((a, b) => a[0] - b[0]).map(([r, d]) => ({
    property: "state-divergence" as const,
    height: d.height,
    replicas: [replicaName(r)],
    message: `${replicaName(r)} diverged at height ${d.height}: ${d.what} ${d.ours.slice(0, 12)}, majority ${d.agreed.slice(0, 12)} (${d.agreedBy} of ${n} replicas; a quorum is ${quorum})`,
  }));
  for (const { first, later } of noQuorum.values()) {
    violations.push({
      property: "state-divergence",
      height: first.height,
      replicas: first.groups.flatMap(([, rs]) => rs).sort((a, b) => a - b).map(replicaName),
      message: `no quorum at height ${first.height}: no ${first.what} hash has ${quorum} of ${n} replicas (${first.groups.map(([hash, rs]) => `${rs.map(replicaName).join(",")}: ${hash.slice(0, 12)}`).join("; ")})${later === 0 ? "" : `; ${later} later height(s) without a quorum either`}`,
    });
  }
  return violations;
}

/** Per block executed at h: replicas grouped by the state hash they reported (ascending ids). */
function stateGroups(recorder: RunRecorder, h: Height): Map<string, ReplicaId[]>[] {
  const byBlock = new Map<HashHex, Map<string, ReplicaId[]>>();
  for (let r = 0 as ReplicaId; r < recorder.n; r++) {
    const batch = recorder.delivered[r]?.get(h);
    if (batch === undefined) continue;
    let byState = byBlock.get(batch.block.hash);
    if (byState === undefined) byBlock.set(batch.block.hash, (byState = new Map()));
    const group = byState.get(batch.stateHash);
    if (group === undefined) byState.set(batch.stateHash, [r]);
    else group.push(r);
  }
  return [...byBlock.values()];
}

/** Replicas grouped by the certified hash their certification share at h vouched for. */
function certifiedGroups(recorder: RunRecorder, h: Height): Map<string, ReplicaId[]> {
  const groups = new Map<string, ReplicaId[]>();
  for (const [hash, signers] of recorder.certificationSigners(h)) groups.set(hash, [...signers].sort((a, b) => a - b));
  return groups;
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
  const violations = [...checkSafety(input), ...checkProtocolRules(input), ...checkStateAgreement(input), ...checkValidity(input), ...liveness.violations];
  return { violations, livenessChecked: liveness.checked, notes: liveness.note === undefined ? [] : [liveness.note] };
}

export type VerdictText = "pass" | Property;

/** The most severe violated property, or pass. */
export function verdictOf(violations: readonly Violation[]): VerdictText {
  for (const p of PROPERTIES_BY_SEVERITY) if (violations.some((v) => v.property === p)) return p;
  return "pass";
}
