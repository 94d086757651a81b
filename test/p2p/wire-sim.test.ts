// Issue 12 item 1 ("bytes at every boundary") in the simulator: with the wire round trip each
// recipient decodes its own copy of what a peer sent (P2P bundles, state sync, XNet slices), so no
// two replicas share a mutable object; the round trip changes no trace digest; and a Byzantine
// replica that sends garbage bytes gets them dropped and traced while the subnet stays safe and live.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { DEFAULT_CONSENSUS_CONFIG } from "../../harness/consensus/config.ts";
import type { BlockProposal } from "../../harness/consensus/artifacts.ts";
import type { WireMode } from "../../harness/p2p/wire-mode.ts";
import { SimSubnet } from "../../harness/replica/subnet.ts";
import type { CertifiedSlice } from "../../harness/routing/xnet.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { defaultNetworkConfig } from "../../harness/sim/network.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { Trace } from "../../harness/sim/trace.ts";
import { height, replicaId, secondsToUs, timeUs, type HashHex, type Height } from "../../harness/types.ts";
import { bundleSize, decodeBundleShared, encodeBundle } from "../../harness/p2p/codec.ts";
import type { WireItem } from "../../harness/p2p/messages.ts";
import { buildIC, fixture, submitCall } from "../routing/xnet-helpers.ts";

const count = (report: RunReport, kind: string): number => report.eventCounts[kind] ?? 0;

function subnet(wire: WireMode): SimSubnet {
  const s = new SimSubnet({
    n: 4,
    consensus: DEFAULT_CONSENSUS_CONFIG,
    network: defaultNetworkConfig(4),
    rng: Rng.fromSeed(5),
    trace: new Trace(),
    observer: { onBatchDelivered: () => {}, onStateSynced: () => {} },
    wire,
  });
  s.start();
  s.run(secondsToUs(4));
  return s;
}

/** Replica `holder`'s copy of the proposal of the block finalized at h. */
function proposalHeldBy(s: SimSubnet, holder: number, h: Height): BlockProposal | undefined {
  const pool = s.replica(replicaId(holder))?.consensusPool;
  const block = pool?.finalizedBlock(h);
  return block === undefined ? undefined : pool?.proposals.get(h)?.get(block.hash);
}

/** The maker of the block finalized at h, and two other replicas. */
function makerAndOthers(s: SimSubnet, h: Height): [number, number, number] {
  const maker = s.replica(replicaId(0))?.consensusPool.finalizedBlock(h)?.maker ?? 0;
  const others = [0, 1, 2, 3].filter((i) => i !== maker);
  return [maker, others[0]!, others[1]!];
}

/** Whether every object reachable from `value` is frozen. */
function deeplyFrozen(value: unknown): boolean {
  if (value === null || typeof value !== "object") return true;
  return Object.isFrozen(value) && Object.values(value).every(deeplyFrozen);
}

test("item 1: with the round trip no two replicas share a mutable object — recipients of a broadcast hold one deep-frozen copy (changing it throws), the sender its own", (t) => {
  const s = subnet("roundtrip");
  const h = height(3);
  const [maker, x, y] = makerAndOthers(s, h);
  const [own, atX, atY] = [proposalHeldBy(s, maker, h), proposalHeldBy(s, x, h), proposalHeldBy(s, y, h)];
  if (own === undefined || atX === undefined || atY === undefined) return t.fail("the proposal of height 3 reached two replicas besides its maker");
  t.not(atX, own, "not the sender's object");
  t.deepEqual(atX, own, "equal content");
  t.false(Object.isFrozen(own), "the sender's own object is its own to keep");
  // Shared between recipients only because it is frozen through and through (Note [interned items]).
  if (atX === atY) t.true(deeplyFrozen(atX));
  t.throws(() => {
    (atX as { signature: string }).signature = "changed at one recipient";
  }, { instanceOf: TypeError });
  t.throws(() => {
    (atX.block.context as { timeUs: number }).timeUs = -1;
  }, { instanceOf: TypeError });
  t.is(atY.signature, own.signature);
  t.is(atY.block.context.timeUs, own.block.context.timeUs);
});

test("item 1: items that hold byte arrays (envelopes, snapshots) are decoded for each recipient: changing one copy leaves the other", (t) => {
  const envelope = new Uint8Array([0xd9, 0xd9, 0xf7, 1, 2, 3]);
  const ingress = { id: "ab".repeat(32) as HashHex, sender: "user1", nonce: 1, body: "", sizeBytes: 6, expiryUs: timeUs(9), signature: "", envelope };
  const snapshot = { height: height(10), stateHash: "cd".repeat(32) as HashHex, sizeBytes: 3, data: new Uint8Array([7, 8, 9]) };
  const status = { finalizedHeight: height(1), notarizedHeight: height(1), beaconHeight: height(1), cupHeight: height(0) };
  const items: WireItem[] = [{ kind: "ingress", message: ingress }, { kind: "state-response", snapshot }, { kind: "status", status }];
  const bytes = encodeBundle({ items, sizeBytes: bundleSize(items) });
  const [first, second] = [decodeBundleShared(bytes), decodeBundleShared(bytes)];
  if (!first.ok || !second.ok) return t.fail("decodes");
  const [a, b] = [first.value.items, second.value.items];
  t.deepEqual(a, items);
  t.not(a[0], b[0]);
  t.not(a[1], b[1]);
  if (a[0]?.kind !== "ingress" || b[0]?.kind !== "ingress" || a[1]?.kind !== "state-response" || b[1]?.kind !== "state-response") return t.fail("kinds");
  a[0].message.envelope![3] = 99;
  a[1].snapshot.data[0] = 99;
  t.is(b[0].message.envelope![3], 1);
  t.is(b[1].snapshot.data[0], 7);
  t.is(envelope[3], 1, "nor the sender's");
  t.is(a[2], b[2], "a status report holds no bytes: shared, frozen");
  t.true(deeplyFrozen(a[2]));
});

