// `subnetlab snapshot save`: one canister's state out of a run directory, written as a canister
// state file (harness/scenario/canister-state-file.ts) that a scenario's `fromSnapshot` starts a
// canister from. From a simulated run the state is got by replaying the run (its repro bundle) and
// taking the canister from the chosen replica right after it executed the chosen height; the
// replay's prefix digests are compared with the recorded ones on the way, so the state saved is
// the run's state. From a real-mode run directory (subnetlab up) it is read from the replica's
// newest verified checkpoint on its disk (harness/real/checkpoint-state.ts).
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Principal } from "@dfinity/principal";
import { compileFaults } from "../faults/schedule.ts";
import type { CanisterState } from "../execution/interfaces.ts";
import { savedStateOf, type SavedCanisterState, type SavedStateOrigin } from "../execution/saved-canister-state.ts";
import { canisterFromCheckpoint, clusterDirProblem } from "../real/checkpoint-state.ts";
import { ExecutionStateMachine } from "../replica/execution-state-machine.ts";
import { Registry } from "../routing/registry.ts";
import { canisterIdsOf } from "../scenario/app-world.ts";
import { writeCanisterStateFile } from "../scenario/canister-state-file.ts";
import type { Scenario } from "../scenario/scenario.ts";
import { prepareScenario } from "../scenario/prepare.ts";
import { replicaName, type HashHex } from "../types.ts";
import { describeDifference, replay } from "./replay.ts";
import { readRepro, ReproError, scenarioOf, type ReproBundle } from "./repro.ts";

export interface SaveRequest {
  readonly runDir: string;
  /** The scenario's name for the canister, or its textual id. */
  readonly canister: string;
  readonly out: string;
  /** Replica index (default: the first replica that no fault makes Byzantine). */
  readonly replica?: number;
  /** The height whose state to save (default: the last height the replica executed in the run). */
  readonly atHeight?: number;
  /** Real-mode run directories: the subnet (default: the cluster's first). */
  readonly subnet?: string;
  readonly onProgress?: (simulatedS: number, totalS: number, events: number) => void;
}

export type SaveFailureKind =
  | "not-a-run-dir"
  | "several-subnets"
  | "replica-out-of-range"
  | "unknown-canister"
  | "height-not-reached"
  | "no-module"
  | "output"
  | "replay-mismatch";

export interface SavedFile {
  readonly path: string;
  readonly contentHash: HashHex;
  readonly canisterId: string;
  /** The scenario's name for it, when it has one. */
  readonly canisterName: string | undefined;
  readonly replica: string;
  readonly height: number;
  readonly saved: SavedCanisterState;
}

export type SaveResult = { readonly ok: true; readonly file: SavedFile } | { readonly ok: false; readonly kind: SaveFailureKind; readonly message: string };

const failure = (kind: SaveFailureKind, message: string): SaveResult => ({ ok: false, kind, message });

/** What the replay captured: the target replica's canister after each height it executed. */
interface Capture {
  readonly height: number;
  readonly batchTimeNs: bigint;
  readonly canister: CanisterState | undefined;
}

