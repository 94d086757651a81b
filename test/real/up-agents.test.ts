// Issue 12 "Done when", real mode: the official agents against `subnetlab up`'s 4-replica subnet of
// OS processes (harness/real/cluster.ts, node-main.ts) — deploy a Motoko canister through the
// management canister, certified updates and signed queries verified by the agent. Expected values: the agents'
// own verification, and the counter fixture's semantics (fixtures/canisters/motoko/counter.mo).
// The crash and partition half is test/real/up-chaos.test.ts (npm run test:real, not in npm test:
// a replica far behind after a partition catches up too slowly in real mode — see its header).
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDL as IDL3 } from "@dfinity/candid";
import * as agent6 from "@icp-sdk/core/agent";
import { Ed25519KeyIdentity as Ed25519KeyIdentity6 } from "@icp-sdk/core/identity";
import * as agent3 from "../agents/dfinity-agent-3/agent.ts";
import * as identity3 from "../agents/dfinity-agent-3/identity.ts";
import { Cluster, type ClusterInfo } from "../../harness/real/cluster.ts";
import { counterIdl, effectiveCanisterOf, fixture, managementIdl, type CounterActor, type ManagementActor } from "../http/helpers.ts";

let cluster: Cluster;
let info: ClusterInfo;

test.before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-up-agents-"));
  cluster = await Cluster.up({ out: dir, nodes: [4], readyTimeoutMs: 120_000 });
  info = cluster.writeInfo();
  cluster.onStop(() => rmSync(dir, { recursive: true, force: true }));
});
test.after.always(async () => {
  await cluster?.stop();
});

function counterOn(agent: agent6.HttpAgent, canisterId: string): CounterActor {
  return agent6.Actor.createActor(counterIdl as never, { agent, canisterId }) as unknown as CounterActor;
}

async function deployCounter(agent: agent6.HttpAgent): Promise<string> {
  const management = agent6.Actor.createActor(managementIdl as never, { agent, canisterId: "aaaaa-aa", callTransform: effectiveCanisterOf, queryTransform: effectiveCanisterOf } as never) as unknown as ManagementActor;
  const { canister_id } = await management.provisional_create_canister_with_cycles({ amount: [10n ** 13n], settings: [] });
  await management.install_code({ mode: { install: null }, canister_id, wasm_module: fixture("motoko/counter.eop.wasm"), arg: new Uint8Array(IDL3.encode([], [])) });
  return canister_id.toText();
}

const replicaUrl = (i: number): string => info.subnets[0]!.replicas[i]!.httpUrl;

test.serial("item 5/6: @icp-sdk/core 6.1 and @dfinity/agent 3.4 deploy and call a Motoko canister on a real 4-process subnet, verifying certificates and query signatures", async (t) => {
  const agent = await agent6.HttpAgent.create({ host: info.url, identity: Ed25519KeyIdentity6.generate(new Uint8Array(32).fill(1)), shouldFetchRootKey: true });
  t.is(Buffer.from(agent.rootKey ?? []).toString("hex"), info.rootKey, "the root key of cluster.json is the one the replicas serve");
  const canisterId = await deployCounter(agent);
  const counter = counterOn(agent, canisterId);
  t.is(await counter.inc(), 1n, "certified reply (v4 call), BLS-verified by the agent");
  t.is(await counter.get(), 1n, "query signed by the answering node");
  // The other agent line, through another replica: gossip brings its calls to the block makers.
  const agentB = await agent3.HttpAgent.create({ host: replicaUrl(2), identity: identity3.Ed25519KeyIdentity.generate(new Uint8Array(32).fill(2)), shouldFetchRootKey: true });
  const counterB = agent3.Actor.createActor(counterIdl as never, { agent: agentB, canisterId }) as unknown as CounterActor;
  t.is(await counterB.inc(), 2n, "v3 call through r2");
  t.is(await counterB.get(), 2n);
});
