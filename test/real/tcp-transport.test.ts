// Issue 12 item 4: the TCP transport of real mode (harness/real/tcp-transport.ts, frames.ts) on
// 127.0.0.1 — frames whole and in order, reconnects, the bounded queue, and connections that
// misbehave closed without disturbing the rest.
import test from "ava";
import fc from "fast-check";
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId, type ReplicaId } from "../../harness/types.ts";
import { decodeHello, encodeFrame, encodeHello, FrameReader } from "../../harness/real/frames.ts";
import { backoffMs, parseHostPort, TcpTransport, type TcpTransportOptions } from "../../harness/real/tcp-transport.ts";

const r = replicaId;
const FAST = { backoffMsInitial: 10, backoffMsMax: 80, handshakeTimeoutMs: 1000 } as const;

interface Node {
  readonly id: ReplicaId;
  transport: TcpTransport;
  port: number;
  /** Frames received, per sender, as text. */
  readonly got: Map<ReplicaId, string[]>;
  readonly logs: string[];
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const untext = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Transports a test made, closed when it ends (pass or fail), so no socket outlives its test; the tests run one at a time. */
let made: TcpTransport[] = [];
test.afterEach.always(async () => {
  await Promise.all(made.map((transport) => transport.close()));
  made = [];
});

function newTransport(node: Node, peers: TcpTransportOptions["peers"], port: number, extra: Partial<TcpTransportOptions> = {}): TcpTransport {
  const transport = new TcpTransport({
    self: node.id,
    listenPort: port,
    peers,
    rng: Rng.fromSeed(`tcp-test/${node.id}`),
    onFrame: (from, bytes) => {
      const list = node.got.get(from) ?? [];
      list.push(bytes.length > 64 ? `${bytes.length}:${bytes[0]}:${bytes[bytes.length - 1]}` : untext(bytes));
      node.got.set(from, list);
    },
    log: (line) => node.logs.push(line),
    ...FAST,
    ...extra,
  });
  made.push(transport);
  return transport;
}

/** n transports on free ports, each knowing the others' addresses. */
async function mesh(n: number, extra: Partial<TcpTransportOptions> = {}): Promise<Node[]> {
  const nodes: Node[] = Array.from({ length: n }, (_, i) => ({ id: r(i), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport }));
  for (const node of nodes) {
    node.transport = newTransport(node, nodes.filter((p) => p !== node).map((p) => ({ id: p.id })), 0, extra);
    node.port = await node.transport.start();
  }
  for (const node of nodes) for (const peer of nodes) if (peer !== node) node.transport.setPeerAddress(peer.id, `127.0.0.1:${peer.port}`);
  return nodes;
}

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const closeAll = async (nodes: Node[]): Promise<void> => {
  await Promise.all(nodes.map((n) => n.transport.close()));
};

test.serial("item 4: frames cut at any chunk boundaries come out whole and in order; a length above the maximum fails the reader for good", (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (payloads, cuts) => {
      const stream = Buffer.concat(payloads.map(encodeFrame));
      const reader = new FrameReader(300);
      const out: Uint8Array[] = [];
      for (let offset = 0, i = 0; offset < stream.length; i++) {
        const end = Math.min(stream.length, offset + cuts[i % cuts.length]!);
        const read = reader.push(stream.subarray(offset, end));
        if (!read.ok) return false;
        out.push(...read.frames);
        offset = end;
      }
      return reader.pendingBytes === 0 && JSON.stringify(out.map((f) => [...f])) === JSON.stringify(payloads.map((p) => [...p]));
    }),
    { seed: 12_4, numRuns: 200 },
  );
  const reader = new FrameReader(10);
  const read = reader.push(Uint8Array.of(0, 0, 0, 11, 1, 2));
  t.deepEqual(read, { ok: false, frames: [], reason: "frame of 11 bytes exceeds the maximum of 10" });
  t.false(reader.push(encodeFrame(Uint8Array.of(1))).ok, "a failed reader stays failed");
  t.deepEqual(decodeHello(encodeHello({ replica: r(7), network: "subnet-ü" })), { ok: true, hello: { replica: r(7), network: "subnet-ü" } });
  t.false(decodeHello(text("garbage!!")).ok);
});

