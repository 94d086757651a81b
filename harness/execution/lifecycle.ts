// Canister lifecycle operations that need no Wasm execution (IC interface spec, "IC management
// canister"; ic-protocol.md §4.8–§4.9): create, stop/start, delete, uninstall, controllers, and
// canister snapshots. install_code (which runs Wasm) lives in install.ts. Every function is pure:
// state in, state (or a typed failure) out.
import { assert } from "../assert.ts";
import { hookStatusOf, updateHookStatus, withHookStatus } from "./low-wasm-memory.ts";
import { PageMap } from "../state/page-map.ts";
import {
  comparePrincipals,
  RejectCode,
  type CanisterId,
  type CanisterSnapshot,
  type CanisterState,
  type ExecutionState,
  type OutgoingResponse,
  type PrincipalText,
} from "./interfaces.ts";
import {
  deleteCanisterNotStopped,
  invalidController,
  rejectCodeOf,
  snapshotLimitExceeded,
  snapshotNotFound,
  snapshotOfEmptyCanister,
  tooManyControllers,
  type ErrorCode,
  type UserError,
} from "./reject-codes.ts";

/** Per canister (ic-protocol.md §4.9: MAX_NUMBER_OF_SNAPSHOTS_PER_CANISTER = 10 in current code). */
export const MAX_SNAPSHOTS_PER_CANISTER = 10;
/** Spec create_canister: at most 10 controllers. */
export const MAX_CONTROLLERS = 10;

/** A failure: reject code and message, and the IC's error code where the lab knows it (reject-codes.ts). */
export type Outcome<T> =
  | ({ readonly ok: true } & T)
  | { readonly ok: false; readonly code: RejectCode; readonly message: string; readonly errorCode?: ErrorCode };

type Failure = { ok: false; code: RejectCode; message: string; errorCode?: ErrorCode };


/** A failure as the IC's canister manager reports it. */
export const failWith = (e: UserError): Failure => ({ ok: false, code: rejectCodeOf(e.code), message: e.description, errorCode: e.code });

export function notController(canister: CanisterState, sender: PrincipalText): Outcome<never> | undefined {
  return canister.controllers.includes(sender) ? undefined : failWith(invalidController(canister.id, canister.controllers, sender));
}

export interface CreateCanisterArgs {
  readonly id: CanisterId;
  readonly controllers: readonly PrincipalText[];
  readonly cycles: bigint;
  readonly computeAllocationPercent?: number;
}

export function createCanister(args: CreateCanisterArgs): CanisterState {
  const controllers = normaliseControllers(args.controllers);
  const compute = args.computeAllocationPercent ?? 0;
  if (!Number.isInteger(compute) || compute < 0 || compute > 100) {
    throw new RangeError(`compute allocation must be an integer 0..100, got ${compute}`);
  }
  return {
    id: args.id,
    controllers,
    status: "running",
    cyclesBalance: args.cycles,
    computeAllocationPercent: compute,
    certifiedData: new Uint8Array(),
    globalTimerNs: 0n,
    version: 0n,
    execution: undefined,
    callContexts: [],
    callbacks: [],
    nextCallContextId: 0n,
    nextCallbackId: 0n,
    snapshots: [],
  };
}

function normaliseControllers(controllers: readonly PrincipalText[]): PrincipalText[] {
  const unique = [...new Set(controllers)].sort(comparePrincipals);
  if (unique.length > MAX_CONTROLLERS) {
    throw new RangeError(`at most ${MAX_CONTROLLERS} controllers, got ${unique.length}`);
  }
  return unique;
}

export function setControllers(
  canister: CanisterState,
  sender: PrincipalText,
  controllers: readonly PrincipalText[],
): Outcome<{ canister: CanisterState }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  // The IC counts the list as given (its settings' bounded list refuses an 11th element).
  if (controllers.length > MAX_CONTROLLERS) return failWith(tooManyControllers(MAX_CONTROLLERS));
  return { ok: true, canister: { ...canister, controllers: normaliseControllers(controllers), version: canister.version + 1n } };
}

