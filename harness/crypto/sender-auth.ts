// Sender authentication of ingress requests (IC interface specification, "Authentication";
// facts in research/agent-compat.md §5): the request id is signed with the domain separator
// "\x0Aic-request"; the sender must be the self-authenticating principal of the DER public key
// (SHA-224(DER) ‖ 0x02); Ed25519, ECDSA P-256 and ECDSA secp256k1 keys as the JS identities
// produce them; the anonymous principal (0x04) carries no key and no signature. Expected failures
// are typed results, so the HTTP layer can turn them into the right rejections.
import { createPrivateKey, createPublicKey, sign as nativeSign, verify as nativeVerify, type KeyObject } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha224 } from "@noble/hashes/sha2.js";
import { concatBytes, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { BoundedMap } from "../memo.ts";
import { paranoid } from "../paranoia.ts";
import { signEcdsa } from "./ecdsa-sign.ts";

export type SenderScheme = "ed25519" | "ecdsa-p256" | "ecdsa-secp256k1";

/** DER SubjectPublicKeyInfo prefixes the agents emit (agent-compat.md §5). */
export const DER_PREFIX: Readonly<Record<SenderScheme, Uint8Array>> = {
  ed25519: hexToBytes("302a300506032b6570032100"),
  "ecdsa-p256": hexToBytes("3059301306072a8648ce3d020106082a8648ce3d030107034200"),
  "ecdsa-secp256k1": hexToBytes("3056301006072a8648ce3d020106052b8104000a034200"),
};
const RAW_KEY_BYTES: Readonly<Record<SenderScheme, number>> = { ed25519: 32, "ecdsa-p256": 65, "ecdsa-secp256k1": 65 };

/** 0x0A ‖ "ic-request": what a sender signs in front of the request id. */
export const IC_REQUEST_DOMAIN = concatBytes(new Uint8Array([0x0a]), utf8ToBytes("ic-request"));
export const ANONYMOUS_SENDER = new Uint8Array([0x04]);

export function senderKeyDer(scheme: SenderScheme, rawPublicKey: Uint8Array): Uint8Array {
  if (rawPublicKey.length !== RAW_KEY_BYTES[scheme]) throw new Error(`${scheme} public key must be ${RAW_KEY_BYTES[scheme]} bytes`);
  return concatBytes(DER_PREFIX[scheme], rawPublicKey);
}

/** The self-authenticating principal of a DER public key: SHA-224(DER) ‖ 0x02 (29 bytes). */
export function selfAuthenticating(der: Uint8Array): Uint8Array {
  return concatBytes(sha224(der), new Uint8Array([0x02]));
}

export type SenderAuthFailure =
  | "anonymous-with-signature"
  | "missing-signature"
  | "sender-key-mismatch"
  | "unsupported-key"
  | "bad-signature";

export type SenderAuthResult = { readonly ok: true; readonly anonymous: boolean } | { readonly ok: false; readonly failure: SenderAuthFailure; readonly message: string };

export interface SignedRequest {
  readonly sender: Uint8Array;
  readonly requestId: Uint8Array;
  readonly senderPubkey?: Uint8Array;
  readonly senderSig?: Uint8Array;
}

const fail = (failure: SenderAuthFailure, message: string): SenderAuthResult => ({ ok: false, failure, message });

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function schemeOf(der: Uint8Array): SenderScheme | undefined {
  for (const scheme of Object.keys(DER_PREFIX) as SenderScheme[]) {
    const prefix = DER_PREFIX[scheme];
    if (der.length === prefix.length + RAW_KEY_BYTES[scheme] && equalBytes(der.subarray(0, prefix.length), prefix)) return scheme;
  }
  return undefined;
}

export function verifySender(request: SignedRequest): SenderAuthResult {
  if (equalBytes(request.sender, ANONYMOUS_SENDER)) {
    return request.senderPubkey === undefined && request.senderSig === undefined
      ? { ok: true, anonymous: true }
      : fail("anonymous-with-signature", "an anonymous request must not carry sender_pubkey or sender_sig");
  }
  if (request.senderPubkey === undefined || request.senderSig === undefined) {
    return fail("missing-signature", "a non-anonymous request needs sender_pubkey and sender_sig");
  }
  if (!equalBytes(selfAuthenticating(request.senderPubkey), request.sender)) {
    return fail("sender-key-mismatch", "sender is not the self-authenticating principal of sender_pubkey");
  }
  const scheme = schemeOf(request.senderPubkey);
  if (scheme === undefined) return fail("unsupported-key", "sender_pubkey is not an Ed25519, ECDSA P-256 or secp256k1 DER key");
  const signedHere = signedByThisProcess(request.senderPubkey, request.senderSig, request.requestId);
  if (signedHere && !paranoid) return { ok: true, anonymous: false };
  const valid = signatureVerifies(scheme, request.senderPubkey, request.senderSig, request.requestId);
  assert(valid || !signedHere, `the lab's own ${scheme} signer produced a signature that does not verify`);
  return valid ? { ok: true, anonymous: false } : fail("bad-signature", `the ${scheme} signature over the request id does not verify`);
}

function signatureVerifies(scheme: SenderScheme, senderPubkey: Uint8Array, senderSig: Uint8Array, requestId: Uint8Array): boolean {
  const raw = senderPubkey.subarray(DER_PREFIX[scheme].length);
  const message = concatBytes(IC_REQUEST_DOMAIN, requestId);
  try {
    return scheme === "ed25519"
      ? verifyEd25519(senderPubkey, senderSig, message, raw)
      // ECDSA: 64-byte r ‖ s over SHA-256(message); high-S is allowed (WebCrypto may produce it).
      : verifyEcdsa(senderPubkey, senderSig, message);
  } catch {
    return false;
  }
}

// Note [own signatures]: the simulated users sign in this process (signRequest), and a signature
// made with the secret key of a public key over a message verifies under that key and message —
// the signature schemes' correctness. So a request whose (key, signature, request id) this process
// signed is valid without the curve arithmetic, the largest cost of runs with signed users after
// signing itself (bench:ic). Any other bytes — a mangled signature, a forged one, another request id
// — are not remembered and meet the full check. Paranoid runs (npm test, or SUBNETLAB_PARANOID=1)
// verify the remembered ones too and assert they pass, so a signer bug cannot hide behind this.
const SIGNATURES_KEPT = 65_536;
const ownSignatures = new BoundedMap<string, { readonly senderPubkey: Uint8Array; readonly requestId: Uint8Array }>("sender-auth.ownSignatures", SIGNATURES_KEPT);

function rememberOwnSignature(senderPubkey: Uint8Array, senderSig: Uint8Array, requestId: Uint8Array): void {
  ownSignatures.set(Buffer.from(senderSig).toString("base64"), { senderPubkey, requestId: requestId.slice() });
}

/** Whether signRequest made exactly this signature with this key over this request id (and still remembers it). */
export function signedByThisProcess(senderPubkey: Uint8Array, senderSig: Uint8Array, requestId: Uint8Array): boolean {
  const own = ownSignatures.get(Buffer.from(senderSig).toString("base64"));
  return own !== undefined && equalBytes(own.senderPubkey, senderPubkey) && equalBytes(own.requestId, requestId);
}

/** What a client does: sign a request id with a secret key; returns the DER key, sender and signature. */
export function signRequest(scheme: SenderScheme, secretKey: Uint8Array, requestId: Uint8Array): { senderPubkey: Uint8Array; sender: Uint8Array; senderSig: Uint8Array } {
  const message = concatBytes(IC_REQUEST_DOMAIN, requestId);
  const identity = identityOf(scheme, secretKey);
  // Ed25519 signatures are deterministic (RFC 8032): Node's are the same bytes as @noble's. ECDSA
  // needs RFC 6979's deterministic nonces (Node's are random and would break replay): ecdsa-sign.ts
  // gives @noble's bytes without its constant-time blinding.
  const senderSig = scheme === "ed25519"
    ? new Uint8Array(nativeSign(null, message, identity.privateKey ?? ed25519PrivateKey(secretKey)))
    : signEcdsa(scheme === "ecdsa-p256" ? "p256" : "secp256k1", message, secretKey);
  rememberOwnSignature(identity.senderPubkey, senderSig, requestId);
  // Copies: the remembered identity must not change if a caller edits what it got.
  return { senderPubkey: identity.senderPubkey.slice(), sender: identity.sender.slice(), senderSig };
}

// ---- native fast paths ---------------------------------------------------------------------------
// Envelope checks dominated runs with signed users (docs/BENCHMARKS.md, bench:ic). Node's OpenSSL
// gives the same answers where it is used, and only there:
//  - ECDSA verification is one equation (r, s in [1, n), u1·G + u2·Q, x mod n = r; high S allowed
//    as with lowS: false) — the same accept/reject as @noble for every input;
//  - Ed25519: OpenSSL verifies strictly (RFC 8032, cofactorless), @noble by ZIP 215 (cofactored,
//    non-canonical points accepted), which accepts every signature the strict check accepts. So a
//    native "valid" is final, and a native "invalid" is asked again of @noble.

const KEYS_KEPT = 4096;
const publicKeys = new BoundedMap<string, KeyObject | null>("sender-auth.publicKeys", KEYS_KEPT);
const identities = new BoundedMap<string, { readonly senderPubkey: Uint8Array; readonly sender: Uint8Array; readonly privateKey: KeyObject | undefined }>("sender-auth.identities", KEYS_KEPT);

function remember<V>(map: BoundedMap<string, V>, key: string, make: () => V): V {
  let value = map.get(key);
  if (value === undefined && !map.has(key)) {
    value = make();
    map.set(key, value);
  }
  return value as V;
}

/** A DER SubjectPublicKeyInfo as Node's key object, or null when OpenSSL refuses it. */
function publicKeyObject(der: Uint8Array): KeyObject | null {
  return remember(publicKeys, Buffer.from(der).toString("hex"), () => {
    try {
      return createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
    } catch {
      return null;
    }
  });
}

function verifyEcdsa(der: Uint8Array, signature: Uint8Array, message: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const key = publicKeyObject(der);
  return key !== null && nativeVerify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature);
}

