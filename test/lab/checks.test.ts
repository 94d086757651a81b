// Each checker must be able to fire (DESIGN.md rule 7). Safety and state divergence fire in the
// beyond-f and divergent-node scenarios; here validity and liveness fire too.
import test from "ava";
import { makeBlock } from "../../harness/consensus/artifacts.ts";
import { checkLiveness, checkSafety, checkStateAgreement, checkValidity, verdictOf, type CheckInput } from "../../harness/checks/checks.ts";
import { RunRecorder } from "../../harness/checks/observations.ts";
import type { IngressMessage } from "../../harness/consensus/ingress.ts";
import { defineScenario } from "../../harness/scenario/scenario.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { height, replicaId, timeUs, type HashHex } from "../../harness/types.ts";

const msg = (id: string): IngressMessage => ({ id: id as HashHex, sender: "a", nonce: 0, body: "put k v", sizeBytes: 10, expiryUs: timeUs(1e9), signature: "" });
const block = (h: number, ingress: IngressMessage[], salt = 0) =>
  makeBlock({ parent: "p" as HashHex, height: height(h), rank: 0, maker: replicaId(1), context: { timeUs: timeUs(salt) }, isSummary: false, ingress });

function input(recorder: RunRecorder, valid: string[] = []): CheckInput {
  return { recorder, byzantine: new Set(), permanentlyDown: new Set(), validIngress: new Set(valid as HashHex[]), submitTimes: new Map(), healUs: 0, endUs: 100e6, livenessBoundUs: 30e6 };
}

test("validity fires on an unknown (invalid) message and on a message finalized twice", (t) => {
  const recorder = new RunRecorder(2, new Set());
  recorder.onBatchDelivered(replicaId(0), block(1, [msg("good"), msg("bogus")]), "s1" as HashHex, timeUs(1));
  recorder.onBatchDelivered(replicaId(0), block(2, [msg("good")]), "s2" as HashHex, timeUs(2));
  const violations = checkValidity(input(recorder, ["good"]));
  t.deepEqual(violations.map((v) => v.message.replace(/ \w+ at/, " at")), ["r0 finalized invalid ingress at height 1", "r0 finalized ingress finalized twice at height 2"]);
  t.deepEqual(checkValidity(input(new RunRecorder(1, new Set()), [])), []);
});

test("safety fires on two honest replicas delivering different blocks at one height, and not on agreement", (t) => {
  const recorder = new RunRecorder(3, new Set());
  const a = block(1, [], 1);
  recorder.onBatchDelivered(replicaId(0), a, "s" as HashHex, timeUs(1));
  recorder.onBatchDelivered(replicaId(1), a, "s" as HashHex, timeUs(1));
  t.deepEqual(checkSafety(input(recorder)), []);
  recorder.onBatchDelivered(replicaId(2), block(1, [], 2), "s" as HashHex, timeUs(1));
  const [fork] = checkSafety(input(recorder));
  t.is(fork?.height, 1);
  t.deepEqual([...(fork?.replicas ?? [])].sort(), ["r0", "r1", "r2"]);
});

test("state agreement names the minority replica with its first divergent height", (t) => {
  const recorder = new RunRecorder(4, new Set());
  for (let h = 1; h <= 3; h++) {
    const b = block(h, []);
    for (let r = 0; r < 4; r++) recorder.onBatchDelivered(replicaId(r), b, (r === 2 && h >= 2 ? `bad${h}` : `ok${h}`) as HashHex, timeUs(h));
  }
  const violations = checkStateAgreement(input(recorder));
  t.deepEqual(violations.map((v) => [v.replicas, v.height]), [[["r2"], 2]]);
  t.is(verdictOf(violations), "state-divergence");
});

test("liveness fires on a stalled replica and on ingress never finalized", (t) => {
  const recorder = new RunRecorder(2, new Set());
  recorder.onBatchDelivered(replicaId(0), block(1, []), "s" as HashHex, timeUs(1_000_000));
  recorder.onBatchDelivered(replicaId(0), block(2, []), "s" as HashHex, timeUs(90_000_000));
  const result = checkLiveness({ ...input(recorder, ["lost"]), submitTimes: new Map([["lost" as HashHex, 5_000_000]]) });
  t.true(result.checked);
  t.deepEqual(result.violations.map((v) => v.replicas), [["r1"], []]);
  t.regex(result.violations[1]?.message ?? "", /1 valid ingress message/);
});

test("liveness fires end to end when two of four replicas are gone for good", (t) => {
  const report = runScenario(defineScenario({
    name: "stall", description: "2 of 4 crash and never return: the other two cannot finalize.", n: 4, durationS: 50,
    workload: { ratePerSec: 20, stopS: 20 }, faults: [{ kind: "crash", replicas: [0, 1], atS: 5 }], livenessBoundS: 20,
  }), { seed: 1 });
  t.is(report.verdict, "liveness");
  t.true(report.violations.some((v) => v.replicas.includes("r2")));
});
