// Issue 12 item 8: the Toxiproxy-compatible server's HTTP API, driven by toxiproxy-node-client
// 4.1.0 and by raw fetch for what the client does not cover. Expected routes, status codes, JSON
// shapes (with Go's field order) and error texts come from Toxiproxy's Go source (api.go,
// proxy.go, proxy_collection.go, toxic_collection.go; see research/containers-toxiproxy.md §3).
import test from "ava";
import { ToxiproxyError, type ICreateToxicBody, type Latency, type Timeout } from "toxiproxy-node-client";
import { ProxyRegistry } from "../../harness/real/toxiproxy/index.ts";
import { dial, echoServer, lab, roundTripMs, sleep, tcpServer } from "./toxiproxy-helpers.ts";

const latencyBody = (name: string, latency: number): ICreateToxicBody<Latency> => ({ name, type: "latency", stream: "downstream", toxicity: 1, attributes: { latency, jitter: 0 } });

async function raw(url: string, method: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(url, { method, body, headers });
  return { status: response.status, text: await response.text(), type: response.headers.get("content-type") };
}

const errorBody = (message: string, status: number): string => `${JSON.stringify({ error: message, status })}\n`;

test("item 8: getVersion answers Toxiproxy's /version body", async (t) => {
  const { server, client, close } = await lab();
  t.teardown(close);
  t.is(await client.getVersion(), '{"version": "2.12.0"}\n');
  const version = await raw(`${server.url}/version`, "GET");
  t.is(version.type, "application/json;charset=utf-8");
});

test("item 8: createProxy with port 0 reports the bound address, get shows it with Go's field order, and bytes flow", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const proxy = await client.createProxy({ name: "echo", listen: "127.0.0.1:0", upstream: upstream.address });
  t.regex(proxy.listen, /^127\.0\.0\.1:\d+$/);
  t.not(proxy.listen, "127.0.0.1:0");
  t.true(proxy.enabled);
  const fetched = await client.get("echo");
  t.deepEqual([fetched.name, fetched.listen, fetched.upstream, fetched.enabled], ["echo", proxy.listen, upstream.address, true]);
  const shown = await raw(`${server.url}/proxies/echo`, "GET");
  t.is(shown.status, 200);
  t.is(shown.text, JSON.stringify({ name: "echo", listen: proxy.listen, upstream: upstream.address, enabled: true, toxics: [] }));
  const peer = await dial(proxy.listen);
  t.teardown(() => peer.socket.destroy());
  t.not(await roundTripMs(peer, "hello"), undefined);
  t.is(peer.bytes.toString(), "hello");
});

test("item 8: getAll lists every proxy keyed by name (sorted, as Go marshals a map)", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  await client.createProxy({ name: "zeta", listen: "127.0.0.1:0", upstream: upstream.address });
  await client.createProxy({ name: "alpha", listen: "127.0.0.1:0", upstream: upstream.address, enabled: false });
  await client.createProxy({ name: "10", listen: "127.0.0.1:0", upstream: upstream.address, enabled: false });
  await client.createProxy({ name: "9", listen: "127.0.0.1:0", upstream: upstream.address, enabled: false });
  const all = await client.getAll();
  t.deepEqual(Object.keys(all).sort(), ["10", "9", "alpha", "zeta"]);
  t.false(all.alpha?.enabled);
  t.is(all.alpha?.listen, "127.0.0.1:0", "a proxy never started keeps its listen address as given");
  const listed = await raw(`${server.url}/proxies`, "GET");
  t.is(listed.type, "application/json");
  const names = [...listed.text.matchAll(/"name":"([^"]*)"/g)].map((m) => m[1]);
  t.deepEqual(names, ["10", "9", "alpha", "zeta"], "in byte order, as the text is written");
});

