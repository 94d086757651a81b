// Facts the report derives from a RunReport: which lanes a fault touches, a fault in words, the
// majority of a state-hash column, when a violation happened, where a replica stalled. Pure
// functions, so that tests can pin them down without rendering anything.
import type { Violation } from "../checks/checks.ts";
import { BYZANTINE_KINDS, replicasOf, windowOf, type FaultKind, type FaultSpec } from "../faults/spec.ts";
import type { RunReport } from "../scenario/runner.ts";
import type { XNetPartitionSpec } from "../scenario/scenario.ts";

export type FaultCategory = "byzantine" | "partition" | "crash" | "slow" | "network";

export function faultCategory(kind: FaultKind | XNetPartitionSpec["kind"]): FaultCategory {
  if (kind === "partition-subnets") return "partition";
  if (BYZANTINE_KINDS.has(kind)) return "byzantine";
  if (kind === "partition" || kind === "partition-oneway" || kind === "isolate") return "partition";
  if (kind === "crash") return "crash";
  if (kind === "lag" || kind === "slow") return "slow";
  return "network";
}

export const CATEGORY_LABEL: Record<FaultCategory, string> = {
  byzantine: "Byzantine (malicious code)",
  partition: "partition / isolation",
  crash: "crash (down)",
  slow: "lag / slow machine",
  network: "network loss, duplication, reordering",
};

/** Replicas (0-based) whose lane a fault touches: a partition cuts everyone, not only the listed group. */
export function faultLanes(spec: FaultSpec, n: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (spec.kind === "partition") return all;
  if (spec.kind === "network" && (spec.replicas ?? []).length === 0) return all;
  return [...new Set(replicasOf(spec))].filter((r) => r >= 0 && r < n).sort((a, b) => a - b);
}

const names = (rs: readonly number[]): string => rs.map((r) => `r${r}`).join(",");

/** The fault's window clipped to the run: [fromS, toS]. */
export function faultSpan(spec: FaultSpec, durationS: number): { fromS: number; toS: number; open: boolean } {
  const { fromS, toS } = windowOf(spec);
  return { fromS: Math.min(fromS, durationS), toS: Math.min(toS ?? durationS, durationS), open: toS === undefined };
}

/** "partition {r0,r1} | {r2,r3,r4}", "lag r3 +200 ms", "crash r2, restarts at 30 s". */
export function describeFault(spec: FaultSpec, n: number): string {
  switch (spec.kind) {
    case "partition": {
      const listed = new Set(spec.groups.flat());
      const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !listed.has(i));
      const groups = [...spec.groups.map((g) => [...g]), ...(rest.length > 0 ? [rest] : [])];
      return `partition ${groups.map((g) => `{${names(g)}}`).join(" | ")}`;
    }
    case "partition-oneway":
      return `one-way partition: ${names(spec.from)} → ${names(spec.to)} dropped`;
    case "isolate":
      return `isolate ${names(spec.replicas)} from everyone`;
    case "crash":
      return `crash ${names(spec.replicas)}${spec.restartS === undefined ? ", stays down" : `, restarts at ${spec.restartS} s`}`;
    case "lag":
      return `lag ${names(spec.replicas)}: links +${spec.delayMs} ms`;
    case "slow":
      return `slow ${names(spec.replicas)}: processing +${spec.delayMs} ms`;
    case "network": {
      const where = (spec.replicas ?? []).length === 0 ? "all links" : `links of ${names(spec.replicas ?? [])}`;
      const amount = spec.effect === "clog" ? "" : ` ${spec.percent ?? 0} %`;
      const delay = spec.maxDelayMs === undefined ? "" : `, up to ${spec.maxDelayMs} ms`;
      return `network ${spec.effect}${amount}${delay} on ${where}`;
    }
    case "collude":
      return `collude ${names(spec.replicas)}: equivocate, notarize and finalize everything; version A to ${names(spec.sideA)}`;
    case "withhold":
      return `withhold ${names(spec.replicas)}: ${(spec.artifacts ?? ["block-proposal"]).join(", ")}`;
    case "equivocate":
      return `equivocate ${names(spec.replicas)}: two blocks per height as maker`;
    case "silent":
      return `silent ${names(spec.replicas)}: sends nothing`;
    case "forge":
      return `forge ${names(spec.replicas)}: forged shares, invalid ingress`;
    case "garble":
      return `garble ${names(spec.replicas)}: ${spec.percent ?? 100} % of its bundles garbled on the wire`;
    case "diverge":
      return `diverge ${names(spec.replicas)}: corrupt state transition`;
    case "storage":
      return `storage ${names(spec.replicas)}: ${spec.effect}${spec.effect === "lose-unsynced" || spec.effect === "torn-write" ? " at the next crash" : ""}`;
  }
}

