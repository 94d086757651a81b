// The ingress lifecycle end to end on a 4-replica subnet running Wasm canisters: signed IC call
// envelopes are refused at admission for every defect the IC's HTTP handler checks (kind names
// from harness/ingress/envelope.ts INGRESS_REJECTIONS), and admitted calls move through the
// replicated ingress history (received → processing → replied | rejected) with the interface
// spec's reject codes: 3 destination invalid, 4 canister reject, 5 canister error.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { ingressFromEnvelope, type IngressMessage } from "../../harness/consensus/ingress.ts";
import { MAX_INGRESS_BYTES_PER_MESSAGE } from "../../harness/consensus/config.ts";
import { encodeEnvelope, type Envelope } from "../../harness/ingress/envelope.ts";
import { userIdentity, type UserIdentity } from "../../harness/ingress/identity.ts";
import type { SimIC } from "../../harness/replica/ic.ts";
import { IngressHistory } from "../../harness/replica/ingress-history.ts";
import { height, replicaId, secondsToUs, timeUs, type HashHex } from "../../harness/types.ts";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { canisterIdFromU64 } from "../../harness/execution/interfaces.ts";
import { MANAGEMENT_TYPES } from "../../harness/execution/management.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { buildIC, fixture, statuses } from "../routing/xnet-helpers.ts";
import { wat } from "../execution/helpers.ts";

const alice = userIdentity("ed25519", new TextEncoder().encode("alice"));
const bob = userIdentity("ecdsa-secp256k1", new TextEncoder().encode("bob"));
const carol = userIdentity("ecdsa-p256", new TextEncoder().encode("carol"));
const anonymous = userIdentity("anonymous", new Uint8Array());

let nonce = 0;
function envelope(ic: SimIC, user: UserIdentity, canister: string, method: string, arg: Uint8Array, expiryOffsetS = 120): Envelope {
  const nonceBytes = new Uint8Array(8);
  new DataView(nonceBytes.buffer).setBigUint64(0, BigInt(nonce++));
  return user.sign({ request_type: "call", canister_id: Principal.fromText(canister).toUint8Array(), method_name: method, arg, ingress_expiry: BigInt(ic.loop.now() + expiryOffsetS * 1_000_000) * 1000n, nonce: nonceBytes });
}

/** Submits raw envelope bytes to replica 0 as a boundary node would (fields derived or not). */
function submitBytes(ic: SimIC, bytes: Uint8Array): { result: string; id?: HashHex } {
  const derived = ingressFromEnvelope(bytes, BigInt(ic.loop.now()) * 1000n);
  const message: IngressMessage = derived.ok
    ? derived.message
    : { id: "00".repeat(32) as HashHex, sender: "x", nonce: 0, body: "", sizeBytes: bytes.length, expiryUs: ic.loop.now(), signature: "", envelope: bytes };
  const r = ic.subnet("a").submitIngress(replicaId(0), message);
  return { result: r.accepted ? "accepted" : r.reason, ...(derived.ok ? { id: derived.message.id } : {}) };
}

function newSubnet(): SimIC {
  const ic = buildIC(21, [{ name: "a", n: 4, wasm: [fixture("c/callee.wasm"), fixture("motoko/callee.classic.wasm"), fixture("motoko/caller.classic.wasm")] }]);
  ic.start();
  ic.run(secondsToUs(2));
  return ic;
}