test("item 8: populate creates, keeps an unchanged proxy, replaces a changed one; 201; missing fields fail with 400 before anything is made", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const other = await echoServer();
  t.teardown(() => other.close());
  const made = await client.populate([
    { name: "a", listen: "127.0.0.1:0", upstream: upstream.address },
    { name: "b", listen: "127.0.0.1:0", upstream: upstream.address, enabled: false },
  ]);
  const a = made.a;
  t.truthy(a);
  t.false(made.b?.enabled);
  const live = await dial(a?.listen ?? "");
  t.teardown(() => live.socket.destroy());
  t.not(await roundTripMs(live, "x"), undefined);
  // Same resolved listen and upstream: kept as is (the live connection survives).
  const again = await client.populate([{ name: "a", listen: a?.listen ?? "", upstream: upstream.address }]);
  t.is(again.a?.listen, a?.listen);
  t.not(await roundTripMs(live, "y"), undefined);
  t.false(live.closed);
  // Another upstream: replaced, which drops the live connection.
  await client.populate([{ name: "a", listen: a?.listen ?? "", upstream: other.address }]);
  t.true(await live.untilClosed(2000));
  t.is((await client.get("a")).upstream, other.address);
  const status = await raw(`${server.url}/populate`, "POST", JSON.stringify([{ name: "c", listen: "127.0.0.1:0", upstream: upstream.address }]));
  t.is(status.status, 201);
  t.is((JSON.parse(status.text) as { proxies: { name: string }[] }).proxies[0]?.name, "c");
  const missing = await raw(`${server.url}/populate`, "POST", JSON.stringify([{ name: "d", listen: "127.0.0.1:0", upstream: upstream.address }, { listen: "127.0.0.1:0", upstream: upstream.address }]));
  t.is(missing.status, 400);
  t.is(missing.text, JSON.stringify({ error: "missing required field: name at proxy 2", status: 400, proxies: null }));
  await t.throwsAsync(client.get("d"), { message: "Request failed with status code 404" }, "validation comes before any proxy is made");
});

test("item 8: update enabled:false closes the listener and live connections; enabled:true listens on the same address again", async (t) => {
  const { client, upstream, close } = await lab();
  t.teardown(close);
  const proxy = await client.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: upstream.address });
  const live = await dial(proxy.listen);
  t.not(await roundTripMs(live, "hi"), undefined);
  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  t.false(disabled.enabled);
  t.true(await live.untilClosed(2000), "a live connection is closed when its proxy is disabled");
  await t.throwsAsync(dial(proxy.listen), { code: "ECONNREFUSED" });
  const enabled = await disabled.update({ enabled: true, listen: disabled.listen, upstream: disabled.upstream });
  t.is(enabled.listen, proxy.listen, "same address as before");
  const again = await dial(enabled.listen);
  t.teardown(() => again.socket.destroy());
  t.not(await roundTripMs(again, "back"), undefined);
});

test("item 8: a new upstream through PATCH drops live connections and new ones reach the new upstream", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const other = await tcpServer((peer) => peer.socket.write("other"));
  t.teardown(() => other.close());
  const proxy = await client.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: upstream.address });
  const live = await dial(proxy.listen);
  const patched = await raw(`${server.url}/proxies/p`, "PATCH", JSON.stringify({ upstream: other.address }));
  t.is(patched.status, 200);
  t.like(JSON.parse(patched.text) as object, { upstream: other.address, enabled: true });
  t.true(await live.untilClosed(2000));
  const fresh = await dial((JSON.parse(patched.text) as { listen: string }).listen);
  t.teardown(() => fresh.socket.destroy());
  t.true(await fresh.untilBytes(5, 2000));
  t.is(fresh.bytes.toString(), "other");
});

test("item 8: remove answers 204, the proxy is gone (404) and its port closed", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const proxy = await client.createProxy({ name: "gone", listen: "127.0.0.1:0", upstream: upstream.address });
  await proxy.remove();
  const error = await t.throwsAsync(client.get("gone"), { instanceOf: ToxiproxyError, message: "Request failed with status code 404" });
  t.truthy(error);
  await t.throwsAsync(dial(proxy.listen), { code: "ECONNREFUSED" });
  await client.createProxy({ name: "again", listen: "127.0.0.1:0", upstream: upstream.address });
  const deleted = await raw(`${server.url}/proxies/again`, "DELETE");
  t.deepEqual([deleted.status, deleted.text], [204, ""]);
  t.is((await raw(`${server.url}/proxies/again`, "DELETE")).text, errorBody("proxy not found", 404));
});

test("item 8: reset re-enables every proxy and removes every toxic, keeping the proxies", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const proxy = await client.createProxy({ name: "r", listen: "127.0.0.1:0", upstream: upstream.address });
  await proxy.addToxic(latencyBody("slow", 3000));
  await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  await client.reset();
  const after = await raw(`${server.url}/proxies/r`, "GET");
  t.is(after.text, JSON.stringify({ name: "r", listen: proxy.listen, upstream: upstream.address, enabled: true, toxics: [] }));
  const peer = await dial(proxy.listen);
  t.teardown(() => peer.socket.destroy());
  const rttMs = await roundTripMs(peer, "fast");
  t.true(rttMs !== undefined && rttMs < 2500, `no 3000 ms latency after reset: ${rttMs} ms`);
  t.is((await raw(`${server.url}/reset`, "POST")).status, 204);
});

