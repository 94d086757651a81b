// IC ingress call envelopes: the CBOR body of `POST /api/v{2,3,4}/canister/<ecid>/call`, its
// encoding and decoding, and the checks the IC's HTTP handler makes before a message may enter the
// ingress pool. Deterministic user identities that build such envelopes live in identity.ts.
//
// Sources: IC interface specification, "HTTPS Interface" (Request: Call, Envelope, Authentication,
// Request ids, nonce and ingress_expiry); research/agent-compat.md §2 (status codes), §3 (CBOR),
// §4 (request id), §5 (sender authentication), §6 (ingress expiry); for the order of the checks,
// their status codes and limits, dfinity/ic rs/http_endpoints/public/src/call.rs, lib.rs
// (RequestBodyLimitLayer), rs/config http_handler.rs and rs/validator ingress_validation.rs.
//
// The IC checks, in this order: the HTTP body limit (413, before decoding); the CBOR and the
// envelope's shape, including a key without a signature or the reverse (400); the effective canister
// id of the URL against content.canister_id (400); the message size (413); ingress_expiry; the
// nonce's length; the sender's authentication (all 400). Every failure is a typed
// IngressRejection: nothing here throws on untrusted input.
import { decode, encode, encodeWithSelfDescribedTag, type CborValue } from "@dfinity/cbor";
import { Principal } from "@dfinity/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { MAX_INGRESS_BYTES_PER_MESSAGE, MAX_INGRESS_TTL_US, PERMITTED_DRIFT_AT_VALIDATOR_US } from "../consensus/config.ts";
import { requestId, type RequestId } from "../crypto/request-id.ts";
import { ANONYMOUS_SENDER, selfAuthenticating, verifySender, type SenderAuthResult, type SignedRequest } from "../crypto/sender-auth.ts";
import type { CanisterId, PrincipalText } from "../execution/interfaces.ts";
import { checkCborWellFormed } from "./cbor-check.ts";
import { registerProcessMemo } from "../memo.ts";

// ---------------------------------------------------------------------------------------------
// Limits

/** rs/config http_handler.rs max_request_size_bytes: bodies above 5 MiB get 413 before decoding. */
export const HTTP_MAX_REQUEST_BODY_BYTES = 5 * 1024 * 1024;
/** The IC stores a message with its 32-byte id and counts both (SignedIngress::count_bytes). */
export const MESSAGE_ID_BYTES = 32;
/** rs/validator MAXIMUM_NUMBER_OF_BYTES_IN_NONCE (interface spec: "at most 32 bytes"). */
export const MAX_NONCE_BYTES = 32;
/** Principals are at most 29 bytes (interface spec, "Principals"). */
export const MAX_PRINCIPAL_BYTES = 29;
/** rs/validator: the IC accepts now ≤ ingress_expiry ≤ now + MAX_INGRESS_TTL + PERMITTED_DRIFT_AT_VALIDATOR. */
export const MAX_INGRESS_EXPIRY_AHEAD_NS = BigInt(MAX_INGRESS_TTL_US + PERMITTED_DRIFT_AT_VALIDATOR_US) * 1000n;

assert(MAX_INGRESS_BYTES_PER_MESSAGE < HTTP_MAX_REQUEST_BODY_BYTES, "a message at the ingress limit must fit in an HTTP body");
assert(MAX_INGRESS_EXPIRY_AHEAD_NS === 330_000_000_000n, "expiry window is 5 min + 30 s");

// ---------------------------------------------------------------------------------------------
// Types (field names as on the wire)

/** The content of an update call. A type alias, so that it is a HashableMap for requestId(). */
export type CallContent = {
  readonly request_type: "call";
  readonly canister_id: Uint8Array;
  readonly method_name: string;
  readonly arg: Uint8Array;
  readonly sender: Uint8Array;
  /** Nanoseconds since the Unix epoch. */
  readonly ingress_expiry: bigint;
  readonly nonce?: Uint8Array;
};

export type Delegation = {
  readonly pubkey: Uint8Array;
  /** Nanoseconds since the Unix epoch. */
  readonly expiration: bigint;
  readonly targets?: readonly Uint8Array[];
};

export interface SignedDelegation {
  readonly delegation: Delegation;
  readonly signature: Uint8Array;
}

/**
 * An envelope around any request content (call, query, read_state): the authentication fields are
 * the same for all three (interface spec "Envelope").
 */