export async function saveCanisterState(request: SaveRequest): Promise<SaveResult> {
  if (!existsSync(request.runDir)) return failure("not-a-run-dir", `${request.runDir}: no such run directory`);
  if (isRealModeRunDir(request.runDir)) return saveFromCheckpoint(request);
  if (request.subnet !== undefined) return failure("several-subnets", `--subnet applies to real-mode run directories (subnetlab up); ${request.runDir} is a simulated run`);
  const opened = openRun(request.runDir);
  if (!opened.ok) return opened.failure;
  const { bundle, dir } = opened;
  const scenario = scenarioOf(bundle);
  if (scenario.subnets !== undefined) return failure("several-subnets", `${request.runDir}: snapshot save reads single-subnet runs; this one (${scenario.name}) has subnets ${scenario.subnets.map((s) => s.name).join(", ")}`);
  const replica = request.replica ?? firstHonestReplica(scenario);
  if (!Number.isInteger(replica) || replica < 0 || replica >= scenario.n) {
    return failure("replica-out-of-range", `--replica r${request.replica}: the run has replicas r0..r${scenario.n - 1}`);
  }
  const target = resolveCanister(scenario, request.canister);
  if (!target.ok) return failure("unknown-canister", target.message);
  const outProblem = outputProblem(request.out);
  if (outProblem !== undefined) return failure("output", outProblem);

  const captured = await replayCapturing(bundle, dir, replica, target.id, request);
  if (!captured.ok) return captured.failure;
  const { chosen, lastHeight } = captured;
  const name = replicaName(replica as never);
  if (chosen === undefined) {
    const reached = lastHeight === undefined ? "it executed no height in this run" : `it executed heights up to ${lastHeight} in this run`;
    return failure("height-not-reached", request.atHeight === undefined ? `${name} has no state to save: ${reached}` : `--at ${request.atHeight} was not reached on ${name}: ${reached}`);
  }
  if (chosen.canister === undefined) {
    return failure("unknown-canister", `no canister ${target.id} on ${name} at height ${chosen.height} (the scenario's canisters: ${describeCanisters(scenario)})`);
  }
  return writeSaved(request, chosen.canister, { canisterId: target.id, scenario: scenario.name, seed: bundle.seed, replica: name, height: chosen.height, batchTimeNs: chosen.batchTimeNs }, target.name);
}

/** The canister's state as a file at `request.out` (temporary file and rename). */
function writeSaved(request: SaveRequest, canister: CanisterState, origin: SavedStateOrigin, canisterName: string | undefined): SaveResult {
  const state = savedStateOf(canister, origin);
  if (!state.ok) return failure("no-module", state.reason);
  let contentHash: HashHex;
  try {
    contentHash = writeCanisterStateFile(request.out, state.saved);
  } catch (error) {
    return failure("output", `--out ${request.out}: cannot write it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return { ok: true, file: { path: request.out, contentHash, canisterId: origin.canisterId, canisterName, replica: origin.replica, height: origin.height, saved: state.saved } };
}

/** A run directory of subnetlab up: a cluster spec and no repro bundle. */
function isRealModeRunDir(runDir: string): boolean {
  return existsSync(join(runDir, "cluster-spec.json")) && !existsSync(join(runDir, "repro.json"));
}

/**
 * A real-mode run: no scenario (so canisters are named by id), no replay — the replica's newest
 * verified checkpoint (or the one at --at) is read from a copy of its disk. A checkpoint keeps no
 * batch time, so the origin's batch time is 0 (unknown).
 */
function saveFromCheckpoint(request: SaveRequest): SaveResult {
  const dirProblem = clusterDirProblem(request.runDir);
  if (dirProblem !== undefined) return failure("not-a-run-dir", dirProblem);
  try {
    Principal.fromText(request.canister);
  } catch {
    return failure("unknown-canister", `--canister ${request.canister}: a real-mode run has no scenario names; give the canister's id`);
  }
  const outProblem = outputProblem(request.out);
  if (outProblem !== undefined) return failure("output", outProblem);
  const replica = request.replica ?? 0;
  const read = canisterFromCheckpoint({
    dir: request.runDir,
    replica,
    canisterId: request.canister,
    ...(request.subnet === undefined ? {} : { subnet: request.subnet }),
    ...(request.atHeight === undefined ? {} : { atHeight: request.atHeight }),
  });
  if (!read.ok) return failure(read.kind, read.message);
  const origin = { canisterId: request.canister, scenario: `subnetlab up ${basename(resolve(request.runDir))}`, seed: 0, replica: `${read.subnet}/r${replica}`, height: read.height, batchTimeNs: 0n };
  return writeSaved(request, read.canister, origin, undefined);
}

function openRun(runDir: string): { ok: true; bundle: ReproBundle; dir: string } | { ok: false; failure: SaveResult } {
  try {
    const { bundle, dir } = readRepro(runDir);
    return { ok: true, bundle, dir };
  } catch (error) {
    if (error instanceof ReproError) return { ok: false, failure: failure("not-a-run-dir", error.message) };
    throw error;
  }
}

/** The first replica that no fault of the scenario makes Byzantine (r0 when every one is). */
export function firstHonestReplica(scenario: Scenario): number {
  const byzantine = compileFaults(scenario.faults ?? []).byzantine;
  for (let i = 0; i < scenario.n; i++) if (!byzantine.has(i as never)) return i;
  return 0;
}

function scenarioCanisterIds(scenario: Scenario): Map<string, string> {
  return canisterIdsOf(scenario, Registry.of([{ name: "a", size: scenario.n }]));
}

function describeCanisters(scenario: Scenario): string {
  const ids = scenarioCanisterIds(scenario);
  return ids.size === 0 ? "none" : [...ids].map(([name, id]) => `${name} = ${id}`).join(", ");
}

/** A scenario canister's name, or any textual canister id (canisters created during the run have no name). */
function resolveCanister(scenario: Scenario, given: string): { ok: true; id: string; name: string | undefined } | { ok: false; message: string } {
  const ids = scenarioCanisterIds(scenario);
  const byName = ids.get(given);
  if (byName !== undefined) return { ok: true, id: byName, name: given };
  const named = [...ids].find(([, id]) => id === given);
  if (named !== undefined) return { ok: true, id: given, name: named[0] };
  try {
    Principal.fromText(given);
  } catch {
    return { ok: false, message: `--canister ${given}: neither a canister of ${scenario.name} nor a canister id (the scenario's canisters: ${describeCanisters(scenario)})` };
  }
  return { ok: true, id: given, name: undefined };
}

/** Why `out` cannot be written (checked before the replay, which may take long), or undefined. */
function outputProblem(out: string): string | undefined {
  if (existsSync(out) && statSync(out).isDirectory()) return `--out ${out}: is a directory; give a file name`;
  const parent = dirname(out);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) return `--out ${out}: no directory ${parent}`;
  return undefined;
}

