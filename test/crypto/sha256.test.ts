import test from "ava";
import fc from "fast-check";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { sha256, sha256HexOf, sha256Parts } from "../../harness/crypto/sha256.ts";
import { sha256Hex } from "../../harness/crypto/hash.ts";

// Known answers (FIPS 180-2), so both implementations are checked against the standard too.
test("issue 13 item 4: native SHA-256 gives the standard's digests", (t) => {
  t.is(sha256HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  t.is(sha256HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // A lone surrogate is hashed as U+FFFD's UTF-8 bytes, as TextEncoder (utf8ToBytes) encodes it.
  t.is(sha256Hex("a\ud800b") as string, bytesToHex(nobleSha256(utf8ToBytes("a\ud800b"))));
});

test("issue 13 item 4: native SHA-256 equals @noble's for the same bytes and strings", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: "grapheme", maxLength: 80 }), fc.string({ unit: "binary", maxLength: 40 }), (bytes, text, raw) => {
      const expected = nobleSha256(bytes);
      t.deepEqual(sha256(bytes), expected);
      t.is(sha256HexOf(bytes), bytesToHex(expected));
      // Strings are hashed as their UTF-8 bytes, lone surrogates included (both encode U+FFFD).
      for (const s of [text, raw]) {
        t.is(sha256Hex(s) as string, bytesToHex(nobleSha256(utf8ToBytes(s))));
        t.deepEqual(sha256(s), nobleSha256(utf8ToBytes(s)));
      }
      t.deepEqual(sha256Parts(bytes.subarray(0, 7), text, bytes.subarray(7)), nobleSha256(new Uint8Array([...bytes.subarray(0, 7), ...utf8ToBytes(text), ...bytes.subarray(7)])));
    }),
    { numRuns: 300 },
  );
});

test("issue 13 item 4: a digest is a plain byte array of its own", (t) => {
  const digest = sha256("x");
  t.is(Object.getPrototypeOf(digest), Uint8Array.prototype);
  t.is(digest.byteLength, 32);
  t.is(digest.buffer.byteLength, 32);
});
