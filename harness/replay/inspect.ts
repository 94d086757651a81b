// Inspection of stored runs: `analyze` (checkers over a stored trace, without re-running),
// `diff <run> --replicas a,b` (how two replicas' states differ, by subtree and key), and
// `diff <runA> <runB>` (the first height where two runs stop agreeing).
import { createReadStream, existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { checkLiveness, checkSafety, checkStateAgreement, verdictOf, type Violation } from "../checks/checks.ts";
import { RunRecorder } from "../checks/observations.ts";
import type { Block } from "../consensus/artifacts.ts";
import { compileFaults } from "../faults/schedule.ts";
import { KvStateMachine } from "../replica/kv-state-machine.ts";
import { ExecutionStateMachine } from "../replica/execution-state-machine.ts";
import type { CanisterState } from "../execution/interfaces.ts";
import { candidNamesOfScenario, withDecodedCandid, type CandidNames } from "../report/candid-view.ts";
import { runScenario } from "../scenario/runner.ts";
import { replicaId, replicaName, secondsToUs, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import { parseTraceLine, traceReadError, type TraceLine } from "./replay.ts";
import { checkSnapshotFiles, ReproError, scenarioOf, type ReproBundle } from "./repro.ts";

export async function* traceLines(dir: string): AsyncGenerator<TraceLine> {
  const gz = join(dir, "trace.log.gz");
  const plain = join(dir, "trace.log");
  if (!existsSync(gz) && !existsSync(plain)) {
    throw new ReproError(`${dir} has no trace.log.gz (re-run without --no-trace, or replay the repro)`);
  }
  const source = existsSync(gz) ? createReadStream(gz).pipe(createGunzip()) : createReadStream(plain);
  try {
    for await (const raw of createInterface({ input: source, crlfDelay: Infinity })) yield parseTraceLine(raw);
  } catch (error) {
    throw traceReadError(existsSync(gz) ? gz : plain, error);
  }
}

interface Delivery {
  readonly block: string;
  readonly state: string;
  readonly timeUs: number;
}

function detailField(detail: string, key: string): string | undefined {
  for (const part of detail.split(",")) if (part.startsWith(`${key}=`)) return part.slice(key.length + 1);
  return undefined;
}

/** Per replica, the batches it delivered, read from `batch.delivered` trace events. */
export async function deliveriesFromTrace(dir: string, n: number): Promise<{ deliveries: Map<number, Delivery>[]; events: number; endUs: number }> {
  const deliveries = Array.from({ length: n }, () => new Map<number, Delivery>());
  let events = 0;
  let endUs = 0;
  for await (const line of traceLines(dir)) {
    events++;
    endUs = line.timeUs;
    if (line.kind !== "batch.delivered" || line.replica < 0) continue;
    const h = Number(detailField(line.detail, "height"));
    deliveries[line.replica]?.set(h, { block: detailField(line.detail, "block") ?? "", state: detailField(line.detail, "state") ?? "", timeUs: line.timeUs });
  }
  return { deliveries, events, endUs };
}

export interface AnalyzeResult {
  readonly events: number;
  readonly verdict: string;
  readonly violations: readonly Violation[];
  readonly notes: readonly string[];
}

/**
 * Re-runs the checkers that a trace supports: safety, state agreement and chain liveness. Ingress
 * validity and ingress latency need the ingress ids, which the trace does not carry.
 */
export async function analyzeRun(bundle: ReproBundle, dir: string): Promise<AnalyzeResult> {
  const scenario = scenarioOf(bundle);
  const faults = compileFaults(scenario.faults ?? []);
  const { deliveries, events, endUs } = await deliveriesFromTrace(dir, scenario.n);
  const recorder = new RunRecorder(scenario.n, faults.byzantine);
  const pseudoBlocks = new Map<string, Block>();
  // The recorder wants blocks; a block is identified by its hash prefix, which is all we compare.
  const blockOf = (h: number, hash: string): Block => {
    const key = `${h}|${hash}`;
    let block = pseudoBlocks.get(key);
    if (block === undefined) {
      block = { hash: hash as HashHex, parent: "" as HashHex, height: h as Height, rank: 0, maker: replicaId(0), context: { timeUs: 0 as TimeUs }, isSummary: false, ingress: [], payloadBytes: 0 };
      pseudoBlocks.set(key, block);
    }
    return block;
  };
  deliveries.forEach((byHeight, r) => {
    for (const [h, d] of [...byHeight].sort((a, b) => a[0] - b[0])) recorder.onBatchDelivered(replicaId(r), blockOf(h, d.block), d.state as HashHex, d.timeUs as TimeUs);
  });
  const input = {
    recorder, byzantine: faults.byzantine, permanentlyDown: faults.permanentlyDown, validIngress: new Set<HashHex>(), submitTimes: new Map<HashHex, number>(),
    healUs: faults.lastHealUs, endUs, livenessBoundUs: secondsToUs(scenario.livenessBoundS ?? 30),
  };
  const liveness = checkLiveness(input);
  const violations = [...checkSafety(input), ...checkStateAgreement(input), ...liveness.violations];
  return {
    events,
    verdict: verdictOf(violations),
    violations,
    notes: ["validity and ingress latency are not re-checked: the trace does not carry ingress ids (replay the repro for those)", ...(liveness.note === undefined ? [] : [liveness.note])],
  };
}

export interface RunDisagreement {
  readonly height: number;
  readonly a: string;
  readonly b: string;
}

/** First height whose finalized block or state differs between two runs (by their traces). */
export async function firstDisagreement(dirA: string, dirB: string, n: number): Promise<RunDisagreement | undefined> {
  const reference = (deliveries: Map<number, Delivery>[]): Map<number, string> => {
    const byHeight = new Map<number, string>();
    for (const replica of deliveries) for (const [h, d] of replica) if (!byHeight.has(h)) byHeight.set(h, `block ${d.block} state ${d.state}`);
    return byHeight;
  };
  const a = reference((await deliveriesFromTrace(dirA, n)).deliveries);
  const b = reference((await deliveriesFromTrace(dirB, n)).deliveries);
  const top = Math.min(Math.max(0, ...a.keys()), Math.max(0, ...b.keys()));
  for (let h = 1; h <= top; h++) {
    const x = a.get(h);
    const y = b.get(h);
    if (x !== y) return { height: h, a: x ?? "(not delivered)", b: y ?? "(not delivered)" };
  }
  return undefined;
}

export interface StateDiff {
  readonly height: number;
  readonly replicas: readonly [string, string];
  /** Per subtree of the state: the keys whose values differ (value undefined = absent). */
  readonly subtrees: readonly { readonly path: string; readonly equal: number; readonly differing: readonly { readonly key: string; readonly a?: string; readonly b?: string }[] }[];
  /** Candid names from the scenario's `.did` files: Candid values in the diff are shown decoded. */
  readonly candidNames?: CandidNames;
}

/** Replays the run and compares two replicas' states right after each executed height `at`. */
export function diffReplicaStates(bundle: ReproBundle, a: ReplicaId, b: ReplicaId, at: number): StateDiff {
  checkSnapshotFiles(bundle);
  const captured = new Map<ReplicaId, CapturedState>();
  runScenario(scenarioOf(bundle), {
    seed: bundle.seed,
    onDelivered: (replica, block, machine) => {
      if (block.height !== at || (replica !== a && replica !== b)) return;
      if (machine instanceof KvStateMachine) captured.set(replica, { kind: "kv", ...machine.inspect() });
      if (machine instanceof ExecutionStateMachine) captured.set(replica, { kind: "execution", canisters: machine.canisters, history: machine.inspectHistory() });
    },
  });
  const sa = captured.get(a);
  const sb = captured.get(b);
  if (sa === undefined || sb === undefined) {
    throw new ReproError(`height ${at} was not executed by ${sa === undefined ? replicaName(a) : replicaName(b)} in this run`);
  }
  const subtrees = sa.kind === "kv" && sb.kind === "kv"
    ? [compare("/kv", sa.entries, sb.entries), compare("/ingress_history", sa.history, sb.history)]
    : sa.kind === "execution" && sb.kind === "execution"
      ? [...canisterSubtrees(sa.canisters, sb.canisters), compare("/ingress_history", sa.history, sb.history)]
      : [];
  return { height: at, replicas: [replicaName(a), replicaName(b)], subtrees, candidNames: candidNamesOfScenario(scenarioOf(bundle)) };
}

type CapturedState =
  | ({ readonly kind: "kv" } & ReturnType<KvStateMachine["inspect"]>)
  | { readonly kind: "execution"; readonly canisters: readonly CanisterState[]; readonly history: [string, string][] };

/**
 * Per canister: which parts differ — module, 4 KiB pages of the heap and of stable memory (by
 * page hash), certified data, version — so a divergent execution is located, not just detected.
 */
function canisterSubtrees(a: readonly CanisterState[], b: readonly CanisterState[]): StateDiff["subtrees"][number][] {
  const ids = [...new Set([...a.map((c) => c.id), ...b.map((c) => c.id)])].sort();
  return ids.map((id) => {
    const x = a.find((c) => c.id === id);
    const y = b.find((c) => c.id === id);
    const rows: [string, string][] = [];
    const rowsB: [string, string][] = [];
    const add = (key: string, left: string | undefined, right: string | undefined): void => {
      if (left !== undefined) rows.push([key, left]);
      if (right !== undefined) rowsB.push([key, right]);
    };
    add("module_hash", x?.execution?.moduleHash, y?.execution?.moduleHash);
    add("version", x === undefined ? undefined : String(x.version), y === undefined ? undefined : String(y.version));
    for (const [name, pick] of [["heap", (c: CanisterState) => c.execution?.wasmMemory], ["stable", (c: CanisterState) => c.execution?.stableMemory]] as const) {
      const pa = x === undefined ? undefined : pick(x);
      const pb = y === undefined ? undefined : pick(y);
      const pages = Math.max(pa?.pageCount() ?? 0, pb?.pageCount() ?? 0);
      for (let i = 0; i < pages; i++) add(`${name}/page/${i}`, pa?.pageHash(i).slice(0, 16), pb?.pageHash(i).slice(0, 16));
    }
    const subtree = compare(`/canister/${id}`, rows, rowsB);
    return subtree;
  });
}
function compare(path: string, a: readonly [string, string][], b: readonly [string, string][]): StateDiff["subtrees"][number] {
  const left = new Map(a);
  const right = new Map(b);
  const keys = [...new Set([...left.keys(), ...right.keys()])].sort();
  const differing: { key: string; a?: string; b?: string }[] = [];
  let equal = 0;
  for (const key of keys) {
    const x = left.get(key);
    const y = right.get(key);
    if (x === y) equal++;
    else differing.push({ key, ...(x === undefined ? {} : { a: x }), ...(y === undefined ? {} : { b: y }) });
  }
  return { path, equal, differing };
}

export function describeStateDiff(diff: StateDiff, limit = 20): string {
  const [ra, rb] = diff.replicas;
  const lines = [`state of ${ra} vs ${rb} after height ${diff.height}:`];
  for (const subtree of diff.subtrees) {
    if (subtree.differing.length === 0) {
      lines.push(`  ${subtree.path}: equal (${subtree.equal} keys)`);
      continue;
    }
    lines.push(`  ${subtree.path}: ${subtree.differing.length} key(s) differ, ${subtree.equal} equal`);
    // A Candid reply is shown decoded after its hex (item 10): "completed@12: 4449…7d05 = (5 : nat)".
    const shown = (value: string | undefined): string => JSON.stringify(value === undefined ? null : withDecodedCandid(value, diff.candidNames));
    for (const d of subtree.differing.slice(0, limit)) lines.push(`    ${subtree.path}/${d.key}: ${ra} ${shown(d.a)}  ${rb} ${shown(d.b)}`);
    if (subtree.differing.length > limit) lines.push(`    … ${subtree.differing.length - limit} more`);
  }
  return lines.join("\n");
}