/**
 * Replays the run, keeping the target replica's canister after every height it executes (page
 * maps are persistent: keeping one costs a reference). With `atHeight` the replay stops once that
 * height is captured; otherwise it runs to the end and the last height executed is chosen.
 */
async function replayCapturing(
  bundle: ReproBundle,
  dir: string,
  replica: number,
  canisterId: string,
  request: SaveRequest,
): Promise<{ ok: true; chosen: Capture | undefined; lastHeight: number | undefined } | { ok: false; failure: SaveResult }> {
  let last: Capture | undefined;
  let atHeight: Capture | undefined;
  await prepareScenario(scenarioOf(bundle));
  let result;
  try {
    result = await replay(bundle, dir, {
      onDelivered: (r, block, machine) => {
        if (r !== replica || !(machine instanceof ExecutionStateMachine)) return;
        last = { height: block.height, batchTimeNs: BigInt(block.context.timeUs) * 1000n, canister: machine.canisters.find((c) => c.id === canisterId) };
        if (block.height === request.atHeight) atHeight = last;
      },
      ...(request.atHeight === undefined ? {} : { stopWhen: () => atHeight !== undefined }),
      ...(request.onProgress === undefined ? {} : { onProgress: request.onProgress }),
    });
  } catch (error) {
    if (error instanceof ReproError) return { ok: false, failure: failure("not-a-run-dir", error.message) };
    throw error;
  }
  if (!result.matches) {
    const where = result.firstDifference === undefined ? "" : `\n${describeDifference(result.firstDifference)}`;
    return { ok: false, failure: failure("replay-mismatch", `the replay of ${dir} departs from the recorded run (expected digest ${result.expectedDigest.slice(0, 16)}, replayed ${result.digest.slice(0, 16)}), so its states are not the run's: nothing saved${where}`) };
  }
  const lastHeight = (last as Capture | undefined)?.height;
  return { ok: true, chosen: request.atHeight === undefined ? last : atHeight, lastHeight };
}
