// Issue 12 item 8: the seven toxics' effects on real TCP traffic through the Toxiproxy-compatible
// server, set up with toxiproxy-node-client. Expected behaviour is Toxiproxy's (toxics/*.go, see
// research/containers-toxiproxy.md §3.3); random draws are predicted from the server's seeded
// PRNG (toxiproxyRandom). Timing bounds are loose on the slow side: the machine is shared.
import test, { type ExecutionContext } from "ava";
import type { ICreateToxicBody, Proxy, Toxic } from "toxiproxy-node-client";
import { toxiproxyRandom } from "../../harness/real/toxiproxy/registry.ts";
import { pieceEnds } from "../../harness/real/toxiproxy/toxics/slicer.ts";
import { dial, lab, nowMs, roundTripMs, sleep, tcpServer, type Lab, type TcpServer, type Watched } from "./toxiproxy-helpers.ts";

/**
 * Slack for a loaded, shared 2-core machine: how much later than planned an event may come (event
 * loops stall for hundreds of ms there). Lower bounds are tight: timers never fire early.
 */
const LATE_MS = 1500;

function toxic<T>(type: ICreateToxicBody<T>["type"], stream: "upstream" | "downstream", attributes: T, toxicity = 1, name = `${type}_${stream}`): ICreateToxicBody<T> {
  return { name, type, stream, toxicity, attributes };
}

async function proxied(t: ExecutionContext, toxics: ICreateToxicBody<unknown>[], options: { upstream?: TcpServer; seed?: number } = {}): Promise<Lab & { proxy: Proxy; added: Toxic<unknown>[] }> {
  const setup = await lab(options);
  t.teardown(setup.close);
  const proxy = await setup.client.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: setup.upstream.address });
  const added: Toxic<unknown>[] = [];
  for (const body of toxics) added.push(await proxy.addToxic(body));
  return { ...setup, proxy, added };
}

async function connected(t: ExecutionContext, listen: string): Promise<Watched> {
  const peer = await dial(listen);
  t.teardown(() => peer.socket.destroy());
  return peer;
}

test("item 8: latency delays each downstream chunk by latency ± jitter, the jitter drawn from the seeded PRNG", async (t) => {
  const seed = 11;
  const { proxy } = await proxied(t, [toxic("latency", "downstream", { latency: 120, jitter: 80 })], { seed });
  const draws = toxiproxyRandom(seed);
  const peer = await connected(t, proxy.listen);
  for (let i = 0; i < 6; i++) {
    // Toxiproxy: latency + U[-jitter, +jitter) ms per chunk; one echo is one chunk.
    const expectedMs = 120 + draws.randomBelow(160) - 80;
    const rttMs = await roundTripMs(peer, `ping${i}`);
    t.true(rttMs !== undefined && rttMs >= expectedMs - 2 && rttMs <= expectedMs + LATE_MS, `round trip ${i}: ${rttMs} ms, drawn delay ${expectedMs} ms`);
  }
});

test("item 8: upstream latency delays client → server bytes and leaves server → client alone", async (t) => {
  const { proxy, upstream } = await proxied(t, [toxic("latency", "upstream", { latency: 600, jitter: 0 })]);
  const peer = await connected(t, proxy.listen);
  const server = upstream.nextAccepted();
  const sentAtMs = nowMs();
  peer.socket.write("up");
  const far = await server;
  t.true(await far.untilBytes(2, 2000));
  const arrivedMs = (far.chunks[0]?.atMs ?? 0) - sentAtMs;
  t.true(arrivedMs >= 598, `upstream bytes arrive after the latency: ${arrivedMs} ms`);
  t.true(await peer.untilBytes(2, 3000));
  const backMs = (peer.chunks[0]?.atMs ?? 0) - (far.chunks[0]?.atMs ?? 0);
  t.true(backMs < 590, `the echo comes back without the latency: ${backMs} ms`);
});