/** stop_canister: Stopping while call contexts are open, else Stopped right away. */
export function stopCanister(canister: CanisterState, sender: PrincipalText): Outcome<{ canister: CanisterState }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  if (canister.status === "stopped") return { ok: true, canister };
  const status = canister.callContexts.length === 0 ? "stopped" : "stopping";
  return { ok: true, canister: { ...canister, status, version: canister.version + 1n } };
}

/** Called by the scheduler at the end of a round: Stopping → Stopped once no call context is open. */
export function finalizeStopping(canister: CanisterState): CanisterState {
  if (canister.status !== "stopping" || canister.callContexts.length > 0) return canister;
  return { ...canister, status: "stopped", version: canister.version + 1n };
}

export function startCanister(canister: CanisterState, sender: PrincipalText): Outcome<{ canister: CanisterState }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  if (canister.status === "running") return { ok: true, canister };
  return { ok: true, canister: { ...canister, status: "running", version: canister.version + 1n } };
}

/** delete_canister: only a Stopped canister can be deleted; the caller drops it (id never reused). */
export function checkDeletable(canister: CanisterState, sender: PrincipalText): Outcome<object> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  if (canister.status !== "stopped") {
    return failWith(deleteCanisterNotStopped(canister.id));
  }
  return { ok: true };
}

/**
 * uninstall_code: drops module, memories, callbacks; rejects every open call context that has not
 * been answered (spec: "rejects all open call contexts"); keeps id, cycles, controllers, snapshots.
 */
export function uninstallCode(
  canister: CanisterState,
  sender: PrincipalText,
): Outcome<{ canister: CanisterState; responses: OutgoingResponse[] }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  const responses: OutgoingResponse[] = canister.callContexts
    .filter((c) => !c.responded && c.origin.kind !== "system")
    .map((c) => ({
      origin: c.origin,
      response: { kind: "reject", code: RejectCode.CanisterReject, message: "Canister has been uninstalled." },
      refundedCycles: c.availableCycles,
    }));
  return {
    ok: true,
    responses,
    canister: {
      ...canister,
      execution: undefined,
      certifiedData: new Uint8Array(),
      globalTimerNs: 0n,
      callContexts: [],
      callbacks: [],
      version: canister.version + 1n,
    },
  };
}

// --- snapshots -------------------------------------------------------------------------------------

export function snapshotSize(s: Pick<CanisterSnapshot, "execution" | "certifiedData">): bigint {
  const e = s.execution;
  return (
    BigInt(e.wasmModule.length) +
    BigInt(e.wasmMemoryPages) * 65_536n +
    e.stableMemoryPages * 65_536n +
    BigInt(e.globals.length * 8) +
    BigInt(s.certifiedData.length)
  );
}

/**
 * take_canister_snapshot: module, heap, stable memory, globals, certified data and timer. Cheap:
 * page maps are persistent, so the snapshot shares pages with the live state.
 */
export function takeSnapshot(
  canister: CanisterState,
  sender: PrincipalText,
  nowNs: bigint,
  replaceSnapshot?: string,
): Outcome<{ canister: CanisterState; snapshot: CanisterSnapshot }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  const execution = canister.execution;
  if (execution === undefined) return failWith(snapshotOfEmptyCanister(canister.id));
  const body = { execution, certifiedData: canister.certifiedData, globalTimerNs: canister.globalTimerNs };
  // The snapshot keeps the low-memory hook's status (read_canister_snapshot_metadata reports it).
  const hook = canister.lowWasmMemoryHook === undefined ? {} : { lowWasmMemoryHook: canister.lowWasmMemoryHook };
  return addSnapshot(canister, replaceSnapshot, (id) => ({ id, takenAtNs: nowNs, ...body, totalSizeBytes: snapshotSize(body), ...hook }));
}

/**
 * A new snapshot of the canister (taken, or created by a metadata upload), replacing
 * `replaceSnapshot` if given, within the per-canister limit; ids are `<canister>-<n>`, n counting up.
 */
