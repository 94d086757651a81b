// Issue 13 item 1 (bench:ic's next cost after shared execution: envelope checks): sender
// signatures are verified with Node's OpenSSL where its answer is @noble's — ECDSA always, Ed25519
// when it accepts — and Ed25519 requests are signed natively, which must give @noble's bytes.
// Checked on many keys and on mangled signatures (flipped bytes, high S, r = 0, wrong length).
import test from "ava";
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { IC_REQUEST_DOMAIN, signRequest, verifySender, type SenderScheme } from "../../harness/crypto/sender-auth.ts";
import { Rng } from "../../harness/sim/rng.ts";

const rng = Rng.fromSeed(13).fork("sender-auth-native");
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.below(256));

const curveOf = (scheme: SenderScheme) => (scheme === "ecdsa-p256" ? p256 : secp256k1);

/** What @noble alone answers (the reference the native paths must equal). */
function nobleVerifies(scheme: SenderScheme, senderPubkey: Uint8Array, signature: Uint8Array, requestId: Uint8Array): boolean {
  const message = concatBytes(IC_REQUEST_DOMAIN, requestId);
  const raw = senderPubkey.subarray(senderPubkey.length - (scheme === "ed25519" ? 32 : 65));
  try {
    return scheme === "ed25519" ? ed25519.verify(signature, message, raw) : curveOf(scheme).verify(signature, message, raw, { lowS: false });
  } catch {
    return false;
  }
}

/** Mangled versions of a valid signature: flipped bytes in r and s, S ↦ n − S (ECDSA), r = 0, a short one. */
function mangled(scheme: SenderScheme, sig: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const at of [0, 17, 31, 32, 48, 63]) {
    const m = sig.slice();
    m[at] = (m[at] ?? 0) ^ (1 << rng.below(8));
    out.push(m);
  }
  if (scheme !== "ed25519") {
    const n = curveOf(scheme).Point.CURVE().n;
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString("hex")}`);
    out.push(concatBytes(sig.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, "0"), "hex")));
  }
  out.push(concatBytes(new Uint8Array(32), sig.subarray(32)), sig.subarray(0, 63), new Uint8Array(64));
  return out;
}

for (const scheme of ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"] as SenderScheme[]) {
  test(`issue 13 item 1: ${scheme} sender checks answer as @noble does, valid and mangled`, (t) => {
    for (let k = 0; k < 6; k++) {
      const secret = bytes(32);
      const requestId = bytes(32);
      const signed = signRequest(scheme, secret, requestId);
      const message = concatBytes(IC_REQUEST_DOMAIN, requestId);
      if (scheme === "ed25519") t.deepEqual(signed.senderSig, ed25519.sign(message, secret), "native Ed25519 signatures are @noble's bytes");
      else t.true(curveOf(scheme).verify(signed.senderSig, message, curveOf(scheme).getPublicKey(secret, false), { lowS: false }));
      t.deepEqual(verifySender({ ...signed, requestId }), { ok: true, anonymous: false });
      for (const sig of mangled(scheme, signed.senderSig)) {
        const expected = nobleVerifies(scheme, signed.senderPubkey, sig, requestId);
        t.is(verifySender({ ...signed, senderSig: sig, requestId }).ok, expected, `${scheme} ${Buffer.from(sig).toString("hex")}`);
      }
    }
  });
}
