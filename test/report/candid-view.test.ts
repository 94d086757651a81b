// Candid decoding for the report and `diff` (issue 11, item 10). Every input below is produced by
// @dfinity/candid's own encoder (IDL.encode) from the values written next to it, so each expected
// text is those values in Candid's text syntax; names come from the ledger fixture's ledger.did.
import test from "ava";
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import { readFileSync } from "node:fs";
import { argumentCount, candidNamesOfDid, candidNamesOfScenario, decodeCandid, didPathOf, withDecodedCandid } from "../../harness/report/candid-view.ts";
import { renderHtmlReport } from "../../harness/report/html.ts";
import { syntheticReport } from "./fixture.ts";

const encode = (types: IDL.Type[], values: unknown[]): Uint8Array => new Uint8Array(IDL.encode(types, values));
const ledgerDid = readFileSync(new URL("../../fixtures/canisters/motoko/ledger.did", import.meta.url), "utf8");
const ledgerNames = candidNamesOfDid(ledgerDid);

// The ledger's types as ledger.did declares them.
const Stats = IDL.Record({ in_flight: IDL.Nat, minted: IDL.Nat, received_total: IDL.Nat, sent_total: IDL.Nat, transfers: IDL.Nat });
const TransferError = IDL.Variant({ insufficient_funds: IDL.Record({ balance: IDL.Nat }), invalid: IDL.Text, refused: IDL.Text, rejected: IDL.Record({ code: IDL.Nat, message: IDL.Text }) });
const Result = IDL.Variant({ err: TransferError, ok: IDL.Nat });
const stats = { in_flight: 527n, minted: 2_000_000n, received_total: 40n, sent_total: 41n, transfers: 9n };

const text = (bytes: Uint8Array, names = {}): string => {
  const view = decodeCandid(bytes, names);
  if (!view.ok) throw new Error(view.error);
  return view.text;
};

test("item 10: a nat reply decodes from its own type table", (t) => {
  // in_flight: () -> (nat) — the probe answer of xnet-ledger-partition.
  t.is(bytesToHex(encode([IDL.Nat], [527n])), "4449444c00017d8f04");
  t.is(text(encode([IDL.Nat], [527n])), "(527 : nat)");
  t.is(text(encode([], [])), "()");
});

test("item 10: record fields take their names from the .did; without it the label hashes show", (t) => {
  const bytes = encode([Stats], [stats]);
  // Fields in wire order (sorted by label hash), values as encoded above.
  t.is(text(bytes, ledgerNames), "(record { sent_total = 41 : nat; transfers = 9 : nat; minted = 2_000_000 : nat; received_total = 40 : nat; in_flight = 527 : nat })");
  t.is(text(bytes), "(record { 372423261 = 41 : nat; 1166776040 = 9 : nat; 1392972673 = 2_000_000 : nat; 1948053222 = 40 : nat; 3297479434 = 527 : nat })");
});

test("item 10: variants, nested records, text escapes", (t) => {
  t.is(text(encode([Result], [{ ok: 12n }]), ledgerNames), "(variant { ok = 12 : nat })");
  t.is(text(encode([Result], [{ err: { insufficient_funds: { balance: 7n } } }]), ledgerNames), "(variant { err = variant { insufficient_funds = record { balance = 7 : nat } } })");
  t.is(text(encode([Result], [{ err: { rejected: { code: 3n, message: `no "ledger"\n` } } }]), ledgerNames), `(variant { err = variant { rejected = record { code = 3 : nat; message = "no \\"ledger\\"\\n" } } })`);
});

