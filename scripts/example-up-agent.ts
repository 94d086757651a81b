// The README's "local subnet of real processes" example, runnable: start `npx subnetlab up --nodes 4
// --out reports/up` in another terminal, then `npx tsx scripts/example-up-agent.ts [reports/up]`.
import { readFileSync } from "node:fs";
import { Actor, HttpAgent } from "@icp-sdk/core/agent";
import { IDL } from "@icp-sdk/core/candid";

const dir = process.argv[2] ?? "reports/up";
const { url } = JSON.parse(readFileSync(`${dir}/cluster.json`, "utf8"));
const agent = await HttpAgent.create({ host: url, shouldFetchRootKey: true }); // the subnet's own root key
const ic = Actor.createActor(
  ({ IDL }) =>
    IDL.Service({
      provisional_create_canister_with_cycles: IDL.Func([IDL.Record({ amount: IDL.Opt(IDL.Nat), settings: IDL.Opt(IDL.Null) })], [IDL.Record({ canister_id: IDL.Principal })], []),
      install_code: IDL.Func([IDL.Record({ mode: IDL.Variant({ install: IDL.Null }), canister_id: IDL.Principal, wasm_module: IDL.Vec(IDL.Nat8), arg: IDL.Vec(IDL.Nat8) })], [], []),
    }),
  { agent, canisterId: "aaaaa-aa", callTransform: () => ({ effectiveCanisterId: "aaaaa-aa" }) } as never,
) as unknown as {
  provisional_create_canister_with_cycles(a: { amount: [bigint]; settings: [] }): Promise<{ canister_id: string }>;
  install_code(a: { mode: { install: null }; canister_id: string; wasm_module: Uint8Array; arg: Uint8Array }): Promise<void>;
};
const { canister_id } = await ic.provisional_create_canister_with_cycles({ amount: [10n ** 13n], settings: [] });
await ic.install_code({ mode: { install: null }, canister_id, wasm_module: readFileSync("fixtures/canisters/motoko/counter.eop.wasm"), arg: new Uint8Array(IDL.encode([], [])) });
const counter = Actor.createActor(({ IDL }) => IDL.Service({ inc: IDL.Func([], [IDL.Nat], []), get: IDL.Func([], [IDL.Nat], ["query"]) }), { agent, canisterId: canister_id }) as unknown as {
  inc(): Promise<bigint>;
  get(): Promise<bigint>;
};
// A certified reply and a signed query, both verified by the agent.
console.log(`canister ${String(canister_id)}: inc → ${await counter.inc()}, get → ${await counter.get()}`);
