// A replica's part in per-height certification (certification.ts holds the rules and the pool):
// after executing a height it signs a share over its own certified hash and broadcasts it, counts
// the shares and whole certifications its peers send, and tells its state machine, the trace and
// the observer of every certification it adopts — or of a peer's it refuses because it is not over
// its own hash. Shares go out through the replica's outbox.
import type { NodeSigner, SubnetVerifier } from "../crypto/interfaces.ts";
import type { Env } from "../sim/env.ts";
import type { HashHex, Height } from "../types.ts";
import {
  CertificationPool,
  signCertificationShare,
  type Certification,
  type CertificationShare,
  type PeerCertificationVerdict,
} from "./certification.ts";
import type { MessageRouting } from "./interfaces.ts";
import type { Outbox } from "./outbox.ts";
import type { ReplicaObserver } from "./replica.ts";

export interface CertifierDeps {
  readonly env: Env<unknown>;
  readonly signer: NodeSigner;
  readonly verifier: SubnetVerifier;
  readonly routing: MessageRouting;
  readonly outbox: Outbox;
  readonly observer: Pick<ReplicaObserver, "onCertified" | "onCertificationRefused" | "onCertificationShare">;
  /** The replica's own certified hash of h, once it exists (with the execution time model, later than execution). */
  readonly ownHashAt: (h: Height) => HashHex | undefined;
  /** The canary certification-unchecked (tests only): peers' certifications taken unchecked. */
  readonly unchecked: boolean;
}

export class Certifier {
  private readonly pool: CertificationPool;

  constructor(private readonly deps: CertifierDeps) {
    // A height still executing has no certified hash yet: shares and certifications of it wait.
    this.pool = new CertificationPool(deps.verifier, deps.ownHashAt, deps.unchecked);
  }

  /** The newest certification of this subnet's state this replica holds. */
  get latestCertification(): Certification | undefined {
    return this.pool.latestCertification;
  }

  certificationAt(h: Height): Certification | undefined {
    return this.pool.certificationAt(h);
  }

  /** After executing h: sign a share of the certified hash and tell the peers. */
  certifyHeight(h: Height): void {
    const { env, routing } = this.deps;
    const hash = routing.certifiedHashAt?.(h);
    if (hash === undefined) return;
    const share = signCertificationShare(this.deps.signer, h, hash);
    this.deps.observer.onCertificationShare?.(env.self, share, env.now());
    this.deps.outbox.broadcast({ kind: "certification-share", share });
    const cert = this.pool.addOwnShare(share);
    if (cert !== undefined) this.certified(cert);
    // Shares and a peer's certification of h that arrived before this replica executed h count now.
    const { combined, held } = this.pool.onExecuted(h);
    if (combined !== undefined) this.certified(combined);
    if (held !== undefined) this.onPeerVerdict(held.certification, held.verdict);
  }

  onShare(share: CertificationShare): void {
    const cert = this.pool.addShare(share);
    if (cert !== undefined) this.certified(cert);
  }

  onPeerCertification(cert: Certification): void {
    this.onPeerVerdict(cert, this.pool.addCertification(cert));
  }

  /**
   * A peer's certification is adopted only over this replica's own hash of its height. One that
   * differs is refused and reported: either this replica diverged (the checkers name it when the
   * hash is what the subnet certified) or it is a genuine certification replayed under another
   * height (its signature covers the hash alone).
   */
  private onPeerVerdict(cert: Certification, verdict: PeerCertificationVerdict): void {
    const env = this.deps.env;
    if (verdict.kind === "adopted") this.certified(verdict.certification);
    if (verdict.kind !== "differs") return;
    env.trace({ kind: "certification.refused", detail: { height: cert.height, hash: cert.hash.slice(0, 16), own: verdict.own.slice(0, 16) } });
    this.deps.observer.onCertificationRefused?.(env.self, cert, verdict.own, env.now());
  }

  private certified(cert: Certification): void {
    const { env, routing } = this.deps;
    const own = routing.certifiedHashAt?.(cert.height);
    env.trace({ kind: "certification", detail: { height: cert.height, hash: cert.hash.slice(0, 16), own: own === undefined ? "not-executed" : own === cert.hash ? "same" : "DIFFERS" } });
    routing.onCertified?.(cert);
    this.deps.observer.onCertified?.(env.self, cert, env.now());
  }
}