export interface RequestEnvelope<C extends { readonly sender: Uint8Array }> {
  readonly content: C;
  /** DER public key of the sender; absent for the anonymous sender. */
  readonly sender_pubkey?: Uint8Array;
  /** Signature over "\x0Aic-request" ‖ request id; absent for the anonymous sender. */
  readonly sender_sig?: Uint8Array;
  /** Decoded so that it can be refused with a clear message: delegations are not supported yet. */
  readonly sender_delegation?: readonly SignedDelegation[];
}

export type Envelope = RequestEnvelope<CallContent>;
/** Any request's envelope, for the checks all three request types share. */
export type AnyEnvelope = RequestEnvelope<{ readonly sender: Uint8Array }>;

// ---------------------------------------------------------------------------------------------
// Rejections

/**
 * Every way the HTTP handler refuses a call before it reaches the ingress pool, in the order the
 * checks run, with the HTTP status the IC answers. `when` is for documentation.
 */
export const INGRESS_REJECTIONS = {
  "body-too-large": { httpStatus: 413, when: "the HTTP body is larger than the replica's 5 MiB request limit (checked before decoding)" },
  "malformed-cbor": { httpStatus: 400, when: "the body is not well-formed CBOR of the kinds the agent writes (one item, text map keys, no floats, only tag 55799)" },
  "malformed-envelope": { httpStatus: 400, when: "the CBOR is not a request envelope: a field is missing or has the wrong type, or a principal is longer than 29 bytes" },
  "wrong-request-type": { httpStatus: 400, when: "content.request_type is not the endpoint's (\"call\", \"query\" or \"read_state\")" },
  "incomplete-authentication": { httpStatus: 400, when: "sender_pubkey without sender_sig or the reverse, or sender_delegation without both" },
  "invalid-effective-canister-id": { httpStatus: 400, when: "the effective canister id taken from the URL is not a principal" },
  "effective-canister-id-mismatch": { httpStatus: 400, when: "content.canister_id differs from the effective canister id of the URL (calls to aaaaa-aa excepted)" },
  "message-too-large": { httpStatus: 413, when: "the message counts more bytes than max_ingress_bytes_per_message (2 MiB on application subnets)" },
  "ingress-expired": { httpStatus: 400, when: "ingress_expiry is earlier than the replica's time" },
  "ingress-expiry-too-far": { httpStatus: 400, when: "ingress_expiry is more than MAX_INGRESS_TTL (5 min) + 30 s after the replica's time" },
  "nonce-too-big": { httpStatus: 400, when: "content.nonce is longer than 32 bytes" },
  "missing-signature": { httpStatus: 400, when: "a sender other than the anonymous principal sent no sender_pubkey and sender_sig" },
  "anonymous-with-signature": { httpStatus: 400, when: "the anonymous sender carries sender_pubkey and sender_sig" },
  "sender-pubkey-mismatch": { httpStatus: 400, when: "content.sender is not the self-authenticating principal of sender_pubkey" },
  "delegation-not-supported": { httpStatus: 400, when: "the envelope carries sender_delegation, which this replica does not verify yet" },
  "unsupported-public-key": { httpStatus: 400, when: "sender_pubkey is not a DER Ed25519, ECDSA P-256 or ECDSA secp256k1 key" },
  "invalid-signature": { httpStatus: 400, when: "sender_sig does not verify over \"\\x0Aic-request\" ‖ request id under sender_pubkey" },
} as const satisfies Readonly<Record<string, { readonly httpStatus: 400 | 413; readonly when: string }>>;

export type IngressRejectionKind = keyof typeof INGRESS_REJECTIONS;

export interface IngressRejection {
  readonly kind: IngressRejectionKind;
  readonly httpStatus: number;
  /** One sentence for the user, naming the field and the expected and actual values. */
  readonly message: string;
}

export function reject(kind: IngressRejectionKind, message: string): IngressRejection {
  return { kind, httpStatus: INGRESS_REJECTIONS[kind].httpStatus, message };
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * CBOR with the self-describing tag 55799 in front, keys in the agent's order (agent-compat §3).
 * Throws only on values CBOR cannot hold, such as an ingress_expiry of 2^64 or more.
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encodeWithSelfDescribedTag(envelopeToCbor(envelope));
}

