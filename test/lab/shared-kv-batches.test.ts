// Issue 13 item 1, extended to key-value subnets (harness/replica/kv-state-machine.ts, shared
// through harness/replica/shared-execution.ts): honest replicas adopt one replica's application of
// a batch, one other replica per batch applies it again (the audit). Sharing must change nothing a
// run shows — state hashes, ingress statuses and the trace digest are those of a run without it —
// and the audit must catch a replica whose machine computes differently, which sharing would
// otherwise hide from the state-agreement check.
import test from "ava";
import fc from "fast-check";
import type { IngressMessage } from "../../harness/consensus/ingress.ts";
import { KvStateMachine, type KvBatchOutcome, type KvMachineOptions } from "../../harness/replica/kv-state-machine.ts";
import { SharedExecution } from "../../harness/replica/shared-execution.ts";
import type { Batch } from "../../harness/replica/interfaces.ts";
import { renderHtmlReport } from "../../harness/report/html.ts";
import { generateScenario } from "../../harness/scenario/generate.ts";
import { loadScenario } from "../../harness/scenario/load.ts";
import { runScenario, type RunOptions, type RunReport } from "../../harness/scenario/runner.ts";
import { defineScenario, type Scenario } from "../../harness/scenario/scenario.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import type { Disk } from "../../harness/sim/env.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { assertAgreementNames, assertAuditNames } from "./audit-verdicts.ts";
import { height, replicaId, type HashHex, type Height } from "../../harness/types.ts";

const kvSubnet = defineScenario({
  name: "shared-kv-batches",
  description: "four replicas, the key-value placeholder, 100 messages/s",
  n: 4,
  durationS: 12,
  workload: { ratePerSec: 100, stopS: 9 },
  consensus: { dkgIntervalLength: 9 },
});

/** r0 is down long enough for the subnet to pass a catch-up package: it restarts from its disk and state-syncs. */
const crashAndStateSync = defineScenario({
  ...kvSubnet,
  name: "shared-kv-crash-state-sync",
  durationS: 30,
  workload: { ratePerSec: 60, stopS: 26 },
  faults: [{ kind: "crash", replicas: [0], atS: 3, restartS: 22 }],
});

/** Seven replicas, one partitioned away for a while and one lagging behind (replicas at different heights share). */
const partitionAndLag = defineScenario({
  ...kvSubnet,
  name: "shared-kv-partition-lag",
  n: 7,
  durationS: 20,
  workload: { ratePerSec: 80, stopS: 16 },
  faults: [
    { kind: "partition", groups: [[0, 1, 2, 3, 4, 5], [6]], fromS: 2, toS: 8 },
    { kind: "lag", replicas: [5], delayMs: 400, fromS: 1, toS: 12 },
  ],
});

/** Every replica's store and ingress history (sorted rows) at the end of a run. */
function finalStatesOf(scenario: Scenario, options: Omit<RunOptions, "seed" | "onFinish">, seed: number): { report: RunReport; states: unknown[] } {
  const states: unknown[] = [];
  const report = runScenario(scenario, {
    seed,
    ...options,
    onFinish: (subnet) => {
      for (let i = 0; i < scenario.n; i++) {
        const machine = subnet.replica(replicaId(i))?.stateMachine;
        states.push(machine instanceof KvStateMachine ? machine.inspect() : null);
      }
    },
  });
  return { report, states };
}

function bothWays(scenario: Scenario, options: Omit<RunOptions, "seed" | "onFinish"> = {}, seed = 1) {
  return { on: finalStatesOf(scenario, options, seed), off: finalStatesOf(scenario, { ...options, sharedExecution: false }, seed) };
}

for (const [what, scenario] of [
  ["one subnet under load", kvSubnet],
  ["a crash, a restart from disk and a state sync", crashAndStateSync],
  ["a partition and a lagging replica, seven replicas", partitionAndLag],
] as const) {
  test(`key-value subnets: sharing batches leaves state hashes, ingress statuses and the trace digest unchanged — ${what}`, (t) => {
    const { on, off } = bothWays(scenario);
    t.is(on.report.traceDigest, off.report.traceDigest);
    t.deepEqual(on.report.replicas, off.report.replicas);
    t.deepEqual(on.report.stateHashTable, off.report.stateHashTable);
    t.deepEqual(on.states, off.states, "every replica's store and ingress history");
    t.is(on.report.verdict, "pass", JSON.stringify(on.report.violations.slice(0, 3)));
    t.is(off.report.verdict, "pass");
    // Sharing really happened (and the audit ran) — otherwise the equality proves nothing.
    const [sharing, alone] = [on.report.execution, off.report.execution];
    t.is(sharing?.stateMachine, "key-value");
    t.true((sharing?.shared ?? 0) > 0 && (sharing?.audited ?? 0) > 0, JSON.stringify(sharing));
    t.true((sharing?.executions ?? 0) < (alone?.executions ?? 0), JSON.stringify([sharing, alone]));
    t.deepEqual([alone?.sharing, alone?.shared, alone?.audited], [false, 0, 0]);
    t.is(sharing?.mismatches, 0);
    if (scenario === crashAndStateSync) t.true((on.report.eventCounts["state-sync.done"] ?? 0) > 0, "r0 state-synced");
  });
}

