// Contract between consensus and the deterministic state machine (dfinity/ic's MessageRouting):
// consensus delivers finalized blocks as batches in height order; message routing executes them
// and reports the next height it expects and the state hash of every height it executed.
import type { IngressMessage } from "../consensus/ingress.ts";
import type { HashHex, Height } from "../types.ts";

export interface Batch {
  readonly height: Height;
  /** Block time in nanoseconds (bigint: replicated state never holds floats or >2^53 numbers). */
  readonly timeNs: bigint;
  /** Randomness for the round, derived from the random beacon at this height. */
  readonly randomness: HashHex;
  readonly ingress: readonly IngressMessage[];
  /** Summary heights: the state machine writes a checkpoint and reports its full state hash. */
  readonly requiresFullStateHash: boolean;
}

/** A checkpoint of the replicated state, transferable to another replica by state sync. */
export interface StateSnapshot {
  readonly height: Height;
  readonly stateHash: HashHex;
  readonly sizeBytes: number;
  readonly data: unknown;
}

export type IngressStatus =
  /** Inducted into a canister's queue, not answered yet. */
  | { readonly status: "processing"; readonly height: Height }
  | { readonly status: "completed"; readonly height: Height; readonly reply: string }
  | { readonly status: "failed"; readonly height: Height; readonly error: string };

export interface MessageRouting {
  expectedBatchHeight(): Height;
  /** Precondition: batch.height === expectedBatchHeight(). */
  deliverBatch(batch: Batch): void;
  stateHashAt(h: Height): HashHex | undefined;
  /** Latest checkpoint at or below h, if kept. */
  checkpointAt(h: Height): StateSnapshot | undefined;
  /** Replaces the whole state (state sync from a CUP). */
  installSnapshot(snapshot: StateSnapshot): void;
  /** Verifies a snapshot's content against its claimed hash, without installing it. */
  verifySnapshot(snapshot: StateSnapshot): boolean;
  /** Ingress already executed (or failed) and still within its TTL: duplicates are excluded. */
  ingressStatus(id: HashHex): IngressStatus | undefined;
}
