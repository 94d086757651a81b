// The application layer of a run, shared by the single- and multi-subnet runners: genesis
// canisters with their install arguments, the ingress client for timed actions, probes, and the
// application checkers (harness/checks/invariants.ts) that look into the honest replicas' states.
import { IDL } from "@dfinity/candid";
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { ingressId, type IngressCall, type IngressMessage } from "../consensus/ingress.ts";
import type { CanisterId, Response } from "../execution/interfaces.ts";
import { checkCertifications, checkEveryCallAnswered, checkLedgerConservation, checkProbes, type CertificationObservation, type LedgerObservation, type LedgerView, type UnansweredCall } from "../checks/invariants.ts";
import type { Violation } from "../checks/checks.ts";
import type { GenesisCanister } from "../replica/execution-state-machine.ts";
import type { SimSubnet } from "../replica/subnet.ts";
import type { Registry } from "../routing/registry.ts";
import type { EventLoop } from "../sim/event-loop.ts";
import type { Trace } from "../sim/trace.ts";
import { MAX_INGRESS_TTL_US } from "../consensus/config.ts";
import { replicaId, timeUs, type HashHex, type ReplicaId } from "../types.ts";
import type { ActionHost, ActionLog } from "./actions.ts";
import { encodeArgs } from "./calls.ts";
import { readCanisterStateFile } from "./canister-state-file.ts";
import { moduleHashOf, savedStateLoadProblem } from "../execution/saved-canister-state.ts";
import { WasmExecutor } from "../execution/executor.ts";
import { ScenarioError, type CanisterSpec, type Scenario } from "./scenario.ts";
import { expandFleets } from "./fleets.ts";

const REPO_ROOT = new URL("../../", import.meta.url).pathname;

/** One subnet as the application checks see it. */
export interface WorldSubnet {
  readonly name: string;
  /** Prefix of replica names in reports: "" for single-subnet runs, "a/" otherwise. */
  readonly prefix: string;
  readonly subnet: SimSubnet;
  readonly byzantine: ReadonlySet<ReplicaId>;
  /** Names of the scenario canisters it hosts (fleets expanded). */
  readonly canisters: ReadonlySet<string>;
}

export interface World {
  readonly loop: EventLoop;
  readonly trace: Trace;
  readonly subnets: readonly WorldSubnet[];
  /** Scenario canister name → textual id. */
  readonly canisterIds: ReadonlyMap<string, string>;
  /** Fleet name → its members' names (harness/scenario/fleets.ts). */
  readonly fleets: ReadonlyMap<string, readonly string[]>;
}

/** Canister ids of every scenario canister: subnet k's canisters take the k-th range in order. */
export function canisterIdsOf(scenario: Scenario, registry: Registry): Map<string, string> {
  const ids = new Map<string, string>();
  const subnets = scenario.subnets ?? [{ name: registry.subnets[0]!.name, n: scenario.n, canisters: scenario.canisters ?? [] }];
  subnets.forEach((sub, k) => expandFleets(sub.canisters ?? []).forEach((c, i) => ids.set(c.name, registry.canisterId(registry.subnets[k]!, i))));
  return ids;
}

/** Fleet name → its members' textual ids, for the workload's calls to a fleet. */
export function fleetIdsOf(fleets: ReadonlyMap<string, readonly string[]>, canisterIds: ReadonlyMap<string, string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [fleet, members] of fleets) out.set(fleet, members.map((m) => canisterIds.get(m)!));
  return out;
}

/** Genesis canisters of one subnet: modules read from the repository, install arguments encoded, saved states read. */
export function genesisOf(scenario: Scenario, canisters: readonly CanisterSpec[], ids: ReadonlyMap<string, string>): GenesisCanister[] {
  // One read per module: a fleet's members share the bytes (and so the executor's compiled module).
  const modules = new Map<string, Uint8Array>();
  const moduleAt = (c: CanisterSpec): Uint8Array => {
    const path = join(REPO_ROOT, c.wasm);
    const cached = modules.get(path);
    if (cached !== undefined) return cached;
    if (!existsSync(path)) throw new ScenarioError(`scenario ${scenario.name}: canister ${c.name}: no module at ${c.wasm}`);
    const wasm = readFileSync(path);
    modules.set(path, wasm);
    return wasm;
  };
  // One read and check per state file: a fleet's members may all start from the same one.
  const savedStates = new Map<string, NonNullable<GenesisCanister["saved"]>>();
  const savedAt = (c: CanisterSpec, fromSnapshot: string, wasm: Uint8Array): NonNullable<GenesisCanister["saved"]> => {
    const key = `${fromSnapshot}\n${c.wasm}`;
    let saved = savedStates.get(key);
    if (saved === undefined) {
      saved = savedStateFor(scenario, c, fromSnapshot, wasm);
      savedStates.set(key, saved);
    }
    return saved;
  };
  return canisters.map((c) => {
    const id = ids.get(c.name) as GenesisCanister["id"];
    const wasm = moduleAt(c);
    if (c.fromSnapshot !== undefined) return { id, wasm, saved: savedAt(c, c.fromSnapshot, wasm) };
    return { id, wasm, ...(c.init === undefined ? {} : { arg: encodeArgs(c.init, undefined, ids) }) };
  });
}

