// Signed query responses (interface spec "Request: Query call", "Query response signatures";
// agent-compat §10). The node signs, with its Ed25519 key, "\x0Bic-response" ‖ hash_of_map(M):
//
//   replied:  M = {status: "replied", reply: {arg}, timestamp, request_id}
//   rejected: M = {status: "rejected", reject_code, reject_message, error_code, timestamp, request_id}
//
// The agent rebuilds M from the fields it decodes, so exactly the fields sent are signed (sharp
// edge 6): `reply` is hashed as a nested map and `error_code` is always sent.
import type { CborValue } from "@dfinity/cbor";
import { hexToBytes } from "@noble/hashes/utils.js";
import { domainMessage } from "../crypto/bls-backend.ts";
import type { NodeSigner } from "../crypto/interfaces.ts";
import { hashOfMap, type HashableMap, type RequestId } from "../crypto/request-id.ts";
import type { QueryResponseSigner } from "./interfaces.ts";

export type QueryOutcome =
  | { readonly kind: "reply"; readonly data: Uint8Array }
  | { readonly kind: "reject"; readonly rejectCode: number; readonly message: string; readonly errorCode: string };

/** The 200 body of a query: the outcome and this node's signature over it at `timestampNs`. */
export function signedQueryBody(outcome: QueryOutcome, request: RequestId, timestampNs: bigint, signer: QueryResponseSigner): Record<string, CborValue> {
  const fields: HashableMap =
    outcome.kind === "reply"
      ? { status: "replied", reply: { arg: outcome.data } }
      : { status: "rejected", reject_code: outcome.rejectCode, reject_message: outcome.message, error_code: outcome.errorCode };
  const signed = hashOfMap({ ...fields, timestamp: timestampNs, request_id: request });
  const signature = { timestamp: timestampNs, signature: signer.sign(signed), identity: signer.nodeId };
  return { ...(fields as Record<string, CborValue>), signatures: [signature] };
}

/** A query signer from a node's signer (the bls backend's basic signatures are Ed25519). */
export function querySignerOf(signer: NodeSigner, nodeId: Uint8Array): QueryResponseSigner {
  return { nodeId, sign: (responseHash) => hexToBytes(signer.signBasic(domainMessage("ic-response", responseHash))) };
}
