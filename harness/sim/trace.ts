// The run's trace: every delivered message, timer, fault and state hash becomes one line, folded
// into a rolling SHA-256 digest (DESIGN.md rule 5). Same seed + same scenario + same code ⇒ same
// digest. Lines can also go to a sink (a file in the CLI) for later inspection; the digest never
// depends on whether they do. The digest uses Node's native SHA-256: the trace is harness
// bookkeeping, not protocol, and it is hashed at a rate where the native code matters.
import { createHash, type Hash } from "node:crypto";
import type { TraceEvent } from "./env.ts";
import type { TimeUs } from "../types.ts";

export interface TraceRecord {
  readonly index: number;
  readonly timeUs: TimeUs;
  /** Replica index, or -1 for the harness (network, fault schedule, workload). */
  readonly replica: number;
  readonly kind: string;
  readonly detail: string;
  readonly malicious: boolean;
}

export type TraceSink = (record: TraceRecord, line: string) => void;

export class Trace {
  private readonly hasher: Hash = createHash("sha256");
  /** Lines not yet hashed: hashing 64 KiB chunks is much cheaper than one update per line. */
  private pending = "";
  private count = 0;
  private readonly kindCounts = new Map<string, number>();
  maliciousCount = 0;

  constructor(
    private readonly sink?: TraceSink,
    /** Every `every` events the digest of the prefix so far is handed to `onCheckpoint`. */
    private readonly checkpoints?: { readonly every: number; readonly onCheckpoint: (events: number, digest: string) => void },
  ) {}

  record(timeUs: TimeUs, replica: number, event: TraceEvent): void {
    const detail = encodeDetail(event.detail);
    const malicious = event.malicious === true;
    const line = `${this.count}|${timeUs}|${replica}|${event.kind}|${detail}${malicious ? "|MALICIOUS" : ""}\n`;
    this.pending += line;
    if (this.pending.length >= 65_536) this.flushPending();
    if (malicious) this.maliciousCount++;
    this.kindCounts.set(event.kind, (this.kindCounts.get(event.kind) ?? 0) + 1);
    this.sink?.({ index: this.count, timeUs, replica, kind: event.kind, detail, malicious }, line);
    this.count++;
    if (this.checkpoints !== undefined && this.count % this.checkpoints.every === 0) {
      this.checkpoints.onCheckpoint(this.count, this.digest());
    }
  }

  get length(): number {
    return this.count;
  }

  /** Digest of everything recorded so far (the running hash is not disturbed). */
  digest(): string {
    this.flushPending();
    return this.hasher.copy().digest("hex");
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    this.hasher.update(this.pending, "utf8");
    this.pending = "";
  }

  countsByKind(): Record<string, number> {
    return Object.fromEntries([...this.kindCounts].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }
}

function encodeDetail(detail: TraceEvent["detail"]): string {
  if (detail === undefined) return "";
  let out = "";
  for (const key of Object.keys(detail)) out += `${out === "" ? "" : ","}${key}=${String(detail[key])}`;
  return out;
}
