// Runs a scenario's timed actions on the event loop: one-off calls and management operations are
// submitted as ingress from the canisters' controller (the user "genesis", who installed them), and
// probes query every live honest replica. The runner provides the world through `ActionHost`.
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { IngressCall } from "../consensus/ingress.ts";
import { MANAGEMENT_CANISTER, type Response } from "../execution/interfaces.ts";
import { MANAGEMENT_TYPES } from "../execution/management.ts";
import type { IngressStatus } from "../replica/interfaces.ts";
import type { EventLoop } from "../sim/event-loop.ts";
import type { Trace } from "../sim/trace.ts";
import { secondsToUs, type HashHex, type TimeUs } from "../types.ts";
import { encodeArgs, type ScenarioAction } from "./calls.ts";

/** The controller of every genesis canister (ExecutionStateMachine installs them as this user). */
export const CONTROLLER = "genesis";

export interface ActionHost {
  readonly loop: EventLoop;
  readonly trace: Trace;
  readonly canisterIds: ReadonlyMap<string, string>;
  /** Fleet name → its members' names: an action on a fleet is sent to every member, in order. */
  readonly fleets: ReadonlyMap<string, readonly string[]>;
  /** Submits a call as `sender` to the subnet that hosts `hostCanister`; the message id, or why not. */
  submit(hostCanister: string, sender: string, call: IngressCall): { readonly id: HashHex } | { readonly error: string };
  /** The message's status on a live honest replica of the subnet hosting `hostCanister`. */
  status(hostCanister: string, id: HashHex): IngressStatus | undefined;
  /** `method` queried on every live honest replica of the canister's subnet: replica name → answer. */
  query(canister: string, method: string, arg: Uint8Array): ReadonlyMap<string, Response>;
  /** The height a replica (by report name) has executed, for probes. */
  heightOf(replica: string): number;
}

export interface ProbeRecord {
  readonly label: string;
  readonly atS: number;
  /** Replica name → the answer as text (`reply <hex>` or `reject <code>: <message>`). */
  readonly answers: Readonly<Record<string, string>>;
  /** Replica name → the height its state was at (replicas behind others may answer differently). */
  readonly heights: Readonly<Record<string, number>>;
}

export interface ActionRecord {
  readonly atS: number;
  readonly kind: ScenarioAction["kind"];
  readonly canister: string;
  /** The ingress message carrying the action, when it was one. */
  readonly messageId?: string;
  readonly error?: string;
}

export class ActionLog {
  readonly probes: ProbeRecord[] = [];
  readonly actions: ActionRecord[] = [];
  /** Snapshot label → the take-snapshot message, whose reply holds the snapshot id. */
  readonly snapshots = new Map<string, HashHex>();

  /** Ingress messages the actions sent (valid by construction: the checks must not flag them). */
  messageIds(): HashHex[] {
    return this.actions.flatMap((a) => (a.messageId === undefined ? [] : [a.messageId as HashHex]));
  }
}

const REPO_ROOT = new URL("../../", import.meta.url).pathname;

export function installActions(actions: readonly ScenarioAction[], host: ActionHost): ActionLog {
  const log = new ActionLog();
  const modules = new ModuleFiles();
  for (const action of actions) {
    const members = host.fleets.get(action.canister);
    const run = members === undefined ? () => runAction(action, host, log, modules) : () => members.forEach((canister) => runAction({ ...action, canister }, host, log, modules));
    host.loop.schedule(secondsToUs(action.atS) as TimeUs, run);
  }
  return log;
}

/** Module files read once per run: a fleet upgrade sends the same bytes to every member. */
class ModuleFiles {
  private readonly read = new Map<string, Uint8Array>();

  bytes(repositoryPath: string): Uint8Array {
    let wasm = this.read.get(repositoryPath);
    if (wasm === undefined) {
      wasm = readFileSync(join(REPO_ROOT, repositoryPath));
      this.read.set(repositoryPath, wasm);
    }
    return wasm;
  }
}

