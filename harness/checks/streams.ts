// The XNet stream check (issue 11, C7), run at the end of a multi-subnet run. For every stream
// (source subnet → destination subnet):
//
// - each index was inducted by the destination exactly once and in order, with no gap — judged on
//   the destination's chain: for each height, what its honest replicas inducted there (they
//   executed the same block; a replica that disagrees is state agreement's business);
// - the destination's signals (its stream back to the source: `signalsEnd`) count exactly the
//   indices it inducted;
// - at quiescence (no new traffic and every fault healed one liveness bound before the end) the
//   destination's signals equal the source's stream end: nothing is left in flight.
//
// A violation names the stream and the first index that went wrong; it is an invariant failure.
import type { Violation } from "./checks.ts";

/** What a destination subnet's replicas inducted, by replica, height and source subnet. */
export class InductionRecorder {
  private readonly byReplica = new Map<string, Map<number, ReadonlyMap<string, readonly bigint[]>>>();

  /**
   * The indices a replica inducted at height `h`, per source subnet. A height executed again (after
   * a restart from a checkpoint) replaces what the replica recorded for it before.
   */
  record(replica: string, h: number, inducted: readonly (readonly [string, readonly bigint[]])[]): void {
    const heights = this.byReplica.get(replica) ?? new Map<number, ReadonlyMap<string, readonly bigint[]>>();
    this.byReplica.set(replica, heights);
    const bySource = new Map<string, bigint[]>();
    for (const [source, indices] of inducted) bySource.set(source, [...(bySource.get(source) ?? []), ...indices]);
    heights.set(h, bySource);
  }

  /** The subnet's chain up to height `top`: per height, the record of the first replica (by name) that executed it. */
  chain(top: number): { readonly heights: ReadonlyMap<number, ReadonlyMap<string, readonly bigint[]>>; readonly missing: readonly number[] } {
    const heights = new Map<number, ReadonlyMap<string, readonly bigint[]>>();
    const replicas = [...this.byReplica.keys()].sort();
    const missing: number[] = [];
    for (let h = 1; h <= top; h++) {
      const owner = replicas.find((r) => this.byReplica.get(r)?.has(h));
      const record = owner === undefined ? undefined : this.byReplica.get(owner)?.get(h);
      if (record === undefined) missing.push(h);
      else heights.set(h, record);
    }
    return { heights, missing };
  }
}

/** One end of the streams between subnets, as the subnet's most advanced live honest replica holds them. */
export interface SubnetStreams {
  readonly subnet: string;
  /** The height of that replica's state. */
  readonly height: number;
  /** Its streams by peer subnet: our stream to the peer (begin, end) and our signals for the peer's stream to us. */
  readonly streams: ReadonlyMap<string, { readonly begin: bigint; readonly end: bigint; readonly signalsEnd: bigint }>;
}

export interface StreamCheckInput {
  /** Every subnet's end state (each subnet once). */
  readonly subnets: readonly SubnetStreams[];
  /** What each subnet's honest replicas inducted, by destination subnet name. */
  readonly inducted: ReadonlyMap<string, InductionRecorder>;
  /** No traffic and no fault for a liveness bound before the end: the streams must have drained. */
  readonly quiescent: boolean;
  /** When a subnet first executed a height (virtual µs), to date a violation; undefined: unknown. */
  readonly executedAtUs?: (subnet: string, height: number) => number | undefined;
}

export interface StreamCheckResult {
  readonly violations: Violation[];
  readonly notes: string[];
}

const name = (source: string, destination: string): string => `stream ${source}→${destination}`;

export function checkStreams(input: StreamCheckInput): StreamCheckResult {
  const violations: Violation[] = [];
  const notes: string[] = [];
  for (const destination of input.subnets) {
    // Dated by when the destination first executed the height the violation names.
    const found = (v: Violation): void => {
      const atUs = v.height === undefined ? undefined : input.executedAtUs?.(destination.subnet, v.height);
      violations.push(atUs === undefined ? v : { ...v, atUs });
    };
    const chain = input.inducted.get(destination.subnet)?.chain(destination.height);
    for (const source of input.subnets) {
      if (source.subnet === destination.subnet) continue;
      const stream = name(source.subnet, destination.subnet);
      if (chain === undefined || chain.missing.length > 0) {
        notes.push(`${stream}: induction not checked (no honest replica's record of height${chain === undefined ? "s" : ` ${chain.missing[0]}`})`);
        continue;
      }
      const walk = walkInductions(stream, source.subnet, destination.subnet, chain.heights);
      if (walk.violation !== undefined) {
        found(walk.violation);
        continue;
      }
      const signals = destination.streams.get(source.subnet)?.signalsEnd ?? 0n;
      if (signals !== walk.count) {
        const index = signals < walk.count ? signals : walk.count;
        found(violation(destination.subnet, `${stream}: ${destination.subnet}'s signals end at ${signals} but it inducted ${walk.count} message(s) by height ${destination.height}: index ${index} ${signals > walk.count ? "was signalled without being inducted" : "was inducted without being signalled"}`, destination.height));
        continue;
      }
      const end = source.streams.get(destination.subnet)?.end ?? 0n;
      if (!input.quiescent || signals === end) {
        if (walk.count > 0n) notes.push(`${stream}: ${walk.count} message(s), each inducted once and in order${input.quiescent ? ", none left in flight" : ""}`);
        continue;
      }
      if (signals < end) {
        found(violation(destination.subnet, `${stream}: index ${signals} never inducted at quiescence: ${destination.subnet}'s signals end at ${signals}, ${source.subnet}'s stream ends at ${end}${end - signals > 1n ? ` (indices ${signals}..${end - 1n} in flight)` : ""}`, destination.height));
      } else {
        found(violation(destination.subnet, `${stream}: ${destination.subnet} signals ${signals} messages but ${source.subnet}'s stream ends at ${end}: index ${end} was never sent`, destination.height));
      }
    }
  }
  if (!input.quiescent) notes.push("streams not compared with their ends: the run ends less than one liveness bound after the last traffic or heal");
  return { violations, notes };
}

/** Walks the indices inducted from one stream in chain order: 0, 1, 2, … each once. */
function walkInductions(stream: string, source: string, destination: string, heights: ReadonlyMap<number, ReadonlyMap<string, readonly bigint[]>>): { count: bigint; violation?: Violation } {
  let next = 0n;
  const inductedAt = new Map<bigint, number>();
  for (const [h, bySource] of [...heights].sort(([a], [b]) => a - b)) {
    for (const index of bySource.get(source) ?? []) {
      if (index < next) {
        return { count: next, violation: violation(destination, `${stream}: index ${index} inducted twice by ${destination} (at height ${inductedAt.get(index) ?? "?"} and again at height ${h})`, h) };
      }
      if (index > next) {
        return { count: next, violation: violation(destination, `${stream}: index ${next} never inducted by ${destination}: a gap before index ${index}, inducted at height ${h}`, h) };
      }
      inductedAt.set(index, h);
      next++;
    }
  }
  return { count: next };
}

/** Named after the destination subnet ("subnet b: stream a→b: …"): the height is on its chain. */
function violation(destination: string, message: string, height: number): Violation {
  return { property: "invariant", message: `subnet ${destination}: ${message}`, replicas: [], height };
}
