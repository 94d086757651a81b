// Issue 13 item 3, "ingress gossip as arrivals": each submitted message leaves its replica as
// n − 1 one-item bundles, and nothing in a replica reacts to ingress until a block maker reads
// its pool, so those bundles need not be one event-loop event each. The simulated network still
// treats every one as a message of its own (bandwidth, latency draw, loss, duplication, reorder,
// delay, clog, cut — all applied at send time, as before); only the hand-over changes: an
// ingress-only bundle goes into its receiver's arrival queue, and the receiver takes what has
// arrived, in (arrival time, sequence) order, at the start of its next input. Admission checks
// (expiry) use each message's arrival time, so the pool is what one event per bundle made it.
import { assert } from "../assert.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import type { Bundle } from "../p2p/messages.ts";
import { ArrivalQueue } from "../sim/arrival-queue.ts";
import type { Env, QueuedMessage } from "../sim/env.ts";
import type { ReplicaId, TimeUs } from "../types.ts";

/** True for a bundle that only carries ingress: receiving it starts no step and sends nothing. */
export function onlyIngress(bundle: Bundle): boolean {
  if (bundle.items.length === 0) return false;
  for (const item of bundle.items) if (item.kind !== "ingress") return false;
  return true;
}

/** Replica side: admits the queued ingress that arrived up to now, each at its arrival time. */
export function takeIngressArrivals(env: Env<Bundle>, admit: (message: IngressMessage, atUs: TimeUs) => void): void {
  const arrivals = env.takeArrivals?.();
  if (arrivals === undefined) return;
  for (const arrival of arrivals) {
    for (const item of arrival.message.items) {
      assert(item.kind === "ingress", `queued bundle carries ${item.kind}`);
      admit(item.message, arrival.atUs);
    }
  }
}

/** What the subnet needs to open a queued packet when its receiver takes it. */
export interface InboxHooks<P> {
  /** The packet's bundle (decoded in wire mode `roundtrip`), or undefined when it does not decode (traced). */
  open(from: ReplicaId, to: ReplicaId, packet: P): Bundle | undefined;
  /** Traces the hand-over as the event-per-bundle path does, with the arrival time. */
  traceDelivery(from: ReplicaId, to: ReplicaId, bundle: Bundle, atUs: TimeUs): void;
}

/** Subnet side: one arrival queue per receiver slot (it outlives a replica's incarnations). */
export class IngressInboxes<P> {
  private readonly queues: ArrivalQueue<{ readonly from: ReplicaId; readonly packet: P }>[];

  constructor(n: number, private readonly hooks: InboxHooks<P>) {
    this.queues = Array.from({ length: n }, () => new ArrivalQueue());
  }

  /** `seq`: the event loop's number for it (`EventLoop.reserveSeq`), so it sorts as its event would have. */
  enqueue(from: ReplicaId, to: ReplicaId, atUs: TimeUs, seq: number, packet: P): void {
    this.queueOf(to).push(atUs, seq, { from, packet });
  }

  /**
   * Packets that reached `to` before the running event (`nowUs`, `seq`), opened and traced, in
   * (arrival time, sequence) order: exactly those whose own events would have run by now.
   */
  take(to: ReplicaId, nowUs: TimeUs, seq: number): QueuedMessage<Bundle>[] {
    const queue = this.queueOf(to);
    const earliest = queue.earliestUs();
    if (earliest === undefined || earliest > nowUs) return [];
    const out: QueuedMessage<Bundle>[] = [];
    for (const { atUs, item } of queue.takeBefore(nowUs, seq)) {
      const bundle = this.hooks.open(item.from, to, item.packet);
      if (bundle === undefined) continue;
      this.hooks.traceDelivery(item.from, to, bundle, atUs);
      out.push({ from: item.from, message: bundle, atUs });
    }
    return out;
  }

  /** A replica (re)starts: what arrived while it was down is gone, as a message to a dead process is. */
  discardBefore(to: ReplicaId, nowUs: TimeUs, seq: number): number {
    return this.queueOf(to).takeBefore(nowUs, seq).length;
  }

  private queueOf(to: ReplicaId): ArrivalQueue<{ readonly from: ReplicaId; readonly packet: P }> {
    const queue = this.queues[to];
    assert(queue !== undefined, `no arrival queue for replica ${to}`);
    return queue;
  }
}
