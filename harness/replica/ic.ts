// Several subnets on one virtual clock: the paper's "One Internet Computer" (Figure 2). Each subnet
// is a SimSubnet with its own replicas, keys and consensus network; they share the event loop and
// the trace, and talk to each other only through XNet — replicas of the destination subnet pull
// certified stream slices from replicas of the source subnet over a separate simulated network
// whose links can be cut between subnets (a partition) and healed.
import { assert } from "../assert.ts";
import { simIngressAuth, type IngressAuth } from "../consensus/ingress.ts";
import type { SubnetVerifier } from "../crypto/interfaces.ts";
import { EventLoop } from "../sim/event-loop.ts";
import { partitionSelectors, SimNetwork, REGIONS, DEFAULT_LATENCY_MS, type Region } from "../sim/network.ts";
import type { Rng } from "../sim/rng.ts";
import type { Trace } from "../sim/trace.ts";
import { replicaId, type ReplicaId, type TimeUs } from "../types.ts";
import { Registry, type SubnetId, type SubnetRecord } from "../routing/registry.ts";
import { XNetClient } from "../routing/xnet.ts";
import type { XNetMessage, XNetPeer } from "./interfaces.ts";
import { SimSubnet, type SubnetOptions } from "./subnet.ts";
import { decodeXNetMessage, encodeXNetMessage } from "../p2p/codec.ts";
import { defaultWireMode, type WireMode } from "../p2p/wire-mode.ts";

export { DEFAULT_XNET_POLL_MS } from "./replica.ts";
const XNET_REQUEST_BYTES = 96;

/**
 * An XNet message on the simulated network between subnets, with its size for the bandwidth model:
 * the message, or (wire mode `roundtrip`) its bytes, which each delivery decodes into its own copy.
 */
interface XNetEnvelope {
  readonly from: XNetPeer;
  readonly message?: XNetMessage;
  readonly bytes?: Uint8Array;
  readonly sizeBytes: number;
}

export interface ICSubnetOptions extends Omit<SubnetOptions, "loop" | "traceOffset" | "xnetClient" | "xnetTransport" | "xnetPollMs" | "rng" | "trace" | "ingressAuth"> {
  readonly name: string;
}

export interface ICOptions {
  readonly subnets: readonly ICSubnetOptions[];
  readonly rng: Rng;
  readonly trace: Trace;
  readonly xnetPollMs?: number;
  /** Whether recipients get the sender's objects or their own decoded copies (default: SUBNETLAB_WIRE); applies to every subnet. */
  readonly wire?: WireMode;
}

export class SimIC {
  readonly loop = new EventLoop();
  readonly registry: Registry;
  readonly subnets: readonly SimSubnet[];
  /** XNet links between all replicas of all subnets, indexed by global replica number. */
  readonly xnet: SimNetwork<XNetEnvelope>;
  readonly wire: WireMode;
  private readonly offsets: readonly number[];
  private readonly rng: Rng;
  /** Users sign once for the whole IC (one key per user, whichever subnet they call). */
  readonly ingressAuth: IngressAuth;

  constructor(private readonly options: ICOptions) {
    assert(options.subnets.length >= 1, "an IC needs at least one subnet");
    this.registry = Registry.of(options.subnets.map((s) => ({ name: s.name, size: s.n })));
    this.rng = options.rng.fork("xnet");
    this.wire = options.wire ?? defaultWireMode();
    this.ingressAuth = simIngressAuth(options.rng.fork("users").nextU32().toString(16));
    const offsets: number[] = [];
    let total = 0;
    for (const s of options.subnets) {
      offsets.push(total);
      total += s.n;
    }
    this.offsets = offsets;
    const verifierOf = (id: SubnetId): SubnetVerifier | undefined => this.subnetById(id)?.keys.verifier;
    this.subnets = options.subnets.map((s, k) => {
      const record = this.registry.subnets[k] as SubnetRecord;
      return new SimSubnet({
        ...s,
        ...(options.wire === undefined ? {} : { wire: options.wire }),
        rng: options.rng.fork(`subnet/${s.name}`),
        trace: options.trace,
        loop: this.loop,
        ingressAuth: this.ingressAuth,
        traceOffset: offsets[k] ?? 0,
        xnetClient: () => new XNetClient(record.id, this.registry, verifierOf, s.consensus.canary === "xnet-slice-signature-unchecked"),
        xnetTransport: (from, to, message) => this.sendXNet({ subnet: record.id, replica: from }, to, message),
        ...(options.xnetPollMs === undefined ? {} : { xnetPollMs: options.xnetPollMs }),
      });
    });
    const regions: Region[] = [];
    for (const s of options.subnets) for (let i = 0; i < s.n; i++) regions.push(REGIONS[i % REGIONS.length] as Region);
    this.xnet = new SimNetwork<XNetEnvelope>(
      this.loop,
      this.rng.fork("net"),
      { regions, latencyMs: DEFAULT_LATENCY_MS, jitterPercent: 20, bandwidthMbps: 1000 },
      (_from, to, envelope) => this.deliverXNet(to, envelope),
      (kind, from, to, why) => options.trace.record(this.loop.now(), -1, { kind: `xnet.${kind}`, detail: { from, to, why } }),
    );
  }

