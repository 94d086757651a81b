// Shrinking a failing fault schedule: greedy delta debugging over the scenario — drop faults,
// shorten them, end them earlier, involve fewer replicas, use a smaller subnet (n down to the
// smallest 3f+1 that still fails), end the run earlier — keeping a candidate only if re-running
// it (same seed) still violates the same property class. Every candidate stays within the fault
// bound, so a shrunk counter-example is still a real one. Multi-subnet scenarios (`fuzz --ic`)
// shrink the same way subnet by subnet, plus their XNet partitions; subnet sizes stay.
import { FAULTY_KINDS, replicasOf, windowOf, type FaultSpec } from "../faults/spec.ts";
import type { VerdictText } from "../checks/checks.ts";
import { runScenario } from "../scenario/runner.ts";
import { checkScenario, type Scenario, type SubnetSpec, type XNetPartitionSpec } from "../scenario/scenario.ts";
import { faultsTolerated } from "../types.ts";

export interface ScenarioSize {
  readonly n: number;
  readonly faults: number;
  /** Sum of fault durations in seconds (faults without an end count until the end of the run). */
  readonly faultSeconds: number;
  readonly durationS: number;
}

export interface ShrinkResult {
  readonly scenario: Scenario;
  readonly runs: number;
  readonly before: ScenarioSize;
  readonly after: ScenarioSize;
  readonly steps: readonly string[];
}

export function sizeOf(s: Scenario): ScenarioSize {
  const faults = allFaults(s);
  const faultSeconds = faults.reduce((sum, f) => {
    const { fromS, toS } = windowOf(f);
    return sum + ((toS ?? s.durationS) - fromS) * Math.max(1, replicasOf(f).length);
  }, 0);
  const xnet = s.xnetFaults ?? [];
  const xnetSeconds = xnet.reduce((sum, x) => sum + ((x.toS ?? s.durationS) - x.fromS) * x.groups.length, 0);
  return { n: s.n, faults: faults.length + xnet.length, faultSeconds: faultSeconds + xnetSeconds, durationS: s.durationS };
}

/** The faults of a single-subnet scenario, or of every subnet of a multi-subnet one. */
function allFaults(s: Scenario): readonly FaultSpec[] {
  return s.subnets === undefined ? (s.faults ?? []) : s.subnets.flatMap((sub) => [...(sub.faults ?? [])]);
}

const weight = (z: ScenarioSize): number => z.n * 1000 + z.faults * 10_000 + z.faultSeconds * 10 + z.durationS;

/** Faulty replicas (Byzantine or storage-faulted) stay within f, or the counter-example would prove nothing. */
export function withinFaultBound(s: Scenario): boolean {
  if (s.subnets !== undefined) return s.subnets.every((sub) => withinFaultBound({ ...s, subnets: undefined, n: sub.n, faults: sub.faults ?? [] }));
  const faulty = new Set<number>();
  for (const f of s.faults ?? []) if (FAULTY_KINDS.has(f.kind)) for (const r of replicasOf(f)) faulty.add(r);
  return faulty.size <= faultsTolerated(s.n);
}

export function shrink(scenario: Scenario, seed: number, target: VerdictText, maxRuns = 60): ShrinkResult {
  let best = scenario;
  let runs = 0;
  const steps: string[] = [];
  const stillFails = (candidate: Scenario): boolean => {
    if (runs >= maxRuns || weight(sizeOf(candidate)) >= weight(sizeOf(best))) return false;
    try {
      checkScenario(candidate);
    } catch {
      return false;
    }
    if (!withinFaultBound(candidate)) return false;
    runs++;
    return runScenario(candidate, { seed }).verdict === target;
  };
  const attempt = (label: string, candidate: Scenario): boolean => {
    if (!stillFails(candidate)) return false;
    best = candidate;
    steps.push(label);
    return true;
  };
  for (let changed = true; changed && runs < maxRuns; ) {
    changed = false;
    for (const [label, candidate] of candidates(best)) {
      if (attempt(label, candidate)) {
        changed = true;
        break;
      }
    }
  }
  return { scenario: best, runs, before: sizeOf(scenario), after: sizeOf(best), steps };
}

/** Smaller variants of a scenario, most promising first. */
function* candidates(s: Scenario): Generator<[string, Scenario]> {
  if (s.subnets !== undefined) {
    yield* multiSubnetCandidates(s, s.subnets);
    return;
  }
  yield* faultCandidates(s.faults ?? [], (faults) => ({ ...s, faults }), "");
  const smaller = smallerSubnet(s);
  if (smaller !== undefined) yield [`n ${s.n} → ${smaller.n}`, smaller];
  const earlier = earlierEnd(s);
  if (earlier !== undefined) yield [`end at ${earlier.durationS}s`, earlier];
}

/** Fault-list edits: drop one, shorten one, involve fewer replicas in one. */
function* faultCandidates(faults: readonly FaultSpec[], rebuild: (faults: readonly FaultSpec[]) => Scenario, where: string): Generator<[string, Scenario]> {
  for (let i = faults.length - 1; i >= 0; i--) {
    yield [`drop ${where}fault ${i} (${faults[i]?.kind})`, rebuild(faults.filter((_, j) => j !== i))];
  }
  for (let i = 0; i < faults.length; i++) {
    const f = faults[i] as FaultSpec;
    const replace = (g: FaultSpec): readonly FaultSpec[] => faults.map((x, j) => (j === i ? g : x));
    const shorter = shorten(f);
    if (shorter !== undefined) yield [`shorten ${where}fault ${i} (${f.kind})`, rebuild(replace(shorter))];
    const fewer = fewerReplicas(f);
    if (fewer !== undefined) yield [`fewer replicas in ${where}fault ${i} (${f.kind})`, rebuild(replace(fewer))];
  }
}

