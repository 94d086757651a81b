// Ingress messages as consensus sees them: identity, size, expiry and sender authentication.
// The spine's messages carry a small text body for the placeholder state machine; issue 4 swaps in
// IC envelopes with request ids and real signature schemes behind the same `IngressAuth` seam.
import { sha256Hex } from "../crypto/hash.ts";
import { MAX_INGRESS_BYTES_PER_MESSAGE, MAX_INGRESS_TTL_US } from "./config.ts";
import type { HashHex, TimeUs } from "../types.ts";

/** A canister call carried by an ingress message (absent for the placeholder state machine). */
export interface IngressCall {
  /** Receiving canister, textual principal. */
  readonly canister: string;
  readonly method: string;
  /** Argument bytes, hex (Candid for most canisters). */
  readonly argHex: string;
}

export interface IngressMessage {
  readonly id: HashHex;
  readonly sender: string;
  readonly nonce: number;
  /** Command for the state machine, e.g. `put k12 v7`. */
  readonly body: string;
  /** Bytes on the wire (the body stands for a payload of this size). */
  readonly sizeBytes: number;
  readonly expiryUs: TimeUs;
  readonly signature: string;
  readonly call?: IngressCall;
}

export function ingressId(sender: string, nonce: number, body: string, sizeBytes: number, expiryUs: number, call?: IngressCall): HashHex {
  const callPart = call === undefined ? "" : `|call|${call.canister}|${call.method}|${call.argHex}`;
  return sha256Hex(`ingress|${sender}|${nonce}|${sizeBytes}|${expiryUs}|${body}${callPart}`);
}

/** Verifies a sender's signature on a message id (user keys live outside the replicas). */
export interface IngressAuth {
  sign(sender: string, id: HashHex): string;
  verify(sender: string, id: HashHex, signature: string): boolean;
}

/** Keyed-hash user signatures; the key is the run's secret, users sign through the workload. */
export function simIngressAuth(secret: string): IngressAuth {
  const sign = (sender: string, id: HashHex): string => sha256Hex(`user-sig|${secret}|${sender}|${id}`);
  return { sign, verify: (sender, id, signature) => sign(sender, id) === signature };
}

export type IngressInvalidReason =
  | "bad-id"
  | "bad-signature"
  | "too-large"
  | "expired"
  | "expiry-too-far";

/**
 * Checks a message against the time `nowUs` (the validator's clock or the block's context time).
 * Returns undefined when valid.
 */
export function checkIngress(
  message: IngressMessage,
  auth: IngressAuth,
  nowUs: number,
): IngressInvalidReason | undefined {
  if (message.sizeBytes > MAX_INGRESS_BYTES_PER_MESSAGE) return "too-large";
  if (message.expiryUs < nowUs) return "expired";
  if (message.expiryUs > nowUs + MAX_INGRESS_TTL_US) return "expiry-too-far";
  return checkIngressAuthenticity(message, auth);
}

// Note [verification cache]: id and signature checks are pure functions of the message, so their
// result is remembered per message object (as the IC caches signature verification). Replicas in a
// simulation share message objects; a forged or altered message is a different object and is
// checked afresh, so the cache never changes an outcome, only how often SHA-256 runs.
const authenticity = new WeakMap<IngressMessage, WeakMap<IngressAuth, IngressInvalidReason | "ok">>();

function checkIngressAuthenticity(message: IngressMessage, auth: IngressAuth): IngressInvalidReason | undefined {
  let byAuth = authenticity.get(message);
  const cached = byAuth?.get(auth);
  if (cached !== undefined) return cached === "ok" ? undefined : cached;
  const id = ingressId(message.sender, message.nonce, message.body, message.sizeBytes, message.expiryUs, message.call);
  const result: IngressInvalidReason | "ok" =
    id !== message.id ? "bad-id" : auth.verify(message.sender, message.id, message.signature) ? "ok" : "bad-signature";
  if (byAuth === undefined) {
    byAuth = new WeakMap();
    authenticity.set(message, byAuth);
  }
  byAuth.set(auth, result);
  return result === "ok" ? undefined : result;
}
