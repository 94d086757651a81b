// Issue 12 items 6 and 7 with the official agents: @dfinity/agent 3.4.3 (v3 calls, v2 query and
// read_state) and @icp-sdk/core 6.1.0 (v4 calls, v3 query and read_state) drive a simulated
// 4-replica execution subnet through the in-process gateway (harness/http/sim-gateway.ts), with
// their own verification left on: BLS certificates under the root key from /api/v2/status, query
// signatures under the node keys in the state tree. Expected behaviour comes from the agents
// themselves and from research/agent-compat.md (proven against them); the request-id vector from
// the interface spec. One subnet serves the whole file, the tests run in order (BLS is slow: each
// synchronous call costs about three heights of 4-replica BLS signing, ~2 s of CPU).
// @dfinity/agent 3.4.3 comes from the package subnetlab-dfinity-agent-3 (fixtures/agents/): it needs
// @noble/* 1.x as peers, subnetlab uses 2.x, so npm installs it apart (.npmrc install-links).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { gzipSync } from "node:zlib";
import { Principal as Principal3 } from "@dfinity/principal";
import { IDL as IDL3 } from "@dfinity/candid";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import * as agent3 from "subnetlab-dfinity-agent-3/agent";
import * as identity3 from "subnetlab-dfinity-agent-3/identity";
import * as agent6 from "@icp-sdk/core/agent";
import { Ed25519KeyIdentity as Ed25519KeyIdentity6 } from "@icp-sdk/core/identity";
import { Principal as Principal6 } from "@icp-sdk/core/principal";
import { requestId } from "../../harness/crypto/request-id.ts";
import { subnetIdText } from "../../harness/http/facts.ts";
import { userIdentity } from "../../harness/ingress/identity.ts";
import { encodeEnvelope } from "../../harness/ingress/envelope.ts";
import { replicaId } from "../../harness/types.ts";
import {
  counterIdl,
  effectiveCanisterOf,
  fixture,
  flipBit,
  gatewayFor,
  managementIdl,
  rewriteCborBody,
  signatureOf,
  startedSubnet,
  text,
  withFlippedSignature,
  withSignature,
  type CounterActor,
  type ManagementActor,
} from "./helpers.ts";
import vector from "../../fixtures/vectors/ic-spec-request-id-example.json" with { type: "json" };

const subnet = startedSubnet(12);
const gateway = gatewayFor(subnet);
const counterWasm = fixture("motoko/counter.eop.wasm");

/** What differs between the two agent lines: their packages (each has its own classes). */
interface AgentLine {
  readonly name: string;
  readonly HttpAgent: typeof agent6.HttpAgent;
  readonly Actor: typeof agent6.Actor;
  readonly CanisterStatus: typeof agent6.CanisterStatus;
  readonly Certificate: typeof agent6.Certificate;
  /** agent.readState (its signature differs between the lines): the certificate bytes. */
  readonly readState: (agent: agent6.HttpAgent, canisterId: string, paths: Uint8Array[][]) => Promise<Uint8Array>;
  readonly identity: (seed: number) => agent6.Identity;
  readonly principal: (text: string) => { toText(): string };
  /** How it calls synchronously: the v3 or the v4 endpoint. */
  readonly callPath: RegExp;
  /** The module it installs: the plain one, or gzip-compressed (#12 item 7). */
  readonly wasm: Uint8Array;
}

const LINES: readonly AgentLine[] = [
  {
    name: "@dfinity/agent 3.4.3",
    HttpAgent: agent3.HttpAgent as unknown as typeof agent6.HttpAgent,
    Actor: agent3.Actor as unknown as typeof agent6.Actor,
    CanisterStatus: agent3.CanisterStatus as unknown as typeof agent6.CanisterStatus,
    Certificate: agent3.Certificate as unknown as typeof agent6.Certificate,
    readState: async (agent, canisterId, paths) => (await (agent as unknown as agent3.HttpAgent).readState(canisterId, { paths })).certificate,
    identity: (seed) => identity3.Ed25519KeyIdentity.generate(new Uint8Array(32).fill(seed)) as unknown as agent6.Identity,
    principal: (p) => Principal3.fromText(p),
    callPath: /^\/api\/v3\/canister\/[^/]+\/call$/,
    wasm: counterWasm,
  },
  {
    name: "@icp-sdk/core 6.1.0",
    HttpAgent: agent6.HttpAgent,
    Actor: agent6.Actor,
    CanisterStatus: agent6.CanisterStatus,
    Certificate: agent6.Certificate,
    readState: async (agent, canisterId, paths) => (await agent.readState({ canisterId }, { paths })).certificate,
    identity: (seed) => Ed25519KeyIdentity6.generate(new Uint8Array(32).fill(seed)),
    principal: (p) => Principal6.fromText(p),
    callPath: /^\/api\/v4\/canister\/[^/]+\/call$/,
    wasm: gzipSync(counterWasm),
  },
];

