// A canister's input queues (ic-protocol.md §3.2): one queue for ingress and one per counterpart
// canister, each FIFO; the next message is taken round-robin over the queues, so a sender that
// floods a canister cannot starve the others (the IC's pop_input also rotates over sources).
// The rotation point (`lastSource`) is replicated state: it is part of the canonical encoding.
//
// Simplification: responses carry no sender here, so they share one queue ("~response"), and the
// IC's three-way rotation (ingress / local senders / remote senders) is one rotation over all
// queues in key order (ingress first).
import type { CanisterMessage } from "./interfaces.ts";

/** The queue a message belongs to; keys sort ingress first, then senders by id, then the rest. */
export function sourceOf(m: CanisterMessage): string {
  switch (m.kind) {
    case "ingress":
      return "";
    case "request":
      return m.caller;
    case "response":
      return "~response";
    default:
      return "~task";
  }
}

export class CanisterInputQueues {
  private readonly bySource = new Map<string, CanisterMessage[]>();
  /** Messages put back in front of everything (an aborted long execution resumes first). */
  private readonly front: CanisterMessage[] = [];
  private count = 0;

  constructor(public lastSource: string | undefined = undefined) {}

  /** Rebuilds queues from their canonical form; `resumeFirst`: the first message goes in front. */
  static from(messages: readonly CanisterMessage[], lastSource: string | undefined, resumeFirst: boolean): CanisterInputQueues {
    const q = new CanisterInputQueues(lastSource);
    messages.forEach((m, i) => q.push(m, resumeFirst && i === 0));
    return q;
  }

  get size(): number {
    return this.count;
  }

  push(m: CanisterMessage, front = false): void {
    this.count++;
    if (front) {
      this.front.unshift(m);
      return;
    }
    const key = sourceOf(m);
    const queue = this.bySource.get(key);
    if (queue === undefined) this.bySource.set(key, [m]);
    else queue.push(m);
  }

  /** The next message: a resumed one first, else the head of the next queue after `lastSource`. */
  pop(): CanisterMessage | undefined {
    if (this.front.length > 0) {
      this.count--;
      return this.front.shift();
    }
    let next: string | undefined;
    let first: string | undefined;
    for (const key of this.bySource.keys()) {
      if (first === undefined || key < first) first = key;
      if (this.lastSource !== undefined && key > this.lastSource && (next === undefined || key < next)) next = key;
    }
    const key = next ?? first;
    if (key === undefined) return undefined;
    const queue = this.bySource.get(key)!;
    const m = queue.shift()!;
    if (queue.length === 0) this.bySource.delete(key);
    this.count--;
    this.lastSource = key;
    return m;
  }

  /** Every queued message in canonical order: the resumed ones, then each queue in key order. */
  messages(): CanisterMessage[] {
    const keys = [...this.bySource.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return [...this.front, ...keys.flatMap((k) => this.bySource.get(k)!)];
  }

  /**
   * Drops the queued messages `expired` selects (best-effort requests past their deadline), never
   * the resumed ones in front (they are executing). Returns how many were dropped.
   */
  dropWhere(expired: (m: CanisterMessage) => boolean): number {
    let dropped = 0;
    for (const [key, queue] of this.bySource) {
      const kept = queue.filter((m) => !expired(m));
      if (kept.length === queue.length) continue;
      dropped += queue.length - kept.length;
      if (kept.length === 0) this.bySource.delete(key);
      else this.bySource.set(key, kept);
    }
    this.count -= dropped;
    return dropped;
  }

  /** A response for this callback is waiting (or resuming) here. */
  hasResponseFor(callbackId: bigint): boolean {
    const isIt = (m: CanisterMessage): boolean => m.kind === "response" && m.callbackId === callbackId;
    return this.front.some(isIt) || (this.bySource.get("~response")?.some(isIt) ?? false);
  }

  /** Requests from `caller` waiting here (for the input queue capacity at induction). */
  requestsFrom(caller: string): number {
    return this.bySource.get(caller)?.length ?? 0;
  }
}
