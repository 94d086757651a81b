// The IC HTTP interface as bytes in, bytes out: one replica's endpoint is a function from an HTTP
// request (method, path, body) to a response (status, headers, body), so the same handler mounts on
// a real socket (real mode) and on an in-process `fetch` over a simulated subnet (sim-gateway.ts).
// Everything it needs from outside comes in through `HttpNodeDeps`.
import type { Delegation } from "../crypto/certificate.ts";
import type { ReplicaApi } from "../replica/interfaces.ts";
import type { SubnetFacts } from "./facts.ts";

export interface HttpRequest {
  /** Upper case: GET, POST, … */
  readonly method: string;
  /** The request target's path, e.g. `/api/v3/canister/<ecid>/call` (a query string is ignored). */
  readonly path: string;
  readonly body: Uint8Array;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** Signs query responses as this node: Ed25519 over ds("ic-response") ‖ the response's hash. */
export interface QueryResponseSigner {
  /** This node's principal, as listed under /subnet/<id>/node. */
  readonly nodeId: Uint8Array;
  /** 64-byte Ed25519 signature over "\x0Bic-response" ‖ `responseHash`. */
  sign(responseHash: Uint8Array): Uint8Array;
}

export interface HttpNodeDeps {
  /** The replica this endpoint serves (its reads, and its `onIngress` for calls). */
  readonly replica: ReplicaApi;
  readonly facts: SubnetFacts;
  readonly signer: QueryResponseSigner;
  /**
   * The replica's clock in ns since the Unix epoch, for expiry checks and query timestamps: the
   * wall clock in real mode, the virtual clock in simulation.
   */
  nowNs(): bigint;
  /**
   * After a synchronous call (v3/v4) was admitted: return once `done()` holds or `timeoutNs` of
   * the replica's clock have passed, whichever is first. Real mode waits on the wall clock; a
   * simulation runs its event loop forward (virtual time), which is what makes the call finish.
   */
  waitForCall(done: () => boolean, timeoutNs: bigint): Promise<void> | void;
  /**
   * A subnet that is not the root of trust (the second subnet of `subnetlab up --nodes 4,7`):
   * status hands out the root subnet's key, and every certificate carries the root subnet's
   * delegation to this subnet. Absent: this subnet is its own root of trust.
   */
  readonly delegated?: DelegatedTrust;
  /** `impl_version` in /api/v2/status (default "subnetlab"). */
  readonly implVersion?: string;
}

export type HttpHandler = (request: HttpRequest) => Promise<HttpResponse>;

/** How a non-root subnet's replica proves its key to agents that trust only the root key. */
export interface DelegatedTrust {
  /** The root subnet's 133-byte DER key (what /api/v2/status hands out as root_key). */
  readonly rootKeyDer: Uint8Array;
  /** The root subnet's current delegation to this subnet; undefined until one was obtained. */
  delegation(): Delegation | undefined;
}
