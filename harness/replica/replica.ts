// A replica: consensus + gossip + ingress pool + message routing, driven only by `onMessage`,
// `onTimer` and `onIngress` and acting only through its Env (DESIGN.md rule 1). One "step" runs
// the consensus components to a fixed point, delivers finalized batches, purges, arms the next
// wake-up timer and flushes at most one bundle per peer.
import { assert } from "../assert.ts";
import type { Block, CatchUpPackage, ConsensusArtifact } from "../consensus/artifacts.ts";
import { artifactHeight } from "../consensus/artifacts.ts";
import { MINIMUM_CHAIN_LENGTH, type ConsensusConfig } from "../consensus/config.ts";
import { onStateChange, type Change, type ConsensusContext } from "../consensus/consensus.ts";
import type { IngressAuth, IngressMessage } from "../consensus/ingress.ts";
import type { Membership } from "../consensus/membership.ts";
import type { ConsensusPool } from "../consensus/pool.ts";
import type { NodeSigner, SubnetVerifier } from "../crypto/interfaces.ts";
import type { Bundle, WireItem } from "../p2p/messages.ts";
import type { Env } from "../sim/env.ts";
import { height, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import { HONEST, type ReplicaBehaviour } from "./behaviour.ts";
import type { CanisterInfo, IngressStatus, MessageRouting, ReplicaApi, ReplicaStatus, XNetMessage, XNetPeer, IngressSubmitResult } from "./interfaces.ts";
import type { CanisterId, PrincipalText, Response } from "../execution/interfaces.ts";
import type { CertifiedSlice, XNetClient } from "../routing/xnet.ts";
import { DEFAULT_XNET_POLL_MS, ReplicaXNet, XNET_POLL_TIMER } from "./replica-xnet.ts";
import type { SubnetId } from "../routing/registry.ts";
import type { Certification, CertificationShare } from "./certification.ts";
import { PoolLog } from "./pool-log.ts";
import { PoolPersistence } from "./pool-persistence.ts";
import { takeIngressArrivals } from "./ingress-arrivals.ts";
import { assertNoIdleWork, feedsConsensus, type IdleSteps } from "./idle-steps.ts";
import { BatchDelivery } from "./batch-delivery.ts";
import type { ExecutionTimeModel } from "./execution-time.ts";
import { Outbox } from "./outbox.ts";
import { IngressPool } from "./ingress-pool.ts";
import { CatchUp } from "./catch-up.ts";
import { StateSync } from "./state-sync.ts";
import { ArtifactRequests } from "./artifact-requests.ts";
import { WakeTimer, WAKE_TIMER } from "./wake-timer.ts";
import { Certifier } from "./certifier.ts";

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

/**
 * How long one step may run before it yields and continues on a timer at once. Only real mode
 * sees time pass within a step (in the simulator it stands still until the next event), so
 * simulations never yield. A replica catching up on a loaded machine otherwise verified and
 * executed for seconds in one go while its handshakes, status timer and HTTP requests waited.
 */
export const STEP_BUDGET_US = 100_000;
const CONTINUE_TIMER = "continue";
const STATUS_TIMER = "status";

/**
 * The step function: it owns the pools and the state machine and decides what runs when; each
 * job is a module of its own — sending (outbox.ts), the ingress pool (ingress-pool.ts), fetching
 * advertised artifacts (artifact-requests.ts), status and catch-up (catch-up.ts), state sync
 * (state-sync.ts), certification (certifier.ts), the wake-up timer (wake-timer.ts), batch
 * delivery (batch-delivery.ts), the pool's log on disk (pool-log.ts, synced and trimmed by
 * pool-persistence.ts) and XNet (replica-xnet.ts).
 */
export class Replica implements ReplicaApi {
  readonly id: ReplicaId;
  private readonly env: Env<Bundle>;
  private readonly pool: ConsensusPool;
  private readonly routing: MessageRouting;
  private readonly behaviour: ReplicaBehaviour;
  private readonly ingressPool: IngressPool;
  private readonly outbox: Outbox;
  private readonly artifactRequests: ArtifactRequests;
  private readonly catchUp: CatchUp;
  private readonly stateSync: StateSync;
  private readonly wakeTimer: WakeTimer;
  /** Artifacts applied and batches delivered so far (the idle-step probe's measure of work). */
  private stepWork = 0;
  private stepping = false;
  /** When the running step started (its budget: STEP_BUDGET_US). */
  private stepStartedUs = 0;
  /** A step that ran out of budget left work for a timer armed at once. */
  private continuing = false;
  private readonly certifier: Certifier;
  /** When the validated pool's write-ahead log on this replica's disk is synced and trimmed. */
  private readonly persistence: PoolPersistence;
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
    this.persistence = new PoolPersistence(opened.log, this.pool.latestCup.content.height, deps.config.canary === "persist-after-send");
    this.routing = deps.makeStateMachine();
    this.recoveryNotes = [...opened.notes, ...(this.routing.recovery ?? [])];
    const routing = this.routing;
    const n = deps.membership.n;
    this.outbox = new Outbox({ env: deps.env, n, behaviour: this.behaviour, context: () => this.context() });
    this.ingressPool = new IngressPool({
      ingressAuth: deps.ingressAuth,
      capacity: deps.ingressPoolCapacity,
      alreadyFinalized: (id) => routing.ingressStatus(id) !== undefined,
    });
    this.artifactRequests = new ArtifactRequests(deps.env, this.pool, this.outbox);
    this.delivery = new BatchDelivery({
      env: deps.env,
      pool: this.pool,
      routing,
      canary: deps.config.canary,
      xnet: deps.xnet,
      executionTime: deps.executionTime,
      restartSalt: opened.restarted && deps.config.canary === "state-hash-after-restart" ? `restarted at ${deps.env.now()}` : undefined,
      onDelivered: (block, stateHash) => this.delivered(block, stateHash),
      onFork: (lastExecuted, executed, parent) => {
        this.env.trace({ kind: "consensus.fork-detected", detail: { height: lastExecuted + 1, parent: parent.slice(0, 16), delivered: executed.slice(0, 16) } });
        this.deps.observer.onForkDetected?.(this.id, lastExecuted, executed, parent, this.env.now());
      },
      certify: (h) => this.certifier.certifyHeight(h),
      yieldIfOverBudget: () => {
        if (!this.overBudget()) return false;
        this.continueSoon();
        return true;
      },
    });
    this.certifier = new Certifier({
      env: deps.env,
      signer: deps.signer,
      verifier: deps.verifier,
      routing,
      outbox: this.outbox,
      observer: deps.observer,
      ownHashAt: (h) => this.delivery.certifiedHashAt(h),
      unchecked: deps.config.canary === "certification-unchecked",
    });
    this.catchUp = new CatchUp({
      env: deps.env,
      n,
      statusIntervalMs: deps.config.statusIntervalMs,
      pool: this.pool,
      outbox: this.outbox,
      latestCertification: () => this.certifier.latestCertification,
      certifies: routing.certifiedHashAt !== undefined,
    });
    this.stateSync = new StateSync({
      env: deps.env,
      n,
      pool: this.pool,
      routing,
      delivery: this.delivery,
      outbox: this.outbox,
      forgetIngress: (block) => this.ingressPool.forget(block),
      onSynced: (h) => this.deps.observer.onStateSynced(this.id, h, this.env.now()),
    });
    this.wakeTimer = new WakeTimer({
      env: deps.env,
      pool: this.pool,
      unitDelayMs: deps.config.unitDelayMs,
      nextExecutionChangeUs: (nowUs) => this.delivery.nextChangeUs(nowUs),
    });
    this.xnet =
      deps.xnet === undefined
        ? undefined
        : new ReplicaXNet({
            env: deps.env,
            client: deps.xnet,
            pollMs: deps.xnetPollMs ?? DEFAULT_XNET_POLL_MS,
            routing,
            pool: this.pool,
            behaviour: this.behaviour,
            latestCertification: () => this.certifier.latestCertification,
          });
  }

  start(): void {
    this.xnet?.start();
    this.env.trace({ kind: "replica.start", detail: { finalized: this.pool.finalizedHeight, expected: this.routing.expectedBatchHeight() } });
    // What the restart found torn or corrupt on its disk and passed over (it recovers from older
    // checkpoints, the log's valid prefix, and its peers).
    for (const note of this.recoveryNotes) this.env.trace({ kind: "storage.recovered", detail: { what: note } });
    this.env.setTimer(this.env.now(), STATUS_TIMER);
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
    return this.certifier.latestCertification;
  }

  // ---- reads (ReplicaReads: the HTTP interface, the runners) -----------------------------------------

  status(): ReplicaStatus {
    const certified = this.certifier.latestCertification?.height;
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
    return this.certifier.certificationAt(h);
  }

  // ---- inputs -------------------------------------------------------------------------------------

  /**
   * Admits the ingress bundles the simulator queued for this replica up to now (ingress-arrivals.ts),
   * each at its arrival time. Every input (and a read of the pool's size) starts with it.
   */
  private takeArrivedIngress(): void {
    takeIngressArrivals(this.env, (message, atUs) => this.ingressPool.admit(message, atUs));
  }

  onIngress(message: IngressMessage): IngressSubmitResult {
    this.takeArrivedIngress();
    // The ingress filter (canister exists and runs, inspect_message accepts) is the receiving
    // replica's alone, as on the IC: peers do not re-run it on gossiped messages.
    const filtered = this.ingressPool.has(message.id) ? undefined : this.routing.filterIngress?.(message);
    if (filtered !== undefined) return { accepted: false, reason: filtered.reason, rejection: filtered };
    const problem = this.ingressPool.admit(message, this.env.now());
    if (problem !== undefined) return { accepted: false, reason: problem };
    this.outbox.broadcast({ kind: "ingress", message });
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
    if (this.pool.finalizedHeight > finalizedBefore && this.catchUp.askForMoreChain(from)) this.flush();
  }

  /** Probe mode (idle-steps.ts): before an input, a step must find nothing to do unless the wake-up is due. */
  private probeWakeTimers(input: string): void {
    if (this.deps.idleSteps !== "probe" || this.stepping) return;
    const workBefore = this.stepWork;
    this.step();
    assertNoIdleWork({ work: this.stepWork - workBefore, nowUs: this.env.now(), earliestTimerUs: this.wakeTimer.at, replica: this.id, input });
  }

  onTimer(tag: string): void {
    this.takeArrivedIngress();
    this.probeWakeTimers(`timer ${tag}`);
    if (tag === XNET_POLL_TIMER) {
      // Asking for streams changes nothing consensus reacts to: no step.
      this.xnet?.onPollTimer();
      return;
    }
    if (tag === STATUS_TIMER) {
      // Group commit: what was validated from peers becomes durable at least once per interval.
      this.persistence.groupCommit();
      this.onStatusTick();
      this.env.setTimer((this.env.now() + this.deps.config.statusIntervalMs * 1000) as TimeUs, STATUS_TIMER);
    }
    if (tag === WAKE_TIMER) this.wakeTimer.fired();
    if (tag === CONTINUE_TIMER) this.continuing = false;
    this.step();
  }

  /** The status tick's jobs, in this order (their sends are part of the trace). */
  private onStatusTick(): void {
    this.catchUp.broadcastStatus();
    this.ingressPool.purgeExpired(this.env.now());
    this.artifactRequests.forgetStale();
    this.catchUp.retransmitIfStalled();
    this.stateSync.requestIfBehind();
  }

  // ---- receiving --------------------------------------------------------------------------------

  private receive(from: ReplicaId, item: WireItem): void {
    switch (item.kind) {
      case "artifact":
        this.artifactRequests.arrived(item.artifact.id);
        if (!this.pool.has(item.artifact.id)) this.pool.addUnvalidated(item.artifact);
        return;
      case "advert":
        this.artifactRequests.onAdvert(from, item.id, item.height);
        return;
      case "request":
        this.artifactRequests.onRequest(from, item.id, item.height);
        return;
      case "ingress":
        this.ingressPool.admit(item.message, this.env.now());
        return;
      case "status":
        this.catchUp.onStatus(from, item.status);
        return;
      case "state-request":
        this.stateSync.onRequest(from, item.height);
        return;
      case "state-response":
        this.stateSync.onResponse(item.snapshot);
        return;
      case "certification-share":
        this.certifier.onShare(item.share);
        return;
      case "certification":
        this.certifier.onPeerCertification(item.certification);
        return;
    }
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
      ...(routing.certifiedHashAt === undefined ? {} : { certifiedHeight: () => this.certifier.latestCertification?.height ?? height(0) }),
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
      this.wakeTimer.arm(this.context());
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
          this.persistence.madeOwn(change.artifact);
          this.deps.observer.onArtifact?.(this.id, change.artifact, "own", now, this.pool);
          this.traceArtifact("add", change.artifact);
          this.outbox.gossip(change.artifact, true);
          break;
        case "validated":
          this.pool.addValidated(change.artifact, now);
          logged.push(change.artifact);
          this.deps.observer.onArtifact?.(this.id, change.artifact, "peer", now, this.pool);
          this.traceArtifact("validated", change.artifact);
          if (RELAYED.has(change.artifact.type)) this.outbox.gossip(change.artifact, false);
          break;
        case "invalid":
          this.pool.removeUnvalidated(change.artifact.id);
          this.env.trace({ kind: "artifact.invalid", detail: { type: change.artifact.type, height: artifactHeight(change.artifact), reason: change.reason } });
          break;
      }
    }
    this.persistence.append(logged);
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
    this.ingressPool.forget(block);
    this.env.trace({ kind: "batch.delivered", detail: { height: block.height, block: block.hash.slice(0, 16), state: stateHash.slice(0, 16), ingress: block.ingress.length } });
    this.deps.observer.onBatchDelivered(this.id, block, stateHash, this.env.now());
    this.stepWork++;
  }

  private purge(): void {
    const cupHeight = this.pool.latestCup.content.height;
    const bound = height(Math.max(0, Math.min(cupHeight, this.deliveredHeight) - MINIMUM_CHAIN_LENGTH));
    this.pool.purge(height(Math.min(this.pool.finalizedHeight, this.deliveredHeight)), bound);
    this.persistence.purged(cupHeight, bound);
  }

  /** Sends what the step (or input) queued, unless a step is still running (it flushes at its end). */
  private flush(): void {
    if (this.stepping) return;
    // Persist before send: nothing this replica signed leaves it before it is on its disk, so a
    // restart can never sign a second, different artifact in its place.
    this.persistence.syncBeforeSend();
    this.outbox.flush();
  }
}

/** Artifacts a replica passes on after validating them (shares and aggregates are not relayed). */
const RELAYED: ReadonlySet<string> = new Set(["proposal", "equivocation-proof", "cup"]);
