// Every application checker fires on the violation it exists for (DESIGN.md rule 7), and the
// snapshot-restore scenario without its restore step ends with the "invariant" verdict.
import test from "ava";
import { checkCertifications, checkEveryCallAnswered, checkLedgerConservation, checkProbes, type LedgerView } from "../../harness/checks/invariants.ts";
import { exitCodeOf } from "../../harness/report/exit-codes.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { loadScenario } from "../../harness/scenario/load.ts";

const view = (v: Partial<LedgerView>): LedgerView => ({ supply: 100n, inFlight: 0n, minted: 100n, sentTotal: 0n, receivedTotal: 0n, ...v });

test("ledger conservation holds for balanced books across ledgers, with amounts in flight", (t) => {
  t.deepEqual(checkLedgerConservation([
    { ledger: "a", views: new Map([["a/r0", view({ supply: 60n, inFlight: 10n, sentTotal: 30n })]]) },
    { ledger: "b", views: new Map([["b/r0", view({ supply: 130n, receivedTotal: 30n })]]) },
  ]), []);
  // 10 in flight from a that b already credited (its reply is not back at a): counted once.
  t.deepEqual(checkLedgerConservation([
    { ledger: "a", views: new Map([["a/r0", view({ supply: 90n, inFlight: 10n })]]) },
    { ledger: "b", views: new Map([["b/r0", view({ supply: 110n, receivedTotal: 10n })]]) },
  ]), []);
});

test("ledger conservation fires on lost supply, on a transfer acknowledged but never credited, and on replicas that disagree", (t) => {
  const lost = checkLedgerConservation([{ ledger: "a", views: new Map([["r0", view({ supply: 90n })]]) }]);
  t.regex(lost[0]?.message ?? "", /supply not conserved: Σ\(supply \+ in flight\) − credited-not-settled = 90 but Σ minted = 100/);
  const uncredited = checkLedgerConservation([
    { ledger: "a", views: new Map([["a/r0", view({ supply: 70n, sentTotal: 30n })]]) },
    { ledger: "b", views: new Map([["b/r0", view({ supply: 130n, receivedTotal: 0n })]]) },
  ]);
  t.true(uncredited.some((v) => /acknowledged transfers lost/.test(v.message)));
  const split = checkLedgerConservation([{ ledger: "a", views: new Map([["r0", view({})], ["r1", view({})], ["r2", view({ supply: 1n })]]) }]);
  t.deepEqual(split.find((v) => /disagree/.test(v.message))?.replicas, ["r2"]);
});

test("probes fire on a dissenting replica and on unmet equal/differ expectations", (t) => {
  const same = { r0: 7, r1: 7, r2: 7 };
  const probes = [
    { label: "x", atS: 1, answers: { r0: "reply 01", r1: "reply 01", r2: "reply 02" }, heights: same },
    { label: "y", atS: 2, answers: { r0: "reply 01", r1: "reply 01", r2: "reply 01" }, heights: same },
  ];
  const violations = checkProbes(probes, { differ: [["x", "y"]] });
  t.deepEqual(violations.map((v) => v.replicas), [["r2"], []]);
  t.deepEqual(checkProbes(probes.slice(1), { equal: [["y", "y"]] }), []);
  // A replica a few heights behind may answer differently: it is not judged.
  const behind = { label: "z", atS: 3, answers: { r0: "reply 05", r1: "reply 05", r2: "reply 04" }, heights: { r0: 9, r1: 9, r2: 7 } };
  t.deepEqual(checkProbes([behind], undefined), []);
});

test("every-call-answered fires on a call still processing", (t) => {
  const v = checkEveryCallAnswered([{ replica: "r1", messageId: "ab".repeat(32), status: "processing" }]);
  t.is(v[0]?.property, "invariant");
  t.deepEqual(v[0]?.replicas, ["r1"]);
  t.deepEqual(checkEveryCallAnswered([]), []);
});

test("certification checks fire on two certified states at one height, a replica off the certified state, and a stall", (t) => {
  const ok = { replica: "r0", height: 5, certified: "aa", own: "aa" };
  t.deepEqual(checkCertifications("a", [ok], 8), []);
  const fork = checkCertifications("a", [ok, { replica: "r1", height: 5, certified: "bb", own: "bb" }], 5);
  t.is(fork[0]?.property, "safety");
  const off = checkCertifications("a", [ok, { replica: "r3", height: 5, certified: "aa", own: "cc" }], 5);
  t.deepEqual(off.map((v) => [v.property, v.replicas]), [["state-divergence", ["r3"]]]);
  const stalled = checkCertifications("a", [ok], 40);
  t.is(stalled[0]?.property, "liveness");
});

test("snapshot-restore without its restore step: the invariant checkers fire (exit code 14)", async (t) => {
  const { scenario } = await loadScenario(new URL("../../scenarios/snapshot-restore.ts", import.meta.url).pathname);
  const broken = { ...scenario, name: "snapshot-not-restored", actions: (scenario.actions ?? []).filter((a) => a.kind !== "load-snapshot") };
  const report = runScenario(broken, { seed: 1 });
  t.is(report.verdict, "invariant");
  t.is(exitCodeOf(report.verdict), 14);
  t.true(report.violations.some((v) => /supply not conserved/.test(v.message)));
  t.true(report.violations.some((v) => /probes supply-before and supply-restored should agree/.test(v.message)));
});

test("a replica whose replies differ is named: its certified request statuses do not match what the subnet certified", async (t) => {
  const { scenario } = await loadScenario(new URL("../../scenarios/kv-canister.ts", import.meta.url).pathname);
  const wrongReplies = { ...scenario, name: "divergent-replies", faults: [{ kind: "diverge" as const, replicas: [3], target: "replies" as const, fromS: 5 }] };
  const report = runScenario(wrongReplies, { seed: 1 });
  t.is(report.verdict, "state-divergence");
  const certified = report.violations.find((v) => /certified state .* differs from what subnet a certified/.test(v.message));
  t.deepEqual(certified?.replicas, ["r3"], JSON.stringify(report.violations.map((v) => v.message)));
  t.true(report.violations.every((v) => v.replicas.every((r) => r === "r3")), "only r3 is named");
  t.false(report.violations.some((v) => v.property === "liveness"), "the three honest replicas keep certifying");
});
