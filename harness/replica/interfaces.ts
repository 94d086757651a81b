// Contract between consensus and the deterministic state machine (dfinity/ic's MessageRouting):
// consensus delivers finalized blocks as batches in height order; message routing executes them
// and reports the next height it expects and the state hash of every height it executed.
import type { IngressInvalidReason, IngressMessage } from "../consensus/ingress.ts";
import type { HashTree } from "../crypto/hash-tree.ts";
import type { CanisterId, PrincipalText, Response } from "../execution/interfaces.ts";
import type { Bundle } from "../p2p/messages.ts";
import type { Certification } from "./certification.ts";
import type { BatchWork } from "./execution-time.ts";
import type { SubnetId } from "../routing/registry.ts";
import type { RoutingState, StreamSlice } from "../routing/streams.ts";
import type { CertifiedSlice, XNetCursor } from "../routing/xnet.ts";
import type { HashHex, Height, ReplicaId } from "../types.ts";

export interface Batch {
  readonly height: Height;
  /** Block time in nanoseconds (bigint: replicated state never holds floats or >2^53 numbers). */
  readonly timeNs: bigint;
  /** Randomness for the round, derived from the random beacon at this height. */
  readonly randomness: HashHex;
  readonly ingress: readonly IngressMessage[];
  /** Certified stream slices from other subnets, verified by consensus (at most one per source). */
  readonly xnet?: readonly StreamSlice[];
  /** Summary heights: the state machine writes a checkpoint and reports its full state hash. */
  readonly requiresFullStateHash: boolean;
}

/** A checkpoint of the replicated state, transferable to another replica by state sync. */
export interface StateSnapshot {
  readonly height: Height;
  readonly stateHash: HashHex;
  /** What the simulated network charges for sending it (the state machine's model size). */
  readonly sizeBytes: number;
  /** The checkpoint as bytes, produced and read back (and verified) by the state machine that made it. */
  readonly data: Uint8Array;
}

/**
 * The replicated ingress history's statuses (ic-protocol.md §2, interface spec "Request status"):
 * received → processing → completed (replied) | failed (rejected) → done.
 */
export type IngressStatus =
  /** Inducted into a canister's (or the subnet's) queue, not executed yet. */
  | { readonly status: "received"; readonly height: Height }
  /** Executed; the call context waits for calls the canister made (no answer yet). */
  | { readonly status: "processing"; readonly height: Height }
  /** Replied: the reply bytes in hex. */
  | { readonly status: "completed"; readonly height: Height; readonly reply: string }
  /** Rejected with the spec's reject code (1–5) and message. */
  /** Rejected: the reject code, the message and the IC's error code (`IC0503`…) the user sees. */
  | { readonly status: "failed"; readonly height: Height; readonly code: number; readonly message: string; readonly errorCode: string }
  /** Answered long enough ago that the answer was dropped (history over capacity). */
  | { readonly status: "done"; readonly height: Height };

/** Why the ingress filter refused a submission (the IC's HTTP handler answers these before consensus). */
export type IngressFilterRefusal =
  | "canister-not-found"
  | "canister-not-running"
  | "inspect-message-refused"
  /** A management canister method users may not call (only canisters may), or one served only as a query. */
  | "management-method-refused"
  /** A management canister method for controllers, from someone else. */
  | "not-controller"
  /** A management canister call whose argument names no canister. */
  | "invalid-management-payload";

/**
 * A refusal of the ingress filter, as the IC's HTTP handler answers it: a non-replicated rejection
 * with the spec's reject code, the IC's error code and a message naming what was refused.
 */
export interface IngressFilterRejection {
  readonly reason: IngressFilterRefusal;
  readonly rejectCode: number;
  /** `IC0301`-style code (ic_error_types ErrorCode). */
  readonly errorCode: string;
  readonly message: string;
}

/** What a replica's read_state checks need to know about a canister (the IC's verify_paths). */
export interface CanisterInfo {
  readonly controllers: readonly PrincipalText[];
  /** Names of the module's icp:private custom sections: their metadata paths are for controllers only. */
  readonly privateMetadata: readonly string[];
}

/** A status that will not change any more except to `done`. */
export const isTerminal = (s: IngressStatus): boolean => s.status === "completed" || s.status === "failed" || s.status === "done";

