// Ingress messages as consensus sees them: identity, size, expiry and sender authentication.
// Two kinds travel the same way:
// - IC call envelopes (`envelope`: the CBOR bytes a user — or @dfinity/agent — sends): the id is
//   the request id, the sender a principal authenticated by Ed25519 / ECDSA signatures or
//   anonymous, every other field derived from the envelope (harness/ingress/envelope.ts);
// - the spine's simulated messages (a text body, a keyed-hash signature through `IngressAuth`),
//   kept for the placeholder state machine and for the consensus lab's speed.
import { hash as nodeHash } from "node:crypto";
import { bytesToHex } from "@noble/hashes/utils.js";
import { sha256Hex } from "../crypto/hash.ts";
import { BoundedMap } from "../memo.ts";
import { MAX_INGRESS_EXPIRY_AHEAD_NS, validateCallEnvelope, type IngressRejectionKind, type ValidatedCall } from "../ingress/envelope.ts";
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
  /**
   * The signed IC call envelope (CBOR). When present, `id` is its request id, `sender` the
   * principal, `expiryUs`, `sizeBytes` and `call` are derived from it, and `signature` is unused.
   */
  readonly envelope?: Uint8Array;
}

/**
 * An ingress message for an IC call envelope, its fields derived from the envelope at `nowNs`;
 * `effectiveCanisterId` is the URL's (the HTTP call endpoint checks content.canister_id against it).
 */
export function ingressFromEnvelope(envelope: Uint8Array, nowNs: bigint, effectiveCanisterId?: string): { ok: true; message: IngressMessage } | { ok: false; kind: IngressRejectionKind; httpStatus: number; message: string } {
  const checked = validateCallEnvelope(envelope, { nowNs, ...(effectiveCanisterId === undefined ? {} : { effectiveCanisterId }) });
  if (!checked.ok) return { ok: false, ...checked.rejection };
  return { ok: true, message: messageOf(checked.call, envelope) };
}

function messageOf(call: ValidatedCall, envelope: Uint8Array): IngressMessage {
  return {
    id: call.requestIdHex as HashHex,
    sender: call.sender,
    nonce: 0,
    body: "",
    sizeBytes: call.sizeBytes,
    // Rounded up: a message valid at µs t is valid at the ns the envelope names.
    expiryUs: Number((call.expiryNs + 999n) / 1000n) as TimeUs,
    signature: "",
    call: { canister: call.canisterId, method: call.method, argHex: bytesToHex(call.arg) },
    envelope,
  };
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
  | "expiry-too-far"
  /** An envelope refused by the IC's checks (harness/ingress/envelope.ts INGRESS_REJECTIONS). */
  | `envelope:${IngressRejectionKind}`
  /** An envelope whose derived fields were altered (a forged block payload). */
  | "envelope-mismatch";

/**
 * Checks a message against the time `nowUs` (the validator's clock or the block's context time).
 * Returns undefined when valid.
 */
export function checkIngress(
  message: IngressMessage,
  auth: IngressAuth,
  nowUs: number,
): IngressInvalidReason | undefined {
  if (message.envelope !== undefined) return checkEnvelopeMessage(message, nowUs);
  if (message.sizeBytes > MAX_INGRESS_BYTES_PER_MESSAGE) return "too-large";
  if (message.expiryUs < nowUs) return "expired";
  if (message.expiryUs > nowUs + MAX_INGRESS_TTL_US) return "expiry-too-far";
  return checkIngressAuthenticity(message, auth);
}

/**
 * An envelope message: the envelope must validate at `nowUs` (expiry window, size, sender, signature)
 * and every field consensus and execution read must be the one derived from it.
 */
function checkEnvelopeMessage(message: IngressMessage, nowUs: number): IngressInvalidReason | undefined {
  const envelope = message.envelope as Uint8Array;
  const nowNs = BigInt(nowUs) * 1000n;
  // Note [verification cache]: everything but the expiry window is a pure function of the bytes,
  // so a validated envelope is remembered and later checks only re-judge its expiry. Remembered by
  // content too: every replica decodes its own copy of a gossiped envelope (p2p/codec.ts).
  const call = validatedEnvelopes.get(envelope) ?? validatedByContent.get(contentKey(envelope));
  if (call !== undefined) {
    validatedEnvelopes.set(envelope, call);
    if (call.expiryNs < nowNs) return "envelope:ingress-expired";
    if (call.expiryNs > nowNs + MAX_INGRESS_EXPIRY_AHEAD_NS) return "envelope:ingress-expiry-too-far";
    return sameDerivedFields(message, call, envelope) ? undefined : "envelope-mismatch";
  }
  const checked = validateCallEnvelope(envelope, { nowNs });
  if (!checked.ok) return `envelope:${checked.rejection.kind}`;
  validatedEnvelopes.set(envelope, checked.call);
  rememberByContent(envelope, checked.call);
  return sameDerivedFields(message, checked.call, envelope) ? undefined : "envelope-mismatch";
}

const validatedEnvelopes = new WeakMap<Uint8Array, ValidatedCall>();
const VALIDATED_BY_CONTENT_MAX = 65_536;
const validatedByContent = new BoundedMap<string, ValidatedCall>("validatedEnvelopesByContent", VALIDATED_BY_CONTENT_MAX);
const contentKey = (envelope: Uint8Array): string => nodeHash("sha256", envelope, "base64");
function rememberByContent(envelope: Uint8Array, call: ValidatedCall): void {
  validatedByContent.set(contentKey(envelope), call);
}

const derivedFieldsOk = new WeakMap<IngressMessage, boolean>();
function sameDerivedFields(message: IngressMessage, call: ValidatedCall, envelope: Uint8Array): boolean {
  const cached = derivedFieldsOk.get(message);
  if (cached !== undefined) return cached;
  const derived = messageOf(call, envelope);
  const same =
    message.id === derived.id &&
    message.sender === derived.sender &&
    message.sizeBytes === derived.sizeBytes &&
    message.expiryUs === derived.expiryUs &&
    message.call?.canister === derived.call?.canister &&
    message.call?.method === derived.call?.method &&
    message.call?.argHex === derived.call?.argHex;
  derivedFieldsOk.set(message, same);
  return same;
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
