// Application-level checkers for runs with canisters (issue 4; DESIGN.md rule 7 — each one has a
// test that makes it fire, test/checks/invariants.test.ts):
//
// - ledger conservation: over all ledgers (on any subnets), Σ supply + Σ in_flight − (Σ received
//   − Σ sent) = Σ minted — an amount in flight that the other ledger already credited (its reply
//   not back yet) is counted once — so at quiescence Σ (supply + in_flight) = Σ minted; and no
//   acknowledged transfer is lost: sent ≤ received ≤ sent + in flight;
// - probes: every honest replica gives the same answer; the scenario's equal/differ expectations;
// - every call answered: a finalized call ends replied or rejected on every live honest replica;
// - certification: per subnet, one certified hash per height, and an honest replica whose own
//   certified state (replies included, /request_status) differs from the certified one is named.
import type { ProbeRecord } from "../scenario/actions.ts";
import type { ProbeExpectations } from "../scenario/calls.ts";
import type { Violation } from "./checks.ts";

export interface LedgerView {
  readonly supply: bigint;
  readonly inFlight: bigint;
  readonly minted: bigint;
  readonly sentTotal: bigint;
  readonly receivedTotal: bigint;
}

export interface LedgerObservation {
  readonly ledger: string;
  /** Honest replica name → what it answered (undefined: it could not answer). */
  readonly views: ReadonlyMap<string, LedgerView | undefined>;
}

const show = (v: LedgerView): string => `supply ${v.supply}, in flight ${v.inFlight}, minted ${v.minted}, sent ${v.sentTotal}, received ${v.receivedTotal}`;

/** The answer most replicas gave (ties: the first in replica order), and who disagreed. */
function majority<T>(answers: ReadonlyMap<string, T>, key: (t: T) => string): { value: T | undefined; dissenters: string[] } {
  const counts = new Map<string, { n: number; value: T }>();
  for (const v of answers.values()) {
    const k = key(v);
    const c = counts.get(k);
    counts.set(k, { n: (c?.n ?? 0) + 1, value: v });
  }
  let best: { n: number; value: T } | undefined;
  for (const c of counts.values()) if (best === undefined || c.n > best.n) best = c;
  if (best === undefined) return { value: undefined, dissenters: [] };
  const bestKey = key(best.value);
  return { value: best.value, dissenters: [...answers].filter(([, v]) => key(v) !== bestKey).map(([r]) => r) };
}

export function checkLedgerConservation(observations: readonly LedgerObservation[]): Violation[] {
  const violations: Violation[] = [];
  const views: { ledger: string; view: LedgerView }[] = [];
  for (const o of observations) {
    const answered = new Map([...o.views].filter((e): e is [string, LedgerView] => e[1] !== undefined));
    const { value, dissenters } = majority(answered, show);
    if (value === undefined) {
      violations.push({ property: "invariant", message: `ledger ${o.ledger}: no honest replica could answer its stats`, replicas: [] });
      continue;
    }
    if (dissenters.length > 0) violations.push({ property: "invariant", message: `ledger ${o.ledger}: replicas disagree on its books (${dissenters.join(", ")} differ from ${show(value)})`, replicas: dissenters });
    views.push({ ledger: o.ledger, view: value });
  }
  if (views.length < observations.length) return violations;
  const sum = (f: (v: LedgerView) => bigint): bigint => views.reduce((a, { view }) => a + f(view), 0n);
  const sent = sum((v) => v.sentTotal);
  const received = sum((v) => v.receivedTotal);
  const inFlight = sum((v) => v.inFlight);
  const creditedNotSettled = received - sent;
  const held = sum((v) => v.supply + v.inFlight) - creditedNotSettled;
  const minted = sum((v) => v.minted);
  const detail = views.map(({ ledger, view }) => `${ledger}: ${show(view)}`).join("; ");
  if (held !== minted) {
    violations.push({ property: "invariant", message: `ledger supply not conserved: Σ(supply + in flight) − credited-not-settled = ${held} but Σ minted = ${minted} (${detail})`, replicas: [] });
  }
  if (received < sent || received > sent + inFlight) {
    violations.push({ property: "invariant", message: `acknowledged transfers lost or invented: Σ sent = ${sent}, Σ received = ${received}, Σ in flight = ${inFlight} (${detail})`, replicas: [] });
  }
  return violations;
}

/**
 * Probes: replicas that executed the same height must answer alike (a replica behind the others
 * may answer differently and is not judged); the agreed answer is that of the largest group of
 * replicas at one height (ties: the higher height).
 */
