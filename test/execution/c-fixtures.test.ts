// The C fixtures for inter-canister calls and long-running messages (the Motoko ones are covered
// in messages/lab-rounds tests): replies and rejects travel back through the caller's callbacks;
// a long message is time-sliced over rounds and answers exactly as in one go.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { Principal } from "@dfinity/principal";
import { ExecutionLab } from "../../harness/execution/index.ts";
import { APP_SUBNET_ROUND_CONFIG, type RoundConfig } from "../../harness/execution/round.ts";
import type { CallResult } from "../../harness/execution/lab.ts";
import { fixture } from "./helpers.ts";

const text = (r: CallResult): string => (r.response.kind === "reply" ? new TextDecoder().decode(r.response.data) : `reject ${r.response.code}: ${r.response.message}`);
const u64 = (n: bigint): Uint8Array => {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, n, true);
  return bytes;
};

test("C caller/callee: a reply and a reject come back through the callbacks", (t) => {
  const lab = new ExecutionLab();
  const callee = lab.createCanister();
  const caller = lab.createCanister();
  lab.installCode(callee, fixture("c/callee.wasm"));
  lab.installCode(caller, fixture("c/caller.wasm"));
  const calleeBytes = Principal.fromText(callee).toUint8Array();
  t.is(text(lab.updateRaw(caller, "call_echo", calleeBytes)), "got:echo:ping");
  // Reject code 4 = CANISTER_REJECT (interface spec, "Reject codes").
  t.is(text(lab.updateRaw(caller, "call_fail", calleeBytes)), "rejected 4:callee says no");
  // A callee that does not exist: the system rejects with code 3 (DESTINATION_INVALID).
  t.regex(text(lab.updateRaw(caller, "call_echo", Principal.fromText("aaaaa-aa").toUint8Array())), /^rejected [35]:/);
});

test("C long-running message: sliced over rounds, same answer and instruction count as in one go", (t) => {
  const n = 200_000n;
  const direct = new ExecutionLab();
  const d = direct.createCanister();
  direct.installCode(d, fixture("c/long.wasm"));
  const once = direct.updateRaw(d, "spin", u64(n));
  const slice = once.instructionsUsed / 4n + 1n;
  const config: RoundConfig = {
    ...APP_SUBNET_ROUND_CONFIG,
    scheduler: {
      ...APP_SUBNET_ROUND_CONFIG.scheduler,
      cores: 2,
      maxInstructionsPerSlice: slice,
      maxInstructionsPerMessageWithoutDts: slice,
      maxInstructionsPerRound: 2n * slice,
      maxInstructionsPerMessage: 100n * slice,
      instructionOverheadPerExecution: 0n,
      instructionOverheadPerCanister: 0n,
    },
  };
  const lab = new ExecutionLab({ rounds: config });
  const id = lab.createCanister();
  lab.installCode(id, fixture("c/long.wasm"));
  const start = lab.round;
  const sliced = lab.updateRaw(id, "spin", u64(n));
  t.deepEqual(sliced.response, once.response);
  const done = lab.lastRound?.executed.find((e) => e.message.kind === "ingress");
  t.is(done?.instructionsUsed, once.instructionsUsed);
  t.is(done?.slices, 4, "four slices of a quarter of the cost each");
  t.true(lab.round - start >= 2, "spread over several rounds");
});