interface Deployed {
  readonly agent: agent6.HttpAgent;
  readonly canisterId: string;
  readonly management: ManagementActor;
  readonly counter: CounterActor;
}
const deployed = new Map<string, Deployed>();

async function agentFor(line: AgentLine, seed: number): Promise<agent6.HttpAgent> {
  // retryTimes 0: a refusal is final here, the agent's back-off would only cost wall time.
  return line.HttpAgent.create({ host: gateway.host, fetch: gateway.fetch as typeof fetch, identity: line.identity(seed), shouldFetchRootKey: true, retryTimes: 0 });
}

function managementOf(line: AgentLine, agent: agent6.HttpAgent): ManagementActor {
  const options = { agent, canisterId: "aaaaa-aa", callTransform: effectiveCanisterOf, queryTransform: effectiveCanisterOf };
  return line.Actor.createActor(managementIdl as never, options as never) as unknown as ManagementActor;
}

/** The certificate of the first read_state answer the gateway gave (an early height's). */
function firstCertificate(): Uint8Array {
  const first = gateway.log.find((x) => x.request.path.endsWith("/read_state") && x.response.status === 200);
  if (first === undefined) throw new Error("no read_state answered yet");
  return agent6.Cbor.decode<{ certificate: Uint8Array }>(first.response.body).certificate;
}

const pathsSince = (from: number): string[] => gateway.log.slice(from).map((x) => `${x.request.method} ${x.request.path} ${x.response.status}`);

// ---------------------------------------------------------------------------------------------

test.serial("item 6: the spec's request-id example gives its request id in subnetlab and in both agents", (t) => {
  // Interface spec "Request ids" example (fixtures/vectors/ic-spec-request-id-example.json).
  const c = vector.content;
  const content = {
    request_type: c.request_type.text,
    sender: hexToBytes(c.sender.blob),
    ingress_expiry: BigInt(c.ingress_expiry.nat),
    canister_id: hexToBytes(c.canister_id.blob),
    method_name: c.method_name.text,
    arg: hexToBytes(c.arg.blob),
  };
  t.is(bytesToHex(requestId(content)), vector.requestId);
  t.is(bytesToHex(agent3.requestIdOf(content as never)), vector.requestId);
  t.is(bytesToHex(agent6.requestIdOf(content as never)), vector.requestId);
});

for (const line of LINES) {
  test.serial(`items 6, 7: ${line.name} deploys a Motoko canister through the management canister, calls an update (certified reply), a query (node signature), reads controllers and module hash, and canister_status`, async (t) => {
    const agent = await agentFor(line, 1);
    t.deepEqual(new Uint8Array(agent.rootKey ?? []), subnet.facts.rootKeyDer, "fetchRootKey took /api/v2/status's root key");
    const management = managementOf(line, agent);
    const before = gateway.log.length;
    const { canister_id } = await management.provisional_create_canister_with_cycles({ amount: [10n ** 13n], settings: [] });
    // As @dfinity/ic-management sends it: the management canister is the effective canister id.
    t.true(pathsSince(before).some((p) => line.callPath.test(p.split(" ")[1] ?? "") && p.includes("/aaaaa-aa/") && p.endsWith(" 200")), pathsSince(before).join("\n"));
    await management.install_code({ mode: { install: null }, canister_id, wasm_module: line.wasm, arg: new Uint8Array(IDL3.encode([], [])) });

    const canisterId = canister_id.toText();
    const counter = line.Actor.createActor(counterIdl as never, { agent, canisterId } as never) as unknown as CounterActor;
    const callsBefore = gateway.log.length;
    t.is(await counter.inc(), 1n, "the certified reply of a synchronous call");
    t.deepEqual(pathsSince(callsBefore).filter((p) => p.startsWith("POST")).map((p) => p.replace(/canister\/[^/]+/, "canister/<id>")), [`POST ${line.callPath.source.replace(/\\|\^|\$|\[\^\/\]\+/g, "").replace("canister/", "canister/<id>")} 200`]);
    t.is(await counter.get(), 1n, "a query whose node signature the agent checked");

    const status = await line.CanisterStatus.request({ canisterId: line.principal(canisterId) as never, agent, paths: ["controllers", "module_hash", "time"] });
    const controllers = status.get("controllers") as { toText(): string }[];
    t.deepEqual(controllers.map((p) => p.toText()), [(await agent.getPrincipal()).toText()]);
    t.is(status.get("module_hash"), bytesToHex(sha256(line.wasm)), "the module hash is over the module as uploaded");
    t.true(status.get("time") instanceof Date);

    const viaManagement = await management.canister_status({ canister_id });
    t.deepEqual(viaManagement.status, { running: null });
    t.deepEqual([...(viaManagement.module_hash[0] ?? [])], [...sha256(line.wasm)]);
    t.deepEqual(viaManagement.settings.controllers.map((p) => p.toText()), controllers.map((p) => p.toText()));
    t.is(viaManagement.cycles, 10n ** 13n);
    deployed.set(line.name, { agent, canisterId, management, counter });
  });
}

