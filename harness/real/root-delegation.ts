// The root subnet's delegation to a non-root subnet (issue 12, `subnetlab up --nodes 4,7`;
// interface spec "Delegation"): agents trust only the root key, so a certificate of the second
// subnet carries `{subnet_id, certificate}` where the certificate is the root subnet's, revealing
// /subnet/<id>/public_key and /subnet/<id>/canister_ranges.
//
// As on the IC (the replica's NNS delegation manager), each replica of a non-root subnet obtains
// it itself: an anonymous read_state of those two paths on /api/v2/subnet/<root id>/read_state of a
// root replica, verified with the root key and checked to name this subnet's own key and ranges,
// retried until it works and refreshed periodically so its /time stays within the agents' 30-day
// window. The supervisor stays out of the trust path (it only tells the replica where root
// replicas listen), a restarted replica needs nothing from it but those URLs, and the replica
// serves nothing certified until it holds a delegation (health `waiting_for_root_delegation`).
import { encodeWithSelfDescribedTag } from "@dfinity/cbor";
import { decode } from "@dfinity/cbor";
import { Principal } from "@dfinity/principal";
import { decodeCanisterRanges, verifyCertificate, type CanisterRange, type Delegation } from "../crypto/certificate.ts";
import { lookupPath } from "../crypto/hash-tree.ts";

/** The anonymous principal's bytes (read_state by the anonymous sender needs no signature). */
const ANONYMOUS = new Uint8Array([4]);
/** The IC refreshes its NNS delegation every 10 minutes. */
export const DELEGATION_REFRESH_MS = 10 * 60_000;
/** While no delegation is held: how long to wait between rounds over the root replicas. */
export const DELEGATION_RETRY_MS = 500;
// Generous: a root replica on a loaded machine may take seconds to answer.
const FETCH_TIMEOUT_MS = 60_000;

export interface DelegationTarget {
  /** The root subnet's id (raw bytes) and 133-byte DER key. */
  readonly rootSubnetId: Uint8Array;
  readonly rootKeyDer: Uint8Array;
  /** This subnet's id, its own certification key (DER) and canister ranges, as the delegation must state them. */
  readonly subnetId: Uint8Array;
  readonly publicKeyDer: Uint8Array;
  readonly canisterRanges: readonly CanisterRange[];
}

export type DelegationResult = { readonly ok: true; readonly delegation: Delegation; readonly timeNs: bigint } | { readonly ok: false; readonly error: string };

/** The read_state request a replica sends a root replica (CBOR, tag 55799, anonymous: no signature). */
export function delegationRequest(target: DelegationTarget, nowNs: bigint): Uint8Array {
  return encodeWithSelfDescribedTag({
    content: {
      request_type: "read_state",
      sender: ANONYMOUS,
      paths: [
        [new TextEncoder().encode("subnet"), target.subnetId, new TextEncoder().encode("public_key")],
        [new TextEncoder().encode("subnet"), target.subnetId, new TextEncoder().encode("canister_ranges")],
      ],
      ingress_expiry: nowNs + 3n * 60_000_000_000n,
    },
  });
}

/**
 * Checks a root replica's read_state response body as a delegation to `target`: a certificate
 * the root key signed, without a delegation of its own, stating this subnet's key and ranges.
 */
