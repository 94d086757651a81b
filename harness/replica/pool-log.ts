// The validated consensus pool's write-ahead log on the replica's disk. The IC keeps its validated
// pool on disk so that a restarted replica still knows what it signed: signing a second block at
// a height it already signed for would be equivocation. Here the replica appends every change set
// it applies to its validated pool as one log entry (`pool-log/<sequence>`), and syncs before it
// sends anything it signed (persist-before-send, pool-persistence.ts). A restart rebuilds the pool from
// genesis + the log. The log is trimmed as the pool is purged: an entry whose artifacts all lie
// below the purge bound holds nothing the pool still keeps, and is removed.
//
// An entry is a header record (how many artifacts, their highest height) followed by one record
// per artifact (harness/sim/disk-records.ts: magic, length, CRC-32) whose payload is the
// artifact's wire encoding (harness/p2p/codec.ts): one encoding per artifact, on the wire and on
// the disk. Reading stops at the first
// entry that is torn or corrupt: that entry and every one after it are removed, as a database
// discards a log's invalid tail. Since writes reach the disk in order, what remains is a prefix of
// what was written — and every share the replica sent is in it, because it was synced before it
// was sent.
import { artifactHeight, type CatchUpPackage, type ConsensusArtifact } from "../consensus/artifacts.ts";
import { ConsensusPool } from "../consensus/pool.ts";
import { decodeArtifact, encodeArtifact } from "../p2p/codec.ts";
import { Blob, decodeValue, openRecords } from "../sim/disk-records.ts";
import type { Disk } from "../sim/env.ts";
import type { Height, TimeUs } from "../types.ts";

const PREFIX = "pool-log/";
const keyOf = (sequence: number): string => `${PREFIX}${String(sequence).padStart(12, "0")}`;

export interface EntryHeader {
  readonly artifacts: number;
  readonly maxHeight: number;
}

/**
 * One artifact as a sealed record, in an immutable blob. Artifacts are immutable, so each object
 * is encoded and checksummed once — and its bytes kept once, however many replicas' disks hold it
 * (replicas share artifact objects when the simulated network does not round-trip bytes).
 */
const recordOf = new WeakMap<ConsensusArtifact, Blob>();
function artifactRecord(artifact: ConsensusArtifact): Blob {
  let record = recordOf.get(artifact);
  if (record === undefined) {
    record = Blob.record(encodeArtifact(artifact));
    recordOf.set(artifact, record);
  }
  return record;
}

const TEXT = new TextEncoder();

/**
 * An entry's header as a sealed record: the bytes of `encodeValue(header)` (test/replica/pool-log.test.ts
 * compares them), written out directly — every change set appends one, and the generic encoder's
 * replacer pass made the header ~3 % of a fuzz run's CPU (issue 13 item 4). Both fields are
 * integers, so JSON has one spelling of them.
 */
export function entryHeaderRecord(header: EntryHeader): Blob {
  return Blob.record(TEXT.encode(`{"artifacts":${header.artifacts},"maxHeight":${header.maxHeight}}`));
}

export interface OpenedPoolLog {
  readonly log: PoolLog;
  readonly pool: ConsensusPool;
  /** The log held entries: this is a restart, not a first boot. */
  readonly restarted: boolean;
  /** Entries passed over (an invalid tail), for the trace. */
  readonly notes: readonly string[];
}

export class PoolLog {
  private constructor(
    private readonly disk: Disk,
    private nextSequence: number,
    /** Key and highest artifact height of every entry on the disk, in log order. */
    private entries: { readonly key: string; readonly maxHeight: number }[],
  ) {}

  /** Rebuilds the validated pool from genesis and the log on `disk` (an empty log: a fresh pool). */
  static open(disk: Disk, genesis: CatchUpPackage, nowUs: TimeUs): OpenedPoolLog {
    const keys = disk.keys(PREFIX);
    const pool = new ConsensusPool(genesis);
    const entries: { key: string; maxHeight: number }[] = [];
    const notes: string[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const read = readEntry(disk, key);
      if (!read.ok) {
        notes.push(`${key}: ${read.reason}; ${keys.length - i} log entr${keys.length - i === 1 ? "y" : "ies"} from there on discarded`);
        for (const rest of keys.slice(i)) disk.remove(rest);
        break;
      }
      for (const artifact of read.artifacts) pool.addValidated(artifact, nowUs);
      entries.push({ key, maxHeight: read.maxHeight });
    }
    const last = entries[entries.length - 1];
    const nextSequence = last === undefined ? 0 : Number(last.key.slice(PREFIX.length)) + 1;
    return { log: new PoolLog(disk, nextSequence, entries), pool, restarted: keys.length > 0, notes };
  }

  /** Appends the artifacts one change set added to the validated pool (pending until `sync`). */
  append(artifacts: readonly ConsensusArtifact[]): void {
    if (artifacts.length === 0) return;
    let maxHeight = 0;
    for (const a of artifacts) maxHeight = Math.max(maxHeight, artifactHeight(a));
    const header = entryHeaderRecord({ artifacts: artifacts.length, maxHeight });
    const key = keyOf(this.nextSequence++);
    this.disk.writeBlobs(key, [header, ...artifacts.map(artifactRecord)]);
    this.entries.push({ key, maxHeight });
  }

  /**
   * Removes the entries whose artifacts all lie below `bound` (the pool's purge bound: it keeps
   * nothing there, and the newest CUP is always above it).
   */
  trimBelow(bound: Height): void {
    const kept: { key: string; maxHeight: number }[] = [];
    for (const entry of this.entries) {
      if (entry.maxHeight < bound) this.disk.remove(entry.key);
      else kept.push(entry);
    }
    this.entries = kept;
  }

  sync(): void {
    this.disk.sync();
  }
}

/** One log entry's artifacts, or why it cannot be used. */
function readEntry(disk: Disk, key: string): { readonly ok: true; readonly artifacts: ConsensusArtifact[]; readonly maxHeight: number } | { readonly ok: false; readonly reason: string } {
  const bytes = disk.read(key);
  if (bytes === undefined) return { ok: false, reason: "missing" };
  const opened = openRecords(bytes);
  if (!opened.ok) return opened;
  try {
    const [head, ...rest] = opened.payloads;
    const header = head === undefined ? undefined : decodeValue<EntryHeader>(head);
    if (header === undefined || header.artifacts !== rest.length) return { ok: false, reason: `torn entry: ${rest.length} of ${header?.artifacts ?? "?"} artifacts` };
    const artifacts: ConsensusArtifact[] = [];
    for (const payload of rest) {
      const decoded = decodeArtifact(payload);
      if (!decoded.ok) return { ok: false, reason: `does not decode (${decoded.reason})` };
      artifacts.push(decoded.value);
    }
    return { ok: true, artifacts, maxHeight: header.maxHeight };
  } catch (error) {
    return { ok: false, reason: `does not decode (${error instanceof Error ? error.message : String(error)})` };
  }
}
