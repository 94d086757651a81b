// Issue 12 item 9: how a scenario's faults become actions on real processes and proxies, and what
// real mode refuses before anything starts. Expected proxy sets follow the simulator's own reading
// of each fault (harness/faults/schedule.ts: a partition's unnamed replicas form one more group,
// isolate cuts every link touching the replica, lag delays links touching it once, slow delays
// what reaches it); proxy names are `subnetlab up`'s (`s0-r<a>-to-r<b>` carries a's bytes to b).
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import type { Scenario } from "../../harness/scenario/scenario.ts";
import { planRealRun, RealModeRefusal, type PlannedStep } from "../../harness/real/chaos/plan.ts";
import { byzantineProcess, parseByzantineArgument } from "../../harness/real/chaos/byzantine-process.ts";
import { replicaId } from "../../harness/types.ts";
import type { FaultSpec } from "../../harness/faults/spec.ts";
import { simSubnetKeys } from "../../harness/crypto/sim-backend.ts";
import { Rng } from "../../harness/sim/rng.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const base = (faults: readonly FaultSpec[], n = 4): Scenario => ({ name: "plan-test", description: "", n, durationS: 60, faults });
const proxies = (step: PlannedStep | undefined): string[] => [...((step?.action as { proxies?: readonly string[] }).proxies ?? [])].sort();

test("item 9: partition-heal's four network faults become disabled proxies at their times and enabled at the heal", async (t) => {
  const { scenario } = await loadScenario("scenarios/partition-heal.ts");
  const plan = planRealRun(scenario);
  const begins = plan.steps.filter((s) => s.phase === "begin");
  t.deepEqual(begins.map((s) => [s.atS, s.action.kind]), [[5, "disable-proxies"], [35, "disable-proxies"], [55, "disable-proxies"], [70, "disable-proxies"]]);
  // {r0, r1} against the unnamed group {r2..r6}: every directed link across, both ways.
  const minority = proxies(begins[0]);
  t.is(minority.length, 2 * 5 * 2);
  t.true(minority.includes("s0-r0-to-r6") && minority.includes("s0-r6-to-r1"));
  t.false(minority.includes("s0-r0-to-r1") || minority.includes("s0-r2-to-r3"), "links inside a group stay up");
  // partition-oneway from r6 to the rest: only r6's outgoing links.
  t.deepEqual(proxies(begins[2]), [0, 1, 2, 3, 4, 5].map((b) => `s0-r6-to-r${b}`).sort());
  // isolate r5: all twelve links touching it.
  t.is(proxies(begins[3]).length, 12);
  t.true(proxies(begins[3]).every((p) => p.includes("r5")));
  const heals = plan.steps.filter((s) => s.phase === "heal");
  t.deepEqual(heals.map((s) => [s.atS, s.action.kind]), [[25, "enable-proxies"], [50, "enable-proxies"], [65, "enable-proxies"], [80, "enable-proxies"]]);
  t.deepEqual(proxies(heals[0]), minority, "the heal enables what the fault disabled");
});

test("item 9: lag, slow, crash and a clog of named replicas map to latency toxics, SIGKILL/restart and SIGSTOP/SIGCONT", (t) => {
  const plan = planRealRun(base([
    { kind: "lag", replicas: [2], delayMs: 400, fromS: 5, toS: 35 },
    { kind: "slow", replicas: [2], delayMs: 250, fromS: 35, toS: 50 },
    { kind: "crash", replicas: [1], atS: 8, restartS: 12 },
    { kind: "crash", replicas: [0], atS: 52 },
    { kind: "network", effect: "clog", replicas: [3], fromS: 20, toS: 22 },
  ]));
  const lag = plan.steps.find((s) => s.fault === 0 && s.phase === "begin")?.action;
  t.like(lag, { kind: "add-latency", latencyMs: 400, jitterMs: 0 });
  t.is(proxies(plan.steps.find((s) => s.fault === 0)).length, 6, "every link touching r2, both directions");
  const slow = plan.steps.find((s) => s.fault === 1 && s.phase === "begin");
  t.deepEqual(proxies(slow), ["s0-r0-to-r2", "s0-r1-to-r2", "s0-r3-to-r2"], "only what reaches the slow machine");
  t.like(slow?.action, { kind: "add-latency", latencyMs: 250 });
  t.like(plan.steps.find((s) => s.fault === 1 && s.phase === "heal")?.action, { kind: "remove-toxic", toxic: (lag as { toxic: string }).toxic.replace("f0-lag", "f1-slow") });
  t.deepEqual(plan.steps.filter((s) => s.fault === 2).map((s) => [s.atS, s.action]), [[8, { kind: "kill", replicas: [1] }], [12, { kind: "restart", replicas: [1] }]]);
  t.deepEqual(plan.steps.filter((s) => s.fault === 3).map((s) => s.action.kind), ["kill"], "a crash without restartS stays down");
  t.deepEqual(plan.steps.filter((s) => s.fault === 4).map((s) => [s.atS, s.action.kind]), [[20, "pause"], [22, "resume"]]);
  t.deepEqual(plan.steps.map((s) => s.atS), [...plan.steps.map((s) => s.atS)].sort((a, b) => a - b), "steps in time order");
});