test("item 8: toxics — addToxic fills Toxiproxy's defaults, getToxic, list order, Toxic.update merges attributes, Toxic.remove", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const proxy = await client.createProxy({ name: "t", listen: "127.0.0.1:0", upstream: upstream.address });
  // The client's body type makes every field required; Toxiproxy's defaults are for callers that omit them.
  const created = await raw(`${server.url}/proxies/t/toxics`, "POST", JSON.stringify({ type: "latency", attributes: { latency: 20, unknown: 5 } }));
  t.is(created.status, 200, "a created toxic is answered with 200, not 201");
  t.is(created.text, JSON.stringify({ attributes: { latency: 20, jitter: 0 }, name: "latency_downstream", type: "latency", stream: "downstream", toxicity: 1 }));
  const up = await proxy.addToxic<Timeout>({ name: "cut", type: "timeout", stream: "upstream", toxicity: 0.5, attributes: { timeout: 100 } });
  t.deepEqual(up.toJson(), { attributes: { timeout: 100 }, name: "cut", stream: "upstream", toxicity: 0.5, type: "timeout" });
  const listed = await raw(`${server.url}/proxies/t/toxics`, "GET");
  t.deepEqual((JSON.parse(listed.text) as { name: string }[]).map((x) => x.name), ["cut", "latency_downstream"], "upstream chain first, then downstream");
  const fetched = await proxy.getToxic<Latency>("latency_downstream");
  t.deepEqual(fetched.attributes, { latency: 20, jitter: 0 });
  const updated = await fetched.update({ ...fetched.toJson(), attributes: { jitter: 5 } as Latency, toxicity: 0.25 });
  t.deepEqual([updated.attributes, updated.toxicity, updated.name, updated.type], [{ latency: 20, jitter: 5 }, 0.25, "latency_downstream", "latency"], "attributes merge field by field");
  const patched = await raw(`${server.url}/proxies/t/toxics/cut`, "PATCH", JSON.stringify({ attributes: { timeout: 7 }, name: "ignored", stream: "downstream" }));
  t.is(patched.text, JSON.stringify({ attributes: { timeout: 7 }, name: "cut", type: "timeout", stream: "upstream", toxicity: 0.5 }), "name, type and stream never change");
  await updated.remove();
  await t.throwsAsync(proxy.getToxic("latency_downstream"), { message: "Request failed with status code 404" });
  t.is((await raw(`${server.url}/proxies/t/toxics/cut`, "DELETE")).status, 204);
  t.is((await raw(`${server.url}/proxies/t/toxics`, "GET")).text, "[]");
  // A stream is parsed case-insensitively but shown as given.
  const mixed = await raw(`${server.url}/proxies/t/toxics`, "POST", JSON.stringify({ type: "slicer", stream: "UpStream" }));
  t.like(JSON.parse(mixed.text) as object, { name: "slicer_UpStream", stream: "UpStream", attributes: { average_size: 0, size_variation: 0, delay: 0 } });
});

