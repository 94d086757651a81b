// Replay: re-execute a repro bundle and compare trace digests. On a mismatch, name the first
// differing event without holding two traces in memory: the bundle has the digest of every
// `checkpointEvery`-event prefix, so the first checkpoint that differs bounds a window of at most
// that many events; the replay keeps only the current window's lines, stops there, and compares
// them with the same window of the original trace.log.gz (streamed) when the run directory has one.
import { createReadStream, existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import type { SimSubnet } from "../replica/subnet.ts";
import { runScenario, type RunOptions, type RunReport, type StopPoint } from "../scenario/runner.ts";
import { checkSnapshotFiles, ReproError, scenarioOf, type ReproBundle } from "./repro.ts";
import { prepareScenario } from "../scenario/prepare.ts";

export interface TraceLine {
  readonly index: number;
  readonly timeUs: number;
  readonly replica: number;
  readonly kind: string;
  readonly detail: string;
  readonly malicious: boolean;
  readonly raw: string;
}

export interface FirstDifference {
  readonly index: number;
  /** Event window [from, to) whose prefix digests first disagree. */
  readonly window: readonly [number, number];
  readonly replayed: TraceLine | undefined;
  /** The original event, or undefined if the original trace ended there; null if no trace file. */
  readonly expected: TraceLine | undefined | null;
}

export interface ReplayResult {
  readonly matches: boolean;
  readonly expectedDigest: string;
  readonly digest: string;
  readonly events: number;
  readonly expectedEvents: number;
  readonly report: RunReport;
  readonly firstDifference?: FirstDifference;
}

export interface ReplayOptions {
  readonly until?: StopPoint;
  /** Stops the replay where it first returns true; the digest is then checked up to there, as with `until`. */
  readonly stopWhen?: () => boolean;
  /** RunOptions.onDelivered: each replica's state machine right after it executed a batch. */
  readonly onDelivered?: RunOptions["onDelivered"];
  readonly onFinish?: (subnet: SimSubnet) => void;
  readonly onProgress?: (simulatedS: number, totalS: number, events: number) => void;
}

export function parseTraceLine(raw: string): TraceLine {
  const parts = raw.replace(/\n$/, "").split("|");
  const malicious = parts[parts.length - 1] === "MALICIOUS";
  return {
    index: Number(parts[0]),
    timeUs: Number(parts[1]),
    replica: Number(parts[2]),
    kind: parts[3] ?? "",
    detail: parts.slice(4, malicious ? -1 : undefined).join("|"),
    malicious,
    raw: raw.replace(/\n$/, ""),
  };
}

export async function replay(bundle: ReproBundle, dir: string, options: ReplayOptions = {}): Promise<ReplayResult> {
  const every = bundle.options.checkpointEvery;
  const expected = bundle.expected.checkpoints;
  let window: string[] = [];
  let mismatchAt: number | undefined;
  let stoppedByCaller = false;
  const stopWhen = options.stopWhen;
  checkSnapshotFiles(bundle);
  await prepareScenario(scenarioOf(bundle));
  const report = runScenario(scenarioOf(bundle), {
    seed: bundle.seed,
    checkpointEvery: every,
    traceSink: (_record, line) => {
      window.push(line);
    },
    onCheckpoint: (events, digest) => {
      if (expected[events / every - 1] !== digest) {
        mismatchAt = events - every;
        return false;
      }
      window = [];
      return true;
    },
    ...(options.until === undefined ? {} : { until: options.until }),
    ...(stopWhen === undefined ? {} : { stopWhen: () => (stoppedByCaller ||= stopWhen()) }),
    ...(options.onDelivered === undefined ? {} : { onDelivered: options.onDelivered }),
    ...(options.onFinish === undefined ? {} : { onFinish: options.onFinish }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  const partial = options.until !== undefined || stoppedByCaller;
  const matches = mismatchAt === undefined && (partial || (report.traceDigest === bundle.expected.traceDigest && report.traceEvents === bundle.expected.traceEvents));
  const base = { matches, expectedDigest: bundle.expected.traceDigest, digest: report.traceDigest, events: report.traceEvents, expectedEvents: bundle.expected.traceEvents, report };
  if (matches) return base;
  // Without a checkpoint mismatch the difference is in the tail after the last checkpoint.
  const windowStart = mismatchAt ?? report.traceEvents - window.length;
  const replayed = window.map(parseTraceLine);
  const original = await readWindow(dir, windowStart, windowStart + Math.max(every, replayed.length) + 1);
  return { ...base, firstDifference: locate(windowStart, every, replayed, original) };
}

function locate(start: number, every: number, replayed: readonly TraceLine[], original: readonly TraceLine[] | null): FirstDifference {
  const windowRange = [start, start + every] as const;
  if (original === null) return { index: start, window: windowRange, replayed: replayed[0], expected: null };
  const length = Math.max(replayed.length, original.length);
  for (let i = 0; i < length; i++) {
    const a = replayed[i];
    const b = original[i];
    if (a?.raw !== b?.raw) return { index: start + i, window: windowRange, replayed: a, expected: b };
  }
  // The window's lines agree but the digests did not: the difference lies in what follows.
  return { index: start + length, window: windowRange, replayed: undefined, expected: undefined };
}

/** Lines [from, to) of the run's trace.log.gz (or trace.log), or null when the run kept none. */
async function readWindow(dir: string, from: number, to: number): Promise<TraceLine[] | null> {
  const gz = join(dir, "trace.log.gz");
  const plain = join(dir, "trace.log");
  const source = existsSync(gz) ? createReadStream(gz).pipe(createGunzip()) : existsSync(plain) ? createReadStream(plain) : undefined;
  if (source === undefined) return null;
  const lines: TraceLine[] = [];
  const reader = createInterface({ input: source, crlfDelay: Infinity });
  let index = 0;
  try {
    for await (const raw of reader) {
      if (index >= from) lines.push(parseTraceLine(raw));
      index++;
      if (index >= to) break;
    }
  } catch (error) {
    throw traceReadError(existsSync(gz) ? gz : plain, error);
  } finally {
    reader.close();
    source.destroy();
  }
  return lines;
}

/** A stored trace that cannot be read (truncated, not gzip): the user's input, not a harness bug. */
export function traceReadError(path: string, error: unknown): ReproError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new ReproError(`${path}: cannot read the trace (${(error as Error).message}${reason === (error as Error).message ? "" : `, ${reason}`}); it is truncated or not a trace written by subnetlab`);
}

export function describeDifference(d: FirstDifference): string {
  const show = (line: TraceLine | undefined | null): string =>
    line === null ? "(no trace.log.gz beside the repro: run with a trace to see it)" : line === undefined ? "(no event: the trace ends here)" : line.raw;
  const at = d.replayed ?? (d.expected === null ? undefined : d.expected);
  const where = at === undefined ? "" : ` at ${(at.timeUs / 1e6).toFixed(6)} s, replica ${at.replica < 0 ? "harness" : `r${at.replica}`}, kind ${at.kind}`;
  return [
    `first differing event: #${d.index}${where} (prefix digests first differ in events ${d.window[0]}..${d.window[1] - 1})`,
    `  expected: ${show(d.expected)}`,
    `  replayed: ${show(d.replayed)}`,
  ].join("\n");
}
