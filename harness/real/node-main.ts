// One replica as an OS process (issue 12 items 4–5): the same `Replica` the simulator runs, with a
// real Env — wall clock and Node timers, a FileDisk that survives SIGKILL, TCP frames of the
// canonical wire codec — and the IC HTTP interface on its own port. Started by `subnetlab up`
// (harness/real/cluster.ts), which speaks the handshake in child.ts with it over IPC — or, with
// --peers, standalone in a container (harness/real/containers/standalone.ts).
//
//   node --import tsx harness/real/node-main.ts --dir DIR --subnet s0 --node 2
import { randomBytes } from "node:crypto";
import { appendFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Membership } from "../consensus/membership.ts";
import type { IngressAuth } from "../consensus/ingress.ts";
import { faultsTolerated, replicaId, type ReplicaId } from "../types.ts";
import { Rng } from "../sim/rng.ts";
import { Replica, type ReplicaObserver } from "../replica/replica.ts";
import { ExecutionStateMachine } from "../replica/execution-state-machine.ts";
import { bundleCodec } from "../p2p/codec.ts";
import type { Bundle } from "../p2p/messages.ts";
import { FileDisk } from "./file-disk.ts";
import { TcpTransport } from "./tcp-transport.ts";
import { createRealEnv, jsonLinesTraceSink } from "./env.ts";
import type { FromChild, ToChild } from "./child.ts";
import { clusterRegistry, readGenesisCup } from "./run-dir.ts";
import { diskDir, loadNodeKeys, nodeDir, readSpec } from "./run-dir.ts";
import { startHttpServer } from "./http-server.ts";
import { traceTransportStats } from "./transport-trace.ts";
import { httpHandler } from "../http/handler.ts";
import { subnetFacts } from "../http/facts.ts";
import { querySignerOf } from "../http/query-response.ts";
import { eventsObserver, eventWriter, maliciousEvent } from "./chaos/events.ts";
import { byzantineProcess, parseByzantineArgument } from "./chaos/byzantine-process.ts";
import type { HashHex } from "../types.ts";
import { NodeCluster } from "./node-cluster.ts";
import { parsePeersArgument, portOption, READY_LINE } from "./containers/standalone.ts";
import { ensureInstrumenter } from "../execution/instrumenter.ts";

/** How often a synchronous call checks whether its message is done. */
const CALL_POLL_MS = 10;

/** Users' calls come as signed IC envelopes; the simulator's keyed-hash user signatures do not exist here. */
const ENVELOPES_ONLY: IngressAuth = {
  sign: () => {
    throw new Error("real mode has no simulated users: submit signed IC envelopes over HTTP");
  },
  verify: () => false,
};

