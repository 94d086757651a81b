// One simulated subnet: n replicas, each with its own Env (virtual clock, simulated network,
// PRNG stream, disk, trace), the sim crypto keys and a genesis catch-up package. The harness
// drives it through `run`, `crash`, `restart` and `submitIngress`; replicas never see the harness.
import { assert } from "../assert.ts";
import {
  beacon,
  catchUpPackage,
  makeBlock,
  signedBeacon,
  signedCup,
  type CatchUpPackage,
} from "../consensus/artifacts.ts";
import { checkConsensusConfig, type ConsensusConfig } from "../consensus/config.ts";
import { simIngressAuth, type IngressAuth, type IngressMessage } from "../consensus/ingress.ts";
import { Membership } from "../consensus/membership.ts";
import { domainHash } from "../crypto/hash.ts";
import type { Signature, SubnetKeys } from "../crypto/interfaces.ts";
import { simSubnetKeys } from "../crypto/sim-backend.ts";
import { blsSubnetKeys } from "../crypto/bls-backend.ts";
import type { Bundle } from "../p2p/messages.ts";
import { wireItemLabel } from "../p2p/messages.ts";
import { decodeBundleShared, encodeBundle, roundTripIngress } from "../p2p/codec.ts";
import { defaultWireMode, type WireMode } from "../p2p/wire-mode.ts";
import { defaultFewerEvents, type FewerEvents } from "../sim/fewer-events.ts";
import { SimDisk, type CrashLoss } from "../sim/disk.ts";
import type { Env, TimerHandle, TraceEvent } from "../sim/env.ts";
import { EventLoop, type EventHandle } from "../sim/event-loop.ts";
import { SimNetwork, type NetworkConfig } from "../sim/network.ts";
import type { Rng } from "../sim/rng.ts";
import type { Trace } from "../sim/trace.ts";
import { faultsTolerated, height, replicaId, timeUs, type HashHex, type ReplicaId, type TimeUs } from "../types.ts";
import { HONEST, type BehaviourEnv, type ReplicaBehaviour } from "./behaviour.ts";
import { KvStateMachine, type KvBatchOutcome, type KvMachineOptions } from "./kv-state-machine.ts";
import type { ExecutionSharing } from "./shared-execution.ts";
import type { ExecutionTimeModel } from "./execution-time.ts";
import type { MessageRouting } from "./interfaces.ts";
import { Replica, type IngressSubmitResult, type ReplicaObserver } from "./replica.ts";
import { IngressInboxes, onlyIngress } from "./ingress-arrivals.ts";
import type { XNetClient } from "../routing/xnet.ts";
import type { XNetMessage, XNetPeer } from "./interfaces.ts";
import { certificationScheme, type CertificationScheme } from "../state/state-certification.ts";

export interface SubnetOptions {
  readonly n: number;
  readonly consensus: ConsensusConfig;
  readonly network: NetworkConfig;
  readonly rng: Rng;
  readonly trace: Trace;
  readonly observer: ReplicaObserver;
  readonly behaviourOf?: (id: ReplicaId, env: BehaviourEnv) => ReplicaBehaviour | undefined;
  /** Runs with the replica's kv state machine before its first batch (a custom hook: the replica then never shares batches). */
  readonly configureStateMachine?: (id: ReplicaId, machine: KvStateMachine) => void;
  /**
   * The key-value machines' handles on the subnet's shared batches (harness/replica/shared-execution.ts);
   * `mayShare` false: the replica only counts the batches it applies. Absent: nothing is shared or counted.
   */
  readonly kvSharing?: (id: ReplicaId, mayShare: boolean) => ExecutionSharing<KvBatchOutcome>;
  /**
   * Tests only: how a replica builds its key-value machine (default KvStateMachine.fromDisk) — a
   * subclass with a bug the lab does not know about. Unlike a fault, it does not keep the replica
   * from sharing: it is what the audit of shared batches must catch.
   */
  readonly makeKvStateMachine?: (id: ReplicaId, disk: SimDisk, options: KvMachineOptions) => KvStateMachine;
  /** The replicated state machine; default: the placeholder key-value store. */
  readonly makeStateMachine?: (id: ReplicaId, disk: SimDisk) => MessageRouting;
  /** Signature backend: the fast keyed-hash `sim` one (default) or real BLS12-381 + Ed25519. */
  readonly crypto?: "sim" | "bls";
  /** Extra processing delay for messages to a replica, in µs (a slow machine). */
  readonly processingDelayUs?: (id: ReplicaId, nowUs: TimeUs) => number;
  /** Multi-subnet runs: the event loop all subnets share (default: a loop of its own). */
  readonly loop?: EventLoop;
  /** Multi-subnet runs: added to replica indices in the trace, so every replica has its own number. */
  readonly traceOffset?: number;
  /** Multi-subnet runs: one user-signature scheme for all subnets (default: this subnet's own). */
  readonly ingressAuth?: IngressAuth;
  /** Multi-subnet runs: a fresh XNet client for each replica incarnation. */
  readonly xnetClient?: (id: ReplicaId) => XNetClient;
  /** Multi-subnet runs: carries a replica's XNet messages to replicas of other subnets (`Env.sendXNet`). */
  readonly xnetTransport?: (from: ReplicaId, to: XNetPeer, message: XNetMessage) => void;
  /** Multi-subnet runs: how often replicas ask the other subnets for their streams. */
  readonly xnetPollMs?: number;
  /** Whether each recipient gets the sender's objects or its own decoded copy (default: SUBNETLAB_WIRE). */
  readonly wire?: WireMode;
  /** Issue 13 item 3's event savings, on or off (default: SUBNETLAB_FEWER_EVENTS); results are the same either way. */
  readonly fewerEvents?: FewerEvents;
  /** Execution, hashing and checkpoints take simulated time (replica/execution-time.ts); absent: none. */
  readonly executionTime?: ExecutionTimeModel;
}

