// Turns a scenario's fault list into (1) behaviours for Byzantine replicas, (2) timed actions on
// the network and on replica processes, and (3) the facts the checkers need: which replicas are
// Byzantine, which stay down, and when the last fault heals.
import type { ReplicaBehaviour, BehaviourEnv } from "../replica/behaviour.ts";
import type { SimSubnet } from "../replica/subnet.ts";
import { partitionSelectors, type LinkCondition, type LinkEffect, type LinkSelector } from "../sim/network.ts";
import { percent } from "../sim/rng.ts";
import type { Trace } from "../sim/trace.ts";
import { replicaId, secondsToUs, type ReplicaId, type TimeUs } from "../types.ts";
import {
  CollusionRing,
  colluder,
  compose,
  divergent,
  equivocatingMaker,
  garbler,
  isActive,
  silent,
  withholding,
  type ActiveWindow,
} from "./byzantine.ts";
import { forger } from "./forgery.ts";
import { BYZANTINE_KINDS, DEFAULT_FORGE_ARTIFACTS, replicasOf, windowOf, type FaultSpec } from "./spec.ts";

export interface CompiledFaults {
  readonly byzantine: ReadonlySet<ReplicaId>;
  /** Replicas crashed and never restarted. */
  readonly permanentlyDown: ReadonlySet<ReplicaId>;
  /** When the last fault ends (undefined: no fault; Infinity: some fault never ends). */
  readonly lastHealUs: number | undefined;
  behaviourOf(id: ReplicaId, env: BehaviourEnv): ReplicaBehaviour | undefined;
  processingDelayUs(id: ReplicaId, nowUs: TimeUs): number;
  /** Puts the timed network and process actions on the subnet's event loop. */
  schedule(subnet: SimSubnet, trace: Trace): void;
}

export function compileFaults(specs: readonly FaultSpec[]): CompiledFaults {
  const byzantine = new Set<ReplicaId>();
  const permanentlyDown = new Set<ReplicaId>();
  let lastHealUs: number | undefined;
  const rings = new Map<number, CollusionRing>();
  specs.forEach((spec, index) => {
    const { toS } = windowOf(spec);
    const endUs = toS === undefined ? Infinity : secondsToUs(toS);
    if (BYZANTINE_KINDS.has(spec.kind)) for (const r of replicasOf(spec)) byzantine.add(replicaId(r));
    if (spec.kind === "crash" && spec.restartS === undefined) for (const r of spec.replicas) permanentlyDown.add(replicaId(r));
    // A permanently crashed replica is excluded from the checks rather than holding liveness back.
    // A storage fault acts at one moment; the crash that meets it heals on its own schedule.
    const heals = spec.kind === "crash" && spec.restartS === undefined ? 0 : spec.kind === "storage" ? secondsToUs(spec.atS) : endUs;
    if (!BYZANTINE_KINDS.has(spec.kind) || spec.kind === "silent" || spec.kind === "withhold") {
      lastHealUs = Math.max(lastHealUs ?? 0, heals);
    }
    if (spec.kind === "collude") {
      rings.set(index, new CollusionRing(new Set(spec.replicas.map(replicaId)), new Set(spec.sideA.map(replicaId))));
    }
  });

  const windowFor = (spec: FaultSpec): ActiveWindow => {
    const { fromS, toS } = windowOf(spec);
    return { fromUs: secondsToUs(fromS), toUs: toS === undefined ? undefined : secondsToUs(toS) };
  };

  return {
    byzantine,
    permanentlyDown,
    lastHealUs,
    behaviourOf(id, env) {
      const behaviours: ReplicaBehaviour[] = [];
      specs.forEach((spec, index) => {
        if (!BYZANTINE_KINDS.has(spec.kind) || !replicasOf(spec).includes(id)) return;
        const window = windowFor(spec);
        switch (spec.kind) {
          case "equivocate":
            behaviours.push(equivocatingMaker(env, window));
            break;
          case "silent":
            behaviours.push(silent(env, window));
            break;
          case "withhold":
            behaviours.push(withholding(env, window, new Set(spec.artifacts ?? ["proposal"])));
            break;
          case "forge":
            behaviours.push(forger(env, window, spec.artifacts ?? DEFAULT_FORGE_ARTIFACTS));
            break;
          case "diverge":
            behaviours.push(divergent(env, window));
            break;
          case "garble":
            behaviours.push(garbler(env, window, spec.percent ?? 100));
            break;
          case "collude": {
            const ring = rings.get(index);
            if (ring !== undefined) behaviours.push(colluder(env, window, ring));
            break;
          }
          default:
            break;
        }
      });
      return behaviours.length === 0 ? undefined : compose(behaviours);
    },
    processingDelayUs(id, nowUs) {
      let delay = 0;
      for (const spec of specs) {
        if (spec.kind === "slow" && spec.replicas.includes(id) && isActive(windowFor(spec), nowUs)) delay += spec.delayMs * 1000;
      }
      return delay;
    },
    schedule(subnet, trace) {
      specs.forEach((spec, index) => scheduleOne(subnet, trace, spec, index, windowFor(spec)));
    },
  };
}