function send(message: FromChild): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: "string" }, subnet: { type: "string" }, node: { type: "string" }, byzantine: { type: "string" },
      "listen-host": { type: "string" }, "p2p-port": { type: "string" }, "http-port": { type: "string" }, peers: { type: "string" },
    },
  });
  const dir = values.dir;
  const subnetName = values.subnet;
  const node = Number(values.node);
  if (dir === undefined || subnetName === undefined || !Number.isInteger(node) || node < 0) throw new Error("usage: node-main --dir DIR --subnet NAME --node I");
  // A real node executes whatever canisters its users install, whenever they do.
  await ensureInstrumenter();
  const self = replicaId(node);
  const spec = readSpec(dir);
  const subnetSpec = spec.subnets.find((s) => s.name === subnetName);
  if (subnetSpec === undefined) throw new Error(`no subnet ${subnetName} in ${dir}`);
  const listenHost = values["listen-host"] ?? "127.0.0.1";
  const standalonePeers = values.peers === undefined ? undefined : parsePeersArgument(values.peers, self, subnetSpec.n);
  const keys = loadNodeKeys(dir, subnetName, self);
  const registry = clusterRegistry(dir, spec);
  const record = registry.byName(subnetName);
  if (record === undefined) throw new Error(`no subnet ${subnetName} in the registry`);
  const genesis = readGenesisCup(dir, subnetName);
  const facts = subnetFacts(keys.verifierKeys, record.canisterRange);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  // Other subnets: their facts in the state tree, XNet, and (not the root) the root's delegation.
  const cluster = new NodeCluster({ dir, spec, registry, subnet: record, self, nowNs: () => BigInt(Date.now()) * 1_000_000n, log });

  const disk = new FileDisk(diskDir(dir, subnetName, self));
  const incarnation = nextIncarnation(dir, subnetName, self);
  const transport = new TcpTransport({
    self,
    network: record.id,
    listenHost,
    listenPort: portOption("p2p-port", values["p2p-port"], 0),
    peers: Array.from({ length: subnetSpec.n }, (_, i) => ({ id: replicaId(i) })).filter((p) => p.id !== self),
    rng: Rng.fromSeed(randomBytes(16).toString("hex")),
  });
  const p2pPort = await transport.start();
  const events = join(nodeDir(dir, subnetName, self), "events.jsonl");
  const writeEvent = eventWriter(events);
  const clock = { now: (): number => env.now() };
  const byzantine = byzantineProcess(values.byzantine === undefined ? [] : parseByzantineArgument(values.byzantine), {
    self,
    n: subnetSpec.n,
    signer: keys.signer,
    now: () => clock.now(),
    log: (event) => {
      env.trace(event);
      writeEvent(maliciousEvent(event, env.now()));
    },
  });
  const env = createRealEnv<Bundle>({
    self,
    seed: `${record.id}/${self}`,
    incarnation,
    disk,
    transport: byzantine.wrapTransport(transport),
    codec: bundleCodec,
    trace: jsonLinesTraceSink(join(nodeDir(dir, subnetName, self), "trace.jsonl")).sink,
  });
  const observer: ReplicaObserver = eventsObserver(writeEvent);
  const replica = new Replica({
    env: cluster.envFor(env),
    ...(cluster.xnet === undefined ? {} : { xnet: cluster.xnet.client }),
    config: spec.consensus,
    membership: new Membership(subnetSpec.n, faultsTolerated(subnetSpec.n)),
    signer: keys.signer,
    verifier: keys.verifierKeys.verifier,
    ingressAuth: ENVELOPES_ONLY,
    genesis,
    observer,
    ...(byzantine.behaviour === undefined ? {} : { behaviour: byzantine.behaviour }),
    makeStateMachine: () =>
      new ExecutionStateMachine(disk, {
        genesis: [],
        ...byzantine.machineOptions,
        checkpointInterval: spec.consensus.dkgIntervalLength + 1,
        subnet: {
          id: record.id,
          registry,
          publicKeyDerOf: (id) => cluster.publicKeyDerOf(id),
          // /subnet/<id>/node/<node>/public_key: agents check query signatures against these.
          nodesOf: (id) => cluster.nodesOf(id),
        },
      }),
  });
  const nodeFacts = facts.nodes[self];
  if (nodeFacts === undefined) throw new Error(`no node ${self} in subnet ${subnetName}`);
  const http = await startHttpServer(
    httpHandler({
      replica,
      facts,
      signer: querySignerOf(keys.signer, nodeFacts.nodeId),
      nowNs: () => BigInt(env.now()) * 1000n,
      waitForCall: (done, timeoutNs) => waitUntil(done, Number(timeoutNs / 1_000_000n)),
      implVersion: "subnetlab real mode",
      ...(cluster.delegated() === undefined ? {} : { delegated: cluster.delegated() }),
    }),
    listenHost,
    portOption("http-port", values["http-port"], 0),
  );
  const xnetPort = await cluster.listen();
  const start = (m: Extract<ToChild, { type: "start" }>): void => {
    for (const [peer, address] of Object.entries(m.peers)) transport.setPeerAddress(replicaId(Number(peer)) as ReplicaId, address);
    env.attach(replica);
    cluster.start(
      m,
      (from, message) => replica.onXNetMessage(from, message),
      (from, reason) => env.trace({ kind: "xnet.wire-reject", detail: { from: `${from.subnet.slice(0, 11)}/${from.replica}`, reason: reason.slice(0, 120) } }),
    );
    replica.start();
    traceTransportStats(transport, env.trace);
  };
  if (standalonePeers !== undefined) {
    // Containers: one subnet, peers by network alias from the command line, no IPC parent.
    start({ type: "start", peers: Object.fromEntries([...standalonePeers].map(([peer, address]) => [String(peer), address])), xnetPeers: {} });
    process.stdout.write(`${READY_LINE} (p2p ${p2pPort}, http ${http.port})\n`);
  } else {
    send({ type: "listening", p2pPort, httpPort: http.port, ...(xnetPort === undefined ? {} : { xnetPort }) });
  }

  process.on("message", (m: ToChild) => {
    if (m.type === "root-urls") return cluster.onRootUrls(m.rootUrls);
    if (m.type === "run-origin") byzantine.setOrigin(m.atUs);
    if (m.type === "final-state") {
      send({ type: "final-state", executedHeight: replica.status().executedHeight, known: m.ids.filter((id) => replica.ingressStatus(id as HashHex) !== undefined) });
    }
    if (m.type !== "start" || standalonePeers !== undefined) return;
    start(m);
    void cluster.ready().then(() => send({ type: "ready" }));
  });
  const stop = (): void => {
    void cluster.close();
    env.close();
    disk.sync();
    disk.close();
    void http.close().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("disconnect", stop); // the parent is gone: do not linger as an orphan
}

/** Polls `done` on the wall clock (the replica makes progress on its own timers and sockets meanwhile). */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, CALL_POLL_MS));
}

/** Which start of this replica this is (a restarted replica draws fresh randomness; counted on disk). */
function nextIncarnation(dir: string, subnet: string, node: ReplicaId): number {
  const path = join(nodeDir(dir, subnet, node), "incarnations");
  appendFileSync(path, "x");
  return statSync(path).size - 1;
}

main().catch((e: unknown) => {
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`${message}\n`);
  send({ type: "fatal", message: e instanceof Error ? e.message : String(e) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
});
