// XNet between replica processes (issue 12 item 5, `subnetlab up --nodes 4,7`): what `SimIC` does
// for the simulator — carry `Env.sendXNet` messages between replicas of different subnets — over
// TCP. A replica's XNet peers are the replicas of every other subnet, addressed by (subnet,
// replica). Underneath is one more `TcpTransport` per replica (its own listening port, separate from
// the subnet's P2P port), whose peer keys are cluster-wide replica numbers: subnets in the
// cluster's order, replicas in order within each (s0-r0 = 0, …, s1-r0 = n0, …), the numbering the
// simulator's XNet network uses. Every directed link goes through its own proxy (cluster.ts
// `xnetProxyName`), so disabling a subnet pair's proxies cuts XNet between them and nothing else.
//
// Frames carry the same canonical encoding the simulator round-trips (`encodeXNetMessage`,
// SUBNETLAB_WIRE=roundtrip); a frame that does not decode is dropped and reported, as the
// simulator traces `xnet.wire-reject`.
import { decodeXNetMessage, encodeXNetMessage } from "../p2p/codec.ts";
import type { XNetMessage, XNetPeer } from "../replica/interfaces.ts";
import type { SubnetId } from "../routing/registry.ts";
import type { Env } from "../sim/env.ts";
import type { Rng } from "../sim/rng.ts";
import { replicaId, type ReplicaId } from "../types.ts";
import { TcpTransport, type TransportStats } from "./tcp-transport.ts";

export interface XNetSubnet {
  readonly id: SubnetId;
  /** Replicas of the subnet. */
  readonly n: number;
}

export interface XNetTransportOptions {
  /** Every subnet of the cluster, in the cluster's order (this fixes the cluster-wide numbering). */
  readonly subnets: readonly XNetSubnet[];
  readonly self: XNetPeer;
  /** Draws the reconnect backoff's jitter. */
  readonly rng: Rng;
  readonly log?: (line: string) => void;
}

export type XNetHandler = (from: XNetPeer, message: XNetMessage) => void;
/** A frame that is not an XNet message: who sent it and why it was refused. */
export type XNetRejectHandler = (from: XNetPeer, reason: string) => void;

/** Both ends of an XNet link must name the same network (the hello checks it). */
export const XNET_NETWORK = "subnetlab-xnet";

/** Cluster-wide replica numbers of (subnet, replica) pairs and back. */
export class XNetNumbering {
  private readonly offsets: readonly number[];

  constructor(readonly subnets: readonly XNetSubnet[]) {
    const offsets: number[] = [];
    let total = 0;
    for (const s of subnets) {
      offsets.push(total);
      total += s.n;
    }
    this.offsets = offsets;
  }

  /** The number of a replica; undefined for one the cluster does not have. */
  numberOf(peer: XNetPeer): ReplicaId | undefined {
    const k = this.subnets.findIndex((s) => s.id === peer.subnet);
    const subnet = this.subnets[k];
    if (subnet === undefined || !Number.isInteger(peer.replica) || peer.replica < 0 || peer.replica >= subnet.n) return undefined;
    return replicaId((this.offsets[k] ?? 0) + peer.replica);
  }

  peerOf(number: ReplicaId): XNetPeer | undefined {
    for (let k = this.subnets.length - 1; k >= 0; k--) {
      const offset = this.offsets[k] ?? 0;
      const subnet = this.subnets[k];
      if (subnet !== undefined && number >= offset) return number - offset < subnet.n ? { subnet: subnet.id, replica: replicaId(number - offset) } : undefined;
    }
    return undefined;
  }

  /** Every replica of the subnets other than `subnet`. */
  othersOf(subnet: SubnetId): XNetPeer[] {
    return this.subnets.filter((s) => s.id !== subnet).flatMap((s) => Array.from({ length: s.n }, (_, i) => ({ subnet: s.id, replica: replicaId(i) })));
  }
}

export class XNetTransport {
  private readonly numbering: XNetNumbering;
  private readonly tcp: TcpTransport;
  private handler: XNetHandler | undefined;
  private onReject: XNetRejectHandler | undefined;
  private rejected = 0;

  constructor(private readonly options: XNetTransportOptions) {
    this.numbering = new XNetNumbering(options.subnets);
    const self = this.numbering.numberOf(options.self);
    if (self === undefined) throw new RangeError(`XNet: ${options.self.subnet}/r${options.self.replica} is not a replica of the cluster`);
    this.tcp = new TcpTransport({
      self,
      network: XNET_NETWORK,
      listenPort: 0,
      peers: this.numbering.othersOf(options.self.subnet).map((peer) => ({ id: this.numbering.numberOf(peer) as ReplicaId })),
      rng: options.rng,
      onFrame: (from, bytes) => this.receive(from, bytes),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
  }

  /** Who gets the decoded messages, and who hears of frames that were no XNet message. */
  setHandlers(handler: XNetHandler, onReject?: XNetRejectHandler): void {
    this.handler = handler;
    this.onReject = onReject;
  }

  /** Listens (on a free port) and dials the peers whose addresses are known; resolves with the port. */
  start(): Promise<number> {
    return this.tcp.start();
  }

  /** Where to reach a peer: its proxy's listen address (`host:port`). */
  setPeerAddress(peer: XNetPeer, address: string): void {
    const number = this.numbering.numberOf(peer);
    if (number === undefined || peer.subnet === this.options.self.subnet) throw new RangeError(`XNet: ${peer.subnet}/r${peer.replica} is not a replica of another subnet`);
    this.tcp.setPeerAddress(number, address);
  }

  /** `Env.sendXNet`: a message to a replica of another subnet. A peer the cluster does not have gets nothing (a Byzantine replica may address anyone). */
  send(to: XNetPeer, message: XNetMessage): void {
    const number = this.numbering.numberOf(to);
    if (number === undefined || to.subnet === this.options.self.subnet) return;
    this.tcp.send(number, encodeXNetMessage(message));
  }

  stats(): TransportStats & { readonly rejectedFrames: number } {
    return { ...this.tcp.stats(), rejectedFrames: this.rejected };
  }

  close(): Promise<void> {
    return this.tcp.close();
  }

  private receive(from: ReplicaId, bytes: Uint8Array): void {
    const peer = this.numbering.peerOf(from);
    // The TCP hello already admitted only replicas of other subnets.
    if (peer === undefined) return;
    const decoded = decodeXNetMessage(bytes);
    if (!decoded.ok) {
      this.rejected++;
      this.onReject?.(peer, decoded.reason);
      return;
    }
    this.handler?.(peer, decoded.value);
  }
}

/** The Env a replica of a multi-subnet cluster gets: `env` plus `sendXNet` over `xnet`. */
export function withXNet<M>(env: Env<M>, xnet: XNetTransport): Env<M> {
  return {
    self: env.self,
    now: () => env.now(),
    send: (to, message) => env.send(to, message),
    sendXNet: (to, message) => xnet.send(to, message),
    setTimer: (at, tag) => env.setTimer(at, tag),
    cancelTimer: (handle) => env.cancelTimer(handle),
    rng: env.rng,
    disk: env.disk,
    trace: (event) => env.trace(event),
  };
}
