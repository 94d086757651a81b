// Issue 11, checker gaps C1, C2 and C4: bugs nobody planted must not slip past the checkers. Each
// gap has a canary (ConsensusConfig.canary: a deliberately broken copy of the honest code, off
// unless set) that the lab must catch on the first run that exercises it — a single run here —
// plus unit tests of the checkers on hand-made observations.
import test from "ava";
import { makeBlock } from "../../harness/consensus/artifacts.ts";
import { DEFAULT_CONSENSUS_CONFIG, type Canary } from "../../harness/consensus/config.ts";
import { checkProtocolRules, checkSafety, checkStateAgreement, verdictOf, type CheckInput, type Violation } from "../../harness/checks/checks.ts";
import { RunRecorder } from "../../harness/checks/observations.ts";
import type { FaultSpec } from "../../harness/faults/spec.ts";
import { ConsensusPool } from "../../harness/consensus/pool.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { height, replicaId, timeUs, type HashHex } from "../../harness/types.ts";

/**
 * r0's links are 650 ms slow: when r0 is the rank-0 maker its block arrives while the others
 * notarize the rank-1 block, so some heights get two proposals, two notarization shares from one
 * replica and two notarized blocks — what the notary, finalizer and delivery rules are about.
 */
function laggingMaker(canary?: Canary) {
  return defineScenario({
    name: `lagging-maker${canary === undefined ? "" : `-${canary}`}`,
    description: "r0's links are 650 ms slow, so its rank-0 blocks compete with rank-1 blocks.",
    n: 4,
    durationS: 40,
    workload: { ratePerSec: 20 },
    faults: [{ kind: "lag", replicas: [0], delayMs: 650 }],
    livenessBoundS: 15,
    ...(canary === undefined ? {} : { consensus: { canary } }),
  });
}

function restarts(faults: FaultSpec[], canary?: Canary) {
  return defineScenario({
    name: "restarts", description: "Replicas crash and restart (re-executing from their last checkpoint).",
    n: 4, durationS: 40, workload: { ratePerSec: 20 }, faults, livenessBoundS: 15,
    ...(canary === undefined ? {} : { consensus: { canary } }),
  });
}

const protocolViolations = (report: RunReport, pattern: RegExp): Violation[] => report.violations.filter((v) => v.property === "safety" && pattern.test(v.message));
const show = (report: RunReport): string => JSON.stringify(report.violations.slice(0, 3));

test("canaries are off unless a scenario sets one: the honest code passes the scenarios the canary tests use", (t) => {
  t.is(DEFAULT_CONSENSUS_CONFIG.canary, undefined);
  for (const scenario of [laggingMaker(), restarts([{ kind: "crash", replicas: [2, 3], atS: 10, restartS: 12 }])]) {
    const report = runScenario(scenario, { seed: 1 });
    t.is(report.verdict, "pass", `${scenario.name}: ${show(report)}`);
  }
});

// ---- C1 -------------------------------------------------------------------------------------------

test("C1: a replica executing a block other than its finalized chain's is a fork named with both sides and the height (canary implicit-finalization-by-rank)", (t) => {
  const report = runScenario(laggingMaker("implicit-finalization-by-rank"), { seed: 1 });
  t.is(report.verdict, "safety", show(report));
  const fork = report.violations.find((v) => v.property === "safety" && v.message.startsWith("fork at height"));
  t.truthy(fork, show(report));
  // Every replica executed the same (wrong) block, so comparing executed blocks alone saw nothing.
  t.regex(fork?.message ?? "", /^fork at height (\d+): block [0-9a-f]{12} (executed|finalized) by r0,r1,r2,r3; block [0-9a-f]{12} (executed|finalized) by r0,r1,r2,r3$/);
  t.is(fork?.message.startsWith(`fork at height ${fork.height}: `), true);
  t.deepEqual(fork?.replicas, ["r0", "r1", "r2", "r3"]);
});

test("C1: a replica that finds its finalized chain conflicting with what it executed reports a fork, not a stall", (t) => {
  const recorder = new RunRecorder(4, new Set());
  const executed = block(5, "x");
  for (let r = 0; r < 4; r++) recorder.onBatchDelivered(replicaId(r), executed, "s5" as HashHex, timeUs(5));
  for (let r = 0; r < 4; r++) recorder.onForkDetected(replicaId(r), height(5), executed.hash, "f1a11ed0000000000000" as HashHex, timeUs(9));
  const [fork] = checkSafety(input(recorder));
  t.is(fork?.height, 5);
  t.deepEqual(fork?.replicas, ["r0", "r1", "r2", "r3"]);
  t.is(fork?.message, `fork at height 5: block ${executed.hash.slice(0, 12)} executed by r0,r1,r2,r3; block f1a11ed00000 finalized by r0,r1,r2,r3; r0,r1,r2,r3 found the finalized chain conflicting with what they executed and stopped`);
  t.is(verdictOf(checkSafety(input(recorder))), "safety");
});

