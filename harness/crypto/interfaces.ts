// The crypto contract. Consensus signs and verifies only through these interfaces, so the fast
// simulated backend and a real BLS12-381 backend are interchangeable.
//
// - basic signatures: a node's own key (Ed25519 in the IC): block proposals, equivocation proofs;
// - multi-signatures: notarization and finalization shares, aggregated with the signer set;
// - threshold signatures: random beacon (low threshold f+1) and catch-up packages / state
//   certification (high threshold 2f+1); the combined signature is unique per message, which is
//   what makes the beacon an unbiased source of randomness.
import type { ReplicaId } from "../types.ts";

/** Hex-encoded signature bytes. */
export type Signature = string & { readonly __brand: "Signature" };

export type ThresholdGroup = "low" | "high";

export interface MultiSignature {
  /** Ascending, distinct. */
  readonly signers: readonly ReplicaId[];
  readonly signature: Signature;
}

/** What one replica holds: it can sign only as itself. */
export interface NodeSigner {
  readonly node: ReplicaId;
  signBasic(message: string): Signature;
  signMultiShare(message: string): Signature;
  signThresholdShare(group: ThresholdGroup, message: string): Signature;
}

/** Public verification and aggregation, backed by the subnet's key registry. */
export interface SubnetVerifier {
  readonly backend: "sim" | "bls";
  readonly size: number;
  thresholdOf(group: ThresholdGroup): number;
  verifyBasic(node: ReplicaId, message: string, signature: Signature): boolean;
  verifyMultiShare(node: ReplicaId, message: string, share: Signature): boolean;
  /** Aggregates verified shares; undefined if any share is invalid. */
  aggregateMulti(message: string, shares: ReadonlyMap<ReplicaId, Signature>): MultiSignature | undefined;
  verifyMulti(message: string, multi: MultiSignature, threshold: number): boolean;
  verifyThresholdShare(group: ThresholdGroup, node: ReplicaId, message: string, share: Signature): boolean;
  /** Combines at least `thresholdOf(group)` valid shares; undefined otherwise. */
  combineThreshold(
    group: ThresholdGroup,
    message: string,
    shares: ReadonlyMap<ReplicaId, Signature>,
  ): Signature | undefined;
  verifyThreshold(group: ThresholdGroup, message: string, signature: Signature): boolean;
}

/** A subnet's keys as produced by (simulated) DKG: one signer per node plus the verifier. */
export interface SubnetKeys {
  readonly verifier: SubnetVerifier;
  signerFor(node: ReplicaId): NodeSigner;
}