/**
 * What the simulated network carries: the sender's bundle, or the bytes it encodes to (wire mode
 * `roundtrip`, or a sender whose behaviour rewrites its bytes). `sizeBytes` is the bundle's model
 * size either way, so timings do not depend on the mode.
 */
interface Packet {
  readonly sizeBytes: number;
  readonly bundle?: Bundle;
  readonly bytes?: Uint8Array;
  /** Only ingress, from a sender that does not rewrite its bytes: queued, not an event (ingress-arrivals.ts). */
  readonly ingressOnly: boolean;
}

export type SubmitResult = IngressSubmitResult | { readonly accepted: false; readonly reason: "replica-down" };

export class SimSubnet {
  readonly loop: EventLoop;
  readonly network: SimNetwork<Packet>;
  readonly wire: WireMode;
  readonly membership: Membership;
  readonly keys: SubnetKeys;
  readonly ingressAuth: IngressAuth;
  readonly genesis: CatchUpPackage;
  private readonly replicas: (Replica | undefined)[];
  private readonly disks: SimDisk[];
  private readonly incarnations: number[];
  /** Per replica: what its next crash does to the writes it has not synced (storage faults). */
  private readonly crashLoss: CrashLoss[];
  private readonly netRng: Rng;
  /** Per replica: its behaviour's rewrite of the bytes it sends (a Byzantine sender of garbage). */
  private readonly wireRewrites: (ReplicaBehaviour["rewriteWire"] | undefined)[];
  /** Ingress-only bundles that reached each replica, taken by it at its next input. */
  private readonly inboxes: IngressInboxes<Packet>;
  /** Issue 13 item 3 on (default): ingress-only bundles are queued arrivals, not events (`SUBNETLAB_FEWER_EVENTS`). */
  private readonly queueIngress: boolean;
  private readonly fewerEvents: FewerEvents;

  constructor(private readonly options: SubnetOptions) {
    checkConsensusConfig(options.consensus);
    assert(options.n >= 1 && options.network.regions.length === options.n, "one region per replica");
    this.loop = options.loop ?? new EventLoop();
    this.membership = new Membership(options.n, faultsTolerated(options.n));
    this.keys = options.crypto === "bls" ? blsSubnetKeys(options.n, options.rng.fork("crypto")) : simSubnetKeys(options.n, options.rng.fork("crypto"));
    this.ingressAuth = options.ingressAuth ?? simIngressAuth(options.rng.fork("users").nextU32().toString(16));
    this.genesis = makeGenesis(this.keys, options.n);
    this.netRng = options.rng.fork("net");
    this.wire = options.wire ?? defaultWireMode();
    this.fewerEvents = options.fewerEvents ?? defaultFewerEvents();
    this.queueIngress = this.fewerEvents !== "off";
    this.inboxes = new IngressInboxes<Packet>(options.n, {
      open: (from, to, packet) => this.open(from, to, packet),
      traceDelivery: (from, to, bundle, atUs) => this.traceDelivery(from, to, bundle, atUs),
    });
    this.network = new SimNetwork<Packet>(
      this.loop,
      this.netRng,
      options.network,
      (from, to, packet) => this.deliver(from, to, packet),
      (kind, from, to, why) => options.trace.record(this.loop.now(), -1, { kind, detail: { from: this.traceId(from), to: this.traceId(to), why } }),
      (from, to, atUs, packet) => this.queueArrival(from, to, atUs, packet),
    );
    this.replicas = new Array<Replica | undefined>(options.n).fill(undefined);
    this.disks = Array.from({ length: options.n }, () => new SimDisk());
    this.incarnations = new Array<number>(options.n).fill(0);
    this.crashLoss = new Array<CrashLoss>(options.n).fill("none");
    this.wireRewrites = new Array<ReplicaBehaviour["rewriteWire"]>(options.n).fill(undefined);
  }