export function delegationOfResponse(target: DelegationTarget, body: Uint8Array, nowNs: bigint): DelegationResult {
  let certificate: unknown;
  try {
    certificate = (decode(body) as Record<string, unknown> | null)?.certificate;
  } catch (e) {
    return { ok: false, error: `the response is not CBOR: ${(e as Error).message}` };
  }
  if (!(certificate instanceof Uint8Array)) return { ok: false, error: "the response holds no certificate" };
  const verified = verifyCertificate(certificate, target.rootKeyDer, { nowNs });
  if (!verified.ok) return { ok: false, error: `the root subnet's certificate does not verify: ${verified.failure}: ${verified.detail}` };
  if (verified.certificate.delegation !== undefined) return { ok: false, error: "the root subnet's certificate carries a delegation itself (not a root replica?)" };
  const key = lookupPath(["subnet", target.subnetId, "public_key"], verified.certificate.tree);
  if (key.status !== "found") return { ok: false, error: `/subnet/${Principal.fromUint8Array(target.subnetId).toText()}/public_key is ${key.status} in the root subnet's state` };
  if (!sameBytes(key.value, target.publicKeyDer)) return { ok: false, error: "the root subnet states another public key for this subnet" };
  const ranges = lookupPath(["subnet", target.subnetId, "canister_ranges"], verified.certificate.tree);
  const decoded = ranges.status === "found" ? decodeCanisterRanges(ranges.value) : undefined;
  if (decoded === undefined) return { ok: false, error: `/subnet/<id>/canister_ranges is ${ranges.status === "found" ? "not CBOR ranges" : ranges.status} in the root subnet's state` };
  const same = decoded.length === target.canisterRanges.length && decoded.every(([lo, hi], i) => sameBytes(lo, target.canisterRanges[i]![0]) && sameBytes(hi, target.canisterRanges[i]![1]));
  if (!same) return { ok: false, error: "the root subnet states other canister ranges for this subnet" };
  return { ok: true, delegation: { subnetId: target.subnetId, certificate }, timeNs: verified.timeNs };
}

/** Asks one root replica (`url` = its HTTP endpoint) for the delegation. */
export async function fetchDelegation(target: DelegationTarget, url: string, nowNs: bigint): Promise<DelegationResult> {
  const endpoint = `${url.replace(/\/+$/, "")}/api/v2/subnet/${Principal.fromUint8Array(target.rootSubnetId).toText()}/read_state`;
  let response: Response;
  try {
    response = await fetch(endpoint, { method: "POST", headers: { "content-type": "application/cbor" }, body: delegationRequest(target, nowNs), signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (e) {
    return { ok: false, error: `${endpoint}: ${(e as Error).message}` };
  }
  const body = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) return { ok: false, error: `${endpoint}: HTTP ${response.status}: ${new TextDecoder().decode(body).slice(0, 200)}` };
  const result = delegationOfResponse(target, body, nowNs);
  return result.ok ? result : { ok: false, error: `${endpoint}: ${result.error}` };
}

export interface RootDelegationOptions {
  readonly target: DelegationTarget;
  /** HTTP endpoints of the root subnet's replicas (read at every round: the supervisor may update them). */
  readonly rootUrls: () => readonly string[];
  readonly nowNs: () => bigint;
  readonly log: (line: string) => void;
  readonly refreshMs?: number;
  readonly retryMs?: number;
}

/** Obtains the delegation, keeps the newest one, refreshes it; `current()` is what certificates carry. */
export class RootDelegation {
  private delegation: Delegation | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private next = 0;
  private waiters: (() => void)[] = [];
  private lastError = "";

  constructor(private readonly options: RootDelegationOptions) {}

  current(): Delegation | undefined {
    return this.delegation;
  }

  start(): void {
    void this.round();
  }

  /** Resolves once a delegation is held. */
  obtained(): Promise<void> {
    return this.delegation !== undefined ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One round over the root replicas, starting after the last one that answered (or failed). */
  private async round(): Promise<void> {
    const urls = this.options.rootUrls();
    let obtained = false;
    for (let k = 0; k < urls.length && !obtained && !this.stopped; k++) {
      const url = urls[(this.next + k) % urls.length] as string;
      const result = await fetchDelegation(this.options.target, url, this.options.nowNs());
      if (result.ok) {
        obtained = true;
        this.next = (this.next + k) % urls.length;
        this.adopt(result.delegation);
      } else if (result.error !== this.lastError) {
        this.lastError = result.error;
        this.options.log(`root delegation: ${result.error}; trying again`);
      }
    }
    if (this.stopped) return;
    if (!obtained) this.next++;
    const wait = obtained ? (this.options.refreshMs ?? DELEGATION_REFRESH_MS) : (this.options.retryMs ?? DELEGATION_RETRY_MS);
    this.timer = setTimeout(() => void this.round(), wait);
  }

  private adopt(delegation: Delegation): void {
    const first = this.delegation === undefined;
    this.delegation = delegation;
    this.lastError = "";
    if (first) this.options.log("root delegation obtained");
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
