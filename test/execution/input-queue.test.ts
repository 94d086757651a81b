// Input queues per source (ic-protocol.md §3.2: one queue for ingress and one per counterpart,
// served round-robin by pop_input) and their canonical, restorable form.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import fc from "fast-check";
import { CanisterInputQueues, sourceOf } from "../../harness/execution/input-queue.ts";
import type { CallbackId, CanisterId, CanisterMessage, PrincipalText } from "../../harness/execution/interfaces.ts";
import { ExecutionLab } from "../../harness/execution/lab.ts";
import { Principal } from "@dfinity/principal";
import { wat } from "./helpers.ts";

const SOURCES = ["", "aaaaa-aa-1", "bbbbb-bb-2", "ccccc-cc-3"];
function message(source: string, n: number): CanisterMessage {
  if (source === "") return { kind: "ingress", messageId: `m${n}`, caller: "2vxsx-fae" as PrincipalText, method: "f", arg: new Uint8Array([n]) };
  return { kind: "request", caller: source as CanisterId, callerCallbackId: BigInt(n) as CallbackId, method: "f", arg: new Uint8Array([n]), cycles: 0n };
}

test("property: whatever the arrival order, messages are served one per source per turn, FIFO within a source", (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: SOURCES.length - 1 }), { maxLength: 60 }), (arrivals) => {
      const q = new CanisterInputQueues();
      const bySource = new Map<string, CanisterMessage[]>();
      arrivals.forEach((s, n) => {
        const m = message(SOURCES[s]!, n);
        q.push(m);
        bySource.set(SOURCES[s]!, [...(bySource.get(SOURCES[s]!) ?? []), m]);
      });
      const expected: CanisterMessage[] = [];
      for (let turn = 0; expected.length < arrivals.length; turn++) {
        for (const key of [...bySource.keys()].sort()) {
          const m = bySource.get(key)![turn];
          if (m !== undefined) expected.push(m);
        }
      }
      const served: CanisterMessage[] = [];
      for (let m = q.pop(); m !== undefined; m = q.pop()) served.push(m);
      return served.length === expected.length && served.every((m, i) => m === expected[i]);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("a flooding sender does not starve ingress or another sender", (t) => {
  const q = new CanisterInputQueues();
  for (let n = 0; n < 100; n++) q.push(message("aaaaa-aa-1", n));
  q.push(message("", 100));
  q.push(message("bbbbb-bb-2", 101));
  const firstThree = [q.pop(), q.pop(), q.pop()].map((m) => (m === undefined ? "none" : sourceOf(m)));
  t.deepEqual(firstThree.sort(), ["", "aaaaa-aa-1", "bbbbb-bb-2"]);
});

test("the canonical form restores the same queues and rotation point; a resumed message stays in front", (t) => {
  const q = new CanisterInputQueues();
  [0, 1, 2, 3, 1, 2].forEach((s, n) => q.push(message(SOURCES[s]!, n)));
  q.pop();
  q.pop();
  q.push(message(SOURCES[3]!, 99), true);
  const restored = CanisterInputQueues.from(q.messages(), q.lastSource, true);
  const drain = (x: CanisterInputQueues): CanisterMessage[] => {
    const out: CanisterMessage[] = [];
    for (let m = x.pop(); m !== undefined; m = x.pop()) out.push(m);
    return out;
  };
  const a = drain(q);
  t.deepEqual(drain(restored), a);
  t.deepEqual(a[0]?.kind === "request" ? a[0].callerCallbackId : -1n, 99n);
});

// The output queue to one callee holds 500 requests awaiting responses (DEFAULT_QUEUE_CAPACITY);
// call_perform of a call that does not fit returns non-zero (interface spec: the call is not sent).
test("call_perform refuses the 501st outstanding call to one callee with SYS_TRANSIENT (2)", (t) => {
  const lab = new ExecutionLab();
  const callee = lab.createCanister();
  lab.installCode(callee, wat(`(module (func (export "canister_update ping")))`));
  const caller = lab.createCanister();
  const calleeBytes = Principal.fromText(callee).toUint8Array();
  // `spray` makes 600 calls to the callee (bytes at 0, method "ping" at 64) and replies with the
  // number of call_perform results that were 0 (sent), as 4 little-endian bytes.
  lab.installCode(caller, wat(`(module
    (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "ic0" "call_perform" (func $perform (result i32)))
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1)
    (data (i32.const 0) "${[...calleeBytes].map((b) => `\\${b.toString(16).padStart(2, "0")}`).join("")}")
    (data (i32.const 64) "ping")
    (table 1 funcref) (elem (i32.const 0) $cb)
    (func $cb (param i32))
    (func (export "canister_update spray") (local $i i32) (local $sent i32)
      (loop $l
        (call $call_new (i32.const 0) (i32.const ${calleeBytes.length}) (i32.const 64) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
        (if (i32.eqz (call $perform)) (then (local.set $sent (i32.add (local.get $sent) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 600))))
      (i32.store (i32.const 128) (local.get $sent))
      (call $append (i32.const 128) (i32.const 4))
      (call $reply)))`));
  const r = lab.updateRaw(caller, "spray", new Uint8Array());
  t.is(r.response.kind, "reply");
  if (r.response.kind === "reply") t.is(new DataView(r.response.data.buffer, r.response.data.byteOffset).getUint32(0, true), 500);
});
