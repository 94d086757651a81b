// BLS12-381 pairing checks and G1 encoding for the `bls` backend (bls-backend.ts), without the work
// noble repeats on every call.
//
// noble's `verify` derives the Miller-loop lines of both G2 points on every call and checks the
// subgroup membership of every point object it has not seen (a scalar multiplication each, the
// G2 one costly), and its `toBytes` checks before encoding. Every point here is either decoded
// from bytes — checked there, once — or a sum or multiple of such points, which stays in the
// subgroup, so those checks cannot fail; and the lines of a fixed G2 point (the generator, each
// public key) are the same every time. Real mode runs every check of every replica for real (a
// 4-process subnet spent ~0.5 CPU-s per replica per block in pairings before this), so they count.
import { bls12_381 } from "@noble/curves/bls12-381.js";

const short = bls12_381.shortSignatures;
type G1 = ReturnType<typeof short.hash>;
type G2 = ReturnType<typeof short.getPublicKey>;

type PairingLines = ReturnType<typeof bls12_381.utils.calcPairingPrecomputes>;
const Fp12 = bls12_381.fields.Fp12;
const NEG_G2_BASE_LINES: PairingLines = bls12_381.utils.calcPairingPrecomputes(bls12_381.G2.Point.BASE.negate());
/** Lines of long-lived public keys (the verifier's key points), computed on first use. */
const linesOfKey = new WeakMap<G2, PairingLines>();

function pairingLines(publicKey: G2, longLived: boolean): PairingLines {
  if (!longLived) return bls12_381.utils.calcPairingPrecomputes(publicKey);
  let lines = linesOfKey.get(publicKey);
  if (lines === undefined) {
    lines = bls12_381.utils.calcPairingPrecomputes(publicKey);
    linesOfKey.set(publicKey, lines);
  }
  return lines;
}

/**
 * Whether e(σ, G₂) = e(H(m), PK), checked as e(σ, −G₂)·e(H(m), PK) = 1 with one final
 * exponentiation — noble's `short.verify` equation. All three points must be subgroup points
 * (see above); `longLived` says whether PK's lines are worth keeping.
 */
export function pairingCheck(signature: G1, hashed: G1, publicKey: G2, longLived: boolean): boolean {
  if (signature.is0() || hashed.is0() || publicKey.is0()) return false;
  const s = signature.toAffine();
  const h = hashed.toAffine();
  const loop = bls12_381.millerLoopBatch([
    [NEG_G2_BASE_LINES, s.x, s.y],
    [pairingLines(publicKey, longLived), h.x, h.y],
  ]);
  return Fp12.eql(Fp12.finalExponentiate(loop), Fp12.ONE);
}

/** The 48-byte compressed encoding of a G1 subgroup point (ZCash format, as noble's `toBytes`). */
export function compressG1(point: G1): Uint8Array {
  const out = new Uint8Array(48);
  if (point.is0()) {
    out[0] = 0xc0; // compressed | infinity
    return out;
  }
  const { x, y } = point.toAffine();
  let rest = x;
  for (let i = 47; i >= 0; i--) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  // The sort bit: y is the larger of ±y, i.e. 2y > p.
  out[0] = (out[0] as number) | 0x80 | (2n * y > G1_FIELD_ORDER ? 0x20 : 0);
  return out;
}
const G1_FIELD_ORDER = bls12_381.fields.Fp.ORDER;
