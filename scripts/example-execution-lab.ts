// The README's "Canisters without a subnet" example, kept runnable (test/execution/readme-example.test.ts
// runs it): Listing 1's key-value canister in Motoko, an update, a query, a snapshot and a restore.
import { IDL } from "@dfinity/candid";
import { readFileSync } from "node:fs";
import { ensureInstrumenter, ExecutionLab } from "../harness/index.ts";

const wasm = readFileSync(new URL("../fixtures/canisters/motoko/kv.classic.wasm", import.meta.url));
await ensureInstrumenter(); // binaryen, loaded on demand
const lab = new ExecutionLab();
const kv = lab.createCanister();
lab.installCode(kv, wasm);

lab.update(kv, "insert", [IDL.Text, IDL.Text], ["greeting", "hello"], []);
const snapshot = lab.takeSnapshot(kv);
lab.update(kv, "insert", [IDL.Text, IDL.Text], ["greeting", "overwritten"], []);
lab.loadSnapshot(kv, snapshot.id);                                   // backup restored
const [value] = lab.query(kv, "lookup", [IDL.Text], ["greeting"], [IDL.Opt(IDL.Text)]);

console.log(JSON.stringify({ value, instructionsUsed: String(lab.instructionsUsed) }));