test.serial("item 4: two transports exchange frames both ways in order, and a 5 MiB frame (many socket chunks) arrives whole", async (t) => {
  const nodes = await mesh(2);
  const [a, b] = nodes as [Node, Node];
  for (let i = 0; i < 100; i++) {
    a.transport.send(b.id, text(`a${i}`));
    b.transport.send(a.id, text(`b${i}`));
  }
  const big = new Uint8Array(5 << 20).map((_, i) => i % 251);
  a.transport.send(b.id, big);
  a.transport.send(b.id, text("after"));
  await until("all frames", () => (b.got.get(a.id)?.length ?? 0) === 102 && (a.got.get(b.id)?.length ?? 0) === 100);
  t.deepEqual(a.got.get(b.id), Array.from({ length: 100 }, (_, i) => `b${i}`));
  t.deepEqual(b.got.get(a.id), [...Array.from({ length: 100 }, (_, i) => `a${i}`), `${5 << 20}:0:${((5 << 20) - 1) % 251}`, "after"]);
  t.is(a.transport.stats().peers[0]!.sentFrames, 102);
  t.is(b.transport.stats().peers[0]!.receivedFrames, 102);
  await closeAll(nodes);
});

test.serial("item 4: four transports — every frame reaches its peer, in order per link", async (t) => {
  const nodes = await mesh(4);
  for (const from of nodes) for (const to of nodes) if (to !== from) for (let i = 0; i < 50; i++) from.transport.send(to.id, text(`${from.id}>${to.id}#${i}`.padEnd(1 + ((i * 37) % 60), ".")));
  await until("every link", () => nodes.every((n) => [...n.got.values()].reduce((k, l) => k + l.length, 0) === 150));
  for (const to of nodes) {
    for (const from of nodes) {
      if (from === to) continue;
      t.deepEqual(to.got.get(from.id), Array.from({ length: 50 }, (_, i) => `${from.id}>${to.id}#${i}`.padEnd(1 + ((i * 37) % 60), ".")));
    }
  }
  t.true(nodes.every((n) => n.transport.stats().peers.every((p) => p.connected && p.droppedFrames === 0)));
  await closeAll(nodes);
});

test.serial("item 1 (catch-up): frames that waited in the queue longer than queueAgeMsMax are dropped, not sent; fresher ones go out in order", async (t) => {
  const b: Node = { id: r(1), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport };
  b.transport = newTransport(b, [{ id: r(0) }], 0);
  b.port = await b.transport.start();
  const a: Node = { id: r(0), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport };
  // No address for b yet: every frame waits in the queue, as behind a link that is down.
  a.transport = newTransport(a, [{ id: r(1) }], 0, { queueAgeMsMax: 200 });
  a.port = await a.transport.start();
  for (let i = 0; i < 5; i++) a.transport.send(r(1), text(`stale${i}`));
  await new Promise((resolve) => setTimeout(resolve, 400));
  for (let i = 0; i < 3; i++) a.transport.send(r(1), text(`fresh${i}`));
  a.transport.setPeerAddress(r(1), `127.0.0.1:${b.port}`);
  await until("the fresh frames", () => b.got.get(r(0))?.length === 3);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(b.got.get(r(0)), ["fresh0", "fresh1", "fresh2"], "the stale ones never arrive");
  const stats = a.transport.stats().peers[0]!;
  t.is(stats.expiredFrames, 5);
  t.is(stats.sentFrames, 3);
  t.is(stats.droppedFrames, 0);
});

