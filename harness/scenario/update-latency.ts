// Update latency as a user of an execution subnet sees it (issue 14 item 3): from submission to the
// moment an honest replica holds a certification of a height at or above the one where the
// message got its answer — when `read_state` can first return the reply with a valid certificate.
// Finalization alone (the ingress latency of the report) does not show execution or checkpoint
// pauses; this does. Also the worst pause of the subnet's certified height, and when each
// checkpoint height was certified, for the latency-over-time chart.
import type { Certification } from "../replica/certification.ts";
import type { HashHex, Height, ReplicaId, TimeUs } from "../types.ts";

export interface UpdateLatencyReport {
  /** Messages answered and certified by the end of the run. */
  readonly certified: number;
  readonly latencyMsP50: number | null;
  readonly latencyMsP99: number | null;
  readonly latencyMsMax: number | null;
  /** The longest time the subnet's certified height stood still (first honest certification of each height). */
  readonly worstPauseMs: number | null;
  /** The height whose certification ended the worst pause. */
  readonly worstPauseEndHeight: number | null;
  /** Checkpoint heights certified in the run, with when (simulated ms). */
  readonly checkpoints: readonly { readonly height: number; readonly certifiedAtMs: number }[];
  /** [submitted at (simulated ms), latency (ms)], at most MAX_SAMPLES spread over the run. */
  readonly samples: readonly (readonly [number, number])[];
}

const MAX_SAMPLES = 2_000;

export class UpdateLatencyRecorder {
  /** Height → first time an honest replica held its certification. */
  private readonly firstCertifiedUs = new Map<number, number>();

  constructor(private readonly byzantine: ReadonlySet<ReplicaId>) {}

  onCertified(replica: ReplicaId, cert: Certification, atUs: TimeUs): void {
    if (this.byzantine.has(replica)) return;
    const known = this.firstCertifiedUs.get(cert.height);
    if (known === undefined || atUs < known) this.firstCertifiedUs.set(cert.height, atUs);
  }

  /**
   * `submitted`: each valid message's first submission time; `answeredAt`: the height where it got
   * its final status (undefined: not answered). `checkpointInterval`: heights between checkpoints.
   */
  report(submitted: ReadonlyMap<HashHex, number>, answeredAt: (id: HashHex) => Height | undefined, checkpointInterval: number): UpdateLatencyReport {
    const heights = [...this.firstCertifiedUs.keys()].sort((a, b) => a - b);
    // A certification of H covers every height ≤ H: the first moment h is covered is the earliest
    // certification at or above it (a suffix minimum).
    const coveredAtUs = new Map<number, number>();
    let earliest = Infinity;
    for (let i = heights.length - 1; i >= 0; i--) {
      const h = heights[i]!;
      earliest = Math.min(earliest, this.firstCertifiedUs.get(h)!);
      coveredAtUs.set(h, earliest);
    }
    const samples: [number, number][] = [];
    for (const [id, submitUs] of submitted) {
      const h = answeredAt(id);
      const covered = h === undefined ? undefined : this.coveredAt(h, heights, coveredAtUs);
      if (covered !== undefined) samples.push([submitUs / 1000, (covered - submitUs) / 1000]);
    }
    const pause = this.worstPause(heights);
    const checkpoints = heights.filter((h) => h > 0 && h % checkpointInterval === 0).map((h) => ({ height: h, certifiedAtMs: Math.round(this.firstCertifiedUs.get(h)! / 1000) }));
    return updateLatencyReport(samples, pause, checkpoints);
  }

  /** The first time a certification at or above h existed (binary search over the certified heights). */
  private coveredAt(h: number, heights: readonly number[], coveredAtUs: ReadonlyMap<number, number>): number | undefined {
    let lo = 0;
    let hi = heights.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (heights[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const at = heights[lo];
    return at === undefined ? undefined : coveredAtUs.get(at);
  }

  /** The longest gap between successive advances of the subnet's certified height. */
  private worstPause(heights: readonly number[]): { readonly ms: number; readonly endHeight: number } | undefined {
    const advances = heights.map((h) => [this.firstCertifiedUs.get(h)!, h] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let top = -1;
    let lastUs: number | undefined;
    let worst: { us: number; endHeight: number } | undefined;
    for (const [atUs, h] of advances) {
      if (h <= top) continue;
      if (lastUs !== undefined && (worst === undefined || atUs - lastUs > worst.us)) worst = { us: atUs - lastUs, endHeight: h };
      top = h;
      lastUs = atUs;
    }
    return worst === undefined ? undefined : { ms: Math.round(worst.us / 1000), endHeight: worst.endHeight };
  }
}

/**
 * The report from [submitted at ms, latency ms] samples. Real runs have only their client's view:
 * submission → a verified certified reply in hand, no pause or checkpoint figures (`pause` undefined).
 */
export function updateLatencyReport(
  samplesIn: readonly (readonly [number, number])[],
  pause: { readonly ms: number; readonly endHeight: number } | undefined,
  checkpoints: UpdateLatencyReport["checkpoints"],
): UpdateLatencyReport {
  const samples = [...samplesIn].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const latencies = samples.map(([, l]) => l).sort((a, b) => a - b);
  const pct = (p: number): number | null => (latencies.length === 0 ? null : Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]!));
  return {
    certified: samples.length,
    latencyMsP50: pct(50),
    latencyMsP99: pct(99),
    latencyMsMax: latencies.length === 0 ? null : Math.round(latencies[latencies.length - 1]!),
    worstPauseMs: pause?.ms ?? null,
    worstPauseEndHeight: pause?.endHeight ?? null,
    checkpoints,
    samples: thinEvenly(samples, MAX_SAMPLES).map(([t, l]) => [Math.round(t), Math.round(l)] as const),
  };
}

function thinEvenly<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  return Array.from({ length: max }, (_, i) => items[Math.floor((i * items.length) / max)]!);
}