function envelopeToCbor(envelope: Envelope): Record<string, CborValue> {
  const body: Record<string, CborValue> = { content: contentToCbor(envelope.content) };
  if (envelope.sender_pubkey !== undefined) body.sender_pubkey = envelope.sender_pubkey;
  if (envelope.sender_sig !== undefined) body.sender_sig = envelope.sender_sig;
  if (envelope.sender_delegation !== undefined) body.sender_delegation = envelope.sender_delegation.map(signedDelegationToCbor);
  return body;
}

/** The agent writes request_type, canister_id, method_name, arg, sender, ingress_expiry, nonce. */
function contentToCbor(content: CallContent): Record<string, CborValue> {
  const body: Record<string, CborValue> = {
    request_type: content.request_type,
    canister_id: content.canister_id,
    method_name: content.method_name,
    arg: content.arg,
    sender: content.sender,
    ingress_expiry: content.ingress_expiry,
  };
  if (content.nonce !== undefined) body.nonce = content.nonce;
  return body;
}

function signedDelegationToCbor(signed: SignedDelegation): Record<string, CborValue> {
  const delegation: Record<string, CborValue> = { pubkey: signed.delegation.pubkey, expiration: signed.delegation.expiration };
  if (signed.delegation.targets !== undefined) delegation.targets = [...signed.delegation.targets];
  return { delegation, signature: signed.signature };
}

// ---------------------------------------------------------------------------------------------
// Decoding

export type DecodedEnvelope = { readonly ok: true; readonly envelope: Envelope } | { readonly ok: false; readonly rejection: IngressRejection };

/**
 * Decodes a call envelope (tag 55799 optional, any key order, definite or indefinite lengths).
 * Unknown fields are ignored, as the IC's serde structs ignore them; the request id covers only the
 * known fields, as the IC's does. Never throws.
 */
export function decodeEnvelope(bytes: Uint8Array): DecodedEnvelope {
  return decodeEnvelopeWith(bytes, parseCallContent);
}

/** Reads the typed fields of an envelope's content; throws (inside the decoder only) on a bad one. */
export type ContentParser<C extends { readonly sender: Uint8Array }> = (content: FieldReader) => C;

/** decodeEnvelope for any request content. Never throws. */
export function decodeEnvelopeWith<C extends { readonly sender: Uint8Array }>(
  bytes: Uint8Array,
  parseContent: ContentParser<C>,
): { readonly ok: true; readonly envelope: RequestEnvelope<C> } | { readonly ok: false; readonly rejection: IngressRejection } {
  try {
    const wellFormed = checkCborWellFormed(bytes);
    if (!wellFormed.ok) return refused(reject("malformed-cbor", `The request body is not valid CBOR: ${wellFormed.reason}.`));
    // A plain Uint8Array view, because the decoder slices its input: a Node Buffer would hand out
    // views into the caller's memory, a Uint8Array hands out copies the envelope can own.
    const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    return { ok: true, envelope: parseEnvelope(decode(plain), parseContent) };
  } catch (error) {
    if (error instanceof EnvelopeParseError) return refused(error.rejection);
    // The well-formedness check leaves nothing the decoder should refuse; this keeps decoding total.
    return refused(reject("malformed-cbor", `The request body could not be decoded: ${errorText(error)}.`));
  }
}

const refused = (rejection: IngressRejection): { readonly ok: false; readonly rejection: IngressRejection } => ({ ok: false, rejection });

/** Thrown by FieldReader inside decodeEnvelope only, which turns it into a typed result. */
class EnvelopeParseError extends Error {
  constructor(readonly rejection: IngressRejection) {
    super(rejection.message);
  }
}

function parseEnvelope<C extends { readonly sender: Uint8Array }>(value: unknown, parseContent: ContentParser<C>): RequestEnvelope<C> {
  const envelope = FieldReader.root(value);
  const content = parseContent(envelope.map("content"));
  const senderPubkey = envelope.optionalBytes("sender_pubkey");
  const senderSig = envelope.optionalBytes("sender_sig");
  const delegations = envelope.optionalArray("sender_delegation");
  return {
    content,
    ...(senderPubkey === undefined ? {} : { sender_pubkey: senderPubkey }),
    ...(senderSig === undefined ? {} : { sender_sig: senderSig }),
    ...(delegations === undefined ? {} : { sender_delegation: delegations.map((d, i) => parseSignedDelegation(d, i)) }),
  };
}

function parseCallContent(content: FieldReader): CallContent {
  content.requestType("call");
  const nonce = content.optionalBytes("nonce");
  return {
    request_type: "call",
    canister_id: content.principal("canister_id"),
    method_name: content.text("method_name"),
    arg: content.bytes("arg"),
    sender: content.principal("sender"),
    ingress_expiry: content.nat("ingress_expiry"),
    ...(nonce === undefined ? {} : { nonce }),
  };
}