test("admission refuses every defective envelope with the IC's reason, and a duplicate", (t) => {
  const ic = newSubnet();
  const c = ic.registry.canisterId(ic.record("a"), 0);
  const good = envelope(ic, alice, c, "echo", new Uint8Array([1]));
  const flipped = good.sender_sig!.slice();
  flipped[3] = (flipped[3] ?? 0) ^ 1;
  const cases: [string, Uint8Array][] = [
    ["envelope:invalid-signature", encodeEnvelope({ ...good, sender_sig: flipped })],
    ["envelope:missing-signature", encodeEnvelope({ content: good.content })],
    ["envelope:anonymous-with-signature", encodeEnvelope({ ...envelope(ic, anonymous, c, "echo", new Uint8Array()), sender_pubkey: good.sender_pubkey!, sender_sig: good.sender_sig! })],
    ["envelope:sender-pubkey-mismatch", encodeEnvelope({ ...good, sender_pubkey: envelope(ic, bob, c, "echo", new Uint8Array()).sender_pubkey! })],
    ["envelope:ingress-expired", encodeEnvelope(envelope(ic, alice, c, "echo", new Uint8Array(), -1))],
    ["envelope:ingress-expiry-too-far", encodeEnvelope(envelope(ic, alice, c, "echo", new Uint8Array(), 331))],
    ["envelope:message-too-large", encodeEnvelope(envelope(ic, alice, c, "echo", new Uint8Array(MAX_INGRESS_BYTES_PER_MESSAGE)))],
    ["envelope:malformed-cbor", new Uint8Array([0xd9, 0xd9, 0xf7, 0xa1, 0x61])],
    ["envelope:nonce-too-big", encodeEnvelope(alice.sign({ ...good.content, nonce: new Uint8Array(33) }))],
  ];
  for (const [reason, bytes] of cases) t.is(submitBytes(ic, bytes).result, reason, reason);
  const first = submitBytes(ic, encodeEnvelope(good));
  t.is(first.result, "accepted");
  t.is(submitBytes(ic, encodeEnvelope(good)).result, "duplicate");
  // A forged payload: the envelope is genuine but the derived fields were changed.
  const derived = ingressFromEnvelope(encodeEnvelope(envelope(ic, carol, c, "echo", new Uint8Array([2]))), BigInt(ic.loop.now()) * 1000n);
  if (!derived.ok) return t.fail(derived.message);
  const forged: IngressMessage = { ...derived.message, call: { ...derived.message.call!, method: "fail" } };
  const r = ic.subnet("a").submitIngress(replicaId(1), forged);
  t.is(r.accepted ? "accepted" : r.reason, "envelope-mismatch");
});

test("admitted calls end replied or rejected with the spec's reject codes, for every sender kind", (t) => {
  const ic = newSubnet();
  const [cCallee, moCallee, moCaller] = [0, 1, 2].map((k) => ic.registry.canisterId(ic.record("a"), k) as string) as [string, string, string];
  const missing = ic.registry.canisterId(ic.record("a"), 9);
  const nat = (n: bigint): Uint8Array => new Uint8Array(IDL.encode([IDL.Nat], [n]));
  const sent = {
    replied: submitBytes(ic, encodeEnvelope(envelope(ic, alice, cCallee, "echo", new Uint8Array([7])))).id!,
    secp: submitBytes(ic, encodeEnvelope(envelope(ic, bob, moCallee, "ping", nat(1n)))).id!,
    p256: submitBytes(ic, encodeEnvelope(envelope(ic, carol, moCallee, "ping", nat(2n)))).id!,
    anon: submitBytes(ic, encodeEnvelope(envelope(ic, anonymous, moCallee, "ping", nat(3n)))).id!,
    canisterReject: submitBytes(ic, encodeEnvelope(envelope(ic, alice, cCallee, "fail", new Uint8Array()))).id!,
    trap: submitBytes(ic, encodeEnvelope(envelope(ic, alice, moCallee, "fail", new Uint8Array(IDL.encode([IDL.Text], ["boom"]))))).id!,
    noMethod: submitBytes(ic, encodeEnvelope(envelope(ic, alice, cCallee, "nope", new Uint8Array()))).id!,
    awaiting: submitBytes(ic, encodeEnvelope(envelope(ic, alice, moCaller, "callPing", new Uint8Array(IDL.encode([IDL.Text, IDL.Nat], [moCallee, 5n]))))).id!,
  };
  // (A call awaiting another subnet shows "processing": test/routing/xnet.test.ts.)
  ic.run(secondsToUs(15));
  const status = (id: HashHex): string => {
    const all = statuses(ic, "a", id).map((s) => (s === undefined ? "unknown" : s.status === "failed" ? `failed ${s.code}` : s.status));
    t.is(new Set(all).size, 1, "every replica has the same status");
    return all[0]!;
  };
  t.is(status(sent.replied), "completed");
  t.is(status(sent.secp), "completed");
  t.is(status(sent.p256), "completed");
  t.is(status(sent.anon), "completed");
  t.is(status(sent.awaiting), "completed");
  t.is(status(sent.canisterReject), "failed 4");
  t.is(status(sent.trap), "failed 5");
  // A missing canister is refused by the receiving replica's ingress filter already; a message
  // that reaches induction for a canister gone meanwhile fails there with reject 3
  // (test/lab/execution-subnet.test.ts).
  t.is(submitBytes(ic, encodeEnvelope(envelope(ic, alice, missing, "echo", new Uint8Array()))).result, "canister-not-found");
  // IC0536 "canister has no update method": a 5xx error code, so reject code 5 (CANISTER_ERROR).
  t.is(status(sent.noMethod), "failed 5");
});

