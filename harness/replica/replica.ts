// A replica: consensus + gossip + ingress pool + message routing, driven only by `onMessage`,
// `onTimer` and `onIngress` and acting only through its Env (DESIGN.md rule 1). One "step" runs
// the consensus components to a fixed point, delivers finalized batches, purges, arms the next
// wake-up timer and flushes at most one bundle per peer.
import { assert } from "../assert.ts";
import {
  artifactHeight,
  type CatchUpPackage,
  type ConsensusArtifact,
} from "../consensus/artifacts.ts";
import {
  MAX_INGRESS_BYTES_PER_MESSAGE,
  MINIMUM_CHAIN_LENGTH,
  PUSH_THRESHOLD_BYTES,
  type ConsensusConfig,
} from "../consensus/config.ts";
import {
  blockMakerReadyAtUs,
  notaryReadyAtUs,
  onStateChange,
  validate,
  type Change,
  type ConsensusContext,
} from "../consensus/consensus.ts";
import { checkIngress, type IngressAuth, type IngressInvalidReason, type IngressMessage } from "../consensus/ingress.ts";
import type { Membership } from "../consensus/membership.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { NodeSigner, SubnetVerifier } from "../crypto/interfaces.ts";
import { BUNDLE_OVERHEAD_BYTES, wireItemSize, type Bundle, type StatusReport, type WireItem } from "../p2p/messages.ts";
import type { Env, TimerHandle } from "../sim/env.ts";
import { height, replicaId, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import { HONEST, type ReplicaBehaviour } from "./behaviour.ts";
import type { CanisterInfo, IngressStatus, MessageRouting, ReplicaApi, ReplicaStatus, XNetMessage, XNetPeer, IngressSubmitResult } from "./interfaces.ts";
import type { CanisterId, PrincipalText, Response } from "../execution/interfaces.ts";
import type { Block } from "../consensus/artifacts.ts";
import type { CertifiedSlice, XNetClient } from "../routing/xnet.ts";
import { DEFAULT_XNET_POLL_MS, ReplicaXNet, XNET_POLL_TIMER } from "./replica-xnet.ts";
import type { SubnetId } from "../routing/registry.ts";
import { CertificationPool, signCertificationShare, type Certification, type CertificationShare, type PeerCertificationVerdict } from "./certification.ts";
import { PoolLog } from "./pool-log.ts";
import { takeIngressArrivals } from "./ingress-arrivals.ts";
import { assertNoIdleWork, feedsConsensus, type IdleSteps } from "./idle-steps.ts";
import { BatchDelivery } from "./batch-delivery.ts";
import type { ExecutionTimeModel } from "./execution-time.ts";

/** What the harness learns from a replica (read-only observation; the replica never waits on it). */
export interface ReplicaObserver {
  onBatchDelivered(replica: ReplicaId, block: Block, stateHash: HashHex, atUs: TimeUs): void;
  onStateSynced(replica: ReplicaId, h: Height, atUs: TimeUs): void;
  /** The replica holds a new certification of its subnet's state (2f+1 shares combined). */
  onCertified?(replica: ReplicaId, certification: Certification, atUs: TimeUs): void;
  /**
   * An artifact entered the replica's validated pool: one it made (`own`: its shares, its
   * aggregates, its proposals) or a peer's that passed validation. `pool` is for reading only.
   */
  onArtifact?(replica: ReplicaId, artifact: ConsensusArtifact, origin: "own" | "peer", atUs: TimeUs, pool: ConsensusPool): void;
  /** A validly signed certification from a peer was refused: it is not over this replica's own hash. */
  onCertificationRefused?(replica: ReplicaId, certification: Certification, own: HashHex, atUs: TimeUs): void;
  /** The replica signed a certification share over its own certified hash of a height. */
  onCertificationShare?(replica: ReplicaId, share: CertificationShare, atUs: TimeUs): void;
  /** The finalized chain has `finalized` at `h` where this replica executed `executed`: it stops. */
  onForkDetected?(replica: ReplicaId, h: Height, executed: HashHex, finalized: HashHex, atUs: TimeUs): void;
}

export interface ReplicaDeps {
  readonly env: Env<Bundle>;
  readonly config: ConsensusConfig;
  readonly membership: Membership;
  readonly signer: NodeSigner;
  readonly verifier: SubnetVerifier;
  readonly ingressAuth: IngressAuth;
  readonly genesis: CatchUpPackage;
  readonly makeStateMachine: () => MessageRouting;
  readonly observer: ReplicaObserver;
  readonly behaviour?: ReplicaBehaviour;
  /** Maximum messages held in the ingress pool before new submissions are refused. */
  readonly ingressPoolCapacity?: number;
  /** Multi-subnet runs: this subnet's XNet client (slices pulled from the other subnets). */
  readonly xnet?: XNetClient;
  /** Multi-subnet runs: how often the replica asks each other subnet for its stream. */
  readonly xnetPollMs?: number;
  /** Steps for bundles that add nothing: skipped (default), run, or run and checked (idle-steps.ts). */
  readonly idleSteps?: IdleSteps;
  /** Execution, hashing and checkpoints take simulated time (execution-time.ts); absent: none. */
  readonly executionTime?: ExecutionTimeModel;
}

export { DEFAULT_XNET_POLL_MS } from "./replica-xnet.ts";

export type { IngressSubmitResult } from "./interfaces.ts";

/** Heights of chain a helper sends per status answer. */
const CATCH_UP_HEIGHTS = 20;
/** How many peers answer one status report (rotating), so a laggard is not flooded by all n−1. */
const STATUS_HELPERS = 3;
const REQUEST_RETRY_US = 2_000_000;
/**
 * How long one step may run before it yields and continues on a timer at once. Only real mode
 * sees time pass within a step (in the simulator it stands still until the next event), so
 * simulations never yield. A replica catching up on a loaded machine otherwise verified and
 * executed for seconds in one go while its handshakes, status timer and HTTP requests waited.
 */
export const STEP_BUDGET_US = 100_000;
const CONTINUE_TIMER = "continue";

export class Replica implements ReplicaApi {
  readonly id: ReplicaId;
  private readonly env: Env<Bundle>;
  private readonly pool: ConsensusPool;
  private readonly routing: MessageRouting;
  private readonly behaviour: ReplicaBehaviour;
  private readonly ingressPool = new Map<HashHex, IngressMessage>();
  private readonly outbox = new Map<ReplicaId, WireItem[]>();
  private readonly requested = new Map<string, TimeUs>();
  private wakeTimer: { handle: TimerHandle; at: TimeUs } | undefined;
  /** Artifacts applied and batches delivered so far (the idle-step probe's measure of work). */
  private stepWork = 0;
  private stepping = false;
  /** When the running step started (its budget: STEP_BUDGET_US). */
  private stepStartedUs = 0;
  /** A step that ran out of budget left work for a timer armed at once. */
  private continuing = false;
  private lastStatusFinalized: Height = height(0);
  /** The finalized height each peer last reported (catch-up: who is far ahead). */
  private readonly peerFinalized = new Map<ReplicaId, Height>();
  private stateSyncRequestedAt: TimeUs | undefined;
  private readonly certification: CertificationPool;
  /** The validated pool's write-ahead log on this replica's disk. */
  private readonly poolLog: PoolLog;
  /** This replica signed artifacts (shares, proposals) since the last sync: sync before sending. */
  private ownUnsynced = false;
  /** The CUP height the pool log was last trimmed at. */
  private trimmedAtCup: Height;
  /** What the restart found unusable on the disk (traced at start). */
  private readonly recoveryNotes: readonly string[];
  /** Multi-subnet runs: the XNet endpoint and client. */
  private readonly xnet: ReplicaXNet | undefined;
  /** Finalized blocks to the state machine, in height order (with the execution time model, if any). */
  private readonly delivery: BatchDelivery;

  constructor(private readonly deps: ReplicaDeps) {
    this.env = deps.env;
    this.id = deps.env.self;
    this.behaviour = deps.behaviour ?? HONEST;
    // The validated pool lives on disk, as the IC's does: a restarted replica rebuilds it from its
    // log and finds its own shares again, which the finalization rule needs to stay safe across a
    // crash (and without which it could sign a second block at a height).
    const opened = PoolLog.open(deps.env.disk, deps.genesis, deps.env.now());
    this.pool = opened.pool;
    this.poolLog = opened.log;
    this.trimmedAtCup = this.pool.latestCup.content.height;
    this.routing = deps.makeStateMachine();
    this.recoveryNotes = [...opened.notes, ...(this.routing.recovery ?? [])];
    this.delivery = new BatchDelivery({
      env: deps.env,
      pool: this.pool,
      routing: this.routing,
      canary: deps.config.canary,
      xnet: deps.xnet,
      executionTime: deps.executionTime,
      restartSalt: opened.restarted && deps.config.canary === "state-hash-after-restart" ? `restarted at ${deps.env.now()}` : undefined,
      onDelivered: (block, stateHash) => this.delivered(block, stateHash),
      onFork: (lastExecuted, executed, parent) => {
        this.env.trace({ kind: "consensus.fork-detected", detail: { height: lastExecuted + 1, parent: parent.slice(0, 16), delivered: executed.slice(0, 16) } });
        this.deps.observer.onForkDetected?.(this.id, lastExecuted, executed, parent, this.env.now());
      },
      certify: (h) => this.certifyHeight(h),
      yieldIfOverBudget: () => {
        if (!this.overBudget()) return false;
        this.continueSoon();
        return true;
      },
    });
    // A height still executing has no certified hash yet: shares and certifications of it wait.
    this.certification = new CertificationPool(deps.verifier, (h) => this.delivery.certifiedHashAt(h), deps.config.canary === "certification-unchecked");
    this.xnet =
      deps.xnet === undefined
        ? undefined
        : new ReplicaXNet({
            env: deps.env,
            client: deps.xnet,
            pollMs: deps.xnetPollMs ?? DEFAULT_XNET_POLL_MS,
            routing: this.routing,
            pool: this.pool,
            behaviour: this.behaviour,
            latestCertification: () => this.certification.latestCertification,
          });
  }

  start(): void {
    this.xnet?.start();
    this.env.trace({ kind: "replica.start", detail: { finalized: this.pool.finalizedHeight, expected: this.routing.expectedBatchHeight() } });
    // What the restart found torn or corrupt on its disk and passed over (it recovers from older
    // checkpoints, the log's valid prefix, and its peers).
    for (const note of this.recoveryNotes) this.env.trace({ kind: "storage.recovered", detail: { what: note } });
    this.env.setTimer(this.env.now(), "status");
    this.step();
  }

  // ---- observation (harness, tests, dumps) ---------------------------------------------------------

  get finalizedHeight(): Height {
    return this.pool.finalizedHeight;
  }
  get notarizedHeight(): Height {
    return this.pool.notarizedHeight;
  }
  get deliveredHeight(): Height {
    return height(this.routing.expectedBatchHeight() - 1);
  }
  get cupHeight(): Height {
    return this.pool.latestCup.content.height;
  }
  get ingressPoolSize(): number {
    this.takeArrivedIngress();
    return this.ingressPool.size;
  }
  get stateMachine(): MessageRouting {
    return this.routing;
  }
  get consensusPool(): ConsensusPool {
    return this.pool;
  }
  /** The newest certification of this subnet's state this replica holds. */
  latestCertification(): Certification | undefined {
    return this.certification.latestCertification;
  }

  // ---- reads (ReplicaReads: the HTTP interface, the runners) -----------------------------------------

  status(): ReplicaStatus {
    const certified = this.certification.latestCertification?.height;
    const queryHeight = this.routing.queryHeight;
    return {
      finalizedHeight: this.pool.finalizedHeight,
      notarizedHeight: this.pool.notarizedHeight,
      executedHeight: this.deliveredHeight,
      cupHeight: this.cupHeight,
      ...(certified === undefined ? {} : { certifiedHeight: certified }),
      ...(queryHeight === undefined ? {} : { queryHeight }),
    };
  }

  ingressStatus(id: HashHex): IngressStatus | undefined {
    return this.routing.ingressStatus(id);
  }

  ingressSender(id: HashHex): PrincipalText | undefined {
    return this.routing.ingressSender?.(id);
  }

  canisterInfo(canister: CanisterId): CanisterInfo | undefined {
    return this.routing.canisterInfo?.(canister);
  }

  query(canister: CanisterId, method: string, arg: Uint8Array, caller?: PrincipalText): Response | undefined {
    return this.routing.query?.(canister, method, arg, caller);
  }

  readState(paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined {
    return this.routing.readState?.(paths);
  }
  certificationAt(h: Height): Certification | undefined {
    return this.certification.certificationAt(h);
  }

  // ---- inputs -------------------------------------------------------------------------------------

  /**
   * Admits the ingress bundles the simulator queued for this replica up to now (ingress-arrivals.ts),
   * each at its arrival time. Every input (and a read of the pool's size) starts with it.
   */
  private takeArrivedIngress(): void {
    takeIngressArrivals(this.env, (message, atUs) => this.admitIngress(message, atUs));
  }

  onIngress(message: IngressMessage): IngressSubmitResult {
    this.takeArrivedIngress();
    // The ingress filter (canister exists and runs, inspect_message accepts) is the receiving
    // replica's alone, as on the IC: peers do not re-run it on gossiped messages.
    const filtered = this.ingressPool.has(message.id) ? undefined : this.routing.filterIngress?.(message);
    if (filtered !== undefined) return { accepted: false, reason: filtered.reason, rejection: filtered };
    const problem = this.admitIngress(message);
    if (problem !== undefined) return { accepted: false, reason: problem };
    this.broadcast({ kind: "ingress", message });
    this.flush();
    return { accepted: true };
  }

  onMessage(from: ReplicaId, bundle: Bundle): void {
    this.takeArrivedIngress();
    this.probeWakeTimers(`a bundle from r${from}`);
    let news = false;
    for (const item of bundle.items) {
      if (!news && feedsConsensus(item, this.pool)) news = true;
      this.receive(from, item);
    }
    // A bundle that adds nothing to the pool (ingress, artifacts already here, adverts, requests,
    // status) gives a step nothing new to read: what it would do at this time has a timer of its
    // own (idle-steps.ts). Replies still go out.
    if (!news && this.deps.idleSteps !== "run") {
      this.flush();
      return;
    }
    const finalizedBefore = this.pool.finalizedHeight;
    this.step();
    if (this.pool.finalizedHeight > finalizedBefore) this.askForMoreChain(from);
  }

  /** Probe mode (idle-steps.ts): before an input, a step must find nothing to do unless the wake-up is due. */
  private probeWakeTimers(input: string): void {
    if (this.deps.idleSteps !== "probe" || this.stepping) return;
    const workBefore = this.stepWork;
    this.step();
    assertNoIdleWork({ work: this.stepWork - workBefore, nowUs: this.env.now(), earliestTimerUs: this.wakeTimer?.at, replica: this.id, input });
  }

  /**
   * Catching up: `from`'s bundle moved this replica's finalized chain on and `from` is still far
   * ahead, so it asks `from` for the next heights at once instead of at its next status tick — the
   * laggard's pace is then its own verification speed, not CATCH_UP_HEIGHTS per status interval.
   * Self-clocked: one status per bundle that made progress, to the peer that sent it.
   */
  private askForMoreChain(from: ReplicaId): void {
    const ahead = this.peerFinalized.get(from);
    if (ahead === undefined || ahead <= this.pool.finalizedHeight + CATCH_UP_HEIGHTS) return;
    this.sendTo(from, { kind: "status", status: this.statusReport() });
    this.flush();
  }

  onTimer(tag: string): void {
    this.takeArrivedIngress();
    this.probeWakeTimers(`timer ${tag}`);
    if (tag === XNET_POLL_TIMER) {
      // Asking for streams changes nothing consensus reacts to: no step.
      this.xnet?.onPollTimer();
      return;
    }
    if (tag === "status") {
      // Group commit: what was validated from peers becomes durable at least once per interval.
      this.poolLog.sync();
      this.ownUnsynced = false;
      this.onStatusTick();
      this.env.setTimer((this.env.now() + this.deps.config.statusIntervalMs * 1000) as TimeUs, "status");
    }
    if (tag === "wake") this.wakeTimer = undefined;
    if (tag === CONTINUE_TIMER) this.continuing = false;
    this.step();
  }

  // ---- receiving --------------------------------------------------------------------------------

  private receive(from: ReplicaId, item: WireItem): void {
    switch (item.kind) {
      case "artifact":
        this.requested.delete(item.artifact.id);
        if (!this.pool.has(item.artifact.id)) this.pool.addUnvalidated(item.artifact);
        return;
      case "advert":
        this.onAdvert(from, item.id, item.height);
        return;
      case "request":
        this.onRequest(from, item.id, item.height);
        return;
      case "ingress":
        this.admitIngress(item.message);
        return;
      case "status":
        this.onStatus(from, item.status);
        return;
      case "state-request": {
        const snapshot = this.routing.checkpointAt(item.height);
        if (snapshot !== undefined) this.sendTo(from, { kind: "state-response", snapshot });
        return;
      }
      case "state-response":
        this.onStateResponse(item.snapshot);
        return;
      case "certification-share":
        this.onCertificationShare(item.share);
        return;
      case "certification":
        this.onPeerCertification(item.certification, this.certification.addCertification(item.certification));
        return;
    }
  }

  private onCertificationShare(share: CertificationShare): void {
    const cert = this.certification.addShare(share);
    if (cert !== undefined) this.certified(cert);
  }

  /** After executing h: sign a share of the certified hash and tell the peers. */
  private certifyHeight(h: Height): void {
    const hash = this.routing.certifiedHashAt?.(h);
    if (hash === undefined) return;
    const share = signCertificationShare(this.deps.signer, h, hash);
    this.deps.observer.onCertificationShare?.(this.id, share, this.env.now());
    this.broadcast({ kind: "certification-share", share });
    const cert = this.certification.addOwnShare(share);
    if (cert !== undefined) this.certified(cert);
    // Shares and a peer's certification of h that arrived before this replica executed h count now.
    const { combined, held } = this.certification.onExecuted(h);
    if (combined !== undefined) this.certified(combined);
    if (held !== undefined) this.onPeerCertification(held.certification, held.verdict);
  }

  /**
   * A peer's certification is adopted only over this replica's own hash of its height. One that
   * differs is refused and reported: either this replica diverged (the checkers name it when the
   * hash is what the subnet certified) or it is a genuine certification replayed under another
   * height (its signature covers the hash alone).
   */
  private onPeerCertification(cert: Certification, verdict: PeerCertificationVerdict): void {
    if (verdict.kind === "adopted") this.certified(verdict.certification);
    if (verdict.kind !== "differs") return;
    this.env.trace({ kind: "certification.refused", detail: { height: cert.height, hash: cert.hash.slice(0, 16), own: verdict.own.slice(0, 16) } });
    this.deps.observer.onCertificationRefused?.(this.id, cert, verdict.own, this.env.now());
  }

  private certified(cert: Certification): void {
    const own = this.routing.certifiedHashAt?.(cert.height);
    this.env.trace({ kind: "certification", detail: { height: cert.height, hash: cert.hash.slice(0, 16), own: own === undefined ? "not-executed" : own === cert.hash ? "same" : "DIFFERS" } });
    this.routing.onCertified?.(cert);
    this.deps.observer.onCertified?.(this.id, cert, this.env.now());
  }

  /** `atUs`: when the message reached this replica (queued arrivals are admitted a little later). */
  private admitIngress(message: IngressMessage, atUs: TimeUs = this.env.now()): IngressInvalidReason | "duplicate" | "pool-full" | undefined {
    // (An envelope's size is judged with the rest of it, by checkIngress, with the IC's reason.)
    if (message.envelope === undefined && message.sizeBytes > MAX_INGRESS_BYTES_PER_MESSAGE) return "too-large";
    if (this.ingressPool.has(message.id) || this.routing.ingressStatus(message.id) !== undefined) return "duplicate";
    const problem = checkIngress(message, this.deps.ingressAuth, atUs);
    if (problem !== undefined) return problem;
    if (this.ingressPool.size >= (this.deps.ingressPoolCapacity ?? 50_000)) return "pool-full";
    this.ingressPool.set(message.id, message);
    return undefined;
  }

  private onAdvert(from: ReplicaId, id: string, h: Height): void {
    if (this.pool.has(id) || h <= this.pool.finalizedHeight) return;
    const askedAt = this.requested.get(id);
    if (askedAt !== undefined && this.env.now() - askedAt < REQUEST_RETRY_US) return;
    this.requested.set(id, this.env.now());
    this.sendTo(from, { kind: "request", id, height: h });
  }

  private onRequest(from: ReplicaId, id: string, h: Height): void {
    for (const proposal of this.pool.proposals.get(h)?.values() ?? []) {
      if (proposal.id === id) this.sendTo(from, { kind: "artifact", artifact: proposal });
    }
  }

  private onStateResponse(snapshot: import("./interfaces.ts").StateSnapshot): void {
    const cup = this.pool.latestCup.content;
    if (snapshot.height !== cup.height || snapshot.stateHash !== cup.stateHash) return;
    if (this.routing.expectedBatchHeight() > cup.height) return;
    if (!this.routing.verifySnapshot(snapshot)) {
      this.env.trace({ kind: "state-sync.reject", detail: { height: snapshot.height } });
      return;
    }
    this.routing.installSnapshot(snapshot);
    this.delivery.recordDelivered(cup.height, cup.block.hash);
    this.stateSyncRequestedAt = undefined;
    for (const block of this.delivery.chainSince(height(0), cup.height)) this.forgetIngress(block);
    this.env.trace({ kind: "state-sync.done", detail: { height: snapshot.height, bytes: snapshot.sizeBytes } });
    this.deps.observer.onStateSynced(this.id, snapshot.height, this.env.now());
  }

  // ---- status: catch-up and retransmission -------------------------------------------------------

  private statusReport(): StatusReport {
    return {
      finalizedHeight: this.pool.finalizedHeight,
      notarizedHeight: this.pool.notarizedHeight,
      beaconHeight: this.pool.beaconHeight,
      cupHeight: this.cupHeight,
      ...(this.routing.certifiedHashAt === undefined ? {} : { certifiedHeight: this.certification.latestCertification?.height ?? height(0) }),
    };
  }

  private onStatusTick(): void {
    this.broadcast({ kind: "status", status: this.statusReport() });
    this.purgeExpiredIngress();
    for (const [id, at] of this.requested) if (this.env.now() - at > 5 * REQUEST_RETRY_US) this.requested.delete(id);
    if (this.pool.finalizedHeight === this.lastStatusFinalized) this.retransmitOwnShares();
    this.lastStatusFinalized = this.pool.finalizedHeight;
    this.requestStateSyncIfBehind();
  }

  /** Without progress since the last tick, resend this replica's own open shares (lost messages). */
  private retransmitOwnShares(): void {
    const pool = this.pool;
    const own: ConsensusArtifact[] = [];
    const open = (h: Height): boolean => h > pool.finalizedHeight;
    for (const [h, byHash] of pool.notarizationShares) if (open(h)) for (const s of byHash.values()) { const mine = s.get(this.id); if (mine) own.push(mine); }
    for (const [h, byHash] of pool.finalizationShares) if (open(h)) for (const s of byHash.values()) { const mine = s.get(this.id); if (mine) own.push(mine); }
    const beaconShare = pool.beaconShares.get(height(pool.beaconHeight + 1))?.get(this.id);
    if (beaconShare !== undefined) own.push(beaconShare);
    for (const proposal of pool.proposals.get(height(pool.notarizedHeight + 1))?.values() ?? []) own.push(proposal);
    for (const byContent of pool.cupShares.values()) for (const s of byContent.values()) { const mine = s.get(this.id); if (mine) own.push(mine); }
    for (const artifact of own) this.gossip(artifact, true);
  }

  private onStatus(from: ReplicaId, peer: StatusReport): void {
    this.peerFinalized.set(from, peer.finalizedHeight);
    if (!this.isHelperFor(from)) return;
    const pool = this.pool;
    if (pool.latestCup.content.height > peer.cupHeight && pool.latestCup.content.height > peer.finalizedHeight) {
      this.sendTo(from, { kind: "artifact", artifact: pool.latestCup });
    }
    // A replica that missed the shares of recent heights (down, cut off, state-synced) learns the
    // subnet's newest certification from a peer: the shares are not sent again.
    const cert = this.certification.latestCertification;
    if (cert !== undefined && peer.certifiedHeight !== undefined && cert.height > peer.certifiedHeight) this.sendTo(from, { kind: "certification", certification: cert });
    const top = Math.min(pool.finalizedHeight, peer.finalizedHeight + CATCH_UP_HEIGHTS);
    for (const block of this.finalizedChain(height(peer.finalizedHeight + 1), height(top))) {
      this.sendFinalizedHeight(from, block);
    }
    if (peer.finalizedHeight >= pool.finalizedHeight - CATCH_UP_HEIGHTS) {
      const from_ = Math.max(peer.notarizedHeight, pool.finalizedHeight);
      for (let h = height(from_ + 1); h <= pool.notarizedHeight; h = height(h + 1)) this.sendNotarizedHeight(from, h);
      for (let h = height(peer.beaconHeight + 1); h <= pool.beaconHeight && h <= peer.beaconHeight + CATCH_UP_HEIGHTS; h = height(h + 1)) {
        const b = pool.beacons.get(h);
        if (b !== undefined) this.sendTo(from, { kind: "artifact", artifact: b });
      }
      // Equivocation proofs for the open round: a replica that missed the proof (it was cut off
      // when the proof went round) would otherwise keep waiting for the disqualified maker, and
      // as a block maker of the next rank it would never step in.
      for (let h = height(Math.max(peer.notarizedHeight, pool.finalizedHeight) + 1); h <= pool.notarizedHeight + 1; h = height(h + 1)) {
        for (const proof of pool.equivocations.get(h)?.values() ?? []) this.sendTo(from, { kind: "artifact", artifact: proof });
      }
    }
  }

  /**
   * A height of the finalized chain: its beacon, block, and its finalization (if this height was
   * finalized directly rather than through a descendant; else its notarization).
   */
  private sendFinalizedHeight(to: ReplicaId, block: Block): void {
    const pool = this.pool;
    const h = block.height;
    const beacon = pool.beacons.get(h);
    if (beacon !== undefined) this.sendTo(to, { kind: "artifact", artifact: beacon });
    const proposal = pool.proposals.get(h)?.get(block.hash);
    if (proposal !== undefined) this.sendTo(to, { kind: "artifact", artifact: proposal });
    // A finalization makes its block notarized too: the notarization would only cost the peer a
    // signature check.
    const finalization = pool.finalizations.get(h)?.get(block.hash);
    const notarization = finalization === undefined ? pool.notarizations.get(h)?.get(block.hash) : undefined;
    if (notarization !== undefined) this.sendTo(to, { kind: "artifact", artifact: notarization });
    if (finalization !== undefined) this.sendTo(to, { kind: "artifact", artifact: finalization });
  }

  /** Everything known at a notarized height above the finalized tip. */
  private sendNotarizedHeight(to: ReplicaId, h: Height): void {
    const pool = this.pool;
    const beacon = pool.beacons.get(h);
    if (beacon !== undefined) this.sendTo(to, { kind: "artifact", artifact: beacon });
    for (const [hash, proof] of pool.notarizations.get(h) ?? []) {
      const proposal = pool.proposals.get(h)?.get(hash);
      if (proposal !== undefined) this.sendTo(to, { kind: "artifact", artifact: proposal });
      this.sendTo(to, { kind: "artifact", artifact: proof });
    }
  }

  /**
   * Blocks of this replica's finalized chain with heights in [from, to], ascending, found by
   * walking parent links down from the finalized tip (heights finalized only implicitly, through
   * a finalized descendant, have no finalization of their own). Stops at a gap.
   */
  private finalizedChain(from: Height, to: Height): Block[] {
    const out: Block[] = [];
    let block = this.pool.finalizedBlock(this.pool.finalizedHeight);
    while (block !== undefined && block.height >= from) {
      if (block.height <= to) out.push(block);
      block = this.pool.blocks.get(block.parent);
    }
    return out.reverse();
  }

  private isHelperFor(peer: ReplicaId): boolean {
    const n = this.deps.membership.n;
    if (n <= STATUS_HELPERS + 1) return true;
    const epoch = Math.floor(this.env.now() / (this.deps.config.statusIntervalMs * 1000));
    const distance = (this.id - peer + n) % n;
    return (distance + epoch) % (n - 1) < STATUS_HELPERS;
  }

  private requestStateSyncIfBehind(): void {
    const cup = this.pool.latestCup.content;
    if (this.routing.expectedBatchHeight() > cup.height) return;
    if (this.delivery.chainReaches(this.routing.expectedBatchHeight())) return;
    const now = this.env.now();
    if (this.stateSyncRequestedAt !== undefined && now - this.stateSyncRequestedAt < REQUEST_RETRY_US) return;
    this.stateSyncRequestedAt = now;
    const n = this.deps.membership.n;
    const peer = replicaId((this.id + 1 + this.env.rng.below(n - 1)) % n);
    this.env.trace({ kind: "state-sync.request", detail: { height: cup.height, peer } });
    this.sendTo(peer, { kind: "state-request", height: cup.height });
  }

  // ---- the step --------------------------------------------------------------------------------------

  /** One context object per replica, its clock refreshed on each use (it is built very often). */
  private cachedContext: (ConsensusContext & { nowUs: TimeUs }) | undefined;

  private context(): ConsensusContext {
    if (this.cachedContext !== undefined) {
      this.cachedContext.nowUs = this.env.now();
      return this.cachedContext;
    }
    const routing = this.routing;
    const ingressPool = this.ingressPool;
    this.cachedContext = {
      self: this.id,
      config: this.deps.config,
      membership: this.deps.membership,
      pool: this.pool,
      signer: this.deps.signer,
      verifier: this.deps.verifier,
      ingressAuth: this.deps.ingressAuth,
      nowUs: this.env.now(),
      ingressCandidates: () => ingressPool.values(),
      ingressAlreadyFinalized: (id) => routing.ingressStatus(id) !== undefined,
      // A checkpoint still being written has no manifest root yet: the CUP share waits for it.
      stateHashAt: (h) => this.delivery.stateHashForConsensus(h),
      lastDeliveredHeight: () => height(routing.expectedBatchHeight() - 1),
      ...(routing.certifiedHashAt === undefined ? {} : { certifiedHeight: () => this.certification.latestCertification?.height ?? height(0) }),
      ...(this.xnet?.context() ?? {}),
      overBudget: () => this.overBudget(),
    };
    return this.cachedContext;
  }

  // ---- XNet (ReplicaXNet; these three are the harness's and tests' handles on it) ------------------

  /** Serves our certified stream to `destination` from `fromIndex` on, at the latest certified height. */
  serveXNet(destination: SubnetId, fromIndex: bigint): CertifiedSlice | undefined {
    return this.xnet?.serve(destination, fromIndex);
  }

  onXNetMessage(from: XNetPeer, message: XNetMessage): void {
    this.takeArrivedIngress();
    // A slice goes through onXNetSlice, the seam tests observe deliveries at.
    if (message.kind === "xnet-response") this.onXNetSlice(message.slice);
    else this.xnet?.onMessage(from, message);
  }

  /** Which streams to ask for and from where (the first index not inducted yet). */
  xnetRequests(): { readonly source: SubnetId; readonly fromIndex: bigint }[] {
    return this.xnet?.requests() ?? [];
  }

  /** A slice arrived from another subnet's replica. */
  onXNetSlice(slice: CertifiedSlice): void {
    this.takeArrivedIngress();
    this.xnet?.offer(slice);
  }

  private step(): void {
    assert(!this.stepping, "re-entrant replica step");
    this.stepping = true;
    this.stepStartedUs = this.env.now();
    try {
      for (let round = 0; round < 256; round++) {
        const ctx = this.context();
        const changes = this.behaviour.rewriteChanges(onStateChange(ctx), ctx);
        if (changes.length === 0) break;
        this.apply(changes);
        this.deliverBatches();
        if (this.overBudget()) {
          this.continueSoon();
          break;
        }
      }
      this.deliverBatches();
      this.armWakeTimer();
    } finally {
      this.stepping = false;
    }
    this.flush();
  }

  private overBudget(): boolean {
    return this.env.now() - this.stepStartedUs > STEP_BUDGET_US;
  }

  /** The step yields: what it sent so far goes out, and it goes on once the event loop had its turn. */
  private continueSoon(): void {
    if (this.continuing) return;
    this.continuing = true;
    this.env.setTimer(this.env.now(), CONTINUE_TIMER);
  }

  private apply(changes: readonly Change[]): void {
    const now = this.env.now();
    const logged: ConsensusArtifact[] = [];
    for (const change of changes) {
      switch (change.kind) {
        case "add":
          if (this.pool.hasValidated(change.artifact.id)) break;
          this.pool.addValidated(change.artifact, now);
          logged.push(change.artifact);
          if (SIGNED_BY_ITS_MAKER.has(change.artifact.type)) this.ownUnsynced = true;
          this.deps.observer.onArtifact?.(this.id, change.artifact, "own", now, this.pool);
          this.traceArtifact("add", change.artifact);
          this.gossip(change.artifact, true);
          break;
        case "validated":
          this.pool.addValidated(change.artifact, now);
          logged.push(change.artifact);
          this.deps.observer.onArtifact?.(this.id, change.artifact, "peer", now, this.pool);
          this.traceArtifact("validated", change.artifact);
          if (RELAYED.has(change.artifact.type)) this.gossip(change.artifact, false);
          break;
        case "invalid":
          this.pool.removeUnvalidated(change.artifact.id);
          this.env.trace({ kind: "artifact.invalid", detail: { type: change.artifact.type, height: artifactHeight(change.artifact), reason: change.reason } });
          break;
      }
    }
    this.poolLog.append(logged);
    this.stepWork += changes.length;
  }

  private traceArtifact(how: string, artifact: ConsensusArtifact): void {
    this.env.trace({ kind: `${artifact.type}.${how}`, detail: { height: artifactHeight(artifact), id: artifact.id.slice(0, 24) } });
  }

  /** Delivers finalized batches in height order (batch-delivery.ts); the pools are purged after a walk. */
  private deliverBatches(): void {
    if (this.delivery.deliver() !== undefined) this.purge();
  }

  /** A batch was delivered: its ingress leaves the pool; the trace and the observers hear of it. */
  private delivered(block: Block, stateHash: HashHex): void {
    this.forgetIngress(block);
    this.env.trace({ kind: "batch.delivered", detail: { height: block.height, block: block.hash.slice(0, 16), state: stateHash.slice(0, 16), ingress: block.ingress.length } });
    this.deps.observer.onBatchDelivered(this.id, block, stateHash, this.env.now());
    this.stepWork++;
  }

  private forgetIngress(block: Block): void {
    for (const message of block.ingress) this.ingressPool.delete(message.id);
  }

  private purgeExpiredIngress(): void {
    const now = this.env.now();
    for (const [id, message] of this.ingressPool) if (message.expiryUs < now) this.ingressPool.delete(id);
  }

  private purge(): void {
    const cupHeight = this.pool.latestCup.content.height;
    const bound = height(Math.max(0, Math.min(cupHeight, this.deliveredHeight) - MINIMUM_CHAIN_LENGTH));
    this.pool.purge(height(Math.min(this.pool.finalizedHeight, this.deliveredHeight)), bound);
    // A newer CUP: the log entries below what the pool still keeps can go (once per CUP).
    if (cupHeight > this.trimmedAtCup) {
      this.poolLog.trimBelow(bound);
      this.trimmedAtCup = cupHeight;
    }
  }

  private armWakeTimer(): void {
    const ctx = this.context();
    const candidates = [blockMakerReadyAtUs(ctx), notaryReadyAtUs(ctx), this.earliestWaitingProposalUs(ctx), this.delivery.nextChangeUs(ctx.nowUs)]
      .filter((t): t is TimeUs => t !== undefined && t > ctx.nowUs);
    if (candidates.length === 0) return;
    const at = Math.min(...candidates) as TimeUs;
    if (this.wakeTimer !== undefined) {
      if (this.wakeTimer.at <= at) return;
      this.env.cancelTimer(this.wakeTimer.handle);
    }
    this.wakeTimer = { handle: this.env.setTimer(at, "wake"), at };
  }

  /** A proposal waiting for its rank delay becomes valid at a known time: wake up then. */
  private earliestWaitingProposalUs(ctx: ConsensusContext): TimeUs | undefined {
    let earliest: number | undefined;
    for (const artifact of this.pool.unvalidated.values()) {
      if (artifact.type !== "proposal") continue;
      const start = this.pool.roundStartUs(artifact.block.height);
      if (start === undefined || validate(ctx, artifact).kind !== "wait") continue;
      const at = start + artifact.block.rank * this.deps.config.unitDelayMs * 1000;
      if (at > ctx.nowUs) earliest = earliest === undefined ? at : Math.min(earliest, at);
    }
    return earliest as TimeUs | undefined;
  }

  // ---- sending ----------------------------------------------------------------------------------

  private gossip(artifact: ConsensusArtifact, own: boolean): void {
    const item: WireItem =
      artifact.sizeBytes < PUSH_THRESHOLD_BYTES || !own && artifact.type !== "proposal"
        ? { kind: "artifact", artifact }
        : { kind: "advert", id: artifact.id, type: artifact.type, height: artifactHeight(artifact), sizeBytes: artifact.sizeBytes };
    this.broadcast(item);
  }

  private broadcast(item: WireItem): void {
    for (let peer = 0; peer < this.deps.membership.n; peer++) {
      if (peer !== this.id) this.sendTo(replicaId(peer), item);
    }
  }

  private sendTo(to: ReplicaId, item: WireItem): void {
    const queue = this.outbox.get(to);
    if (this.behaviour === HONEST) {
      // (The hot path: one array per peer per flush, not one per item.)
      if (queue === undefined) this.outbox.set(to, [item]);
      else queue.push(item);
      return;
    }
    const items = this.behaviour.filterOutgoing(to, item, this.context());
    if (items.length === 0) return;
    if (queue === undefined) this.outbox.set(to, [...items]);
    else queue.push(...items);
  }

  private flush(): void {
    if (this.stepping) return;
    // Persist before send: nothing this replica signed leaves it before it is on its disk, so a
    // restart can never sign a second, different artifact in its place.
    if (this.ownUnsynced && this.deps.config.canary !== "persist-after-send") {
      this.poolLog.sync();
      this.ownUnsynced = false;
    }
    const peers = [...this.outbox.keys()].sort((a, b) => a - b);
    for (const peer of peers) {
      const items = this.outbox.get(peer) ?? [];
      let sizeBytes = BUNDLE_OVERHEAD_BYTES;
      for (const item of items) sizeBytes += wireItemSize(item);
      this.env.send(peer, { items, sizeBytes });
    }
    this.outbox.clear();
  }
}

/**
 * Artifacts that carry a new signature of the replica that made them: what it must never sign
 * differently after a restart, so they are synced before they are sent. Aggregates it combines
 * from shares add no signature of its own and need no sync.
 */
const SIGNED_BY_ITS_MAKER: ReadonlySet<string> = new Set(["proposal", "notarization-share", "finalization-share", "beacon-share", "cup-share"]);

/** Artifacts a replica passes on after validating them (shares and aggregates are not relayed). */
const RELAYED: ReadonlySet<string> = new Set(["proposal", "equivocation-proof", "cup"]);
