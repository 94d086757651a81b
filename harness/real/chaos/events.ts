// What a real-mode replica writes to `nodes/<subnet>-r<i>/events.jsonl` for the checkers (issue 12
// item 9), and how `run --real` reads it back into the simulator's RunRecorder. One JSON object per
// line, appended with one write(2) each, so a SIGKILL loses at most the line being written (a torn
// last line is skipped on reading). Times are the replica's clock: µs since the Unix epoch.
//
//   delivered     a batch executed: height, block hash, state hash, and the block's facts the
//                 checkers read (parent, maker, rank, block time, payload bytes, ingress ids)
//   state-synced  a checkpoint installed from peers at `height`
//   share         a share the replica signed (notarization with the block's rank and maker,
//                 finalization, beacon, cup, certification) or a block it proposed
//   finalized     a block it accepted a finalization or CUP for (with the parent for a CUP's block)
//   fork          its finalized chain conflicts with what it executed (it stops)
//   malicious     a Byzantine injector acted (harness/faults, run inside this process)
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { cupContentKey } from "../../consensus/pool.ts";
import type { RunRecorder, ShareKind } from "../../checks/observations.ts";
import type { ReplicaObserver } from "../../replica/replica.ts";
import type { TraceEvent } from "../../sim/env.ts";
import { height, timeUs, type HashHex, type Height, type ReplicaId, type TimeUs } from "../../types.ts";

export type ReplicaEvent =
  | {
      readonly kind: "delivered";
      readonly height: number;
      readonly block: string;
      readonly stateHash: string;
      readonly atUs: number;
      readonly parent: string;
      readonly maker: number;
      readonly rank: number;
      readonly timeUs: number;
      readonly payloadBytes: number;
      readonly ingress: readonly string[];
    }
  | { readonly kind: "state-synced"; readonly height: number; readonly atUs: number }
  | { readonly kind: "share"; readonly share: ShareKind; readonly height: number; readonly subject: string; readonly rank?: number; readonly maker?: number; readonly atUs: number }
  | { readonly kind: "finalized"; readonly height: number; readonly block: string; readonly parent?: string; readonly atUs: number }
  | { readonly kind: "fork"; readonly height: number; readonly executed: string; readonly finalized: string; readonly atUs: number }
  | { readonly kind: "malicious"; readonly what: string; readonly atUs: number };

/** Appends one event as a JSON line. */
export function eventWriter(path: string): (event: ReplicaEvent) => void {
  return (event) => appendFileSync(path, `${JSON.stringify(event)}\n`);
}

/** The observer a replica process gives its `Replica`: every observation the checkers use, as lines. */
export function eventsObserver(write: (event: ReplicaEvent) => void): ReplicaObserver {
  const share = (kind: ShareKind, h: number, subject: string, atUs: number, extra: { rank?: number; maker?: number } = {}): void =>
    write({ kind: "share", share: kind, height: h, subject, ...extra, atUs });
  return {
    onBatchDelivered: (_r, block, stateHash, atUs) =>
      write({
        kind: "delivered", height: block.height, block: block.hash, stateHash, atUs, parent: block.parent, maker: block.maker, rank: block.rank,
        timeUs: block.context.timeUs, payloadBytes: block.payloadBytes, ingress: block.ingress.map((m) => m.id),
      }),
    onStateSynced: (_r, h, atUs) => write({ kind: "state-synced", height: h, atUs }),
    onCertificationShare: (_r, s, atUs) => share("certification", s.height, s.hash, atUs),
    onForkDetected: (_r, h, executed, finalized, atUs) => write({ kind: "fork", height: h, executed, finalized, atUs }),
    onArtifact: (_r, artifact, origin, atUs, pool) => {
      switch (artifact.type) {
        case "proposal":
          if (origin === "own") share("proposal", artifact.block.height, artifact.block.hash, atUs);
          return;
        case "notarization-share": {
          if (origin !== "own") return;
          const block = pool.blocks.get(artifact.blockHash);
          share("notarization", artifact.height, artifact.blockHash, atUs, block === undefined ? {} : { rank: block.rank, maker: block.maker });
          return;
        }
        case "finalization-share":
          if (origin === "own") share("finalization", artifact.height, artifact.blockHash, atUs);
          return;
        case "beacon-share":
          if (origin === "own") share("beacon", artifact.height, artifact.parent, atUs);
          return;
        case "cup-share":
          if (origin === "own") share("cup", artifact.height, cupContentKey(artifact.content), atUs);
          return;
        case "finalization":
          write({ kind: "finalized", height: artifact.height, block: artifact.blockHash, atUs });
          return;
        case "cup":
          write({ kind: "finalized", height: artifact.content.height, block: artifact.content.block.hash, parent: artifact.content.block.parent, atUs });
          return;
        default:
          return;
      }
    },
  };
}

/** A Byzantine injector's act, as an event line (the trace event's kind and detail, shortened). */
export function maliciousEvent(event: TraceEvent, atUs: number): ReplicaEvent {
  return { kind: "malicious", what: `${event.kind}${event.detail === undefined ? "" : ` ${JSON.stringify(event.detail)}`}`.slice(0, 300), atUs };
}

/** Every whole event line of a replica's file (a torn last line after a SIGKILL is left out). */
export function readEvents(path: string): ReplicaEvent[] {
  if (!existsSync(path)) return [];
  const events: ReplicaEvent[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      events.push(JSON.parse(line) as ReplicaEvent);
    } catch {
      // Only the line being written at a SIGKILL can be torn; the next incarnation appends after it.
    }
  }
  return events;
}

/** What the judge counts besides the recorder's observations. */
export interface ReplayedEvents {
  readonly malicious: number;
  readonly lines: number;
}

/**
 * Feeds one replica's events into a RunRecorder, with times shifted to the run's origin (the
 * scenario's second 0), as the simulator's recorder sees virtual time.
 */
export function replayEvents(recorder: RunRecorder, replica: ReplicaId, events: readonly ReplicaEvent[], originUs: number): ReplayedEvents {
  // What happened before second 0 (genesis, the canister's deployment) counts as at second 0.
  const at = (us: number): TimeUs => timeUs(Math.max(0, Math.round(us - originUs)));
  let malicious = 0;
  for (const e of events) {
    switch (e.kind) {
      case "delivered":
        recorder.onBatchDelivered(replica, {
          hash: e.block as HashHex,
          parent: e.parent as HashHex,
          height: height(e.height),
          rank: e.rank,
          maker: e.maker as ReplicaId,
          context: { timeUs: at(e.timeUs) },
          payloadBytes: e.payloadBytes,
          ingress: e.ingress.map((id) => ({ id: id as HashHex })),
        }, e.stateHash as HashHex, at(e.atUs));
        break;
      case "state-synced":
        recorder.onStateSynced(replica, height(e.height), at(e.atUs));
        break;
      case "share":
        recorder.recordShare(replica, { kind: e.share, height: e.height as Height, subject: e.subject, ...(e.rank === undefined ? {} : { rank: e.rank }), ...(e.maker === undefined ? {} : { maker: e.maker as ReplicaId }), atUs: at(e.atUs) });
        break;
      case "finalized":
        recorder.recordFinalized(replica, height(e.height), e.block as HashHex, e.parent as HashHex | undefined);
        break;
      case "fork":
        recorder.onForkDetected(replica, height(e.height), e.executed as HashHex, e.finalized as HashHex, at(e.atUs));
        break;
      case "malicious":
        malicious++;
        break;
    }
  }
  return { malicious, lines: events.length };
}