/** Where a `fromSnapshot` path points: absolute, or relative to the repository root (as `wasm`). */
export function snapshotFilePath(fromSnapshot: string): string {
  return isAbsolute(fromSnapshot) ? fromSnapshot : join(REPO_ROOT, fromSnapshot);
}

/**
 * A canister's saved state, checked before any replica loads it: the file verifies (format,
 * content hash), holds the scenario's module, and would load (module valid, globals fit it).
 */
function savedStateFor(scenario: Scenario, c: CanisterSpec, fromSnapshot: string, wasm: Uint8Array): NonNullable<GenesisCanister["saved"]> {
  const where = `scenario ${scenario.name}: canister ${c.name}: fromSnapshot`;
  const read = readCanisterStateFile(snapshotFilePath(fromSnapshot));
  if (!read.ok) throw new ScenarioError(`${where} ${read.message}`);
  const state = read.saved;
  if (state.moduleHash !== moduleHashOf(wasm)) {
    throw new ScenarioError(`${where} ${fromSnapshot} holds module ${state.moduleHash.slice(0, 16)}… (canister ${state.origin.canisterId} of ${state.origin.scenario}), but wasm ${c.wasm} is ${moduleHashOf(wasm).slice(0, 16)}…: name the module the state was saved with`);
  }
  const problem = savedStateLoadProblem(state, new WasmExecutor());
  if (problem !== undefined) throw new ScenarioError(`${where} ${fromSnapshot} cannot be loaded: ${problem}`);
  return { state, contentHash: read.contentHash };
}

function liveHonest(s: WorldSubnet): ReplicaId[] {
  return Array.from({ length: s.subnet.n }, (_, i) => replicaId(i)).filter((r) => !s.byzantine.has(r) && s.subnet.isUp(r));
}

function hostOf(world: World, canister: string): WorldSubnet {
  const s = world.subnets.find((x) => x.canisters.has(canister));
  if (s === undefined) throw new ScenarioError(`canister ${canister} is on no subnet`);
  return s;
}

export function actionHost(world: World): ActionHost {
  // Per run (never module state: two runs in one process must stay identical); far above the
  // workload's nonces so the ids never collide.
  let actionNonce = 1_000_000_000;
  return {
    loop: world.loop,
    trace: world.trace,
    canisterIds: world.canisterIds,
    fleets: world.fleets,
    submit(hostCanister: string, sender: string, call: IngressCall) {
      const s = hostOf(world, hostCanister).subnet;
      const expiryUs = timeUs(world.loop.now() + MAX_INGRESS_TTL_US - 60_000_000);
      const nonce = actionNonce++;
      const body = `action ${call.method}`;
      const id = ingressId(sender, nonce, body, 256 + call.argHex.length / 2, expiryUs, call);
      const message: IngressMessage = { id, sender, nonce, body, sizeBytes: 256 + call.argHex.length / 2, expiryUs, signature: s.ingressAuth.sign(sender, id), call };
      for (let i = 0; i < s.n; i++) {
        const result = s.submitIngress(replicaId(i), message);
        if (result.accepted) return { id };
      }
      return { error: "no replica accepted the message" };
    },
    status(hostCanister: string, id: HashHex) {
      const s = hostOf(world, hostCanister);
      for (const r of liveHonest(s)) {
        const status = s.subnet.replica(r)?.ingressStatus(id);
        if (status !== undefined) return status;
      }
      return undefined;
    },
    heightOf(replica: string) {
      const slash = replica.lastIndexOf("/");
      const s = slash < 0 ? world.subnets[0] : world.subnets.find((x) => x.name === replica.slice(0, slash));
      const r = Number(replica.slice(slash + 2));
      if (s === undefined) return -1;
      const status = s.subnet.replica(replicaId(r))?.status();
      return status?.queryHeight ?? status?.executedHeight ?? -1;
    },
    query(canister: string, method: string, arg: Uint8Array) {
      const s = hostOf(world, canister);
      const answers = new Map<string, Response>();
      const id = world.canisterIds.get(canister) as CanisterId;
      for (const r of liveHonest(s)) {
        const answer = s.subnet.replica(r)?.query(id, method, arg);
        if (answer !== undefined) answers.set(`${s.prefix}r${r}`, answer);
      }
      return answers;
    },
  };
}