test("item 8: Toxic.update and Toxic.remove change the latency of a live connection", async (t) => {
  const { proxy, added } = await proxied(t, [toxic("latency", "downstream", { latency: 1200, jitter: 0 })]);
  const peer = await connected(t, proxy.listen);
  const slowMs = await roundTripMs(peer, "a", 5000);
  t.true(slowMs !== undefined && slowMs >= 1198, `before: ${slowMs} ms`);
  const latency = added[0] as Toxic<{ latency: number; jitter: number }>;
  const updated = await latency.update({ ...latency.toJson(), attributes: { latency: 500, jitter: 0 } });
  const fasterMs = await roundTripMs(peer, "b", 5000);
  t.true(fasterMs !== undefined && fasterMs >= 498 && fasterMs < 1190, `after update: ${fasterMs} ms`);
  await updated.remove();
  const plainMs = await roundTripMs(peer, "c", 5000);
  t.true(plainMs !== undefined && plainMs < 490, `after removal: ${plainMs} ms`);
});

test("item 8: bandwidth holds an upstream transfer to about the rate (KB/s, 1 KB = 1000 bytes)", async (t) => {
  const { proxy, upstream } = await proxied(t, [toxic("bandwidth", "upstream", { rate: 100 })]);
  const peer = await connected(t, proxy.listen);
  const server = upstream.nextAccepted();
  const payload = Buffer.alloc(60_000, 7);
  const sentAtMs = nowMs();
  peer.socket.write(payload);
  const far = await server;
  t.true(await far.untilBytes(payload.length, 5000));
  const elapsedMs = (far.chunks.at(-1)?.atMs ?? 0) - sentAtMs;
  // 60,000 bytes at 100 KB/s = 600 ms (sent in 100 ms slices of 10,000 bytes).
  t.true(elapsedMs >= 500 && elapsedMs <= 600 + LATE_MS, `60 KB took ${elapsedMs} ms`);
  t.true(far.chunks.length >= 5, `delivered in slices: ${far.chunks.length} reads`);
  t.true(far.bytes.equals(payload));
});

test("item 8: limit_data forwards exactly `bytes` per direction then closes", async (t) => {
  const { proxy } = await proxied(t, [toxic("limit_data", "downstream", { bytes: 40 })]);
  const peer = await connected(t, proxy.listen);
  const sent: string[] = [];
  for (const part of ["0123456789abcdef", "ghijklmnopqrstuv", "wxyzABCDEFGHIJKL"]) {
    sent.push(part);
    peer.socket.write(part);
    await peer.untilBytes(Math.min(40, sent.join("").length), 2000);
  }
  t.true(await peer.untilClosed(2000), "the connection closes at the limit");
  t.is(peer.bytes.toString(), sent.join("").slice(0, 40), "the chunk crossing the limit is cut");

  const up = await proxied(t, [toxic("limit_data", "upstream", { bytes: 10 })]);
  const client = await connected(t, up.proxy.listen);
  const server = up.upstream.nextAccepted();
  client.socket.write("0123456789ABCDEFGHIJ");
  const far = await server;
  t.true(await far.untilClosed(2000));
  t.is(far.bytes.toString(), "0123456789");
});

test("item 8: timeout drops the data and closes the connection after `timeout` ms", async (t) => {
  const { proxy, upstream } = await proxied(t, [toxic("timeout", "downstream", { timeout: 250 })]);
  const connectedAtMs = nowMs();
  const peer = await connected(t, proxy.listen);
  const server = upstream.nextAccepted();
  peer.socket.write("lost");
  t.true(await peer.untilClosed(3000));
  const closedMs = (peer.closedAtMs ?? 0) - connectedAtMs;
  t.true(closedMs >= 240 && closedMs <= 250 + LATE_MS, `closed after ${closedMs} ms`);
  t.is(peer.bytes.length, 0, "the echo was dropped");
  t.is((await server).bytes.toString(), "lost", "the other direction still passed");
});

