// issue 13 item 2: the ingress history keeps its change set only for a consumer that asked for it,
// and its digest (native SHA-256 of each entry's bytes) still covers every field it covered.
import test from "ava";
import { IngressHistory } from "../../harness/replica/ingress-history.ts";
import { KvStateMachine } from "../../harness/replica/kv-state-machine.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { height, type HashHex } from "../../harness/types.ts";
import type { IngressStatus } from "../../harness/replica/interfaces.ts";

const id = (k: number): HashHex => k.toString(16).padStart(64, "0") as HashHex;
const changesKept = (history: IngressHistory): number => (history as unknown as { changed?: Set<HashHex> }).changed?.size ?? 0;

test("issue 13 item 2: a history nobody takes changes from keeps no change set (key-value subnets)", (t) => {
  const history = new IngressHistory(100);
  for (let k = 0; k < 500; k++) history.set(id(k), { status: "completed", height: height(1), reply: "" }, BigInt(k));
  history.prune(10n ** 15n);
  t.is(history.size, 0);
  t.is(changesKept(history), 0, "sets, forgotten answers and prunes leave nothing behind");
});

test("issue 13 item 2: the first takeChanged starts the tracking and returns every id held; later ones the changes", (t) => {
  const history = new IngressHistory();
  for (let k = 0; k < 5; k++) history.set(id(k), { status: "received", height: height(1) }, 0n);
  t.deepEqual(history.takeChanged(), [0, 1, 2, 3, 4].map(id));
  history.set(id(2), { status: "completed", height: height(2), reply: "ab" }, 1n);
  history.set(id(7), { status: "received", height: height(2) }, 1n);
  t.deepEqual(history.takeChanged(), [id(2), id(7)]);
  history.prune(1n + 300_000_000_000n);
  t.deepEqual(history.takeChanged(), [id(2)], "a pruned id is a change");
  t.deepEqual(history.takeChanged(), []);
});

test("issue 13 item 2: a key-value machine's history stays without a change set over many batches", (t) => {
  const machine = new KvStateMachine(new SimDisk());
  for (let h = 1; h <= 50; h++) {
    const ingress = Array.from({ length: 20 }, (_, k) => ({ id: id(h * 100 + k), sender: "u", nonce: k, body: `put k${k} v${h}`, sizeBytes: 10, expiryUs: 0 as never, signature: "" }));
    machine.deliverBatch({ height: height(h), timeNs: BigInt(h) * 1_000_000_000n, randomness: "00".repeat(32) as HashHex, ingress, requiresFullStateHash: h % 10 === 0 });
  }
  const history = (machine as unknown as { history: IngressHistory }).history;
  t.is(history.size, 1000);
  t.is(changesKept(history), 0);
});

test("issue 13 item 2: the history digest covers every id, status, height, reply, reject and sender", (t) => {
  const digestOf = (status: IngressStatus, sender?: string, k = 1): string => {
    const history = new IngressHistory();
    history.set(id(k), status, 0n, sender);
    return history.digestHex();
  };
  const failed = { status: "failed", height: height(3), code: 4, errorCode: "IC0503", message: "trapped" } as const;
  const variants = [
    digestOf({ status: "received", height: height(3) }),
    digestOf({ status: "received", height: height(3) }, undefined, 2),
    digestOf({ status: "processing", height: height(3) }),
    digestOf({ status: "done", height: height(3) }),
    digestOf({ status: "done", height: height(4) }),
    digestOf({ status: "completed", height: height(3), reply: "" }),
    digestOf({ status: "completed", height: height(3), reply: "00" }),
    digestOf(failed),
    digestOf({ ...failed, code: 5 }),
    digestOf({ ...failed, errorCode: "IC0504" }),
    digestOf({ ...failed, message: "trapped!" }),
    digestOf(failed, "aaaaa-aa"),
    digestOf(failed, "2vxsx-fae"),
  ];
  t.is(new Set(variants).size, variants.length);
  // XOR set hash: the digest depends on the entries, not on the order they were set in.
  const a = new IngressHistory();
  const b = new IngressHistory();
  a.set(id(1), { status: "received", height: height(1) }, 0n);
  a.set(id(2), { status: "received", height: height(1) }, 0n);
  b.set(id(2), { status: "received", height: height(1) }, 0n);
  b.set(id(1), { status: "received", height: height(1) }, 0n);
  t.is(a.digestHex(), b.digestHex());
  t.is(IngressHistory.fromData(a.toData()).digestHex(), a.digestHex(), "reloaded data hashes the same");
  a.prune(0n);
  a.set(id(2), { status: "completed", height: height(1), reply: "" }, 0n);
  a.prune(10n ** 15n);
  a.set(id(2), { status: "received", height: height(1) }, 0n);
  t.is(a.digestHex(), IngressHistory.fromData([[id(1), { status: "received", height: height(1) }, undefined], [id(2), { status: "received", height: height(1) }, undefined]]).digestHex());
});