test("item 8: error statuses and bodies are Toxiproxy's (400, 404, 405, 409, 500)", async (t) => {
  const { server, client, upstream, close } = await lab();
  t.teardown(close);
  const url = server.url;
  const proxy = await client.createProxy({ name: "e", listen: "127.0.0.1:0", upstream: upstream.address });
  await proxy.addToxic(latencyBody("lat", 1));
  const cases: [string, string, string | undefined, number, string][] = [
    ["POST", "/proxies", JSON.stringify({ name: "e", listen: "127.0.0.1:0", upstream: upstream.address }), 409, "proxy already exists"],
    ["POST", "/proxies", JSON.stringify({ name: "n", listen: "127.0.0.1:0" }), 400, "missing required field: upstream"],
    ["POST", "/proxies", JSON.stringify({ listen: "127.0.0.1:0", upstream: "x:1" }), 400, "missing required field: name"],
    ["POST", "/proxies", "", 400, "bad request body: EOF"],
    ["POST", "/proxies", JSON.stringify({ name: 5, upstream: "x:1" }), 400, "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string"],
    ["GET", "/proxies/nope", undefined, 404, "proxy not found"],
    ["PATCH", "/proxies/nope", "{}", 404, "proxy not found"],
    ["GET", "/proxies/nope/toxics", undefined, 404, "proxy not found"],
    ["POST", "/proxies/e/toxics", JSON.stringify({ type: "latency", stream: "sideways" }), 400, "stream was invalid, can be either upstream or downstream"],
    ["POST", "/proxies/e/toxics", JSON.stringify({ type: "earthquake" }), 400, "invalid toxic type"],
    ["POST", "/proxies/e/toxics", JSON.stringify({ name: "lat", type: "latency" }), 409, "toxic already exists"],
    ["GET", "/proxies/e/toxics/nope", undefined, 404, "toxic not found"],
    ["POST", "/proxies/e/toxics/nope", "{}", 404, "toxic not found"],
    ["DELETE", "/proxies/e/toxics/nope", undefined, 404, "toxic not found"],
  ];
  for (const [method, path, body, status, message] of cases) {
    const answer = await raw(`${url}${path}`, method, body);
    t.is(answer.status, status, `${method} ${path}`);
    t.is(answer.text, errorBody(message, status), `${method} ${path}`);
  }
  const badAttribute = await raw(`${url}/proxies/e/toxics`, "POST", JSON.stringify({ type: "latency", name: "x", attributes: { latency: 1.5 } }));
  t.is(badAttribute.status, 400);
  t.regex(badAttribute.text, /"error":"bad request body: attribute latency of a latency toxic must be an integer, got 1.5"/);
  const taken = await raw(`${url}/proxies`, "POST", JSON.stringify({ name: "clash", listen: proxy.listen, upstream: upstream.address }));
  t.is(taken.status, 500);
  t.is(taken.text, errorBody(`listen tcp ${proxy.listen}: bind: address already in use`, 500));
  t.deepEqual(await raw(`${url}/nowhere`, "GET").then((a) => [a.status, a.text]), [404, "404 page not found\n"]);
  t.is((await raw(`${url}/version`, "DELETE")).status, 405);
  await t.throwsAsync(client.createProxy({ name: "e", listen: "127.0.0.1:0", upstream: upstream.address }), { message: "Request failed with status code 409" });
});

test("item 8: a browser's User-Agent is refused with 403", async (t) => {
  const { server, close } = await lab();
  t.teardown(close);
  const answer = await raw(`${server.url}/proxies`, "GET", undefined, { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)" });
  t.deepEqual([answer.status, answer.text], [403, "User agent not allowed\n"]);
  t.is((await raw(`${server.url}/proxies`, "GET", undefined, { "User-Agent": "curl/8.0" })).status, 200);
});

test("item 8: a failed upstream dial closes the client and the server keeps serving", async (t) => {
  const { client, close } = await lab();
  t.teardown(close);
  const dead = await tcpServer();
  const deadAddress = dead.address;
  await dead.close();
  const proxy = await client.createProxy({ name: "dead", listen: "127.0.0.1:0", upstream: deadAddress });
  const peer = await dial(proxy.listen);
  t.true(await peer.untilClosed(2000), "the client is closed when the upstream cannot be dialled");
  t.is(peer.bytes.length, 0);
  t.is(await client.getVersion(), '{"version": "2.12.0"}\n');
});

test("item 8: the in-process registry makes the same changes without HTTP, with typed failures", async (t) => {
  const upstream = await echoServer();
  t.teardown(() => upstream.close());
  const registry = new ProxyRegistry(7);
  t.teardown(() => registry.stopAll());
  const made = await registry.create({ name: "in", listen: "127.0.0.1:0", upstream: upstream.address });
  t.true(made.ok);
  const listen = made.ok ? made.value.listen : "";
  t.deepEqual(await registry.create({ name: "in", listen: "127.0.0.1:0", upstream: upstream.address }), { ok: false, failure: { status: 409, message: "proxy already exists" } });
  const toxic = await registry.addToxic("in", { type: "latency", attributes: { latency: 60 } });
  t.true(toxic.ok);
  t.deepEqual(await registry.addToxic("none", { type: "latency" }), { ok: false, failure: { status: 404, message: "proxy not found" } });
  const peer = await dial(listen);
  t.teardown(() => peer.socket.destroy());
  const rttMs = await roundTripMs(peer, "in-process");
  t.true(rttMs !== undefined && rttMs >= 55, `latency applies: ${rttMs} ms`);
  t.is(registry.connectionCount("in"), 1);
  peer.socket.end();
  t.true(await peer.untilClosed(2000));
  await sleep(50);
  t.is(registry.connectionCount("in"), 0, "a closed connection is forgotten");
});