test("item 8: timeout 0 black-holes the data and keeps the connection open; removing it closes the connection", async (t) => {
  const { proxy, added } = await proxied(t, [toxic("timeout", "downstream", { timeout: 0 })]);
  const peer = await connected(t, proxy.listen);
  peer.socket.write("into the void");
  await sleep(350);
  t.is(peer.bytes.length, 0);
  t.false(peer.closed, "still open");
  await added[0]?.remove();
  // Toxiproxy's timeout toxic closes its links when removed (its cleanup hook).
  t.true(await peer.untilClosed(2000));
});

test("item 8: reset_peer resets connections accepted while it exists (ECONNRESET after `timeout`); older ones close normally", async (t) => {
  const { proxy, client } = await proxied(t, []);
  const older = await connected(t, proxy.listen);
  t.not(await roundTripMs(older, "warm"), undefined);
  const real = await client.get("p");
  await real.addToxic(toxic("reset_peer", "downstream", { timeout: 150 }));
  const peer = await connected(t, proxy.listen);
  const sentAtMs = nowMs();
  peer.socket.write("reset me");
  t.true(await peer.untilClosed(3000));
  t.is(peer.error?.code, "ECONNRESET");
  const resetMs = (peer.closedAtMs ?? 0) - sentAtMs;
  t.true(resetMs >= 145, `reset after the timeout: ${resetMs} ms`);
  t.is(peer.bytes.length, 0);
  older.socket.write("bye");
  t.true(await older.untilClosed(3000));
  t.is(older.error, undefined, "a connection from before the toxic sees a plain close, no RST");
  // Peers that were reset never take the server down.
  await client.reset();
  const after = await connected(t, proxy.listen);
  t.not(await roundTripMs(after, "still here"), undefined);
});

test("item 8: slicer delivers the same bytes in small pieces", async (t) => {
  const { proxy, upstream } = await proxied(t, [toxic("slicer", "upstream", { average_size: 8, size_variation: 4, delay: 10_000 })]);
  const peer = await connected(t, proxy.listen);
  const server = upstream.nextAccepted();
  const payload = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const sentAtMs = nowMs();
  peer.socket.write(payload);
  const far = await server;
  t.true(await far.untilBytes(200, 5000));
  t.true(far.bytes.equals(payload), "same bytes, same order");
  // Pieces of 4–12 bytes, 10 ms apart (delay is in µs): at least 16 pieces, so the last one
  // arrives ≥ 150 ms after the write, and the server reads them separately (a stalled event
  // loop may merge some reads, never the spread in time).
  const spreadMs = (far.chunks.at(-1)?.atMs ?? 0) - sentAtMs;
  t.true(spreadMs >= 150, `the last piece came ${spreadMs} ms after the write`);
  t.true(far.chunks.length >= 3, `arrived in ${far.chunks.length} reads`);
});

test("item 8: slicer cuts cover a chunk exactly, in pieces of about average ± variation", (t) => {
  const draws = toxiproxyRandom(3);
  for (const [length, average, variation] of [[200, 8, 4], [1, 0, 0], [65536, 1000, 100], [50, 10, 40]] as const) {
    const ends = pieceEnds(draws, length, average, variation);
    t.is(ends.at(-1), length);
    const sizes = ends.map((end, i) => end - (ends[i - 1] ?? 0));
    t.true(sizes.every((size) => size > 0), `no empty piece (${length}/${average}/${variation})`);
    if (variation < average / 2) t.true(sizes.every((size) => size <= average + variation), `pieces at most average + variation: ${Math.max(...sizes)}`);
  }
  t.is(pieceEnds(draws, 100, 200, 0).length, 1, "a chunk smaller than the average is not cut");
});

