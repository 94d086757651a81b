// Issue 12 item 4: the real-mode Env (harness/real/env.ts) with a toy message type and codec — no
// replica needed: the clock, timers, trace sinks, the seeded stream, and messages over TcpTransport.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRealEnv, jsonLinesTraceSink, RealClock, type Codec, type EnvHandler, type FrameTransport, type RealEnv, type RealTraceRecord } from "../../harness/real/env.ts";
import { FileDisk } from "../../harness/real/file-disk.ts";
import { TcpTransport } from "../../harness/real/tcp-transport.ts";
import type { FrameHandler } from "../../harness/real/tcp-transport.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId, timeUs, type ReplicaId, type TimeUs } from "../../harness/types.ts";

const ROOT = mkdtempSync(join(tmpdir(), "subnetlab-real-env-"));
test.after.always(() => rmSync(ROOT, { recursive: true, force: true }));
const r = replicaId;

/** The toy message: a kind, a counter and a note, as u8 · u32 · UTF-8. */
interface Toy {
  readonly kind: "ping" | "pong";
  readonly n: number;
  readonly note: string;
}
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const toyCodec: Codec<Toy> = {
  encode: (m) => {
    const note = new TextEncoder().encode(m.note);
    const out = new Uint8Array(5 + note.length);
    out[0] = m.kind === "ping" ? 1 : 2;
    new DataView(out.buffer).setUint32(1, m.n);
    out.set(note, 5);
    return out;
  },
  decode: (bytes) => {
    if (bytes.length < 5 || (bytes[0] !== 1 && bytes[0] !== 2)) throw new Error(`not a toy message (${bytes.length} bytes)`);
    return { kind: bytes[0] === 1 ? "ping" : "pong", n: new DataView(bytes.buffer, bytes.byteOffset).getUint32(1), note: UTF8.decode(bytes.subarray(5)) };
  },
};

/** Frames between two envs in one process, delivered on a later turn of the event loop. */
function loopbackPair(): [FrameTransport & { raw(bytes: Uint8Array): void }, FrameTransport] {
  const handlers: (FrameHandler | undefined)[] = [undefined, undefined];
  const make = (self: number): FrameTransport & { raw(bytes: Uint8Array): void } => ({
    send: (to, bytes) => void setImmediate(() => handlers[to]?.(r(self), bytes)),
    setFrameHandler: (handler) => (handlers[self] = handler),
    raw: (bytes) => void setImmediate(() => handlers[1 - self]?.(r(self), bytes)),
  });
  return [make(0), make(1)];
}