test("key-value subnets: sharing on and off give the same run for drawn seeds, sizes and crashes (property)", (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1_000_000 }),
      fc.constantFrom(4, 7),
      fc.option(fc.record({ replica: fc.integer({ min: 0, max: 3 }), atS: fc.integer({ min: 1, max: 3 }), downS: fc.integer({ min: 1, max: 4 }) }), { nil: undefined }),
      (seed, n, crash) => {
        const scenario = defineScenario({
          ...kvSubnet,
          name: "shared-kv-property",
          n,
          durationS: 8,
          workload: { ratePerSec: 60, stopS: 6 },
          faults: crash === undefined ? [] : [{ kind: "crash", replicas: [crash.replica], atS: crash.atS, restartS: crash.atS + crash.downS }],
        });
        const { on, off } = bothWays(scenario, {}, seed);
        if (on.report.traceDigest !== off.report.traceDigest) throw new Error(`digests differ, seed ${seed}, n ${n}, crash ${JSON.stringify(crash)}`);
        t.deepEqual(on.states, off.states);
        t.deepEqual(on.report.replicas, off.report.replicas);
        return (on.report.execution?.shared ?? 0) > 0 && on.report.execution?.mismatches === 0;
      },
    ),
    { numRuns: Number(process.env.FC_RUNS ?? 4), seed: Number(process.env.FC_SEED ?? 20261207) },
  );
});

// ---- the machine: batches as a property ------------------------------------------------------

const BATCH_TIME_STEP_NS = 90_000_000_000n; // 90 s: ingress entries pass their time-to-live within a few batches

const messageOf = (k: number, body: string): IngressMessage => ({ id: k.toString(16).padStart(64, "0") as HashHex, sender: "u", nonce: k, body, sizeBytes: 10, expiryUs: 0 as never, signature: "" });

const bodyArb = fc.tuple(fc.constantFrom("put", "get", "append", "del"), fc.constantFrom("a", "b", "c"), fc.constantFrom("", "x", "y z")).map(([op, key, value]) => `${op} ${key} ${value}`);
/** Batches of messages; ids drawn from a small range, so a batch may carry one already answered (induction drops it). */
const batchesArb = fc.array(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), bodyArb), { maxLength: 6 }), { minLength: 1, maxLength: 12 });

function batchAt(h: number, messages: readonly (readonly [number, string])[]): Batch {
  return { height: height(h), timeNs: BigInt(h) * BATCH_TIME_STEP_NS, randomness: "00" as HashHex, ingress: messages.map(([k, body]) => messageOf(k, body)), requiresFullStateHash: h % 4 === 0 };
}

test("key-value machines that adopt each other's batches end where a machine that applies them all does (property)", (t) => {
  fc.assert(
    fc.property(batchesArb, fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), (batches, firsts) => {
      const shared = new SharedExecution<KvBatchOutcome>({ subnet: "a", sharing: true, auditRng: Rng.fromSeed(3).fork("execution-audit") });
      const members = [0, 1, 2, 3].map((i) => new KvStateMachine(new SimDisk(), { sharing: shared.member(i, `r${i}`) }));
      const alone = new KvStateMachine(new SimDisk());
      batches.forEach((messages, k) => {
        const batch = batchAt(k + 1, messages);
        alone.deliverBatch(batch);
        // Any member may be first (the computer); the others adopt or audit in turn.
        const first = (firsts[k] ?? 0) % members.length;
        for (let j = 0; j < members.length; j++) members[(first + j) % members.length]!.deliverBatch(batch);
        for (const m of members) t.is(m.stateHashAt(batch.height), alone.stateHashAt(batch.height));
      });
      const top = height(batches.length);
      for (const m of members) {
        t.deepEqual(m.inspect(), alone.inspect());
        for (let k = 0; k < 31; k++) t.deepEqual(m.ingressStatus(messageOf(k, "").id), alone.ingressStatus(messageOf(k, "").id));
        // The checkpoint each wrote to its own disk holds the same state.
        const h = height(top - (top % 4));
        if (h > 0) t.deepEqual(m.checkpointAt(h)?.data, alone.checkpointAt(h)?.data);
      }
      t.is(shared.stats.mismatches, 0);
      t.is(shared.stats.shared, batches.length * (members.length - 2), "one computer and one auditor per batch, the others adopt");
    }),
    { numRuns: Number(process.env.FC_RUNS ?? 60), seed: Number(process.env.FC_SEED ?? 20261207) },
  );
});