export interface MessageRouting {
  expectedBatchHeight(): Height;
  /** Precondition: batch.height === expectedBatchHeight(). */
  deliverBatch(batch: Batch): void;
  /** Execution subnets: what the last delivered batch made the replica do (replica/execution-time.ts). */
  lastBatchWork?(): BatchWork | undefined;
  stateHashAt(h: Height): HashHex | undefined;
  /** Latest checkpoint at or below h, if kept. */
  checkpointAt(h: Height): StateSnapshot | undefined;
  /** Replaces the whole state (state sync from a CUP). */
  installSnapshot(snapshot: StateSnapshot): void;
  /** Why checkpoints on the disk were passed over when this state machine was restored (torn, corrupt, not matching their hash). */
  readonly recovery?: readonly string[];
  /** Verifies a snapshot's content against its claimed hash, without installing it. */
  verifySnapshot(snapshot: StateSnapshot): boolean;
  /** Ingress already executed (or failed) and still within its TTL: duplicates are excluded. */
  ingressStatus(id: HashHex): IngressStatus | undefined;
  /**
   * Root hash of the certified state tree at h, if this state machine certifies its state
   * (the execution one does; the key-value placeholder does not).
   */
  certifiedHashAt?(h: Height): HashHex | undefined;
  /**
   * The ingress filter a replica runs on a user's submission before it enters the pool (not on
   * gossiped messages): the canister exists, is running, and its canister_inspect_message accepts
   * the call. Returns the refusal, or undefined to admit.
   */
  filterIngress?(message: IngressMessage): IngressFilterRejection | undefined;
  /** Execution subnets: who sent an ingress message (ReplicaReads.ingressSender). */
  ingressSender?(id: HashHex): PrincipalText | undefined;
  /** Execution subnets: a canister's controllers and private metadata at `queryHeight` (ReplicaReads.canisterInfo). */
  canisterInfo?(canister: CanisterId): CanisterInfo | undefined;
  /** The subnet certified a height (2f+1 shares); the state machine may serve reads from it. */
  onCertified?(certification: Certification): void;
  /** Multi-subnet: where induction of `source`'s stream stands in the executed state. */
  xnetCursor?(source: SubnetId): XNetCursor;
  /**
   * Multi-subnet (XNet endpoint): the certified tree at height h pruned to our stream to
   * `destination` from `fromIndex` on, with the byte size of the messages in it.
   */
  streamWitnessAt?(h: Height, destination: SubnetId, fromIndex: bigint): { readonly witness: HashTree; readonly messageBytes: number } | undefined;
  /** Execution subnets: the height queries run at (the latest certified one executed, else the latest executed). */
  readonly queryHeight?: Height;
  /** Execution subnets: a non-replicated query at `queryHeight` (ReplicaReads.query). */
  query?(canister: CanisterId, method: string, arg: Uint8Array, caller?: PrincipalText): Response;
  /** Execution subnets: a read_state certificate (ReplicaReads.readState). */
  readState?(paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined;
  /** Multi-subnet: the executed routing state's streams, for the stream check at the end of a run. */
  readonly routingState?: RoutingState;
}

// ---- The replica API --------------------------------------------------------------------------
// One contract for whatever runs a replica — the simulator, a real-mode process, the HTTP adapter —
// and for whatever reads it (scenario runners, checkers, the IC HTTP interface). Everything a
// replica does to the world goes through its `Env` (harness/sim/env.ts); everything the world does
// to a replica comes in through `ReplicaInputs`; `ReplicaReads` are answered from its own state only.

/** A replica of another subnet, the peer of an XNet exchange. */
export interface XNetPeer {
  readonly subnet: SubnetId;
  readonly replica: ReplicaId;
}

/**
 * What replicas of different subnets send each other (the IC's XNet endpoint, pulled over HTTPS
 * there): a destination replica asks a source replica for the source's stream to it from an index,
 * and gets a certified slice back (or nothing, if there is nothing certified to serve).
 */
export type XNetMessage =
  | { readonly kind: "xnet-request"; readonly destination: SubnetId; readonly fromIndex: bigint }
  | { readonly kind: "xnet-response"; readonly slice: CertifiedSlice };

export type IngressSubmitResult =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly reason: IngressInvalidReason | "duplicate" | "pool-full" }
  | { readonly accepted: false; readonly reason: IngressFilterRefusal; readonly rejection: IngressFilterRejection };

/** Everything that drives a replica. */
export interface ReplicaInputs {
  /** Arms the replica's timers and takes its first step (once per incarnation). */
  start(): void;
  /** A bundle from a peer of the same subnet. */
  onMessage(from: ReplicaId, bundle: Bundle): void;
  /** A timer the replica set through `Env.setTimer` fired. */
  onTimer(tag: string): void;
  /** A user's submission (the IC's HTTP call endpoint): the ingress filter runs here, not on gossip. */
  onIngress(message: IngressMessage): IngressSubmitResult;
  /** A message from a replica of another subnet (multi-subnet only; ignored otherwise). */
  onXNetMessage(from: XNetPeer, message: XNetMessage): void;
}

/** Where a replica stands (the HTTP status endpoint's health, dumps, the runners). */
export interface ReplicaStatus {
  readonly finalizedHeight: Height;
  readonly notarizedHeight: Height;
  /** The last height whose batch the state machine executed. */
  readonly executedHeight: Height;
  readonly cupHeight: Height;
  /** Latest height of this subnet's state the replica holds a certification for (execution subnets). */
  readonly certifiedHeight?: Height;
  /** The height queries are answered at (execution subnets: the latest certified one it executed). */
  readonly queryHeight?: Height;
}

/** Reads answered from the replica's own state: a Byzantine replica could answer anything. */
export interface ReplicaReads {
  readonly id: ReplicaId;
  status(): ReplicaStatus;
  /** The replicated ingress history's entry for a message (undefined: unknown to the executed state). */
  ingressStatus(id: HashHex): IngressStatus | undefined;
  /**
   * The principal that sent an ingress message, while the history keeps its status (undefined
   * when unknown, or for the simulator's own keyed-hash messages): read_state shows a request's
   * status to its sender only.
   */
  ingressSender(id: HashHex): PrincipalText | undefined;
  /** A canister's controllers and private metadata names at `status().queryHeight` (undefined: no such canister). */
  canisterInfo(canister: CanisterId): CanisterInfo | undefined;
  /**
   * A non-replicated query at `status().queryHeight`; undefined when this subnet runs no canisters
   * (the key-value placeholder).
   */
  query(canister: CanisterId, method: string, arg: Uint8Array, caller?: PrincipalText): Response | undefined;
  /**
   * A read_state answer: the CBOR certificate of the latest certified state pruned to `paths`
   * (plus /time), signed by the subnet. Undefined before the first certification, or on a subnet
   * that does not certify its state.
   */
  readState(paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined;
  /** The newest certification of this subnet's state the replica holds. */
  latestCertification(): Certification | undefined;
}

/** The one replica API (DESIGN.md rule 1): inputs in, reads out, outputs only through `Env`. */
export interface ReplicaApi extends ReplicaInputs, ReplicaReads {}
