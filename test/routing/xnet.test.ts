import test from "ava";
import { IDL } from "@dfinity/candid";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import type { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { replicaId, secondsToUs } from "../../harness/types.ts";
import { buildIC, decodeReply, fixture, statuses, submitCall } from "./xnet-helpers.ts";

test("a Motoko caller on subnet a calls a Motoko callee on subnet b through certified streams", (t) => {
  const ic = buildIC(7, [
    { name: "a", n: 4, wasm: [fixture("motoko/caller.classic.wasm")] },
    { name: "b", n: 4, wasm: [fixture("motoko/callee.classic.wasm")] },
  ]);
  ic.start();
  ic.run(secondsToUs(3));
  const caller = ic.registry.canisterId(ic.record("a"), 0);
  const callee = ic.registry.canisterId(ic.record("b"), 0);
  const ping = submitCall(ic, "a", caller, "callPing", [IDL.Text, IDL.Nat], [callee, 41n]);
  const fail = submitCall(ic, "a", caller, "callFail", [IDL.Text], [callee]);
  ic.run(secondsToUs(25));
  for (const s of statuses(ic, "a", ping)) t.deepEqual(decodeReply(s, [IDL.Nat]), [42n]);
  for (const s of statuses(ic, "a", fail)) t.deepEqual(decodeReply(s, [IDL.Text]), ["rejected"]);
});

test("calls to a missing canister on another subnet, and to an id no subnet hosts, come back as rejects with code 3", (t) => {
  const ic = buildIC(8, [
    { name: "a", n: 4, wasm: [fixture("motoko/caller.classic.wasm")] },
    { name: "b", n: 4, wasm: [fixture("motoko/callee.classic.wasm")] },
  ]);
  ic.start();
  ic.run(secondsToUs(2));
  const caller = ic.registry.canisterId(ic.record("a"), 0);
  const missingOnB = ic.registry.canisterId(ic.record("b"), 5);
  const unrouted = canisterIdFromU64(1n << 40n);
  const toMissing = submitCall(ic, "a", caller, "callPing", [IDL.Text, IDL.Nat], [missingOnB, 1n]);
  const toNowhere = submitCall(ic, "a", caller, "callPing", [IDL.Text, IDL.Nat], [unrouted, 1n]);
  ic.run(secondsToUs(20));
  // Motoko rethrows an awaited reject; the ingress call then fails carrying the callee's message.
  for (const s of statuses(ic, "a", toMissing)) t.regex(String(decodeReply(s, [IDL.Nat])), new RegExp(`${missingOnB} not found`));
  for (const s of statuses(ic, "a", toNowhere)) t.regex(String(decodeReply(s, [IDL.Nat])), /No route to canister/);
  // Subnet b generated the reject for the missing canister and sent it back on its stream.
  const bStreams = ic.subnet("b").replica(replicaId(0))!.stateMachine as ExecutionStateMachine;
  t.true(bStreams.routingState.streams.some(([, s]) => s.begin + BigInt(s.messages.length) >= 1n));
});

test("subnets partitioned from each other hold cross-subnet calls until the partition heals; nothing is lost or duplicated", (t) => {
  const ic = buildIC(9, [
    { name: "a", n: 4, wasm: [fixture("motoko/caller.classic.wasm")] },
    { name: "b", n: 7, wasm: [fixture("motoko/callee.classic.wasm")] },
  ]);
  ic.start();
  ic.run(secondsToUs(2));
  const caller = ic.registry.canisterId(ic.record("a"), 0);
  const callee = ic.registry.canisterId(ic.record("b"), 0);
  ic.partitionSubnets("cut", [["a"], ["b"]]);
  const ids = [1n, 2n, 3n, 4n, 5n].map((n) => submitCall(ic, "a", caller, "callPing", [IDL.Text, IDL.Nat], [callee, n]));
  ic.run(secondsToUs(12));
  for (const id of ids) t.is(statuses(ic, "a", id)[0]?.status, "processing", "the call waits while the subnets are cut off");
  ic.heal("cut");
  ic.run(secondsToUs(40));
  ids.forEach((id, k) => {
    for (const s of statuses(ic, "a", id)) t.deepEqual(decodeReply(s, [IDL.Nat]), [BigInt(k + 2)]);
  });
  // Exactly five pings reached the callee, on every replica of b.
  for (let i = 0; i < 7; i++) {
    const machine = ic.subnet("b").replica(replicaId(i))!.stateMachine as ExecutionStateMachine;
    const reply = machine.query(callee, "callCount", new Uint8Array(IDL.encode([], [])));
    t.deepEqual(reply.kind === "reply" ? IDL.decode([IDL.Nat], reply.data) : reply, [5n]);
  }
});
