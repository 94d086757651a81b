// `subnetlab snapshot save|show` (issue 14 item 4): saves a canister's state out of a run
// directory (simulated, or real mode's checkpoints) into a canister state file, and shows what such a file holds. The CLI only
// dispatches here; the work is in save-canister-state.ts and scenario/canister-state-file.ts.
import { parseArgs } from "node:util";
import { EXIT } from "../report/exit-codes.ts";
import { readCanisterStateFile } from "../scenario/canister-state-file.ts";
import type { SavedCanisterState } from "../execution/saved-canister-state.ts";
import { PAGE_SIZE_BYTES } from "../state/page-map.ts";
import { parseReplicaName } from "../types.ts";
import { saveCanisterState, type SaveFailureKind } from "./save-canister-state.ts";

export const SNAPSHOT_HELP = `subnetlab snapshot — save a canister's state from a run, to start another scenario from it

Usage:
  subnetlab snapshot save <run dir> --canister NAME|ID --out FILE [--replica rN] [--at HEIGHT] [--quiet]
  subnetlab snapshot save <up dir> --canister ID --out FILE [--subnet NAME] [--replica rN] [--at HEIGHT]
  subnetlab snapshot show <file>

save  Replays the simulated run in <run dir> (written by subnetlab run; its repro.json) and
      writes the canister's state on one replica after one height to FILE: module, heap, stable
      memory (only non-zero 4 KiB pages are stored), globals, certified data, global timer and
      canister version — what a canister snapshot holds. The replay checks the run's prefix
      digests on the way, so the state saved is the run's. FILE is written to a temporary file
      beside it and renamed: it is either complete or absent.
      A scenario starts a canister from FILE with
        canisters: [{ name: "vault", wasm: "fixtures/…/vault.classic.wasm", fromSnapshot: "FILE" }]
      (created at genesis, the state loaded through the snapshot upload and load steps, on every
      replica; wasm must be the module the state holds; no init). FILE's content hash goes into
      the run's repro.json, and a replay refuses a FILE that changed since.
      From a real-mode run directory (subnetlab up; running or stopped) the state is read from
      the replica's newest checkpoint on its disk that verifies (checksums, page hashes,
      manifest), from a copy of the disk so a running replica is never disturbed: a state at most
      one checkpoint interval (100 heights) old. Canisters are named by id there.
show  Checks FILE (format, version, length, content hash) and prints what it holds.

Options:
  --canister C  The canister: its name in the scenario, or its textual id (also a canister
                created during the run).
  --out FILE    Where to write the state (its directory must exist; an existing file is replaced).
  --replica rN  The replica to read (default: the first one no fault makes Byzantine; r0 in
                real mode).
  --at HEIGHT   The height after whose execution to save (default: the last height the replica
                executed in the run, i.e. its state at the end of the run; the certified height
                may be one or two behind it). The replay stops there. Real mode: a checkpoint
                height the disk still holds (default: the newest).
  --subnet NAME Real mode: the subnet of the replica (default: the cluster's first).
  --quiet       No progress lines.
  -h, --help    This text.

File format (version 1; big-endian): "SLCANSTATE", u16 version, u64 total length, a metadata
record (origin: canister id, scenario, seed, replica, height, batch time; module hash, canister
version, certified data, global timer, globals, heap and stable memory sizes in 64 KiB pages,
section sizes), the module, the non-zero heap pages and stable memory pages (u64 index + 4096
bytes each), and the SHA-256 of everything before it. A truncated, extended or altered file is
refused with the reason.

Exit codes:
  0   saved (save), or the file checks out (show)
  2   usage error, in one line: a bad option; no such run directory, or not one written by
      subnetlab run or up; a simulated run with several subnets; a replica out of range; a canister that is neither a
      scenario's name nor present on the replica at that height, or has no module there; a
      height the replica never executed (real mode: no checkpoint at it, or none that
      verifies); an unwritable --out; (show) a file that is missing,
      truncated, altered or not a canister state file
  3   harness error (a bug in subnetlab)
  4   the replay departs from the recorded run (its digests differ): nothing is saved
`;

/** Where the command writes (tests collect it). */
export interface SnapshotIo {
  out(text: string): void;
  err(text: string): void;
}
const PROCESS_IO: SnapshotIo = { out: (text) => void process.stdout.write(text), err: (text) => void process.stderr.write(text) };

class SnapshotUsageError extends Error {}

const EXIT_OF: Record<SaveFailureKind, number> = {
  "not-a-run-dir": EXIT.usage,
  "several-subnets": EXIT.usage,
  "replica-out-of-range": EXIT.usage,
  "unknown-canister": EXIT.usage,
  "height-not-reached": EXIT.usage,
  "no-module": EXIT.usage,
  output: EXIT.usage,
  "replay-mismatch": EXIT.replayMismatch,
};

