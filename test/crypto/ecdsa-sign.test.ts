// The lab's ECDSA signer (harness/crypto/ecdsa-sign.ts) must give exactly the bytes of
// @noble/curves' `sign` with its defaults (RFC 6979 nonce, SHA-256 prehash, low S): envelopes are
// part of blocks, so another byte would change every trace digest of a run with signed users. The
// reference is @noble's implementation, which nobody here wrote; RFC 6979 §A.2.5 gives a P-256
// vector checked on its own.
import test from "ava";
import fc from "fast-check";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { signEcdsa, type EcdsaCurve } from "../../harness/crypto/ecdsa-sign.ts";

const NOBLE = { p256, secp256k1 } as const;
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const validKey = (curve: EcdsaCurve) => fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((key) => NOBLE[curve].utils.isValidSecretKey(key));

for (const curve of ["p256", "secp256k1"] as const) {
  test(`${curve}: the same signature bytes as @noble's sign for any key and message`, (t) => {
    fc.assert(
      fc.property(validKey(curve), fc.uint8Array({ maxLength: 300 }), (key, message) => {
        t.is(hex(signEcdsa(curve, message, key)), hex(NOBLE[curve].sign(message, key)));
      }),
      { numRuns: 150 },
    );
  });

  test(`${curve}: keys that are no scalar in [1, n − 1] are refused, as @noble refuses them`, (t) => {
    const n = NOBLE[curve].Point.Fn.ORDER;
    const bad = [new Uint8Array(32), Buffer.from(n.toString(16).padStart(64, "0"), "hex"), new Uint8Array(32).fill(0xff), new Uint8Array(31).fill(1)];
    for (const key of bad) {
      t.throws(() => NOBLE[curve].sign(new Uint8Array(4), key));
      t.throws(() => signEcdsa(curve, new Uint8Array(4), key), undefined, hex(key));
    }
  });
}

test("p256: RFC 6979 §A.2.5's SHA-256 vector for the message \"sample\", normalised to low S", (t) => {
  const key = Buffer.from("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", "hex");
  const r = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
  const s = BigInt("0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
  const n = p256.Point.Fn.ORDER;
  const lowS = s > n >> 1n ? n - s : s;
  t.is(hex(signEcdsa("p256", new TextEncoder().encode("sample"), key)), (r + lowS.toString(16).padStart(64, "0")).toLowerCase());
});