export const describeResponse = (r: Response): string => (r.kind === "reply" ? `reply ${bytesToHex(r.data)}` : `reject ${r.code}: ${r.message}`);

function runAction(action: ScenarioAction, host: ActionHost, log: ActionLog, modules: ModuleFiles): void {
  const canisterId = host.canisterIds.get(action.canister) ?? "";
  const record = (messageId: HashHex | undefined, error?: string): void => {
    log.actions.push({ atS: action.atS, kind: action.kind, canister: action.canister, ...(messageId === undefined ? {} : { messageId }), ...(error === undefined ? {} : { error }) });
    host.trace.record(host.loop.now(), -1, { kind: `action.${action.kind}`, detail: { canister: action.canister, ...(messageId === undefined ? {} : { id: messageId.slice(0, 16) }), ...(error === undefined ? {} : { error }) } });
  };
  const send = (call: IngressCall): HashHex | undefined => {
    const sent = host.submit(action.canister, CONTROLLER, call);
    if ("error" in sent) {
      record(undefined, sent.error);
      return undefined;
    }
    record(sent.id);
    return sent.id;
  };
  const management = (method: keyof typeof MANAGEMENT_TYPES, arg: Record<string, unknown>): HashHex | undefined =>
    send({ canister: MANAGEMENT_CANISTER, method, argHex: bytesToHex(new Uint8Array(IDL.encode([MANAGEMENT_TYPES[method].arg!], [arg]))) });
  const target = Principal.fromText(canisterId);
  switch (action.kind) {
    case "call":
      send({ canister: canisterId, method: action.method, argHex: bytesToHex(encodeArgs(action.args ?? [], undefined, host.canisterIds)) });
      return;
    case "upgrade":
    case "reinstall": {
      const wasm = modules.bytes(action.wasm);
      const mode = action.kind === "upgrade" ? { upgrade: [] } : { reinstall: null };
      management("install_code", { mode, canister_id: target, wasm_module: wasm, arg: encodeArgs(action.args ?? [], undefined, host.canisterIds), sender_canister_version: [] });
      return;
    }
    case "stop":
      management("stop_canister", { canister_id: target });
      return;
    case "start":
      management("start_canister", { canister_id: target });
      return;
    case "take-snapshot": {
      const id = management("take_canister_snapshot", { canister_id: target, replace_snapshot: [] });
      if (id !== undefined) log.snapshots.set(action.label, id);
      return;
    }
    case "load-snapshot": {
      const snapshotId = snapshotIdOf(host, action.canister, log.snapshots.get(action.snapshot));
      if (typeof snapshotId === "string") {
        record(undefined, snapshotId);
        return;
      }
      management("load_canister_snapshot", { canister_id: target, snapshot_id: snapshotId, sender_canister_version: [] });
      return;
    }
    case "probe": {
      const answers: Record<string, string> = {};
      const heights: Record<string, number> = {};
      for (const [replica, response] of host.query(action.canister, action.method, encodeArgs(action.args ?? [], undefined, host.canisterIds))) {
        answers[replica] = describeResponse(response);
        heights[replica] = host.heightOf(replica);
      }
      log.probes.push({ label: action.label, atS: action.atS, answers, heights });
      record(undefined);
      return;
    }
  }
}

/** The snapshot id from the take-snapshot reply, as the user would read it; or why there is none. */
function snapshotIdOf(host: ActionHost, canister: string, takeMessage: HashHex | undefined): Uint8Array | string {
  if (takeMessage === undefined) return "the snapshot was never taken";
  const status = host.status(canister, takeMessage);
  if (status?.status !== "completed") return `take_canister_snapshot has not replied (${status?.status ?? "unknown"})`;
  const [snapshot] = IDL.decode(MANAGEMENT_TYPES.take_canister_snapshot.ret as unknown as IDL.Type[], hexToBytes(status.reply)) as [{ id: Uint8Array | number[] }];
  return Uint8Array.from(snapshot.id);
}