/** Starts tcp-echo-child.ts as replica 1 on `port` (0: any) with replica 0 at `peerPort`; resolves once it listens. */
async function echoChild(port: number, peerPort: number): Promise<{ child: ChildProcess; port: number }> {
  const script = new URL("./tcp-echo-child.ts", import.meta.url).pathname;
  const child = spawn(process.execPath, ["--import", "tsx", script, "1", String(port), "0", `127.0.0.1:${peerPort}`], { stdio: ["ignore", "pipe", "inherit"] });
  const listening = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once("exit", (code) => reject(new Error(`echo child exited with ${code}`)));
  });
  return { child, port: listening };
}

const killed = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });

test.serial("item 4: a peer process SIGKILLed and restarted is reconnected; while it is down the queue holds at most queueFramesMax frames and drops the oldest", async (t) => {
  const a: Node = { id: r(0), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport };
  a.transport = newTransport(a, [{ id: r(1) }], 0, { queueFramesMax: 10 });
  a.port = await a.transport.start();
  let b = await echoChild(0, a.port);
  t.teardown(() => b.child.kill("SIGKILL"));
  a.transport.setPeerAddress(r(1), `127.0.0.1:${b.port}`);
  a.transport.send(r(1), text("before"));
  await until("the first echo", () => a.got.get(r(1))?.length === 1);
  await killed(b.child);
  await until("a sees r1 down", () => !a.transport.stats().peers[0]!.connected);
  for (let i = 0; i < 100; i++) a.transport.send(r(1), text(`down${i}`));
  const down = a.transport.stats().peers[0]!;
  t.is(down.queuedFrames, 10);
  t.is(down.droppedFrames, 90);
  // Let a few dials fail (nothing listens on the port) before r1 comes back on the same port.
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.is(a.transport.stats().peers[0]!.queuedFrames, 10, "failed dials do not eat the queue");
  b = await echoChild(b.port, a.port);
  await until("the queued frames echoed after the restart", () => a.got.get(r(1))?.length === 11);
  t.deepEqual(a.got.get(r(1)), ["echo:before", ...Array.from({ length: 10 }, (_, i) => `echo:down${90 + i}`)], "the newest ten survived, in order");
  a.transport.send(r(1), text("resumed"));
  await until("traffic resumed", () => a.got.get(r(1))?.length === 12);
  t.is(a.transport.stats().peers[0]!.connects, 2);
  t.is(a.logs.filter((l) => /unreachable/.test(l)).length, 1, `the outage is logged once: ${a.logs.join(" | ")}`);
  t.true(a.logs.some((l) => /reachable again/.test(l)));
});

test.serial("item 4: a peer that resets every connection (ECONNRESET) is retried with backoff until a real peer answers", async (t) => {
  const resets: number[] = [];
  const resetter: Server = createServer((socket) => {
    resets.push(Date.now());
    socket.resetAndDestroy();
  });
  t.teardown(() => resetter.close());
  await new Promise<void>((resolve) => resetter.listen(0, "127.0.0.1", resolve));
  const port = (resetter.address() as { port: number }).port;
  const a: Node = { id: r(0), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport };
  a.transport = newTransport(a, [{ id: r(1), address: `127.0.0.1:${port}` }], 0);
  a.port = await a.transport.start();
  a.transport.send(r(1), text("through"));
  await until("several resets", () => resets.length >= 4);
  await new Promise<void>((resolve) => resetter.close(() => resolve()));
  t.regex(a.logs.join("\n"), /r1 at 127\.0\.0\.1:\d+ unreachable \((ECONNRESET|connection closed)\)/);
  const b: Node = { id: r(1), got: new Map(), logs: [], port, transport: undefined as unknown as TcpTransport };
  b.transport = newTransport(b, [{ id: a.id, address: `127.0.0.1:${a.port}` }], port);
  await b.transport.start();
  await until("the queued frame", () => b.got.get(a.id)?.length === 1);
  t.deepEqual(b.got.get(a.id), ["through"]);
  await Promise.all([a.transport.close(), b.transport.close()]);
});

