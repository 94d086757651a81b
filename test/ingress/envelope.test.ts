// IC ingress call envelopes: encoding as the agent writes it, decoding that never throws, and every
// rejection the IC's HTTP handler makes before the ingress pool. Where the expected values come
// from:
//   - wire format, key order, tag 55799: research/agent-compat.md §3;
//   - request ids and the example id 1d1091…: interface spec "Request ids" (fixtures/vectors/
//     ic-spec-request-id-example.json, as in test/crypto/request-id.test.ts), agent-compat.md §4;
//   - sender authentication: interface spec "Authentication", agent-compat.md §5;
//   - expiry window now ≤ expiry ≤ now + MAX_INGRESS_TTL + 30 s and the "Invalid request expiry: "
//     prefix: agent-compat.md §6, ic-protocol.md §1.9 (PERMITTED_DRIFT_AT_VALIDATOR), dfinity/ic
//     rs/validator ingress_validation.rs;
//   - status codes and the order of the checks (413 for size, 400 otherwise; body limit 5 MiB,
//     message limit 2 MiB, nonce ≤ 32 bytes, canister_id must equal the URL's canister id except for
//     aaaaa-aa): agent-compat.md §2, dfinity/ic rs/http_endpoints/public/src/call.rs, lib.rs and
//     rs/config http_handler.rs.
import { readFileSync } from "node:fs";
import test from "ava";
import type { ExecutionContext } from "ava";
import fc from "fast-check";
import { encode, encodeWithSelfDescribedTag, decode } from "@dfinity/cbor";
import { Principal } from "@dfinity/principal";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { requestId, requestIdHex } from "../../harness/crypto/request-id.ts";
import { ANONYMOUS_SENDER, selfAuthenticating } from "../../harness/crypto/sender-auth.ts";
import { isoTimestamp,
  HTTP_MAX_REQUEST_BODY_BYTES,
  INGRESS_REJECTIONS,
  SenderVerificationMemo,
  decodeEnvelope,
  encodeEnvelope,
  validateCallEnvelope,
  type CallContent,
  type Envelope,
  type IngressRejectionKind,
  type ValidationOptions,
} from "../../harness/ingress/envelope.ts";
import { userIdentity, type UnsignedCallContent, type UserScheme } from "../../harness/ingress/identity.ts";

const SECOND_NS = 1_000_000_000n;
const NOW_NS = 1_700_000_000n * SECOND_NS; // 2023-11-14T22:13:20Z
// The agent sends floor_to_minute(now + 5 min), which lies 4 to 5 minutes ahead (agent-compat §6).
const EXPIRY_NS = NOW_NS + 4n * 60n * SECOND_NS;
// MAX_INGRESS_TTL (5 min) + PERMITTED_DRIFT_AT_VALIDATOR (30 s), ic-protocol.md §1.9.
const EXPIRY_WINDOW_NS = 330n * SECOND_NS;
const CANISTER = "rrkah-fqaaa-aaaaa-aaaaq-cai";
const OTHER_CANISTER = "ryjl3-tyaaa-aaaaa-aaaba-cai";
const CANDID_HELLO = hexToBytes("4449444c0001710568656c6c6f"); // Candid ("hello")
const SCHEMES: readonly UserScheme[] = ["ed25519", "ecdsa-p256", "ecdsa-secp256k1", "anonymous"];

const seed = (n: number): Uint8Array => new Uint8Array([n, 0x5e, 0xed]);
const options = (overrides: Partial<ValidationOptions> = {}): ValidationOptions => ({ nowNs: NOW_NS, effectiveCanisterId: CANISTER, ...overrides });

function unsignedCall(overrides: Partial<UnsignedCallContent> = {}): UnsignedCallContent {
  return {
    request_type: "call",
    canister_id: Principal.fromText(CANISTER).toUint8Array(),
    method_name: "greet",
    arg: CANDID_HELLO,
    ingress_expiry: EXPIRY_NS,
    nonce: hexToBytes("000102030405060708090a0b0c0d0e0f"), // 16 bytes, as the agent sends (§3)
    ...overrides,
  };
}

const signedBy = (scheme: UserScheme, overrides: Partial<UnsignedCallContent> = {}): Envelope => userIdentity(scheme, seed(1)).sign(unsignedCall(overrides));

/** Encodes an arbitrary (possibly ill-typed) envelope-like value, as a misbehaving client would. */
const rawBody = (value: unknown): Uint8Array => encodeWithSelfDescribedTag(value as never);

