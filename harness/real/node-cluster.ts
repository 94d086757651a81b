// What a replica process of a cluster of several subnets needs beyond its own subnet (issue 12,
// `subnetlab up --nodes 4,7`): every subnet's public facts (/subnet/<id> in the state tree — the
// root subnet's tree is what delegates the others' keys and ranges), XNet over TCP
// (xnet-transport.ts) with an XNetClient that verifies slices with the source subnet's key, and —
// on a non-root subnet — the root subnet's delegation (root-delegation.ts). A lone subnet gets its
// own facts only, no XNet and no delegation: exactly what node-main did before.
import { randomBytes } from "node:crypto";
import { blsVerifier, type BlsVerifierKeys } from "../crypto/bls-backend.ts";
import { subnetFacts, type SubnetFacts } from "../http/facts.ts";
import type { DelegatedTrust } from "../http/interfaces.ts";
import type { Registry, SubnetId, SubnetRecord } from "../routing/registry.ts";
import { XNetClient } from "../routing/xnet.ts";
import type { Env } from "../sim/env.ts";
import { Rng } from "../sim/rng.ts";
import { replicaId, type ReplicaId } from "../types.ts";
import type { ToChild } from "./child.ts";
import { RootDelegation } from "./root-delegation.ts";
import { readPublicKeys, RunDirError, type ClusterSpec } from "./run-dir.ts";
import { withXNet, XNetTransport } from "./xnet-transport.ts";

export interface NodeClusterOptions {
  readonly dir: string;
  readonly spec: ClusterSpec;
  readonly registry: Registry;
  readonly subnet: SubnetRecord;
  readonly self: ReplicaId;
  readonly nowNs: () => bigint;
  readonly log: (line: string) => void;
}

export class NodeCluster {
  private readonly facts: ReadonlyMap<SubnetId, SubnetFacts>;
  private readonly keys: ReadonlyMap<SubnetId, BlsVerifierKeys>;
  /** Several subnets: the XNet transport and client. */
  readonly xnet: { readonly transport: XNetTransport; readonly client: XNetClient } | undefined;
  /** A non-root subnet: the root's delegation. */
  readonly delegation: RootDelegation | undefined;
  private rootUrls: readonly string[] = [];

  constructor(private readonly options: NodeClusterOptions) {
    const { dir, spec, registry, subnet } = options;
    const keys = new Map<SubnetId, BlsVerifierKeys>();
    const facts = new Map<SubnetId, SubnetFacts>();
    for (const s of spec.subnets) {
      const record = registry.byName(s.name);
      if (record === undefined) throw new RunDirError(`no subnet ${s.name} in the registry`);
      const k = blsVerifier(readPublicKeys(dir, s.name));
      keys.set(record.id, k);
      facts.set(record.id, subnetFacts(k, record.canisterRange));
    }
    this.keys = keys;
    this.facts = facts;
    this.xnet =
      spec.subnets.length < 2
        ? undefined
        : {
            transport: new XNetTransport({
              subnets: registry.subnets.map((s) => ({ id: s.id, n: s.size })),
              self: { subnet: subnet.id, replica: options.self },
              rng: Rng.fromSeed(randomBytes(16).toString("hex")),
              log: options.log,
            }),
            client: new XNetClient(subnet.id, registry, (id) => this.keys.get(id)?.verifier),
          };
    const root = this.root();
    this.delegation =
      root.id === subnet.id
        ? undefined
        : new RootDelegation({
            target: {
              rootSubnetId: root.facts.subnetId,
              rootKeyDer: root.facts.rootKeyDer,
              subnetId: this.own().subnetId,
              publicKeyDer: this.own().rootKeyDer,
              canisterRanges: this.own().canisterRanges,
            },
            rootUrls: () => this.rootUrls,
            nowNs: options.nowNs,
            log: options.log,
          });
  }

  /** This subnet's facts (its own key, ranges and nodes). */
  own(): SubnetFacts {
    const own = this.facts.get(this.options.subnet.id);
    if (own === undefined) throw new RunDirError(`no keys for subnet ${this.options.subnet.name}`);
    return own;
  }

  /** /subnet/<id>/public_key for every subnet of the cluster (the root's tree delegates from these). */
  publicKeyDerOf(id: SubnetId): Uint8Array | undefined {
    return this.facts.get(id)?.rootKeyDer;
  }

  /** /subnet/<id>/node for every subnet of the cluster. */
  nodesOf(id: SubnetId): readonly (readonly [Uint8Array, Uint8Array])[] | undefined {
    return this.facts.get(id)?.nodes.map((node) => [node.nodeId, node.publicKeyDer] as const);
  }

  /** What the HTTP interface of a non-root replica needs: the root key and the delegation. */
  delegated(): DelegatedTrust | undefined {
    const delegation = this.delegation;
    if (delegation === undefined) return undefined;
    return { rootKeyDer: this.root().facts.rootKeyDer, delegation: () => delegation.current() };
  }

  /** The replica's Env, with `sendXNet` when there are other subnets. */
  envFor<M>(env: Env<M>): Env<M> {
    return this.xnet === undefined ? env : withXNet(env, this.xnet.transport);
  }

  /** Binds the XNet port (several subnets only). */
  async listen(): Promise<number | undefined> {
    return this.xnet === undefined ? undefined : await this.xnet.transport.start();
  }

  /**
   * The supervisor's start message: where the other subnets' replicas are (their proxies) and where
   * the root's HTTP is; starts fetching the delegation. `deliver` gets XNet messages from now on.
   */
  start(message: Extract<ToChild, { type: "start" }>, deliver: Parameters<XNetTransport["setHandlers"]>[0], reject: Parameters<XNetTransport["setHandlers"]>[1]): void {
    if (this.xnet !== undefined) {
      this.xnet.transport.setHandlers(deliver, reject);
      for (const [key, address] of Object.entries(message.xnetPeers)) {
        const [name, node] = key.split("/");
        const record = this.options.registry.byName(name ?? "");
        if (record === undefined || node === undefined) throw new RunDirError(`the supervisor names an unknown XNet peer ${key}`);
        this.xnet.transport.setPeerAddress({ subnet: record.id, replica: replicaId(Number(node)) }, address);
      }
    }
    this.rootUrls = message.rootUrls ?? [];
    this.delegation?.start();
  }

  /** Later news from the supervisor: restarted root replicas' HTTP endpoints. */
  onRootUrls(rootUrls: readonly string[]): void {
    this.rootUrls = rootUrls;
  }

  /** Resolves when the replica may serve: at once, or once a non-root replica holds the delegation. */
  async ready(): Promise<void> {
    await this.delegation?.obtained();
  }

  async close(): Promise<void> {
    this.delegation?.stop();
    await this.xnet?.transport.close();
  }

  private root(): { readonly id: SubnetId; readonly facts: SubnetFacts } {
    const first = this.options.registry.byName(this.options.spec.subnets[0]?.name ?? "");
    const facts = first === undefined ? undefined : this.facts.get(first.id);
    if (first === undefined || facts === undefined) throw new RunDirError("the cluster has no root subnet");
    return { id: first.id, facts };
  }
}