export async function runSnapshot(args: readonly string[], io: SnapshotIo = PROCESS_IO): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
      io.out(SNAPSHOT_HELP);
      return sub === undefined ? EXIT.usage : EXIT.pass;
    }
    if (sub === "save") return await commandSave(rest, io);
    if (sub === "show") return commandShow(rest, io);
    throw new SnapshotUsageError(`unknown snapshot command ${JSON.stringify(sub)} (save or show; see subnetlab snapshot --help)`);
  } catch (error) {
    if (error instanceof SnapshotUsageError || isParseArgsError(error)) {
      io.err(`subnetlab: snapshot: ${(error as Error).message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
}

function isParseArgsError(error: unknown): boolean {
  return error instanceof Error && "code" in error && String((error as { code: unknown }).code).startsWith("ERR_PARSE_ARGS");
}

async function commandSave(args: readonly string[], io: SnapshotIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { canister: { type: "string" }, out: { type: "string" }, replica: { type: "string" }, at: { type: "string" }, subnet: { type: "string" }, quiet: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help === true) {
    io.out(SNAPSHOT_HELP);
    return EXIT.pass;
  }
  if (positionals.length !== 1) throw new SnapshotUsageError("save takes one run directory (see subnetlab snapshot --help)");
  if (values.canister === undefined) throw new SnapshotUsageError("save needs --canister NAME|ID");
  if (values.out === undefined) throw new SnapshotUsageError("save needs --out FILE");
  const replica = values.replica === undefined ? undefined : parseReplicaName(values.replica);
  if (values.replica !== undefined && replica === undefined) throw new SnapshotUsageError(`--replica takes a replica name like r0, got ${JSON.stringify(values.replica)}`);
  const at = values.at === undefined ? undefined : Number(values.at);
  if (values.at !== undefined && (!/^\d+$/.test(values.at) || !Number.isSafeInteger(at) || at! < 1)) throw new SnapshotUsageError(`--at takes a height ≥ 1, got ${JSON.stringify(values.at)}`);
  const result = await saveCanisterState({
    runDir: positionals[0] as string,
    canister: values.canister,
    out: values.out,
    ...(replica === undefined ? {} : { replica }),
    ...(at === undefined ? {} : { atHeight: at }),
    ...(values.subnet === undefined ? {} : { subnet: values.subnet }),
    ...(values.quiet === true ? {} : { onProgress: progressLines(io) }),
  });
  if (!result.ok) {
    io.err(`subnetlab: snapshot save: ${result.message}\n`);
    return EXIT_OF[result.kind];
  }
  const f = result.file;
  const label = f.canisterName === undefined ? f.canisterId : `${f.canisterName} (${f.canisterId})`;
  io.out(`saved canister ${label} of ${f.replica} at height ${f.height} to ${f.path}\n${describeSaved(f.saved)}  content hash ${f.contentHash}\n`);
  return EXIT.pass;
}

function commandShow(args: readonly string[], io: SnapshotIo): number {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new SnapshotUsageError("show takes one canister state file");
  const read = readCanisterStateFile(positionals[0] as string);
  if (!read.ok) {
    io.err(`subnetlab: snapshot show: ${read.message}\n`);
    return EXIT.usage;
  }
  const o = read.saved.origin;
  io.out(`${positionals[0]}: canister ${o.canisterId} of scenario ${o.scenario} seed ${o.seed}, ${o.replica} after height ${o.height}\n${describeSaved(read.saved)}  content hash ${read.contentHash}\n`);
  return EXIT.pass;
}

function describeSaved(s: SavedCanisterState): string {
  const kib = (pages: number): string => `${(pages * PAGE_SIZE_BYTES) / 1024} KiB`;
  return [
    `  module ${s.moduleHash} (${s.wasmModule.length} bytes), canister version ${s.canisterVersion}`,
    `  heap ${s.wasmMemoryPages} Wasm pages, ${kib(s.wasmMemory.nonZeroPageIndices().length)} non-zero; stable memory ${s.stableMemoryPages} Wasm pages, ${kib(s.stableMemory.nonZeroPageIndices().length)} non-zero`,
    `  certified data ${Buffer.from(s.certifiedData).toString("hex") || "(empty)"}; global timer ${s.globalTimerNs === 0n ? "inactive" : `${s.globalTimerNs} ns`}; ${s.globals.length} globals`,
    "",
  ].join("\n");
}

/** A line per quarter of the replay (no wall clock here: the CLI's modules alone may read it). */
function progressLines(io: SnapshotIo): (simulatedS: number, totalS: number, events: number) => void {
  let lastQuarter = 0;
  return (simulatedS, totalS, events) => {
    const quarter = Math.floor((4 * simulatedS) / totalS);
    if (quarter > lastQuarter) io.err(`[snapshot save] replayed ${simulatedS.toFixed(0)}/${totalS} s simulated · ${events} events\n`);
    lastQuarter = Math.max(lastQuarter, quarter);
  };
}
