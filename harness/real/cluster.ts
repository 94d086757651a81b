// `subnetlab up` (issue 12 item 5): one OS process per replica on 127.0.0.1, every directed
// replica-to-replica link through its own proxy on an embedded Toxiproxy-compatible server, so
// chaos tools (and `subnetlab run --real`) break links with ordinary Toxiproxy calls.
//
// Proxy names: `<subnet>-r<a>-to-r<b>` carries a's bytes to b (upstream = a → b, downstream = b's
// answers on that connection); `<s>-r<a>-to-<t>-r<b>` the same for XNet between subnets s and t
// (to b's XNet port; xnet-transport.ts). The first subnet is the root subnet: its key is the root
// key agents trust, and it delegates to the others (root-delegation.ts). A replica
// sends to its peers only through these proxies; when a replica restarts on new ports, the
// proxies pointing at it get the new upstream and the peers notice nothing but a dropped link.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Principal } from "@dfinity/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import { blsPublicKeyToDer, blsVerifier } from "../crypto/bls-backend.ts";
import { subnetIdOfRootKey } from "../crypto/certificate.ts";
import { replicaId, type ReplicaId } from "../types.ts";
import { ReplicaChild, type Listening } from "./child.ts";
import { canisterIdFromU64 } from "../execution/interfaces.ts";
import type { Registry } from "../routing/registry.ts";
import { clusterRegistry, createRunDir, nodeDir, readPublicKeys, readSpec, REAL_CONSENSUS_CONFIG, RunDirError, type ClusterSpec } from "./run-dir.ts";
import { ToxiproxyServer } from "./toxiproxy/index.ts";
import { existsSync } from "node:fs";
import type { ConsensusConfig } from "../consensus/config.ts";
import { specPath } from "./run-dir.ts";
import { candidatePorts, isPortTaken, portsBelowEphemeral } from "./stable-ports.ts";

/** Ports tried per proxy before giving up (each try is one failed bind). */
const PROXY_PORT_TRIES = 64;

export interface UpOptions {
  /** The run directory: created at the first `up`, resumed by later ones. */
  readonly out: string;
  /** Subnet sizes, e.g. [4] or [4, 7]; required for a new directory, checked against a resumed one. */
  readonly nodes?: readonly number[];
  /** The embedded Toxiproxy API's port (0: any free port). */
  readonly toxiproxyPort?: number;
  /** How long one replica may take to start. */
  readonly readyTimeoutMs?: number;
  /** Progress lines for a person (stderr in the CLI). */
  readonly progress?: (line: string) => void;
  /** The replica process's module (tests may substitute a stand-in). */
  readonly replicaEntry?: string;
  /** Extra command-line arguments of one replica's process (`run --real`: its Byzantine faults). */
  readonly replicaArgs?: (subnet: string, node: ReplicaId) => readonly string[];
  /** Consensus settings of a new directory (default REAL_CONSENSUS_CONFIG); a resumed one keeps its own. */
  readonly consensus?: ConsensusConfig;
}

export interface ReplicaInfo {
  readonly name: string;
  readonly nodeId: string;
  readonly pid: number;
  readonly httpUrl: string;
  /** Names of the proxies carrying this replica's outgoing links. */
  readonly proxies: readonly string[];
}

export interface SubnetInfo {
  readonly name: string;
  readonly id: string;
  /** The subnet's certification key (133-byte DER, hex): the root key for the first subnet, delegated by it for the others. */
  readonly publicKey: string;
  /** Closed ranges of canister ids (text) the subnet hosts: an effective canister id in them reaches it. */
  readonly canisterRanges: readonly (readonly [string, string])[];
  readonly replicas: readonly ReplicaInfo[];
}

/** The line `up` prints when ready, and DIR/cluster.json. */
export interface ClusterInfo {
  readonly ready: true;
  /** An HTTP endpoint of the first subnet (any replica serves every call: gossip does the rest). */
  readonly url: string;
  /** The first subnet's key as agents take it from /api/v2/status (hex DER). */
  readonly rootKey: string;
  /** The embedded Toxiproxy server's API. */
  readonly toxiproxy: string;
  readonly subnets: readonly SubnetInfo[];
}

export const DEFAULT_READY_TIMEOUT_MS = 60_000;
const REPLICA_ENTRY = new URL("./node-main.ts", import.meta.url).pathname;