test.serial("item 7: a trap is a certified reject, and fetch_canister_logs (a query to aaaaa-aa) shows it to the controller only", async (t) => {
  const { counter, management, canisterId } = deployed.get(LINES[0]!.name)!;
  const trapped = await t.throwsAsync(counter.incThenTrap());
  // A certified reject (the 200 call response's certificate says "rejected"): code 5, IC0503.
  t.regex(trapped?.message ?? "", /Reject code: 5/);
  t.regex(trapped?.message ?? "", /Error code: IC0503/);
  const canister_id = Principal3.fromText(canisterId);
  const { canister_log_records } = await management.fetch_canister_logs({ canister_id });
  const lines = canister_log_records.map((r) => text(Uint8Array.from(r.content)));
  t.true(lines.some((l) => l.startsWith("[TRAP]: ") && /assert/i.test(l)), lines.join("\n"));
  t.is(await counter.get(), 1n, "the trapped increment was rolled back");

  const stranger = managementOf(LINES[0]!, await agentFor(LINES[0]!, 9));
  const refused = await t.throwsAsync(stranger.fetch_canister_logs({ canister_id }));
  t.regex(refused?.message ?? "", /Caller \S+ is not allowed to access canister logs/, "canister_logs.rs check_log_visibility_permission");
});

test.serial("item 7: a call the ingress filter refuses is a non-replicated rejection the agent reports with its code (not a controller, IC0512; create_canister from a user, IC0406); update_settings adds a controller", async (t) => {
  for (const line of LINES) {
    const { canisterId } = deployed.get(line.name)!;
    const stranger = managementOf(line, await agentFor(line, 7));
    const before = gateway.log.length;
    const error = await t.throwsAsync(stranger.canister_status({ canister_id: line.principal(canisterId) }));
    t.regex(error?.message ?? "", /Only the controllers of the canister .* can control it/, line.name);
    t.regex(error?.message ?? "", /IC0512/, line.name);
    const answer = gateway.log[before]!.response;
    t.is(answer.status, 200, "refused before consensus: a CBOR user error, not an HTTP error");
    t.is(agent6.Cbor.decode<Record<string, unknown>>(answer.body).status, "non_replicated_rejection");
    // The IC's ingress filter: create_canister needs cycles a user's message cannot carry.
    const created = await t.throwsAsync(stranger.create_canister({ settings: [] }));
    t.regex(created?.message ?? "", /Only canisters can call ic00 method create_canister/, line.name);
    t.regex(created?.message ?? "", /IC0406/, line.name);
  }
  // update_settings from the controller (its settings record lacks the newer opt fields: they are
  // null) makes the stranger a controller too, and then its canister_status goes through.
  const line = LINES[1]!;
  const { canisterId, management, agent } = deployed.get(line.name)!;
  const strangerAgent = await agentFor(line, 7);
  const controllers = [await agent.getPrincipal(), await strangerAgent.getPrincipal()];
  await management.update_settings({ canister_id: line.principal(canisterId), settings: { controllers: [controllers], compute_allocation: [], memory_allocation: [], freezing_threshold: [] } });
  const status = await managementOf(line, strangerAgent).canister_status({ canister_id: line.principal(canisterId) });
  t.deepEqual(status.settings.controllers.map((p) => p.toText()).sort(), controllers.map((p) => p.toText()).sort());
});

