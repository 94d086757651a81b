// Merging the shards of one fuzz campaign that CI ran as parallel jobs (`fuzz --shard K/N`, each
// job's output directory downloaded below one folder): one summary.json, one JUnit file and one
// index over all of them, as if a single machine had run the campaign. The merge refuses shards
// that cannot belong together (other options, another base seed, a shard twice) and names the
// shards that are missing, so a CI job that died without uploading cannot pass unnoticed.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import type { FuzzHarnessError, FuzzShard, FuzzSummary, FuzzViolation, MergedShard, Nondeterminism, RerunReason } from "./fuzz.ts";

export interface FoundShard {
  /** The shard's output directory (below the merge root). */
  readonly dir: string;
  readonly summary: FuzzSummary & { readonly shard: FuzzShard };
}

/** How deep below the root shard directories are looked for (CI artifacts nest a level or two). */
const SEARCH_DEPTH = 3;

/** Every summary.json below `root` (not `root`'s own) written by a `fuzz --shard` campaign. */
export function findShards(root: string): FoundShard[] {
  const found: FoundShard[] = [];
  const visit = (dir: string, depth: number): void => {
    if (depth > 0) {
      const summary = readShardSummary(join(dir, "summary.json"));
      if (summary !== undefined) {
        found.push({ dir, summary });
        return;
      }
    }
    if (depth === SEARCH_DEPTH) return;
    for (const name of readdirSync(dir).sort()) {
      const child = join(dir, name);
      if (name !== "failures" && statSync(child).isDirectory()) visit(child, depth + 1);
    }
  };
  visit(root, 0);
  return found;
}

function readShardSummary(path: string): (FuzzSummary & { shard: FuzzShard }) | undefined {
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
  const summary = parsed as Partial<FuzzSummary>;
  if (summary.shard === undefined || !Array.isArray(summary.results)) return undefined;
  return summary as FuzzSummary & { shard: FuzzShard };
}

export type MergeResult = { readonly ok: true; readonly summary: FuzzSummary } | { readonly ok: false; readonly problems: readonly string[] };

/** The base seed a shard was started with (`--seed`), from its first seed. */
const baseSeedOf = (s: FoundShard): number => s.summary.seeds.first - (s.summary.shard.index - 1);

/** What must be equal for two shards to be parts of one campaign. */
function campaignKey(s: FoundShard): string {
  const o = s.summary.options;
  return JSON.stringify({ count: s.summary.shard.count, base: baseSeedOf(s), nodes: o.nodes, kinds: o.kinds, canary: o.canary ?? null, ic: o.ic ?? false });
}

function describe(s: FoundShard): string {
  const o = s.summary.options;
  return `${s.dir} (shard ${s.summary.shard.index}/${s.summary.shard.count}, --seed ${baseSeedOf(s)}, --nodes ${o.nodes.join(",")}, --faults ${o.kinds.join(",")}${o.canary === undefined ? "" : `, --canary ${o.canary}`}${o.ic === true ? ", --ic" : ""})`;
}

/** Problems that make the shards not one campaign; empty when they are one, complete. */
export function shardProblems(shards: readonly FoundShard[]): string[] {
  if (shards.length === 0) return ["no shard summaries (summary.json written by fuzz --shard K/N) below the directory"];
  const problems: string[] = [];
  const first = shards[0] as FoundShard;
  for (const s of shards.slice(1)) {
    if (campaignKey(s) !== campaignKey(first)) problems.push(`${describe(s)} is not part of the campaign of ${describe(first)}`);
  }
  const byIndex = new Map<number, FoundShard>();
  for (const s of shards) {
    const other = byIndex.get(s.summary.shard.index);
    if (other !== undefined) problems.push(`shard ${s.summary.shard.index}/${s.summary.shard.count} appears twice: ${other.dir} and ${s.dir}`);
    byIndex.set(s.summary.shard.index, s);
  }
  const count = first.summary.shard.count;
  for (let index = 1; index <= count; index++) {
    if (!byIndex.has(index)) problems.push(`shard ${index}/${count} is missing (did its job fail before uploading its output?)`);
  }
  return problems;
}

/**
 * A path the shard's job wrote (relative to that job's working directory, e.g.
 * reports/fuzz/failures/seed-7/repro.json) as it lies now, below the shard's directory.
 */