interface Member {
  readonly subnet: string;
  readonly node: ReplicaId;
  readonly name: string;
  readonly child: ReplicaChild;
  /** The process being started (ports bound). */
  listening?: Listening;
  /** The process that serves: set when it is ready, so `info()` never names a half-started one. */
  serving?: Listening;
}

export const subnetNameOf = (k: number): string => `s${k}`;
export const linkProxyName = (subnet: string, from: ReplicaId, to: ReplicaId): string => `${subnet}-r${from}-to-r${to}`;
export const xnetProxyName = (fromSubnet: string, from: ReplicaId, toSubnet: string, to: ReplicaId): string => `${fromSubnet}-r${from}-to-${toSubnet}-r${to}`;

export class Cluster {
  private stopping = false;
  private registry: Registry | undefined;
  private readonly restarts = new Map<string, number>();
  /** Replicas the supervisor must not restart until `release` (a crash fault with a restart time). */
  private readonly heldDown = new Map<string, { readonly released: Promise<void>; readonly release: () => void }>();
  private runOriginUs: number | undefined;
  private readonly proxyPorts = portsBelowEphemeral();

  private constructor(
    readonly dir: string,
    readonly spec: ClusterSpec,
    readonly toxiproxy: ToxiproxyServer,
    private readonly members: readonly Member[],
    private readonly progress: (line: string) => void,
  ) {}