test("item 9: what real mode cannot do is refused before anything starts, naming the fault kind", async (t) => {
  const refused = (faults: readonly FaultSpec[], pattern: RegExp): void => {
    const error = t.throws(() => planRealRun(base(faults)), { instanceOf: RealModeRefusal });
    t.regex(error?.message ?? "", pattern);
  };
  refused([{ kind: "network", effect: "loss", percent: 10 }], /faults\[0\] \(network\): network loss cannot be made through Toxiproxy/);
  refused([{ kind: "network", effect: "duplicate", percent: 10 }], /network duplicate/);
  refused([{ kind: "network", effect: "reorder", percent: 10 }], /network reorder/);
  refused([{ kind: "network", effect: "clog" }], /clog of every link/);
  refused([{ kind: "storage", replicas: [1], effect: "lose-unsynced", atS: 5 }], /\(storage\): storage faults act on the simulated disk/);
  refused([{ kind: "collude", replicas: [0, 1], sideA: [2], fromS: 2 }], /\(collude\)/);
  const xnet = await loadScenario("scenarios/xnet-ledger-partition.ts");
  t.throws(() => planRealRun(xnet.scenario), { instanceOf: RealModeRefusal, message: /needs 2 subnets/ });
  const snapshot = await loadScenario("scenarios/snapshot-restore.ts");
  t.throws(() => planRealRun(snapshot.scenario), { instanceOf: RealModeRefusal, message: /timed actions/ });
});

test("item 9: Byzantine faults go on the faulty replica's command line only, and run the simulator's injectors on the run's clock", (t) => {
  const plan = planRealRun(base([{ kind: "diverge", replicas: [3], fromS: 2, toS: 5 }, { kind: "silent", replicas: [3], fromS: 1 }, { kind: "isolate", replicas: [1], fromS: 1, toS: 2 }]));
  t.deepEqual([...plan.byzantineArgs.keys()], [replicaId(3)]);
  const faults = parseByzantineArgument(plan.byzantineArgs.get(replicaId(3)) ?? "");
  t.deepEqual(faults.map((f) => f.kind), ["diverge", "silent"]);
  t.false(plan.steps.some((s) => s.fault < 2), "no process or proxy step for an injected fault");

  let nowUs = 1_000_000_000_000;
  const logged: string[] = [];
  const signer = simSubnetKeys(4, Rng.fromSeed(1)).signerFor(replicaId(3));
  const injected = byzantineProcess(faults, { self: replicaId(3), n: 4, signer, now: () => nowUs, log: (e) => logged.push(e.kind) });
  const corrupt = injected.machineOptions.corrupt;
  if (corrupt === undefined) return t.fail("a diverge fault gives a state corruptor");
  const originUs = nowUs;
  const atS = (s: number): bigint => BigInt(originUs + s * 1_000_000) * 1000n;
  t.false(corrupt(10, atS(3)), "nothing is active before the run's origin is known");
  injected.setOrigin(originUs);
  t.false(corrupt(11, atS(1.5)), "before the window");
  t.true(corrupt(12, atS(3)), "inside the window, counted from the origin (block time is wall time)");
  t.false(corrupt(13, atS(5)), "after the window");
  t.deepEqual(logged, ["fault.diverge-execution"]);
  nowUs = originUs + 1_500_000;
  t.deepEqual(injected.behaviour?.filterOutgoing(replicaId(0), { kind: "status" } as never, {} as never), [], "silent from 1 s on");
  nowUs = originUs + 500_000;
  t.is(injected.behaviour?.filterOutgoing(replicaId(0), { kind: "status" } as never, {} as never).length, 1, "not yet at 0.5 s");
});

test("item 9 (CLI): run --real is in --help; a scenario real mode refuses exits 2 with the reason before any process starts", (t) => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  const help = cli("--help");
  t.regex(help.stdout, /subnetlab run <scenario\.ts> --real \[--out DIR\]/);
  t.regex(help.stdout, /--real {8}run: run the scenario against real replica processes/);
  const parent = mkdtempSync(join(tmpdir(), "subnetlab-real-refused-"));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const out = join(parent, "run");
  const refused = cli("run", "scenarios/beyond-f.ts", "--real", "--out", out, "--quiet");
  t.is(refused.status, 2, refused.stderr);
  t.regex(refused.stderr, /run --real: scenario beyond-f: real mode cannot run it: faults\[0\] \(collude\)/);
  t.false(existsSync(join(out, "cluster-spec.json")), "nothing was started");
  const twice = cli("run", "scenarios/baseline.ts", "--real", "--twice");
  t.is(twice.status, 2);
  t.regex(twice.stderr, /--real does not take --twice/);
});
