// npm run bench:real — a 4-replica real-mode subnet (`subnetlab up`'s processes) driven by the
// official agent (@icp-sdk/core, real signed envelopes) against the Motoko key-value canister.
// An update counts only once its certified reply has been received and verified by the agent;
// queries are signed by the answering node and verified too. Prints progress on stderr and, as its
// last line, {nodes, updatesPerSec, queriesPerSecPerNode, updateP50Ms, updateP99Ms, ...}.
//
//   BENCH_NODES=4 BENCH_SECONDS=20 BENCH_CLIENTS=32 npm run bench:real
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Actor, HttpAgent } from "@icp-sdk/core/agent";
import { IDL } from "@icp-sdk/core/candid";
import { Ed25519KeyIdentity } from "@icp-sdk/core/identity";
import { Cluster } from "../harness/real/cluster.ts";

const NODES = Number(process.env.BENCH_NODES ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
/** Concurrent update callers (each waits for its certified reply before the next call). */
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
/** Concurrent query callers per replica. */
const QUERY_CLIENTS = Number(process.env.BENCH_QUERY_CLIENTS ?? 8);

interface Kv {
  insert(k: string, v: string): Promise<void>;
  lookup(k: string): Promise<[] | [string]>;
}
const kvIdl = ({ IDL: I }: { IDL: typeof IDL }) =>
  I.Service({ insert: I.Func([I.Text, I.Text], [], []), lookup: I.Func([I.Text], [I.Opt(I.Text)], ["query"]), size: I.Func([], [I.Nat], ["query"]) });
const managementIdl = ({ IDL: I }: { IDL: typeof IDL }) =>
  I.Service({
    provisional_create_canister_with_cycles: I.Func([I.Record({ amount: I.Opt(I.Nat), settings: I.Opt(I.Null) })], [I.Record({ canister_id: I.Principal })], []),
    install_code: I.Func([I.Record({ mode: I.Variant({ install: I.Null }), canister_id: I.Principal, wasm_module: I.Vec(I.Nat8), arg: I.Vec(I.Nat8) })], [], []),
  });

const log = (line: string): void => void process.stderr.write(`bench:real: ${line}\n`);
const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

async function agentOn(host: string, seed: number): Promise<HttpAgent> {
  return HttpAgent.create({ host, identity: Ed25519KeyIdentity.generate(new Uint8Array(32).fill(seed)), shouldFetchRootKey: true });
}

async function deployKv(agent: HttpAgent): Promise<string> {
  const ic = Actor.createActor(managementIdl as never, { agent, canisterId: "aaaaa-aa", callTransform: () => ({ effectiveCanisterId: "aaaaa-aa" }) } as never) as unknown as {
    provisional_create_canister_with_cycles(a: { amount: [bigint]; settings: [] }): Promise<{ canister_id: unknown }>;
    install_code(a: { mode: { install: null }; canister_id: unknown; wasm_module: Uint8Array; arg: Uint8Array }): Promise<void>;
  };
  const { canister_id } = await ic.provisional_create_canister_with_cycles({ amount: [10n ** 13n], settings: [] });
  await ic.install_code({ mode: { install: null }, canister_id, wasm_module: readFileSync(new URL("../fixtures/canisters/motoko/kv.eop.wasm", import.meta.url)), arg: new Uint8Array(IDL.encode([], [])) });
  return String(canister_id);
}

const dir = mkdtempSync(join(tmpdir(), "subnetlab-bench-real-"));
const cluster = await Cluster.up({ out: dir, nodes: [NODES], progress: log, readyTimeoutMs: 120_000 });
try {
  const info = cluster.writeInfo();
  const urls = info.subnets[0]!.replicas.map((r) => r.httpUrl);
  const canisterId = await deployKv(await agentOn(info.url, 1));
  log(`kv canister ${canisterId} installed; ${CLIENTS} update clients spread over ${urls.length} replicas, ${QUERY_CLIENTS} query clients per replica, ${SECONDS} s`);
  const kvs: Kv[] = await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => Actor.createActor(kvIdl as never, { agent: await agentOn(urls[c % urls.length] as string, 10 + (c % 200)), canisterId }) as unknown as Kv));
  const queryKvs: Kv[][] = await Promise.all(urls.map(async (url, r) => Promise.all(Array.from({ length: QUERY_CLIENTS }, async (_, c) => Actor.createActor(kvIdl as never, { agent: await agentOn(url, 100 + r * 16 + c), canisterId }) as unknown as Kv))));
  const until = Date.now() + SECONDS * 1000;
  const latenciesMs: number[] = [];
  let failedUpdates = 0;
  const queriesPerReplica = urls.map(() => 0);
  const updaters = kvs.map(async (kv, c) => {
    for (let i = 0; Date.now() < until; i++) {
      const started = performance.now();
      try {
        await kv.insert(`c${c}-k${i}`, `v${i}`);
        latenciesMs.push(performance.now() - started);
      } catch {
        failedUpdates++;
      }
    }
  });
  const queriers = queryKvs.flatMap((group, r) =>
    group.map(async (kv, c) => {
      while (Date.now() < until) {
        await kv.lookup(`c${c}-k0`);
        queriesPerReplica[r] = (queriesPerReplica[r] ?? 0) + 1;
      }
    }),
  );
  const ticker = setInterval(() => log(`${latenciesMs.length} certified updates, ${queriesPerReplica.reduce((a, b) => a + b, 0)} verified queries so far`), 5000);
  await Promise.all([...updaters, ...queriers]);
  clearInterval(ticker);
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const result = {
    nodes: NODES,
    seconds: SECONDS,
    clients: CLIENTS,
    updatesPerSec: Number((latenciesMs.length / SECONDS).toFixed(1)),
    queriesPerSecPerNode: Number((queriesPerReplica.reduce((a, b) => a + b, 0) / urls.length / SECONDS).toFixed(1)),
    updateP50Ms: Math.round(percentile(sorted, 0.5)),
    updateP99Ms: Math.round(percentile(sorted, 0.99)),
    failedUpdates,
    goal: { updatesPerSec: 1000, queriesPerSecPerNode: 4000 },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