  get n(): number {
    return this.options.n;
  }

  private scheme: CertificationScheme | undefined;
  /** How this subnet's state certifications are signed and checked (both backends). */
  get certificationScheme(): CertificationScheme {
    return (this.scheme ??= certificationScheme(this.keys));
  }

  /** The replica's number in the trace (its index, plus the subnet's offset in multi-subnet runs). */
  traceId(id: ReplicaId): number {
    return (this.options.traceOffset ?? 0) + id;
  }

  start(): void {
    for (let i = 0; i < this.n; i++) this.boot(replicaId(i));
  }

  replica(id: ReplicaId): Replica | undefined {
    return this.replicas[id];
  }

  isUp(id: ReplicaId): boolean {
    return this.replicas[id] !== undefined;
  }

  run(untilUs: TimeUs, shouldStop?: () => boolean): boolean {
    return this.loop.runUntil(untilUs, shouldStop);
  }

  crash(id: ReplicaId): void {
    if (this.replicas[id] === undefined) return;
    this.replicas[id] = undefined;
    this.incarnations[id] = (this.incarnations[id] ?? 0) + 1;
    this.options.trace.record(this.loop.now(), this.traceId(id), { kind: "replica.crash" });
    // Ingress that reached it before the crash and that it had not taken yet: traced as delivered
    // (with its arrival time), and lost with the rest of its memory.
    this.inboxes.take(id, this.loop.now(), this.loop.currentSeq());
    const loss = this.crashLoss[id] ?? "none";
    this.crashLoss[id] = "none";
    const outcome = (this.disks[id] as SimDisk).crash(loss);
    if (loss === "none") return;
    this.options.trace.record(this.loop.now(), this.traceId(id), {
      kind: "fault.storage",
      malicious: true,
      detail: { effect: loss, pending: outcome.pending, lost: outcome.lost, ...(outcome.torn === undefined ? {} : { torn: outcome.torn.key, keptBytes: outcome.torn.keptBytes, ofBytes: outcome.torn.ofBytes }) },
    });
  }

  /** Storage fault: the replica's next crash loses (or tears) the writes it has not synced. */
  armCrashLoss(id: ReplicaId, loss: CrashLoss): void {
    this.crashLoss[id] = loss;
  }

  /**
   * Storage fault: flips a bit in the replica's newest checkpoint record (`checkpoint`) or in one
   * of its stored pages (`page`), picked by `salt` — or, with `all`, in every one of them. Each
   * flip is logged as a fault act; returns the keys hit.
   */
  corruptDisk(id: ReplicaId, what: "checkpoint" | "page", salt: string, all = false): string[] {
    const disk = this.disks[id] as SimDisk;
    const pick = (label: string, count: number): number => Number.parseInt(domainHash("storage-fault", `${salt}|${label}`).slice(0, 8), 16) % count;
    const keys = disk.keys(what === "checkpoint" ? "checkpoint/" : "pages/");
    const chosen = all ? keys : what === "checkpoint" ? keys.slice(-1) : keys.length === 0 ? [] : [keys[pick("key", keys.length)]!];
    const record = (detail: Record<string, string | number>): void =>
      this.options.trace.record(this.loop.now(), this.traceId(id), { kind: "fault.storage", malicious: true, detail: { effect: `corrupt-${what}`, ...detail } });
    if (chosen.length === 0) record({ key: "none" });
    const hit: string[] = [];
    for (const key of chosen) {
      const offset = disk.corrupt(key, (length) => pick(key, length));
      if (offset === undefined) continue;
      record({ key, offset });
      hit.push(key);
    }
    return hit;
  }

  /** The replica's disk (tests and dumps). */
  disk(id: ReplicaId): SimDisk {
    return this.disks[id] as SimDisk;
  }

  restart(id: ReplicaId): void {
    if (this.replicas[id] !== undefined) return;
    this.boot(id);
  }