export function addSnapshot(
  canister: CanisterState,
  replaceSnapshot: string | undefined,
  make: (id: string) => CanisterSnapshot,
): Outcome<{ canister: CanisterState; snapshot: CanisterSnapshot }> {
  let kept = canister.snapshots;
  if (replaceSnapshot !== undefined) {
    if (!kept.some((s) => s.id === replaceSnapshot)) {
      return failWith(snapshotNotFound(canister.id, replaceSnapshot));
    }
    kept = kept.filter((s) => s.id !== replaceSnapshot);
  }
  if (kept.length >= MAX_SNAPSHOTS_PER_CANISTER) {
    return failWith(snapshotLimitExceeded(canister.id, MAX_SNAPSHOTS_PER_CANISTER));
  }
  const n = canister.snapshots.reduce((max, s) => Math.max(max, snapshotNumber(s.id) + 1), 0);
  const snapshot = make(`${canister.id}-${n}`);
  const snapshots = [...kept, snapshot].sort((a, b) => snapshotNumber(a.id) - snapshotNumber(b.id));
  return { ok: true, snapshot, canister: { ...canister, snapshots, version: canister.version + 1n } };
}

function snapshotNumber(id: string): number {
  const n = Number(id.slice(id.lastIndexOf("-") + 1));
  return Number.isInteger(n) ? n : -1;
}

/** load_canister_snapshot: replaces module, heap, stable memory, globals, certified data, timer. */
export function loadSnapshot(
  canister: CanisterState,
  sender: PrincipalText,
  snapshotId: string,
  /** An uploaded snapshot's execution state once its module was checked (snapshot-transfer.ts loadableExecution). */
  checkedExecution?: ExecutionState,
): Outcome<{ canister: CanisterState }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  const snapshot = canister.snapshots.find((s) => s.id === snapshotId);
  if (snapshot === undefined) return failWith(snapshotNotFound(canister.id, snapshotId));
  assert(snapshot.upload === undefined || checkedExecution !== undefined, `uploaded snapshot ${snapshotId} loaded without checking its module (snapshot-transfer.ts loadableExecution)`);
  const loaded: CanisterState = {
    ...canister,
    execution: checkedExecution ?? snapshot.execution,
    certifiedData: snapshot.certifiedData,
    globalTimerNs: snapshot.upload?.timerGiven === false ? canister.globalTimerNs : snapshot.globalTimerNs,
    version: canister.version + 1n,
  };
  // A taken snapshot brings back its low-memory hook status; then the condition is evaluated on
  // the loaded memory (low-wasm-memory.ts).
  const status = snapshot.upload === undefined ? (snapshot.lowWasmMemoryHook ?? "condition_not_satisfied") : hookStatusOf(canister);
  return { ok: true, canister: updateHookStatus(withHookStatus(loaded, status)) };
}

export function listSnapshots(canister: CanisterState, sender: PrincipalText): Outcome<{ snapshots: readonly CanisterSnapshot[] }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  return { ok: true, snapshots: canister.snapshots };
}

export function deleteSnapshot(
  canister: CanisterState,
  sender: PrincipalText,
  snapshotId: string,
): Outcome<{ canister: CanisterState }> {
  const denied = notController(canister, sender);
  if (denied) return denied;
  if (!canister.snapshots.some((s) => s.id === snapshotId)) {
    return failWith(snapshotNotFound(canister.id, snapshotId));
  }
  return {
    ok: true,
    canister: { ...canister, snapshots: canister.snapshots.filter((s) => s.id !== snapshotId), version: canister.version + 1n },
  };
}

/** Content digest of the replicated parts of a canister (for determinism checks in tests). */
export function memoryDigest(canister: CanisterState): string {
  const e = canister.execution;
  if (e === undefined) return "empty";
  return `${e.moduleHash}:${e.wasmMemoryPages}:${e.wasmMemory.hash()}:${e.stableMemoryPages}:${e.stableMemory.hash()}:${e.globals
    .map((g) => g.bits.toString(16))
    .join(",")}`;
}

export const EMPTY_PAGE_MAP = PageMap.empty();