test("C1: finalizations are walked down the chain: an ancestor finalized only implicitly conflicts with a block executed there", (t) => {
  const recorder = new RunRecorder(2, new Set());
  const pool = new ConsensusPool(genesisCupFor());
  const [a4, b4] = [block(4, "a"), block(4, "b")];
  const b5 = makeBlock({ parent: b4.hash, height: height(5), rank: 0, maker: replicaId(0), context: { timeUs: timeUs(5) }, isSummary: false, ingress: [] });
  recorder.onArtifact(replicaId(1), { type: "proposal", id: `P${b5.hash}`, block: b5, signature: "" as never, sizeBytes: 0 }, "peer", timeUs(5), pool);
  recorder.onBatchDelivered(replicaId(0), a4, "s" as HashHex, timeUs(4));
  recorder.onArtifact(replicaId(1), { type: "finalization", id: "F5", height: height(5), blockHash: b5.hash, multi: { signers: [], signature: "" as never }, sizeBytes: 0 }, "peer", timeUs(6), pool);
  const [fork] = checkSafety(input(recorder));
  t.is(fork?.height, 4);
  t.deepEqual(fork?.replicas, ["r0", "r1"]);
  t.true(fork?.message.includes(`block ${b4.hash.slice(0, 12)} finalized by r1`));
});

// ---- C2 -------------------------------------------------------------------------------------------

test("C2(a): a finalizer that signs after notarization-sharing another block is caught on the first run (canary finalize-after-other-notarization)", (t) => {
  const report = runScenario(laggingMaker("finalize-after-other-notarization"), { seed: 1 });
  t.is(report.verdict, "safety", show(report));
  const [first] = protocolViolations(report, /^finalization rule broken/);
  t.regex(first?.message ?? "", /^finalization rule broken: r\d signed a finalization share for block [0-9a-f]{12} at height \d+ though it notarization-shared block [0-9a-f]{12} there$/);
  t.is(first?.replicas.length, 1);
  t.true((first?.height ?? 0) > 0);
});

test("C2(b): aggregates of 2f shares are caught on the first run, in a run without faults (canary aggregate-with-2f)", (t) => {
  const scenario = defineScenario({ name: "quiet", description: "No faults.", n: 4, durationS: 20, workload: { ratePerSec: 20 }, consensus: { canary: "aggregate-with-2f" } });
  const report = runScenario(scenario, { seed: 1 });
  t.is(report.verdict, "safety", show(report));
  const [first] = protocolViolations(report, / with \d valid signer/);
  t.regex(first?.message ?? "", /^r\d made a (notarization|finalization) at height 1 for [0-9a-f]{12} with 2 valid signer\(s\) \(it names r\d,r\d\); it needs 3$/);
});

test("C2(c): a notary that shares a higher-ranked block after a lower-ranked one is caught on the first run (canary notarize-two-blocks)", (t) => {
  const report = runScenario(laggingMaker("notarize-two-blocks"), { seed: 1 });
  t.is(report.verdict, "safety", show(report));
  const [first] = protocolViolations(report, /notarization-shared two blocks/);
  t.regex(first?.message ?? "", /^r\d notarization-shared two blocks at height \d+: [0-9a-f]{12} \(rank (\d)\), then [0-9a-f]{12} \(rank \d\), not of lower rank$/);
});

