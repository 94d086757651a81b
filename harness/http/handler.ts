// One replica's IC HTTP interface (interface spec "HTTPS Interface"; research/agent-compat.md):
//
//   GET  /api/v2/status                                status, root key, health
//   POST /api/v2/canister/<ecid>/call                  asynchronous call: 202, then poll read_state
//   POST /api/v{3,4}/canister/<ecid>/call              synchronous call: 200 + certificate once the
//                                                      call is answered and certified, else 202
//   POST /api/v{2,3}/canister/<ecid>/query             signed query response
//   POST /api/v{2,3}/canister/<ecid>/read_state        certificate over the requested paths
//   POST /api/v{2,3}/subnet/<subnet id>/read_state     certificate over /time and /subnet paths
//
// Envelopes are checked by harness/ingress (envelope.ts for calls, read-requests.ts for queries
// and read_state) and refused with the IC's HTTP statuses and plain-text reasons; a call the
// replica's ingress filter refuses is a non-replicated rejection (200, CBOR). An admitted call
// goes to the replica's `onIngress`, which gossips it to the block makers.
import type { CborValue } from "@dfinity/cbor";
import { Principal } from "@dfinity/principal";
import { hexToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { ingressFromEnvelope } from "../consensus/ingress.ts";
import { decodeCertificate, encodeCertificate } from "../crypto/certificate.ts";
import { lookupPath } from "../crypto/hash-tree.ts";
import { RejectCode, type CanisterId, type Response } from "../execution/interfaces.ts";
import { validateQueryEnvelope, validateReadStateEnvelope } from "../ingress/read-requests.ts";
import { canisterNotFound, errorCodeOfResponse } from "../execution/reject-codes.ts";
import { isTerminal, type ReplicaStatus } from "../replica/interfaces.ts";
import type { HashHex } from "../types.ts";
import type { HttpHandler, HttpNodeDeps, HttpRequest, HttpResponse } from "./interfaces.ts";
import { signedQueryBody, type QueryOutcome } from "./query-response.ts";
import { verifyCanisterReadStatePaths, verifySubnetReadStatePaths } from "./read-state-paths.ts";
import { ACCEPTED, cborResponse, rejectionResponse, textResponse } from "./responses.ts";

/**
 * How long a synchronous call waits for its certified answer before it answers 202 (dfinity/ic
 * rs/config http_handler.rs ingress_message_certificate_timeout_seconds = 10).
 */
export const SYNC_CALL_TIMEOUT_NS = 10_000_000_000n;
/**
 * A replica whose certified height lags its finalized height by more than this is not healthy
 * (ic_consensus_utils ACCEPTABLE_FINALIZATION_CERTIFICATION_GAP = 3: it would serve stale state).
 */
export const HEALTHY_CERTIFICATION_GAP_HEIGHTS = 3;
/** The spec's interface version this handler follows (the IC reports it as ic_api_version). */
export const IC_API_VERSION = "0.18.0";

export type ReplicaHealth = "healthy" | "waiting_for_certified_state" | "certified_state_behind" | "waiting_for_root_delegation";

/** The IC's ReplicaHealthStatus as far as a replica's status tells it. */
export function healthOf(status: ReplicaStatus): ReplicaHealth {
  if (status.certifiedHeight === undefined) return "waiting_for_certified_state";
  return status.finalizedHeight - status.certifiedHeight > HEALTHY_CERTIFICATION_GAP_HEIGHTS ? "certified_state_behind" : "healthy";
}

/** A non-root subnet's replica serves nothing certified before it holds the root's delegation (the IC's WaitingForRootDelegation). */
function nodeHealthOf(deps: HttpNodeDeps): ReplicaHealth {
  if (deps.delegated !== undefined && deps.delegated.delegation() === undefined) return "waiting_for_root_delegation";
  return healthOf(deps.replica.status());
}

type Endpoint = "call" | "query" | "read_state";
interface Route {
  readonly version: 2 | 3 | 4;
  readonly target: "canister" | "subnet";
  readonly id: string;
  readonly endpoint: Endpoint;
}

const ROUTE = /^\/api\/v([234])\/(canister|subnet)\/([^/]+)\/(call|query|read_state)$/;

/** Which (version, target, endpoint) combinations exist (agent-compat §1). */
function served(route: Route): boolean {
  if (route.endpoint === "call") return route.target === "canister";
  if (route.endpoint === "query") return route.target === "canister" && route.version <= 3;
  return route.version <= 3;
}

export function httpHandler(deps: HttpNodeDeps): HttpHandler {
  return async (request) => {
    const path = request.path.split("?")[0] ?? "";
    if (path === "/api/v2/status") return request.method === "GET" ? statusResponse(deps) : methodNotAllowed("GET");
    const match = ROUTE.exec(path);
    const route: Route | undefined =
      match === null ? undefined : { version: Number(match[1]) as 2 | 3 | 4, target: match[2] as "canister" | "subnet", id: decodeURIComponent(match[3] ?? ""), endpoint: match[4] as Endpoint };
    if (route === undefined || !served(route)) return textResponse(404, `Not found: ${path} is not an endpoint of the IC HTTP interface.`);
    if (request.method !== "POST") return methodNotAllowed("POST");
    const id = parsePrincipal(route.id);
    if (id === undefined) return textResponse(400, `Could not parse the ${route.target} id "${route.id}" in the request URL: it is not a principal.`);
    const unhealthy = unhealthyResponse(deps);
    if (unhealthy !== undefined) return unhealthy;
    switch (route.endpoint) {
      case "call":
        return call(deps, route.version, route.id, request);
      case "query":
        return query(deps, route.id, request);
      case "read_state":
        return route.target === "canister" ? canisterReadState(deps, id, request) : subnetReadState(deps, id, request);
    }
  };
}

function parsePrincipal(text: string): Uint8Array | undefined {
  try {
    return Principal.fromText(text).toUint8Array();
  } catch {
    return undefined;
  }
}

function methodNotAllowed(allowed: string): HttpResponse {
  return { ...textResponse(405, `Method not allowed: use ${allowed}.`), headers: { "content-type": "text/plain; charset=utf-8", allow: allowed } };
}

// ---- status ------------------------------------------------------------------------------------

/** No floats and no tag but 55799: the agent's CBOR decoder refuses them (agent-compat §8). */
function statusResponse(deps: HttpNodeDeps): HttpResponse {
  const status = deps.replica.status();
  return cborResponse(200, {
    ic_api_version: IC_API_VERSION,
    impl_version: deps.implVersion ?? "subnetlab",
    replica_health_status: nodeHealthOf(deps),
    certified_height: BigInt(status.certifiedHeight ?? 0),
    root_key: deps.delegated?.rootKeyDer ?? deps.facts.rootKeyDer,
  });
}

/** The IC serves calls, queries and read_state only when healthy (503 otherwise). */
function unhealthyResponse(deps: HttpNodeDeps): HttpResponse | undefined {
  const health = nodeHealthOf(deps);
  if (health === "healthy") return undefined;
  return textResponse(503, `Replica is unhealthy: ${health}. Check /api/v2/status for more information.`);
}

// ---- calls -------------------------------------------------------------------------------------

async function call(deps: HttpNodeDeps, version: 2 | 3 | 4, effectiveCanisterId: string, request: HttpRequest): Promise<HttpResponse> {
  const admitted = ingressFromEnvelope(request.body, deps.nowNs(), effectiveCanisterId);
  if (!admitted.ok) return textResponse(admitted.httpStatus, admitted.message);
  const message = admitted.message;
  const submitted = deps.replica.onIngress(message);
  if (!submitted.accepted) {
    if ("rejection" in submitted) return rejectionResponse(submitted.rejection, version !== 2);
    if (submitted.reason === "pool-full") return textResponse(503, "Service is overloaded, try again later.");
    // A duplicate is already on its way (in the pool or the history): answer as for the first.
    if (submitted.reason !== "duplicate") return textResponse(400, `The replica refused the call ${message.id}: ${submitted.reason}.`);
  }
  if (version === 2) return ACCEPTED;
  const done = (): boolean => answeredAndCertified(deps, message.id);
  if (!done()) await deps.waitForCall(done, SYNC_CALL_TIMEOUT_NS);
  const certificate = certificateOf(deps, [["request_status", hexToBytes(message.id)]]);
  // 200 only with a final status: @dfinity/agent 3.x does not poll after a 200 (agent-compat §2).
  if (certificate === undefined || !certifiesAnswer(certificate, message.id)) return ACCEPTED;
  return cborResponse(200, { status: "replied", certificate });
}

/** The replica executed an answer to the call, at a height it holds a certification for. */
function answeredAndCertified(deps: HttpNodeDeps, id: HashHex): boolean {
  const status = deps.replica.ingressStatus(id);
  if (status === undefined || !isTerminal(status) || status.status === "done") return false;
  const certified = deps.replica.status().certifiedHeight;
  return certified !== undefined && certified >= status.height;
}

function certifiesAnswer(certificate: Uint8Array, id: HashHex): boolean {
  const decoded = decodeCertificate(certificate);
  if (decoded === undefined) return false;
  const found = lookupPath(["request_status", hexToBytes(id), "status"], decoded.tree);
  if (found.status !== "found") return false;
  const status = new TextDecoder().decode(found.value);
  return status === "replied" || status === "rejected";
}

// ---- queries -----------------------------------------------------------------------------------

async function query(deps: HttpNodeDeps, effectiveCanisterId: string, request: HttpRequest): Promise<HttpResponse> {
  const now = deps.nowNs();
  const checked = validateQueryEnvelope(request.body, effectiveCanisterId, { nowNs: now });
  if (!checked.ok) return textResponse(checked.rejection.httpStatus, checked.rejection.message);
  const q = checked.request;
  const response = deps.replica.query(q.canisterId, q.method, q.arg, q.sender);
  const body = signedQueryBody(queryOutcome(response, q.canisterId), q.requestId, now, deps.signer);
  return cborResponse(200, body);
}

function queryOutcome(response: Response | undefined, canister: CanisterId): QueryOutcome {
  // A subnet that runs no canisters (the key-value placeholder) holds none to query.
  if (response === undefined) {
    const notFound = canisterNotFound(canister);
    return { kind: "reject", rejectCode: RejectCode.DestinationInvalid, message: notFound.description, errorCode: notFound.code };
  }
  if (response.kind === "reply") return { kind: "reply", data: response.data };
  return { kind: "reject", rejectCode: response.code, message: response.message, errorCode: errorCodeOfResponse(response) };
}

// ---- read_state ----------------------------------------------------------------------------------

async function canisterReadState(deps: HttpNodeDeps, effectiveCanisterId: Uint8Array, request: HttpRequest): Promise<HttpResponse> {
  const checked = validateReadStateEnvelope(request.body, { nowNs: deps.nowNs() });
  if (!checked.ok) return textResponse(checked.rejection.httpStatus, checked.rejection.message);
  const { paths, sender } = checked.request;
  const verdict = verifyCanisterReadStatePaths(paths, { sender, effectiveCanisterId, reads: deps.replica });
  if (!verdict.ok) return textResponse(verdict.status, verdict.message);
  return certificateResponse(deps, paths);
}

async function subnetReadState(deps: HttpNodeDeps, effectiveSubnetId: Uint8Array, request: HttpRequest): Promise<HttpResponse> {
  const checked = validateReadStateEnvelope(request.body, { nowNs: deps.nowNs() });
  if (!checked.ok) return textResponse(checked.rejection.httpStatus, checked.rejection.message);
  const verdict = verifySubnetReadStatePaths(checked.request.paths, effectiveSubnetId);
  if (!verdict.ok) return textResponse(verdict.status, verdict.message);
  return certificateResponse(deps, checked.request.paths);
}

/** The replica's certificate over `paths`, with the root's delegation when this subnet is not the root of trust. */
function certificateOf(deps: HttpNodeDeps, paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined {
  const bytes = deps.replica.readState(paths);
  const delegation = deps.delegated?.delegation();
  if (bytes === undefined || deps.delegated === undefined) return bytes;
  // Health refuses every certified endpoint until a delegation is held, and it is never dropped.
  if (delegation === undefined) return undefined;
  const certificate = decodeCertificate(bytes);
  assert(certificate !== undefined, "the replica's own certificate does not decode");
  return encodeCertificate({ ...certificate, delegation });
}

function certificateResponse(deps: HttpNodeDeps, paths: readonly (readonly Uint8Array[])[]): HttpResponse {
  const certificate = certificateOf(deps, paths);
  if (certificate === undefined) return textResponse(503, "Certified state is not available yet. Please try again...");
  const body: Record<string, CborValue> = { certificate };
  return cborResponse(200, body);
}

/** For tests and logs: the text of a plain-text response. */
export const responseText = (response: HttpResponse): string => new TextDecoder().decode(response.body);
