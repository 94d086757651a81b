// Messages that reached a receiver but need no event of their own: kept in (arrival time,
// sequence) order — the order the event loop would have delivered them in — and taken by the
// receiver, up to its current time, just before it handles its next input.
import { assert } from "../assert.ts";
import type { TimeUs } from "../types.ts";

export interface Arrival<T> {
  readonly atUs: TimeUs;
  readonly seq: number;
  readonly item: T;
}

export class ArrivalQueue<T> {
  private readonly heap: Arrival<T>[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** Arrival time of the earliest queued item, or undefined when empty. */
  earliestUs(): TimeUs | undefined {
    return this.heap[0]?.atUs;
  }

  push(atUs: TimeUs, seq: number, item: T): void {
    const heap = this.heap;
    const entry: Arrival<T> = { atUs, seq, item };
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Arrival<T>;
      if (!earlier(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  /** Removes and returns every item ordered before (`atUs`, `seq`), earliest first. */
  takeBefore(atUs: TimeUs, seq: number): Arrival<T>[] {
    const out: Arrival<T>[] = [];
    for (let top = this.heap[0]; top !== undefined && (top.atUs < atUs || (top.atUs === atUs && top.seq < seq)); top = this.heap[0]) {
      out.push(this.pop());
    }
    return out;
  }

  private pop(): Arrival<T> {
    const heap = this.heap;
    const top = heap[0];
    assert(top !== undefined, "pop from an empty arrival queue");
    const last = heap.pop() as Arrival<T>;
    if (heap.length === 0) return top;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && earlier(heap[right] as Arrival<T>, heap[left] as Arrival<T>) ? right : left;
      const c = heap[child] as Arrival<T>;
      if (!earlier(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function earlier<T>(a: Arrival<T>, b: Arrival<T>): boolean {
  return a.atUs < b.atUs || (a.atUs === b.atUs && a.seq < b.seq);
}
