// Which read_state paths a sender may read, checked before the certificate is built, as the IC's
// HTTP handler does (dfinity/ic rs/http_endpoints/public/src/read_state/{canister,subnet}.rs
// verify_paths; interface spec "Request: Read state"):
//
// canister read_state  /time; /canister/<ecid>/{controllers, module_hash}; /canister/<ecid>/metadata/<name>
//                      (an icp:private section: controllers only, 403); /subnet[/<id>[/public_key |
//                      canister_ranges | node[/<node>[/public_key]]]]; /api_boundary_nodes…;
//                      /request_status/<32-byte id>[/status | reply | reject_code | reject_message |
//                      error_code] — one request id per request (400), read by its sender only (403)
// subnet read_state    /time; /subnet…; /subnet/<effective subnet id>/metrics
//
// A canister path must name the URL's effective canister id (400); anything else is 404
// "Invalid path requested.".
import { Principal } from "@dfinity/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { CanisterId, PrincipalText } from "../execution/interfaces.ts";
import type { ReplicaReads } from "../replica/interfaces.ts";
import type { HashHex } from "../types.ts";

export type PathVerdict = { readonly ok: true } | { readonly ok: false; readonly status: 400 | 403 | 404; readonly message: string };

const OK: PathVerdict = { ok: true };
const invalidPath: PathVerdict = { ok: false, status: 404, message: "Invalid path requested." };
const REQUEST_STATUS_FIELDS = new Set(["status", "reply", "reject_code", "reject_message", "error_code"]);
const SUBNET_FIELDS = new Set(["public_key", "canister_ranges", "node"]);
const BOUNDARY_NODE_FIELDS = new Set(["domain", "ipv4_address", "ipv6_address"]);
/** The IC's message ids are 32 bytes (EXPECTED_MESSAGE_ID_LENGTH). */
const REQUEST_ID_BYTES = 32;

const decoder = new TextDecoder("utf-8", { fatal: true });
/** A label as text, or undefined when it is not UTF-8 (then it matches no fixed label). */
function text(label: Uint8Array | undefined): string | undefined {
  if (label === undefined) return undefined;
  try {
    return decoder.decode(label);
  } catch {
    return undefined;
  }
}

export interface CanisterPathContext {
  readonly sender: PrincipalText;
  /** The URL's effective canister id, raw bytes. */
  readonly effectiveCanisterId: Uint8Array;
  readonly reads: Pick<ReplicaReads, "ingressSender" | "canisterInfo">;
}

export function verifyCanisterReadStatePaths(paths: readonly (readonly Uint8Array[])[], ctx: CanisterPathContext): PathVerdict {
  let requestStatusId: string | undefined;
  for (const path of paths) {
    const head = text(path[0]);
    let verdict: PathVerdict;
    if (head === "request_status") {
      verdict = verifyRequestStatusPath(path, ctx, requestStatusId);
      if (verdict.ok) requestStatusId = bytesToHex(path[1] as Uint8Array);
    } else if (head === "canister") verdict = verifyCanisterPath(path, ctx);
    else verdict = verifyCommonPath(path);
    if (!verdict.ok) return verdict;
  }
  return OK;
}

export function verifySubnetReadStatePaths(paths: readonly (readonly Uint8Array[])[], effectiveSubnetId: Uint8Array): PathVerdict {
  for (const path of paths) {
    if (path.length === 3 && text(path[0]) === "subnet" && text(path[2]) === "metrics") {
      const mismatch = principalMismatch(path[1] as Uint8Array, effectiveSubnetId);
      if (mismatch !== undefined) return mismatch;
      continue;
    }
    if (text(path[0]) === "api_boundary_nodes") return invalidPath;
    const verdict = verifyCommonPath(path);
    if (!verdict.ok) return verdict;
  }
  return OK;
}

/** /time, /subnet… and /api_boundary_nodes…: readable by anyone on either endpoint. */
function verifyCommonPath(path: readonly Uint8Array[]): PathVerdict {
  const labels = path.map((label, i) => (i === 1 || i === 3 ? "<id>" : text(label)));
  const [head, , third, , fifth] = labels;
  switch (head) {
    case "time":
      return path.length === 1 ? OK : invalidPath;
    case "subnet":
      if (path.length <= 2) return OK;
      if (path.length === 3) return SUBNET_FIELDS.has(third ?? "") ? OK : invalidPath;
      if (third !== "node") return invalidPath;
      return path.length === 4 || (path.length === 5 && fifth === "public_key") ? OK : invalidPath;
    case "api_boundary_nodes":
      return path.length <= 2 || (path.length === 3 && BOUNDARY_NODE_FIELDS.has(third ?? "")) ? OK : invalidPath;
    default:
      return invalidPath;
  }
}

function verifyCanisterPath(path: readonly Uint8Array[], ctx: CanisterPathContext): PathVerdict {
  const field = text(path[2]);
  if (path.length === 3 && (field === "controllers" || field === "module_hash")) {
    return principalMismatch(path[1] as Uint8Array, ctx.effectiveCanisterId) ?? OK;
  }
  if (path.length !== 4 || field !== "metadata") return invalidPath;
  const name = text(path[3]);
  if (name === undefined) return { ok: false, status: 400, message: "Could not parse the custom section name: it is not UTF-8." };
  const mismatch = principalMismatch(path[1] as Uint8Array, ctx.effectiveCanisterId);
  if (mismatch !== undefined) return mismatch;
  const canister = Principal.fromUint8Array(path[1] as Uint8Array).toText() as CanisterId;
  const info = ctx.reads.canisterInfo(canister);
  if (info === undefined || !info.privateMetadata.includes(name) || info.controllers.includes(ctx.sender)) return OK;
  return { ok: false, status: 403, message: `Custom section ${name.slice(0, 100)} can only be requested by the controllers of the canister.` };
}

function verifyRequestStatusPath(path: readonly Uint8Array[], ctx: CanisterPathContext, earlier: string | undefined): PathVerdict {
  if (path.length < 2 || path.length > 3 || (path.length === 3 && !REQUEST_STATUS_FIELDS.has(text(path[2]) ?? ""))) return invalidPath;
  const id = path[1] as Uint8Array;
  if (id.length !== REQUEST_ID_BYTES) {
    return { ok: false, status: 400, message: `Invalid request id in paths: it is ${id.length} bytes long, a request id has ${REQUEST_ID_BYTES}.` };
  }
  const hex = bytesToHex(id);
  if (earlier !== undefined && earlier !== hex) {
    return { ok: false, status: 400, message: `More than one request id in request_status paths: ${earlier} and ${hex}; ask for one request at a time.` };
  }
  const sender = ctx.reads.ingressSender(hex as HashHex);
  if (sender !== undefined && sender !== ctx.sender) {
    return { ok: false, status: 403, message: "The user tries to access a request id not signed by the caller: only the sender of a request may read its status." };
  }
  return OK;
}

/** A canister or subnet path must name the URL's effective id (400 otherwise). */
function principalMismatch(requested: Uint8Array, effective: Uint8Array): PathVerdict | undefined {
  let requestedText: string;
  try {
    requestedText = Principal.fromUint8Array(requested).toText();
  } catch {
    return { ok: false, status: 400, message: "A path names a principal that is not one." };
  }
  if (requested.length === effective.length && requested.every((b, i) => b === effective[i])) return undefined;
  return { ok: false, status: 400, message: `The path asks about ${requestedText}, but the effective principal id in the URL is ${Principal.fromUint8Array(effective).toText()}; they must be the same.` };
}
