// The key under which replicas of one subnet share an execution (issue 13 item 1, "execute once,
// verify always"): the replica's state hash before the batch — which covers the execution state,
// the ingress history and the routing state (executionStateHash, execution-checkpoint.ts) — and a hash
// of everything of the batch that `ExecutionStateMachine.deliverBatch` reads: height, time,
// randomness (management calls draw from it), each ingress message's id, sender, whether it came
// in an envelope (callerOf), its call and its body (the key-value machine's command), and every
// XNet slice in full. The key-value machine's state hash covers its store and ingress history. `requiresFullStateHash` is
// left out: delivery never reads it (checkpoints follow the machine's own interval, which is in the
// configuration part of the key).
import { createHash, type Hash } from "node:crypto";
import type { IngressMessage } from "../consensus/ingress.ts";
import { encodeStreamMessage, type StreamSlice } from "../routing/streams.ts";
import type { HashHex } from "../types.ts";
import type { Batch } from "./interfaces.ts";

/** Separates the fields of the hashed text (no field can contain it: ids, hex, principals, method names are length-prefixed). */
function field(h: Hash, text: string): void {
  h.update(`${text.length}:`).update(text);
}

function bytesField(h: Hash, bytes: Uint8Array): void {
  h.update(`${bytes.length}:`).update(bytes);
}

// Batches and ingress messages are immutable objects that every replica's delivery of one height
// may share (wire mode `objects`); their hashes are computed once per object.
const ingressDigests = new WeakMap<IngressMessage, string>();
const batchDigests = new WeakMap<Batch, string>();

function ingressDigest(m: IngressMessage): string {
  let digest = ingressDigests.get(m);
  if (digest === undefined) {
    const h = createHash("sha256");
    field(h, m.id);
    field(h, m.sender);
    h.update(m.envelope === undefined ? "sim" : "envelope");
    field(h, m.body);
    if (m.call === undefined) h.update("no-call");
    else {
      field(h, m.call.canister);
      field(h, m.call.method);
      field(h, m.call.argHex);
    }
    digest = h.digest("hex");
    ingressDigests.set(m, digest);
  }
  return digest;
}

function hashSlice(h: Hash, s: StreamSlice): void {
  field(h, s.source);
  field(h, s.destination);
  field(h, `${s.header.begin}/${s.header.end}/${s.header.signalsEnd}/${s.firstIndex}/${s.messages.length}`);
  for (const m of s.messages) bytesField(h, encodeStreamMessage(m));
}

/** A hash of everything of `batch` that delivery reads. */
export function batchDigest(batch: Batch): string {
  let digest = batchDigests.get(batch);
  if (digest === undefined) {
    const h = createHash("sha256");
    field(h, `batch|${batch.height}|${batch.timeNs}`);
    field(h, batch.randomness);
    field(h, `ingress|${batch.ingress.length}`);
    for (const m of batch.ingress) h.update(ingressDigest(m));
    const slices = batch.xnet ?? [];
    field(h, `xnet|${slices.length}`);
    for (const s of slices) hashSlice(h, s);
    digest = h.digest("hex");
    batchDigests.set(batch, digest);
  }
  return digest;
}

/**
 * The sharing key: pre-state hash, batch digest and the replica's execution configuration (a
 * fingerprint of the settings that are not part of the state: checkpoint interval, canister
 * limit — one subnet's replicas have the same, but nothing is shared if they do not).
 */
export function executionKey(preStateHash: HashHex, batch: Batch, configuration: string): string {
  return `${preStateHash}|${batchDigest(batch)}|${configuration}`;
}