function contentAsCbor(content: CallContent): Record<string, unknown> {
  return { ...content };
}

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = bytes.slice();
  copy[index] = (copy[index] ?? 0) ^ 1;
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Round trips

for (const scheme of SCHEMES) {
  test(`${scheme}: sign → encode → decode → validate round-trips`, (t) => {
    const identity = userIdentity(scheme, seed(1));
    const envelope = identity.sign(unsignedCall());
    const bytes = encodeEnvelope(envelope);
    t.is(bytesToHex(bytes.subarray(0, 3)), "d9d9f7", "tag 55799 first, as the agent writes requests (§3)");

    const decoded = decodeEnvelope(bytes);
    t.deepEqual(decoded, { ok: true, envelope });
    t.deepEqual(encodeEnvelope(envelope), bytes, "encoding is deterministic");

    const result = validateCallEnvelope(bytes, options());
    if (!result.ok) return t.fail(result.rejection.message);
    t.is(result.call.sender, identity.principal);
    t.is(result.call.canisterId as string, CANISTER);
    t.is(result.call.method, "greet");
    t.deepEqual(result.call.arg, CANDID_HELLO);
    t.is(result.call.expiryNs, EXPIRY_NS);
    t.is(result.call.requestIdHex, requestIdHex(envelope.content), "the id is hash_of_map(content) (§4)");
    t.deepEqual(result.call.requestId, requestId(envelope.content));
    t.is(result.call.sizeBytes, bytes.length - 3 + 32, "re-encoded without the tag, plus the 32-byte message id");
    t.deepEqual(validateCallEnvelope(envelope, options()), result, "an Envelope object validates exactly like its bytes");
  });
}

test("identities are deterministic: the same seed gives the same principal and bytes, another seed another principal", (t) => {
  for (const scheme of SCHEMES) {
    const first = encodeEnvelope(userIdentity(scheme, seed(7)).sign(unsignedCall()));
    const again = encodeEnvelope(userIdentity(scheme, seed(7)).sign(unsignedCall()));
    t.deepEqual(first, again, scheme);
  }
  for (const scheme of ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"] as const) {
    t.not(userIdentity(scheme, seed(1)).principal, userIdentity(scheme, seed(2)).principal, scheme);
    t.is(userIdentity(scheme, seed(1)).sender.length, 29, "self-authenticating principals are 29 bytes (§5)");
  }
  t.is(userIdentity("anonymous", seed(1)).principal as string, "2vxsx-fae");
});

test("the wire layout follows the agent: envelope and content keys in its order, expiry as an 8-byte uint (§3)", (t) => {
  const bytes = encodeEnvelope(signedBy("ed25519"));
  const body = decode(bytes) as Record<string, unknown>;
  t.deepEqual(Object.keys(body), ["content", "sender_pubkey", "sender_sig"]);
  t.deepEqual(Object.keys(body.content as object), ["request_type", "canister_id", "method_name", "arg", "sender", "ingress_expiry", "nonce"]);
  t.true(bytesToHex(bytes).includes(`6e${bytesToHex(new TextEncoder().encode("ingress_expiry"))}1b`), "major type 0 with an 8-byte argument");
  t.deepEqual(Object.keys(decode(encodeEnvelope(signedBy("anonymous"))) as object), ["content"], "anonymous: just {content}");
  t.deepEqual((decode(encodeEnvelope(signedBy("anonymous"))) as { content: { sender: Uint8Array } }).content.sender, ANONYMOUS_SENDER);
});

test("ECDSA signatures are deterministic RFC 6979 with low S; a high-S signature is still accepted, as the IC does (§5)", (t) => {
  for (const [scheme, curve] of [["ecdsa-p256", p256], ["ecdsa-secp256k1", secp256k1]] as const) {
    const envelope = signedBy(scheme);
    const sig = curve.Signature.fromBytes(envelope.sender_sig ?? new Uint8Array());
    const n = curve.Point.Fn.ORDER;
    t.true(sig.s <= n / 2n, `${scheme}: low S`);
    const highS = { ...envelope, sender_sig: new curve.Signature(sig.r, n - sig.s).toBytes() };
    t.true(validateCallEnvelope(highS, options({ memo: new SenderVerificationMemo() })).ok, `${scheme}: high S accepted`);
  }
});