test("item 8: slow_close holds the close for `delay` ms after the source ends", async (t) => {
  const greeter = await tcpServer((peer) => peer.socket.end("bye"));
  const { proxy } = await proxied(t, [toxic("slow_close", "downstream", { delay: 800 })], { upstream: greeter });
  const connectedAtMs = nowMs();
  const peer = await connected(t, proxy.listen);
  t.true(await peer.untilBytes(3, 3000));
  t.is(peer.bytes.toString(), "bye");
  t.true(await peer.untilClosed(5000));
  const closedMs = (peer.closedAtMs ?? 0) - connectedAtMs;
  t.true(closedMs >= 795, `closed ${closedMs} ms after connecting`);
  // The upstream sent and ended at once: the data passed, only the close waited.
  t.true((peer.closedAtMs ?? 0) - (peer.chunks[0]?.atMs ?? 0) >= 600, "the data came well before the close");

  const plain = await proxied(t, [], { upstream: await tcpServer((peer) => peer.socket.end("bye")) });
  const quickAtMs = nowMs();
  const quick = await connected(t, plain.proxy.listen);
  t.true(await quick.untilClosed(3000));
  t.true((quick.closedAtMs ?? 0) - quickAtMs < 790, "without the toxic the close passes at once");
});

test("item 8: toxicity 0 never applies, 1 always does, and fractions follow the seeded rolls per connection", async (t) => {
  const never = await proxied(t, [toxic("timeout", "downstream", { timeout: 0 }, 0)]);
  const passes = await connected(t, never.proxy.listen);
  t.not(await roundTripMs(passes, "through"), undefined, "toxicity 0: the data passes");

  const always = await proxied(t, [toxic("timeout", "downstream", { timeout: 0 }, 1)]);
  const blocked = await connected(t, always.proxy.listen);
  t.is(await roundTripMs(blocked, "void", 300), undefined, "toxicity 1: the toxic applies");

  // One roll per connection at accept (the upstream chain is empty), in accept order.
  const seed = 5;
  const half = await proxied(t, [toxic("timeout", "downstream", { timeout: 0 }, 0.5)], { seed });
  const rolls = toxiproxyRandom(seed);
  const expected = Array.from({ length: 12 }, () => !rolls.rollToxicity(0.5));
  const peers: Watched[] = [];
  for (let i = 0; i < expected.length; i++) {
    const accepted = half.upstream.nextAccepted();
    const peer = await connected(t, half.proxy.listen);
    await accepted;
    peer.socket.write("?");
    peers.push(peer);
  }
  // Wait long for the ones that must pass (a stall cannot fail them), then briefly for the rest.
  await Promise.all(peers.map((peer, i) => (expected[i] === true ? peer.untilBytes(1, 5000) : undefined)));
  await sleep(200);
  t.deepEqual(peers.map((peer) => peer.bytes.length === 1), expected, "which connections passed");
  t.true(expected.includes(true) && expected.includes(false), "the seed gives both outcomes");
});

test("item 8: a client or an upstream dying mid-stream never takes the server down", async (t) => {
  const { proxy, upstream, client } = await proxied(t, [toxic("latency", "downstream", { latency: 100, jitter: 0 }), toxic("latency", "upstream", { latency: 50, jitter: 0 })]);
  const resetter = await connected(t, proxy.listen);
  resetter.socket.write("x".repeat(10_000));
  await sleep(20);
  resetter.socket.resetAndDestroy();

  const victim = await connected(t, proxy.listen);
  const server = upstream.nextAccepted();
  victim.socket.write("hello");
  const far = await server;
  await far.untilBytes(5, 2000);
  far.socket.resetAndDestroy();
  t.true(await victim.untilClosed(2000), "the client's connection closes when its upstream dies");

  await sleep(150);
  t.is(await client.getVersion(), '{"version": "2.12.0"}\n');
  const healthy = await connected(t, proxy.listen);
  const rttMs = await roundTripMs(healthy, "alive");
  t.true(rttMs !== undefined && rttMs >= 148, `still proxying with both toxics: ${rttMs} ms`);
});
