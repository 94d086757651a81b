// The validated consensus pool's write-ahead log on the replica's disk. The IC keeps its validated
// pool on disk so that a restarted replica still knows what it signed: signing a second block at
// a height it already signed for would be equivocation. Here the replica appends every change set
// it applies to its validated pool as one record (`pool-log/<sequence>`), and syncs before it
// sends anything it signed (persist-before-send, replica.ts). A restart rebuilds the pool from
// genesis + the log. When a newer catch-up package is in the pool, the log is compacted: one
// `base` record with everything the (purged) pool still holds, then the older records go.
//
// Reading stops at the first record that is torn or corrupt (its checksum fails): that record and
// everything after it are removed, as a database discards a log's invalid tail. Since writes reach
// the disk in order, what remains is a prefix of what was written — and every share the replica
// sent is in it, because it was synced before it was sent.
import type { CatchUpPackage, ConsensusArtifact } from "../consensus/artifacts.ts";
import { ConsensusPool } from "../consensus/pool.ts";
import { decodeValue, encodeValueText, openRecord, sealRecord } from "../sim/disk-records.ts";
import type { Disk } from "../sim/env.ts";
import type { TimeUs } from "../types.ts";

const PREFIX = "pool-log/";
const keyOf = (sequence: number): string => `${PREFIX}${String(sequence).padStart(12, "0")}`;
const TEXT = new TextEncoder();

interface LogRecord {
  /** A compaction: the pool is rebuilt from genesis + this record + the records after it. */
  readonly base?: 1;
  readonly artifacts: readonly ConsensusArtifact[];
}

/**
 * Encoded text per artifact. Artifacts are immutable and the simulated network hands every
 * replica the same object, so each is encoded once per process, not once per replica.
 */
const textOf = new WeakMap<ConsensusArtifact, string>();
function artifactText(artifact: ConsensusArtifact): string {
  let text = textOf.get(artifact);
  if (text === undefined) {
    text = encodeValueText(artifact);
    textOf.set(artifact, text);
  }
  return text;
}

export interface OpenedPoolLog {
  readonly log: PoolLog;
  readonly pool: ConsensusPool;
  /** The log held records: this is a restart, not a first boot. */
  readonly restarted: boolean;
  /** Records passed over (an invalid tail), for the trace. */
  readonly notes: readonly string[];
}

export class PoolLog {
  private constructor(
    private readonly disk: Disk,
    private nextSequence: number,
  ) {}

  /** Rebuilds the validated pool from genesis and the log on `disk` (an empty log: a fresh pool). */
  static open(disk: Disk, genesis: CatchUpPackage, nowUs: TimeUs): OpenedPoolLog {
    const keys = disk.keys(PREFIX);
    const valid: LogRecord[] = [];
    const notes: string[] = [];
    let lastValid = -1;
    for (let i = 0; i < keys.length; i++) {
      const problem = readInto(disk, keys[i]!, valid);
      if (problem === undefined) {
        lastValid = i;
        continue;
      }
      notes.push(`${keys[i]}: ${problem}; ${keys.length - i} record(s) from there on discarded`);
      for (const key of keys.slice(i)) disk.remove(key);
      break;
    }
    let start = 0;
    for (let i = valid.length - 1; i >= 0; i--) {
      if (valid[i]!.base === 1) {
        start = i;
        break;
      }
    }
    const pool = new ConsensusPool(genesis);
    for (const record of valid.slice(start)) for (const artifact of record.artifacts) pool.addValidated(artifact, nowUs);
    const nextSequence = lastValid < 0 ? 0 : sequenceOf(keys[lastValid]!) + 1;
    return { log: new PoolLog(disk, nextSequence), pool, restarted: keys.length > 0, notes };
  }

  /** Appends the artifacts one change set added to the validated pool (pending until `sync`). */
  append(artifacts: readonly ConsensusArtifact[]): void {
    if (artifacts.length === 0) return;
    this.write(`{"artifacts":[${artifacts.map(artifactText).join(",")}]}`);
  }

  /**
   * Replaces the log by one base record holding what `pool` holds now. The base is written before
   * the older records are removed, so a crash at any point leaves a log that rebuilds the pool.
   */
  compact(pool: ConsensusPool): void {
    const older = this.disk.keys(PREFIX);
    this.write(`{"base":1,"artifacts":[${pool.validatedArtifacts().map(artifactText).join(",")}]}`);
    for (const key of older) this.disk.remove(key);
  }

  sync(): void {
    this.disk.sync();
  }

  private write(text: string): void {
    this.disk.write(keyOf(this.nextSequence), sealRecord(TEXT.encode(text)));
    this.nextSequence++;
  }
}

function sequenceOf(key: string): number {
  return Number(key.slice(PREFIX.length));
}

/** Reads one record into `out`, or says why it cannot be used. */
function readInto(disk: Disk, key: string, out: LogRecord[]): string | undefined {
  const bytes = disk.read(key);
  if (bytes === undefined) return "missing";
  const opened = openRecord(bytes);
  if (!opened.ok) return opened.reason;
  try {
    const record = decodeValue<LogRecord>(opened.payload);
    if (!Array.isArray(record.artifacts)) return "not a pool log record";
    out.push(record);
    return undefined;
  } catch (error) {
    return `does not decode (${error instanceof Error ? error.message : String(error)})`;
  }
}
