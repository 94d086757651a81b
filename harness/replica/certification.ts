// Per-height state certification (ic-protocol.md §5.3, §6): after executing height h every replica
// signs a share of the subnet's high-threshold key over ds("ic-state-root") ‖ root hash of its
// certified state tree; 2f+1 shares over the same hash combine into the subnet's certification of h.
// A replica whose state diverged signs a different hash, which never gathers 2f+1 shares: honest
// replicas keep certifying without it.
//
// A replica takes a certification of h — combined from shares or received whole — only for the
// hash it computed for h itself (as the IC's certifier does): the signature covers the hash alone,
// so a genuine certification of another height, replayed under h, verifies too. Shares and
// certifications of heights it has not executed yet wait until it has.
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

/** What became of a peer's certification. */
export type PeerCertificationVerdict =
  | { readonly kind: "adopted"; readonly certification: Certification }
  /** Validly signed, but not over this replica's own hash of that height. */
  | { readonly kind: "differs"; readonly own: HashHex }
  | { readonly kind: "held" | "stale" | "bad-signature" };

/** Peers' certifications of heights not executed yet that a replica keeps (the newest ones). */
const PENDING_CERTIFICATIONS_KEPT = 4;

/**
 * Unverified shares kept per signer and height: a share claiming a signer is checked only when it
 * can count (note [lazy shares]), so a forged one must not displace the genuine one meanwhile.
 */
const CANDIDATES_PER_SIGNER = 3;

// Note [lazy shares]: a share's signature (a pairing with the bls backend) is checked only when it
// can complete a certification — it is over this replica's own hash of an executed height, and
// enough signers sent such shares to reach the threshold — and then only as many as the threshold
// needs. A replica catching up after a long absence receives shares for many heights it has not
// executed, most of which a certification it gets whole makes useless: those are never verified.

/** One replica's certification state: its own hashes, peers' shares, and certifications. */
export class CertificationPool {
  private readonly shares = new Map<Height, Map<ReplicaId, CertificationShare[]>>();
  private readonly verifiedShares = new WeakSet<CertificationShare>();
  private readonly certified = new Map<Height, Certification>();
  private readonly pending = new Map<Height, Certification>();
  private latest: Certification | undefined;

  /**
   * `ownHashAt(h)`: the hash this replica computed for h (undefined before it executed h).
   * `unchecked`: the canary certification-unchecked (tests only) — peers' certifications are taken
   * as they come, without signature or hash check.
   */
  constructor(
    private readonly verifier: SubnetVerifier,
    private readonly ownHashAt: (h: Height) => HashHex | undefined,
    private readonly unchecked = false,
  ) {}

  get latestCertification(): Certification | undefined {
    return this.latest;
  }

  certificationAt(h: Height): Certification | undefined {
    return this.certified.get(h);
  }

  /** Adds this replica's own share (signed here, so not verified) and returns the certification it completes, if any. */
  addOwnShare(share: CertificationShare): Certification | undefined {
    this.verifiedShares.add(share);
    return this.addShare(share);
  }

  /**
   * Adds a peer's share (its signature is checked when it can count) and returns the certification
   * it completes, if any.
   */
  addShare(share: CertificationShare): Certification | undefined {
    const h = share.height;
    if (this.certified.has(h)) return undefined;
    if (this.latest !== undefined && (h <= this.latest.height || h > this.latest.height + SHARE_WINDOW)) return undefined;
    // A peer's certification of a later height is held: it is adopted once this replica gets there.
    if (this.heldAbove(h)) return undefined;
    const own = this.ownHashAt(h);
    if (own !== undefined && share.hash !== own) return undefined; // never combined
    let atHeight = this.shares.get(h);
    if (atHeight === undefined) this.shares.set(h, (atHeight = new Map()));
    const candidates = atHeight.get(share.signer) ?? [];
    if (candidates.some((c) => this.verifiedShares.has(c) && c.hash === share.hash)) return undefined;
    if (candidates.some((c) => c.hash === share.hash && c.signature === share.signature)) return undefined;
    if (candidates.length >= CANDIDATES_PER_SIGNER) return undefined;
    atHeight.set(share.signer, [...candidates, share]);
    return this.combine(h);
  }