test("the ingress history forgets replies beyond its capacity (done) and prunes answers after the TTL", (t) => {
  const history = new IngressHistory(3);
  const id = (k: number): HashHex => k.toString(16).padStart(64, "0") as HashHex;
  for (let k = 0; k < 5; k++) history.set(id(k), { status: "completed", height: k as never, reply: "00" }, BigInt(k));
  t.deepEqual([0, 1, 2, 3, 4].map((k) => history.status(id(k))?.status), ["done", "done", "completed", "completed", "completed"]);
  history.set(id(9), { status: "received", height: 9 as never }, 9n);
  history.prune(10n + 300_000_000_000n);
  t.deepEqual([0, 4, 9].map((k) => history.status(id(k))?.status), [undefined, undefined, "received"], "answered entries leave after 5 min; open ones stay");
});

test("management calls go through consensus; create_canister beyond the subnet's limit is refused with reject code 1 (SYS_FATAL, IC0102)", (t) => {
  const kv = canisterIdFromU64(0n);
  const machine = new ExecutionStateMachine(new SimDisk(), { genesis: [{ id: kv, wasm: fixture("motoko/kv.classic.wasm") }], checkpointInterval: 10, maxCanisters: 2 });
  const create = bytesToHex(new Uint8Array(IDL.encode([MANAGEMENT_TYPES.create_canister.arg], [{ settings: [], sender_canister_version: [] }])));
  const call = (k: number): IngressMessage => ({ id: k.toString(16).padStart(64, "0") as HashHex, sender: "alice", nonce: k, body: "", sizeBytes: 50, expiryUs: timeUs(1e9), signature: "", call: { canister: "aaaaa-aa", method: "create_canister", argHex: create } });
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00".repeat(32) as HashHex, ingress: [call(1), call(2)], requiresFullStateHash: false });
  const first = machine.ingressStatus(call(1).id);
  t.is(first?.status, "completed");
  const [created] = IDL.decode(MANAGEMENT_TYPES.create_canister.ret as unknown as IDL.Type[], hexToBytes(first?.status === "completed" ? first.reply : "")) as unknown as [{ canister_id: Principal }];
  t.is(created.canister_id.toText(), canisterIdFromU64(1n), "the next id of the subnet's range");
  const second = machine.ingressStatus(call(2).id);
  // CanisterManagerError::MaxNumberOfCanistersReached (canister_manager/types.rs).
  t.like(second, { status: "failed", code: 1, errorCode: "IC0102" });
  t.regex(second?.status === "failed" ? second.message : "", /^Subnet \S+ has reached the allowed canister limit of 2 canisters\. Retry creating the canister\.\nTry creating the canister on another subnet\. See documentation: \S+#maximum-number-of-canisters-reached$/);
});

// The ingress filter of the receiving replica (IC HTTP handler, before consensus): the canister must
// exist and run, and its canister_inspect_message must accept (spec "Ingress message inspection").
const PICKY = wat(`(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "accept_message" (func $accept))
  (import "ic0" "msg_reply" (func $reply))
  (func (export "canister_inspect_message") (if (i32.eqz (call $arg_size)) (then (call $accept))))
  (func (export "canister_update ok") (call $reply)))`);

test("the ingress filter refuses calls inspect_message rejects, to missing canisters and to stopped ones", (t) => {
  const ic = buildIC(22, [{ name: "a", n: 4, wasm: [PICKY] }]);
  ic.start();
  ic.run(secondsToUs(2));
  const picky = ic.registry.canisterId(ic.record("a"), 0);
  t.is(submitBytes(ic, encodeEnvelope(envelope(ic, alice, picky, "ok", new Uint8Array()))).result, "accepted");
  t.is(submitBytes(ic, encodeEnvelope(envelope(ic, alice, picky, "ok", new Uint8Array([1])))).result, "inspect-message-refused");
  t.is(submitBytes(ic, encodeEnvelope(envelope(ic, alice, ic.registry.canisterId(ic.record("a"), 3), "ok", new Uint8Array()))).result, "canister-not-found");

  const machine = new ExecutionStateMachine(new SimDisk(), { genesis: [{ id: canisterIdFromU64(0n), wasm: PICKY }], checkpointInterval: 10 });
  const stop = bytesToHex(new Uint8Array(IDL.encode([MANAGEMENT_TYPES.stop_canister.arg], [{ canister_id: Principal.fromText(canisterIdFromU64(0n)) }])));
  const message = (k: number, canister: string, method: string, argHex: string): IngressMessage => ({ id: k.toString(16).padStart(64, "0") as HashHex, sender: "genesis", nonce: k, body: "", sizeBytes: 50, expiryUs: timeUs(1e9), signature: "", call: { canister, method, argHex } });
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00".repeat(32) as HashHex, ingress: [message(1, "aaaaa-aa", "stop_canister", stop)], requiresFullStateHash: false });
  t.is(machine.ingressStatus(message(1, "", "", "").id)?.status, "completed");
  t.is(machine.filterIngress(message(2, canisterIdFromU64(0n), "ok", ""))?.reason, "canister-not-running");
});

// Issue 12 item 6: read_state shows a request's status to its sender only, so the replicated
// ingress history keeps an envelope's sender (as the IC's keeps the user id), hashes it with the
// entry, and carries it through a checkpoint and state sync to another replica.
test("item 6: an envelope's sender stays with its status in the ingress history, its hash, and a state-synced checkpoint", (t) => {
  const kv = canisterIdFromU64(0n);
  const make = (): ExecutionStateMachine => new ExecutionStateMachine(new SimDisk(), { genesis: [{ id: kv, wasm: fixture("motoko/kv.classic.wasm") }], checkpointInterval: 1 });
  const machine = make();
  const arg = IDL.encode([IDL.Text, IDL.Text], ["k", "v"]);
  const signed = alice.sign({ request_type: "call", canister_id: Principal.fromText(kv).toUint8Array(), method_name: "insert", arg, ingress_expiry: 60_000_000_000n });
  const derived = ingressFromEnvelope(encodeEnvelope(signed), 1_000_000n);
  if (!derived.ok) return t.fail(derived.message);
  machine.deliverBatch({ height: height(1), timeNs: 1_000_000n, randomness: "00".repeat(32) as HashHex, ingress: [derived.message], requiresFullStateHash: true });
  t.is(machine.ingressStatus(derived.message.id)?.status, "completed");
  t.is(machine.ingressSender(derived.message.id), alice.principal);

  const snapshot = machine.checkpointAt(height(1));
  if (snapshot === undefined) return t.fail("no checkpoint at height 1");
  const peer = make();
  t.true(peer.verifySnapshot(snapshot));
  peer.installSnapshot(snapshot);
  t.is(peer.ingressSender(derived.message.id), alice.principal, "the sender came with the state-synced history");

  // The sender is part of the entry's hash: the same status from someone else hashes differently.
  const history = (sender?: string) => {
    const h = new IngressHistory();
    h.set(derived.message.id, { status: "received", height: height(1) }, 0n, sender);
    return h.digestHex();
  };
  t.not(history(alice.principal), history(bob.principal));
  t.not(history(alice.principal), history());
});