test("item 10: every kind of value, several arguments, recursive types", (t) => {
  const bytes = encode(
    [IDL.Bool, IDL.Opt(IDL.Text), IDL.Opt(IDL.Nat), IDL.Vec(IDL.Nat8), IDL.Principal, IDL.Tuple(IDL.Int8, IDL.Float64), IDL.Vec(IDL.Nat16), IDL.Null, IDL.Int, IDL.Nat64],
    [false, ["hi"], [], new Uint8Array([0, 65, 255]), Principal.fromText("aaaaa-aa"), [-3, 1.5], [1, 2], null, -1234n, 18_446_744_073_709_551_615n],
  );
  t.is(argumentCount(bytes), 10);
  t.is(text(bytes), `(false, opt "hi", null, blob "\\00A\\ff", principal "aaaaa-aa", record { -3 : int8; 1.5 : float64 }, vec { 1 : nat16; 2 : nat16 }, null, -1_234 : int, 18_446_744_073_709_551_615 : nat64)`);
  const List = IDL.Rec();
  List.fill(IDL.Opt(IDL.Record({ head: IDL.Nat, tail: List })));
  const names = candidNamesOfDid("type List = opt record { head : nat; tail : List };");
  t.is(text(encode([List], [[{ head: 1n, tail: [{ head: 2n, tail: [] }] }]]), names), "(opt record { head = 1 : nat; tail = opt record { head = 2 : nat; tail = null } })");
  const long = encode([IDL.Vec(IDL.Nat32)], [Array.from({ length: 40 }, (_, i) => i)]);
  t.regex(text(long), /^\(vec \{ 0 : nat32; 1 : nat32; .* 31 : nat32; … 8 more \}\)$/);
});

test("item 10: bytes that are not Candid give a typed error, not an exception", (t) => {
  t.deepEqual(decodeCandid(new Uint8Array([1, 2, 3])), { ok: false, error: "not Candid (no DIDL magic)" });
  const truncated = decodeCandid(encode([IDL.Nat], [5n]).slice(0, -1));
  t.false(truncated.ok);
  const badHeader = decodeCandid(new Uint8Array([0x44, 0x49, 0x44, 0x4c, 0x01, 0x70]));
  t.false(badHeader.ok);
});

test("item 10: Candid hex inside a line of text is decoded in place", (t) => {
  const reply = bytesToHex(encode([Result], [{ ok: 5n }]));
  t.is(withDecodedCandid(`completed@12: ${reply}`, ledgerNames), `completed@12: ${reply} = (variant { ok = 5 : nat })`);
  t.is(withDecodedCandid("received@3"), "received@3");
  t.is(withDecodedCandid("failed@4: reject 5: c0ffee"), "failed@4: reject 5: c0ffee", "hex that is not Candid stays as it was");
  // A reply whose last byte was changed (the diverge fault's "replies" target) says why it does not decode.
  t.regex(withDecodedCandid("completed@29: 4449444c0001"), /^completed@29: 4449444c0001 \(not valid Candid: .+\)$/);
});

test("item 10: the .did is found beside the module or where the scenario says", (t) => {
  const root = new URL("../../", import.meta.url).pathname;
  t.regex(didPathOf(root, "fixtures/canisters/motoko/ledger.classic.wasm") ?? "", /motoko\/ledger\.did$/);
  t.regex(didPathOf(root, "fixtures/canisters/motoko/kv.eop.wasm") ?? "", /motoko\/kv\.did$/);
  t.is(didPathOf(root, "fixtures/nowhere/x.wasm"), undefined);
  const names = candidNamesOfScenario({ subnets: [{ name: "a", n: 4, canisters: [{ name: "ledger-a", wasm: "fixtures/canisters/motoko/ledger.classic.wasm" }] }] });
  t.is(names["1392972673"], "minted");
});

test("item 10: report.html shows probe answers decoded beside the hex", (t) => {
  const inFlight = bytesToHex(encode([IDL.Nat], [527n]));
  const statsHex = bytesToHex(encode([Stats], [stats]));
  const html = renderHtmlReport(syntheticReport({
    probes: [
      { label: "in-flight", atS: 25, answers: { r0: `reply ${inFlight}`, r1: `reply ${inFlight}`, r2: "reject 5: canister trapped" }, heights: { r0: 9, r1: 9, r2: 9 } },
      { label: "stats", atS: 30, answers: { r0: `reply ${statsHex}` }, heights: { r0: 12 } },
    ],
    candidNames: ledgerNames,
  }));
  const table = /<table id="probe-table"[\s\S]*?<\/table>/.exec(html)?.[0] ?? "";
  t.regex(table, /reply 4449444c00017d8f04<\/code> <code class="candid"[^>]*>\(527 : nat\)<\/code>/);
  t.regex(table, /<code class="candid"[^>]*>\(record \{ sent_total = 41 : nat; transfers = 9 : nat; minted = 2_000_000 : nat;/);
  // The dissenting answer (a reject) is its own red line, without a decoded value.
  t.regex(table, /<div class="answer div">.*reject 5: canister trapped<\/code><\/div>/);
});
