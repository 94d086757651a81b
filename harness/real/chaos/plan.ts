// A scenario's faults as actions on real processes and proxies (issue 12 item 9), decided before
// anything starts: a scenario that needs what real mode cannot do is refused with the reason, and a
// fault is never dropped silently.
//
//   partition, partition-oneway, isolate   the proxies of the cut directed links disabled (a proxy
//                                          `<subnet>-r<a>-to-r<b>` carries every byte a sends b)
//   lag                                    a `latency` toxic of delayMs on every link touching the
//                                          replicas (once per link, as the simulator adds it once)
//   slow                                   a `latency` toxic of delayMs on every link into the replicas
//                                          (what reaches a slow machine is handled delayMs late)
//   network clog on named replicas         SIGSTOP … SIGCONT: nothing leaves or reaches them, and
//                                          what piled up flows when they resume
//   crash                                  SIGKILL, kept down until restartS, then restarted from its disk
//   Byzantine kinds (not collude)          injected inside the replica's process (--byzantine)
//
// Refused: network loss / duplicate / reorder (TCP through a proxy cannot drop, copy or reorder one
// message, and a dropped connection is not a lost message), clog of every link, storage faults (they
// act on the simulated disk), collude (the ring shares its twin blocks in one process), several
// subnets, XNet faults, timed actions, probes and application invariants.
import { BYZANTINE_KINDS, replicasOf, windowOf, type FaultSpec } from "../../faults/spec.ts";
import { checkScenario, type Scenario } from "../../scenario/scenario.ts";
import { replicaId, type ReplicaId } from "../../types.ts";
import { linkProxyName } from "../cluster.ts";
import { byzantineArgument } from "./byzantine-process.ts";

/** The one subnet of a real run (as `subnetlab up` names it). */
export const REAL_SUBNET = "s0";

/** What one step does to the cluster. */
export type RealAction =
  | { readonly kind: "disable-proxies"; readonly proxies: readonly string[] }
  | { readonly kind: "enable-proxies"; readonly proxies: readonly string[] }
  | { readonly kind: "add-latency"; readonly toxic: string; readonly proxies: readonly string[]; readonly latencyMs: number; readonly jitterMs: number }
  | { readonly kind: "remove-toxic"; readonly toxic: string; readonly proxies: readonly string[] }
  | { readonly kind: "kill"; readonly replicas: readonly ReplicaId[] }
  | { readonly kind: "restart"; readonly replicas: readonly ReplicaId[] }
  | { readonly kind: "pause"; readonly replicas: readonly ReplicaId[] }
  | { readonly kind: "resume"; readonly replicas: readonly ReplicaId[] };

export interface PlannedStep {
  /** Scenario seconds from the run's origin. */
  readonly atS: number;
  /** Index of the fault in the scenario's list. */
  readonly fault: number;
  readonly faultKind: FaultSpec["kind"];
  readonly phase: "begin" | "heal";
  readonly action: RealAction;
}

export interface RealPlan {
  readonly scenario: Scenario;
  readonly n: number;
  /** The faults as the scenario lists them (a one-subnet `subnets` scenario: its subnet's). */
  readonly faults: readonly FaultSpec[];
  /** Process and proxy steps, in time order (ties: scenario order, begin before heal). */
  readonly steps: readonly PlannedStep[];
  /** Per replica with Byzantine faults: the value of its process's --byzantine option. */
  readonly byzantineArgs: ReadonlyMap<ReplicaId, string>;
}

/** A scenario real mode cannot run as written; the message says why, before anything starts. */
export class RealModeRefusal extends Error {
  override readonly name = "RealModeRefusal";
}

export function planRealRun(scenario: Scenario): RealPlan {
  checkScenario(scenario);
  const refuse = (why: string): never => {
    throw new RealModeRefusal(`scenario ${scenario.name}: real mode cannot run it: ${why}`);
  };
  if ((scenario.subnets?.length ?? 1) > 1) refuse(`it needs ${scenario.subnets?.length} subnets; real mode runs one subnet (XNet between replica processes is not built)`);
  if ((scenario.xnetFaults ?? []).length > 0) refuse("it has XNet faults, which need several subnets");
  if ((scenario.actions ?? []).length > 0) refuse("it has timed actions (calls, upgrades, snapshots, probes), which real mode does not run yet");
  if ((scenario.invariants ?? []).length > 0 || scenario.expectProbes !== undefined) refuse("it declares application invariants or probe expectations, which need the scenario's canisters and actions");
  const n = scenario.n;
  const faults = scenario.subnets?.[0]?.faults ?? scenario.faults ?? [];
  const steps: PlannedStep[] = [];
  faults.forEach((fault, index) => {
    const actions = actionsOf(fault, n, index, refuse);
    const { fromS, toS } = windowOf(fault);
    if (actions === undefined) return;
    steps.push({ atS: fromS, fault: index, faultKind: fault.kind, phase: "begin", action: actions.begin });
    if (toS !== undefined && actions.heal !== undefined) steps.push({ atS: toS, fault: index, faultKind: fault.kind, phase: "heal", action: actions.heal });
  });
  steps.sort((a, b) => a.atS - b.atS || a.fault - b.fault || (a.phase === b.phase ? 0 : a.phase === "begin" ? -1 : 1));
  const byzantineArgs = new Map<ReplicaId, string>();
  for (let r = 0; r < n; r++) {
    const arg = byzantineArgument(faults, r);
    if (arg !== undefined) byzantineArgs.set(replicaId(r), arg);
  }
  return { scenario, n, faults, steps, byzantineArgs };
}

