import test from "ava";
import { EventLoop } from "../../harness/sim/event-loop.ts";
import { SimNetwork, defaultNetworkConfig, partitionSelectors, DEFAULT_LATENCY_MS, type NetworkConfig } from "../../harness/sim/network.ts";
import { Rng, percent } from "../../harness/sim/rng.ts";
import { replicaId, timeUs, type ReplicaId } from "../../harness/types.ts";

interface Msg { readonly sizeBytes: number; readonly tag: string }

function harness(config: NetworkConfig = { ...defaultNetworkConfig(4), jitterPercent: 0 }) {
  const loop = new EventLoop();
  const got: { from: ReplicaId; to: ReplicaId; tag: string; at: number }[] = [];
  const traced: string[] = [];
  const net = new SimNetwork<Msg>(loop, Rng.fromSeed(1), config, (from, to, m) => got.push({ from, to, tag: m.tag, at: loop.now() }), (kind) => traced.push(kind));
  return { loop, net, got, traced };
}
const r = replicaId;

test("latency follows the region matrix (r0 americas → r1 europe) and bandwidth delays big messages", (t) => {
  const { loop, net, got } = harness();
  net.send(r(0), r(1), { sizeBytes: 100, tag: "small" });
  net.send(r(0), r(2), { sizeBytes: 1_000_000, tag: "big" }); // 8 Mbit at 1000 Mbit/s = 8 ms
  loop.runUntil(timeUs(1_000_000));
  const small = got.find((g) => g.tag === "small");
  const big = got.find((g) => g.tag === "big");
  t.is(small?.at, DEFAULT_LATENCY_MS.americas.europe * 1000 + 1); // 100 B = 0.8 µs, rounded up
  t.is(big?.at, DEFAULT_LATENCY_MS.americas.asia * 1000 + 8000);
});

test("a symmetric partition cuts both directions until healed", (t) => {
  const { loop, net, got, traced } = harness();
  partitionSelectors([[r(0), r(1)], [r(2), r(3)]]).forEach((links, i) => net.addCondition({ id: `p${i}`, links, effect: { kind: "cut" } }));
  net.send(r(0), r(2), { sizeBytes: 10, tag: "cut-1" });
  net.send(r(3), r(1), { sizeBytes: 10, tag: "cut-2" });
  net.send(r(0), r(1), { sizeBytes: 10, tag: "same-side" });
  loop.runUntil(timeUs(500_000));
  t.deepEqual(got.map((g) => g.tag), ["same-side"]);
  t.is(traced.filter((k) => k === "net.drop").length, 2);
  for (const c of net.activeConditions()) net.removeCondition(c.id);
  net.send(r(0), r(2), { sizeBytes: 10, tag: "healed" });
  loop.runUntil(timeUs(1_000_000));
  t.true(got.some((g) => g.tag === "healed"));
});

test("a one-way partition drops only its direction", (t) => {
  const { loop, net, got } = harness();
  net.addCondition({ id: "a", links: { kind: "between", from: [r(0)], to: [r(1)] }, effect: { kind: "cut" } });
  net.send(r(0), r(1), { sizeBytes: 10, tag: "blocked" });
  net.send(r(1), r(0), { sizeBytes: 10, tag: "open" });
  loop.runUntil(timeUs(500_000));
  t.deepEqual(got.map((g) => g.tag), ["open"]);
});

test("clogging holds messages and releases them in order when removed", (t) => {
  const { loop, net, got } = harness();
  net.addCondition({ id: "clog", links: { kind: "touching", replicas: [r(3)] }, effect: { kind: "clog" } });
  net.send(r(3), r(0), { sizeBytes: 10, tag: "m1" });
  net.send(r(3), r(0), { sizeBytes: 10, tag: "m2" });
  loop.runUntil(timeUs(2_000_000));
  t.deepEqual(got, []);
  net.removeCondition("clog");
  loop.runUntil(timeUs(3_000_000));
  t.deepEqual(got.map((g) => g.tag), ["m1", "m2"]);
  t.true((got[0]?.at ?? 0) > 2_000_000, "released only after the heal");
});

test("loss and duplication happen at their configured rates", (t) => {
  const { loop, net, got } = harness();
  net.addCondition({ id: "loss", links: { kind: "all" }, effect: { kind: "loss", p: percent(20) } });
  net.addCondition({ id: "dup", links: { kind: "all" }, effect: { kind: "duplicate", p: percent(10) } });
  for (let i = 0; i < 10_000; i++) net.send(r(0), r(1), { sizeBytes: 1, tag: String(i) });
  loop.runUntil(timeUs(10_000_000));
  // Expected deliveries: 10k × 0.8 × 1.1 = 8800 (sd ≈ 45); dropped ≈ 2000 (sd 40).
  t.true(Math.abs(net.stats.dropped - 2000) < 250, `dropped ${net.stats.dropped}`);
  t.true(Math.abs(got.length - 8800) < 300, `delivered ${got.length}`);
});

test("reordering lets later messages overtake earlier ones", (t) => {
  const { loop, net, got } = harness();
  net.addCondition({ id: "re", links: { kind: "all" }, effect: { kind: "reorder", p: percent(50), maxMs: 200 } });
  for (let i = 0; i < 200; i++) net.send(r(0), r(1), { sizeBytes: 1, tag: String(i) });
  loop.runUntil(timeUs(10_000_000));
  const order = got.map((g) => Number(g.tag));
  t.is(order.length, 200);
  t.true(order.some((v, i) => i > 0 && v < (order[i - 1] ?? 0)), "some message overtook another");
});