/** A server on `port` (0: any) that resets every connection and notes when each came. */
async function resetServer(t: { teardown(fn: () => void): void }, port: number): Promise<{ port: number; times: number[]; close: () => Promise<void> }> {
  const times: number[] = [];
  const server = createServer((socket) => {
    times.push(performance.now());
    socket.resetAndDestroy();
  });
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, times, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test.serial("item 4: the backoff grows while a peer stays down and starts over after a connection that lived stableMs", async (t) => {
  const down = await resetServer(t, 0);
  const a: Node = { id: r(0), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport };
  a.transport = newTransport(a, [{ id: r(1), address: `127.0.0.1:${down.port}` }], 0, { backoffMsInitial: 10, backoffMsMax: 1000, stableMs: 100 });
  a.port = await a.transport.start();
  await until("six dials", () => down.times.length >= 6);
  const gaps = down.times.slice(1).map((time, i) => time - down.times[i]!);
  // Wait i lies in [step/2, step] with step = 10·2^i ms; a loaded machine only lengthens waits, so check the lower bounds.
  gaps.forEach((gap, i) => t.true(gap >= 5 * 2 ** i - 2, `wait ${i} is ${gap.toFixed(1)} ms, below ${5 * 2 ** i}: ${gaps.map(Math.round).join(", ")}`));
  await down.close();
  const b: Node = { id: r(1), got: new Map(), logs: [], port: down.port, transport: undefined as unknown as TcpTransport };
  b.transport = newTransport(b, [{ id: a.id, address: `127.0.0.1:${a.port}` }], down.port);
  await b.transport.start();
  await until("a connects to b", () => a.transport.stats().peers[0]!.connected, 3000);
  await new Promise((resolve) => setTimeout(resolve, 150));
  await b.transport.close();
  const closedAt = performance.now();
  const again = await resetServer(t, down.port);
  await until("the first redial", () => again.times.length >= 1);
  // Without the reset the next wait would be at least 640/2 ms (seven failed dials before).
  t.true(again.times[0]! - closedAt < 200, `first redial after ${Math.round(again.times[0]! - closedAt)} ms`);
});

/** Opens a raw connection to `port`, writes `bytes`, and resolves when the far end closes it. */
function rawExchange(port: number, bytes: Uint8Array): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: "127.0.0.1", port }, () => socket.write(bytes));
    const got: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => got.push(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(Buffer.concat(got)));
  });
}

test.serial("item 4: garbage, an oversize frame or a wrong hello closes only that connection and is logged once each", async (t) => {
  const nodes = await mesh(2, { maxFrameBytes: 1000, queueBytesMax: 10_000 });
  const [a, b] = nodes as [Node, Node];
  const hello = (replica: number, network = "subnetlab"): Uint8Array => encodeFrame(encodeHello({ replica: r(replica), network }));
  const oversize = Buffer.concat([hello(1), Uint8Array.of(0, 0, 0x10, 0)]);
  const cases: [string, Uint8Array, RegExp][] = [
    ["garbage", text("GET / HTTP/1.1\r\n\r\n"), /frame of \d+ bytes exceeds the maximum of 264/],
    ["short garbage hello", encodeFrame(text("nonsense")), /hello of 8 bytes is too short/],
    ["an oversize frame after a good hello", oversize, /r1 .*frame of 4096 bytes exceeds the maximum of 1000/],
    ["another network", hello(1, "other-subnet"), /hello from network "other-subnet"/],
    ["a stranger", hello(9), /hello from r9, which is not a peer/],
  ];
  let i = 0;
  for (const [what, bytes, logged] of cases) {
    a.transport.send(b.id, text(`ok${i}`));
    await rawExchange(a.port, bytes);
    t.is(a.logs.length, i + 1, `${what}: one log line`);
    t.regex(a.logs[i]!, logged, what);
    i++;
  }
  t.is(a.transport.stats().badConnections, cases.length);
  b.transport.send(a.id, text("still here"));
  await until("traffic after the garbage", () => b.got.get(a.id)?.length === cases.length && a.got.get(b.id)?.length === 1);
  t.true(a.transport.stats().peers[0]!.connected && b.transport.stats().peers[0]!.connected, "the real link never dropped");
  t.is(b.transport.stats().peers[0]!.connects, 1);
  await closeAll(nodes);
});

