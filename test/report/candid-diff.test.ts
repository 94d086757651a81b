// `subnetlab diff` shows Candid replies decoded (issue 11, item 10). The replies are made by
// @dfinity/candid's encoder from the values named beside them; names from the ledger's ledger.did.
import test from "ava";
import { IDL } from "@dfinity/candid";
import { bytesToHex } from "@noble/hashes/utils.js";
import { readFileSync } from "node:fs";
import { candidNamesOfDid } from "../../harness/report/candid-view.ts";
import { describeStateDiff } from "../../harness/replay/inspect.ts";

const ledgerNames = candidNamesOfDid(readFileSync(new URL("../../fixtures/canisters/motoko/ledger.did", import.meta.url), "utf8"));
const Result = IDL.Variant({ err: IDL.Text, ok: IDL.Nat });
const encode = (types: IDL.Type[], values: unknown[]): Uint8Array => new Uint8Array(IDL.encode(types, values));

test("item 10: `diff` shows the differing replies decoded beside their hex", (t) => {
  const replyA = bytesToHex(encode([Result], [{ ok: 5n }]));
  const replyB = bytesToHex(encode([Result], [{ ok: 6n }]));
  const text = describeStateDiff({
    height: 12,
    replicas: ["r0", "r3"],
    subtrees: [{ path: "/ingress_history", equal: 4, differing: [{ key: "ab12", a: `completed@12: ${replyA}`, b: `completed@12: ${replyB}` }] }],
    candidNames: ledgerNames,
  });
  t.true(text.includes(`r0 "completed@12: ${replyA} = (variant { ok = 5 : nat })"  r3 "completed@12: ${replyB} = (variant { ok = 6 : nat })"`), text);
});
