// Issue 11, item 7: storage faults. A replica's disk holds bytes and writes are pending until a
// sync (test/sim/disk.test.ts); the storage fault kind loses unsynced writes or tears the last one
// at a crash, or flips bits in a checkpoint record or page. Within f faulty replicas every check
// passes — the replica detects the damage (checksums, page hashes, state hash) and recovers (its
// pool log's valid prefix, an older checkpoint, state sync from peers); beyond, the checkers fire.
// The canary skip-checksum (a restart that adopts a rotten checkpoint) is in
// test/lab/fuzz-hardening.test.ts (C5): it is that replica's state divergence on the first run.
import test from "ava";
import { checkFaultSpec, FaultSpecError, type FaultSpec } from "../../harness/faults/spec.ts";
import { generateScenario, FUZZ_KINDS } from "../../harness/scenario/generate.ts";
import { withinFaultBound } from "../../harness/replay/shrink.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { scenarioNotes, type Scenario } from "../../harness/scenario/scenario.ts";
import { faultsTolerated } from "../../harness/types.ts";

const kvSubnet = (name: string, faults: readonly FaultSpec[], extra: Partial<Scenario> = {}): Scenario => ({
  name,
  description: name,
  n: 4,
  durationS: 60,
  workload: { ratePerSec: 20, stopS: 35 },
  consensus: { dkgIntervalLength: 9 },
  livenessBoundS: 20,
  faults,
  ...extra,
});

/** Runs a scenario and keeps the trace lines that match `pattern`. */
function runKeeping(scenario: Scenario, pattern: RegExp): { report: RunReport; lines: string[] } {
  const lines: string[] = [];
  const report = runScenario(scenario, { seed: 1, traceSink: (_record, line) => { if (pattern.test(line)) lines.push(line.trim()); } });
  return { report, lines };
}

/** r3 loses (or tears) its unsynced writes at each of eight crashes, restarting 10 ms later. */
const crashLoop = (effect: "lose-unsynced" | "torn-write"): FaultSpec[] =>
  Array.from({ length: 8 }, (_, i) => 15 + 1.37 * i).flatMap((t): FaultSpec[] => [
    { kind: "storage", replicas: [3], effect, atS: t - 0.05 },
    { kind: "crash", replicas: [3], atS: t, restartS: t + 0.01 },
  ]);

const lostAtCrash = (lines: readonly string[]): number => lines.reduce((sum, l) => sum + Number(/lost=(\d+)/.exec(l)?.[1] ?? 0), 0);

test("item 7: lose-unsynced — a replica that loses its unsynced writes at each of eight crashes rebuilds its pool from its log and every check passes", (t) => {
  const { report, lines } = runKeeping(kvSubnet("lose-unsynced", crashLoop("lose-unsynced")), /fault\.storage\|/);
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
  t.is(lines.length, 8, "each crash is a logged fault act");
  t.true(lines.every((l) => l.endsWith("|MALICIOUS")));
  t.true(lostAtCrash(lines) > 0, `writes were lost: ${lines.join("\n")}`);
});

test("item 7, C2: the canary persist-after-send (shares sent before the log is synced) is caught by the protocol-rule checker on the first run", (t) => {
  const report = runScenario(kvSubnet("persist-after-send", crashLoop("lose-unsynced"), { consensus: { dkgIntervalLength: 9, canary: "persist-after-send" } }), { seed: 1 });
  t.is(report.verdict, "safety");
  const rule = report.violations.find((v) => /r3 signed block proposals for 2 different blocks at height \d+/.test(v.message));
  t.truthy(rule, JSON.stringify(report.violations));
  t.deepEqual(rule?.replicas, ["r3"]);
});

test("item 7: torn-write — the half-written last record is recognised and passed over; every check passes", (t) => {
  const { report, lines } = runKeeping(kvSubnet("torn-write", crashLoop("torn-write")), /fault\.storage\||storage\.recovered/);
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
  const torn = lines.filter((l) => /effect=torn-write.*torn=/.test(l));
  t.true(torn.length > 0, `a write was torn: ${lines.join("\n")}`);
  for (const l of torn) t.regex(l, /keptBytes=\d+,ofBytes=\d+/);
  t.regex(lines.join("\n"), /storage\.recovered\|what=pool-log\/\d+: record \d+: torn record: \d+ of \d+ payload bytes; 1 log entry from there on discarded/);
});

test("item 7: corrupt-checkpoint — the rotten record fails its checksum, the replica falls back and state-syncs; every check passes", (t) => {
  const faults: FaultSpec[] = [{ kind: "storage", replicas: [3], effect: "corrupt-checkpoint", atS: 19 }, { kind: "crash", replicas: [3], atS: 20, restartS: 25 }];
  const { report, lines } = runKeeping(kvSubnet("corrupt-checkpoint", faults), /\|3\|(fault\.storage|storage\.recovered|state-sync\.done)/);
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
  t.regex(lines.join("\n"), /fault\.storage\|effect=corrupt-checkpoint,key=checkpoint\/\d+,offset=\d+\|MALICIOUS/);
  t.regex(lines.join("\n"), /storage\.recovered\|what=checkpoint\/\d+: corrupt record: checksum mismatch/);
});

