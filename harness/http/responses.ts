// Response bodies of the IC HTTP interface. CBOR bodies are maps with text keys, unsigned integers,
// byte and text strings and arrays only, tagged 55799 (the spec says to tag; the agents' decoder
// accepts no other tag, no floats and no non-text keys — agent-compat §3, sharp edge 10). Errors
// before any CBOR exists are plain text: the agent puts the body text into its error message and
// looks for the "Invalid request expiry: " prefix in it.
import { encodeWithSelfDescribedTag, type CborValue } from "@dfinity/cbor";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import type { HttpResponse } from "./interfaces.ts";

export function cborResponse(status: number, body: Record<string, CborValue>): HttpResponse {
  return { status, headers: { "content-type": "application/cbor" }, body: encodeWithSelfDescribedTag(body) };
}

export function textResponse(status: number, text: string): HttpResponse {
  return { status, headers: { "content-type": "text/plain; charset=utf-8" }, body: utf8ToBytes(text) };
}

/** 202 with an empty body: the agent polls read_state for the status (agent-compat §2). */
export const ACCEPTED: HttpResponse = { status: 202, headers: {}, body: new Uint8Array() };

/** A refusal before consensus, as the IC's CBOR user error (call endpoints, 200). */
export interface NonReplicatedRejection {
  readonly rejectCode: number;
  readonly errorCode: string;
  readonly message: string;
}

/**
 * v3/v4 calls: `{status: "non_replicated_rejection", reject_code, reject_message, error_code}`;
 * v2 calls: the same without `status` (dfinity/ic call_sync.rs, common.rs CborUserError).
 */
export function rejectionResponse(rejection: NonReplicatedRejection, withStatus: boolean): HttpResponse {
  return cborResponse(200, {
    ...(withStatus ? { status: "non_replicated_rejection" } : {}),
    reject_code: rejection.rejectCode,
    reject_message: rejection.message,
    error_code: rejection.errorCode,
  });
}
