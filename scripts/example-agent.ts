// The README's "Use the official agent against a simulated subnet" example, kept runnable
// (`npx tsx scripts/example-agent.ts`; test/http/agents.test.ts covers the same paths): the
// official agent deploys nothing here, it uses a counter installed at genesis, through the
// in-process gateway — certified update, signed query, a crashed replica.
import { Actor, HttpAgent } from "@icp-sdk/core/agent";
import { readFileSync } from "node:fs";
import { AGENT_CLOCK_LEAD_MS, SimHttpGateway, replicaId, simulatedAgentSubnet, timeUs } from "../harness/index.ts";

const wasm = readFileSync(new URL("../fixtures/canisters/motoko/counter.eop.wasm", import.meta.url));
const startTimeUs = (Date.now() + AGENT_CLOCK_LEAD_MS) * 1000; // the virtual clock starts near the agent's wall clock
const sim = simulatedAgentSubnet({ seed: 7, startTimeUs, genesis: [{ wasm }] });
sim.subnet.start();
sim.subnet.run(timeUs(startTimeUs + 3_000_000)); // 3 virtual seconds: the first heights are certified

const gateway = new SimHttpGateway(sim);
const agent = await HttpAgent.create({ host: gateway.host, fetch: gateway.fetch, shouldFetchRootKey: true });
type Counter = { inc(): Promise<bigint>; get(): Promise<bigint> };
const counter = Actor.createActor<Counter>(({ IDL }) => IDL.Service({ inc: IDL.Func([], [IDL.Nat], []), get: IDL.Func([], [IDL.Nat], ["query"]) }), {
  agent,
  canisterId: sim.genesisCanisterIds[0]!,
});

await counter.inc(); // a v4 call: the simulation runs until the reply is certified (≤ 10 virtual s)
sim.subnet.crash(replicaId(0)); // a fault between requests: the gateway serves from replica 1 now
const value = await counter.inc();
console.log(JSON.stringify({ value: String(value), query: String(await counter.get()), servedBy: gateway.log.at(-1)?.replica }));
