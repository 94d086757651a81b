import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import type { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import type { HashTree } from "../../harness/crypto/hash-tree.ts";
import { verifyCertifiedSlice, type CertifiedSlice } from "../../harness/routing/xnet.ts";
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

test("a certified slice is believed only with the source subnet's signature over a witness that rebuilds the certified root", (t) => {
  const ic = buildIC(10, [
    { name: "a", n: 4, wasm: [fixture("motoko/caller.classic.wasm")] },
    { name: "b", n: 4, wasm: [fixture("motoko/callee.classic.wasm")] },
  ]);
  ic.start();
  ic.run(secondsToUs(2));
  const caller = ic.registry.canisterId(ic.record("a"), 0);
  const callee = ic.registry.canisterId(ic.record("b"), 0);
  ic.partitionSubnets("hold", [["a"], ["b"]]); // keep the request in a's stream
  submitCall(ic, "a", caller, "callPing", [IDL.Text, IDL.Nat], [callee, 1n]);
  ic.run(secondsToUs(6));
  const server = ic.subnet("a").replica(replicaId(0))!;
  const client = ic.subnet("b").replica(replicaId(0))!;
  const slice = server.serveXNet(ic.record("b").id, 0n);
  if (slice === undefined) return t.fail("a serves no slice");
  const verify = (s: CertifiedSlice): string => {
    const check = verifyCertifiedSlice(s, ic.registry, (id) => (id === ic.record("a").id ? ic.subnet("a").keys.verifier : ic.subnet("b").keys.verifier));
    return check.ok ? `ok ${check.slice.messages.length}` : check.reason;
  };
  t.is(verify(slice), "ok 1");
  // Alter the request inside the witness: the root no longer matches the certification.
  const tampered = mapLeaves(slice.witness, (v) => (v.length > 40 ? Uint8Array.from(v, (b, i) => (i === v.length - 1 ? b ^ 1 : b)) : v));
  t.is(verify({ ...slice, id: "x1", witness: tampered }), "witness does not match the certified root hash");
  // A certification signed by subnet b's key is not subnet a's.
  const bCert = ic.subnet("b").replica(replicaId(0))!.latestCertification()!;
  t.is(verify({ ...slice, id: "x2", certification: { ...slice.certification, signature: bCert.signature } }), "bad certification signature");
  // And b's client refuses the forgery when a (Byzantine) replica of a sends it.
  client.onXNetSlice({ ...slice, id: "x3", witness: tampered });
  t.deepEqual(client.xnetRequests().map((r) => r.fromIndex), [0n], "nothing was inducted from it");
});

function mapLeaves(tree: HashTree, f: (v: Uint8Array) => Uint8Array): HashTree {
  switch (tree.kind) {
    case "leaf":
      return { kind: "leaf", value: f(tree.value) };
    case "labeled":
      return { kind: "labeled", label: tree.label, subtree: mapLeaves(tree.subtree, f) };
    case "fork":
      return { kind: "fork", left: mapLeaves(tree.left, f), right: mapLeaves(tree.right, f) };
    default:
      return tree;
  }
}