function parseSignedDelegation(value: unknown, index: number): SignedDelegation {
  const signed = FieldReader.element(value, `sender_delegation[${index}]`);
  const delegation = signed.map("delegation");
  const targets = delegation.optionalArray("targets");
  return {
    delegation: {
      pubkey: delegation.bytes("pubkey"),
      expiration: delegation.nat("expiration"),
      ...(targets === undefined ? {} : { targets: targets.map((t, i) => delegation.asBytes(t, `targets[${i}]`)) }),
    },
    signature: signed.bytes("signature"),
  };
}

/** Reads typed fields of one decoded CBOR map; a missing or mistyped field ends the parse. */
export class FieldReader {
  private constructor(
    private readonly fields: Readonly<Record<string, unknown>>,
    /** Where this map sits in the envelope, for messages: "content", "sender_delegation[0]". */
    private readonly path: string,
  ) {}

  static root(value: unknown): FieldReader {
    if (!isCborMap(value)) throw malformed(`The request body must be a CBOR map (the envelope with content, sender_pubkey, sender_sig), but it is ${describeCbor(value)}.`);
    return new FieldReader(value, "");
  }

  static element(value: unknown, path: string): FieldReader {
    if (!isCborMap(value)) throw malformed(`${path} must be a map, but it is ${describeCbor(value)}.`);
    return new FieldReader(value, path);
  }

  map(key: string): FieldReader {
    const value = this.required(key);
    if (!isCborMap(value)) throw malformed(`${this.name(key)} must be a map, but it is ${describeCbor(value)}.`);
    return new FieldReader(value, this.name(key));
  }

  bytes(key: string): Uint8Array {
    return this.asBytes(this.required(key), key);
  }

  optionalBytes(key: string): Uint8Array | undefined {
    const value = this.optional(key);
    return value === undefined ? undefined : this.asBytes(value, key);
  }

  /** Checks a field's value, or one element of an array field, to be a byte string. */
  asBytes(value: unknown, key: string): Uint8Array {
    if (!(value instanceof Uint8Array)) throw malformed(`${this.name(key)} must be a byte string, but it is ${describeCbor(value)}.`);
    return value;
  }

  /** Checks a field's value, or one element of an array field, to be an array. */
  asArray(value: unknown, key: string): readonly unknown[] {
    if (!Array.isArray(value)) throw malformed(`${this.name(key)} must be an array, but it is ${describeCbor(value)}.`);
    return value;
  }

  /** A principal's raw bytes: a byte string of at most 29 bytes. */
  principal(key: string): Uint8Array {
    const value = this.bytes(key);
    if (value.length > MAX_PRINCIPAL_BYTES) throw malformed(`${this.name(key)} is ${value.length} bytes long, but a principal has at most ${MAX_PRINCIPAL_BYTES} bytes.`);
    return value;
  }

  /** content.request_type must be the endpoint's own. */
  requestType(expected: "call" | "query" | "read_state"): void {
    const requestType = this.text("request_type");
    if (requestType === expected) return;
    const where = { call: "/call", query: "/query", read_state: "/read_state" } as const;
    throw new EnvelopeParseError(
      reject("wrong-request-type", `content.request_type is "${requestType}", but the ${where[expected]} endpoint accepts only "${expected}" (calls go to /call, queries to /query, read_state requests to /read_state).`),
    );
  }

  /** An array field; each element is handed to `element` with its index. */
  array<T>(key: string, element: (value: unknown, index: number) => T): T[] {
    return this.asArray(this.required(key), key).map(element);
  }

  text(key: string): string {
    const value = this.required(key);
    if (typeof value !== "string") throw malformed(`${this.name(key)} must be a text string, but it is ${describeCbor(value)}.`);
    return value;
  }

  /** An unsigned integer; the decoder yields a number up to 32 bits and a bigint for 64 bits. */
  nat(key: string): bigint {
    const value = this.required(key);
    if ((typeof value === "number" && Number.isSafeInteger(value) && value >= 0) || (typeof value === "bigint" && value >= 0n)) return BigInt(value);
    throw malformed(`${this.name(key)} must be an unsigned integer (nanoseconds since 1970), but it is ${describeCbor(value)}.`);
  }

