// Discrete-event loop ordered by (virtual time, sequence number). Nothing waits in real time:
// `run` pops the earliest event, advances the clock to it and calls it. Two events at the same
// instant run in the order they were scheduled, so the order never depends on heap internals.
import { assert } from "../assert.ts";
import { timeUs, type TimeUs } from "../types.ts";

interface Scheduled {
  readonly at: TimeUs;
  readonly seq: number;
  readonly action: () => void;
  cancelled: boolean;
}

export interface EventHandle {
  readonly seq: number;
}

export class EventLoop {
  private readonly heap: Scheduled[] = [];
  private readonly bySeq = new Map<number, Scheduled>();
  private nextSeq = 0;
  private clock: TimeUs = timeUs(0);
  /** Events executed so far (a progress and performance measure). */
  executed = 0;
  /** Sequence number of the event running now; past every number while none runs. */
  private runningSeq = Number.MAX_SAFE_INTEGER;

  now(): TimeUs {
    return this.clock;
  }

  schedule(at: TimeUs, action: () => void): EventHandle {
    const when = at < this.clock ? this.clock : at;
    const entry: Scheduled = { at: when, seq: this.nextSeq++, action, cancelled: false };
    this.push(entry);
    this.bySeq.set(entry.seq, entry);
    return { seq: entry.seq };
  }

  /**
   * A sequence number for something that is ordered like an event but never scheduled (a queued
   * arrival, `ArrivalQueue`): it sorts among the events exactly where an event scheduled now would.
   */
  reserveSeq(): number {
    return this.nextSeq++;
  }

  /** The running event's sequence number (MAX_SAFE_INTEGER outside events): what came before it sorts below. */
  currentSeq(): number {
    return this.runningSeq;
  }

  after(delayUs: number, action: () => void): EventHandle {
    assert(delayUs >= 0, `negative delay ${delayUs}`);
    return this.schedule(timeUs(this.clock + Math.ceil(delayUs)), action);
  }

  cancel(handle: EventHandle): void {
    const entry = this.bySeq.get(handle.seq);
    if (entry !== undefined) {
      entry.cancelled = true;
      this.bySeq.delete(handle.seq);
    }
  }

  pending(): number {
    return this.bySeq.size;
  }

  /** Runs events with time ≤ `until`; the clock ends at `until`. Returns false if stopped early. */
  runUntil(until: TimeUs, shouldStop?: () => boolean): boolean {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.at > until) break;
      this.pop();
      if (top.cancelled) continue;
      this.bySeq.delete(top.seq);
      assert(top.at >= this.clock, "event loop went back in time");
      this.clock = top.at;
      this.executed++;
      this.runningSeq = top.seq;
      try {
        top.action();
      } finally {
        this.runningSeq = Number.MAX_SAFE_INTEGER;
      }
      if (shouldStop?.() === true) return false;
    }
    if (until > this.clock) this.clock = until;
    return true;
  }

  private push(entry: Scheduled): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Scheduled;
      if (!earlier(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Scheduled;
    if (heap.length === 0) return;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child =
        right < n && earlier(heap[right] as Scheduled, heap[left] as Scheduled) ? right : left;
      const c = heap[child] as Scheduled;
      if (!earlier(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
  }
}

function earlier(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