test.serial("item 4: a link whose far end answers as another replica, or with garbage, is refused and retried", async (t) => {
  const nodes = await mesh(3);
  const [a, , c] = nodes as [Node, Node, Node];
  // a's address for r1 is c's port: c accepts a (a is its peer) but answers as r2.
  a.transport.setPeerAddress(r(1), `127.0.0.1:${c.port}`);
  a.transport.send(r(1), text("for r1 only"));
  await until("the refusal", () => a.logs.some((l) => /answered as r2 of "subnetlab", expected r1/.test(l)));
  t.false(a.transport.stats().peers[0]!.connected);
  t.is(c.got.get(a.id), undefined, "no frame for r1 went to r2");
  t.is(a.transport.stats().peers[0]!.queuedFrames, 1, "the frame waits for the real r1");
  const chatty = createServer((socket) => socket.write(Buffer.concat([encodeFrame(encodeHello({ replica: r(1), network: "subnetlab" })), text("extra")])));
  t.teardown(() => chatty.close());
  await new Promise<void>((resolve) => chatty.listen(0, "127.0.0.1", resolve));
  a.transport.setPeerAddress(r(1), `127.0.0.1:${(chatty.address() as { port: number }).port}`);
  await until("the second refusal", () => a.logs.some((l) => /sent data after its hello/.test(l)));
  t.true(a.transport.stats().badConnections >= 2);
  await closeAll(nodes);
});

test.serial("item 4: backoff doubles to its cap with jitter in the step's upper half, drawn from the seeded stream", (t) => {
  const settings = { backoffMsInitial: 100, backoffMsMax: 1000 };
  const waits = (seed: string): number[] => {
    const rng = Rng.fromSeed(seed);
    return Array.from({ length: 8 }, (_, attempt) => backoffMs(attempt, settings, rng));
  };
  const steps = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
  const first = waits("a");
  first.forEach((w, i) => t.true(w >= steps[i]! / 2 && w <= steps[i]!, `attempt ${i}: ${w} within [${steps[i]! / 2}, ${steps[i]}]`));
  t.deepEqual(waits("a"), first, "same seed, same waits");
  t.notDeepEqual(waits("b"), first, "another seed, other waits");
  t.is(backoffMs(1000, settings, Rng.fromSeed("x")) <= 1000, true, "no overflow for a long outage");
});

test.serial("item 4: bad addresses, unknown peers, oversize frames and bad settings are clear errors", async (t) => {
  t.deepEqual(parseHostPort("127.0.0.1:8000"), { host: "127.0.0.1", port: 8000 });
  t.deepEqual(parseHostPort("[::1]:9"), { host: "::1", port: 9 });
  for (const bad of ["127.0.0.1", "host:0", "host:70000", ":80", "a b:1"]) t.throws(() => parseHostPort(bad), { message: /is not host:port/ }, bad);
  const node: Node = { id: r(0), got: new Map(), logs: [], port: 0, transport: undefined as unknown as TcpTransport };
  t.throws(() => newTransport(node, [{ id: r(0) }], 0), { message: /lists itself as a peer/ });
  t.throws(() => newTransport(node, [], 0, { maxFrameBytes: 2000, queueBytesMax: 1000 }), { message: /a largest frame could never be queued/ });
  const transport = newTransport(node, [{ id: r(1) }], 0, { maxFrameBytes: 100, queueBytesMax: 1000 });
  t.throws(() => transport.send(r(2), text("x")), { message: /r0 has no peer r2/ });
  t.throws(() => transport.send(r(1), new Uint8Array(101)), { message: /frame of 101 bytes to r1 exceeds the maximum of 100/ });
  transport.send(r(1), new Uint8Array(100));
  t.is(transport.stats().peers[0]!.queuedFrames, 1, "an address not known yet: the frame waits");
  t.is(transport.stats().peers[0]!.address, undefined);
  await transport.close();
});