  optionalArray(key: string): readonly unknown[] | undefined {
    const value = this.optional(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw malformed(`${this.name(key)} must be an array, but it is ${describeCbor(value)}.`);
    return value;
  }

  /** A present null goes on to the type check, which names it. */
  private required(key: string): unknown {
    const value = this.own(key);
    if (value === undefined) throw malformed(`${this.name(key)} is missing${this.path === "" ? " from the envelope" : ""}.`);
    return value;
  }

  /** CBOR null counts as absent, as for the IC's serde Option fields. */
  private optional(key: string): unknown {
    const value = this.own(key);
    return value === null ? undefined : value;
  }

  /** Own fields only: nothing may come from a prototype. */
  private own(key: string): unknown {
    return Object.hasOwn(this.fields, key) ? this.fields[key] : undefined;
  }

  private name(key: string): string {
    return this.path === "" ? key : `${this.path}.${key}`;
  }
}

function malformed(message: string): EnvelopeParseError {
  return new EnvelopeParseError(reject("malformed-envelope", `Could not parse the body as a request envelope: ${message}`));
}

function isCborMap(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function describeCbor(value: unknown): string {
  if (value instanceof Uint8Array) return "a byte string";
  if (typeof value === "string") return "a text string";
  if (typeof value === "number" || typeof value === "bigint") return value >= 0 ? "an unsigned integer" : "a negative integer";
  if (typeof value === "boolean") return `the boolean ${value}`;
  if (value === null || value === undefined) return `CBOR ${String(value)}`;
  return Array.isArray(value) ? "an array" : "a map";
}

// ---------------------------------------------------------------------------------------------
// Validation

export interface ValidationOptions {
  /** The replica's current time in nanoseconds since the Unix epoch. */
  readonly nowNs: bigint;
  /** The subnet's max_ingress_bytes_per_message; 2 MiB (application subnets) by default. */
  readonly maxBytes?: number;
  /** The canister id from the request URL, in textual form; checked against content.canister_id. */
  readonly effectiveCanisterId?: string;
  /** Where signature checks are remembered; one memo shared by the process by default. */
  readonly memo?: SenderVerificationMemo;
}

export interface ValidatedCall {
  readonly requestId: RequestId;
  readonly requestIdHex: string;
  readonly sender: PrincipalText;
  readonly canisterId: CanisterId;
  readonly method: string;
  readonly arg: Uint8Array;
  readonly expiryNs: bigint;
  /**
   * What the IC counts against max_ingress_bytes_per_message and the block's byte budget
   * (SignedIngress::count_bytes): the envelope re-encoded without the tag, plus the 32-byte
   * message id. Re-encoding makes it independent of how the client laid out its CBOR.
   */
  readonly sizeBytes: number;
}

export type CallValidation = { readonly ok: true; readonly call: ValidatedCall } | { readonly ok: false; readonly rejection: IngressRejection };

// The checks below are shared with the query and read_state requests (read-requests.ts).

/** Validates a call as the IC's HTTP handler does before the ingress pool (see the file header). */
export function validateCallEnvelope(input: Uint8Array | Envelope, options: ValidationOptions): CallValidation {
  const bytes = input instanceof Uint8Array ? input : encodeEnvelopeObject(input);
  if (bytes === undefined) return refused(reject("malformed-envelope", "Could not parse the body as a call envelope: the envelope object cannot be encoded as CBOR."));
  if (bytes.length > HTTP_MAX_REQUEST_BODY_BYTES) {
    return refused(reject("body-too-large", `The request body is ${bytes.length} bytes, more than the ${HTTP_MAX_REQUEST_BODY_BYTES} bytes (5 MiB) the replica accepts in one HTTP request.`));
  }
  const decoded = decodeEnvelope(bytes);
  if (!decoded.ok) return decoded;
  const envelope = decoded.envelope;
  const id = requestId(envelope.content);
  const sizeBytes = countBytes(envelope);
  const rejection =
    checkAuthenticationFields(envelope) ??
    checkEffectiveCanisterId(envelope.content, options.effectiveCanisterId) ??
    checkSize(id, sizeBytes, options.maxBytes ?? MAX_INGRESS_BYTES_PER_MESSAGE) ??
    checkExpiry(envelope.content.ingress_expiry, options.nowNs) ??
    checkNonce(envelope.content.nonce) ??
    checkSender(envelope, id, options.memo ?? sharedSenderMemo);
  return rejection === undefined ? { ok: true, call: validatedCall(envelope.content, id, sizeBytes) } : refused(rejection);
}

/** Objects arrive typed, but a caller may still smuggle in something CBOR cannot hold. */
function encodeEnvelopeObject(envelope: Envelope): Uint8Array | undefined {
  try {
    return encodeEnvelope(envelope);
  } catch {
    return undefined;
  }
}

function countBytes(envelope: Envelope): number {
  return encode(envelopeToCbor(envelope)).length + MESSAGE_ID_BYTES;
}

function validatedCall(content: CallContent, id: RequestId, sizeBytes: number): ValidatedCall {
  return {
    requestId: id,
    requestIdHex: bytesToHex(id),
    sender: principalTextOf(content.sender) as PrincipalText,
    canisterId: principalTextOf(content.canister_id) as CanisterId,
    method: content.method_name,
    arg: content.arg,
    expiryNs: content.ingress_expiry,
    sizeBytes,
  };
}

/** The IC turns these combinations into "missing pubkey or signature" while parsing (400). */
export function checkAuthenticationFields(envelope: AnyEnvelope): IngressRejection | undefined {
  const hasKey = envelope.sender_pubkey !== undefined;
  const hasSig = envelope.sender_sig !== undefined;
  if (hasKey && !hasSig) return reject("incomplete-authentication", "The envelope has sender_pubkey but no sender_sig; a signed request carries both, an anonymous request neither.");
  if (!hasKey && hasSig) return reject("incomplete-authentication", "The envelope has sender_sig but no sender_pubkey; a signed request carries both, an anonymous request neither.");
  if (!hasKey && envelope.sender_delegation !== undefined) {
    return reject("incomplete-authentication", "The envelope has sender_delegation but no sender_pubkey and sender_sig; a delegation is only meaningful in a signed request.");
  }
  return undefined;
}

/**
 * Boundary nodes route and filter by the URL's canister id while the replica executes
 * content.canister_id, so the two must agree. The management canister is exempt: its effective
 * canister id comes from the call's argument instead (call.rs).
 */
export function checkEffectiveCanisterId(content: { readonly canister_id: Uint8Array }, effectiveCanisterId: string | undefined): IngressRejection | undefined {
  if (effectiveCanisterId === undefined) return undefined;
  let effective: Uint8Array;
  try {
    effective = Principal.fromText(effectiveCanisterId).toUint8Array();
  } catch (error) {
    return reject("invalid-effective-canister-id", `The effective canister id "${effectiveCanisterId}" in the request URL is not a valid principal (${errorText(error)}).`);
  }
  if (content.canister_id.length === 0 || equalBytes(content.canister_id, effective)) return undefined;
  return reject(
    "effective-canister-id-mismatch",
    `content.canister_id is ${principalTextOf(content.canister_id)}, but the request URL names the effective canister id ${principalTextOf(effective)}; they must be the same (only calls to the management canister aaaaa-aa may differ).`,
  );
}

function checkSize(id: RequestId, sizeBytes: number, maxBytes: number): IngressRejection | undefined {
  if (sizeBytes <= maxBytes) return undefined;
  return reject(
    "message-too-large",
    `Request ${bytesToHex(id)} is too large: it counts ${sizeBytes} bytes (the envelope plus its 32-byte id), more than the ${maxBytes} bytes allowed per ingress message on this subnet.`,
  );
}

/**
 * The IC accepts now ≤ expiry ≤ now + MAX_INGRESS_TTL + 30 s (rs/validator). Both messages start
 * with "Invalid request expiry: ", the prefix on which the agent resynchronises its clock and
 * resends (agent-compat §2, §6).
 */
export function checkExpiry(expiryNs: bigint, nowNs: bigint): IngressRejection | undefined {
  const window = `between the replica's time and ${formatSeconds(MAX_INGRESS_EXPIRY_AHEAD_NS)} later (MAX_INGRESS_TTL of 5 min plus 30 s of permitted clock drift)`;
  if (expiryNs < nowNs) {
    return reject("ingress-expired", `Invalid request expiry: ingress_expiry ${formatTime(expiryNs)} is ${formatSeconds(nowNs - expiryNs)} before the replica's time ${formatTime(nowNs)}; it must lie ${window}.`);
  }
  if (expiryNs - nowNs > MAX_INGRESS_EXPIRY_AHEAD_NS) {
    return reject("ingress-expiry-too-far", `Invalid request expiry: ingress_expiry ${formatTime(expiryNs)} is ${formatSeconds(expiryNs - nowNs)} after the replica's time ${formatTime(nowNs)}; it must lie ${window}.`);
  }
  return undefined;
}

export function checkNonce(nonce: Uint8Array | undefined): IngressRejection | undefined {
  if (nonce === undefined || nonce.length <= MAX_NONCE_BYTES) return undefined;
  return reject("nonce-too-big", `content.nonce is ${nonce.length} bytes long, but a nonce may have at most ${MAX_NONCE_BYTES} bytes.`);
}

export function checkSender(envelope: AnyEnvelope, id: RequestId, memo: SenderVerificationMemo = sharedSenderMemo): IngressRejection | undefined {
  if (envelope.sender_delegation !== undefined) return checkDelegatedSender(envelope);
  const auth = memo.verify({ sender: envelope.content.sender, requestId: id, senderPubkey: envelope.sender_pubkey, senderSig: envelope.sender_sig });
  return auth.ok ? undefined : senderRejection(auth, envelope, id);
}

/**
 * The IC checks the sender against sender_pubkey before it walks the delegation chain, so those two
 * failures keep their own kinds here; everything after that point is refused as unsupported.
 */
function checkDelegatedSender(envelope: AnyEnvelope): IngressRejection {
  const { sender } = envelope.content;
  const pubkey = envelope.sender_pubkey ?? new Uint8Array();
  if (equalBytes(sender, ANONYMOUS_SENDER)) return anonymousWithSignature();
  if (!equalBytes(selfAuthenticating(pubkey), sender)) return senderPubkeyMismatch(sender, pubkey);
  const count = envelope.sender_delegation?.length ?? 0;
  return reject(
    "delegation-not-supported",
    `The envelope carries a sender_delegation chain of ${count} delegation(s); this replica does not verify delegated identities (such as Internet Identity) yet, so send the call signed directly by the key of ${principalTextOf(sender)}.`,
  );
}

function senderRejection(auth: Extract<SenderAuthResult, { ok: false }>, envelope: AnyEnvelope, id: RequestId): IngressRejection {
  const { sender } = envelope.content;
  const pubkey = envelope.sender_pubkey ?? new Uint8Array();
  switch (auth.failure) {
    case "anonymous-with-signature":
      return anonymousWithSignature();
    case "missing-signature":
      return reject("missing-signature", `Missing signature from user ${principalTextOf(sender)}: any sender other than the anonymous principal 2vxsx-fae must send sender_pubkey and sender_sig.`);
    case "sender-key-mismatch":
      return senderPubkeyMismatch(sender, pubkey);
    case "unsupported-key":
      return reject(
        "unsupported-public-key",
        `Invalid signature: sender_pubkey (${pubkey.length} bytes, starting ${bytesToHex(pubkey.subarray(0, 12))}) is not a DER-encoded Ed25519, ECDSA P-256 or ECDSA secp256k1 public key, the schemes this replica verifies.`,
      );
    case "bad-signature":
      return reject("invalid-signature", `Invalid signature: ${auth.message} (request id ${bytesToHex(id)}); sender_sig must sign "\\x0Aic-request" followed by the request id.`);
  }
}

function anonymousWithSignature(): IngressRejection {
  return reject("anonymous-with-signature", "The sender is the anonymous principal 2vxsx-fae, so the envelope must not carry sender_pubkey or sender_sig.");
}

function senderPubkeyMismatch(sender: Uint8Array, pubkey: Uint8Array): IngressRejection {
  return reject(
    "sender-pubkey-mismatch",
    `content.sender is ${principalTextOf(sender)}, but sender_pubkey belongs to ${principalTextOf(selfAuthenticating(pubkey))}; the sender must be the self-authenticating principal of the key (SHA-224 of the DER key ‖ 0x02).`,
  );
}

// ---------------------------------------------------------------------------------------------
// Memo of signature checks

/** No supported DER key and signature come close to this; longer inputs are refused cheaply anyway. */
const MEMO_KEY_MAX_BYTES = 512;

/**
 * Remembers sender verification results keyed by all of verifySender's inputs (sender, request id,
 * key, signature), so that the replicas of a simulated subnet validating the same message pay for
 * its signature check once. A hit returns exactly what verifySender returns for those inputs, so
 * no outcome depends on the memo. Bounded: the oldest entry goes first.
 */
export class SenderVerificationMemo {
  private readonly results = new Map<string, SenderAuthResult>();
  private hitCount = 0;
  private missCount = 0;

  constructor(private limit = 4096) {
    assert(Number.isSafeInteger(limit) && limit >= 1, `memo capacity must be a positive integer, got ${limit}`);
  }

  get capacity(): number {
    return this.limit;
  }

  /** Lowering the capacity forgets the oldest results at once. */
  set capacity(entries: number) {
    assert(Number.isSafeInteger(entries) && entries >= 1, `memo capacity must be a positive integer, got ${entries}`);
    this.limit = entries;
    while (this.results.size > this.limit) this.forgetOldest();
  }

  verify(request: SignedRequest): SenderAuthResult {
    const key = memoKey(request);
    if (key === undefined) return verifySender(request);
    const remembered = this.results.get(key);
    if (remembered !== undefined) {
      this.hitCount++;
      return remembered;
    }
    this.missCount++;
    const result = verifySender(request);
    if (this.results.size >= this.limit) this.forgetOldest();
    this.results.set(key, result);
    return result;
  }

  stats(): { readonly hits: number; readonly misses: number; readonly size: number } {
    return { hits: this.hitCount, misses: this.missCount, size: this.results.size };
  }

  private forgetOldest(): void {
    const oldest = this.results.keys().next();
    if (oldest.done !== true) this.results.delete(oldest.value);
  }
}

/** Only signed requests are worth remembering: anonymous checks cost nothing. */
function memoKey(request: SignedRequest): string | undefined {
  const { senderPubkey, senderSig } = request;
  if (senderPubkey === undefined || senderSig === undefined) return undefined;
  if (senderPubkey.length + senderSig.length > MEMO_KEY_MAX_BYTES) return undefined;
  return [request.sender, request.requestId, senderPubkey, senderSig].map(bytesToHex).join(":");
}

export const sharedSenderMemo = new SenderVerificationMemo();
registerProcessMemo({
  name: "senderVerification",
  get size() {
    return sharedSenderMemo.stats().size;
  },
  get capacity() {
    return sharedSenderMemo.capacity;
  },
  set capacity(entries: number) {
    sharedSenderMemo.capacity = entries;
  },
});

// ---------------------------------------------------------------------------------------------
// Small helpers

export function principalTextOf(bytes: Uint8Array): string {
  return Principal.fromUint8Array(bytes).toText();
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** An exception's text without its final full stop, to sit inside a sentence of ours. */
function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.+$/, "");
}

/** "123.456 s" for a non-negative duration in nanoseconds. */
function formatSeconds(ns: bigint): string {
  const millis = ns / 1_000_000n;
  return `${millis / 1000n}.${String(millis % 1000n).padStart(3, "0")} s`;
}

/** "1700000000000000000 ns (2023-11-14T22:13:20.000Z)"; the date only for years 0–9999. */
function formatTime(ns: bigint): string {
  const iso = isoTimestamp(ns / 1_000_000n);
  return iso === undefined ? `${ns} ns` : `${ns} ns (${iso})`;
}

const MS_PER_DAY = 86_400_000n;

/**
 * The UTC date and time of a millisecond count since 1970 in ISO 8601 (as Date#toISOString writes
 * it), by integer arithmetic on the proleptic Gregorian calendar — no Date object, so nothing here
 * can read the host's clock or time zone. Undefined outside the years 0–9999.
 */
export function isoTimestamp(millis: bigint): string | undefined {
  const days = millis >= 0n ? millis / MS_PER_DAY : -((-millis + MS_PER_DAY - 1n) / MS_PER_DAY);
  const ofDay = Number(millis - days * MS_PER_DAY);
  const { year, month, day } = civilFromDays(Number(days));
  if (year < 0 || year > 9999) return undefined;
  const two = (v: number): string => String(v).padStart(2, "0");
  const time = `${two(Math.floor(ofDay / 3_600_000))}:${two(Math.floor(ofDay / 60_000) % 60)}:${two(Math.floor(ofDay / 1000) % 60)}.${String(ofDay % 1000).padStart(3, "0")}`;
  return `${String(year).padStart(4, "0")}-${two(month)}-${two(day)}T${time}Z`;
}

/** Year, month (1–12) and day of the month of a day count since 1970-01-01 (400-year eras of 146,097 days). */
function civilFromDays(daysSinceEpoch: number): { year: number; month: number; day: number } {
  const z = daysSinceEpoch + 719_468; // days since 0000-03-01
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153); // 0 = March
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}
