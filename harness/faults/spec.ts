// Fault specifications as scenarios write them. Times are simulated seconds from the start of the
// run; `toS` omitted means "until the end". Each spec is validated with a clear message.
import type { ArtifactType } from "../consensus/artifacts.ts";

interface Window {
  readonly fromS?: number;
  readonly toS?: number;
}

export type FaultSpec =
  /** Block maker proposes two different blocks at a height, one to each half of its peers. */
  | ({ readonly kind: "equivocate"; readonly replicas: readonly number[] } & Window)
  /** Sends nothing at all (but keeps receiving and following the chain). */
  | ({ readonly kind: "silent"; readonly replicas: readonly number[] } & Window)
  /** Withholds the listed artifact types (default: its block proposals). */
  | ({ readonly kind: "withhold"; readonly replicas: readonly number[]; readonly artifacts?: readonly ArtifactType[] } & Window)
  /**
   * Forges or replays artifacts (`artifacts`, see FORGE_ARTIFACTS; default: notarization shares in
   * another replica's name and blocks with invalid ingress). Each is a rewrite of what the honest
   * replica would send, and honest replicas must refuse it.
   */
  | ({ readonly kind: "forge"; readonly replicas: readonly number[]; readonly artifacts?: readonly ForgeArtifact[] } & Window)
  /**
   * Corrupts the replica's state transition from `fromS` on (its state hash diverges). On an
   * execution subnet `target` says what: a byte of a canister's heap after the round (`state`,
   * default), the bytes of every reply it records (`replies`: its certified request statuses
   * differ), or execution itself (`execution`: every call's argument has a bit flipped before the
   * canister runs, so the divergence starts inside execution).
   */
  | ({ readonly kind: "diverge"; readonly replicas: readonly number[]; readonly target?: DivergeTarget } & Window)
  /**
   * Colluding group: equivocate, notarize every proposal and finalize every notarized block,
   * showing version A of their twin blocks to `sideA` and version B to everyone else.
   */
  | ({ readonly kind: "collude"; readonly replicas: readonly number[]; readonly sideA: readonly number[] } & Window)
  /**
   * Sends garbage bytes: `percent` of the bundles it sends (default all) have a bit flipped, are
   * cut short, or are replaced by noise after encoding. Receivers must drop what does not decode
   * and refuse what decodes to something invalid.
   */
  | ({ readonly kind: "garble"; readonly replicas: readonly number[]; readonly percent?: number } & Window)
  /** Slow links: every message to and from the replicas takes `delayMs` longer. */
  | ({ readonly kind: "lag"; readonly replicas: readonly number[]; readonly delayMs: number } & Window)
  /** Slow machine: every message to the replicas is processed `delayMs` late. */
  | ({ readonly kind: "slow"; readonly replicas: readonly number[]; readonly delayMs: number } & Window)
  /** Crash at `atS`; restart at `restartS` (omitted: stays down). */
  | { readonly kind: "crash"; readonly replicas: readonly number[]; readonly atS: number; readonly restartS?: number }
  /**
   * A storage fault on the replicas' disks (see STORAGE_EFFECTS). Their replicas count as faulty
   * within f, yet run the honest code and are judged: they must detect what went wrong with their
   * disk and recover. Combine with a `crash` after `atS`: the disk is read back at the restart.
   */
  | { readonly kind: "storage"; readonly replicas: readonly number[]; readonly effect: StorageEffect; readonly atS: number; readonly scope?: StorageScope }
  /** Symmetric partition between groups (replicas not listed form one more group). */
  | ({ readonly kind: "partition"; readonly groups: readonly (readonly number[])[] } & Window)
  /** One-way partition: messages from `from` to `to` are dropped; the other direction works. */
  | ({ readonly kind: "partition-oneway"; readonly from: readonly number[]; readonly to: readonly number[] } & Window)
  /** Cut one replica off from everyone. */
  | ({ readonly kind: "isolate"; readonly replicas: readonly number[] } & Window)
  /** Network misbehaviour on links touching `replicas` (all links if omitted). */
  | ({
      readonly kind: "network";
      readonly effect: "loss" | "duplicate" | "reorder" | "clog";
      readonly percent?: number;
      readonly maxDelayMs?: number;
      readonly replicas?: readonly number[];
    } & Window);

