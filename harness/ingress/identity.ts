// Deterministic user identities for simulated clients: Ed25519, ECDSA P-256, ECDSA secp256k1 and
// anonymous, as the JS agent's identities sign calls (research/agent-compat.md §3, §5). A run must
// be replayable, so keys come from a seed through SHA-256, never from ambient randomness, and ECDSA
// signatures are the deterministic RFC 6979 kind with low S (noble's default); the replica still
// accepts high S, as the IC does (sender-auth.ts).
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { Principal } from "@dfinity/principal";
import { sha256 } from "../crypto/sha256.ts";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { requestId } from "../crypto/request-id.ts";
import { ANONYMOUS_SENDER, selfAuthenticating, senderKeyDer, signRequest, type SenderScheme } from "../crypto/sender-auth.ts";
import type { PrincipalText } from "../execution/interfaces.ts";
import type { CallContent, Envelope } from "./envelope.ts";

export type UserScheme = SenderScheme | "anonymous";

/** A call's content before the identity fills in `sender`. */
export type UnsignedCallContent = Omit<CallContent, "sender">;

export interface UserIdentity {
  readonly scheme: UserScheme;
  readonly principal: PrincipalText;
  /** The principal's raw bytes, as content.sender carries them. */
  readonly sender: Uint8Array;
  /** The DER public key that goes into sender_pubkey; undefined for the anonymous identity. */
  readonly publicKeyDer: Uint8Array | undefined;
  /**
   * Sets content.sender to this identity and signs "\x0Aic-request" ‖ request id. The anonymous
   * identity returns the bare {content}, as the agent sends it.
   */
  sign(content: UnsignedCallContent): Envelope;
}

/** The same scheme and seed always give the same keys, principal and signatures. */
export function userIdentity(scheme: UserScheme, seed: Uint8Array): UserIdentity {
  return scheme === "anonymous" ? anonymousIdentity() : keyedIdentity(scheme, seed);
}

function anonymousIdentity(): UserIdentity {
  return {
    scheme: "anonymous",
    principal: Principal.anonymous().toText() as PrincipalText,
    sender: ANONYMOUS_SENDER,
    publicKeyDer: undefined,
    sign: (content) => ({ content: withSender(content, ANONYMOUS_SENDER) }),
  };
}

function keyedIdentity(scheme: SenderScheme, seed: Uint8Array): UserIdentity {
  const secretKey = deriveSecretKey(scheme, seed);
  const publicKeyDer = senderKeyDer(scheme, rawPublicKey(scheme, secretKey));
  const sender = selfAuthenticating(publicKeyDer);
  const sign = (unsigned: UnsignedCallContent): Envelope => {
    const content = withSender(unsigned, sender);
    const signed = signRequest(scheme, secretKey, requestId(content));
    assert(equalBytes(signed.sender, sender), `signRequest derived another ${scheme} principal from the same secret key`);
    return { content, sender_pubkey: signed.senderPubkey, sender_sig: signed.senderSig };
  };
  return { scheme, principal: Principal.fromUint8Array(sender).toText() as PrincipalText, sender, publicKeyDer, sign };
}

/**
 * SHA-256 of a per-scheme label and the seed, so one seed gives unrelated keys under different
 * schemes. An ECDSA key must be a scalar in [1, n − 1]; the rare hash outside that range (below
 * 2^-32 for P-256) is hashed again.
 */
function deriveSecretKey(scheme: SenderScheme, seed: Uint8Array): Uint8Array {
  let key = sha256(concatBytes(utf8ToBytes(`subnetlab user identity/${scheme}/`), seed));
  while (!isValidSecretKey(scheme, key)) key = sha256(key);
  return key;
}

function isValidSecretKey(scheme: SenderScheme, key: Uint8Array): boolean {
  if (scheme === "ed25519") return key.length === 32;
  return (scheme === "ecdsa-p256" ? p256 : secp256k1).utils.isValidSecretKey(key);
}

/** Ed25519: 32 bytes; ECDSA: the 65-byte uncompressed point the agents put in the DER key. */
function rawPublicKey(scheme: SenderScheme, secretKey: Uint8Array): Uint8Array {
  if (scheme === "ed25519") return ed25519.getPublicKey(secretKey);
  return (scheme === "ecdsa-p256" ? p256 : secp256k1).getPublicKey(secretKey, false);
}

/** A fresh content in the agent's key order, with no fields beyond the call's own. */
function withSender(content: UnsignedCallContent, sender: Uint8Array): CallContent {
  return {
    request_type: content.request_type,
    canister_id: content.canister_id,
    method_name: content.method_name,
    arg: content.arg,
    sender,
    ingress_expiry: content.ingress_expiry,
    ...(content.nonce === undefined ? {} : { nonce: content.nonce }),
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