test("C2: the protocol rules on hand-made shares — what the IC's notary may do passes, the rest is named with replica, height, kind and hashes", (t) => {
  const recorder = new RunRecorder(4, new Set([replicaId(3)]));
  const pool = new ConsensusPool(genesisCupFor());
  const [rank0, rank1, byzRank0, other] = [block(7, "a", 0, 0), block(7, "b", 1, 1), block(8, "c", 0, 3), block(8, "d", 1, 1)];
  for (const b of [rank0, rank1, byzRank0, other]) pool.blocks.set(b.hash, b);
  const share = (type: "notarization-share" | "finalization-share", r: number, b: ReturnType<typeof block>) =>
    recorder.onArtifact(replicaId(r), { type, id: `${type}${b.hash}${r}`, height: b.height, blockHash: b.hash, signer: replicaId(r), signature: "" as never, sizeBytes: 0 }, "own", timeUs(1), pool);
  // Allowed: a lower rank after a higher one; a second block after a Byzantine maker's (it may
  // have been disqualified for equivocating); a finalization share for the only block shared.
  share("notarization-share", 0, rank1);
  share("notarization-share", 0, rank0);
  share("notarization-share", 1, byzRank0);
  share("notarization-share", 1, other);
  share("finalization-share", 2, rank0);
  share("notarization-share", 2, rank0);
  t.deepEqual(checkProtocolRules(input(recorder, [3])), []);
  // Not allowed: r2 notarization-shares rank 1 after rank 0, then finalizes the rank-0 block.
  share("notarization-share", 2, rank1);
  const certification = (r: number, hash: string) => recorder.onCertificationShare(replicaId(r), { height: height(9), hash: hash as HashHex, signer: replicaId(r), signature: "" as never }, timeUs(2));
  certification(0, "aaaaaaaaaaaaaaaa");
  certification(0, "bbbbbbbbbbbbbbbb");
  certification(3, "aaaaaaaaaaaaaaaa");
  certification(3, "cccccccccccccccc");
  const messages = checkProtocolRules(input(recorder, [3])).map((v) => `${v.property} ${v.replicas.join(",")} ${v.height}: ${v.message}`);
  t.deepEqual(messages, [
    `safety r2 7: finalization rule broken: r2 signed a finalization share for block ${rank0.hash.slice(0, 12)} at height 7 though it notarization-shared block ${rank1.hash.slice(0, 12)} there`,
    `safety r2 7: r2 notarization-shared two blocks at height 7: ${rank0.hash.slice(0, 12)} (rank 0), then ${rank1.hash.slice(0, 12)} (rank 1), not of lower rank`,
    "safety r0 9: r0 signed certification shares for 2 different state hashes at height 9: aaaaaaaaaaaa, bbbbbbbbbbbb",
  ], "r3 is Byzantine: its two certification shares are its own business");
});

test("C2(b): an aggregate counts only distinct signers that signed its subject before it appeared, against 2f+1 (f+1 for the beacon)", (t) => {
  const recorder = new RunRecorder(4, new Set([replicaId(3)]));
  const pool = new ConsensusPool(genesisCupFor());
  const b = block(3, "a");
  const sign = (r: number) => recorder.onArtifact(replicaId(r), { type: "notarization-share", id: `NS${r}`, height: b.height, blockHash: b.hash, signer: replicaId(r), signature: "" as never, sizeBytes: 0 }, "own", timeUs(1), pool);
  const notarization = (by: number, signers: number[]) => recorder.onArtifact(replicaId(by), { type: "notarization", id: `N${signers.join()}`, height: b.height, blockHash: b.hash, multi: { signers: signers.map(replicaId), signature: "" as never }, sizeBytes: 0 }, "peer", timeUs(2), pool);
  const beacon = (by: number) => recorder.onArtifact(replicaId(by), { type: "beacon", id: "B4", height: height(4), parent: "p" as HashHex, signature: "" as never, hash: "bh" as HashHex, sizeBytes: 0 }, "own", timeUs(3), pool);
  sign(0);
  sign(3);
  notarization(1, [0, 1, 3]); // r1 has not signed (yet): 2 valid signers
  sign(1);
  notarization(2, [0, 1, 3]); // the same content again: judged once, at its first sighting
  sign(2);
  notarization(0, [1, 2, 3]); // all three had signed: fine
  recorder.onArtifact(replicaId(3), { type: "beacon-share", id: "BS", height: height(4), parent: "p" as HashHex, signer: replicaId(3), signature: "" as never, sizeBytes: 0 }, "own", timeUs(3), pool);
  beacon(0); // one signer, the beacon needs f+1 = 2
  const messages = checkProtocolRules(input(recorder, [3])).map((v) => v.message);
  t.deepEqual(messages, [
    `r1 accepted a notarization at height 3 for ${b.hash.slice(0, 12)} with 2 valid signer(s) (it names r0,r1,r3; r1 signed no such share); it needs 3`,
    "r0 made a beacon at height 4 for p with 1 valid signer(s); it needs 2",
  ]);
});

// ---- C4 -------------------------------------------------------------------------------------------

