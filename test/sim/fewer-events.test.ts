import test from "ava";
import { defineScenario, type Scenario } from "../../harness/scenario/scenario.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import type { TraceRecord } from "../../harness/sim/trace.ts";

/** Runs with SUBNETLAB_FEWER_EVENTS set as given; returns the trace (each line's time, replica, kind, detail) and the loop's event count. */
function run(scenario: Scenario, fewerEvents: "on" | "off", seed = 3): { lines: string[]; events: number; verdict: string } {
  const saved = process.env["SUBNETLAB_FEWER_EVENTS"];
  process.env["SUBNETLAB_FEWER_EVENTS"] = fewerEvents;
  try {
    const lines: string[] = [];
    let events = 0;
    const report = runScenario(scenario, {
      seed,
      traceSink: (r: TraceRecord) => lines.push(`${r.timeUs}|${r.replica}|${r.kind}|${r.detail}`),
      onProgress: (_s, _total, executed) => (events = executed),
    });
    return { lines, events, verdict: report.verdict };
  } finally {
    if (saved === undefined) delete process.env["SUBNETLAB_FEWER_EVENTS"];
    else process.env["SUBNETLAB_FEWER_EVENTS"] = saved;
  }
}

/** A queued ingress bundle is traced when its receiver takes it; everything else must be line for line the same. */
const isIngressDelivery = (line: string): boolean => line.includes("|deliver|") && line.includes("first=ingress");
const withoutIngressDeliveries = (lines: readonly string[]): string[] => lines.filter((l) => !isIngressDelivery(l));

// Every network condition that can touch ingress, a crash and restart, and a partition, on a
// subnet under steady ingress: the replicas must do exactly the same things in both modes.
const faulty = defineScenario({
  name: "fewer-events-ingress-faults",
  description: "issue 13 item 3: ingress arrivals under loss, duplication, reordering, clog, partition and a crash",
  n: 4,
  durationS: 14,
  workload: { ratePerSec: 150, stopS: 10 },
  livenessBoundS: 4,
  faults: [
    { kind: "network", effect: "loss", percent: 30, replicas: [1], fromS: 1, toS: 4 },
    { kind: "network", effect: "duplicate", percent: 40, replicas: [2], fromS: 2, toS: 6 },
    { kind: "network", effect: "reorder", percent: 50, maxDelayMs: 300, replicas: [3], fromS: 3, toS: 7 },
    { kind: "network", effect: "clog", replicas: [0], fromS: 5, toS: 5.5 },
    { kind: "partition", groups: [[3]], fromS: 7, toS: 8 },
    { kind: "crash", replicas: [2], atS: 8.5, restartS: 9.2 },
  ],
  expect: { verdict: "pass" },
});

test("issue 13 item 3: ingress gossiped as queued arrivals — the same run as one event per bundle, with far fewer events", (t) => {
  const off = run(faulty, "off");
  const on = run(faulty, "on");
  t.is(on.verdict, "pass");
  t.is(off.verdict, "pass");
  const ingressDeliveries = (lines: readonly string[]): number => lines.length - withoutIngressDeliveries(lines).length;
  // Every ingress bundle is still delivered (and traced) once — none lost, none added.
  t.true(ingressDeliveries(off.lines) > 1000, `${ingressDeliveries(off.lines)} ingress deliveries`);
  t.is(ingressDeliveries(on.lines), ingressDeliveries(off.lines));
  t.deepEqual(withoutIngressDeliveries(on.lines), withoutIngressDeliveries(off.lines));
  t.true(on.events < off.events * 0.7, `events ${on.events} with queued arrivals vs ${off.events}`);
});
