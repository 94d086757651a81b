import { defineScenario } from "../harness/scenario/scenario.ts";

// Backup and restore: snapshot a ledger, ship a bad upgrade (its post_upgrade wipes the balances,
// see fixtures/canisters/motoko/ledger_bad.mo), notice the damage, load the snapshot. Every step
// is a management canister call ordered by consensus; probes query every replica in between.
const accounts = { oneOf: ["alice", "bob", "carol", "dave"] };

export default defineScenario({
  name: "snapshot-restore",
  description:
    "A Motoko ledger on a 4-replica subnet takes transfers until 10 s, is snapshotted at 12 s, gets a bad upgrade at 15 s that wipes its balances, and is restored from the snapshot at 20 s: its supply is back exactly as before and the books balance.",
  n: 4,
  durationS: 45,
  canisters: [{ name: "ledger", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "alice" }, { nat: 1_000_000 }] }],
  workload: { ratePerSec: 20, stopS: 10, calls: [{ canister: "ledger", method: "transfer", args: [accounts, accounts, { nat: [1, 20] }] }] },
  actions: [
    { atS: 12, kind: "take-snapshot", canister: "ledger", label: "backup" },
    { atS: 14, kind: "probe", canister: "ledger", method: "supply", label: "supply-before" },
    { atS: 14, kind: "probe", canister: "ledger", method: "version", label: "version-before" },
    { atS: 15, kind: "upgrade", canister: "ledger", wasm: "fixtures/canisters/motoko/ledger_bad.classic.wasm", args: [{ text: "alice" }, { nat: 0 }] },
    { atS: 18, kind: "probe", canister: "ledger", method: "supply", label: "supply-after-bad-upgrade" },
    { atS: 20, kind: "load-snapshot", canister: "ledger", snapshot: "backup" },
    { atS: 23, kind: "probe", canister: "ledger", method: "supply", label: "supply-restored" },
    { atS: 23, kind: "probe", canister: "ledger", method: "version", label: "version-restored" },
  ],
  expectProbes: {
    equal: [["supply-before", "supply-restored"], ["version-before", "version-restored"]],
    differ: [["supply-before", "supply-after-bad-upgrade"]],
  },
  invariants: [{ kind: "ledger-conservation", ledgers: ["ledger"] }, { kind: "every-call-answered" }],
  consensus: { dkgIntervalLength: 19 },
  expect: { verdict: "pass" },
});
