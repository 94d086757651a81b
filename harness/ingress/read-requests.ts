// The two non-replicated request types of the IC's HTTP interface: `query`
// (`POST /api/v{2,3}/canister/<ecid>/query`) and `read_state`
// (`POST /api/v{2,3}/{canister,subnet}/<id>/read_state`), decoded as strictly as call envelopes
// (envelope.ts) and checked the way the IC's validator checks them (rs/validator
// ingress_validation.rs; interface spec "Request: Query call", "Request: Read state"):
//
// - the authentication fields and the sender's signature exactly as for calls;
// - ingress_expiry in [now, now + 5 min + 30 s] — except for the anonymous sender, whose query
//   and read_state requests the replica serves whatever their expiry (agent-compat §6: the agent's
//   own time synchronisation sends anonymous read_state requests from an unsynchronised clock);
// - a query's canister_id must be the URL's effective canister id (the management canister
//   excepted, as for calls);
// - read_state: at most 1,000 paths of at most 127 labels each (MAXIMUM_NUMBER_OF_PATHS,
//   MAXIMUM_NUMBER_OF_LABELS_PER_PATH — part of the spec, changing them would be breaking).
//
// Every failure is a typed rejection with the HTTP status the IC answers; nothing here throws on
// untrusted input.
import { requestId, type RequestId } from "../crypto/request-id.ts";
import { ANONYMOUS_SENDER } from "../crypto/sender-auth.ts";
import type { CanisterId, PrincipalText } from "../execution/interfaces.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  checkAuthenticationFields,
  checkEffectiveCanisterId,
  checkExpiry,
  checkNonce,
  checkSender,
  decodeEnvelopeWith,
  HTTP_MAX_REQUEST_BODY_BYTES,
  principalTextOf,
  reject,
  type FieldReader,
  type IngressRejection,
  type RequestEnvelope,
  type SenderVerificationMemo,
} from "./envelope.ts";

/** rs/validator MAXIMUM_NUMBER_OF_PATHS. */
export const MAX_READ_STATE_PATHS = 1_000;
/** rs/validator MAXIMUM_NUMBER_OF_LABELS_PER_PATH. */
export const MAX_LABELS_PER_PATH = 127;

/** The content of a query, field names as on the wire (a type alias: a HashableMap for requestId). */
export type QueryContent = {
  readonly request_type: "query";
  readonly canister_id: Uint8Array;
  readonly method_name: string;
  readonly arg: Uint8Array;
  readonly sender: Uint8Array;
  readonly ingress_expiry: bigint;
  readonly nonce?: Uint8Array;
};

export type ReadStateContent = {
  readonly request_type: "read_state";
  readonly paths: readonly (readonly Uint8Array[])[];
  readonly sender: Uint8Array;
  readonly ingress_expiry: bigint;
  readonly nonce?: Uint8Array;
};

/** Rejections of read_state requests beyond the ones every request can get. */
export const READ_STATE_REJECTIONS = {
  "too-many-paths": { httpStatus: 400, when: `the request names more than ${MAX_READ_STATE_PATHS} paths` },
  "path-too-long": { httpStatus: 400, when: `a path has more than ${MAX_LABELS_PER_PATH} labels` },
} as const satisfies Readonly<Record<string, { readonly httpStatus: 400; readonly when: string }>>;

export type ReadRequestRejection = IngressRejection | { readonly kind: keyof typeof READ_STATE_REJECTIONS; readonly httpStatus: number; readonly message: string };

export interface ReadRequestOptions {
  /** The replica's time, ns since the Unix epoch. */
  readonly nowNs: bigint;
  readonly memo?: SenderVerificationMemo;
}

export interface ValidatedQuery {
  readonly requestId: RequestId;
  readonly requestIdHex: string;
  readonly sender: PrincipalText;
  readonly canisterId: CanisterId;
  readonly method: string;
  readonly arg: Uint8Array;
}

export interface ValidatedReadState {
  readonly requestId: RequestId;
  readonly sender: PrincipalText;
  /** The sender's raw principal bytes (request_status reads are the sender's own). */
  readonly senderBytes: Uint8Array;
  readonly paths: readonly (readonly Uint8Array[])[];
}

export type Validation<T> = { readonly ok: true; readonly request: T } | { readonly ok: false; readonly rejection: ReadRequestRejection };