  /** The certification of h from the shares over this replica's own hash of h, once 2f+1 agree. */
  private combine(h: Height): Certification | undefined {
    const own = this.ownHashAt(h);
    const atHeight = this.shares.get(h);
    if (own === undefined || atHeight === undefined || this.certified.has(h)) return undefined;
    const threshold = this.verifier.thresholdOf("high");
    let claimed = 0;
    for (const candidates of atHeight.values()) if (candidates.some((c) => c.hash === own)) claimed++;
    if (claimed < threshold) return undefined;
    const sameHash = new Map<ReplicaId, Signature>();
    for (const [signer, candidates] of atHeight) {
      if (sameHash.size >= threshold) break;
      const genuine = candidates.find((c) => c.hash === own && this.verify(c));
      // What failed its check is gone; a verified share stands alone for its signer.
      atHeight.set(signer, genuine === undefined ? candidates.filter((c) => c.hash === own && this.verifiedShares.has(c)) : [genuine]);
      if (genuine !== undefined) sameHash.set(signer, genuine.signature);
    }
    if (sameHash.size < threshold) return undefined;
    const signature = this.verifier.combineThreshold("high", certificationMessageOf(own), sameHash);
    if (signature === undefined) return undefined;
    const cert: Certification = { height: h, hash: own, signature };
    this.record(cert);
    return cert;
  }

  private verify(share: CertificationShare): boolean {
    if (this.verifiedShares.has(share)) return true;
    if (!this.verifier.verifyThresholdShare("high", share.signer, certificationMessageOf(share.hash), share.signature)) return false;
    this.verifiedShares.add(share);
    return true;
  }

  private heldAbove(h: Height): boolean {
    for (const held of this.pending.keys()) if (held > h) return true;
    return false;
  }

  /**
   * Adds a peer's aggregated certification. It is adopted when it is new, validly signed and
   * certifies this replica's own hash of its height; one whose hash differs is refused (the
   * replica's own state diverged, or the certification is a genuine one replayed under another
   * height); one of a height not executed yet is held (the newest few) until `onExecuted`.
   */
  addCertification(cert: Certification): PeerCertificationVerdict {
    if (this.certified.has(cert.height) || (this.latest !== undefined && cert.height <= this.latest.height)) return { kind: "stale" };
    if (this.unchecked) {
      this.record(cert);
      return { kind: "adopted", certification: cert };
    }
    if (!verifyCertification(this.verifier, cert)) return { kind: "bad-signature" };
    const own = this.ownHashAt(cert.height);
    if (own === undefined) {
      this.hold(cert);
      return { kind: "held" };
    }
    if (own !== cert.hash) return { kind: "differs", own };
    this.record(cert);
    return { kind: "adopted", certification: cert };
  }

  /**
   * This replica executed h (and knows its own hash of it): the certification of h that the
   * shares received meanwhile make, or the verdict on a peer's certification held for h.
   */
  onExecuted(h: Height): { readonly combined?: Certification; readonly held?: { readonly certification: Certification; readonly verdict: PeerCertificationVerdict } } {
    const held = this.pending.get(h);
    this.pending.delete(h);
    const combined = this.combine(h);
    if (combined !== undefined) return { combined };
    return held === undefined ? {} : { held: { certification: held, verdict: this.addCertification(held) } };
  }

  private hold(cert: Certification): void {
    if (this.pending.has(cert.height)) return;
    this.pending.set(cert.height, cert);
    const heights = [...this.pending.keys()].sort((a, b) => a - b);
    for (const h of heights.slice(0, Math.max(0, heights.length - PENDING_CERTIFICATIONS_KEPT))) this.pending.delete(h);
  }

  private record(cert: Certification): void {
    this.certified.set(cert.height, cert);
    if (this.latest === undefined || cert.height > this.latest.height) this.latest = cert;
    for (const h of this.shares.keys()) if (h <= cert.height) this.shares.delete(h);
    for (const h of this.pending.keys()) if (h <= cert.height) this.pending.delete(h);
    for (const h of this.certified.keys()) if (h + CERTIFICATIONS_KEPT < cert.height) this.certified.delete(h);
  }
}