export function windowText(spec: FaultSpec, durationS: number): string {
  const { fromS, toS } = windowOf(spec);
  if (toS === undefined) return `${fromS} s → end (${durationS} s)`;
  return `${fromS} s → ${toS} s`;
}

/** The subnet in a replica's report name: "b/r3" → "b"; "" in single-subnet runs ("r3"). */
export function subnetOf(replica: string): string {
  const slash = replica.lastIndexOf("/");
  return slash < 0 ? "" : replica.slice(0, slash);
}

/** A replica's lane (its position in `report.replicas`), found by name: "b/r3" is not lane 3. */
export function laneOf(report: Pick<RunReport, "replicas">, name: string): number | undefined {
  const at = report.replicas.findIndex((r) => r.replica === name);
  return at >= 0 ? at : replicaIndex(name);
}

/** One fault as the report shows it: in words, on which lanes, when. */
export interface FaultRow {
  readonly kind: string;
  readonly category: FaultCategory;
  readonly text: string;
  /** Lanes (positions in `report.replicas`) whose replicas the fault touches. */
  readonly lanes: readonly number[];
  readonly fromS: number;
  readonly toS: number;
  /** The fault lasts to the end of the run. */
  readonly open: boolean;
  readonly window: string;
  /** The spec as the scenario wrote it. */
  readonly spec: FaultSpec | XNetPartitionSpec;
}

type FaultInput = Pick<RunReport, "n" | "durationS" | "replicas" | "faults" | "faultSubnets" | "xnetFaults">;

/**
 * Every fault of the run, subnet faults first, then the XNet partitions. In a multi-subnet run a
 * subnet's fault names that subnet's own replicas (`b: crash r2`) and touches only its lanes; an
 * XNet partition touches the lanes of every subnet it cuts.
 */
export function faultRowsOf(report: FaultInput): FaultRow[] {
  const rows = (report.faults ?? []).map((spec, i): FaultRow => {
    const subnet = report.faultSubnets?.[i];
    const lanes = subnet === undefined ? lanesByIndex(report, "") : lanesByIndex(report, subnet);
    const size = subnet === undefined ? Math.max(report.n, lanes.length) : lanes.length;
    const span = faultSpan(spec, report.durationS);
    return {
      kind: spec.kind,
      category: faultCategory(spec.kind),
      text: `${subnet === undefined ? "" : `${subnet}: `}${describeFault(spec, size)}`,
      lanes: faultLanes(spec, size).map((r) => lanes[r] ?? r),
      ...span,
      window: windowText(spec, report.durationS),
      spec,
    };
  });
  for (const spec of report.xnetFaults ?? []) {
    const cut = new Set(spec.groups.flat());
    const fromS = Math.min(spec.fromS, report.durationS);
    const toS = Math.min(spec.toS ?? report.durationS, report.durationS);
    rows.push({
      kind: spec.kind,
      category: "partition",
      text: `XNet partition ${spec.groups.map((g) => `{${g.join(",")}}`).join(" | ")}`,
      lanes: report.replicas.flatMap((r, lane) => (cut.has(subnetOf(r.replica)) ? [lane] : [])),
      fromS,
      toS,
      open: spec.toS === undefined,
      window: spec.toS === undefined ? `${spec.fromS} s → end (${report.durationS} s)` : `${spec.fromS} s → ${spec.toS} s`,
      spec,
    });
  }
  return rows;
}

/** Lanes of one subnet's replicas in replica order (index i = the subnet's r<i>); "" = single-subnet. */
function lanesByIndex(report: Pick<RunReport, "replicas" | "n">, subnet: string): number[] {
  if (subnet === "") return Array.from({ length: Math.max(report.n, report.replicas.length) }, (_, i) => i);
  return report.replicas.flatMap((r, lane) => (subnetOf(r.replica) === subnet ? [lane] : []));
}

/**
 * The state-hash table judged column by column, each replica only against the replicas of its own
 * subnet (subnets hold different states at the same height): per column, each row's majority and
 * whether the row diverges from it.
 */
