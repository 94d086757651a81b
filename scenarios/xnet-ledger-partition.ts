import { defineScenario } from "../harness/scenario/scenario.ts";

// Two subnets of different sizes each run a token ledger (fixtures/canisters/motoko/ledger.mo).
// Users transfer tokens within a ledger and across subnets (transfer_remote: debit here, credit
// there through certified XNet streams). From 15 s to 35 s the subnets are cut off from each
// other: cross-subnet transfers wait in the streams (their amounts in flight) and complete after
// the heal. At the end, total supply must be conserved and no acknowledged transfer lost.
const accounts = { oneOf: ["alice", "bob", "carol", "dave"] };

export default defineScenario({
  name: "xnet-ledger-partition",
  description:
    "Two subnets (4 and 7 replicas) with one token ledger each; local and cross-subnet transfers while the subnets are partitioned from each other (15–35 s) and after the heal. Supply is conserved, no acknowledged transfer is lost, every call is answered, and both subnets keep certifying.",
  n: 4,
  durationS: 75,
  subnets: [
    { name: "a", n: 4, canisters: [{ name: "ledger-a", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "alice" }, { nat: 1_000_000 }] }] },
    { name: "b", n: 7, canisters: [{ name: "ledger-b", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "bob" }, { nat: 1_000_000 }] }] },
  ],
  xnetFaults: [{ kind: "partition-subnets", groups: [["a"], ["b"]], fromS: 15, toS: 35 }],
  workload: {
    ratePerSec: 8,
    stopS: 45,
    // Signed IC call envelopes from Ed25519, P-256, secp256k1 and anonymous users; 5 % are invalid
    // (bad signature, expired, too large) and must be refused by every replica.
    senders: "mixed",
    invalidPercent: 5,
    calls: [
      { canister: "ledger-a", method: "transfer_remote", args: [{ canister: "ledger-b" }, { text: "alice" }, accounts, { nat: [1, 50] }] },
      { canister: "ledger-b", method: "transfer_remote", args: [{ canister: "ledger-a" }, { text: "bob" }, accounts, { nat: [1, 50] }] },
      { canister: "ledger-a", method: "transfer", args: [accounts, accounts, { nat: [1, 20] }] },
      { canister: "ledger-b", method: "transfer", args: [accounts, accounts, { nat: [1, 20] }] },
    ],
  },
  actions: [
    { atS: 25, kind: "probe", canister: "ledger-a", method: "in_flight", label: "a-in-flight-while-cut" },
    { atS: 70, kind: "probe", canister: "ledger-a", method: "in_flight", label: "a-in-flight-at-end" },
  ],
  expectProbes: { differ: [["a-in-flight-while-cut", "a-in-flight-at-end"]] },
  invariants: [{ kind: "ledger-conservation", ledgers: ["ledger-a", "ledger-b"] }, { kind: "every-call-answered" }],
  consensus: { dkgIntervalLength: 19 },
  expect: { verdict: "pass" },
});