test("key-value machines with a corruptor, a canary or no leave to share apply every batch themselves and never store", (t) => {
  const batch = batchAt(1, [[1, "put a x"]]);
  const hooks: [string, KvMachineOptions, boolean][] = [
    ["corruptor", { corruptor: (_h, _k, v) => v }, true],
    ["skip-checksum canary", { skipChecksums: true }, true],
    // A Byzantine replica, or one the subnet hooks (configureStateMachine): its member may not share.
    ["member without leave to share", {}, false],
  ];
  for (const [what, hook, mayShare] of hooks) {
    const shared = new SharedExecution<KvBatchOutcome>({ subnet: "a", sharing: true, auditRng: Rng.fromSeed(1), audit: false });
    const machine = (i: number, options: KvMachineOptions, share = true) => new KvStateMachine(new SimDisk(), { ...options, sharing: shared.member(i, `r${i}`, share) });
    const hooked = machine(0, hook, mayShare);
    hooked.deliverBatch(batch);
    t.is(shared.size, 0, `${what}: the hooked replica stored its outcome`);
    const honest = [machine(1, {}), machine(2, {})];
    for (const m of honest) m.deliverBatch(batch);
    t.deepEqual(shared.stats, { executions: 2, shared: 1, audited: 0, mismatches: 0 }, what);
    t.is(honest[0]!.stateHashAt(height(1)), hooked.stateHashAt(height(1)), what);
  }
});

// ---- the audit ---------------------------------------------------------------------------------

/**
 * A key-value machine with a bug the lab does not know about: every `period`-th `put` it runs
 * stores a value with a character appended (as a nondeterministic machine would). Not a fault
 * injector: the replica runs the honest code path and shares batches.
 */
class FlakyKvStateMachine extends KvStateMachine {
  private puts = 0;
  static period = 40;

  protected override execute(h: Height, body: string): string {
    if (!body.startsWith("put ")) return super.execute(h, body);
    this.puts++;
    return super.execute(h, this.puts % FlakyKvStateMachine.period === 0 ? `${body}!` : body);
  }
}

const flakyR2: Pick<RunOptions, "makeKvStateMachine"> = {
  makeKvStateMachine: (replica: string, disk: Disk, options: KvMachineOptions) => (replica === "r2" ? FlakyKvStateMachine.fromDisk(disk, options) : KvStateMachine.fromDisk(disk, options)),
};

test("key-value subnets: the audit catches a replica whose own machine computes differently", (t) => {
  assertAuditNames(t, runScenario(kvSubnet, { seed: 1, ...flakyR2 }), "r2");
});

test("key-value subnets: with sharing off, state agreement names the replica with the flaky machine", (t) => {
  assertAgreementNames(t, runScenario(kvSubnet, { seed: 1, ...flakyR2, sharedExecution: false }), "r2");
});

test("key-value subnets: divergent-node still names r3 alone with sharing on, and runs as with it off", async (t) => {
  const { scenario } = await loadScenario(new URL("../../scenarios/divergent-node.ts", import.meta.url).pathname);
  const { on, off } = bothWays(scenario);
  t.deepEqual(on.report.violations.map((v) => v.replicas), [["r3"]]);
  t.true(on.report.asExpected);
  t.is(on.report.traceDigest, off.report.traceDigest);
  t.true((on.report.execution?.shared ?? 0) > 0, "the honest replicas shared");
  const honest = on.report.replicas.filter((r) => r.replica !== "r3");
  t.is(new Set(honest.map((r) => r.stateHash)).size, 1, "the other replicas agree");
});

test("key-value subnets: the HTML report counts batches, not executions", (t) => {
  const report = runScenario(defineScenario({ ...kvSubnet, durationS: 4, workload: { ratePerSec: 20, stopS: 3 } }), { seed: 1 });
  const html = renderHtmlReport({ ...report, replayCommand: "subnetlab replay repro.json", scenarioPath: "inline" });
  t.regex(html, /<dt>batches<\/dt><dd>[\d,]+ applied by replicas themselves \([\d,]+ shared, [\d,]+ audited, 0 audit mismatches\)/);
  t.false(html.includes("<dt>executions</dt>"));
});

test("key-value subnets: fuzz --no-shared-execution switches sharing off in generated key-value scenarios too", (t) => {
  const options = { nodes: [4], kinds: ["crash", "lag"] as const };
  t.is(generateScenario(3, { ...options, kinds: [...options.kinds], sharedExecution: false }).execution?.sharing, false);
  t.is(generateScenario(3, { ...options, kinds: [...options.kinds] }).execution, undefined, "the default scenario is what it was");
});