export function stateHashVerdicts(table: RunReport["stateHashTable"]): { majority: (string | null)[]; divergent: boolean[] }[] {
  const groups = new Map<string, number[]>();
  table.rows.forEach((row, i) => groups.set(subnetOf(row.replica), [...(groups.get(subnetOf(row.replica)) ?? []), i]));
  return table.heights.map((_, c) => {
    const majority: (string | null)[] = table.rows.map(() => null);
    const divergent = table.rows.map(() => false);
    for (const members of groups.values()) {
      const verdict = columnMajority(members.map((i) => table.rows[i]?.hashes[c] ?? null));
      members.forEach((i, k) => {
        majority[i] = verdict.majority;
        divergent[i] = verdict.divergent[k] ?? false;
      });
    }
    return { majority, divergent };
  });
}

/**
 * One column of the state-hash table: the value held by a strict majority of the replicas that
 * reached the height (null if none), and which cells differ from it. Without a strict majority
 * every present cell counts as divergent: nobody can say which side is right.
 */
export function columnMajority(cells: readonly (string | null)[]): { majority: string | null; divergent: boolean[] } {
  const counts = new Map<string, number>();
  for (const c of cells) if (c !== null) counts.set(c, (counts.get(c) ?? 0) + 1);
  const present = cells.filter((c) => c !== null).length;
  let majority: string | null = null;
  for (const [value, count] of counts) if (2 * count > present) majority = value;
  if (counts.size <= 1) return { majority, divergent: cells.map(() => false) };
  return { majority, divergent: cells.map((c) => c !== null && c !== majority) };
}

/** "r3" → 3; a qualified name such as "maker:r3" → 3 too. */
export function replicaIndex(name: string): number | undefined {
  const match = /(?:^|:)r(\d+)$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/** Virtual ms at which a replica's delivered height first reached `height` (from the progress samples). */
export function reachedAtMs(samples: readonly (readonly [number, number])[] | undefined, height: number): number | undefined {
  return samples?.find(([, h]) => h >= height)?.[0];
}

/** When the violation happened, in virtual ms: its own time, else when a named replica reached its height. */
export function violationTimeMs(v: Violation, progress: readonly (readonly (readonly [number, number])[])[]): number | undefined {
  if (v.atUs !== undefined) return v.atUs / 1000;
  if (v.height === undefined) return undefined;
  const times = v.replicas.map((r) => reachedAtMs(progress[replicaIndex(r) ?? -1], v.height ?? 0)).filter((t): t is number => t !== undefined);
  return times.length === 0 ? undefined : Math.min(...times);
}

/** Hex strings of 8+ characters in a message (block, state or ingress hash prefixes). */
export function hashPrefixes(message: string): string[] {
  return [...new Set(message.match(/\b[0-9a-f]{8,64}\b/g) ?? [])];
}

export interface Stall {
  readonly fromMs: number;
  readonly toMs: number;
  readonly height: number;
}

/** Median interval between consecutive height increases over all replicas (ms), or undefined. */
export function typicalIntervalMs(progress: readonly (readonly (readonly [number, number])[])[]): number | undefined {
  const gaps: number[] = [];
  for (const samples of progress) {
    for (let i = 1; i < samples.length; i++) gaps.push((samples[i]?.[0] ?? 0) - (samples[i - 1]?.[0] ?? 0));
  }
  if (gaps.length === 0) return undefined;
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)];
}

/** Periods without a height increase longer than `thresholdMs`, including the tail up to `endMs`. */
export function stallsOf(samples: readonly (readonly [number, number])[], endMs: number, thresholdMs: number): Stall[] {
  const stalls: Stall[] = [];
  let lastT = 0;
  let lastH = 0;
  for (const [t, h] of samples) {
    if (h > lastH) {
      if (t - lastT > thresholdMs) stalls.push({ fromMs: lastT, toMs: t, height: lastH });
      lastT = t;
      lastH = h;
    }
  }
  if (endMs - lastT > thresholdMs) stalls.push({ fromMs: lastT, toMs: endMs, height: lastH });
  return stalls;
}

/** Blocks per simulated second in bins of `binMs`, from block times. */
export function blockRate(blockTimesMs: readonly number[], endMs: number, binMs: number): { fromMs: number; count: number }[] {
  const bins = Array.from({ length: Math.max(1, Math.ceil(endMs / binMs)) }, (_, i) => ({ fromMs: i * binMs, count: 0 }));
  for (const t of blockTimesMs) {
    const bin = bins[Math.min(bins.length - 1, Math.max(0, Math.floor(t / binMs)))];
    if (bin !== undefined) bin.count++;
  }
  return bins;
}

/** A bin width (ms) giving at most `maxBins` bins over the run, at least one second. */
export function binWidthMs(endMs: number, maxBins = 60): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]) if (endMs / (s * 1000) <= maxBins) return s * 1000;
  return Math.ceil(endMs / maxBins / 1000) * 1000;
}