test.serial("item 6: @icp-sdk/core 6.1.0's asynchronous call (v2, 202) and its polling of request_status reach the certified reply", async (t) => {
  const { agent, canisterId } = deployed.get(LINES[1]!.name)!;
  const before = gateway.log.length;
  const { requestId: id, response } = await agent.call(canisterId, { methodName: "inc", arg: IDL3.encode([], []), callSync: false });
  t.is(response.status, 202);
  const { reply } = await agent6.pollForResponse(agent, { canisterId }, id);
  t.deepEqual(IDL3.decode([IDL3.Nat], reply), [2n]);
  t.true(pathsSince(before).some((p) => /^POST \/api\/v2\/canister\/[^/]+\/call 202$/.test(p)));
  t.true(pathsSince(before).some((p) => /^POST \/api\/v3\/canister\/[^/]+\/read_state 200$/.test(p)));

  // Only the sender may read a request's status (403 for anyone else, as the IC's verify_paths).
  const stranger = await agentFor(LINES[1]!, 8);
  const error = await t.throwsAsync(stranger.readState({ canisterId }, { paths: [[new TextEncoder().encode("request_status"), new Uint8Array(id)]] }));
  t.regex(error?.message ?? "", /403|not signed by the caller/);
});

for (const line of LINES) {
  test.serial(`item 6: ${line.name} refuses a certificate with one bit of its BLS signature flipped, or with another height's genuine signature`, async (t) => {
    const { agent, canisterId } = deployed.get(line.name)!;
    const readTime = async (): Promise<unknown> => {
      const certificate = await line.readState(agent, canisterId, [[new TextEncoder().encode("time")]]);
      return line.Certificate.create({ certificate, rootKey: agent.rootKey!, canisterId: line.principal(canisterId), principal: { canisterId: line.principal(canisterId) } } as never);
    };
    // A genuine signature of the subnet over an earlier state (the first certificate this file saw).
    const earlier = firstCertificate();
    for (const [what, tamper] of [
      ["one bit flipped", (c: Uint8Array) => withFlippedSignature(c)],
      ["another height's signature", (c: Uint8Array) => withSignature(c, signatureOf(earlier))],
    ] as const) {
      gateway.rewrite = (request, response) => (request.path.endsWith("/read_state") ? rewriteCborBody(response, (body) => ({ ...body, certificate: tamper(body.certificate as Uint8Array) })) : response);
      try {
        const error = await t.throwsAsync(readTime(), undefined, what);
        t.regex(error?.message ?? "", what === "one bit flipped" ? /Signature verification failed/ : /Invalid signature/, what);
      } finally {
        gateway.rewrite = undefined;
      }
    }
    await t.notThrowsAsync(readTime(), "the untampered certificate verifies");
  });

  test.serial(`item 6: ${line.name} refuses a query response whose node signature has one bit flipped`, async (t) => {
    const { counter } = deployed.get(line.name)!;
    gateway.rewrite = (request, response) =>
      request.path.endsWith("/query")
        ? rewriteCborBody(response, (body) => {
            const [first] = body.signatures as Record<string, unknown>[];
            return { ...body, signatures: [{ ...first, signature: flipBit(first!.signature as Uint8Array, 9) }] } as never;
          })
        : response;
    try {
      const error = await t.throwsAsync(counter.get());
      t.regex(error?.message ?? "", /Query signature verification failed/);
    } finally {
      gateway.rewrite = undefined;
    }
    t.true((await counter.get()) >= 1n);
  });
}

test.serial("item 6: read_state paths as the IC's verify_paths allows them (private metadata for controllers, 403; another canister's, 400; unknown, 404); the subnet endpoint serves the root key, node keys and ranges", async (t) => {
  const line = LINES[1]!;
  const { agent, canisterId } = deployed.get(line.name)!;
  const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
  const id = Principal6.fromText(canisterId).toUint8Array();
  // Motoko puts the service's Candid into an icp:private custom section: the controller reads it.
  const status = await agent6.CanisterStatus.request({ canisterId: Principal6.fromText(canisterId), agent, paths: ["candid"] });
  t.regex(String(status.get("candid")), /inc : \(\) -> \(nat\)|inc: \(\) -> \(nat\)/);
  const stranger = await agentFor(line, 6);
  const refusals: [Uint8Array[], RegExp][] = [
    [[utf8("canister"), id, utf8("metadata"), utf8("candid:service")], /403/],
    [[utf8("canister"), Principal6.fromText("aaaaa-aa").toUint8Array(), utf8("controllers")], /400/],
    [[utf8("canister"), id, utf8("certified_data")], /404/],
    [[utf8("no_such_branch")], /404/],
  ];
  for (const [path, status] of refusals) {
    const error = await t.throwsAsync(stranger.readState({ canisterId }, { paths: [path] }));
    t.regex(error?.message ?? "", status, path.map((l) => new TextDecoder().decode(l)).join("/"));
  }

  const subnetId = Principal6.fromUint8Array(subnet.facts.subnetId);
  const before = gateway.log.length;
  const facts = await agent6.SubnetStatus.request({ subnetId, agent, paths: ["publicKey", "nodeKeys", "canisterRanges"] });
  t.true(pathsSince(before).every((p) => p.startsWith(`POST /api/v3/subnet/${subnetId.toText()}/read_state 200`)), pathsSince(before).join("\n"));
  t.deepEqual(new Uint8Array(facts.get("publicKey") as Uint8Array), subnet.facts.rootKeyDer);
  const nodeKeys = facts.get("nodeKeys") as Map<string, Uint8Array>;
  t.deepEqual([...nodeKeys.keys()].sort(), subnet.facts.nodes.map((n) => Principal6.fromUint8Array(n.nodeId).toText()).sort());
  t.truthy(facts.get("canisterRanges"));
});

