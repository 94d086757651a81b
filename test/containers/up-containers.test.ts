// Issue 12 item 10 and its "Done when" line about .ci/run: `subnetlab up --containers` — the same
// 4-replica subnet as `up`, one Docker container per replica. Not in npm test (it needs an engine):
// `npm run test:containers`, which .ci/run runs where the engine can be had.
//
// The engine comes from scripts/docker-engine.ts (a running one, or Debian's docker.io installed
// and dockerd started by hand); a dockerd this file started is stopped again at the end, so a
// developer's machine keeps no daemon it did not have (its state folder, with the cached image,
// stays under /var/tmp/subnetlab-docker). Expected values: the agent's own certificate and
// signature checks, and the counter fixture's semantics (fixtures/canisters/motoko/counter.mo).
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as agent6 from "@icp-sdk/core/agent";
import { Ed25519KeyIdentity as Ed25519KeyIdentity6 } from "@icp-sdk/core/identity";
import { ContainerCluster, type ContainerClusterInfo } from "../../harness/real/containers/cluster.ts";
import { containerRuntime } from "../../harness/real/containers/engine.ts";
import { ensureReplicaImage } from "../../harness/real/containers/image.ts";
import { ensureDockerEngine, stopDockerEngine } from "../../scripts/docker-engine.ts";
import { counterOn, deployCounter } from "../real/up-helpers.ts";

const CLI = new URL("../../bin/subnetlab.js", import.meta.url).pathname;
/** Generous: four containers compile and start on two shared, loaded cores. */
const READY_TIMEOUT_MS = 180_000;
const CATCH_UP_DEADLINE_MS = 180_000;

let engineStartedHere = false;
let running: { cluster: ContainerCluster; info: ContainerClusterInfo } | undefined;
/** The counter the done-when test deploys (at 2 after it); the partition test calls it again. */
let counterCanister: string | undefined;

test.before(async () => {
  const engine = await ensureDockerEngine({ progress: (line) => console.log(`docker-engine: ${line}`) });
  if (!engine.ok) throw new Error(`no Docker engine (${engine.kind}): ${engine.reason}`);
  engineStartedHere = engine.startedNow;
  process.env.DOCKER_HOST = engine.dockerHost;
});

test.after.always(async () => {
  await running?.cluster.stop();
  if (engineStartedHere) await stopDockerEngine();
});

const cluster = (): { cluster: ContainerCluster; info: ContainerClusterInfo } => {
  if (running === undefined) throw new Error("the container cluster did not start (see the earlier test's failure)");
  return running;
};

test.serial("item 10: the replica image is built locally, and a second build is only a look-up by its content tag", async (t) => {
  const client = await containerRuntime();
  const first = await ensureReplicaImage(client);
  const startedAt = Date.now();
  const second = await ensureReplicaImage(client);
  t.is(second.tag, first.tag);
  t.false(second.built, "the same content is not built twice");
  t.true(Date.now() - startedAt < 15_000, `the cached look-up took ${Date.now() - startedAt} ms`);
  t.true((await client.image.inspect((await import("testcontainers")).ImageName.fromString(first.tag))).Size > 0);
});

test.serial("item 10: up --containers starts one container per replica, each holding only its own secret keys, and writes the same cluster.json line as up", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-up-containers-"));
  const started = await ContainerCluster.up({ out: dir, nodes: [4], readyTimeoutMs: READY_TIMEOUT_MS, progress: (line) => t.log(line) });
  started.onStop(() => rmSync(dir, { recursive: true, force: true }));
  running = { cluster: started, info: await started.writeInfo() };
  const { info } = running;
  t.is(info.subnets[0]?.replicas.length, 4);
  t.true(info.subnets[0]!.replicas.every((r) => r.pid > 0 && r.httpUrl.startsWith("http://127.0.0.1:") && r.container !== ""), "running containers, published on loopback");
  t.regex(info.rootKey, /^308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100[0-9a-f]{192}$/, "a BLS12-381 public key in the DER form agents expect");
  // What r3's container can see of the run directory: its own node folder only.
  const seen = await started.exec("s0/r3", ["/usr/bin/node", "-e", `process.stdout.write(JSON.stringify(require("fs").readdirSync(${JSON.stringify(join(dir, "nodes"))})))`]);
  t.is(seen.exitCode, 0, seen.output);
  t.deepEqual(JSON.parse(seen.output), ["s0-r3"]);
});

