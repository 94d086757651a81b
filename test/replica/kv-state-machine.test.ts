// issue 13 item 2: the key-value machine's per-batch work got cheaper without changing what it computes.
import test from "ava";
import { encodeValue } from "../../harness/sim/disk-records.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { KvStateMachine, encodeKvSnapshot } from "../../harness/replica/kv-state-machine.ts";
import { height, type HashHex, type Height } from "../../harness/types.ts";
import type { IngressMessage } from "../../harness/consensus/ingress.ts";

const id = (k: number): HashHex => k.toString(16).padStart(64, "0") as HashHex;
const message = (k: number, body: string): IngressMessage => ({ id: id(k), sender: "u", nonce: k, body, sizeBytes: 10, expiryUs: 0 as never, signature: "" });

/** The bodies' meaning as the machine defined it before: split at spaces, key second, the rest joined. */
function referenceReplies(bodies: readonly string[]): string[] {
  const store = new Map<string, string>();
  return bodies.map((body) => {
    const [op, key, ...rest] = body.split(" ");
    if (key === undefined) return "error: missing key";
    const value = rest.join(" ");
    const previous = store.get(key) ?? "";
    if (op === "get") return store.get(key) ?? "";
    if (op === "put") return store.set(key, value), previous;
    if (op === "append") return store.set(key, previous + value), previous;
    return `error: unknown operation ${op ?? ""}`;
  });
}

test("issue 13 item 2: bodies are parsed as before (op, key, the rest as the value)", (t) => {
  const bodies = ["", "put", "put ", "get ", "put k v", "put  k v w", "get ", "get  k v w", "append k a b  c", "append k  d", "get k", "put k", "get k", "del k", "put x ünï ✓", "get x", " put k", "put k v ", "get k"];
  const machine = new KvStateMachine(new SimDisk());
  machine.deliverBatch({ height: height(1), timeNs: 1n, randomness: "00".repeat(32) as HashHex, ingress: bodies.map((b, k) => message(k, b)), requiresFullStateHash: false });
  const replies = bodies.map((_, k) => {
    const status = machine.ingressStatus(id(k));
    return status?.status === "completed" ? status.reply : `not completed: ${status?.status}`;
  });
  t.deepEqual(replies, referenceReplies(bodies));
});

test("issue 13 item 2: a checkpoint's bytes are encodeValue's bytes, with or without absent prune times", (t) => {
  const machine = new KvStateMachine(new SimDisk());
  let h = 0;
  for (; h < 5; h++) machine.deliverBatch({ height: height(h + 1), timeNs: BigInt(h) * 1_000_000_000n, randomness: "00".repeat(32) as HashHex, ingress: [message(h, `put k${h % 3} v"${h}\\ ✓`)], requiresFullStateHash: h === 4 });
  const snapshot = machine.checkpointAt(h as Height);
  if (snapshot === undefined) return t.fail("no checkpoint");
  const data = JSON.parse(new TextDecoder().decode(snapshot.data)) as Parameters<typeof encodeKvSnapshot>[0];
  t.deepEqual(encodeKvSnapshot(data), encodeValue(data));
  t.deepEqual(encodeKvSnapshot(data), snapshot.data);
  const withOpen = { ...data, history: [...data.history, [id(99), { status: "processing", height: height(2) }, undefined] as const] } as typeof data;
  t.deepEqual(encodeKvSnapshot(withOpen), encodeValue(withOpen), "an absent prune time takes encodeValue's tagged form");
  t.true(new KvStateMachine(new SimDisk()).verifySnapshot(snapshot), "the bytes still verify as canonical");
});