export function rebasePath(path: string, shardDir: string): string {
  const parts = path.split(/[\\/]/);
  const at = parts.lastIndexOf("failures");
  return at < 0 ? path : join(shardDir, ...parts.slice(at));
}

function rebaseViolation(v: FuzzViolation, dir: string): FuzzViolation {
  const repro = rebasePath(v.repro, dir);
  return {
    ...v,
    repro,
    replayCommand: v.replayCommand.split(v.repro).join(repro),
    ...(v.shrunkRepro === undefined ? {} : { shrunkRepro: rebasePath(v.shrunkRepro, dir) }),
  };
}

function rebaseHarnessError(e: FuzzHarnessError, dir: string): FuzzHarnessError {
  const repro = rebasePath(e.repro, dir);
  return { ...e, repro, replayCommand: e.replayCommand.split(e.repro).join(repro) };
}

function sumRecords<K extends string>(records: readonly Record<K, number>[]): Record<K, number> {
  const total = {} as Record<K, number>;
  for (const r of records) for (const [k, v] of Object.entries(r) as [K, number][]) total[k] = (total[k] ?? 0) + v;
  return total;
}

/** One summary over every shard; refuses (with every problem named) when they are not one campaign. */
export function mergeShards(shards: readonly FoundShard[]): MergeResult {
  const problems = shardProblems(shards);
  if (problems.length > 0) return { ok: false, problems };
  const ordered = [...shards].sort((a, b) => a.summary.shard.index - b.summary.shard.index);
  const results = ordered.flatMap((s) => s.summary.results).sort((a, b) => a.seed - b.seed);
  const seen = new Set<number>();
  for (const r of results) {
    // Disjoint by construction (nthSeed); a repeat means a summary was edited or mixed up.
    if (seen.has(r.seed)) return { ok: false, problems: [`seed ${r.seed} was run by more than one shard`] };
    seen.add(r.seed);
  }
  const harnessErrors = ordered.flatMap((s) => (s.summary.harnessError === undefined ? [] : [rebaseHarnessError(s.summary.harnessError, s.dir)]));
  const merged: MergedShard[] = ordered.map((s) => ({ dir: s.dir, shard: s.summary.shard, runs: s.summary.runs, elapsedS: s.summary.elapsedS }));
  const first = ordered[0] as FoundShard;
  const summary: FuzzSummary = {
    runs: results.length,
    seeds: { first: Math.min(...ordered.map((s) => s.summary.seeds.first)), last: Math.max(...ordered.map((s) => s.summary.seeds.last)) },
    violations: ordered.flatMap((s) => s.summary.violations.map((v) => rebaseViolation(v, s.dir))).sort((a, b) => a.seed - b.seed),
    nondeterministic: ordered
      .flatMap((s) => s.summary.nondeterministic.map((d): { seed: number } & Nondeterminism => (d.repro === undefined ? d : { ...d, repro: rebasePath(d.repro, s.dir) })))
      .sort((a, b) => a.seed - b.seed),
    reruns: sumRecords<RerunReason>(ordered.map((s) => s.summary.reruns)),
    cpuS: sumRecords<"runs" | "reruns">(ordered.map((s) => s.summary.cpuS ?? { runs: 0, reruns: 0 })),
    ...(harnessErrors.length === 0 ? {} : { harnessError: harnessErrors[0] as FuzzHarnessError, harnessErrors }),
    merged,
    verdicts: sumRecords<string>(ordered.map((s) => s.summary.verdicts)),
    // The shards ran side by side: the campaign's rate is their sum, its wall time the longest.
    runsPerSec: Number(ordered.reduce((sum, s) => sum + s.summary.runsPerSec, 0).toFixed(2)),
    elapsedS: Math.max(...ordered.map((s) => s.summary.elapsedS)),
    options: { ...first.summary.options, jobs: ordered.reduce((sum, s) => sum + s.summary.options.jobs, 0) },
    results,
  };
  return { ok: true, summary };
}

/** The shard directory as shown to a person: relative to the merge root. */
export function shardLabel(root: string, dir: string): string {
  return relative(root, dir).split(sep).join("/") || ".";
}