test("item 1: without the round trip (objects mode) recipients share the sender's object — what the test above rules out", (t) => {
  const s = subnet("objects");
  const h = height(3);
  const [maker, x, y] = makerAndOthers(s, h);
  const own = proposalHeldBy(s, maker, h);
  t.true(own !== undefined);
  t.is(proposalHeldBy(s, x, h), own);
  t.is(proposalHeldBy(s, y, h), own);
});

test("item 1: XNet slices handed between subnets are each recipient's own copy", (t) => {
  const seen = (wire: WireMode): Map<string, CertifiedSlice[]> => {
    const ic = buildIC(7, [
      { name: "a", n: 4, wasm: [fixture("motoko/caller.classic.wasm")] },
      { name: "b", n: 4, wasm: [fixture("motoko/callee.classic.wasm")] },
    ], new Trace(), undefined, wire);
    ic.start();
    const bySlice = new Map<string, CertifiedSlice[]>();
    for (let i = 0; i < 4; i++) {
      const replica = ic.subnet("a").replica(replicaId(i));
      if (replica === undefined) continue;
      const onSlice = replica.onXNetSlice.bind(replica);
      replica.onXNetSlice = (slice) => {
        bySlice.set(slice.id, [...(bySlice.get(slice.id) ?? []), slice]);
        onSlice(slice);
      };
    }
    ic.run(secondsToUs(3));
    submitCall(ic, "a", ic.registry.canisterId(ic.record("a"), 0), "callPing", [IDL.Text, IDL.Nat], [ic.registry.canisterId(ic.record("b"), 0), 41n]);
    ic.run(secondsToUs(8));
    return bySlice;
  };
  const copies = [...seen("roundtrip").values()].filter((slices) => slices.length >= 2);
  t.true(copies.length > 0, "some slice reached several replicas of a");
  for (const [first, ...rest] of copies) for (const other of rest) {
    t.not(other, first);
    t.not(other.certification, first!.certification);
    t.not(other.witness, first!.witness);
  }
  // Served from one replica's objects, slices share its certification: what the round trip ends.
  const shared = [...seen("objects").values()].filter((slices) => slices.length >= 2 && slices.some((s, i) => i > 0 && s.certification === slices[0]!.certification));
  t.true(shared.length > 0);
});

/** A key-value subnet whose r3 crashes past a CUP, restarts from disk and state-syncs; r1 forges state-sync chunks. */
const stateSyncRun = defineScenario({
  name: "wire-state-sync",
  description: "crash past a CUP, state sync from a forger and honest peers",
  n: 4,
  durationS: 30,
  workload: { ratePerSec: 40 },
  consensus: { dkgIntervalLength: 9 },
  faults: [
    { kind: "crash", replicas: [3], atS: 3, restartS: 18 },
    { kind: "forge", replicas: [1], artifacts: ["state-sync-chunk", "notarization-share"] },
  ],
  livenessBoundS: 10,
});

test("item 1: the round trip changes no trace digest (state sync, forged chunks and crashes included)", (t) => {
  const objects = runScenario(stateSyncRun, { seed: 2, wire: "objects" });
  const roundTrip = runScenario(stateSyncRun, { seed: 2, wire: "roundtrip" });
  t.is(objects.verdict, "pass");
  t.true(count(objects, "state-sync.done") >= 1, "r3 state-synced");
  t.is(roundTrip.verdict, objects.verdict);
  t.is(roundTrip.traceDigest, objects.traceDigest);
});

const garbling = (percent?: number) =>
  defineScenario({
    name: "wire-garble",
    description: "r3 sends garbage bytes",
    n: 4,
    durationS: 20,
    workload: { ratePerSec: 40 },
    faults: [{ kind: "garble", replicas: [3], ...(percent === undefined ? {} : { percent }) }],
    livenessBoundS: 6,
  });

test("item 1: a Byzantine replica's garbage bytes are dropped and traced at the receivers, and the subnet stays safe and live", (t) => {
  const report = runScenario(garbling(), { seed: 3, wire: "roundtrip" });
  t.is(report.verdict, "pass", JSON.stringify(report.violations.slice(0, 3)));
  t.true(report.livenessChecked);
  t.true(count(report, "fault.garble") > 100, `${count(report, "fault.garble")} bundles garbled`);
  t.true(count(report, "wire.reject") > 50, `${count(report, "wire.reject")} refused as undecodable`);
  // A flipped bit can leave bytes that decode: then validation refuses what they say.
  t.true(count(report, "artifact.invalid") > 0, "some garbled artifacts decoded and were refused as invalid");
  t.true(report.replicas.filter((r) => r.replica !== "r3").every((r) => r.deliveredHeight > 10));
});

test("item 1: a garbling replica garbles whatever the wire mode (it encodes its own bundles), and the digest is the same in both", (t) => {
  const objects = runScenario(garbling(30), { seed: 4, wire: "objects" });
  const roundTrip = runScenario(garbling(30), { seed: 4, wire: "roundtrip" });
  t.true(count(objects, "wire.reject") > 0);
  t.is(objects.verdict, "pass");
  t.is(roundTrip.traceDigest, objects.traceDigest);
});
