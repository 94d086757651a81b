// Deterministic ECDSA signatures for the lab's simulated users: RFC 6979 nonces (HMAC-SHA-256),
// SHA-256 of the message, low S — the bytes @noble/curves' `sign` returns for the same key and
// message with its defaults (property test: test/crypto/ecdsa-sign.test.ts), at a fraction of the
// cost. @noble computes the nonce point k·G with a constant-time, blinded multiplication, which
// protects a secret key from timing attacks; it was the largest single cost of runs with signed
// envelopes (bench:ic, "mixed" senders). A simulated user's key is no secret, so k·G is computed
// the fast way: by OpenSSL for P-256 (the public point of an ECDH key pair with secret k is k·G,
// ~20× faster than @noble's), and by @noble's variable-time multiplication for secp256k1 (OpenSSL's
// generic curve code is no faster there). Replay needs the deterministic nonce: Node's own ECDSA
// signing draws a random one.
import { createECDH, createHash, createHmac, type ECDH } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToNumberBE, numberToBytesBE } from "@noble/curves/utils.js";

export type EcdsaCurve = "p256" | "secp256k1";

const SCALAR_BYTES = 32;

interface CurveOps {
  readonly order: bigint;
  /** The affine x-coordinate of k·G, for 1 ≤ k < order. */
  baseMultipleX(k: bigint): bigint;
  /** k⁻¹ mod order. */
  invert(k: bigint): bigint;
}

const nativeP256: ECDH = createECDH("prime256v1");

const CURVES: Readonly<Record<EcdsaCurve, CurveOps>> = {
  p256: {
    order: p256.Point.Fn.ORDER,
    baseMultipleX(k) {
      nativeP256.setPrivateKey(scalarBytes(k));
      // Uncompressed point 0x04 ‖ x ‖ y.
      return bytesToNumberBE(nativeP256.getPublicKey().subarray(1, 1 + SCALAR_BYTES));
    },
    invert: (k) => p256.Point.Fn.inv(k),
  },
  secp256k1: {
    order: secp256k1.Point.Fn.ORDER,
    baseMultipleX: (k) => secp256k1.Point.BASE.multiplyUnsafe(k).toAffine().x,
    invert: (k) => secp256k1.Point.Fn.inv(k),
  },
};

/**
 * The 64-byte compact signature r ‖ s of `message` (hashed here with SHA-256) under the 32-byte
 * secret key. Throws on a key that is not a scalar in [1, n − 1], as @noble does.
 */
export function signEcdsa(curve: EcdsaCurve, message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const ops = CURVES[curve];
  const d = secretScalar(secretKey, ops.order);
  // RFC 6979 §3.2 with qlen = hlen = 256: bits2int is the whole digest; bits2octets reduces mod n.
  const h = bytesToNumberBE(createHash("sha256").update(message).digest()) % ops.order;
  const seed = [scalarBytes(d), scalarBytes(h)];
  let key: Uint8Array = new Uint8Array(32);
  let v: Uint8Array = new Uint8Array(32).fill(1);
  key = hmac(key, v, ZERO, ...seed);
  v = hmac(key, v);
  key = hmac(key, v, ONE, ...seed);
  v = hmac(key, v);
  for (;;) {
    v = hmac(key, v);
    const signature = signatureFromNonce(ops, bytesToNumberBE(v), h, d);
    if (signature !== undefined) return signature;
    key = hmac(key, v, ZERO);
    v = hmac(key, v);
  }
}

const ZERO = Uint8Array.of(0);
const ONE = Uint8Array.of(1);

/** r = x(k·G) mod n, s = k⁻¹(h + r·d) mod n with low S; undefined when k, r or s is unusable (RFC 6979 §3.2 h.3). */
function signatureFromNonce(ops: CurveOps, k: bigint, h: bigint, d: bigint): Uint8Array | undefined {
  const n = ops.order;
  if (k < 1n || k >= n) return undefined;
  const r = ops.baseMultipleX(k) % n;
  if (r === 0n) return undefined;
  let s = (ops.invert(k) * ((h + r * d) % n)) % n;
  if (s === 0n) return undefined;
  if (s > n >> 1n) s = n - s;
  const out = new Uint8Array(2 * SCALAR_BYTES);
  out.set(scalarBytes(r), 0);
  out.set(scalarBytes(s), SCALAR_BYTES);
  return out;
}

function secretScalar(secretKey: Uint8Array, order: bigint): bigint {
  if (secretKey.length !== SCALAR_BYTES) throw new Error(`an ECDSA secret key must be ${SCALAR_BYTES} bytes, got ${secretKey.length}`);
  const d = bytesToNumberBE(secretKey);
  if (d < 1n || d >= order) throw new Error("invalid private key: not a scalar in [1, n − 1]");
  return d;
}

function hmac(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac("sha256", key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Big-endian, 32 bytes. */
function scalarBytes(value: bigint): Uint8Array {
  return numberToBytesBE(value, SCALAR_BYTES);
}
