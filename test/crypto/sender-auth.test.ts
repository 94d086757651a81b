// Sender authentication of ingress requests. Expected formats (DER prefixes, the "\x0Aic-request"
// domain separator, SHA-224 self-authenticating principals, r‖s ECDSA over SHA-256 with high-S
// accepted) come from the IC interface specification's "Authentication" section as summarised in
// research/agent-compat.md §5; the request id is the spec's example (request-id.test.ts).
import test from "ava";
import { Principal } from "@dfinity/principal";
import { p256 } from "@noble/curves/nist.js";
import { hexToBytes } from "@noble/hashes/utils.js";
import { ANONYMOUS_SENDER, IC_REQUEST_DOMAIN, selfAuthenticating, signedByThisProcess, signRequest, verifySender, type SenderScheme } from "../../harness/crypto/sender-auth.ts";

// Interface spec, "Request ids" example.
const REQUEST_ID = hexToBytes("1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101");
const secret = (seed: number): Uint8Array => new Uint8Array(32).fill(seed);

test("the domain separator is 0x0A followed by ic-request", (t) => {
  t.is(IC_REQUEST_DOMAIN.length, 11);
  t.is(IC_REQUEST_DOMAIN[0], 0x0a);
  t.is(new TextDecoder().decode(IC_REQUEST_DOMAIN.subarray(1)), "ic-request");
});

for (const scheme of ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"] as SenderScheme[]) {
  test(`${scheme}: a signed request verifies; another request id, sender or key does not`, (t) => {
    const signed = signRequest(scheme, secret(3), REQUEST_ID);
    t.is(Principal.fromUint8Array(signed.sender).toUint8Array().length, 29, "self-authenticating principals are 29 bytes");
    t.deepEqual(verifySender({ ...signed, requestId: REQUEST_ID }), { ok: true, anonymous: false });
    const otherId = REQUEST_ID.slice();
    otherId[0] = (otherId[0] ?? 0) ^ 1;
    t.like(verifySender({ ...signed, requestId: otherId }), { ok: false, failure: "bad-signature" });
    const other = signRequest(scheme, secret(4), REQUEST_ID);
    t.like(verifySender({ ...signed, sender: other.sender, requestId: REQUEST_ID }), { ok: false, failure: "sender-key-mismatch" });
    t.like(verifySender({ ...signed, senderSig: other.senderSig, requestId: REQUEST_ID }), { ok: false, failure: "bad-signature" });
    t.like(verifySender({ sender: signed.sender, senderPubkey: signed.senderPubkey, requestId: REQUEST_ID }), { ok: false, failure: "missing-signature" });
  });
}

// Note [own signatures] in sender-auth.ts: what the lab's users signed skips the curve arithmetic
// outside paranoid runs; only the exact (key, signature, request id) it signed may.
for (const scheme of ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"] as SenderScheme[]) {
  test(`${scheme}: an own signature is remembered with its key and request id, and nothing else is`, (t) => {
    const requestId = REQUEST_ID.slice();
    requestId[5] = 0x42 ^ scheme.length;
    const signed = signRequest(scheme, secret(7), requestId);
    t.true(signedByThisProcess(signed.senderPubkey, signed.senderSig, requestId));
    const flipped = (bytes: Uint8Array, at: number): Uint8Array => {
      const copy = bytes.slice();
      copy[at] = (copy[at] ?? 0) ^ 1;
      return copy;
    };
    t.false(signedByThisProcess(signed.senderPubkey, flipped(signed.senderSig, 40), requestId), "another signature");
    t.false(signedByThisProcess(signed.senderPubkey, signed.senderSig, flipped(requestId, 0)), "another request id");
    t.false(signedByThisProcess(flipped(signed.senderPubkey, signed.senderPubkey.length - 1), signed.senderSig, requestId), "another key");
    const other = signRequest(scheme, secret(8), requestId);
    t.false(signedByThisProcess(other.senderPubkey, signed.senderSig, requestId), "a key that signed other bytes");
    t.like(verifySender({ sender: other.sender, senderPubkey: other.senderPubkey, senderSig: signed.senderSig, requestId }), { ok: false, failure: "bad-signature" });
    t.like(verifySender({ ...signed, senderSig: flipped(signed.senderSig, 40), requestId }), { ok: false, failure: "bad-signature" });
  });
}

test("ECDSA P-256 signatures with a high S value are accepted (WebCrypto may produce them)", (t) => {
  const signed = signRequest("ecdsa-p256", secret(5), REQUEST_ID);
  const sig = p256.Signature.fromBytes(signed.senderSig);
  const n = p256.Point.Fn.ORDER;
  const highS = new p256.Signature(sig.r, n - sig.s).toBytes();
  t.notDeepEqual(highS, signed.senderSig);
  t.deepEqual(verifySender({ ...signed, senderSig: highS, requestId: REQUEST_ID }), { ok: true, anonymous: false });
});

test("anonymous requests carry no key or signature; other keys are refused", (t) => {
  t.deepEqual(verifySender({ sender: ANONYMOUS_SENDER, requestId: REQUEST_ID }), { ok: true, anonymous: true });
  const signed = signRequest("ed25519", secret(6), REQUEST_ID);
  t.like(verifySender({ sender: ANONYMOUS_SENDER, senderSig: signed.senderSig, requestId: REQUEST_ID }), { ok: false, failure: "anonymous-with-signature" });
  const bogusKey = new Uint8Array(44).fill(1);
  t.like(verifySender({ sender: selfAuthenticating(bogusKey), senderPubkey: bogusKey, senderSig: signed.senderSig, requestId: REQUEST_ID }), { ok: false, failure: "unsupported-key" });
});
