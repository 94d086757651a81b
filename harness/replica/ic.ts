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
import { XNetClient, type CertifiedSlice } from "../routing/xnet.ts";
import { SimSubnet, type SubnetOptions } from "./subnet.ts";

/** How often every replica asks each other subnet for its stream (the IC's block makers ask on demand). */
export const DEFAULT_XNET_POLL_MS = 250;
const XNET_REQUEST_BYTES = 96;

type XNetMessage =
  | { readonly kind: "request"; readonly destination: SubnetId; readonly fromIndex: bigint; readonly sizeBytes: number }
  | { readonly kind: "response"; readonly slice: CertifiedSlice; readonly sizeBytes: number };

export interface ICSubnetOptions extends Omit<SubnetOptions, "loop" | "traceOffset" | "xnetClient" | "rng" | "trace" | "ingressAuth"> {
  readonly name: string;
}

export interface ICOptions {
  readonly subnets: readonly ICSubnetOptions[];
  readonly rng: Rng;
  readonly trace: Trace;
  readonly xnetPollMs?: number;
}

export class SimIC {
  readonly loop = new EventLoop();
  readonly registry: Registry;
  readonly subnets: readonly SimSubnet[];
  /** XNet links between all replicas of all subnets, indexed by global replica number. */
  readonly xnet: SimNetwork<XNetMessage>;
  private readonly offsets: readonly number[];
  private readonly rng: Rng;
  /** Users sign once for the whole IC (one key per user, whichever subnet they call). */
  readonly ingressAuth: IngressAuth;

  constructor(private readonly options: ICOptions) {
    assert(options.subnets.length >= 1, "an IC needs at least one subnet");
    this.registry = Registry.of(options.subnets.map((s) => ({ name: s.name, size: s.n })));
    this.rng = options.rng.fork("xnet");
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
        rng: options.rng.fork(`subnet/${s.name}`),
        trace: options.trace,
        loop: this.loop,
        ingressAuth: this.ingressAuth,
        traceOffset: offsets[k] ?? 0,
        xnetClient: () => new XNetClient(record.id, this.registry, verifierOf, s.consensus.canary === "xnet-slice-signature-unchecked"),
      });
    });
    const regions: Region[] = [];
    for (const s of options.subnets) for (let i = 0; i < s.n; i++) regions.push(REGIONS[i % REGIONS.length] as Region);
    this.xnet = new SimNetwork<XNetMessage>(
      this.loop,
      this.rng.fork("net"),
      { regions, latencyMs: DEFAULT_LATENCY_MS, jitterPercent: 20, bandwidthMbps: 1000 },
      (from, to, message) => this.deliverXNet(from, to, message),
      (kind, from, to, why) => options.trace.record(this.loop.now(), -1, { kind: `xnet.${kind}`, detail: { from, to, why } }),
    );
  }

  start(): void {
    for (const subnet of this.subnets) subnet.start();
    const everyUs = (this.options.xnetPollMs ?? DEFAULT_XNET_POLL_MS) * 1000;
    const tick = (): void => {
      this.pollXNet();
      this.loop.after(everyUs, tick);
    };
    this.loop.after(everyUs, tick);
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

  /** Every live replica asks one random replica of each other subnet for its stream to us. */
  private pollXNet(): void {
    this.subnets.forEach((subnet, k) => {
      const self = this.registry.subnets[k] as SubnetRecord;
      for (let i = 0; i < subnet.n; i++) {
        const replica = subnet.replica(replicaId(i));
        if (replica === undefined) continue;
        for (const request of replica.xnetRequests()) {
          const source = this.registry.subnets.findIndex((s) => s.id === request.source);
          const server = (this.offsets[source] ?? 0) + this.rng.below(this.registry.subnets[source]?.size ?? 1);
          this.xnet.send(replicaId((this.offsets[k] ?? 0) + i), replicaId(server), { kind: "request", destination: self.id, fromIndex: request.fromIndex, sizeBytes: XNET_REQUEST_BYTES });
        }
      }
    });
  }

  private deliverXNet(from: ReplicaId, to: ReplicaId, message: XNetMessage): void {
    const { subnet, local } = this.locate(to);
    const replica = subnet.replica(local);
    if (replica === undefined) return;
    if (message.kind === "request") {
      const slice = replica.serveXNet(message.destination, message.fromIndex);
      if (slice !== undefined) this.xnet.send(to, from, { kind: "response", slice, sizeBytes: slice.sizeBytes });
      return;
    }
    replica.onXNetSlice(message.slice);
  }
}
