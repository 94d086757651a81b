// Simulated network between the replicas of one run.
//
// Each directed link has a latency drawn from a region matrix plus jitter, and a bandwidth: a
// message occupies its sender's link for size/bandwidth, so big blocks queue behind each other.
// On top of the base model, *conditions* (loss, duplication, reordering, extra delay, clogging,
// partitions) are applied to selected links during a time window; the fault schedule adds and
// removes them. All randomness comes from the network's own PRNG stream.
import { assert } from "../assert.ts";
import { timeUs, type ReplicaId, type TimeUs } from "../types.ts";
import type { EventLoop } from "./event-loop.ts";
import type { Ratio, Rng } from "./rng.ts";

export type Region = "americas" | "europe" | "asia";
export const REGIONS: readonly Region[] = ["americas", "europe", "asia"];

/** One-way latency between regions in ms; loosely the public RTT/2 figures between continents. */
export const DEFAULT_LATENCY_MS: Readonly<Record<Region, Readonly<Record<Region, number>>>> = {
  americas: { americas: 20, europe: 45, asia: 90 },
  europe: { americas: 45, europe: 10, asia: 75 },
  asia: { americas: 90, europe: 75, asia: 25 },
};

export interface NetworkConfig {
  /** Region of replica i (length n). */
  readonly regions: readonly Region[];
  readonly latencyMs: Readonly<Record<Region, Readonly<Record<Region, number>>>>;
  /** Uniform jitter added to every message, as a share of its base latency (percent). */
  readonly jitterPercent: number;
  /** Per directed link, in megabits per second. */
  readonly bandwidthMbps: number;
}

export function defaultNetworkConfig(n: number): NetworkConfig {
  return {
    regions: Array.from({ length: n }, (_, i) => REGIONS[i % REGIONS.length] as Region),
    latencyMs: DEFAULT_LATENCY_MS,
    jitterPercent: 20,
    bandwidthMbps: 1000,
  };
}

/** Which directed links a condition applies to. */
export type LinkSelector =
  | { readonly kind: "all" }
  | { readonly kind: "from"; readonly replicas: readonly ReplicaId[] }
  | { readonly kind: "to"; readonly replicas: readonly ReplicaId[] }
  | { readonly kind: "touching"; readonly replicas: readonly ReplicaId[] }
  /** Links from any member of `from` to any member of `to` (one direction only). */
  | { readonly kind: "between"; readonly from: readonly ReplicaId[]; readonly to: readonly ReplicaId[] };

export type LinkEffect =
  /** Drop every message (a partition cut). */
  | { readonly kind: "cut" }
  | { readonly kind: "loss"; readonly p: Ratio }
  | { readonly kind: "duplicate"; readonly p: Ratio }
  /** With probability p, add a uniform extra delay up to maxMs (messages overtake each other). */
  | { readonly kind: "reorder"; readonly p: Ratio; readonly maxMs: number }
  | { readonly kind: "delay"; readonly extraMs: number }
  /** Hold every message until the condition is removed, then release them all. */
  | { readonly kind: "clog" };

export interface LinkCondition {
  readonly id: string;
  readonly links: LinkSelector;
  readonly effect: LinkEffect;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  bytesSent: number;
}

export type DeliverFn<M> = (from: ReplicaId, to: ReplicaId, message: M) => void;
export type NetTraceFn = (kind: string, from: ReplicaId, to: ReplicaId, why: string) => void;
/**
 * Takes a message that needs no event of its own (the receiver drains it before its next input)
 * at its arrival time; returns false when the message must be delivered as an event.
 */
export type QueueArrivalFn<M> = (from: ReplicaId, to: ReplicaId, atUs: TimeUs, message: M) => boolean;

interface HeldMessage<M> {
  readonly from: ReplicaId;
  readonly to: ReplicaId;
  readonly message: M;
}