  submitIngress(to: ReplicaId, message: IngressMessage): SubmitResult {
    const replica = this.replicas[to];
    if (replica === undefined) return { accepted: false, reason: "replica-down" };
    const result = replica.onIngress(this.wire === "roundtrip" ? roundTripIngress(message) : message);
    this.options.trace.record(this.loop.now(), this.traceId(to), {
      kind: "ingress.submit",
      detail: { id: message.id.slice(0, 16), result: result.accepted ? "accepted" : result.reason },
    });
    return result;
  }

  private boot(id: ReplicaId): void {
    const incarnation = this.incarnations[id] ?? 0;
    this.inboxes.discardBefore(id, this.loop.now(), this.loop.currentSeq());
    const env = this.makeEnv(id, incarnation);
    const behaviour = this.options.behaviourOf?.(id, {
      self: id,
      n: this.n,
      signer: this.keys.signerFor(id),
      now: () => this.loop.now(),
      log: (event) => this.options.trace.record(this.loop.now(), this.traceId(id), { ...event, malicious: true }),
    }) ?? HONEST;
    this.wireRewrites[id] = behaviour.rewriteWire;
    const disk = this.disks[id] as SimDisk;
    const replica = new Replica({
      env,
      config: this.options.consensus,
      membership: this.membership,
      signer: this.keys.signerFor(id),
      verifier: this.keys.verifier,
      ingressAuth: this.ingressAuth,
      genesis: this.genesis,
      observer: this.options.observer,
      behaviour,
      ...(this.options.xnetClient === undefined ? {} : { xnet: this.options.xnetClient(id) }),
      ...(this.options.xnetPollMs === undefined ? {} : { xnetPollMs: this.options.xnetPollMs }),
      idleSteps: this.fewerEvents === "on" ? "skip" : this.fewerEvents === "off" ? "run" : "probe",
      ...(this.options.executionTime === undefined ? {} : { executionTime: this.options.executionTime }),
      makeStateMachine: () => this.options.makeStateMachine?.(id, disk) ?? this.kvStateMachine(id, disk, behaviour),
    });
    this.replicas[id] = replica;
    replica.start();
  }

  /** The placeholder key-value machine of one replica incarnation, restored from its disk. */
  private kvStateMachine(id: ReplicaId, disk: SimDisk, behaviour: ReplicaBehaviour): KvStateMachine {
    const configure = this.options.configureStateMachine;
    const options: KvMachineOptions = {
      skipChecksums: this.options.consensus.canary === "skip-checksum",
      ...(behaviour.corruptor === undefined ? {} : { corruptor: behaviour.corruptor }),
      ...(this.options.kvSharing === undefined ? {} : { sharing: this.options.kvSharing(id, configure === undefined) }),
    };
    const machine = this.options.makeKvStateMachine?.(id, disk, options) ?? KvStateMachine.fromDisk(disk, options);
    configure?.(id, machine);
    return machine;
  }

  private makeEnv(id: ReplicaId, incarnation: number): Env<Bundle> {
    const loop = this.loop;
    const trace = this.options.trace;
    const live = (): boolean => this.incarnations[id] === incarnation && this.replicas[id] !== undefined;
    const handles = new Map<number, EventHandle>();
    let nextTimer = 0;
    return {
      self: id,
      now: () => loop.now(),
      send: (to, bundle) => {
        if (live()) this.network.send(id, to, this.pack(id, to, bundle));
      },
      ...(this.options.xnetTransport === undefined
        ? {}
        : {
            sendXNet: (to: XNetPeer, message: XNetMessage) => {
              if (live()) this.options.xnetTransport?.(id, to, message);
            },
          }),
      setTimer: (at, tag): TimerHandle => {
        const timer = { id: nextTimer++ };
        const handle = loop.schedule(at, () => {
          handles.delete(timer.id);
          const replica = this.replicas[id];
          if (!live() || replica === undefined) return;
          trace.record(loop.now(), this.traceId(id), { kind: "timer", detail: { tag } });
          replica.onTimer(tag);
        });
        handles.set(timer.id, handle);
        return timer;
      },
      cancelTimer: (timer) => {
        const handle = handles.get(timer.id);
        if (handle !== undefined) loop.cancel(handle);
        handles.delete(timer.id);
      },
      takeArrivals: () => (live() ? this.inboxes.take(id, loop.now(), loop.currentSeq()) : []),
      rng: this.options.rng.fork(`replica/${id}/incarnation/${incarnation}`),
      disk: this.disks[id] as SimDisk,
      trace: (event: TraceEvent) => trace.record(loop.now(), this.traceId(id), event),
    };
  }