const until = async (what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> => {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
};

/** A handler recording what it is called with, and when by the env's clock. */
function recorder(env: () => RealEnv<Toy>): EnvHandler<Toy> & { messages: [ReplicaId, Toy][]; timers: [string, TimeUs][] } {
  const rec = {
    messages: [] as [ReplicaId, Toy][],
    timers: [] as [string, TimeUs][],
    onMessage: (from: ReplicaId, message: Toy) => void rec.messages.push([from, message]),
    onTimer: (tag: string) => void rec.timers.push([tag, env().now()]),
  };
  return rec;
}

test("item 4: the clock is the wall clock at the anchor plus monotonic time since, in whole µs, never going back", (t) => {
  let monotonicMs = 5_000.25;
  const clock = new RealClock({ sources: { wallMs: () => 1_700_000_000_000, monotonicMs: () => monotonicMs } });
  t.is<number, number>(clock.now(), 1_700_000_000_000_000);
  monotonicMs += 1.0015;
  t.is<number, number>(clock.now(), 1_700_000_000_001_001, "µs, floored");
  monotonicMs -= 10;
  t.is<number, number>(clock.now(), 1_700_000_000_001_001, "a monotonic source that steps back does not move time back");
  const restarted = new RealClock({ sources: { wallMs: () => 1_600_000_000_000, monotonicMs: () => 0 }, notBeforeUs: 1_700_000_000_002_000 });
  t.is<number, number>(restarted.now(), 1_700_000_000_002_000, "a wall clock set back after a restart is held at notBeforeUs");

  const system = new RealClock();
  const before = Date.now() * 1000;
  let last = system.now();
  for (let i = 0; i < 10_000; i++) {
    const now = system.now();
    t.true(now >= last && Number.isInteger(now));
    last = now;
  }
  t.true(Math.abs(last - before) < 1_000_000, `the system clock is anchored to the wall clock: ${last} vs ${before}`);
});

test("item 4: timers call onTimer at or after their time, in time order; cancelled ones never; a past time fires soon", async (t) => {
  const [transport] = loopbackPair();
  const env: RealEnv<Toy> = createRealEnv({ self: r(0), seed: 1, disk: new SimDisk(), transport, codec: toyCodec });
  const rec = recorder(() => env);
  env.attach(rec);
  const start = env.now();
  const at = (ms: number): TimeUs => timeUs(start + ms * 1000);
  env.setTimer(at(30), "c");
  env.setTimer(at(10), "a");
  const cancelled = env.setTimer(at(15), "never");
  env.setTimer(at(20.5), "b");
  env.setTimer(timeUs(start - 5_000_000), "past");
  env.cancelTimer(cancelled);
  await until("four timers", () => rec.timers.length === 4);
  t.deepEqual(rec.timers.map(([tag]) => tag), ["past", "a", "b", "c"]);
  const due: Record<string, TimeUs> = { past: timeUs(start - 5_000_000), a: at(10), b: at(20.5), c: at(30) };
  for (const [tag, firedAt] of rec.timers) t.true(firedAt >= due[tag]!, `${tag} fired at ${firedAt}, due ${due[tag]}`);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(rec.timers.length, 4, "the cancelled timer never fires");
  env.setTimer(at(10_000), "pending");
  t.is(env.stats().pendingTimers, 1);
  env.close();
  t.is(env.stats().pendingTimers, 0, "close cancels every timer");
  t.throws(() => env.setTimer(at(1), "late"), { message: /closed Env/ });
});

test("item 4: a timer whose Node timeout wakes before its time by the env's clock waits for the rest", async (t) => {
  // A clock at half speed: every Node timeout wakes early by this clock, as a coarse timer can.
  const clock = new RealClock({ sources: { wallMs: () => 0, monotonicMs: () => performance.now() / 2 } });
  const [transport] = loopbackPair();
  const env: RealEnv<Toy> = createRealEnv({ self: r(0), seed: 1, disk: new SimDisk(), transport, codec: toyCodec, clock });
  const rec = recorder(() => env);
  env.attach(rec);
  const due = timeUs(env.now() + 20_000);
  env.setTimer(due, "slow");
  await until("the timer", () => rec.timers.length === 1);
  t.true(rec.timers[0]![1] >= due, `fired at ${rec.timers[0]![1]}, due ${due}`);
});

test("item 4: the env's stream is the simulator's stream for the same seed, replica and incarnation", (t) => {
  const [transport] = loopbackPair();
  const draws = (self: number, incarnation: number): number[] => {
    const env = createRealEnv({ self: r(self), seed: "run-7", incarnation, disk: new SimDisk(), transport, codec: toyCodec });
    return Array.from({ length: 5 }, () => env.rng.nextU32());
  };
  // harness/scenario/runner.ts: root = Rng.fromSeed(seed), subnet stream root.fork("subnet"); harness/replica/subnet.ts forks per replica.
  const sim = Rng.fromSeed("run-7").fork("subnet").fork("replica/2/incarnation/1");
  t.deepEqual(draws(2, 1), Array.from({ length: 5 }, () => sim.nextU32()));
  t.notDeepEqual(draws(2, 0), draws(2, 1));
  t.notDeepEqual(draws(1, 1), draws(2, 1));
});

test("item 4: trace events go to the sink with the replica and time; the JSON-lines sink writes one parseable line each", (t) => {
  const [transport] = loopbackPair();
  const path = join(ROOT, "trace.jsonl");
  const file = jsonLinesTraceSink(path);
  const seen: RealTraceRecord[] = [];
  const env = createRealEnv({ self: r(3), seed: 1, disk: new SimDisk(), transport, codec: toyCodec, trace: (record) => (seen.push(record), file.sink(record)) });
  const before = env.now();
  env.trace({ kind: "block.propose", detail: { height: 4, hash: "ab" } });
  env.trace({ kind: "equivocate", malicious: true });
  file.close();
  t.deepEqual(seen.map((s) => [s.replica, s.kind, s.detail, s.malicious]), [
    [3, "block.propose", { height: 4, hash: "ab" }, undefined],
    [3, "equivocate", undefined, true],
  ]);
  t.true(seen.every((s) => s.atUs >= before));
  const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((line) => JSON.parse(line) as RealTraceRecord);
  t.deepEqual(lines, seen);
  t.throws(() => file.sink(seen[0]!), { message: /is closed/ });
});

test("item 4: messages travel encoded over TcpTransport between two envs with FileDisks; undecodable frames are dropped and traced", async (t) => {
  const nodes = [0, 1].map((i) => ({
    transport: new TcpTransport({ self: r(i), listenPort: 0, peers: [{ id: r(1 - i) }], rng: Rng.fromSeed(`env-test/${i}`), log: () => undefined, backoffMsInitial: 10, backoffMsMax: 50 }),
    traced: [] as RealTraceRecord[],
    disk: new FileDisk(join(ROOT, `disk-${i}`)),
  }));
  t.teardown(() => Promise.all(nodes.map((n) => n.transport.close())));
  const envs = nodes.map((n, i) => createRealEnv({ self: r(i), seed: 5, disk: n.disk, transport: n.transport, codec: toyCodec, trace: (record) => void n.traced.push(record), log: () => undefined }));
  const [a, b] = envs as [RealEnv<Toy>, RealEnv<Toy>];
  const recA = recorder(() => a);
  // b answers every ping with a pong and keeps the count on its disk.
  b.attach({
    onMessage: (from, message) => {
      b.disk.write("pings", new TextEncoder().encode(String(message.n)));
      b.disk.sync();
      b.send(from, { kind: "pong", n: message.n, note: `re: ${message.note}` });
    },
    onTimer: () => undefined,
  });
  const timersFired: string[] = [];
  a.attach({ ...recA, onTimer: (tag) => (timersFired.push(tag), a.send(r(1), { kind: "ping", n: Number(tag), note: "ünï" })) });
  const ports = await Promise.all(nodes.map((n) => n.transport.start()));
  nodes[0]!.transport.setPeerAddress(r(1), `127.0.0.1:${ports[1]}`);
  nodes[1]!.transport.setPeerAddress(r(0), `127.0.0.1:${ports[0]}`);
  for (let n = 1; n <= 3; n++) a.setTimer(timeUs(a.now() + n * 5000), String(n));
  await until("three pongs", () => recA.messages.length === 3);
  const pongs = [1, 2, 3].map((n) => [r(1), { kind: "pong", n, note: "re: ünï" }]);
  t.deepEqual(timersFired, ["1", "2", "3"], "timers fire in the order of their deadlines");
  const linkStats = nodes.map((n) => n.transport.stats().peers[0]!);
  // Order is the transport's promise on one connection only (a reconnect may let the new socket's
  // frames be read before the old one's last ones): exact order when each link connected once.
  if (linkStats.every((s) => s.connects === 1)) t.deepEqual(recA.messages, pongs, `links: ${JSON.stringify(linkStats)}`);
  else t.deepEqual([...recA.messages].sort((x, y) => x[1].n - y[1].n), pongs, `links: ${JSON.stringify(linkStats)}`);
  t.deepEqual(nodes[1]!.disk.read("pings"), new TextEncoder().encode("3"));

  nodes[1]!.transport.send(r(0), new Uint8Array([9, 9, 9]));
  b.send(r(0), { kind: "pong", n: 4, note: "after garbage" });
  await until("the pong after the garbage", () => recA.messages.length === 4);
  t.is(a.stats().undecodableFrames, 1);
  t.is(a.stats().framesReceived, 5);
  t.deepEqual(nodes[0]!.traced.map((e) => [e.kind, e.detail?.from, e.detail?.bytes]), [["frame.undecodable", 1, 3]]);
  t.regex(String(nodes[0]!.traced[0]!.detail?.error), /not a toy message/);
  t.throws(() => a.send(r(0), { kind: "ping", n: 0, note: "" }), { message: /sends to itself/ });
  for (const env of envs) env.close();
  for (const n of nodes) n.disk.close();
});

test("item 4: a frame before attach is dropped and counted; a second attach is a programmer error", async (t) => {
  const [t0, t1] = loopbackPair();
  const env = createRealEnv({ self: r(1), seed: 1, disk: new SimDisk(), transport: t1, codec: toyCodec });
  t0.raw(toyCodec.encode({ kind: "ping", n: 1, note: "" }));
  await new Promise((resolve) => setImmediate(resolve));
  t.is(env.stats().framesBeforeAttach, 1);
  env.attach({ onMessage: () => undefined, onTimer: () => undefined });
  t.throws(() => env.attach({ onMessage: () => undefined, onTimer: () => undefined }), { message: /already attached/ });
});