export class SimNetwork<M extends { readonly sizeBytes: number }> {
  private readonly conditions = new Map<string, LinkCondition>();
  private readonly held = new Map<string, HeldMessage<M>[]>();
  /** Time at which the sender side of each directed link is free again (bandwidth model). */
  private readonly linkFreeAt: number[];
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, bytesSent: 0 };

  constructor(
    private readonly loop: EventLoop,
    private readonly rng: Rng,
    private readonly config: NetworkConfig,
    private readonly deliver: DeliverFn<M>,
    private readonly trace: NetTraceFn,
    private readonly queueArrival?: QueueArrivalFn<M>,
  ) {
    assert(config.bandwidthMbps > 0, "bandwidth must be positive");
    assert(config.jitterPercent >= 0 && config.jitterPercent <= 100, "jitter must be 0..100 %");
    this.linkFreeAt = new Array<number>(config.regions.length * config.regions.length).fill(0);
  }

  get size(): number {
    return this.config.regions.length;
  }

  addCondition(condition: LinkCondition): void {
    assert(!this.conditions.has(condition.id), `duplicate network condition ${condition.id}`);
    this.conditions.set(condition.id, condition);
  }

  /** Removes a condition; held (clogged) messages are released now, in the order they were sent. */
  removeCondition(id: string): void {
    const condition = this.conditions.get(id);
    if (condition === undefined) return;
    this.conditions.delete(id);
    const held = this.held.get(id) ?? [];
    this.held.delete(id);
    for (const h of held) this.transmit(h.from, h.to, h.message);
  }

  activeConditions(): LinkCondition[] {
    return [...this.conditions.values()];
  }

  send(from: ReplicaId, to: ReplicaId, message: M): void {
    assert(from !== to, `replica ${from} sends to itself`);
    assert(to < this.size && from < this.size, `unknown link ${from}->${to}`);
    this.stats.sent++;
    this.stats.bytesSent += message.sizeBytes;
    let extraDelayMs = 0;
    let copies = 1;
    for (const condition of this.conditions.values()) {
      if (!selects(condition.links, from, to)) continue;
      const effect = condition.effect;
      switch (effect.kind) {
        case "cut":
          return this.drop(from, to, `cut:${condition.id}`);
        case "loss":
          if (this.rng.chance(effect.p)) return this.drop(from, to, `loss:${condition.id}`);
          break;
        case "clog":
          this.hold(condition.id, { from, to, message });
          return;
        case "duplicate":
          if (this.rng.chance(effect.p)) copies++;
          break;
        case "reorder":
          if (this.rng.chance(effect.p)) extraDelayMs += this.rng.between(0, effect.maxMs);
          break;
        case "delay":
          extraDelayMs += effect.extraMs;
          break;
      }
    }
    for (let copy = 0; copy < copies; copy++) {
      if (copy > 0) {
        this.stats.duplicated++;
        this.trace("net.duplicate", from, to, "");
      }
      this.transmit(from, to, message, extraDelayMs);
    }
  }

  private transmit(from: ReplicaId, to: ReplicaId, message: M, extraDelayMs = 0): void {
    const now = this.loop.now();
    const link = from * this.size + to;
    const serializationUs = Math.ceil((message.sizeBytes * 8) / this.config.bandwidthMbps);
    const startUs = Math.max(now, this.linkFreeAt[link] ?? 0);
    this.linkFreeAt[link] = startUs + serializationUs;
    const arrival = timeUs(startUs + serializationUs + this.latencyUs(from, to) + extraDelayMs * 1000);
    // Every condition, the bandwidth and the latency draw applied above whichever way it arrives.
    if (this.queueArrival?.(from, to, arrival, message) === true) {
      this.stats.delivered++;
      return;
    }
    this.loop.schedule(arrival, () => {
      this.stats.delivered++;
      this.deliver(from, to, message);
    });
  }

  private latencyUs(from: ReplicaId, to: ReplicaId): number {
    const a = this.config.regions[from] as Region;
    const b = this.config.regions[to] as Region;
    const baseUs = Math.round(this.config.latencyMs[a][b] * 1000);
    const jitterMaxUs = Math.floor((baseUs * this.config.jitterPercent) / 100);
    return baseUs + (jitterMaxUs > 0 ? this.rng.below(jitterMaxUs + 1) : 0);
  }

  private drop(from: ReplicaId, to: ReplicaId, why: string): void {
    this.stats.dropped++;
    this.trace("net.drop", from, to, why);
  }

  private hold(conditionId: string, message: HeldMessage<M>): void {
    const queue = this.held.get(conditionId) ?? [];
    queue.push(message);
    this.held.set(conditionId, queue);
    this.trace("net.clog", message.from, message.to, conditionId);
  }

  /** Base one-way latency between two replicas (no jitter), for liveness bounds and reports. */
  baseLatencyMs(from: ReplicaId, to: ReplicaId): number {
    const a = this.config.regions[from] as Region;
    const b = this.config.regions[to] as Region;
    return this.config.latencyMs[a][b];
  }

  nowUs(): TimeUs {
    return this.loop.now();
  }
}

export function selects(selector: LinkSelector, from: ReplicaId, to: ReplicaId): boolean {
  switch (selector.kind) {
    case "all":
      return true;
    case "from":
      return selector.replicas.includes(from);
    case "to":
      return selector.replicas.includes(to);
    case "touching":
      return selector.replicas.includes(from) || selector.replicas.includes(to);
    case "between":
      return selector.from.includes(from) && selector.to.includes(to);
  }
}

/** Links that a symmetric partition into `groups` cuts (every replica not listed is its own side). */
export function partitionSelectors(groups: readonly (readonly ReplicaId[])[]): LinkSelector[] {
  const selectors: LinkSelector[] = [];
  for (let i = 0; i < groups.length; i++) {
    for (let j = 0; j < groups.length; j++) {
      if (i !== j) selectors.push({ kind: "between", from: groups[i] ?? [], to: groups[j] ?? [] });
    }
  }
  return selectors;
}
