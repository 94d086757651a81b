// Issue 12 "Done when", real mode: the official agents against `subnetlab up`'s 4-replica subnet of
// OS processes (harness/real/cluster.ts, node-main.ts) — deploy a Motoko canister through the
// management canister, certified updates and signed queries verified by the agent. Expected values: the agents'
// own verification, and the counter fixture's semantics (fixtures/canisters/motoko/counter.mo).
// The crash and partition half is test/real/up-chaos.test.ts (npm run test:real, not in npm test:
// a replica far behind after a partition catches up too slowly in real mode — see its header).
import test from "ava";
import * as agent6 from "@icp-sdk/core/agent";
import { Ed25519KeyIdentity as Ed25519KeyIdentity6 } from "@icp-sdk/core/identity";
import * as agent3 from "../agents/dfinity-agent-3/agent.ts";
import * as identity3 from "../agents/dfinity-agent-3/identity.ts";
import { counterIdl, type CounterActor } from "../http/helpers.ts";
import { clusterForFile, counterOn, deployCounter } from "./up-helpers.ts";

const running = clusterForFile(test, "subnetlab-up-agents-");

const replicaUrl = (i: number): string => running().info.subnets[0]!.replicas[i]!.httpUrl;

test.serial("item 5/6: @icp-sdk/core 6.1 and @dfinity/agent 3.4 deploy and call a Motoko canister on a real 4-process subnet, verifying certificates and query signatures", async (t) => {
  const { info } = running();
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