  /** The bundle as the network carries it: encoded once, and rewritten if the sender's behaviour says so. */
  private pack(from: ReplicaId, to: ReplicaId, bundle: Bundle): Packet {
    const rewrite = this.wireRewrites[from];
    const ingressOnly = rewrite === undefined && onlyIngress(bundle);
    if (this.wire === "objects" && rewrite === undefined) return { sizeBytes: bundle.sizeBytes, bundle, ingressOnly };
    const bytes = encodeBundle(bundle);
    return { sizeBytes: bundle.sizeBytes, bytes: rewrite === undefined ? bytes : rewrite(to, bytes), ingressOnly };
  }

  /** The network's hand-over of an ingress-only packet: into the receiver's arrival queue (after any slow-machine delay). */
  private queueArrival(from: ReplicaId, to: ReplicaId, atUs: TimeUs, packet: Packet): boolean {
    if (!packet.ingressOnly || !this.queueIngress) return false;
    // (A slow machine's delay was applied when the packet arrived, and its event numbered then; a
    // queued packet is numbered when sent, so only ties at one µs under `slow` order differently.)
    const delayUs = this.options.processingDelayUs?.(to, atUs) ?? 0;
    this.inboxes.enqueue(from, to, timeUs(atUs + delayUs), this.loop.reserveSeq(), packet);
    return true;
  }

  private deliver(from: ReplicaId, to: ReplicaId, packet: Packet): void {
    const delayUs = this.options.processingDelayUs?.(to, this.loop.now()) ?? 0;
    if (delayUs > 0) {
      this.loop.after(delayUs, () => this.handOver(from, to, packet));
      return;
    }
    this.handOver(from, to, packet);
  }

  /** Each recipient decodes its own copy; bytes that do not decode are dropped and traced, as a real replica would. */
  private handOver(from: ReplicaId, to: ReplicaId, packet: Packet): void {
    const replica = this.replicas[to];
    if (replica === undefined) return;
    const bundle = this.open(from, to, packet);
    if (bundle === undefined) return;
    this.traceDelivery(from, to, bundle);
    replica.onMessage(from, bundle);
  }

  private open(from: ReplicaId, to: ReplicaId, packet: Packet): Bundle | undefined {
    if (packet.bytes === undefined) return packet.bundle;
    const decoded = decodeBundleShared(packet.bytes);
    if (decoded.ok) return decoded.value;
    this.options.trace.record(this.loop.now(), this.traceId(to), { kind: "wire.reject", detail: { from: this.traceId(from), bytes: packet.bytes.length, reason: decoded.reason.slice(0, 120) } });
    return undefined;
  }

  /** A queued (ingress-only) bundle is traced when its receiver takes it, with the time it arrived (`at`). */
  private traceDelivery(from: ReplicaId, to: ReplicaId, bundle: Bundle, queuedAtUs?: TimeUs): void {
    const first = bundle.items[0] === undefined ? "" : wireItemLabel(bundle.items[0]);
    const from_ = this.traceId(from);
    const detail: TraceEvent["detail"] = queuedAtUs === undefined
      ? { from: from_, items: bundle.items.length, bytes: bundle.sizeBytes, first }
      : { from: from_, items: bundle.items.length, bytes: bundle.sizeBytes, first, at: queuedAtUs };
    this.options.trace.record(this.loop.now(), this.traceId(to), { kind: "deliver", detail });
  }
}

/** Genesis: a summary block at height 0, its beacon and a CUP, signed by the whole subnet. */
export function makeGenesis(keys: SubnetKeys, n: number): CatchUpPackage {
  const genesisBlock = makeBlock({
    parent: domainHash("ic-genesis", "parent") as HashHex,
    height: height(0),
    rank: 0,
    maker: replicaId(0),
    context: { timeUs: timeUs(0) },
    isSummary: true,
    ingress: [],
  });
  const parent = domainHash("ic-genesis", "beacon") as HashHex;
  const all = (sign: (i: ReplicaId) => Signature): Map<ReplicaId, Signature> =>
    new Map(Array.from({ length: n }, (_, i) => [replicaId(i), sign(replicaId(i))] as const));
  const beaconMessage = signedBeacon(height(0), parent);
  const beaconSignature = keys.verifier.combineThreshold("low", beaconMessage, all((i) => keys.signerFor(i).signThresholdShare("low", beaconMessage)));
  assert(beaconSignature !== undefined, "genesis beacon");
  const content = { height: height(0), block: genesisBlock, beacon: beacon(height(0), parent, beaconSignature), stateHash: domainHash("ic-genesis", "state") as HashHex };
  const cupMessage = signedCup(content);
  const cupSignature = keys.verifier.combineThreshold("high", cupMessage, all((i) => keys.signerFor(i).signThresholdShare("high", cupMessage)));
  assert(cupSignature !== undefined, "genesis CUP");
  return catchUpPackage(content, cupSignature);
}
