// The ingress-history changes of one batch as a list of operations (issue 13 item 1): the replica
// that executes a batch writes its history through a journal, and a replica that adopts the
// execution replays the same operations on its own history through IngressHistory's public API,
// so each replica keeps its own history object and no replica's history can change another's.
import type { HashHex } from "../types.ts";
import type { IngressHistory } from "./ingress-history.ts";
import type { IngressStatus } from "./interfaces.ts";

export type HistoryOp =
  | { readonly op: "set"; readonly id: HashHex; readonly status: IngressStatus; readonly nowNs: bigint; readonly sender: string | undefined }
  | { readonly op: "prune"; readonly nowNs: bigint };

export class HistoryJournal {
  private readonly recorded: HistoryOp[] = [];

  constructor(private readonly history: IngressHistory) {}

  set(id: HashHex, status: IngressStatus, nowNs: bigint, sender?: string): void {
    this.history.set(id, status, nowNs, sender);
    this.recorded.push({ op: "set", id, status, nowNs, sender });
  }

  prune(nowNs: bigint): void {
    this.history.prune(nowNs);
    this.recorded.push({ op: "prune", nowNs });
  }

  get ops(): readonly HistoryOp[] {
    return this.recorded;
  }
}

/**
 * Applies a batch's recorded history operations to another replica's history, in order. With
 * `digestAfter` (the history digest the operations led to on the replica that recorded them, on
 * an equal history) the entries are not hashed again: the digest is taken as it is.
 */
export function replayHistoryOps(history: IngressHistory, ops: readonly HistoryOp[], digestAfter?: Uint8Array): void {
  if (digestAfter !== undefined) {
    history.applyWithKnownDigest(() => replayHistoryOps(history, ops), digestAfter);
    return;
  }
  for (const o of ops) {
    if (o.op === "prune") history.prune(o.nowNs);
    else history.set(o.id, o.status, o.nowNs, o.sender);
  }
}
