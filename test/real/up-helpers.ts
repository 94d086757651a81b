// Shared set-up of the real-mode tests: one `subnetlab up` cluster of 4 replica processes per test
// file (started before its tests, stopped and removed after), and the counter canister deployed
// through the management canister with @icp-sdk/core.
import type { TestFn } from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDL } from "@dfinity/candid";
import * as agent6 from "@icp-sdk/core/agent";
import { Cluster, type ClusterInfo } from "../../harness/real/cluster.ts";
import type { ConsensusConfig } from "../../harness/consensus/config.ts";
import { counterIdl, effectiveCanisterOf, fixture, managementIdl, type CounterActor, type ManagementActor } from "../http/helpers.ts";

export interface RunningCluster {
  readonly cluster: Cluster;
  readonly info: ClusterInfo;
}

/** Registers before/after hooks on `test` that run a 4-replica cluster; read it inside the tests. */
export function clusterForFile(test: TestFn, prefix: string, consensus?: ConsensusConfig): () => RunningCluster {
  let running: RunningCluster | undefined;
  test.before(async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const cluster = await Cluster.up({ out: dir, nodes: [4], readyTimeoutMs: 120_000, ...(consensus === undefined ? {} : { consensus }) });
    cluster.onStop(() => rmSync(dir, { recursive: true, force: true }));
    running = { cluster, info: cluster.writeInfo() };
  });
  test.after.always(async () => {
    await running?.cluster.stop();
  });
  return () => {
    if (running === undefined) throw new Error("the cluster did not start (see the before hook's failure)");
    return running;
  };
}

export function counterOn(agent: agent6.HttpAgent, canisterId: string): CounterActor {
  return agent6.Actor.createActor(counterIdl as never, { agent, canisterId }) as unknown as CounterActor;
}

/** Creates a canister with cycles and installs the Motoko counter (fixtures/canisters/motoko/counter.mo). */
export async function deployCounter(agent: agent6.HttpAgent): Promise<string> {
  const management = agent6.Actor.createActor(managementIdl as never, { agent, canisterId: "aaaaa-aa", callTransform: effectiveCanisterOf, queryTransform: effectiveCanisterOf } as never) as unknown as ManagementActor;
  const { canister_id } = await management.provisional_create_canister_with_cycles({ amount: [10n ** 13n], settings: [] });
  await management.install_code({ mode: { install: null }, canister_id, wasm_module: fixture("motoko/counter.eop.wasm"), arg: new Uint8Array(IDL.encode([], [])) });
  return canister_id.toText();
}
