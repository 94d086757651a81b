import { readFileSync } from "node:fs";
import test from "ava";
import fc from "fast-check";
import { Principal } from "@dfinity/principal";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import {
  decodeUleb128,
  encodeSleb128,
  encodeUleb128,
  hashOfMap,
  hashValue,
  requestId,
  type HashableValue,
  type RequestContent,
} from "../../harness/crypto/request-id.ts";

// Expected values: IC interface specification, "HTTPS Interface" → "Request ids" (the example
// calculation whose id begins 1d1091…) and "Representation-independent hashing of structured
// data" (LEB128 examples); copied as data into fixtures/vectors/ic-spec-request-id-example.json.
type Typed = { text?: string; blob?: string; nat?: string };
const spec = JSON.parse(readFileSync(new URL("../../fixtures/vectors/ic-spec-request-id-example.json", import.meta.url), "utf8")) as {
  content: Record<string, Typed>;
  fieldHashes: { key: string; keyHash: string; valueHash: string }[];
  requestId: string;
  leb128: { nat: string; bytes: string }[];
  sleb128: { int: string; bytes: string }[];
};
const typed = (v: Typed): HashableValue =>
  v.text !== undefined ? v.text : v.blob !== undefined ? hexToBytes(v.blob) : BigInt(v.nat as string);
const specContent = Object.fromEntries(Object.entries(spec.content).map(([k, v]) => [k, typed(v)])) as unknown as RequestContent;

test("spec 'Request ids' example: every field hash and the request id 1d1091…", (t) => {
  for (const { key, keyHash, valueHash } of spec.fieldHashes) {
    t.is(bytesToHex(sha256(utf8ToBytes(key))), keyHash, `H(${key})`);
    t.is(bytesToHex(hashValue(specContent[key] as HashableValue)), valueHash, `H(value of ${key})`);
  }
  t.is(bytesToHex(requestId(specContent)), spec.requestId);
});

test("the id does not depend on key order, numeric representation or Principal vs bytes", (t) => {
  const reordered: RequestContent = {
    arg: specContent.arg as Uint8Array,
    method_name: "hello",
    canister_id: Principal.fromUint8Array(hexToBytes("00000000000004d2")),
    ingress_expiry: 1685570400000000000n,
    sender: Principal.anonymous(),
    request_type: "call",
    nonce: undefined,
  };
  t.is(bytesToHex(requestId(reordered)), spec.requestId, "undefined fields are omitted; Principal hashes as its bytes");
  t.is(bytesToHex(hashValue(5)), bytesToHex(hashValue(5n)));
});

test("spec LEB128 examples (unsigned 624485 → e58e26, signed -123456 → c0bb78)", (t) => {
  for (const { nat, bytes } of spec.leb128) {
    t.is(bytesToHex(encodeUleb128(BigInt(nat))), bytes);
    t.is(decodeUleb128(hexToBytes(bytes)), BigInt(nat));
  }
  for (const { int, bytes } of spec.sleb128) t.is(bytesToHex(encodeSleb128(BigInt(int))), bytes);
  t.is(bytesToHex(encodeSleb128(64)), "c000", "64 needs a second byte in signed LEB128");
  t.is(decodeUleb128(hexToBytes("80")), undefined, "truncated");
  t.is(decodeUleb128(hexToBytes("0000")), undefined, "trailing bytes");
});

// A variation computed by hand from the definition (no call into the hasher under test):
// hash_of_map = H(concat(sort([H(key) · H(value)]))) with nat = H(ULEB128), blob = H(bytes).
test("a call with a self-authenticating sender, a nonce and another arg, hashed by hand", (t) => {
  const sender = Principal.selfAuthenticating(new Uint8Array(44).fill(7)).toUint8Array();
  const nonce = hexToBytes("000102030405060708090a0b0c0d0e0f");
  const arg = hexToBytes("4449444c0001710568656c6c6f"); // Candid ("hello")
  const expiry = 1_700_000_000_000_000_000n;
  const content: RequestContent = {
    request_type: "call",
    canister_id: hexToBytes("00000000000000010101"),
    method_name: "greet",
    arg,
    sender,
    ingress_expiry: expiry,
    nonce,
  };
  // ULEB128 of the expiry, by hand: 7 bits at a time, low group first, high bit = more.
  const leb: number[] = [];
  for (let v = expiry; ; ) {
    const low = Number(v % 128n);
    v /= 128n;
    if (v === 0n) {
      leb.push(low);
      break;
    }
    leb.push(low + 128);
  }
  const H = (b: Uint8Array): Uint8Array => sha256(b);
  const u = (s: string): Uint8Array => utf8ToBytes(s);
  const pairs = [
    [H(u("request_type")), H(u("call"))],
    [H(u("canister_id")), H(hexToBytes("00000000000000010101"))],
    [H(u("method_name")), H(u("greet"))],
    [H(u("arg")), H(arg)],
    [H(u("sender")), H(sender)],
    [H(u("ingress_expiry")), H(Uint8Array.from(leb))],
    [H(u("nonce")), H(nonce)],
  ].map(([k, v]) => bytesToHex(k as Uint8Array) + bytesToHex(v as Uint8Array));
  pairs.sort();
  const byHand = bytesToHex(H(hexToBytes(pairs.join(""))));
  t.is(bytesToHex(requestId(content)), byHand);
  t.not(byHand, spec.requestId);
  // Dropping the nonce gives another id: the nonce is what makes identical calls distinct.
  t.not(bytesToHex(requestId({ ...content, nonce: undefined })), byHand);
});

test("nested maps and arrays (read_state paths; the spec's {reply: {arg}} example), by hand", (t) => {
  const H = (b: Uint8Array): Uint8Array => sha256(b);
  const u = (s: string): Uint8Array => utf8ToBytes(s);
  const cat = (...xs: Uint8Array[]): Uint8Array => hexToBytes(xs.map(bytesToHex).join(""));
  // Spec tip: hash_of_map({ "reply": { "arg": "DIDL\x00\x00" } })
  //   = H(concat(sort([H("reply") · H(concat(sort([H("arg") · H("DIDL\x00\x00")])))])))
  const didl = hexToBytes("4449444c0000");
  const inner = H(cat(H(u("arg")), H(didl)));
  t.is(bytesToHex(hashOfMap({ reply: { arg: didl } })), bytesToHex(H(cat(H(u("reply")), inner))));
  // paths = [[ "request_status", rid ]]: array of arrays of blobs.
  const rid = hexToBytes(spec.requestId);
  const path = H(cat(H(u("request_status")), H(rid)));
  t.is(bytesToHex(hashValue([[u("request_status"), rid]])), bytesToHex(H(path)));
});

test("property: the hash of a map does not depend on key insertion order", (t) => {
  const valueArb: fc.Arbitrary<HashableValue> = fc.oneof(
    fc.string(),
    fc.uint8Array({ maxLength: 8 }),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.array(fc.uint8Array({ maxLength: 4 }), { maxLength: 3 }),
  );
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 6 }), valueArb, { maxKeys: 6 }), fc.nat(), (map, seed) => {
      const keys = Object.keys(map);
      const shuffled = keys.map((k, i) => [k, (i * 7919 + seed) % 1009] as const).sort((a, b) => a[1] - b[1]).map(([k]) => k);
      const rebuilt = Object.fromEntries(shuffled.map((k) => [k, map[k] as HashableValue]));
      return bytesToHex(hashOfMap(map)) === bytesToHex(hashOfMap(rebuilt));
    }),
    { numRuns: 200, seed: 6 },
  );
  t.pass();
});