function verifyEd25519(der: Uint8Array, signature: Uint8Array, message: Uint8Array, raw: Uint8Array): boolean {
  const key = signature.length === 64 ? publicKeyObject(der) : null;
  if (key !== null && nativeVerify(null, message, key, signature)) return true;
  return ed25519.verify(signature, message, raw);
}

/** PKCS #8 prefix of a 32-byte Ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = hexToBytes("302e020100300506032b657004220420");

function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(concatBytes(ED25519_PKCS8_PREFIX, seed)), format: "der", type: "pkcs8" });
}

/** A user's public key, principal and (Ed25519) key object: a pure function of the secret, derived once. */
function identityOf(scheme: SenderScheme, secretKey: Uint8Array): { readonly senderPubkey: Uint8Array; readonly sender: Uint8Array; readonly privateKey: KeyObject | undefined } {
  return remember(identities, `${scheme}|${Buffer.from(secretKey).toString("hex")}`, () => {
    const raw = scheme === "ed25519" ? ed25519.getPublicKey(secretKey) : (scheme === "ecdsa-p256" ? p256 : secp256k1).getPublicKey(secretKey, false);
    const senderPubkey = senderKeyDer(scheme, raw);
    return { senderPubkey, sender: selfAuthenticating(senderPubkey), privateKey: scheme === "ed25519" && secretKey.length === 32 ? ed25519PrivateKey(secretKey) : undefined };
  });
}