export type FaultKind = FaultSpec["kind"];

/**
 * What a `storage` fault does to a replica's disk (issue 11, item 7; harness/sim/disk.ts):
 * - `lose-unsynced`: at the replica's next crash after `atS`, every write it had not synced is
 *   lost (power loss; a plain crash keeps them, as the operating system still writes them);
 * - `torn-write`: at its next crash, the pending writes reach the disk but the last one only in
 *   part (its first half);
 * - `corrupt-checkpoint`: at `atS`, a bit flips in its newest checkpoint record;
 * - `corrupt-page`: at `atS`, a bit flips in one of the pages its checkpoints are made of.
 * `scope: "all"` (corrupt-* only) flips a bit in every checkpoint record, or every page, instead.
 */
export type StorageEffect = "lose-unsynced" | "torn-write" | "corrupt-checkpoint" | "corrupt-page";
export const STORAGE_EFFECTS: readonly StorageEffect[] = ["lose-unsynced", "torn-write", "corrupt-checkpoint", "corrupt-page"];
export type StorageScope = "newest" | "all";

/**
 * What a `forge` fault forges or replays (issue 11, C3: code that only a forged artifact reaches):
 * - `notarization-share`: its own notarization shares re-sent under another replica's name;
 * - `invalid-ingress`: a second proposal of its blocks, carrying an unsigned ingress message;
 * - `cup`: catch-up packages the subnet never agreed on (a summary height ahead, or a state hash
 *   nobody computed), under its own share signature instead of the subnet's threshold signature;
 * - `certification`: certification shares in another replica's name, its own old shares replayed
 *   at newer heights, certifications with an invented hash, genuine ones replayed at other heights;
 * - `xnet-slice`: the XNet slices it serves, with a message replaced by its predecessor (or
 *   altered) and the certification's hash set to the altered tree (so only the signature is wrong);
 * - `state-sync-chunk`: the checkpoints it serves by state sync, with one chunk corrupted;
 * - `replayed-ingress`: its block proposals re-include ingress already finalized on the chain.
 */
export type ForgeArtifact = "notarization-share" | "invalid-ingress" | "cup" | "certification" | "xnet-slice" | "state-sync-chunk" | "replayed-ingress";
export const FORGE_ARTIFACTS: readonly ForgeArtifact[] = ["notarization-share", "invalid-ingress", "cup", "certification", "xnet-slice", "state-sync-chunk", "replayed-ingress"];
/** What `forge` does when `artifacts` is omitted (the forger's behaviour before it had modes). */
export const DEFAULT_FORGE_ARTIFACTS: readonly ForgeArtifact[] = ["notarization-share", "invalid-ingress"];

export type DivergeTarget = "state" | "replies" | "execution";
const DIVERGE_TARGETS: readonly DivergeTarget[] = ["state", "replies", "execution"];

export const FAULT_KINDS: readonly FaultKind[] = [
  "equivocate", "silent", "withhold", "forge", "diverge", "collude", "garble",
  "lag", "slow", "crash", "partition", "partition-oneway", "isolate", "network", "storage",
];

/**
 * Kinds whose replicas count as faulty within f: the Byzantine ones and `storage` (a storage-
 * faulted replica runs the honest code and is judged, but its disk failed it).
 */
export const FAULTY_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(["equivocate", "silent", "withhold", "forge", "diverge", "collude", "garble", "storage"]);

/** Kinds whose replicas run malicious code (excluded from the honest set in the checks). */
export const BYZANTINE_KINDS: ReadonlySet<FaultKind> = new Set(["equivocate", "silent", "withhold", "forge", "diverge", "collude", "garble"]);

export class FaultSpecError extends Error {
  override readonly name = "FaultSpecError";
}

export function windowOf(spec: FaultSpec): { fromS: number; toS: number | undefined } {
  if (spec.kind === "crash") return { fromS: spec.atS, toS: spec.restartS };
  if (spec.kind === "storage") return { fromS: spec.atS, toS: undefined };
  return { fromS: spec.fromS ?? 0, toS: spec.toS };
}

