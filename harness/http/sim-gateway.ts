// The IC HTTP interface mounted on a simulated subnet as an in-process `fetch`, so an official agent
// (`HttpAgent.create({ host, fetch, shouldFetchRootKey: true })`) drives a deterministic,
// fault-injected run: each request goes to one live replica's handler (handler.ts, the same one
// real mode serves over sockets), and nothing happens between requests — the simulation only moves
// while a request waits:
//
// - a synchronous call (v3/v4) runs the event loop until the call is answered and certified, or
//   for the spec's 10 s of virtual time (then 202);
// - a read_state asking for a request's status (the agent's polling after a 202) first runs the
//   loop the same way, standing in for the time that passes between polls.
//
// Time: the agent reads its wall clock, the subnet its virtual clock; sim-subnet.ts explains how the
// two are kept close enough for the agent's expiry and freshness checks. The same requests in the
// same order give the same run; the agent's own nonces and expiries come from its randomness and
// clock, so a run driven by an agent is reproducible from the requests it sent, not from a seed.
import { Principal } from "@dfinity/principal";
import { decode } from "@dfinity/cbor";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { BlsSubnetKeys } from "../crypto/bls-backend.ts";
import { isTerminal } from "../replica/interfaces.ts";
import type { Replica } from "../replica/replica.ts";
import type { SimSubnet } from "../replica/subnet.ts";
import { replicaId, timeUs, type HashHex, type ReplicaId } from "../types.ts";
import { httpHandler, SYNC_CALL_TIMEOUT_NS } from "./handler.ts";
import type { HttpNodeDeps, HttpRequest, HttpResponse } from "./interfaces.ts";
import { querySignerOf } from "./query-response.ts";
import { textResponse } from "./responses.ts";
import type { AgentSubnet } from "./sim-subnet.ts";

export interface SimGatewayOptions {
  /** The host the agent is given; any URL works, nothing is resolved (default http://subnetlab.sim). */
  readonly host?: string;
  readonly implVersion?: string;
  /**
   * Rewrites a response before the client sees it — fault injection on the wire (a flipped
   * certificate bit, a forged query signature) that the agent must catch.
   */
  readonly rewrite?: (request: HttpRequest, response: HttpResponse, served: ReplicaId) => HttpResponse;
}

/** One request as the gateway saw it (tests, debugging). */
export interface GatewayExchange {
  readonly request: HttpRequest;
  readonly response: HttpResponse;
  readonly replica: ReplicaId | undefined;
}

export class SimHttpGateway {
  readonly host: string;
  /** The replica that serves requests; when it is down, the next live one after it serves. */
  target: ReplicaId = replicaId(0);
  /** Every exchange so far, oldest first. */
  readonly log: GatewayExchange[] = [];
  /** The response rewriter in force (SimGatewayOptions.rewrite; may be changed between requests). */
  rewrite: SimGatewayOptions["rewrite"];
  private readonly subnet: SimSubnet;

  constructor(
    private readonly agentSubnet: AgentSubnet,
    private readonly options: SimGatewayOptions = {},
  ) {
    this.subnet = agentSubnet.subnet;
    this.host = options.host ?? "http://subnetlab.sim";
    this.rewrite = options.rewrite;
  }

  /** The replica that serves the next request: `target`, or the next live one after it. */
  servingReplica(): ReplicaId | undefined {
    for (let k = 0; k < this.subnet.n; k++) {
      const id = replicaId((this.target + k) % this.subnet.n);
      if (this.subnet.isUp(id)) return id;
    }
    return undefined;
  }

  async handle(request: HttpRequest): Promise<HttpResponse> {
    const id = this.servingReplica();
    if (id === undefined) return this.record(request, textResponse(503, "No replica of the subnet is up."), undefined);
    const replica = this.subnet.replica(id) as Replica;
    const deps = this.depsFor(id, replica);
    this.advanceForPoll(request, replica);
    const response = await httpHandler(deps)(request);
    return this.record(request, this.rewrite?.(request, response, id) ?? response, id);
  }

  /** A `fetch` for the agent: requests are answered in-process by `handle`. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = await toHttpRequest(input, init);
    const response = await this.handle(request);
    const body = response.body.length === 0 ? null : response.body;
    return new Response(body, { status: response.status, headers: response.headers });
  };

  private depsFor(id: ReplicaId, replica: Replica): HttpNodeDeps {
    const keys = this.subnet.keys as BlsSubnetKeys;
    const node = this.agentSubnet.facts.nodes[id];
    if (node === undefined) throw new Error(`replica ${id} is not in the subnet's facts`);
    return {
      replica,
      facts: this.agentSubnet.facts,
      signer: querySignerOf(keys.signerFor(id), node.nodeId),
      nowNs: () => BigInt(this.subnet.loop.now()) * 1000n,
      waitForCall: (done, timeoutNs) => {
        this.subnet.run(timeUs(this.subnet.loop.now() + Number(timeoutNs / 1000n)), done);
      },
      ...(this.options.implVersion === undefined ? {} : { implVersion: this.options.implVersion }),
    };
  }

  /**
   * The agent polls a request's status after a 202 with real pauses in between; here time moves
   * only when a request waits, so a status poll waits (as a synchronous call would) for the answer.
   */
  private advanceForPoll(request: HttpRequest, replica: Replica): void {
    if (request.method !== "POST" || !request.path.endsWith("/read_state")) return;
    const id = requestStatusIdOf(request.body);
    if (id === undefined) return;
    const answered = (): boolean => {
      const status = replica.ingressStatus(id);
      const certified = replica.status().certifiedHeight;
      return status !== undefined && isTerminal(status) && certified !== undefined && certified >= status.height;
    };
    if (!answered()) this.subnet.run(timeUs(this.subnet.loop.now() + Number(SYNC_CALL_TIMEOUT_NS / 1000n)), answered);
  }

  private record(request: HttpRequest, response: HttpResponse, replica: ReplicaId | undefined): HttpResponse {
    this.log.push({ request, response, replica });
    return response;
  }
}

/** The request id a read_state body asks about (`request_status/<id>/…`), if any; no checks here. */
function requestStatusIdOf(body: Uint8Array): HashHex | undefined {
  try {
    const envelope = decode(new Uint8Array(body)) as { content?: { paths?: unknown } };
    const paths = envelope.content?.paths;
    if (!Array.isArray(paths)) return undefined;
    for (const path of paths as unknown[]) {
      if (!Array.isArray(path) || !(path[0] instanceof Uint8Array) || !(path[1] instanceof Uint8Array)) continue;
      if (new TextDecoder().decode(path[0]) === "request_status" && path[1].length === 32) return bytesToHex(path[1]) as HashHex;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

async function toHttpRequest(input: string | URL | Request, init?: RequestInit): Promise<HttpRequest> {
  const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
  const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
  const raw = init?.body ?? (input instanceof Request ? await input.arrayBuffer() : undefined);
  return { method, path: url.pathname, body: await bodyBytes(raw) };
}

async function bodyBytes(body: RequestInit["body"] | ArrayBuffer): Promise<Uint8Array> {
  if (body === null || body === undefined) return new Uint8Array();
  if (body instanceof Uint8Array) return new Uint8Array(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** The principal text of a replica's node id (for logs). */
export const nodeIdText = (subnet: AgentSubnet, id: ReplicaId): string => Principal.fromUint8Array(subnet.facts.nodes[id]?.nodeId ?? new Uint8Array()).toText();