test("item 7: corrupt-page on every page — each fails its hash and is removed; the replica recovers from the chain; every check passes", (t) => {
  const faults: FaultSpec[] = [{ kind: "storage", replicas: [3], effect: "corrupt-page", atS: 15.4, scope: "all" }, { kind: "crash", replicas: [3], atS: 15.5, restartS: 18 }];
  const { report, lines } = runKeeping(kvSubnet("corrupt-page", faults), /\|3\|(storage\.recovered|replica\.start)/);
  t.is(report.verdict, "pass", JSON.stringify(report.violations));
  const recovered = lines.filter((l) => l.includes("storage.recovered"));
  t.true(recovered.length >= 2, lines.join("\n"));
  t.true(recovered.every((l) => /does not match its hash|does not decode/.test(l)), lines.join("\n"));
});

test("item 7: beyond the bound — every replica's checkpoints rot and all restart: liveness fires and so does the acknowledged-updates check", (t) => {
  const faults: FaultSpec[] = [
    ...[0, 1, 2, 3].map((r): FaultSpec => ({ kind: "storage", replicas: [r], effect: "corrupt-checkpoint", atS: 164, scope: "all" })),
    { kind: "crash", replicas: [0, 1, 2, 3], atS: 165, restartS: 166 },
  ];
  const report = runScenario(kvSubnet("all-checkpoints-rot", faults, { durationS: 220, consensus: { dkgIntervalLength: 49 } }), { seed: 1 });
  t.is(report.verdict, "liveness");
  const lost = report.violations.filter((v) => v.property === "invariant" && v.message.startsWith("acknowledged updates lost"));
  t.deepEqual(lost.flatMap((v) => v.replicas), ["r0", "r1", "r2", "r3"], JSON.stringify(report.violations));
  t.regex(lost[0]?.message ?? "", /r0 executed \d+ message\(s\) that its state \(now at height 0\) no longer holds/);
});

test("item 7: storage fault specs are validated with clear errors", (t) => {
  const check = (spec: unknown): void => checkFaultSpec(spec as FaultSpec, 0, 4, 60);
  t.notThrows(() => check({ kind: "storage", replicas: [1], effect: "corrupt-page", atS: 3, scope: "all" }));
  t.throws(() => check({ kind: "storage", replicas: [1], effect: "lose-synced", atS: 3 }), { instanceOf: FaultSpecError, message: /faults\[0\] \(storage\): effect must be one of "lose-unsynced", "torn-write", "corrupt-checkpoint", "corrupt-page", got "lose-synced"/ });
  t.throws(() => check({ kind: "storage", replicas: [1], effect: "torn-write", atS: 3, scope: "all" }), { message: /scope applies to corrupt-checkpoint and corrupt-page only/ });
  t.throws(() => check({ kind: "storage", replicas: [1], effect: "corrupt-page", atS: 3, scope: "every" }), { message: /scope must be "newest" or "all"/ });
  t.throws(() => check({ kind: "storage", replicas: [7], effect: "corrupt-page", atS: 3 }), { message: /replica 7 is not in 0\.\.3/ });
  t.throws(() => check({ kind: "storage", replicas: [1], effect: "corrupt-page", atS: 99 }), { message: /start 99s is outside the run/ });
});

test("item 7: the fuzzer's swarm draws every storage effect, each met by a crash of its replica, with Byzantine and storage-faulted replicas together within f", (t) => {
  const effects = new Set<string>();
  for (let seed = 0; seed < 300; seed++) {
    const scenario = generateScenario(seed, { nodes: [4, 7], kinds: FUZZ_KINDS });
    const faults = scenario.faults ?? [];
    const faulty = new Set<number>();
    for (const f of faults) {
      if (f.kind === "storage" || f.kind === "equivocate" || f.kind === "silent" || f.kind === "withhold" || f.kind === "forge") for (const r of f.replicas) faulty.add(r);
      if (f.kind !== "storage") continue;
      effects.add(f.effect);
      const crash = faults.find((c) => c.kind === "crash" && c.replicas.includes(f.replicas[0]!) && c.atS >= f.atS && c.restartS !== undefined);
      t.truthy(crash, `seed ${seed}: a storage fault without a crash to meet it`);
      for (const [i, spec] of faults.entries()) t.notThrows(() => checkFaultSpec(spec, i, scenario.n, scenario.durationS));
    }
    t.true(faulty.size <= faultsTolerated(scenario.n), `seed ${seed}: ${faulty.size} faulty replicas for n = ${scenario.n}`);
  }
  t.deepEqual([...effects].sort(), ["corrupt-checkpoint", "corrupt-page", "lose-unsynced", "torn-write"]);
  const without = generateScenario(5, { nodes: [4, 7], kinds: FUZZ_KINDS.filter((k) => k !== "storage") });
  t.false((without.faults ?? []).some((f) => f.kind === "storage"), "storage faults only when enabled");
});

test("item 7: a storage-faulted replica counts within f — for the shrinker's bound and the run's notes", (t) => {
  const faults: FaultSpec[] = [{ kind: "silent", replicas: [0] }, { kind: "storage", replicas: [1], effect: "corrupt-page", atS: 3 }];
  t.false(withinFaultBound(kvSubnet("two-faulty", faults)), "a silent and a storage-faulted replica are two, f = 1");
  t.true(withinFaultBound(kvSubnet("one-faulty", faults.slice(1))));
  const notes = scenarioNotes(kvSubnet("two-faulty", faults));
  t.true(notes.some((n) => /2 faulty \(Byzantine or storage-faulted\) replicas \(r0, r1\) exceed f = 1 for n = 4/.test(n)), notes.join("\n"));
});
