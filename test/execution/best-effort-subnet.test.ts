// Issue 15 item 4: best-effort calls on simulated subnets, across subnets through certified
// streams. The deadline travels with the request (the callee's ic0.msg_deadline) and back with the
// response; the caller's subnet expires the callback at the start of a batch whose time is past
// the deadline (dfinity/ic rs/messaging/src/state_machine.rs: time out, then induct, then
// execute), with SYS_UNKNOWN and "Call deadline has expired." (rs/replicated_state/src/
// canister_state/system_state.rs). The callee still executes a request it receives; its late
// answer is dropped. A canister stopped while its best-effort call is outstanding stops once the
// expiry closed the call context. Canisters: fixtures/canisters/motoko/besteffort.mo (EOP build).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { MANAGEMENT_TYPES } from "../../harness/execution/management.ts";
import type { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { replicaId, secondsToUs } from "../../harness/types.ts";
import { buildIC, decodeReply, fixture, statuses, submitCall } from "../routing/xnet-helpers.ts";

const wasm = fixture("motoko/besteffort.eop.wasm");

function twoSubnets(seed: number) {
  const ic = buildIC(seed, [
    { name: "a", n: 4, wasm: [wasm] },
    { name: "b", n: 4, wasm: [wasm] },
  ]);
  ic.start();
  ic.run(secondsToUs(3));
  const caller = ic.registry.canisterId(ic.record("a"), 0);
  const callee = ic.registry.canisterId(ic.record("b"), 0);
  return { ic, caller, callee, calleeP: Principal.fromText(callee) };
}

/** Every live replica's answer: they must agree. */
const answers = (ic: ReturnType<typeof twoSubnets>["ic"], subnet: string, id: Parameters<typeof statuses>[2], types: IDL.Type[]): unknown[] =>
  statuses(ic, subnet, id).map((s) => decodeReply(s, types));

test("item 4: across subnets the callee sees the caller's deadline, and so does the caller's callback", (t) => {
  const { ic, caller, calleeP } = twoSubnets(7);
  const asked = submitCall(ic, "a", caller, "askDeadline", [IDL.Principal, IDL.Nat32], [calleeP, 60]);
  ic.run(secondsToUs(20));
  const [first, ...rest] = answers(ic, "a", asked, [IDL.Text]);
  for (const other of rest) t.deepEqual(other, first, "all replicas agree");
  const text = Array.isArray(first) ? String(first[0]) : String(first);
  const m = /^callee (\d+) callback (\d+)$/.exec(text);
  t.truthy(m, text);
  t.is(m?.[1], m?.[2], "the deadline crossed the stream unchanged");
  t.is(BigInt(m?.[1] ?? "1") % 1_000_000_000n, 0n, "whole seconds");
  t.true(BigInt(m?.[1] ?? "0") >= 63_000_000_000n, "call time (after 3 s) + 60 s");
});

test("item 4: a best-effort call to another subnet that outlives its deadline — SYS_UNKNOWN for the caller, the callee runs anyway; a caller stopped meanwhile stops once the expiry closed its call", (t) => {
  const { ic, caller, callee, calleeP } = twoSubnets(7);
  // Timeout 0: the deadline is the call's own second; the answer needs a round trip between subnets.
  const asked = submitCall(ic, "a", caller, "askSlow", [IDL.Principal, IDL.Nat32, IDL.Nat], [calleeP, 0, 0n]);
  let at = 3;
  while (statuses(ic, "a", asked)[0]?.status !== "processing" && at < 10) ic.run(secondsToUs((at += 0.25)));
  const stop = (): ReturnType<typeof submitCall> =>
    submitCall(ic, "a", "aaaaa-aa", "stop_canister", [IDL.Record({ canister_id: IDL.Principal })], [{ canister_id: Principal.fromText(caller) }], "genesis");
  const early = stop();
  ic.run(secondsToUs((at += 10)));
  t.deepEqual(answers(ic, "a", early, [])[0], "reject 2: Stop canister request timed out", "its call context was still open (IC0206, error_types lib.rs; the IC answers after its timeout)");
  for (const a of answers(ic, "a", asked, [IDL.Text])) t.regex(String((a as unknown[])[0]), /^reject system_unknown: Call deadline has expired\. callback \d+000000000$/);
  const b = ic.subnet("b").replica(replicaId(0))?.stateMachine as ExecutionStateMachine;
  const finished = b.query(callee, "finishedCount", new Uint8Array(IDL.encode([], [])));
  t.deepEqual(finished.kind === "reply" ? IDL.decode([IDL.Nat], finished.data) : finished, [1n], "the callee executed the request");
  const late = stop();
  ic.run(secondsToUs((at += 3)));
  for (const a of answers(ic, "a", late, [])) t.deepEqual(a, [], "stopped: nothing was left open");
});

test("item 4: upgrading a caller while its best-effort call is outstanding — Motoko's pre_upgrade refuses; once the deadline expired the call, the upgrade goes through", (t) => {
  const { ic, caller, calleeP } = twoSubnets(11);
  const asked = submitCall(ic, "a", caller, "askSlow", [IDL.Principal, IDL.Nat32, IDL.Nat], [calleeP, 0, 0n]);
  let at = 3;
  while (statuses(ic, "a", asked)[0]?.status !== "processing" && at < 10) ic.run(secondsToUs((at += 0.25)));
  const upgrade = (): ReturnType<typeof submitCall> =>
    submitCall(ic, "a", "aaaaa-aa", "install_code", [MANAGEMENT_TYPES.install_code.arg], [{ mode: { upgrade: [] }, canister_id: Principal.fromText(caller), wasm_module: wasm, arg: new Uint8Array(), sender_canister_version: [] }], "genesis");
  const early = upgrade();
  ic.run(secondsToUs((at += 10)));
  // Motoko's own check (its runtime traps in canister_pre_upgrade), as the IC reports a trap.
  for (const a of answers(ic, "a", early, [])) {
    t.is(
      a,
      `reject 5: Error from Canister ${caller}: Canister called \`ic0.trap\` with message: 'canister_pre_upgrade attempted with outstanding message callbacks (try stopping the canister before upgrade)'.\n` +
        "Consider gracefully handling failures from this canister or altering the canister to handle exceptions. See documentation: https://internetcomputer.org/docs/current/references/execution-errors#trapped-explicitly",
    );
  }
  for (const a of answers(ic, "a", asked, [IDL.Text])) t.regex(String((a as unknown[])[0]), /^reject system_unknown: Call deadline has expired\. callback \d+000000000$/);
  const late = upgrade();
  ic.run(secondsToUs((at += 3)));
  for (const a of answers(ic, "a", late, [])) t.deepEqual(a, [], "no callback left: the upgrade goes through");
});
