// Issue 15 item 2: time and rounds in ExecutionLab as on a subnet. On the IC a call tree spreads
// over execution rounds, the subnet's time moves on between rounds, and heartbeats and global
// timers run in between (interface spec "Global timer" and "Heartbeat": they are scheduled by the
// system at the start of rounds, not inside another message's execution). The canister is
// fixtures/canisters/motoko/rounds.mo, compiled by the real Motoko compiler.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { DEFAULT_ROUND_INTERVAL_NS, ExecutionLab, LabError } from "../../harness/execution/lab.ts";
import { APP_SUBNET_ROUND_CONFIG } from "../../harness/execution/round.ts";
import { fixture } from "./helpers.ts";

const SECOND_NS = 1_000_000_000n;

for (const build of ["classic", "eop"] as const) {
  const wasm = fixture(`motoko/rounds.${build}.wasm`);
  const labWith = (options: ConstructorParameters<typeof ExecutionLab>[0] = {}) => {
    const lab = new ExecutionLab(options);
    const id = lab.createCanister();
    lab.installCode(id, wasm);
    return { lab, id };
  };

  test(`item 2 (${build}): direct mode — a canister waiting for its own timer sees it fire between the rounds of its call tree`, (t) => {
    const { lab, id } = labWith();
    const start = lab.timeNs;
    const [hops] = lab.update(id, "waitForTimer", [IDL.Nat], [2n], [IDL.Nat]) as [bigint];
    t.true(hops >= 1n, `it had to wait (hops ${hops})`);
    t.true(lab.timeNs - start >= 2n * SECOND_NS, `the clock moved past the timer (${lab.timeNs - start} ns)`);
    t.is((lab.timeNs - start) % DEFAULT_ROUND_INTERVAL_NS, 0n, "time moves in whole rounds");
  });

  test(`item 2 (${build}): a call tree that never ends is given up after maxRoundsPerCall rounds, with the bound named`, (t) => {
    // No time passes between rounds: the timer is never due, so the canister waits forever.
    const { lab, id } = labWith({ roundIntervalNs: 0n, maxRoundsPerCall: 40 });
    const error = t.throws(() => lab.update(id, "waitForTimer", [IDL.Nat], [1n], [IDL.Nat]), { instanceOf: LabError });
    t.regex(error?.message ?? "", /after 40 rounds \(LabOptions\.maxRoundsPerCall\)/);
  });

  test(`item 2 (${build}): direct mode — every generation of a call tree after the first is a round: heartbeats run, time advances`, (t) => {
    for (const intervalNs of [DEFAULT_ROUND_INTERVAL_NS, 250_000_000n]) {
      const { lab, id } = labWith({ roundIntervalNs: intervalNs });
      const depth = 3n;
      const [beats, elapsedNs] = lab.update(id, "chain", [IDL.Nat], [depth], [IDL.Nat, IDL.Int]) as [bigint, bigint];
      // Each hop is a request generation and a response generation; the first request runs in the
      // round of the ingress message: 2·depth − 1 later rounds.
      t.is(elapsedNs, (2n * depth - 1n) * intervalNs, `Time.now() moved by one interval per later round (interval ${intervalNs})`);
      t.true(beats >= 1n, `heartbeats ran while the chain was in flight (${beats})`);
    }
  });

  test(`item 2 (${build}): rounds mode — the clock moves on by the round interval after each round, timers fire while a call waits`, (t) => {
    const { lab, id } = labWith({ rounds: APP_SUBNET_ROUND_CONFIG, roundIntervalNs: 500_000_000n });
    const start = lab.timeNs;
    lab.tick();
    t.is(lab.timeNs - start, 500_000_000n);
    const before = lab.timeNs;
    const [hops] = lab.update(id, "waitForTimer", [IDL.Nat], [1n], [IDL.Nat]) as [bigint];
    t.true(hops >= 1n);
    t.true(lab.timeNs - before >= SECOND_NS, `the call spanned the timer's second (${lab.timeNs - before} ns)`);
  });

  test(`item 2 (${build}): rounds mode routes a canister's call to the management canister (aaaaa-aa) through the subnet queue`, (t) => {
    for (const options of [{}, { rounds: APP_SUBNET_ROUND_CONFIG }]) {
      const { lab, id } = labWith(options);
      t.deepEqual(lab.update(id, "randomBytes", [], [], [IDL.Nat]), [32n], `raw_rand answered (${"rounds" in options ? "rounds" : "direct"} mode)`);
    }
  });
}

test("item 2: the lab refuses a negative round interval and a bound that is not a positive integer", (t) => {
  t.throws(() => new ExecutionLab({ roundIntervalNs: -1n }), { instanceOf: RangeError, message: /roundIntervalNs/ });
  t.throws(() => new ExecutionLab({ maxRoundsPerCall: 0 }), { instanceOf: RangeError, message: /maxRoundsPerCall/ });
});
