// npx tsx scripts/bench-certified-tree.ts — cost of one height's certified-tree update at
// 1,000 updates/s with a 5-minute ingress TTL: /request_status holds ~300,000 entries, and each
// height changes 1,000 of them (new messages received, others replied, expired ones removed).
// Side by side in one process: the incremental CertifiedState (apply the changes, root hash)
// against a full rebuild with buildHashTree (what a per-height rebuild of the labeled tree costs).
// Prints a table and, as its last line, JSON. ENTRIES and CHANGES override the sizes.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { buildHashTree, reconstruct, subtree, value, type LabeledTree } from "../harness/crypto/hash-tree.ts";
import { encodeUleb128 } from "../harness/crypto/request-id.ts";
import { CertifiedState, type RequestStatus } from "../harness/state/certified-tree.ts";

const ENTRIES = Number(process.env.ENTRIES ?? 300_000);
const CHANGES = Number(process.env.CHANGES ?? 1_000);
const WARMUP_HEIGHTS = 5;
const HEIGHTS = 20;

const messageId = (n: number): Uint8Array => sha256(utf8ToBytes(`bench message ${n}`));
const reply = utf8ToBytes("DIDL\x00\x01\x71\x0breply bytes");
const statusOf = (n: number): RequestStatus => (n % 3 === 0 ? { status: "processing" } : { status: "replied", reply });

const ms = (from: number): number => performance.now() - from;
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

// Setup (not measured as a per-height cost).
const ids = Array.from({ length: ENTRIES + (WARMUP_HEIGHTS + HEIGHTS) * CHANGES }, (_, n) => messageId(n));
let started = performance.now();
let state = CertifiedState.empty().withTime(1n);
for (let n = 0; n < ENTRIES; n++) state = state.withRequestStatus(ids[n] as Uint8Array, statusOf(n));
const insertAllMs = ms(started);
started = performance.now();
state.rootHash();
const firstHashMs = ms(started);
const heapMb = process.memoryUsage().heapUsed / 2 ** 20;

// One height: a third of the changes are new messages, a third replies to live ones, a third
// removals of the oldest (TTL expiry); the entry count stays at ENTRIES.
let oldest = 0;
let next = ENTRIES;
function applyHeight(base: CertifiedState, h: number): CertifiedState {
  let s = base.withTime(BigInt(h + 2));
  const third = Math.floor(CHANGES / 3);
  for (let k = 0; k < third; k++) s = s.withRequestStatus(ids[next + k] as Uint8Array, { status: "received" });
  for (let k = 0; k < CHANGES - 2 * third; k++) s = s.withRequestStatus(ids[oldest + third + 7 * k] as Uint8Array, { status: "replied", reply });
  for (let k = 0; k < third; k++) s = s.withoutRequestStatus(ids[oldest + k] as Uint8Array);
  oldest += third;
  next += third;
  return s;
}

// The first heights run while V8 is still compiling the hot paths: not measured.
for (let h = 0; h < WARMUP_HEIGHTS; h++) state = applyHeight(state, h);
state.rootHash();
const incremental: number[] = [];
for (let h = WARMUP_HEIGHTS; h < WARMUP_HEIGHTS + HEIGHTS; h++) {
  started = performance.now();
  state = applyHeight(state, h);
  state.rootHash();
  incremental.push(ms(started));
}

// Full rebuild of the same content with buildHashTree, as a per-height rebuild would do it.
function statusTree(status: RequestStatus): LabeledTree {
  if (status.status === "replied") return subtree([["reply", value(status.reply)], ["status", value("replied")]]);
  return subtree([["status", value(status.status)]]);
}
const live = ids.slice(oldest, next).map((id) => [id, state.requestStatusOf(id) ?? { status: "done" }] as const);
const rebuilds: number[] = [];
for (let r = 0; r < 3; r++) {
  started = performance.now();
  const tree = subtree([
    ["request_status", subtree(live.map(([id, status]) => [id, statusTree(status)] as const))],
    ["time", value(encodeUleb128(state.timeNs))],
  ]);
  const root = reconstruct(buildHashTree(tree));
  rebuilds.push(ms(started));
  if (r === 0) process.stdout.write(`(full rebuild root ${bytesToHex(root).slice(0, 16)}…, ${live.length} entries)\n`);
}

console.log("per height ms:", incremental.map((x) => x.toFixed(0)).join(" "));
const incrementalMs = median(incremental);
const rebuildMs = median(rebuilds);
const result = {
  entries: state.requestStatusCount,
  changesPerHeight: CHANGES,
  incrementalMsPerHeight: Number(incrementalMs.toFixed(1)),
  fullRebuildMs: Number(rebuildMs.toFixed(1)),
  speedup: Number((rebuildMs / incrementalMs).toFixed(1)),
  setupInsertAllMs: Math.round(insertAllMs),
  setupFirstRootHashMs: Math.round(firstHashMs),
  heapUsedMbAfterSetup: Math.round(heapMb),
};
console.log(`entries ${result.entries}, ${CHANGES} changes per height`);
console.log(`incremental: apply + root hash  ${result.incrementalMsPerHeight} ms (median of ${HEIGHTS})`);
console.log(`full rebuild with buildHashTree ${result.fullRebuildMs} ms (median of 3)`);
console.log(`ratio                           ${result.speedup}×`);
console.log(JSON.stringify(result));
