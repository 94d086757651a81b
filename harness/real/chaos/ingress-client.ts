// A minimal IC client for `run --real` (issue 12 item 9): signed update calls built with
// harness/ingress's envelope builders (the bytes the official agent sends; agent-compat.md),
// posted to a replica's /api/v3 call endpoint, and answered only by a certificate that verifies
// against the subnet's root key and names the request's status. The caller knows every request id
// it sent — the checkers need them (validity, liveness, acknowledged updates).
import { decode } from "@dfinity/cbor";
import { Principal } from "@dfinity/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import { verifyCertificate } from "../../crypto/certificate.ts";
import { lookupPath } from "../../crypto/hash-tree.ts";
import { requestIdHex } from "../../crypto/request-id.ts";
import { encodeEnvelope } from "../../ingress/envelope.ts";
import type { UserIdentity } from "../../ingress/identity.ts";

/** How far ahead calls expire (the IC allows 5 minutes; the agent uses 5 minutes minus a margin). */
const EXPIRY_AHEAD_NS = 4n * 60n * 1_000_000_000n;
/** A call's HTTP exchange may take the replica's 10 s wait plus a loaded machine's slack. */
const CALL_TIMEOUT_MS = 30_000;

export type CallOutcome =
  /** Certified `replied`, the certificate verified: the client holds an acknowledgement. */
  | { readonly kind: "replied"; readonly requestId: string; readonly reply: Uint8Array }
  /** Certified `rejected` (a canister or system reject). */
  | { readonly kind: "rejected"; readonly requestId: string; readonly code: number; readonly message: string }
  /** 202: accepted, not answered and certified within the replica's wait. */
  | { readonly kind: "accepted"; readonly requestId: string }
  /** Refused over HTTP (4xx/5xx) or with a certificate that did not verify. */
  | { readonly kind: "refused"; readonly requestId: string; readonly status: number; readonly text: string }
  /** No answer (connection refused or reset, timeout): the replica may be down. */
  | { readonly kind: "unreachable"; readonly requestId: string; readonly error: string };

export interface CallRequest {
  readonly canisterId: string;
  readonly method: string;
  readonly arg: Uint8Array;
  /** The URL's effective canister id (default: the canister itself). */
  readonly effectiveCanisterId?: string;
  /** Makes otherwise identical calls distinct requests. */
  readonly nonce: bigint;
}

export interface SignedCall {
  readonly requestId: string;
  readonly body: Uint8Array;
  readonly effectiveCanisterId: string;
}

export class IcClient {
  constructor(
    private readonly identity: UserIdentity,
    private readonly rootKeyDer: Uint8Array,
    /** Wall time in ns (expiry, certificate freshness). */
    private readonly nowNs: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
  ) {}

  /** The envelope of one call and its request id (known before it is sent). */
  sign(request: CallRequest): SignedCall {
    const nonce = new Uint8Array(8);
    new DataView(nonce.buffer).setBigUint64(0, request.nonce);
    const envelope = this.identity.sign({
      request_type: "call",
      canister_id: Principal.fromText(request.canisterId).toUint8Array(),
      method_name: request.method,
      arg: request.arg,
      ingress_expiry: this.nowNs() + EXPIRY_AHEAD_NS,
      nonce,
    });
    return { requestId: requestIdHex(envelope.content), body: encodeEnvelope(envelope), effectiveCanisterId: request.effectiveCanisterId ?? request.canisterId };
  }

  /** Posts a signed call to one replica (base URL `http://127.0.0.1:port`) and reads its certified answer. */
  async send(baseUrl: string, call: SignedCall): Promise<CallOutcome> {
    const requestId = call.requestId;
    let response: Response;
    try {
      response = await fetch(`${baseUrl}/api/v3/canister/${call.effectiveCanisterId}/call`, {
        method: "POST",
        headers: { "content-type": "application/cbor" },
        body: call.body,
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (error) {
      return { kind: "unreachable", requestId, error: (error as Error).message };
    }
    const bytes = new Uint8Array(await response.arrayBuffer().catch(() => new ArrayBuffer(0)));
    if (response.status === 202) return { kind: "accepted", requestId };
    if (response.status !== 200) return { kind: "refused", requestId, status: response.status, text: new TextDecoder().decode(bytes).slice(0, 300) };
    return this.readCertifiedAnswer(requestId, bytes);
  }

  async call(baseUrl: string, request: CallRequest): Promise<CallOutcome> {
    return await this.send(baseUrl, this.sign(request));
  }

  private readCertifiedAnswer(requestId: string, bytes: Uint8Array): CallOutcome {
    const refused = (text: string): CallOutcome => ({ kind: "refused", requestId, status: 200, text });
    let body: { status?: unknown; certificate?: unknown };
    try {
      body = decode(bytes) as typeof body;
    } catch (error) {
      return refused(`the 200 answer is not CBOR: ${(error as Error).message}`);
    }
    if (!(body.certificate instanceof Uint8Array)) return refused(`the 200 answer carries no certificate (status ${String(body.status)})`);
    const verified = verifyCertificate(body.certificate, this.rootKeyDer, { nowNs: this.nowNs() });
    if (!verified.ok) return refused(`certificate refused: ${verified.failure}: ${verified.detail}`);
    const tree = verified.certificate.tree;
    const field = (name: string): Uint8Array | undefined => {
      const found = lookupPath(["request_status", hexBytes(requestId), name], tree);
      return found.status === "found" ? found.value : undefined;
    };
    const status = field("status");
    const statusText = status === undefined ? "absent" : new TextDecoder().decode(status);
    if (statusText === "replied") {
      const reply = field("reply");
      return reply === undefined ? refused("certified replied without a reply") : { kind: "replied", requestId, reply };
    }
    if (statusText === "rejected") {
      const code = field("reject_code");
      return { kind: "rejected", requestId, code: code === undefined ? -1 : Number(leb128(code)), message: new TextDecoder().decode(field("reject_message") ?? new Uint8Array()) };
    }
    return refused(`certified status ${statusText}`);
  }
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** An unsigned LEB128 number (the state tree's encoding of reject codes). */
function leb128(bytes: Uint8Array): bigint {
  let value = 0n;
  let shift = 0n;
  for (const byte of bytes) {
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) break;
  }
  return value;
}

export const replyHex = (outcome: CallOutcome): string => (outcome.kind === "replied" ? bytesToHex(outcome.reply) : "");