test("C4: state agreement needs 2f+1 matching hashes: one nondeterministic replica is named, two make 'no quorum' (canary state-hash-after-restart)", (t) => {
  const one = runScenario(restarts([{ kind: "crash", replicas: [3], atS: 10, restartS: 12 }], "state-hash-after-restart"), { seed: 1 });
  t.is(one.verdict, "state-divergence", show(one));
  t.deepEqual(one.violations.map((v) => v.replicas), [["r3"]]);
  t.regex(one.violations[0]?.message ?? "", /^r3 diverged at height \d+: state [0-9a-f]{12}, majority [0-9a-f]{12} \(3 of 4 replicas; a quorum is 3\)$/);

  // Two restarted together: a 2–2 split. The old tie-break named r2 and r3 by their ids.
  const two = runScenario(restarts([{ kind: "crash", replicas: [2, 3], atS: 10, restartS: 12 }], "state-hash-after-restart"), { seed: 1 });
  t.is(two.verdict, "state-divergence", show(two));
  t.is(two.violations.length, 1, show(two));
  t.deepEqual(two.violations[0]?.replicas, ["r0", "r1", "r2", "r3"]);
  t.regex(two.violations[0]?.message ?? "", /^no quorum at height (\d+): no state hash has 3 of 4 replicas \(r0,r1: [0-9a-f]{12}; r2,r3: [0-9a-f]{12}\); \d+ later height\(s\) without a quorum either$/);

  // Three restarted one after another: four different hashes. The old rule made the lone r0 the
  // majority and named the other three.
  const three = runScenario(restarts([2, 3, 1].map((r, i) => ({ kind: "crash" as const, replicas: [r], atS: 6 + 6 * i, restartS: 8 + 6 * i })), "state-hash-after-restart"), { seed: 1 });
  t.deepEqual(three.violations.filter((v) => v.property !== "liveness").map((v) => v.replicas), [["r0", "r1", "r2", "r3"]], show(three));
  t.regex(three.violations[0]?.message ?? "", /^no quorum at height \d+: no state hash has 3 of 4 replicas \(r\d: [0-9a-f]{12}(; r\d: [0-9a-f]{12}){3}\)/);
});

test("C4: a lone outlier is never the majority; a replica shown divergent by a quorum stays named and later heights are still judged", (t) => {
  const recorder = new RunRecorder(4, new Set());
  const states: Record<number, string[]> = {
    1: ["ok1", "ok1", "ok1", "ok1"],
    2: ["x", "y", "z", "w"], // all different: nobody can be named
    3: ["ok3", "ok3", "ok3", "bad3"], // a quorum: r3 diverged here
    4: ["ok4", "ok4", "mid4", "bad4"], // r3 already named; r2 against r0,r1 without a quorum
    5: ["ok5", "ok5", "ok5", "bad5"],
  };
  for (const [h, hashes] of Object.entries(states)) {
    const b = block(Number(h), "same");
    hashes.forEach((hash, r) => recorder.onBatchDelivered(replicaId(r), b, hash as HashHex, timeUs(Number(h))));
  }
  const violations = checkStateAgreement(input(recorder));
  t.deepEqual(violations.map((v) => [v.replicas, v.height]), [[["r3"], 3], [["r0", "r1", "r2", "r3"], 2]]);
  t.is(violations[1]?.message, "no quorum at height 2: no state hash has 3 of 4 replicas (r3: w; r0: x; r1: y; r2: z); 1 later height(s) without a quorum either");
});

test("C4: certified hashes (one per certification share) are judged by the same quorum rule", (t) => {
  const recorder = new RunRecorder(4, new Set());
  const b = block(2, "same");
  for (let r = 0; r < 4; r++) recorder.onBatchDelivered(replicaId(r), b, "state" as HashHex, timeUs(2));
  for (let r = 0; r < 4; r++) recorder.onCertificationShare(replicaId(r), { height: height(2), hash: (r === 1 ? "odd" : "certified") as HashHex, signer: replicaId(r), signature: "" as never }, timeUs(2));
  const violations = checkStateAgreement(input(recorder));
  t.deepEqual(violations.map((v) => [v.replicas, v.height, v.message]), [[["r1"], 2, "r1 diverged at height 2: certified state odd, majority certified (3 of 4 replicas; a quorum is 3)"]]);
});

// ---- helpers --------------------------------------------------------------------------------------

function block(h: number, salt: string, rank = 0, maker = 1) {
  return makeBlock({ parent: `parent-${h}` as HashHex, height: height(h), rank, maker: replicaId(maker), context: { timeUs: timeUs(salt.length) }, isSummary: false, ingress: [{ id: `m-${salt}` as HashHex, sender: "a", nonce: 0, body: "put k v", sizeBytes: 10, expiryUs: timeUs(1e9), signature: "" }] });
}

function genesisCupFor() {
  const b = makeBlock({ parent: "genesis-parent" as HashHex, height: height(0), rank: 0, maker: replicaId(0), context: { timeUs: timeUs(0) }, isSummary: true, ingress: [] });
  const beacon = { type: "beacon" as const, id: "B0", height: height(0), parent: "none" as HashHex, signature: "" as never, hash: "b0" as HashHex, sizeBytes: 0 };
  return { type: "cup" as const, id: "C0", content: { height: height(0), block: b, beacon, stateHash: "s0" as HashHex }, signature: "" as never, sizeBytes: 0 };
}

function input(recorder: RunRecorder, byzantine: readonly number[] = []): CheckInput {
  return { recorder, byzantine: new Set(byzantine.map(replicaId)), permanentlyDown: new Set(), validIngress: new Set(), submitTimes: new Map(), healUs: 0, endUs: 100e6, livenessBoundUs: 30e6 };
}