export function checkProbes(probes: readonly ProbeRecord[], expect: ProbeExpectations | undefined): Violation[] {
  const violations: Violation[] = [];
  const agreed = new Map<string, string | undefined>();
  for (const p of probes) {
    const byHeight = new Map<number, Map<string, string>>();
    for (const [replica, answer] of Object.entries(p.answers)) {
      const h = p.heights?.[replica] ?? 0;
      const group = byHeight.get(h) ?? new Map<string, string>();
      group.set(replica, answer);
      byHeight.set(h, group);
    }
    const groups = [...byHeight].sort(([ha, a], [hb, b]) => b.size - a.size || hb - ha);
    let value: string | undefined;
    groups.forEach(([h, group], i) => {
      const verdict = majority(group, (a) => a);
      if (i === 0) value = verdict.value;
      if (verdict.dissenters.length > 0) violations.push({ property: "invariant", message: `probe ${p.label} at ${p.atS} s: at height ${h}, ${verdict.dissenters.join(", ")} answered differently from the others (${verdict.value ?? "nothing"})`, replicas: verdict.dissenters });
    });
    agreed.set(p.label, value);
  }
  const compare = (x: string, y: string, wantEqual: boolean): void => {
    const a = agreed.get(x);
    const b = agreed.get(y);
    if (a === undefined || b === undefined) {
      violations.push({ property: "invariant", message: `probe ${a === undefined ? x : y} has no answer (did it run?)`, replicas: [] });
      return;
    }
    if ((a === b) !== wantEqual) violations.push({ property: "invariant", message: `probes ${x} and ${y} should ${wantEqual ? "agree" : "differ"}: ${x} = ${a}; ${y} = ${b}`, replicas: [] });
  };
  for (const [x, y] of expect?.equal ?? []) compare(x, y, true);
  for (const [x, y] of expect?.differ ?? []) compare(x, y, false);
  return violations;
}

export interface UnansweredCall {
  readonly replica: string;
  readonly messageId: string;
  readonly status: string;
}

export function checkEveryCallAnswered(unanswered: readonly UnansweredCall[]): Violation[] {
  if (unanswered.length === 0) return [];
  const replicas = [...new Set(unanswered.map((u) => u.replica))].sort();
  const examples = unanswered.slice(0, 5).map((u) => `${u.messageId.slice(0, 16)} on ${u.replica} (${u.status})`).join(", ");
  return [{ property: "invariant", message: `${unanswered.length} finalized call(s) never answered: ${examples}`, replicas }];
}

export interface CertificationObservation {
  readonly replica: string;
  readonly height: number;
  /** The hash the subnet certified (the certification this replica holds). */
  readonly certified: string;
  /** The replica's own certified-state hash at that height (undefined: not executed yet). */
  readonly own: string | undefined;
  /**
   * True when the replica refused the certification (validly signed, not over its own hash): it
   * diverged if `certified` is what the subnet certified at that height, else it was a replay.
   */
  readonly refused?: boolean;
}

/** Heights a subnet's certification may trail its execution before it counts as stalled. */
export const CERTIFICATION_LAG_LIMIT = 10;

/**
 * `executedHeight`: the highest height the subnet's honest replicas executed; certification must
 * keep up with it (honest replicas keep certifying even when one replica's state diverges).
 */
export function checkCertifications(subnet: string, observations: readonly CertificationObservation[], executedHeight: number): Violation[] {
  const violations: Violation[] = [];
  const certifiedHeight = Math.max(0, ...observations.map((o) => o.height));
  if (executedHeight - certifiedHeight > CERTIFICATION_LAG_LIMIT) {
    violations.push({ property: "liveness", message: `subnet ${subnet} stopped certifying: last certified height ${certifiedHeight}, executed up to ${executedHeight}`, replicas: [], height: certifiedHeight });
  }
  const byHeight = new Map<number, Set<string>>();
  const divergent = new Map<string, number>();
  const adopted = observations.filter((o) => o.refused !== true);
  for (const o of adopted) {
    const hashes = byHeight.get(o.height) ?? new Set<string>();
    hashes.add(o.certified);
    byHeight.set(o.height, hashes);
    if (o.own !== undefined && o.own !== o.certified && !divergent.has(o.replica)) divergent.set(o.replica, o.height);
  }
  // A refused certification names its replica only when it is what the subnet certified there: a
  // genuine certification replayed under another height must be refused, and that is no divergence.
  for (const o of observations) {
    if (o.refused !== true || divergent.has(o.replica)) continue;
    const subnetCertified = byHeight.get(o.height);
    if (subnetCertified?.size === 1 && subnetCertified.has(o.certified)) divergent.set(o.replica, o.height);
  }
  for (const [h, hashes] of byHeight) {
    if (hashes.size > 1) violations.push({ property: "safety", message: `subnet ${subnet} certified ${hashes.size} different states at height ${h}`, replicas: [], height: h });
  }
  for (const [replica, h] of divergent) {
    violations.push({ property: "state-divergence", message: `${replica}'s certified state (replies, streams, canister data) differs from what subnet ${subnet} certified at height ${h}`, replicas: [replica], height: h });
  }
  return violations;
}