function scheduleOne(subnet: SimSubnet, trace: Trace, spec: FaultSpec, index: number, window: ActiveWindow): void {
  const loop = subnet.loop;
  const at = (us: number, action: () => void): void => {
    loop.schedule(us as TimeUs, action);
  };
  const log = (kind: string, detail: Record<string, string | number>): void =>
    trace.record(loop.now(), -1, { kind, detail: { fault: index, ...detail } });
  if (spec.kind === "crash") {
    for (const r of spec.replicas) {
      at(window.fromUs, () => subnet.crash(replicaId(r)));
      if (window.toUs !== undefined) at(window.toUs, () => { log("fault.restart", { replica: r }); subnet.restart(replicaId(r)); });
    }
    return;
  }
  if (spec.kind === "storage") {
    for (const r of spec.replicas) {
      at(window.fromUs, () => {
        if (spec.effect === "lose-unsynced" || spec.effect === "torn-write") {
          log("fault.storage-armed", { replica: r, effect: spec.effect });
          subnet.armCrashLoss(replicaId(r), spec.effect);
        } else {
          subnet.corruptDisk(replicaId(r), spec.effect === "corrupt-checkpoint" ? "checkpoint" : "page", `${index}|${r}`, spec.scope === "all");
        }
      });
    }
    return;
  }
  const conditions = networkConditionsFor(spec, index, subnet.n);
  if (conditions.length === 0) return;
  at(window.fromUs, () => {
    log("fault.begin", { kind: spec.kind });
    for (const c of conditions) subnet.network.addCondition(c);
  });
  if (window.toUs !== undefined) {
    at(window.toUs, () => {
      log("fault.heal", { kind: spec.kind });
      for (const c of conditions) subnet.network.removeCondition(c.id);
    });
  }
}

function networkConditionsFor(spec: FaultSpec, index: number, n: number): LinkCondition[] {
  const ids = (rs: readonly number[]): ReplicaId[] => rs.map(replicaId);
  const make = (links: LinkSelector[], effect: LinkEffect): LinkCondition[] =>
    links.map((l, i) => ({ id: `f${index}.${i}`, links: l, effect }));
  switch (spec.kind) {
    case "partition":
      return make(partitionSelectors(withRest(spec.groups, n)), { kind: "cut" });
    case "partition-oneway":
      return make([{ kind: "between", from: ids(spec.from), to: ids(spec.to) }], { kind: "cut" });
    case "isolate":
      return make([{ kind: "touching", replicas: ids(spec.replicas) }], { kind: "cut" });
    case "lag":
      return make([{ kind: "touching", replicas: ids(spec.replicas) }], { kind: "delay", extraMs: spec.delayMs });
    case "network": {
      const links: LinkSelector = spec.replicas === undefined ? { kind: "all" } : { kind: "touching", replicas: ids(spec.replicas) };
      const p = percent(spec.percent ?? 0);
      const effect: LinkEffect =
        spec.effect === "loss" ? { kind: "loss", p }
        : spec.effect === "duplicate" ? { kind: "duplicate", p }
        : spec.effect === "reorder" ? { kind: "reorder", p, maxMs: spec.maxDelayMs ?? 200 }
        : { kind: "clog" };
      return make([links], effect);
    }
    default:
      return [];
  }
}

/** Partition groups plus one group of everybody not named. */
function withRest(groups: readonly (readonly number[])[], n: number): ReplicaId[][] {
  const out = groups.map((g) => g.map(replicaId));
  const named = new Set(groups.flat());
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !named.has(i));
  if (rest.length > 0) out.push(rest.map(replicaId));
  return out;
}