test.serial("item 6: an envelope whose ingress_expiry has passed gets 400 'Invalid request expiry: …'; a call to an unknown canister is a non-replicated rejection (code 3); GET /api/v2/status has the root key and health", async (t) => {
  const { canisterId } = deployed.get(LINES[0]!.name)!;
  const user = userIdentity("ed25519", new Uint8Array(32).fill(4));
  const nowNs = BigInt(subnet.subnet.loop.now()) * 1000n;
  const envelope = user.sign({ request_type: "call", canister_id: Principal3.fromText(canisterId).toUint8Array(), method_name: "inc", arg: IDL3.encode([], []), ingress_expiry: nowNs - 1_000_000_000n });
  for (const version of [2, 3, 4]) {
    const response = await gateway.handle({ method: "POST", path: `/api/v${version}/canister/${canisterId}/call`, body: encodeEnvelope(envelope) });
    t.is(response.status, 400);
    t.true(text(response.body).startsWith("Invalid request expiry: "), text(response.body));
  }

  // A call to a canister the subnet does not host: a non-replicated rejection (reject code 3,
  // IC0301) — with `status` on v3/v4, without on v2 (dfinity/ic call_sync.rs, CborUserError).
  const missing = "ryjl3-tyaaa-aaaaa-aaaba-cai";
  const toMissing = user.sign({ request_type: "call", canister_id: Principal3.fromText(missing).toUint8Array(), method_name: "inc", arg: IDL3.encode([], []), ingress_expiry: nowNs + 60_000_000_000n });
  for (const version of [2, 3]) {
    const response = await gateway.handle({ method: "POST", path: `/api/v${version}/canister/${missing}/call`, body: encodeEnvelope(toMissing) });
    t.is(response.status, 200);
    const body = agent6.Cbor.decode<Record<string, unknown>>(response.body);
    t.deepEqual({ ...body, reject_message: undefined }, { ...(version === 2 ? {} : { status: "non_replicated_rejection" }), reject_code: 3, error_code: "IC0301", reject_message: undefined });
    t.is(body.reject_message, `Canister ${missing} not found`);
  }

  const status = await gateway.handle({ method: "GET", path: "/api/v2/status", body: new Uint8Array() });
  const decoded = agent6.Cbor.decode<Record<string, unknown>>(status.body);
  t.deepEqual(new Uint8Array(decoded.root_key as Uint8Array), subnet.facts.rootKeyDer);
  t.is(decoded.replica_health_status, "healthy");
  t.is(subnet.facts.rootKeyDer.length, 133);
  t.is(subnetIdText(subnet.facts) as string, Principal6.selfAuthenticating(subnet.facts.rootKeyDer).toText(), "the subnet id the agent derives from the root key");
  t.is((await gateway.handle({ method: "GET", path: "/api/v9/status", body: new Uint8Array() })).status, 404);
  t.is((await gateway.handle({ method: "GET", path: `/api/v3/canister/${canisterId}/call`, body: new Uint8Array() })).status, 405);
});

test.serial("item 6: with the serving replica crashed, the agent keeps using the subnet through another replica", async (t) => {
  const { counter } = deployed.get(LINES[1]!.name)!;
  const value = await counter.get();
  gateway.target = replicaId(0);
  subnet.subnet.crash(replicaId(0));
  const before = gateway.log.length;
  t.is(await counter.inc(), value + 1n);
  t.is(await counter.get(), value + 1n);
  t.true(gateway.log.slice(before).every((x) => x.replica === replicaId(1)), "replica 1 served every request");
});