/** A query for `effectiveCanisterId` (the URL's textual id). */
export function validateQueryEnvelope(bytes: Uint8Array, effectiveCanisterId: string, options: ReadRequestOptions): Validation<ValidatedQuery> {
  const decoded = decodeBounded(bytes, parseQueryContent);
  if (!decoded.ok) return decoded;
  const { envelope } = decoded;
  const id = requestId(envelope.content);
  const rejection =
    checkAuthenticationFields(envelope) ??
    checkEffectiveCanisterId(envelope.content, effectiveCanisterId) ??
    checkReadExpiry(envelope, options.nowNs) ??
    checkNonce(envelope.content.nonce) ??
    checkSender(envelope, id, options.memo);
  if (rejection !== undefined) return { ok: false, rejection };
  const c = envelope.content;
  return {
    ok: true,
    request: {
      requestId: id,
      requestIdHex: bytesToHex(id),
      sender: principalTextOf(c.sender) as PrincipalText,
      canisterId: principalTextOf(c.canister_id) as CanisterId,
      method: c.method_name,
      arg: c.arg,
    },
  };
}

export function validateReadStateEnvelope(bytes: Uint8Array, options: ReadRequestOptions): Validation<ValidatedReadState> {
  const decoded = decodeBounded(bytes, parseReadStateContent);
  if (!decoded.ok) return decoded;
  const { envelope } = decoded;
  const id = requestId(envelope.content);
  const rejection =
    checkAuthenticationFields(envelope) ??
    checkReadExpiry(envelope, options.nowNs) ??
    checkNonce(envelope.content.nonce) ??
    checkPaths(envelope.content.paths) ??
    checkSender(envelope, id, options.memo);
  if (rejection !== undefined) return { ok: false, rejection };
  const c = envelope.content;
  return { ok: true, request: { requestId: id, sender: principalTextOf(c.sender) as PrincipalText, senderBytes: c.sender, paths: c.paths } };
}

function decodeBounded<C extends { readonly sender: Uint8Array }>(
  bytes: Uint8Array,
  parse: (content: FieldReader) => C,
): { readonly ok: true; readonly envelope: RequestEnvelope<C> } | { readonly ok: false; readonly rejection: IngressRejection } {
  if (bytes.length > HTTP_MAX_REQUEST_BODY_BYTES) {
    return { ok: false, rejection: reject("body-too-large", `The request body is ${bytes.length} bytes, more than the ${HTTP_MAX_REQUEST_BODY_BYTES} bytes (5 MiB) the replica accepts in one HTTP request.`) };
  }
  return decodeEnvelopeWith(bytes, parse);
}

function parseQueryContent(content: FieldReader): QueryContent {
  content.requestType("query");
  const nonce = content.optionalBytes("nonce");
  return {
    request_type: "query",
    canister_id: content.principal("canister_id"),
    method_name: content.text("method_name"),
    arg: content.bytes("arg"),
    sender: content.principal("sender"),
    ingress_expiry: content.nat("ingress_expiry"),
    ...(nonce === undefined ? {} : { nonce }),
  };
}

function parseReadStateContent(content: FieldReader): ReadStateContent {
  content.requestType("read_state");
  const nonce = content.optionalBytes("nonce");
  return {
    request_type: "read_state",
    paths: content.array("paths", (path, i) => {
      const labels = content.asArray(path, `paths[${i}]`);
      return labels.map((label, k) => content.asBytes(label, `paths[${i}][${k}]`));
    }),
    sender: content.principal("sender"),
    ingress_expiry: content.nat("ingress_expiry"),
    ...(nonce === undefined ? {} : { nonce }),
  };
}

const isAnonymous = (sender: Uint8Array): boolean => sender.length === 1 && sender[0] === ANONYMOUS_SENDER[0];

/** Anonymous queries and read_state requests are served whatever their expiry (see the header). */
function checkReadExpiry(envelope: RequestEnvelope<{ readonly sender: Uint8Array; readonly ingress_expiry: bigint }>, nowNs: bigint): IngressRejection | undefined {
  if (isAnonymous(envelope.content.sender) && envelope.sender_pubkey === undefined && envelope.sender_sig === undefined) return undefined;
  return checkExpiry(envelope.content.ingress_expiry, nowNs);
}

function checkPaths(paths: readonly (readonly Uint8Array[])[]): ReadRequestRejection | undefined {
  if (paths.length > MAX_READ_STATE_PATHS) {
    return { kind: "too-many-paths", httpStatus: 400, message: `The read_state request names ${paths.length} paths; at most ${MAX_READ_STATE_PATHS} are allowed.` };
  }
  const long = paths.findIndex((p) => p.length > MAX_LABELS_PER_PATH);
  if (long >= 0) {
    return { kind: "path-too-long", httpStatus: 400, message: `Path ${long} of the read_state request has ${paths[long]?.length} labels; at most ${MAX_LABELS_PER_PATH} are allowed.` };
  }
  return undefined;
}