// ---------------------------------------------------------------------------------------------
// Request ids

type Typed = { text?: string; blob?: string; nat?: string };
const spec = JSON.parse(readFileSync(new URL("../../fixtures/vectors/ic-spec-request-id-example.json", import.meta.url), "utf8")) as {
  content: Record<string, Typed>;
  requestId: string;
};
const specField = (key: string): Typed => spec.content[key] ?? {};

test("the interface spec's example call, sent anonymously, has the request id 1d1091… (spec 'Request ids')", (t) => {
  const expiry = BigInt(specField("ingress_expiry").nat ?? "0");
  const envelope = userIdentity("anonymous", seed(1)).sign({
    request_type: "call",
    canister_id: hexToBytes(specField("canister_id").blob ?? ""),
    method_name: specField("method_name").text ?? "",
    arg: hexToBytes(specField("arg").blob ?? ""),
    ingress_expiry: expiry,
  });
  t.deepEqual(envelope.content.sender, hexToBytes(specField("sender").blob ?? ""));
  t.is(requestIdHex(envelope.content), spec.requestId);
  const result = validateCallEnvelope(encodeEnvelope(envelope), { nowNs: expiry - 60n * SECOND_NS });
  t.true(result.ok && result.call.requestIdHex === spec.requestId);
  t.true(spec.requestId.startsWith("1d1091"));
});

test("a signed envelope's request id is requestId(content); the signature covers exactly that id", (t) => {
  const envelope = signedBy("ed25519");
  const result = validateCallEnvelope(envelope, options());
  t.true(result.ok && bytesToHex(result.call.requestId) === bytesToHex(requestId(envelope.content)));
  const withoutNonce = signedBy("ed25519", { nonce: undefined });
  t.false("nonce" in withoutNonce.content, "an absent nonce is left out, not sent as null (§4)");
  t.not(requestIdHex(withoutNonce.content), requestIdHex(envelope.content));
});

test("decoding is representation-independent: no tag, other key order, indefinite lengths, null options, unknown fields", (t) => {
  const envelope = signedBy("ed25519");
  const expectedId = requestIdHex(envelope.content);
  const reordered = { sender_sig: envelope.sender_sig, content: { nonce: envelope.content.nonce, ...envelope.content }, sender_pubkey: envelope.sender_pubkey };
  const unknownField = { ...envelope, content: { ...contentAsCbor(envelope.content), sender_info: "ignored" }, sender_delegation: null };
  const untagged = encode(reordered as never);
  // Indefinite-length outer map: 0xbf … 0xff around the same entries.
  const definite = encode(envelope as never);
  const indefinite = Uint8Array.from([0xbf, ...definite.subarray(1), 0xff]);
  for (const [name, bytes] of [["untagged, reordered", untagged], ["unknown fields and null", rawBody(unknownField)], ["indefinite map", indefinite]] as const) {
    const result = validateCallEnvelope(bytes, options());
    t.true(result.ok && result.call.requestIdHex === expectedId, name);
  }
});

test("decoded byte strings are copies: changing the input buffer afterwards changes nothing", (t) => {
  const bytes = Buffer.from(encodeEnvelope(signedBy("anonymous")));
  const decoded = decodeEnvelope(bytes);
  if (!decoded.ok) return t.fail(decoded.rejection.message);
  const before = bytesToHex(decoded.envelope.content.arg);
  bytes.fill(0);
  t.is(bytesToHex(decoded.envelope.content.arg), before);
  t.is(Object.getPrototypeOf(decoded.envelope.content.arg), Uint8Array.prototype);
});

// ---------------------------------------------------------------------------------------------
// One test per rejection kind. The Record type makes the compiler insist on a case for every kind.

interface RejectionCase {
  /** Where the status comes from. */
  readonly httpStatus: 400 | 413;
  readonly build: () => { readonly input: Uint8Array | Envelope; readonly options: ValidationOptions };
  /** What the message must name. */
  readonly mentions: readonly RegExp[];
}

const ed = userIdentity("ed25519", seed(1));
const otherEd = userIdentity("ed25519", seed(2));
const anonymousContent = (): CallContent => signedBy("anonymous").content;

