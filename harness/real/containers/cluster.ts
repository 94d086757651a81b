// `subnetlab up --containers` (issue 12 item 10): the subnet of `up`, one container per replica.
//
// What replaces the process mode's IPC handshake and proxies:
// - one user-defined network per cluster; each replica's container has the network alias
//   `<subnet>-r<i>` and listens on fixed ports inside it (P2P 4100, HTTP 8080); peers are named on
//   the command line by alias (standalone.ts), so a restarted container is found again by DNS;
// - readiness: the replica prints READY_LINE once it runs; after a restart, its HTTP status answers;
// - each replica's HTTP port is published on 127.0.0.1 at a host port chosen when the cluster
//   starts, fixed for the container's life, so cluster.json stays valid across restarts;
// - faults: crash = `kill` (SIGKILL to the container), then `restart` from its disk; partition =
//   `disconnect` from the network (the replica keeps running, alone), healed by `connect` with the
//   same alias. There is no Toxiproxy in this mode: cluster.json's `toxiproxy` is "" and no
//   replica lists proxies.
//
// Each container sees only what its replica needs, read-only except its own node folder: the
// project's harness/, node_modules/, package.json and tsconfig.json (code runs from the host's
// checkout, so the image holds only Node), the run directory's cluster-spec.json and keys/ (public
// keys, genesis CUP) and DIR/nodes/<subnet>-r<i>/ — so it holds its own secret keys and no other's.
import { createWriteStream, existsSync, mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import type Dockerode from "dockerode";
import type { ContainerRuntimeClient, GenericContainer, StartedNetwork, StartedTestContainer } from "testcontainers";
import { decode } from "@dfinity/cbor";
import { bytesToHex } from "@noble/hashes/utils.js";
import { replicaId, type ReplicaId } from "../../types.ts";
import { prepareRunDir, subnetFactsOf, DEFAULT_READY_TIMEOUT_MS, type ClusterInfo, type ReplicaInfo, type SubnetInfo } from "../cluster.ts";
import { clusterRegistry, nodeDir, RunDirError, specPath, type ClusterSpec } from "../run-dir.ts";
import { containerRuntime } from "./engine.ts";
import { ensureReplicaImage, IMAGE_NODE } from "./image.ts";
import { CONTAINER_HTTP_PORT, CONTAINER_P2P_PORT, peersArgument, READY_LINE, replicaAlias } from "./standalone.ts";

type BindMount = Parameters<GenericContainer["withBindMounts"]>[0][number];

const PROJECT_ROOT = resolve(new URL("../../..", import.meta.url).pathname);
const NODE_MAIN = join(PROJECT_ROOT, "harness", "real", "node-main.ts");
/** SIGTERM first on stop, so the replica syncs its disk; SIGKILL after this long. */
const STOP_GRACE_MS = 3000;
const STATUS_POLL_MS = 250;

export interface ContainerUpOptions {
  readonly out: string;
  readonly nodes?: readonly number[];
  readonly readyTimeoutMs?: number;
  readonly progress?: (line: string) => void;
  /** Restart a container that dies while the cluster runs (as `up`'s supervisor does for processes). */
  readonly supervise?: boolean;
}

export interface ContainerReplicaInfo extends ReplicaInfo {
  /** The container's name (for docker kill/start/network disconnect by hand). */
  readonly container: string;
}

/** cluster.json of a container cluster: `up`'s fields, plus the network and each replica's container. */
export interface ContainerClusterInfo extends Omit<ClusterInfo, "subnets"> {
  readonly network: string;
  readonly subnets: readonly ContainerSubnetInfo[];
}

export interface ContainerSubnetInfo extends Omit<SubnetInfo, "replicas"> {
  readonly replicas: readonly ContainerReplicaInfo[];
}

/** A container that failed to come up; the message points at its log. */
export class ContainerStartError extends Error {}

interface Member {
  readonly subnet: string;
  readonly node: ReplicaId;
  /** `s0/r2`, as in process mode. */
  readonly name: string;
  readonly alias: string;
  readonly hostHttpPort: number;
  readonly logFile: string;
  started?: StartedTestContainer;
}

export class ContainerCluster {
  private stopping = false;
  private supervisor: NodeJS.ReadableStream | undefined;
  private readonly onStopped: (() => void)[] = [];

  private constructor(
    readonly dir: string,
    readonly spec: ClusterSpec,
    private readonly client: ContainerRuntimeClient,
    readonly network: StartedNetwork,
    private readonly image: string,
    private readonly members: readonly Member[],
    private readonly readyTimeoutMs: number,
    private readonly progress: (line: string) => void,
  ) {}

  /** Creates or resumes the run directory, builds the image if needed, starts one container per replica. */
  static async up(options: ContainerUpOptions): Promise<ContainerCluster> {
    const progress = options.progress ?? (() => undefined);
    const dir = resolve(options.out);
    // Refused before the run directory is created: XNet and delegations run between processes only.
    if (options.nodes !== undefined && options.nodes.length !== 1) throw new RunDirError(`containers run one subnet (--nodes ${options.nodes.join(",")} asks for ${options.nodes.length}); several subnets run as processes (subnetlab up without --containers)`);
    const spec = prepareRunDir({ out: dir, ...(options.nodes === undefined ? {} : { nodes: options.nodes }) }, progress);
    if (spec.subnets.length !== 1) throw new RunDirError(`${dir} holds ${spec.subnets.length} subnets; containers run one subnet`);
    const client = await containerRuntime();
    const image = await ensureReplicaImage(client, progress);
    const { Network } = await import("testcontainers");
    const runTag = bytesToHex(crypto.getRandomValues(new Uint8Array(4)));
    const network = await new Network({ nextUuid: () => `subnetlab-${runTag}` }).start();
    const members: Member[] = [];
    for (const s of spec.subnets) {
      for (let i = 0; i < s.n; i++) {
        const node = replicaId(i);
        members.push({ subnet: s.name, node, name: `${s.name}/r${i}`, alias: replicaAlias(s.name, node), hostHttpPort: await freeLocalPort(), logFile: join(nodeDir(dir, s.name, node), "replica.log") });
      }
    }
    const cluster = new ContainerCluster(dir, spec, client, network, image.tag, members, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, progress);
    try {
      progress(`starting ${members.length} replica containers on network ${network.getName()} (image ${image.tag})`);
      await Promise.all(members.map((m) => cluster.startContainer(m, runTag)));
      // Ready for an agent: a replica serves calls only once it holds a certified state (before
      // that it answers 503 waiting_for_certified_state, and the agent gives up).
      await Promise.all(members.map((m) => cluster.untilServing(m, "certified")));
      progress("every replica holds a certified state");
      if (options.supervise === true) await cluster.supervise(runTag);
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  info(): ContainerClusterInfo {
    const registry = clusterRegistry(this.dir, this.spec);
    const subnets = this.spec.subnets.map((s) => {
      const { facts, nodeIdOf } = subnetFactsOf(this.dir, s.name, registry);
      return {
        ...facts,
        replicas: this.members
          .filter((m) => m.subnet === s.name)
          .map((m) => ({
            name: m.name,
            nodeId: nodeIdOf(m.node),
            pid: -1,
            httpUrl: this.httpUrl(m.name),
            proxies: [],
            container: m.started?.getName().replace(/^\//, "") ?? "",
          })),
      };
    });
    const first = subnets[0] as (typeof subnets)[number];
    return { ready: true, url: first.replicas[0]?.httpUrl ?? "", rootKey: first.publicKey, toxiproxy: "", network: this.network.getName(), subnets };
  }

  /** info() with each replica's host pid (the engine's view: -1 for a container that is not running). */
  async infoWithPids(): Promise<ContainerClusterInfo> {
    const info = this.info();
    const pids = new Map<string, number>();
    for (const m of this.members) {
      const state = m.started === undefined ? undefined : (await this.containerOf(m).inspect()).State;
      pids.set(m.name, state?.Running === true ? state.Pid : -1);
    }
    return { ...info, subnets: info.subnets.map((s) => ({ ...s, replicas: s.replicas.map((r) => ({ ...r, pid: pids.get(r.name) ?? -1 })) })) };
  }

  /** Writes DIR/cluster.json. */
  async writeInfo(): Promise<ContainerClusterInfo> {
    const info = await this.infoWithPids();
    writeFileSync(join(this.dir, "cluster.json"), `${JSON.stringify(info, null, 2)}\n`);
    return info;
  }

  httpUrl(name: string): string {
    return `http://127.0.0.1:${this.member(name).hostHttpPort}`;
  }

  /** Crash: SIGKILL to the replica's container (its disk stays; `restart` brings it back). */
  async kill(name: string): Promise<void> {
    await this.containerOf(this.member(name)).kill({ signal: "SIGKILL" });
  }

  /** Starts a stopped or killed container again from its disk and waits until its HTTP interface answers. */
  async restart(name: string): Promise<void> {
    const m = this.member(name);
    const since = Math.floor(Date.now() / 1000);
    await this.containerOf(m).start();
    void this.appendLogs(m, since);
    await this.untilServing(m);
    this.progress(`${m.name} restarted from its disk`);
  }

  /** Whether the engine says the replica's container runs. */
  async running(name: string): Promise<boolean> {
    return (await this.containerOf(this.member(name)).inspect()).State.Running;
  }

  /** Partition: takes the container off the cluster's network (its process keeps running, alone). */
  async disconnect(name: string): Promise<void> {
    const m = this.member(name);
    await this.dockerNetwork().disconnect({ Container: this.containerOf(m).id, Force: true });
  }

  /** Heals `disconnect`: back on the network under the same alias. */
  async connect(name: string): Promise<void> {
    const m = this.member(name);
    await this.dockerNetwork().connect({ Container: this.containerOf(m).id, EndpointConfig: { Aliases: [m.alias] } });
  }

  /** Runs a command inside the replica's container (the image has only node: pass it a script). */
  async exec(name: string, command: readonly string[]): Promise<{ readonly exitCode: number; readonly output: string }> {
    const m = this.member(name);
    if (m.started === undefined) throw new ContainerStartError(`${m.name} has no container`);
    const result = await m.started.exec([...command]);
    return { exitCode: result.exitCode, output: result.output };
  }

  onStop(f: () => void): void {
    this.onStopped.push(f);
  }

  /** Stops and removes every container (SIGTERM, SIGKILL after a grace period) and the network. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    (this.supervisor as { destroy?: () => void } | undefined)?.destroy?.();
    await Promise.all(this.members.map(async (m) => {
      try {
        await m.started?.stop({ timeout: STOP_GRACE_MS, remove: true });
      } catch (e) {
        this.progress(`${m.name}: could not stop its container: ${(e as Error).message}`);
      }
    }));
    try {
      await this.network.stop();
    } catch (e) {
      this.progress(`could not remove network ${this.network.getName()}: ${(e as Error).message}`);
    }
    for (const f of this.onStopped) f();
  }

  // ---- start-up -----------------------------------------------------------------------------------

  private member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new RunDirError(`no replica ${name} (replicas: ${this.members.map((x) => x.name).join(", ")})`);
    return m;
  }

  private containerOf(m: Member): Dockerode.Container {
    if (m.started === undefined) throw new ContainerStartError(`${m.name} has no container`);
    return this.client.container.getById(m.started.getId());
  }

  private dockerNetwork(): Dockerode.Network {
    return this.client.network.getById(this.network.getId());
  }

  private async startContainer(m: Member, runTag: string): Promise<void> {
    const { GenericContainer, Wait } = await import("testcontainers");
    const n = this.spec.subnets.find((s) => s.name === m.subnet)?.n ?? 0;
    const log = createWriteStream(m.logFile, { flags: "a" });
    const networkName = this.network.getName();
    class ReplicaContainer extends GenericContainer {
      protected override async beforeContainerCreated(): Promise<void> {
        // testcontainers publishes ports on every interface; the replica's belongs on loopback only.
        for (const bindings of Object.values(this.hostConfig.PortBindings ?? {}) as { HostIp?: string }[][]) for (const b of bindings) b.HostIp = "127.0.0.1";
        // The alias is given at creation: testcontainers' withNetworkAliases creates the container
        // on the default bridge and connects it afterwards, which fails on a daemon without one
        // (dockerd --bridge=none, scripts/docker-engine.ts).
        this.createOpts.NetworkingConfig = { EndpointsConfig: { [networkName]: { Aliases: [m.alias] } } };
      }
    }
    const container = new ReplicaContainer(this.image)
      .withName(`subnetlab-${runTag}-${m.alias}`)
      .withLabels({ "org.subnetlab.run": runTag, "org.subnetlab.replica": m.name })
      .withNetwork(this.network)
      .withExposedPorts({ container: CONTAINER_HTTP_PORT, host: m.hostHttpPort })
      .withBindMounts(this.mountsOf(m))
      .withWorkingDir(PROJECT_ROOT)
      .withEntrypoint([IMAGE_NODE])
      .withCommand([
        "--import", "tsx", NODE_MAIN,
        "--dir", this.dir, "--subnet", m.subnet, "--node", String(m.node),
        "--listen-host", "0.0.0.0", "--p2p-port", String(CONTAINER_P2P_PORT), "--http-port", String(CONTAINER_HTTP_PORT),
        "--peers", peersArgument(m.subnet, n, m.node),
      ])
      .withPullPolicy({ shouldPull: () => false })
      .withLogConsumer((stream) => stream.pipe(log))
      .withWaitStrategy(Wait.forLogMessage(READY_LINE))
      .withStartupTimeout(this.readyTimeoutMs);
    try {
      m.started = await container.start();
    } catch (e) {
      throw new ContainerStartError(`${m.name}: its container did not become ready: ${(e as Error).message} (log: ${m.logFile})`);
    }
    this.progress(`${m.name} ready (container ${m.started.getName().replace(/^\//, "")}, http ${this.httpUrl(m.name)})`);
  }

  private mountsOf(m: Member): BindMount[] {
    const project = ["harness", "package.json", "tsconfig.json"].map((p) => join(PROJECT_ROOT, p));
    // A worktree's node_modules may be a symlink to another checkout's: mount what it points at.
    const modules: BindMount = { source: realpathSync(join(PROJECT_ROOT, "node_modules")), target: join(PROJECT_ROOT, "node_modules"), mode: "ro" };
    const shared = [specPath(this.dir), join(this.dir, "keys")];
    for (const path of [...project, ...shared]) if (!existsSync(path)) throw new ContainerStartError(`${path} is missing; a replica container needs it`);
    // tsx's compile cache (content-addressed): shared with the host as the replica processes of
    // `up` share it, so a container does not recompile the harness (30 s for four on 2 loaded cores).
    const tsxCache = join(tmpdir(), `tsx-${process.getuid?.() ?? 0}`);
    mkdirSync(tsxCache, { recursive: true });
    return [
      ...project.map((path): BindMount => ({ source: path, target: path, mode: "ro" })),
      modules,
      { source: tsxCache, target: "/tmp/tsx-0", mode: "rw" },
      ...shared.map((path): BindMount => ({ source: path, target: path, mode: "ro" })),
      { source: nodeDir(this.dir, m.subnet, m.node), target: nodeDir(this.dir, m.subnet, m.node), mode: "rw" },
    ];
  }

  /**
   * Polls the replica's status endpoint through its published port until it answers ("answers"),
   * or until it reports a certified state ("certified"; it may still be a few heights behind, which
   * the IC calls certified_state_behind and a loaded machine shows often).
   */
  private async untilServing(m: Member, want: "answers" | "certified" = "answers"): Promise<void> {
    const until = Date.now() + this.readyTimeoutMs;
    while (Date.now() < until) {
      const health = await fetch(`${this.httpUrl(m.name)}/api/v2/status`, { signal: AbortSignal.timeout(2000) }).then(
        async (r) => (r.ok ? (decode(new Uint8Array(await r.arrayBuffer())) as { replica_health_status?: string }).replica_health_status : undefined),
        () => undefined,
      );
      if (health !== undefined && (want === "answers" || health !== "waiting_for_certified_state")) return;
      if (!(await this.containerOf(m).inspect()).State.Running) throw new ContainerStartError(`${m.name}: its container exited while starting (log: ${m.logFile})`);
      await new Promise((r) => setTimeout(r, STATUS_POLL_MS));
    }
    throw new ContainerStartError(`${m.name} did not ${want === "certified" ? "certify a state" : "serve HTTP"} within ${this.readyTimeoutMs} ms (log: ${m.logFile})`);
  }

  /** The container's output since `sinceS` (a restart) appended to its replica.log, until it stops. */
  private async appendLogs(m: Member, sinceS: number): Promise<void> {
    try {
      const stream = await this.containerOf(m).logs({ follow: true, stdout: true, stderr: true, since: sinceS });
      const log = createWriteStream(m.logFile, { flags: "a" });
      this.client.container.dockerode.modem.demuxStream(stream, log, log);
      stream.on("end", () => log.end());
    } catch {
      // The log is a convenience; the replica's own files (events.jsonl, trace.jsonl) are the record.
    }
  }

  /** Restarts a container of this run that dies while the cluster runs, from its disk. */
  private async supervise(runTag: string): Promise<void> {
    const events = await this.client.container.dockerode.getEvents({ filters: JSON.stringify({ type: ["container"], event: ["die"], label: [`org.subnetlab.run=${runTag}`] }) });
    this.supervisor = events;
    events.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n").filter((l) => l.trim() !== "")) {
        const event = JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } };
        const name = event.Actor?.Attributes?.["org.subnetlab.replica"];
        if (name === undefined || this.stopping) continue;
        this.progress(`${name} died; restarting its container from its disk`);
        this.restart(name).then(
          () => this.writeInfo(),
          (e: unknown) => this.stopping || this.progress(`${name} could not be restarted: ${(e as Error).message}`),
        );
      }
    });
    events.on("error", () => undefined);
  }
}

/** A port free on 127.0.0.1 now (the engine binds it a moment later; a race with another program is reported by the start). */
function freeLocalPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}
