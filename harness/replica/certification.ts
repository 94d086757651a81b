// Per-height state certification (ic-protocol.md §5.3, §6): after executing height h every replica
// signs a share of the subnet's high-threshold key over ds("ic-state-root") ‖ root hash of its
// certified state tree; 2f+1 shares over the same hash combine into the subnet's certification of h.
// A replica whose state diverged signs a different hash, which never gathers 2f+1 shares: honest
// replicas keep certifying without it, and it learns the certified hash from their certification.
import { hexToBytes } from "@noble/hashes/utils.js";
import { certificationMessage } from "../crypto/bls-backend.ts";
import type { NodeSigner, Signature, SubnetVerifier } from "../crypto/interfaces.ts";
import type { HashHex, Height, ReplicaId } from "../types.ts";

export interface Certification {
  readonly height: Height;
  /** Root hash of the certified state tree at `height`. */
  readonly hash: HashHex;
  /** The subnet's threshold signature (group "high") over certificationMessageOf(hash). */
  readonly signature: Signature;
}

export interface CertificationShare {
  readonly height: Height;
  readonly hash: HashHex;
  readonly signer: ReplicaId;
  readonly signature: Signature;
}

export const certificationMessageOf = (hash: HashHex): string => certificationMessage(hexToBytes(hash));

export function signCertificationShare(signer: NodeSigner, h: Height, hash: HashHex): CertificationShare {
  return { height: h, hash, signer: signer.node, signature: signer.signThresholdShare("high", certificationMessageOf(hash)) };
}

// Note [verification cache] (consensus/ingress.ts): certifications are checked once per object.
const verified = new WeakMap<Certification, WeakMap<SubnetVerifier, boolean>>();

export function verifyCertification(verifier: SubnetVerifier, cert: Certification): boolean {
  let byVerifier = verified.get(cert);
  const cached = byVerifier?.get(verifier);
  if (cached !== undefined) return cached;
  const ok = verifier.verifyThreshold("high", certificationMessageOf(cert.hash), cert.signature);
  if (byVerifier === undefined) {
    byVerifier = new WeakMap();
    verified.set(cert, byVerifier);
  }
  byVerifier.set(verifier, ok);
  return ok;
}

/** Heights of shares kept above the latest certification (bounded memory under any input). */
const SHARE_WINDOW = 64;
const CERTIFICATIONS_KEPT = 64;

/** One replica's certification state: its own hashes, peers' shares, and certifications. */
export class CertificationPool {
  private readonly shares = new Map<Height, Map<ReplicaId, CertificationShare>>();
  private readonly certified = new Map<Height, Certification>();
  private latest: Certification | undefined;

  constructor(private readonly verifier: SubnetVerifier) {}

  get latestCertification(): Certification | undefined {
    return this.latest;
  }

  certificationAt(h: Height): Certification | undefined {
    return this.certified.get(h);
  }

  /**
   * Adds a share (own or a peer's, signature checked here) and returns the certification it
   * completes, if any.
   */
  addShare(share: CertificationShare): Certification | undefined {
    if (this.certified.has(share.height)) return undefined;
    if (this.latest !== undefined && (share.height <= this.latest.height || share.height > this.latest.height + SHARE_WINDOW)) return undefined;
    if (!this.verifier.verifyThresholdShare("high", share.signer, certificationMessageOf(share.hash), share.signature)) return undefined;
    let atHeight = this.shares.get(share.height);
    if (atHeight === undefined) this.shares.set(share.height, (atHeight = new Map()));
    atHeight.set(share.signer, share);
    const sameHash = new Map<ReplicaId, Signature>();
    for (const s of atHeight.values()) if (s.hash === share.hash) sameHash.set(s.signer, s.signature);
    if (sameHash.size < this.verifier.thresholdOf("high")) return undefined;
    const signature = this.verifier.combineThreshold("high", certificationMessageOf(share.hash), sameHash);
    if (signature === undefined) return undefined;
    const cert: Certification = { height: share.height, hash: share.hash, signature };
    this.record(cert);
    return cert;
  }

  /** Adds a peer's aggregated certification; returns true when it is new and valid. */
  addCertification(cert: Certification): boolean {
    if (this.certified.has(cert.height)) return false;
    if (this.latest !== undefined && cert.height <= this.latest.height) return false;
    if (!verifyCertification(this.verifier, cert)) return false;
    this.record(cert);
    return true;
  }

  private record(cert: Certification): void {
    this.certified.set(cert.height, cert);
    if (this.latest === undefined || cert.height > this.latest.height) this.latest = cert;
    for (const h of this.shares.keys()) if (h <= cert.height) this.shares.delete(h);
    for (const h of this.certified.keys()) if (h + CERTIFICATIONS_KEPT < cert.height) this.certified.delete(h);
  }
}
