// The canonical encoding's nat (harness/state/encoding.ts): a u32 byte count, then the minimal
// big-endian magnitude. Values below 2^53 take an arithmetic path (a round's metadata writes two per
// canister); it must give the same bytes as the general one, which goes through the hex digits.
import test from "ava";
import fc from "fast-check";
import { ByteWriter } from "../../harness/state/encoding.ts";

/** The definition, spelt out: magnitude bytes from the hex digits, no leading zero byte. */
function natByDefinition(v: bigint): string {
  const hex = v === 0n ? "" : v.toString(16);
  const magnitude = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex");
  const count = Buffer.alloc(4);
  count.writeUInt32BE(magnitude.length);
  return Buffer.concat([count, magnitude]).toString("hex");
}

const encoded = (v: bigint): string => Buffer.from(new ByteWriter().nat(v).finish()).toString("hex");

test("nat: the same bytes on both sides of 2^53, and for every value in between", (t) => {
  for (const v of [0n, 1n, 255n, 256n, 65_535n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n]) t.is(encoded(v), natByDefinition(v), String(v));
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 70n }), (v) => encoded(v) === natByDefinition(v)), { numRuns: 5_000 });
  t.is(encoded(0x0102n), "000000020102");
});