const REJECTION_CASES: Record<IngressRejectionKind, RejectionCase> = {
  // lib.rs RequestBodyLimitLayer with http_handler max_request_size_bytes = 5 MiB: 413 before decoding.
  "body-too-large": {
    httpStatus: 413,
    build: () => ({ input: new Uint8Array(HTTP_MAX_REQUEST_BODY_BYTES + 1), options: options() }),
    mentions: [/5242881 bytes/, /5 MiB/],
  },
  // A truncated body: the last byte of the signature is missing.
  "malformed-cbor": {
    httpStatus: 400,
    build: () => ({ input: encodeEnvelope(signedBy("ed25519")).slice(0, -1), options: options() }),
    mentions: [/not valid CBOR/, /declares 64 bytes but only 63 remain/],
  },
  "malformed-envelope": {
    httpStatus: 400,
    build: () => ({ input: rawBody({ content: { ...contentAsCbor(anonymousContent()), arg: "hello" } }), options: options() }),
    mentions: [/content\.arg/, /must be a byte string/, /it is a text string/],
  },
  "wrong-request-type": {
    httpStatus: 400,
    build: () => ({ input: rawBody({ content: { ...contentAsCbor(anonymousContent()), request_type: "query" } }), options: options() }),
    mentions: [/request_type is "query"/, /only "call"/],
  },
  // call.rs: the envelope → SignedIngress conversion fails with "missing pubkey or signature".
  "incomplete-authentication": {
    httpStatus: 400,
    build: () => ({ input: { ...signedBy("ed25519"), sender_sig: undefined }, options: options() }),
    mentions: [/sender_pubkey but no sender_sig/],
  },
  "invalid-effective-canister-id": {
    httpStatus: 400,
    build: () => ({ input: signedBy("ed25519"), options: options({ effectiveCanisterId: "not-a-principal" }) }),
    mentions: [/"not-a-principal"/, /not a valid principal/],
  },
  // call.rs: "Specified CanisterId … does not match effective canister id in URL".
  "effective-canister-id-mismatch": {
    httpStatus: 400,
    build: () => ({ input: signedBy("ed25519"), options: options({ effectiveCanisterId: OTHER_CANISTER }) }),
    mentions: [new RegExp(`canister_id is ${CANISTER}`), new RegExp(OTHER_CANISTER), /aaaaa-aa/],
  },
  // call.rs: count_bytes > max_ingress_bytes_per_message (2 MiB on application subnets) → 413.
  "message-too-large": {
    httpStatus: 413,
    build: () => ({ input: signedBy("anonymous", { arg: new Uint8Array(2 * 1024 * 1024) }), options: options() }),
    mentions: [/too large/, /more than the 2097152 bytes/],
  },
  "ingress-expired": {
    httpStatus: 400,
    build: () => ({ input: signedBy("ed25519"), options: options({ nowNs: EXPIRY_NS + 1_000_000n }) }),
    mentions: [/^Invalid request expiry: /, /ingress_expiry 1700000240000000000 ns/, /0\.001 s before/, /330\.000 s/],
  },
  "ingress-expiry-too-far": {
    httpStatus: 400,
    build: () => ({ input: signedBy("ed25519"), options: options({ nowNs: EXPIRY_NS - EXPIRY_WINDOW_NS - 1_000_000n }) }),
    mentions: [/^Invalid request expiry: /, /330\.001 s after/, /MAX_INGRESS_TTL/],
  },
  // rs/validator MAXIMUM_NUMBER_OF_BYTES_IN_NONCE = 32.
  "nonce-too-big": {
    httpStatus: 400,
    build: () => ({ input: signedBy("ed25519", { nonce: new Uint8Array(33) }), options: options() }),
    mentions: [/content\.nonce is 33 bytes/, /at most 32/],
  },
  "missing-signature": {
    httpStatus: 400,
    build: () => ({ input: { content: { ...anonymousContent(), sender: ed.sender } }, options: options() }),
    mentions: [new RegExp(`Missing signature from user ${ed.principal}`), /sender_pubkey and sender_sig/],
  },
  "anonymous-with-signature": {
    httpStatus: 400,
    build: () => {
      const signed = signedBy("ed25519");
      return { input: { ...signed, content: { ...signed.content, sender: ANONYMOUS_SENDER } }, options: options() };
    },
    mentions: [/anonymous principal 2vxsx-fae/, /must not carry sender_pubkey or sender_sig/],
  },
  "sender-pubkey-mismatch": {
    httpStatus: 400,
    build: () => {
      const signed = signedBy("ed25519");
      return { input: { ...signed, content: { ...signed.content, sender: otherEd.sender } }, options: options() };
    },
    mentions: [new RegExp(`content\\.sender is ${otherEd.principal}`), new RegExp(`belongs to ${ed.principal}`)],
  },
  "delegation-not-supported": {
    httpStatus: 400,
    build: () => ({
      input: { ...signedBy("ed25519"), sender_delegation: [{ delegation: { pubkey: otherEd.publicKeyDer ?? new Uint8Array(), expiration: EXPIRY_NS }, signature: new Uint8Array(64) }] },
      options: options(),
    }),
    mentions: [/sender_delegation chain of 1 delegation/, /does not verify delegated identities/],
  },
  // A 44-byte key that is no DER key the replica knows, with its own self-authenticating sender.
  "unsupported-public-key": {
    httpStatus: 400,
    build: () => {
      const bogusKey = new Uint8Array(44).fill(7);
      return { input: { content: { ...anonymousContent(), sender: selfAuthenticating(bogusKey) }, sender_pubkey: bogusKey, sender_sig: new Uint8Array(64) }, options: options() };
    },
    mentions: [/sender_pubkey \(44 bytes, starting 070707/, /Ed25519, ECDSA P-256 or ECDSA secp256k1/],
  },
  "invalid-signature": {
    httpStatus: 400,
    build: () => {
      const signed = signedBy("ed25519");
      return { input: { ...signed, sender_sig: flipBit(signed.sender_sig ?? new Uint8Array(64), 5) }, options: options() };
    },
    mentions: [/^Invalid signature: /, /ed25519 signature/, new RegExp(requestIdHex(signedBy("ed25519").content))],
  },
};

function assertRejected(t: ExecutionContext, input: Uint8Array | Envelope, opts: ValidationOptions, kind: IngressRejectionKind, mentions: readonly RegExp[] = []): void {
  const result = validateCallEnvelope(input, opts);
  if (result.ok) {
    t.fail(`expected ${kind}, but the call was accepted`);
    return;
  }
  t.is(result.rejection.kind, kind, result.rejection.message);
  t.is(result.rejection.httpStatus, INGRESS_REJECTIONS[kind].httpStatus);
  for (const pattern of mentions) t.regex(result.rejection.message, pattern);
}

for (const [kind, rejectionCase] of Object.entries(REJECTION_CASES) as [IngressRejectionKind, RejectionCase][]) {
  test(`rejection ${kind}: HTTP ${rejectionCase.httpStatus}`, (t) => {
    t.is(INGRESS_REJECTIONS[kind].httpStatus, rejectionCase.httpStatus, "the exported table");
    const { input, options: opts } = rejectionCase.build();
    assertRejected(t, input, opts, kind, rejectionCase.mentions);
  });
}

test("the table lists every kind once, and only the two size checks answer 413", (t) => {
  t.deepEqual(Object.keys(INGRESS_REJECTIONS).sort(), Object.keys(REJECTION_CASES).sort());
  const status413 = Object.entries(INGRESS_REJECTIONS).filter(([, entry]) => entry.httpStatus === 413).map(([kind]) => kind);
  t.deepEqual(status413.sort(), ["body-too-large", "message-too-large"]);
});

// ---------------------------------------------------------------------------------------------
// Boundaries and variants

test("the expiry window is inclusive at both ends: [now, now + 5 min + 30 s]", (t) => {
  const envelope = signedBy("ed25519");
  t.true(validateCallEnvelope(envelope, options({ nowNs: EXPIRY_NS })).ok, "expiry = now");
  t.true(validateCallEnvelope(envelope, options({ nowNs: EXPIRY_NS - EXPIRY_WINDOW_NS })).ok, "expiry = now + 330 s");
  assertRejected(t, envelope, options({ nowNs: EXPIRY_NS + 1n }), "ingress-expired");
  assertRejected(t, envelope, options({ nowNs: EXPIRY_NS - EXPIRY_WINDOW_NS - 1n }), "ingress-expiry-too-far");
});

test("calls to the management canister may name any effective canister id; without one there is no check", (t) => {
  const toManagement = signedBy("ed25519", { canister_id: new Uint8Array(0) });
  const result = validateCallEnvelope(toManagement, options({ effectiveCanisterId: OTHER_CANISTER }));
  t.true(result.ok && result.call.canisterId === "aaaaa-aa");
  t.true(validateCallEnvelope(signedBy("ed25519"), { nowNs: NOW_NS }).ok);
});

test("the size limit counts the message plus its id, against the subnet's maxBytes", (t) => {
  const envelope = signedBy("ed25519");
  const result = validateCallEnvelope(envelope, options());
  if (!result.ok) return t.fail(result.rejection.message);
  t.true(validateCallEnvelope(envelope, options({ maxBytes: result.call.sizeBytes })).ok, "exactly at the limit");
  assertRejected(t, envelope, options({ maxBytes: result.call.sizeBytes - 1 }), "message-too-large", [new RegExp(result.call.requestIdHex)]);
});

test("the checks run in the IC's order: shape before canister id before size before expiry before signature", (t) => {
  const bad = { ...signedBy("ed25519", { arg: new Uint8Array(100) }), sender_sig: new Uint8Array(64) };
  const everything = options({ effectiveCanisterId: OTHER_CANISTER, maxBytes: 10, nowNs: EXPIRY_NS + 1n });
  assertRejected(t, { ...bad, sender_pubkey: undefined }, everything, "incomplete-authentication");
  assertRejected(t, bad, everything, "effective-canister-id-mismatch");
  assertRejected(t, bad, { ...everything, effectiveCanisterId: CANISTER }, "message-too-large");
  assertRejected(t, bad, options({ nowNs: EXPIRY_NS + 1n }), "ingress-expired");
  assertRejected(t, bad, options(), "invalid-signature");
});

const hex = (text: string): Uint8Array => hexToBytes(text.replace(/\s+/g, ""));

test("malformed CBOR of every kind the agent's decoder would misread is refused (malformed-cbor, 400)", (t) => {
  const valid = encodeEnvelope(signedBy("anonymous"));
  const cases: readonly [string, Uint8Array, RegExp][] = [
    ["empty body", new Uint8Array(0), /ends at offset 0/],
    ["trailing byte", Uint8Array.from([...valid, 0x00]), /1 trailing byte/],
    ["byte string longer than the input", hex("d9d9f7 a1 67 636f6e74656e74 45 0102"), /declares 5 bytes/],
    ["map key that is not text", hex("a1 01 02"), /map key at offset 1 is not a text string/],
    ["duplicate key", hex("a2 61 61 01 61 61 02"), /the key "a" twice/],
    ["__proto__ key", hex("a1 69 5f5f70726f746f5f5f 41 04"), /"__proto__"/],
    ["float", hex("a1 61 61 fb 3ff0000000000000"), /float/],
    ["bignum tag 2", hex("c2 41 01"), /tag 2 /],
    ["chunked byte string", hex("5f 41 01 ff"), /chunked/],
    ["invalid UTF-8 text", hex("62 c328"), /not valid UTF-8/],
    ["reserved additional information", hex("1c"), /reserved/],
    ["nesting 40 arrays deep", new Uint8Array(40).fill(0x81), /nests deeper than 32/],
  ];
  for (const [name, bytes, reason] of cases) {
    const decoded = decodeEnvelope(bytes);
    t.false(decoded.ok, name);
    if (!decoded.ok) {
      t.is(decoded.rejection.kind, "malformed-cbor", name);
      t.regex(decoded.rejection.message, reason, name);
    }
  }
});

test("well-formed CBOR that is not a call envelope is refused (malformed-envelope, 400), naming the field", (t) => {
  const content = contentAsCbor(anonymousContent());
  const cases: readonly [string, unknown, RegExp][] = [
    ["an array", [content], /must be a CBOR map .* it is an array/],
    ["no content", { sender_sig: new Uint8Array(1) }, /content is missing from the envelope/],
    ["content is bytes", { content: new Uint8Array(3) }, /content must be a map, but it is a byte string/],
    ["no method_name", { content: { ...content, method_name: undefined } }, /content\.method_name is missing/],
    ["null method_name", { content: { ...content, method_name: null } }, /content\.method_name must be a text string, but it is CBOR null/],
    ["negative expiry", { content: { ...content, ingress_expiry: -5 } }, /content\.ingress_expiry must be an unsigned integer .* negative integer/],
    ["text expiry", { content: { ...content, ingress_expiry: "soon" } }, /content\.ingress_expiry .* text string/],
    ["30-byte canister id", { content: { ...content, canister_id: new Uint8Array(30) } }, /content\.canister_id is 30 bytes long, but a principal has at most 29/],
    ["text sender", { content: { ...content, sender: "2vxsx-fae" } }, /content\.sender must be a byte string/],
    ["nonce as a number", { content: { ...content, nonce: 7 } }, /content\.nonce must be a byte string, but it is an unsigned integer/],
    ["delegations not an array", { content, sender_delegation: { pubkey: new Uint8Array(1) } }, /sender_delegation must be an array/],
    ["delegation without signature", { content, sender_delegation: [{ delegation: { pubkey: new Uint8Array(1), expiration: 1 } }] }, /sender_delegation\[0\]\.signature is missing/],
    ["delegation target as text", { content, sender_delegation: [{ delegation: { pubkey: new Uint8Array(1), expiration: 1, targets: ["x"] }, signature: new Uint8Array(1) }] }, /sender_delegation\[0\]\.delegation\.targets\[0\] must be a byte string/],
  ];
  for (const [name, value, reason] of cases) {
    const decoded = decodeEnvelope(rawBody(value));
    t.false(decoded.ok, name);
    if (!decoded.ok) {
      t.is(decoded.rejection.kind, "malformed-envelope", name);
      t.is(decoded.rejection.httpStatus, 400, name);
      t.regex(decoded.rejection.message, reason, name);
    }
  }
});

test("decoding keeps a well-formed delegation chain so that it can be refused precisely", (t) => {
  const envelope: Envelope = {
    ...signedBy("ed25519"),
    sender_delegation: [{ delegation: { pubkey: otherEd.publicKeyDer ?? new Uint8Array(), expiration: EXPIRY_NS, targets: [Principal.fromText(CANISTER).toUint8Array()] }, signature: new Uint8Array(64) }],
  };
  t.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), { ok: true, envelope });
  const anonymousDelegated: Envelope = { ...envelope, content: { ...envelope.content, sender: ANONYMOUS_SENDER } };
  assertRejected(t, anonymousDelegated, options(), "anonymous-with-signature");
  const mismatched: Envelope = { ...envelope, content: { ...envelope.content, sender: otherEd.sender } };
  assertRejected(t, mismatched, options(), "sender-pubkey-mismatch");
  assertRejected(t, { ...envelope, sender_pubkey: undefined, sender_sig: undefined }, options(), "incomplete-authentication", [/sender_delegation but no sender_pubkey/]);
});

