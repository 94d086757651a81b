import { defineScenario } from "../harness/scenario/scenario.ts";

// A token ledger is upgraded (install_code, mode upgrade, through consensus as a management
// canister call) while transfers stream in at 40 per second. Calls queued before the upgrade run
// on the new code; none may be lost, the books must still balance, and the version changes.
const accounts = { oneOf: ["alice", "bob", "carol", "dave"] };

export default defineScenario({
  name: "upgrade-under-load",
  description:
    "A Motoko ledger on a 4-replica subnet is upgraded to v2 at 12 s while transfers stream in (40/s until 25 s). Every finalized call is answered, the balances survive the upgrade (supply conserved) and version() changes from v1 to v2.",
  n: 4,
  durationS: 50,
  canisters: [{ name: "ledger", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "alice" }, { nat: 1_000_000 }] }],
  workload: { ratePerSec: 40, stopS: 25, calls: [{ canister: "ledger", method: "transfer", args: [accounts, accounts, { nat: [1, 20] }] }] },
  actions: [
    { atS: 6, kind: "probe", canister: "ledger", method: "version", label: "version-before" },
    { atS: 12, kind: "upgrade", canister: "ledger", wasm: "fixtures/canisters/motoko/ledger_v2.classic.wasm", args: [{ text: "alice" }, { nat: 0 }] },
    { atS: 20, kind: "probe", canister: "ledger", method: "version", label: "version-after" },
  ],
  expectProbes: { differ: [["version-before", "version-after"]] },
  invariants: [{ kind: "ledger-conservation", ledgers: ["ledger"] }, { kind: "every-call-answered" }],
  consensus: { dkgIntervalLength: 19 },
  expect: { verdict: "pass" },
});
