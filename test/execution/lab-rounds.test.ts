// ExecutionLab in rounds mode: the Wasm executor driven by the round driver (round.ts) with
// deterministic time slicing. Expected behaviour (ic-protocol.md §4.5): a message above one slice
// runs over several rounds and its effects appear only when it finishes; replies equal the
// direct mode's.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { ExecutionLab } from "../../harness/execution/index.ts";
import { APP_SUBNET_ROUND_CONFIG, type RoundConfig } from "../../harness/execution/round.ts";
import { fixture } from "./helpers.ts";

const SLICE = 1_000_000n;
const config: RoundConfig = {
  ...APP_SUBNET_ROUND_CONFIG,
  scheduler: {
    ...APP_SUBNET_ROUND_CONFIG.scheduler,
    cores: 2,
    maxInstructionsPerSlice: SLICE,
    maxInstructionsPerMessageWithoutDts: SLICE,
    maxInstructionsPerRound: 2n * SLICE,
    maxInstructionsPerMessage: 200n * SLICE,
    instructionOverheadPerExecution: 0n,
    instructionOverheadPerCanister: 0n,
  },
};

test("a long Motoko message is time-sliced over rounds and replies like in direct mode", (t) => {
  const direct = new ExecutionLab();
  const d = direct.createCanister();
  direct.installCode(d, fixture("motoko/long.classic.wasm"));
  const n = 100_000n;
  const expected = direct.update(d, "spin", [IDL.Nat], [n], [IDL.Nat]);
  const cost = direct.updateRaw(d, "spin", IDL.encode([IDL.Nat], [n])).instructionsUsed;
  t.true(cost > 3n * SLICE, `spin(${n}) costs ${cost}, several slices`);

  const lab = new ExecutionLab({ rounds: config });
  const id = lab.createCanister();
  lab.installCode(id, fixture("motoko/long.classic.wasm"));
  const startRound = lab.round;
  t.deepEqual(lab.update(id, "spin", [IDL.Nat], [n], [IDL.Nat]), expected);
  const done = lab.lastRound?.executed.find((e) => e.message.kind === "ingress");
  t.truthy(done);
  t.is(done?.instructionsUsed, cost, "same instruction count as the direct execution");
  const slices = Number((cost + SLICE - 1n) / SLICE);
  t.is(done?.slices, slices, "one slice per started million instructions");
  t.true(lab.round - startRound >= Math.ceil(slices / 2), "spread over several rounds");
  t.deepEqual(lab.query(id, "getLast", [], [], [IDL.Nat]), expected);
});

test("inter-canister calls and timers work through the round driver", (t) => {
  const lab = new ExecutionLab({ rounds: config });
  const callee = lab.createCanister();
  const caller = lab.createCanister();
  lab.installCode(callee, fixture("motoko/callee.eop.wasm"));
  lab.installCode(caller, fixture("motoko/caller.eop.wasm"));
  t.deepEqual(lab.update(caller, "callPing", [IDL.Text, IDL.Nat], [callee, 9n], [IDL.Nat]), [10n]);
  t.deepEqual(lab.update(caller, "callFail", [IDL.Text], [callee], [IDL.Text]), ["rejected"]);
  t.deepEqual(lab.update(caller, "callFail", [IDL.Text], ["aaaaa-aa"], [IDL.Text]), ["rejected"]);
  const counter = lab.createCanister();
  lab.installCode(counter, fixture("motoko/counter.classic.wasm"));
  lab.update(counter, "armTimer", [IDL.Nat], [1n], []);
  lab.advanceTime(1_000_000_000n);
  lab.tick();
  lab.tick();
  t.deepEqual(lab.query(counter, "tickCount", [], [], [IDL.Nat]), [1n]);
});