/** The directed links a fault cuts or slows, as proxy names. */
const proxy = (from: number, to: number): string => linkProxyName(REAL_SUBNET, replicaId(from), replicaId(to));
const everyone = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function linksTouching(replicas: readonly number[], n: number): string[] {
  const set = new Set(replicas);
  const out: string[] = [];
  for (const a of everyone(n)) for (const b of everyone(n)) if (a !== b && (set.has(a) || set.has(b))) out.push(proxy(a, b));
  return out;
}

function linksInto(replicas: readonly number[], n: number): string[] {
  return replicas.flatMap((b) => everyone(n).filter((a) => a !== b).map((a) => proxy(a, b)));
}

function linksBetween(from: readonly number[], to: readonly number[]): string[] {
  return from.flatMap((a) => to.filter((b) => b !== a).map((b) => proxy(a, b)));
}

/** Partition groups plus the group of everyone not named (as the simulator's schedule reads them). */
function partitionLinks(groups: readonly (readonly number[])[], n: number): string[] {
  const named = new Set(groups.flat());
  const all = [...groups, everyone(n).filter((r) => !named.has(r))].filter((g) => g.length > 0);
  return all.flatMap((g, i) => all.flatMap((h, j) => (i === j ? [] : linksBetween(g, h))));
}

function actionsOf(fault: FaultSpec, n: number, index: number, refuse: (why: string) => never): { begin: RealAction; heal?: RealAction } | undefined {
  const where = `faults[${index}] (${fault.kind})`;
  const cut = (proxies: string[]): { begin: RealAction; heal: RealAction } => ({ begin: { kind: "disable-proxies", proxies }, heal: { kind: "enable-proxies", proxies } });
  const latency = (proxies: string[], latencyMs: number): { begin: RealAction; heal: RealAction } => {
    const toxic = `f${index}-${fault.kind}`;
    return { begin: { kind: "add-latency", toxic, proxies, latencyMs, jitterMs: 0 }, heal: { kind: "remove-toxic", toxic, proxies } };
  };
  switch (fault.kind) {
    case "partition":
      return cut(partitionLinks(fault.groups, n));
    case "partition-oneway":
      return cut(linksBetween(fault.from, fault.to));
    case "isolate":
      return cut(linksTouching(fault.replicas, n));
    case "lag":
      return latency(linksTouching(fault.replicas, n), fault.delayMs);
    case "slow":
      return latency(linksInto(fault.replicas, n), fault.delayMs);
    case "crash": {
      const replicas = fault.replicas.map(replicaId);
      return { begin: { kind: "kill", replicas }, ...(fault.restartS === undefined ? {} : { heal: { kind: "restart", replicas } }) };
    }
    case "network": {
      if (fault.effect === "clog" && fault.replicas !== undefined && fault.replicas.length > 0) {
        const replicas = fault.replicas.map(replicaId);
        return { begin: { kind: "pause", replicas }, heal: { kind: "resume", replicas } };
      }
      if (fault.effect === "clog") return refuse(`${where}: a clog of every link would pause the whole subnet; name the replicas to pause`);
      return refuse(`${where}: network ${fault.effect} cannot be made through Toxiproxy — TCP through a proxy neither drops, copies nor reorders single messages (a timeout or limit_data toxic would drop whole connections, which the transport redials)`);
    }
    case "storage":
      return refuse(`${where}: storage faults act on the simulated disk; a real replica's FileDisk cannot be made to lose or rot its writes from outside its process`);
    case "collude":
      return refuse(`${where}: colluders share their twin blocks through one in-process ring in the simulator; between processes they would need a channel real mode does not have`);
    default:
      if (BYZANTINE_KINDS.has(fault.kind)) {
        if (replicasOf(fault).length === 0) return refuse(`${where}: names no replica`);
        return undefined; // runs inside the replica's process: see byzantineArgs
      }
      return refuse(`${where}: no real-mode mapping for this kind`);
  }
}

/** One line per step, for progress output and the report. */
export function describeAction(action: RealAction): string {
  switch (action.kind) {
    case "disable-proxies":
    case "enable-proxies":
      return `${action.kind === "disable-proxies" ? "disable" : "enable"} ${action.proxies.length} proxies (${action.proxies.join(", ")})`;
    case "add-latency":
      return `latency toxic ${action.toxic} of ${action.latencyMs} ms on ${action.proxies.length} proxies`;
    case "remove-toxic":
      return `remove toxic ${action.toxic} from ${action.proxies.length} proxies`;
    case "kill":
      return `SIGKILL ${action.replicas.map((r) => `r${r}`).join(", ")} (kept down)`;
    case "restart":
      return `restart ${action.replicas.map((r) => `r${r}`).join(", ")} from disk`;
    case "pause":
      return `SIGSTOP ${action.replicas.map((r) => `r${r}`).join(", ")}`;
    case "resume":
      return `SIGCONT ${action.replicas.map((r) => `r${r}`).join(", ")}`;
  }
}