  start(): void {
    for (const subnet of this.subnets) subnet.start();
  }

  run(untilUs: TimeUs, shouldStop?: () => boolean): boolean {
    return this.loop.runUntil(untilUs, shouldStop);
  }

  /** A subnet's certification public key (DER for BLS; a fingerprint for the sim backend). */
  publicKeyDerOf(id: SubnetId): Uint8Array | undefined {
    return this.subnetById(id)?.certificationScheme.subnetPublicKeyDer;
  }

  subnet(name: string): SimSubnet {
    const k = this.options.subnets.findIndex((s) => s.name === name);
    assert(k >= 0, `no subnet named ${name}`);
    return this.subnets[k] as SimSubnet;
  }

  record(name: string): SubnetRecord {
    const r = this.registry.byName(name);
    assert(r !== undefined, `no subnet named ${name}`);
    return r;
  }

  /** Global replica numbers (trace, XNet network) of a subnet's replicas. */
  globalIds(name: string): ReplicaId[] {
    const k = this.options.subnets.findIndex((s) => s.name === name);
    assert(k >= 0, `no subnet named ${name}`);
    return Array.from({ length: this.options.subnets[k]!.n }, (_, i) => replicaId((this.offsets[k] ?? 0) + i));
  }

  /** Cuts every XNet link between two groups of subnets (both directions) until `heal(id)`. */
  partitionSubnets(id: string, groups: readonly (readonly string[])[]): void {
    const members = groups.map((g) => g.flatMap((name) => this.globalIds(name)));
    partitionSelectors(members).forEach((links, i) => this.xnet.addCondition({ id: `${id}/${i}`, links, effect: { kind: "cut" } }));
    this.options.trace.record(this.loop.now(), -1, { kind: "fault.xnet-partition", detail: { id, groups: groups.map((g) => g.join("+")).join("|") } });
  }

  heal(id: string): void {
    for (const c of this.xnet.activeConditions()) if (c.id.startsWith(`${id}/`)) this.xnet.removeCondition(c.id);
    this.options.trace.record(this.loop.now(), -1, { kind: "fault.xnet-heal", detail: { id } });
  }

  // ---- XNet transport ----------------------------------------------------------------------------

  private subnetById(id: SubnetId): SimSubnet | undefined {
    const k = this.registry.subnets.findIndex((s) => s.id === id);
    return k < 0 ? undefined : this.subnets[k];
  }

  private locate(global: number): { subnet: SimSubnet; k: number; local: ReplicaId } {
    let k = this.offsets.length - 1;
    while (k > 0 && (this.offsets[k] ?? 0) > global) k--;
    return { subnet: this.subnets[k] as SimSubnet, k, local: replicaId(global - (this.offsets[k] ?? 0)) };
  }

  /** Global replica number of a subnet's replica (the XNet network's node). */
  private globalOf(peer: XNetPeer): ReplicaId | undefined {
    const k = this.registry.subnets.findIndex((s) => s.id === peer.subnet);
    if (k < 0 || peer.replica < 0 || peer.replica >= (this.options.subnets[k]?.n ?? 0)) return undefined;
    return replicaId((this.offsets[k] ?? 0) + peer.replica);
  }

  /** A replica's `Env.sendXNet`: onto the XNet network, sized for its bandwidth model. */
  private sendXNet(from: XNetPeer, to: XNetPeer, message: XNetMessage): void {
    const source = this.globalOf(from);
    const destination = this.globalOf(to);
    assert(source !== undefined, `XNet message from an unknown replica ${from.subnet}/${from.replica}`);
    if (destination === undefined) return; // a Byzantine replica may address anyone: nobody answers
    const sizeBytes = message.kind === "xnet-request" ? XNET_REQUEST_BYTES : message.slice.sizeBytes;
    this.xnet.send(source, destination, this.wire === "roundtrip" ? { from, bytes: encodeXNetMessage(message), sizeBytes } : { from, message, sizeBytes });
  }

  private deliverXNet(to: ReplicaId, envelope: XNetEnvelope): void {
    const { subnet, local } = this.locate(to);
    const replica = subnet.replica(local);
    if (replica === undefined) return;
    let message = envelope.message;
    if (envelope.bytes !== undefined) {
      const decoded = decodeXNetMessage(envelope.bytes);
      if (!decoded.ok) {
        this.options.trace.record(this.loop.now(), to, { kind: "xnet.wire-reject", detail: { from: `${envelope.from.subnet.slice(0, 11)}/${envelope.from.replica}`, reason: decoded.reason.slice(0, 120) } });
        return;
      }
      message = decoded.value;
    }
    if (message !== undefined) replica.onXNetMessage(envelope.from, message);
  }
}