test.serial("item 10 (done-when): the agent deploys and calls the counter; with one container killed the other three certify updates; restarted from its disk it catches up", async (t) => {
  const { cluster: containers, info } = cluster();
  const agent = await agent6.HttpAgent.create({ host: info.url, identity: Ed25519KeyIdentity6.generate(new Uint8Array(32).fill(10)), shouldFetchRootKey: true });
  t.is(Buffer.from(agent.rootKey ?? []).toString("hex"), info.rootKey, "the root key of cluster.json is the one the replicas serve");
  const startedAt = Date.now();
  const phase = (what: string): void => t.log(`${what} at ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  const canisterId = await deployCounter(agent);
  phase("deployed");
  counterCanister = canisterId;
  const counter = counterOn(agent, canisterId);
  t.is(await counter.inc(), 1n, "certified reply, BLS-verified by the agent");
  t.is(await counter.get(), 1n, "query signed by the answering node");

  phase("first update and query");
  await containers.kill("s0/r3");
  t.false(await containers.running("s0/r3"), "r3's container is dead");
  t.is(await counter.inc(), 2n, "three of four replicas certify an update");

  phase("update with r3 dead");
  await containers.restart("s0/r3");
  phase("r3 restarted");
  t.true(await containers.running("s0/r3"));
  // r3 answers a query from its own state: it shows 2 only once it has caught up.
  const r3 = counterOn(await agent6.HttpAgent.create({ host: containers.httpUrl("s0/r3"), shouldFetchRootKey: true }), canisterId);
  const until = Date.now() + CATCH_UP_DEADLINE_MS;
  let seen = -1n;
  while (seen !== 2n && Date.now() < until) {
    seen = await r3.get().catch(() => -1n);
    if (seen !== 2n) await new Promise((r) => setTimeout(r, 500));
  }
  phase("r3 caught up");
  t.is(seen, 2n, "the restarted r3 holds the update certified while it was dead");
});

test.serial("item 10: a partition is a network disconnect — the other three certify an update, and after the reconnect the cut-off replica catches up", async (t) => {
  const { cluster: containers, info } = cluster();
  const agent = await agent6.HttpAgent.create({ host: info.url, identity: Ed25519KeyIdentity6.generate(new Uint8Array(32).fill(11)), shouldFetchRootKey: true });
  const canisterId = counterCanister;
  if (canisterId === undefined) throw new Error("the done-when test did not deploy the counter");
  const counter = counterOn(agent, canisterId);
  await containers.disconnect("s0/r2");
  const cutOff = await fetch(`${containers.httpUrl("s0/r2")}/api/v2/status`, { signal: AbortSignal.timeout(3000) }).then(() => "answered", () => "unreachable");
  t.is(cutOff, "unreachable", "off the network, r2 cannot be reached (its port is published through the network)");
  t.true(await containers.running("s0/r2"), "r2 keeps running, alone");
  t.is(await counter.inc(), 3n, "three of four replicas certify an update");
  await containers.connect("s0/r2");
  const r2 = counterOn(await agent6.HttpAgent.create({ host: containers.httpUrl("s0/r2"), shouldFetchRootKey: true }), canisterId);
  const until = Date.now() + CATCH_UP_DEADLINE_MS;
  let seen = -1n;
  while (seen !== 3n && Date.now() < until) {
    seen = await r2.get().catch(() => -1n);
    if (seen !== 3n) await new Promise((r) => setTimeout(r, 500));
  }
  t.is(seen, 3n, "reconnected under its alias, r2 holds the update certified while it was cut off");
});

test.serial("item 10: the command line — up --containers prints the ready line, and SIGINT removes every container and the network", async (t) => {
  await running?.cluster.stop(); // one cluster at a time on two cores
  running = undefined;
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-up-containers-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [CLI, "up", "--containers", "--nodes", "4", "--out", dir, "--ready-timeout-s", String(READY_TIMEOUT_MS / 1000)], { stdio: ["ignore", "pipe", "pipe"], env: process.env });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const until = Date.now() + READY_TIMEOUT_MS + 60_000;
  while (!stdout.includes("\n") && child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
  t.true(stdout.includes("\n"), `no ready line; stderr: ${stderr}`);
  const info = JSON.parse(stdout.split("\n")[0] as string) as ContainerClusterInfo;
  t.deepEqual(JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8")), info, "the same line in DIR/cluster.json");
  t.is((await fetch(`${info.url}/api/v2/status`)).status, 200);
  const client = await containerRuntime();
  const ours = async (): Promise<string[]> => (await client.container.dockerode.listContainers({ all: true })).flatMap((c) => c.Names).filter((name) => name.includes(info.network));
  t.is((await ours()).length, 4);
  child.kill("SIGINT");
  t.is(await exited, 0, stderr);
  t.deepEqual(await ours(), [], "no container of the cluster is left");
  const networks = await client.container.dockerode.listNetworks();
  t.false(networks.some((n) => n.Name === info.network), "the network is removed");
});