const LEDGER_STATS = IDL.Record({ minted: IDL.Nat, sent_total: IDL.Nat, received_total: IDL.Nat, in_flight: IDL.Nat, transfers: IDL.Nat });
const NO_ARGS = new Uint8Array(IDL.encode([], []));

function ledgerView(host: ActionHost, ledger: string): Map<string, LedgerView | undefined> {
  const stats = host.query(ledger, "stats", NO_ARGS);
  const supply = host.query(ledger, "supply", NO_ARGS);
  const views = new Map<string, LedgerView | undefined>();
  for (const [replica, s] of stats) {
    const sup = supply.get(replica);
    if (s.kind !== "reply" || sup?.kind !== "reply") {
      views.set(replica, undefined);
      continue;
    }
    const [st] = IDL.decode([LEDGER_STATS], s.data) as [{ minted: bigint; sent_total: bigint; received_total: bigint; in_flight: bigint }];
    const [total] = IDL.decode([IDL.Nat], sup.data) as [bigint];
    views.set(replica, { supply: total, inFlight: st.in_flight, minted: st.minted, sentTotal: st.sent_total, receivedTotal: st.received_total });
  }
  return views;
}

/** Calls whose answers the checkers wait for: valid workload calls and the actions' messages. */
export interface TrackedCall {
  readonly id: HashHex;
  /** The canister whose subnet received the message. */
  readonly hostCanister: string;
}

export interface AppCheckInput {
  readonly world: World;
  readonly scenario: Scenario;
  readonly actions: ActionLog;
  readonly finalizedCalls: readonly TrackedCall[];
  readonly certifications: ReadonlyMap<string, readonly CertificationObservation[]>;
}

export function runAppChecks(input: AppCheckInput): Violation[] {
  const host = actionHost(input.world);
  const violations: Violation[] = [];
  for (const inv of input.scenario.invariants ?? []) {
    if (inv.kind === "ledger-conservation") {
      const observations: LedgerObservation[] = inv.ledgers.map((ledger) => ({ ledger, views: ledgerView(host, ledger) }));
      violations.push(...checkLedgerConservation(observations));
    } else {
      violations.push(...checkEveryCallAnswered(unansweredCalls(input.world, input.finalizedCalls)));
    }
  }
  violations.push(...checkProbes(input.actions.probes, input.scenario.expectProbes));
  for (const [subnet, observations] of input.certifications) {
    const s = input.world.subnets.find((x) => x.name === subnet);
    const executed = s === undefined ? 0 : Math.max(0, ...liveHonest(s).map((r) => s.subnet.replica(r)?.deliveredHeight ?? 0));
    violations.push(...checkCertifications(subnet, observations, executed));
  }
  return violations;
}

function unansweredCalls(world: World, calls: readonly TrackedCall[]): UnansweredCall[] {
  const out: UnansweredCall[] = [];
  for (const call of calls) {
    const s = hostOf(world, call.hostCanister);
    for (const r of liveHonest(s)) {
      const status = s.subnet.replica(r)?.ingressStatus(call.id);
      // A status pruned after its TTL was answered long ago; received/processing are unanswered.
      if (status?.status === "processing" || status?.status === "received") out.push({ replica: `${s.prefix}r${r}`, messageId: call.id, status: status.status });
    }
  }
  return out;
}

/** An observer hook recording, for each certification a replica holds, its own certified hash. */
/** Records the certifications a subnet's replicas refused as not over their own hash (see CertificationObservation.refused). */
export function certificationRefusalRecorder(prefix: string, into: CertificationObservation[]) {
  return (replica: ReplicaId, cert: { readonly height: number; readonly hash: string }, own: string): void => {
    into.push({ replica: `${prefix}r${replica}`, height: cert.height, certified: cert.hash, own, refused: true });
  };
}

export function certificationRecorder(prefix: string, subnet: () => SimSubnet | undefined, into: CertificationObservation[]) {
  return (replica: ReplicaId, cert: { readonly height: number; readonly hash: string }): void => {
    const s = subnet();
    const own = s === undefined ? undefined : s.replica(replica)?.stateMachine.certifiedHashAt?.(cert.height as never);
    into.push({ replica: `${prefix}r${replica}`, height: cert.height, certified: cert.hash, own });
  };
}