// ---------------------------------------------------------------------------------------------
// Properties: decoding and validation are total

const noThrow = (bytes: Uint8Array): boolean => {
  decodeEnvelope(bytes);
  validateCallEnvelope(bytes, options());
  return true;
};

test("garbage never throws: random bytes, with and without the 55799 tag (fast-check, 200 runs)", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, tagged) => noThrow(tagged ? Uint8Array.from([0xd9, 0xd9, 0xf7, ...bytes]) : bytes)),
    { numRuns: 200 },
  );
  t.pass();
});

test("random CBOR values in place of the envelope or its fields never throw (fast-check, 200 runs)", (t) => {
  const cborValue = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.string({ maxLength: 8 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }),
      fc.constantFrom(true, false, null, "call", "query"),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom("content", "sender_pubkey", "sender_sig", "sender_delegation", "delegation", "pubkey", "expiration", "targets", "signature", "x"), tie("value"), { maxKeys: 4 }),
    ),
  })).value;
  const content = contentAsCbor(anonymousContent());
  const fieldNames = [...Object.keys(content), "nonce"];
  fc.assert(
    fc.property(cborValue, fc.constantFrom(...fieldNames), fc.boolean(), (value, field, replaceWhole) => {
      const body = replaceWhole ? value : { content: { ...content, [field]: value }, sender_delegation: value };
      return noThrow(rawBody(body));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("a mutated signed envelope never throws, and if it still validates it is the same request (fast-check, 200 runs)", (t) => {
  const memo = new SenderVerificationMemo();
  const bytes = encodeEnvelope(signedBy("ecdsa-secp256k1"));
  const original = validateCallEnvelope(bytes, options({ memo }));
  if (!original.ok) return t.fail(original.rejection.message);
  fc.assert(
    fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.boolean(), (index, xor, truncate) => {
      const mutated = truncate ? bytes.slice(0, index) : bytes.slice();
      if (!truncate) mutated[index] = (mutated[index] ?? 0) ^ xor;
      const result = validateCallEnvelope(mutated, options({ memo }));
      // The signature binds the request id: a change can only survive where the id does not see it.
      return !result.ok || result.call.requestIdHex === original.call.requestIdHex;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// The memo of signature checks

test("13 replicas validating the same call verify its signature once, and get equal results", (t) => {
  const memo = new SenderVerificationMemo();
  const bytes = encodeEnvelope(signedBy("ecdsa-p256"));
  const results = Array.from({ length: 13 }, () => validateCallEnvelope(bytes, options({ memo })));
  t.deepEqual(memo.stats(), { hits: 12, misses: 1, size: 1 });
  for (const result of results) t.deepEqual(result, results[0]);
});

test("the memo never changes an outcome: tampered copies of a cached valid envelope are still rejected", (t) => {
  const memo = new SenderVerificationMemo();
  const valid = signedBy("ed25519");
  const tamperedSig: Envelope = { ...valid, sender_sig: flipBit(valid.sender_sig ?? new Uint8Array(64), 0) };
  const tamperedArg: Envelope = { ...valid, content: { ...valid.content, arg: flipBit(valid.content.arg, 3) } };
  const tamperedExpiry: Envelope = { ...valid, content: { ...valid.content, ingress_expiry: valid.content.ingress_expiry + 1n } };
  const tamperedSender: Envelope = { ...valid, content: { ...valid.content, sender: otherEd.sender } };

  t.true(validateCallEnvelope(valid, options({ memo })).ok, "cached as valid");
  t.true(validateCallEnvelope(valid, options({ memo })).ok, "and again from the memo");
  assertRejected(t, tamperedSig, options({ memo }), "invalid-signature");
  assertRejected(t, tamperedArg, options({ memo }), "invalid-signature");
  assertRejected(t, tamperedExpiry, options({ memo }), "invalid-signature");
  assertRejected(t, tamperedSender, options({ memo }), "sender-pubkey-mismatch");
  // Asked again after the tampered copies were cached, the valid one is still valid.
  t.true(validateCallEnvelope(valid, options({ memo })).ok);
  // A fresh memo, the shared default memo and a warm memo agree on everything.
  for (const envelope of [valid, tamperedSig, tamperedArg, tamperedExpiry, tamperedSender]) {
    const warm = validateCallEnvelope(envelope, options({ memo }));
    t.deepEqual(validateCallEnvelope(envelope, options({ memo: new SenderVerificationMemo() })), warm);
    t.deepEqual(validateCallEnvelope(envelope, options()), warm);
  }
  t.true(memo.stats().hits > 0);
});

test("the memo is bounded and forgets its oldest entries first", (t) => {
  const memo = new SenderVerificationMemo(2);
  const envelopes = [1, 2, 3].map((n) => userIdentity("ed25519", seed(n)).sign(unsignedCall()));
  for (const envelope of envelopes) t.true(validateCallEnvelope(envelope, options({ memo })).ok);
  t.is(memo.stats().size, 2);
  t.true(validateCallEnvelope(envelopes[2] as Envelope, options({ memo })).ok);
  t.is(memo.stats().hits, 1, "the newest is remembered");
  t.true(validateCallEnvelope(envelopes[0] as Envelope, options({ memo })).ok);
  t.is(memo.stats().misses, 4, "the oldest was forgotten and is verified again");
});

test("isoTimestamp: the same text as Date#toISOString for every millisecond count of the years 0–9999, by integer arithmetic; undefined outside", (t) => {
  // Date.UTC maps the years 0–99 to 1900–1999: the year 0 is set explicitly.
  const min = BigInt(new Date(0).setUTCFullYear(0, 0, 1));
  const max = BigInt(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
  const asDate = (ms: bigint): string => new Date(Number(ms)).toISOString();
  for (const ms of [0n, -1n, 1n, 86_399_999n, 86_400_000n, 951_782_400_000n /* 2000-02-29 */, 1_700_000_000_000n, min, max, BigInt(Date.UTC(1900, 1, 28, 12)), BigInt(Date.UTC(2100, 2, 1))]) {
    t.is(isoTimestamp(ms), asDate(ms), String(ms));
  }
  fc.assert(fc.property(fc.bigInt({ min, max }), (ms) => isoTimestamp(ms) === asDate(ms)), { numRuns: 20_000 });
  t.is(isoTimestamp(min - 1n), undefined);
  t.is(isoTimestamp(max + 1n), undefined);
  t.is(isoTimestamp(2n ** 64n / 1_000_000n), "2554-07-21T23:34:33.709Z", "the largest u64 ingress expiry");
});
