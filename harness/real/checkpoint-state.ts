// `subnetlab snapshot save` on a real-mode run directory (subnetlab up): a canister's state read
// from a replica's newest checkpoint on its disk (DIR/nodes/<subnet>-r<i>/disk), with every
// checksum, page hash and the manifest verified as a restarting replica verifies them. The disk is
// copied first and the copy opened: opening a FileDisk may repair its log (cut a torn tail), which
// must never happen under a replica that is still running and writing it.
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { CanisterState } from "../execution/interfaces.ts";
import { listCheckpoints, loadCheckpoint } from "../state/checkpoint.ts";
import { FileDisk } from "./file-disk.ts";
import { diskDir, readSpec, RunDirError } from "./run-dir.ts";
import { replicaId } from "../types.ts";

export interface CheckpointRequest {
  readonly dir: string;
  /** Default: the first subnet of the cluster. */
  readonly subnet?: string;
  readonly replica: number;
  readonly canisterId: string;
  /** A checkpoint height the disk still holds (default: the newest that verifies). */
  readonly atHeight?: number;
}

export type CheckpointFailureKind = "not-a-run-dir" | "replica-out-of-range" | "height-not-reached" | "unknown-canister";

export type CheckpointCanister =
  | { readonly ok: true; readonly canister: CanisterState; readonly height: number; readonly subnet: string }
  | { readonly ok: false; readonly kind: CheckpointFailureKind; readonly message: string };

/** Why `dir` is not a readable cluster directory of subnetlab up, or undefined. */
export function clusterDirProblem(dir: string): string | undefined {
  try {
    readSpec(dir);
    return undefined;
  } catch (error) {
    if (error instanceof RunDirError) return error.message;
    throw error;
  }
}

export function canisterFromCheckpoint(request: CheckpointRequest): CheckpointCanister {
  let spec;
  try {
    spec = readSpec(request.dir);
  } catch (error) {
    if (error instanceof RunDirError) return { ok: false, kind: "not-a-run-dir", message: error.message };
    throw error;
  }
  const subnet = request.subnet === undefined ? spec.subnets[0] : spec.subnets.find((s) => s.name === request.subnet);
  if (subnet === undefined) return { ok: false, kind: "not-a-run-dir", message: `${request.dir}: no subnet ${request.subnet} (it has ${spec.subnets.map((s) => s.name).join(", ")})` };
  if (!Number.isInteger(request.replica) || request.replica < 0 || request.replica >= subnet.n) {
    return { ok: false, kind: "replica-out-of-range", message: `--replica r${request.replica}: subnet ${subnet.name} has replicas r0..r${subnet.n - 1}` };
  }
  const source = diskDir(request.dir, subnet.name, replicaId(request.replica));
  if (!existsSync(source)) return { ok: false, kind: "height-not-reached", message: `${source}: no disk (has ${subnet.name}-r${request.replica} ever started?)` };
  const copy = mkdtempSync(join(tmpdir(), `subnetlab-checkpoint-${basename(source)}-`));
  try {
    cpSync(source, copy, { recursive: true });
    const disk = new FileDisk(copy);
    try {
      return readCanister(disk, request, subnet.name);
    } finally {
      disk.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

function readCanister(disk: FileDisk, request: CheckpointRequest, subnet: string): CheckpointCanister {
  const where = `${subnet}-r${request.replica}`;
  const heights = listCheckpoints(disk);
  const wanted = request.atHeight === undefined ? [...heights].reverse() : heights.filter((h) => h === request.atHeight);
  if (wanted.length === 0) {
    const held = heights.length === 0 ? "it has written no checkpoint yet" : `its disk holds checkpoints ${heights.join(", ")}`;
    return { ok: false, kind: "height-not-reached", message: request.atHeight === undefined ? `${where}: ${held}` : `--at ${request.atHeight}: no checkpoint at that height on ${where} (${held})` };
  }
  const refused: string[] = [];
  for (const h of wanted) {
    const loaded = loadCheckpoint(disk, h);
    if (!loaded.ok) {
      refused.push(`checkpoint ${h}: ${loaded.reason}`);
      continue;
    }
    const canister = loaded.canisters.find((c) => c.id === request.canisterId);
    if (canister === undefined) {
      return { ok: false, kind: "unknown-canister", message: `no canister ${request.canisterId} in ${where}'s checkpoint ${h} (it holds ${loaded.canisters.map((c) => c.id).join(", ") || "none"})` };
    }
    return { ok: true, canister, height: h, subnet };
  }
  return { ok: false, kind: "height-not-reached", message: `${where}: no checkpoint verifies (${refused.join("; ")})` };
}
