// The run's trace: every delivered message, timer, fault and state hash is one event, folded into
// a rolling SHA-256 digest (DESIGN.md rule 5). Same seed + same scenario + same code ⇒ same
// digest. What is hashed is a binary record per event (see TraceRecordBytes), written into one
// reused 64 KiB buffer and hashed a chunk at a time, so an event costs no string and no array. The
// text line of an event (`index|timeUs|replica|kind|detail[|MALICIOUS]`) is built only when a sink
// wants lines (a file in the CLI, a replay window); the digest never depends on whether one does.
// Node's native SHA-256: the trace is harness bookkeeping, not protocol.
import { createHash, type Hash } from "node:crypto";
import { HashInput } from "../hash-input.ts";
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

const CHUNK_BYTES = 65_536;

/** The record stream: bytes go to the running hash whenever the buffer is full, never one update per event. */
class TraceRecordBytes extends HashInput {
  constructor(private readonly hasher: Hash) {
    super(CHUNK_BYTES);
  }

  flush(): void {
    if (this.length === 0) return;
    this.hasher.update(this.bytes.subarray(0, this.length));
    this.length = 0;
  }

  protected override ensure(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    this.flush();
    if (n > this.bytes.length) this.grow(n);
  }
}

/**
 * Names (kinds and detail keys) are numbered in the order this trace first meets them: the first
 * use writes NEW_NAME and the name's text, later ones only its number. The numbering belongs to
 * one trace, so the bytes do not depend on what else ran in the process.
 */
const NEW_NAME = 0xffff_ffff;
const END_OF_DETAIL = 0xffff_fffe;
const enum ValueTag {
  Number = 0,
  Text = 1,
  True = 2,
  False = 3,
  /** Anything else a detail holds despite its type (shown as String(v), as in the line). */
  Other = 4,
}

export class Trace {
  private readonly hasher: Hash = createHash("sha256");
  private readonly out = new TraceRecordBytes(this.hasher);
  private count = 0;
  private readonly names = new Map<string, number>();
  private readonly nameList: string[] = [];
  /** Events per kind, by name number. */
  private readonly kindCounts: number[] = [];
  maliciousCount = 0;

  constructor(
    private readonly sink?: TraceSink,
    /** Every `every` events the digest of the prefix so far is handed to `onCheckpoint`. */
    private readonly checkpoints?: { readonly every: number; readonly onCheckpoint: (events: number, digest: string) => void },
  ) {}

  /**
   * One record: time (float64), replica (int32), kind (name), flags (bit 0: malicious), then each
   * detail field as name, value tag and value (float64, or UTF-8 with its length), then an end
   * marker. The event's index is its position in the stream.
   */
  record(timeUs: TimeUs, replica: number, event: TraceEvent): void {
    const malicious = event.malicious === true;
    const out = this.out;
    out.f64(timeUs).i32(replica);
    const kind = this.writeName(event.kind);
    this.kindCounts[kind] = (this.kindCounts[kind] ?? 0) + 1;
    out.u8(malicious ? 1 : 0);
    const detail = event.detail;
    if (detail !== undefined) {
      for (const key in detail) {
        this.writeName(key);
        writeValue(out, detail[key]);
      }
    }
    out.u32(END_OF_DETAIL);
    if (malicious) this.maliciousCount++;
    if (this.sink !== undefined) {
      const text = encodeDetail(detail);
      const line = `${this.count}|${timeUs}|${replica}|${event.kind}|${text}${malicious ? "|MALICIOUS" : ""}\n`;
      this.sink({ index: this.count, timeUs, replica, kind: event.kind, detail: text, malicious }, line);
    }
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
    this.out.flush();
    return this.hasher.copy().digest("hex");
  }

  countsByKind(): Record<string, number> {
    const counts: [string, number][] = [];
    this.kindCounts.forEach((count, id) => counts.push([this.nameList[id] as string, count]));
    return Object.fromEntries(counts.sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }

  /** Writes a name's number (after its text on first use) and returns the number. */
  private writeName(name: string): number {
    const known = this.names.get(name);
    if (known !== undefined) {
      this.out.u32(known);
      return known;
    }
    const id = this.nameList.length;
    this.names.set(name, id);
    this.nameList.push(name);
    this.out.u32(NEW_NAME).text(name);
    return id;
  }
}

function writeValue(out: HashInput, value: unknown): void {
  switch (typeof value) {
    case "number":
      out.u8(ValueTag.Number).f64(value);
      return;
    case "string":
      out.u8(ValueTag.Text).text(value);
      return;
    case "boolean":
      out.u8(value ? ValueTag.True : ValueTag.False);
      return;
    default:
      out.u8(ValueTag.Other).text(String(value));
  }
}

function encodeDetail(detail: TraceEvent["detail"]): string {
  if (detail === undefined) return "";
  let out = "";
  for (const key of Object.keys(detail)) out += `${out === "" ? "" : ","}${key}=${String(detail[key])}`;
  return out;
}
