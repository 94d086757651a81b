// Input queues per source (ic-protocol.md §3.2: one queue for ingress and one per counterpart,
// served round-robin by pop_input) and their canonical, restorable form.
import test from "ava";
import fc from "fast-check";
import { CanisterInputQueues, sourceOf } from "../../harness/execution/input-queue.ts";
import type { CallbackId, CanisterId, CanisterMessage, PrincipalText } from "../../harness/execution/interfaces.ts";

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