/** Per subnet: its fault edits; then the XNet partitions dropped or shortened; then an earlier end. */
function* multiSubnetCandidates(s: Scenario, subnets: readonly SubnetSpec[]): Generator<[string, Scenario]> {
  for (let k = 0; k < subnets.length; k++) {
    const sub = subnets[k] as SubnetSpec;
    const rebuild = (faults: readonly FaultSpec[]): Scenario => ({ ...s, subnets: subnets.map((x, j) => (j === k ? { ...sub, faults } : x)) });
    yield* faultCandidates(sub.faults ?? [], rebuild, `subnet ${sub.name} `);
  }
  const xnet = s.xnetFaults ?? [];
  for (let i = xnet.length - 1; i >= 0; i--) yield [`drop XNet partition ${i}`, { ...s, xnetFaults: xnet.filter((_, j) => j !== i) }];
  for (let i = 0; i < xnet.length; i++) {
    const shorter = shortenXNet(xnet[i] as XNetPartitionSpec, s.durationS);
    if (shorter !== undefined) yield [`shorten XNet partition ${i}`, { ...s, xnetFaults: xnet.map((x, j) => (j === i ? shorter : x)) }];
  }
  const earlier = earlierEnd(s);
  if (earlier !== undefined) yield [`end at ${earlier.durationS}s`, earlier];
}

function shortenXNet(x: XNetPartitionSpec, durationS: number): XNetPartitionSpec | undefined {
  const toS = x.toS ?? durationS;
  if (toS - x.fromS <= 1) return undefined;
  return { ...x, toS: x.fromS + Math.max(1, Math.floor((toS - x.fromS) / 2)) };
}

function shorten(f: FaultSpec): FaultSpec | undefined {
  if (f.kind === "crash") {
    if (f.restartS === undefined || f.restartS - f.atS <= 1) return undefined;
    return { ...f, restartS: f.atS + Math.max(1, Math.floor((f.restartS - f.atS) / 2)) };
  }
  const { fromS, toS } = windowOf(f);
  if (toS === undefined || toS - fromS <= 1) return undefined;
  return { ...f, toS: fromS + Math.max(1, Math.floor((toS - fromS) / 2)) } as FaultSpec;
}

function fewerReplicas(f: FaultSpec): FaultSpec | undefined {
  switch (f.kind) {
    case "partition": {
      const groups = f.groups.filter((g) => g.length > 0);
      const first = groups[0];
      if (first === undefined || first.length <= 1) return undefined;
      return { ...f, groups: [first.slice(0, -1), ...groups.slice(1)] };
    }
    case "partition-oneway":
      if (f.from.length > 1) return { ...f, from: f.from.slice(0, -1) };
      if (f.to.length > 1) return { ...f, to: f.to.slice(0, -1) };
      return undefined;
    case "network":
      return f.replicas !== undefined && f.replicas.length > 1 ? { ...f, replicas: f.replicas.slice(0, -1) } : undefined;
    case "collude":
      return undefined;
    default:
      return f.replicas.length > 1 ? ({ ...f, replicas: f.replicas.slice(0, -1) } as FaultSpec) : undefined;
  }
}

/** The next smaller subnet of size 3f+1; faults on replicas that no longer exist are dropped. */
function smallerSubnet(s: Scenario): Scenario | undefined {
  const f = faultsTolerated(s.n);
  if (f <= 1) return undefined;
  const n = 3 * (f - 1) + 1;
  const keep = (r: number): boolean => r < n;
  const faults: FaultSpec[] = [];
  for (const fault of s.faults ?? []) {
    const mapped = restrict(fault, keep);
    if (mapped !== undefined) faults.push(mapped);
  }
  return { ...s, n, faults };
}

function restrict(f: FaultSpec, keep: (r: number) => boolean): FaultSpec | undefined {
  switch (f.kind) {
    case "partition": {
      const groups = f.groups.map((g) => g.filter(keep)).filter((g) => g.length > 0);
      return groups.length === 0 ? undefined : { ...f, groups };
    }
    case "partition-oneway": {
      const from = f.from.filter(keep);
      const to = f.to.filter(keep);
      return from.length === 0 || to.length === 0 ? undefined : { ...f, from, to };
    }
    case "network":
      if (f.replicas === undefined) return f;
      return f.replicas.filter(keep).length === 0 ? undefined : { ...f, replicas: f.replicas.filter(keep) };
    case "collude": {
      const replicas = f.replicas.filter(keep);
      return replicas.length === 0 ? undefined : { ...f, replicas, sideA: f.sideA.filter(keep) };
    }
    default: {
      const replicas = f.replicas.filter(keep);
      return replicas.length === 0 ? undefined : ({ ...f, replicas } as FaultSpec);
    }
  }
}

/** Ends the run 10 s earlier, but never before the faults end plus the liveness bound. */
function earlierEnd(s: Scenario): Scenario | undefined {
  const bound = s.livenessBoundS ?? 30;
  const lastFault = Math.max(0, ...allFaults(s).map((f) => windowOf(f).toS ?? windowOf(f).fromS), ...(s.xnetFaults ?? []).map((x) => x.toS ?? x.fromS));
  const durationS = Math.max(Math.ceil(lastFault) + bound + 1, s.durationS - 10);
  if (durationS >= s.durationS) return undefined;
  const workload = s.workload === undefined ? undefined : { ...s.workload, stopS: Math.min(s.workload.stopS ?? durationS, durationS - bound) };
  return { ...s, durationS, ...(workload === undefined ? {} : { workload }) };
}