export function replicasOf(spec: FaultSpec): number[] {
  switch (spec.kind) {
    case "partition":
      return spec.groups.flat();
    case "partition-oneway":
      return [...spec.from, ...spec.to];
    case "network":
      return [...(spec.replicas ?? [])];
    default:
      return [...spec.replicas];
  }
}

/** Throws FaultSpecError naming the offending fault and field. */
export function checkFaultSpec(spec: FaultSpec, index: number, n: number, durationS: number): void {
  const where = `faults[${index}] (${spec.kind})`;
  const fail = (message: string): never => {
    throw new FaultSpecError(`${where}: ${message}`);
  };
  if (!FAULT_KINDS.includes(spec.kind)) fail(`unknown fault kind; expected one of ${FAULT_KINDS.join(", ")}`);
  for (const r of replicasOf(spec)) {
    if (!Number.isInteger(r) || r < 0 || r >= n) fail(`replica ${r} is not in 0..${n - 1}`);
  }
  const { fromS, toS } = windowOf(spec);
  if (!(fromS >= 0) || fromS > durationS) fail(`start ${fromS}s is outside the run (0..${durationS}s)`);
  if (toS !== undefined && !(toS > fromS)) fail(`end ${toS}s must come after start ${fromS}s`);
  if ((spec.kind === "lag" || spec.kind === "slow") && !(spec.delayMs > 0)) fail("delayMs must be positive");
  if (spec.kind === "storage" && !STORAGE_EFFECTS.includes(spec.effect)) {
    fail(`effect must be one of ${STORAGE_EFFECTS.map((e) => `"${e}"`).join(", ")}, got ${JSON.stringify(spec.effect)}`);
  }
  if (spec.kind === "storage" && spec.scope !== undefined) {
    if (spec.scope !== "newest" && spec.scope !== "all") fail(`scope must be "newest" or "all", got ${JSON.stringify(spec.scope)}`);
    if (spec.effect === "lose-unsynced" || spec.effect === "torn-write") fail(`scope applies to corrupt-checkpoint and corrupt-page only (${spec.effect} acts on the writes pending at the next crash)`);
  }
  if (spec.kind === "forge" && spec.artifacts !== undefined) checkForgeArtifacts(spec.artifacts, fail);
  if (spec.kind === "diverge" && spec.target !== undefined && !DIVERGE_TARGETS.includes(spec.target)) fail(`target must be one of ${DIVERGE_TARGETS.map((t) => `"${t}"`).join(", ")}, got ${JSON.stringify(spec.target)}`);
  if (spec.kind === "garble" && spec.percent !== undefined && !(spec.percent > 0 && spec.percent <= 100)) fail("percent must be in (0, 100]");
  if (spec.kind === "network" && spec.effect !== "clog") {
    const p = spec.percent ?? 0;
    if (!(p > 0 && p <= 100)) fail("percent must be in (0, 100]");
  }
  if (spec.kind !== "partition" && spec.kind !== "network" && spec.kind !== "partition-oneway" && replicasOf(spec).length === 0) {
    fail("names no replica");
  }
}

function checkForgeArtifacts(artifacts: unknown, fail: (message: string) => never): void {
  if (!Array.isArray(artifacts) || artifacts.length === 0) fail(`artifacts must be a non-empty list of ${FORGE_ARTIFACTS.map((a) => `"${a}"`).join(", ")}`);
  const seen = new Set<unknown>();
  for (const a of artifacts as unknown[]) {
    if (!FORGE_ARTIFACTS.includes(a as ForgeArtifact)) fail(`unknown artifact ${JSON.stringify(a)}${nearestHint(a, FORGE_ARTIFACTS)}; a forger forges one of ${FORGE_ARTIFACTS.map((x) => `"${x}"`).join(", ")}`);
    if (seen.has(a)) fail(`artifact ${JSON.stringify(a)} is listed twice`);
    seen.add(a);
  }
}

/** ` (did you mean "x"?)` for a string close to one of the names, else "". */
function nearestHint(value: unknown, names: readonly string[]): string {
  if (typeof value !== "string") return "";
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(value, name);
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(best.name.length / 3)) ? ` (did you mean "${best.name}"?)` : "";
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = row;
  }
  return previous[b.length] ?? 0;
}