  /** Creates or resumes the run directory, starts every replica behind its proxies, waits until all serve. */
  static async up(options: UpOptions): Promise<Cluster> {
    const progress = options.progress ?? (() => undefined);
    const spec = prepareRunDir(options, progress);
    const toxiproxy = await ToxiproxyServer.start({ host: "127.0.0.1", port: options.toxiproxyPort ?? 0 });
    const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const members: Member[] = spec.subnets.flatMap((s) =>
      Array.from({ length: s.n }, (_, i) => {
        const node = replicaId(i);
        const name = `${s.name}/r${i}`;
        const child = new ReplicaChild(name, {
          entry: options.replicaEntry ?? REPLICA_ENTRY,
          args: ["--dir", options.out, "--subnet", s.name, "--node", String(i), ...(options.replicaArgs?.(s.name, node) ?? [])],
          logFile: join(nodeDir(options.out, s.name, node), "replica.log"),
          readyTimeoutMs,
        });
        return { subnet: s.name, node, name, child };
      }),
    );
    const cluster = new Cluster(options.out, spec, toxiproxy, members, progress);
    try {
      await cluster.startAll();
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  info(): ClusterInfo {
    // The registry reads and decodes every subnet's keys: once per cluster (info() is polled).
    this.registry ??= clusterRegistry(this.dir, this.spec);
    const registry = this.registry;
    const subnets = this.spec.subnets.map((s) => {
      const { facts, nodeIdOf } = subnetFactsOf(this.dir, s.name, registry);
      return {
        ...facts,
        replicas: this.members
          .filter((m) => m.subnet === s.name)
          .map((m) => ({
            name: m.name,
            nodeId: nodeIdOf(m.node),
            pid: m.serving?.pid ?? -1,
            httpUrl: `http://127.0.0.1:${m.serving?.httpPort ?? 0}`,
            proxies: this.outgoingProxies(m),
          })),
      };
    });
    const first = subnets[0] as SubnetInfo;
    return { ready: true, url: first.replicas[0]?.httpUrl ?? "", rootKey: first.publicKey, toxiproxy: this.toxiproxy.url, subnets };
  }

  /** Writes DIR/cluster.json. */
  writeInfo(): ClusterInfo {
    const info = this.info();
    writeFileSync(join(this.dir, "cluster.json"), `${JSON.stringify(info, null, 2)}\n`);
    return info;
  }

  member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new RunDirError(`no replica ${name} (replicas: ${this.members.map((x) => x.name).join(", ")})`);
    return m;
  }

  /** SIGKILL (crash), SIGSTOP/SIGCONT (pause) or SIGTERM to one replica; a killed replica is restarted by `supervise`. */
  signal(name: string, signal: NodeJS.Signals): void {
    this.member(name).child.signal(signal);
  }

  /** Keeps `name` down after it exits (SIGKILL it next) until `release(name)`. */
  holdDown(name: string): void {
    this.member(name);
    if (this.heldDown.has(name)) return;
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.heldDown.set(name, { released, release });
  }

  /** Lets the supervisor restart `name` from its disk (at once if it is down). */
  release(name: string): void {
    const held = this.heldDown.get(name);
    this.heldDown.delete(name);
    held?.release();
  }

  /** Whether `name`'s process runs and serves (false while it is down or restarting). */
  serving(name: string): boolean {
    const m = this.member(name);
    return m.child.running && m.serving?.pid === m.child.pid;
  }

  /** Tells every replica, now and after restarts, when `run --real`'s scenario time 0 was (wall µs). */
  setRunOrigin(atUs: number): void {
    this.runOriginUs = atUs;
    for (const m of this.members) m.child.post({ type: "run-origin", atUs });
  }

  /** Which of `ids` the replica's executed state knows, and the height it executed. */
  async finalState(name: string, ids: readonly string[]): Promise<{ executedHeight: number; known: readonly string[] }> {
    const answer = await this.member(name).child.ask({ type: "final-state", ids }, "final-state");
    if (answer.type !== "final-state") throw new RunDirError(`${name} answered ${answer.type} to final-state`);
    return answer;
  }

  private readonly onStopped: (() => void)[] = [];

  /** Runs `f` once the cluster has stopped (tests remove their directory). */
  onStop(f: () => void): void {
    this.onStopped.push(f);
  }

  /** Stops every replica and the proxies. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const name of [...this.heldDown.keys()]) this.release(name);
    await Promise.all(this.members.map((m) => m.child.stop()));
    await this.toxiproxy.stop();
    for (const f of this.onStopped) f();
  }

  // ---- start-up -----------------------------------------------------------------------------------

  private async startAll(): Promise<void> {
    this.progress(`starting ${this.members.length} replica processes`);
    await Promise.all(this.members.map((m) => this.spawn(m)));
    await this.createProxies();
    await Promise.all(this.members.map((m) => this.startReplica(m)));
    for (const m of this.members) this.supervise(m);
  }

  private async spawn(m: Member): Promise<void> {
    m.listening = await m.child.spawn();
  }

  private async startReplica(m: Member): Promise<void> {
    const rootUrls = this.rootUrlsFor(m);
    const peers: Record<string, string> = {};
    const xnetPeers: Record<string, string> = {};
    for (const other of this.members) {
      if (other === m) continue;
      const name = other.subnet === m.subnet ? linkProxyName(m.subnet, m.node, other.node) : xnetProxyName(m.subnet, m.node, other.subnet, other.node);
      const proxy = this.toxiproxy.registry.get(name);
      if (!proxy.ok) throw new RunDirError(`proxy ${name} is missing`);
      if (other.subnet === m.subnet) peers[String(other.node)] = proxy.value.listen;
      else xnetPeers[`${other.subnet}/${other.node}`] = proxy.value.listen;
    }
    await m.child.start({ type: "start", peers, xnetPeers, ...(rootUrls === undefined ? {} : { rootUrls }) });
    if (this.runOriginUs !== undefined) m.child.post({ type: "run-origin", atUs: this.runOriginUs });
    m.serving = m.listening;
    this.progress(`${m.name} ready (pid ${m.child.pid}, http ${m.listening?.httpPort})`);
  }

  private async createProxies(): Promise<void> {
    for (const from of this.members) {
      for (const to of this.members) {
        if (from === to) continue;
        const name = from.subnet === to.subnet ? linkProxyName(from.subnet, from.node, to.node) : xnetProxyName(from.subnet, from.node, to.subnet, to.node);
        await this.createProxy(name, `127.0.0.1:${upstreamPort(from, to)}`);
      }
    }
  }

  /** One proxy on a port below the ephemeral range (stable-ports.ts: why), trying others while taken. */
  private async createProxy(name: string, upstream: string): Promise<void> {
    let last = "";
    for (const port of candidatePorts(this.proxyPorts, PROXY_PORT_TRIES)) {
      const created = await this.toxiproxy.registry.create({ name, listen: `127.0.0.1:${port}`, upstream, enabled: true });
      if (created.ok) return;
      last = created.failure.message;
      if (!isPortTaken(last)) break;
    }
    throw new RunDirError(`cannot create proxy ${name}: ${last}`);
  }

  /** The root subnet's HTTP endpoints, for a replica of another subnet (undefined for a root replica). */
  private rootUrlsFor(m: Member): string[] | undefined {
    const root = this.spec.subnets[0]?.name;
    if (m.subnet === root) return undefined;
    return this.members.filter((o) => o.subnet === root).map((o) => `http://127.0.0.1:${o.listening?.httpPort}`);
  }

  private outgoingProxies(m: Member): string[] {
    return this.members.filter((o) => o !== m).map((o) => (o.subnet === m.subnet ? linkProxyName(m.subnet, m.node, o.node) : xnetProxyName(m.subnet, m.node, o.subnet, o.node)));
  }

  /** A replica that exits while the cluster runs is restarted from its disk, as an operator's supervisor would. */
  private supervise(m: Member): void {
    void m.child.exited().then(async () => {
      await this.heldDown.get(m.name)?.released;
      if (this.stopping) return;
      const count = (this.restarts.get(m.name) ?? 0) + 1;
      this.restarts.set(m.name, count);
      this.progress(`${m.name} exited; restarting it from its disk (restart ${count})`);
      try {
        await this.spawn(m);
        for (const from of this.members.filter((o) => o !== m)) {
          const name = from.subnet === m.subnet ? linkProxyName(m.subnet, from.node, m.node) : xnetProxyName(from.subnet, from.node, m.subnet, m.node);
          const updated = await this.toxiproxy.registry.update(name, { upstream: `127.0.0.1:${upstreamPort(from, m)}` });
          if (!updated.ok) throw new RunDirError(`cannot point proxy ${name} at the restarted replica: ${updated.failure.message}`);
        }
        await this.startReplica(m);
        for (const other of this.members) {
          const rootUrls = this.rootUrlsFor(other);
          if (other !== m && rootUrls !== undefined) other.child.post({ type: "root-urls", rootUrls });
        }
        this.writeInfo();
        this.supervise(m);
      } catch (e) {
        if (!this.stopping) this.progress(`${m.name} could not be restarted: ${(e as Error).message}`);
      }
    });
  }
}

/**
 * What cluster.json says about a subnet, read from the run directory (both `up` and `up --containers`
 * write it): name, id, threshold public key, canister ranges, and each node's id.
 */
export function subnetFactsOf(dir: string, name: string, registry: ReturnType<typeof clusterRegistry>): {
  readonly facts: Omit<SubnetInfo, "replicas">;
  readonly nodeIdOf: (node: ReplicaId) => string;
} {
  const keys = blsVerifier(readPublicKeys(dir, name));
  const der = blsPublicKeyToDer(keys.thresholdPublicKey("high"));
  const range = registry.byName(name)?.canisterRange;
  return {
    facts: {
      name,
      id: Principal.fromUint8Array(subnetIdOfRootKey(der)).toText(),
      publicKey: bytesToHex(der),
      canisterRanges: range === undefined ? [] : [[canisterIdFromU64(range.start), canisterIdFromU64(range.end)] as const],
    },
    nodeIdOf: (node) => Principal.selfAuthenticating(keys.nodePublicKeyDer(node)).toText(),
  };
}

/** Where a link from `from` to `to` ends: `to`'s P2P port within a subnet, its XNet port between subnets. */
function upstreamPort(from: Member, to: Member): number | undefined {
  return from.subnet === to.subnet ? to.listening?.p2pPort : to.listening?.xnetPort;
}

export function prepareRunDir(options: Pick<UpOptions, "out" | "nodes" | "consensus">, progress: (line: string) => void): ClusterSpec {
  if (!existsSync(specPath(options.out))) {
    const nodes = options.nodes ?? [4];
    createRunDir(options.out, { subnets: nodes.map((n, k) => ({ name: subnetNameOf(k), n })), consensus: options.consensus ?? REAL_CONSENSUS_CONFIG });
    progress(`created ${options.out}: ${nodes.map((n, k) => `${subnetNameOf(k)} with ${n} replicas`).join(", ")}; keys written`);
  } else {
    progress(`resuming the cluster in ${options.out}`);
  }
  const spec = readSpec(options.out);
  const sizes = spec.subnets.map((s) => s.n);
  if (options.nodes !== undefined && options.nodes.join(",") !== sizes.join(",")) {
    throw new RunDirError(`${options.out} holds a cluster of ${sizes.join(",")} replicas, not ${options.nodes.join(",")}; drop --nodes to resume it, or choose another --out`);
  }
  return spec;
}
