// IC certificates: {tree, signature, delegation?} in CBOR with the self-describing tag 55799
// (interface specification "Certification" → "Certificate", "Delegation", "Encoding of
// certificates"; research/agent-compat.md §9), how a subnet issues one with its high-threshold
// BLS key, and the verification the JS agent performs:
//
//   root = reconstruct(tree); key = root key, or with a delegation: the inner certificate (no
//   delegation of its own) verified under the root key, then /subnet/<id>/public_key from it, and
//   the effective canister id inside the delegation's ranges (/canister_ranges/<id>/* first, then
//   the legacy /subnet/<id>/canister_ranges); BLS-verify ds("ic-state-root") ‖ root; /time
//   present and, if `nowNs` is given, within the freshness window (5 min; 30 days for the
//   delegation, as the agent does).
//
// Expected failures are typed results, never exceptions.
import { decode, encodeWithSelfDescribedTag, type CborValue } from "@dfinity/cbor";
import { Principal } from "@dfinity/principal";
import { hexToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { ReplicaId } from "../types.ts";
import {
  blsPublicKeyFromDer,
  certificationMessage,
  messageBytes,
  subnetPublicKeyDer,
  verifyBlsBytes,
  type BlsSubnetKeys,
} from "./bls-backend.ts";
import {
  buildHashTree,
  compareLabels,
  fromCborValue,
  labeledChildren,
  lookupPath,
  lookupSubtree,
  prune,
  reconstruct,
  subtree,
  toCborValue,
  value,
  type HashTree,
  type LabeledTree,
} from "./hash-tree.ts";
import { decodeUleb128, encodeUleb128 } from "./request-id.ts";

export interface Delegation {
  readonly subnetId: Uint8Array;
  /** The CBOR bytes of the root subnet's certificate for this subnet. */
  readonly certificate: Uint8Array;
}

export interface Certificate {
  readonly tree: HashTree;
  /** 48-byte BLS signature (G1) on ds("ic-state-root") ‖ reconstruct(tree). */
  readonly signature: Uint8Array;
  readonly delegation?: Delegation;
}

export function encodeCertificate(cert: Certificate): Uint8Array {
  const body: Record<string, CborValue> = { tree: toCborValue(cert.tree), signature: cert.signature };
  if (cert.delegation !== undefined) {
    body.delegation = { subnet_id: cert.delegation.subnetId, certificate: cert.delegation.certificate };
  }
  return encodeWithSelfDescribedTag(body);
}

/** Parses certificate bytes (tag 55799 optional); undefined if they are not a certificate. */
export function decodeCertificate(bytes: Uint8Array): Certificate | undefined {
  let data: unknown;
  try {
    data = decode(bytes);
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return undefined;
  const record = data as Record<string, unknown>;
  const tree = fromCborValue(record.tree);
  const signature = record.signature;
  if (tree === undefined || !(signature instanceof Uint8Array)) return undefined;
  if (record.delegation === undefined) return { tree, signature: Uint8Array.from(signature) };
  const d = record.delegation as Record<string, unknown> | null;
  if (typeof d !== "object" || d === null || !(d.subnet_id instanceof Uint8Array) || !(d.certificate instanceof Uint8Array)) {
    return undefined;
  }
  return {
    tree,
    signature: Uint8Array.from(signature),
    delegation: { subnetId: Uint8Array.from(d.subnet_id), certificate: Uint8Array.from(d.certificate) },
  };
}

/**
 * Certifies a (possibly pruned) tree with the subnet's high-threshold key: `signers` (default:
 * the first `threshold` nodes) each sign a share and the shares are combined.
 */
export function certifyTree(keys: BlsSubnetKeys, tree: HashTree, signers?: readonly ReplicaId[]): Certificate {
  const threshold = keys.verifier.thresholdOf("high");
  const chosen = signers ?? Array.from({ length: threshold }, (_, i) => i as ReplicaId);
  const message = certificationMessage(reconstruct(tree));
  const shares = new Map(chosen.map((node) => [node, keys.signerFor(node).signThresholdShare("high", message)] as const));
  const signature = keys.verifier.combineThreshold("high", message, shares);
  assert(signature !== undefined, `cannot certify with ${chosen.length} of ${threshold} shares`);
  return { tree, signature: hexToBytes(signature) };
}

/**
 * The certificate a read_state (or call) response carries: the height's certificate with its
 * tree pruned to the requested paths plus /time (always revealed); the signature is unchanged
 * because pruning keeps the root hash.
 */
export function witnessCertificate(cert: Certificate, paths: readonly (readonly (Uint8Array | string)[])[]): Certificate {
  return { ...cert, tree: prune(cert.tree, [["time"], ...paths]) };
}

/**
 * A delegation from the root subnet to `subnet`: a root-certified tree revealing /time,
 * /canister_ranges/<id>/<lo of the first range> (the current layout, read by agents ≥ 5),
 * /subnet/<id>/canister_ranges (the legacy one, the only one agent 3.x reads) and
 * /subnet/<id>/public_key.
 */
export function delegateSubnet(
  rootKeys: BlsSubnetKeys,
  subnet: BlsSubnetKeys,
  ranges: readonly CanisterRange[],
  timeNs: bigint,
): Delegation {
  assert(ranges.length > 0, "a delegation scopes at least one canister range");
  const der = subnetPublicKeyDer(subnet);
  const subnetId = subnetIdOfRootKey(der);
  const tree = buildHashTree(
    subtree([
      ["time", value(encodeUleb128(timeNs))],
      ["canister_ranges", subtree([[subnetId, subtree([[(ranges[0] as CanisterRange)[0], value(encodeCanisterRanges(ranges))]])]])],
      ["subnet", subtree([[subnetId, subtree([["canister_ranges", value(encodeCanisterRanges(ranges))], ["public_key", value(der)]])]])],
    ]),
  );
  return { subnetId, certificate: encodeCertificate(certifyTree(rootKeys, tree)) };
}

/** The subnet id the agent derives from a root key: self-authenticating id of the DER key. */
export const subnetIdOfRootKey = (der: Uint8Array): Uint8Array => Principal.selfAuthenticating(der).toUint8Array();

/** A node's id in the state tree: the self-authenticating principal of its Ed25519 DER key. */
export const nodeIdOf = (keys: BlsSubnetKeys, node: ReplicaId): Uint8Array =>
  Principal.selfAuthenticating(keys.nodePublicKeyDer(node)).toUint8Array();

/**
 * The `/subnet/<id>` entry of a state tree for a subnet whose certification key is its root key
 * (no delegation, as a local replica): public_key (133-byte DER), canister_ranges and every
 * node's Ed25519 DER key, which the agent reads to check query signatures.
 */
export function subnetStateEntry(keys: BlsSubnetKeys, ranges: readonly CanisterRange[]): readonly [Uint8Array, LabeledTree] {
  const der = subnetPublicKeyDer(keys);
  const nodes = Array.from({ length: keys.verifier.size }, (_, i) => {
    const node = i as ReplicaId;
    return [nodeIdOf(keys, node), subtree([["public_key", value(keys.nodePublicKeyDer(node))]])] as const;
  });
  return [
    subnetIdOfRootKey(der),
    subtree([
      ["canister_ranges", value(encodeCanisterRanges(ranges))],
      ["node", subtree(nodes)],
      ["public_key", value(der)],
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------
// Values inside the state tree

/** `/time` in ns (LEB128), if the tree reveals it. */
export function lookupTime(tree: HashTree): bigint | undefined {
  const found = lookupPath(["time"], tree);
  return found.status === "found" ? decodeUleb128(found.value) : undefined;
}

export type CanisterRange = readonly [Uint8Array, Uint8Array];

/** CBOR (tag 55799) array of [lo, hi] principal byte pairs, as at /subnet/<id>/canister_ranges. */
export function encodeCanisterRanges(ranges: readonly CanisterRange[]): Uint8Array {
  return encodeWithSelfDescribedTag(ranges.map(([lo, hi]) => [lo, hi]));
}

export function decodeCanisterRanges(bytes: Uint8Array): CanisterRange[] | undefined {
  let data: unknown;
  try {
    data = decode(bytes);
  } catch {
    return undefined;
  }
  if (!Array.isArray(data)) return undefined;
  const out: CanisterRange[] = [];
  for (const pair of data as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !(pair[0] instanceof Uint8Array) || !(pair[1] instanceof Uint8Array)) {
      return undefined;
    }
    out.push([Uint8Array.from(pair[0]), Uint8Array.from(pair[1])]);
  }
  return out;
}

const inRanges = (id: Uint8Array, ranges: readonly CanisterRange[]): boolean =>
  ranges.some(([lo, hi]) => compareLabels(lo, id) <= 0 && compareLabels(id, hi) <= 0);

// ---------------------------------------------------------------------------------------------
// Verification

export type CertificateFailure =
  | "malformed"
  | "bad-root-key"
  | "bad-signature"
  | "nested-delegation"
  | "delegation-invalid"
  | "delegation-key-missing"
  | "canister-ranges-missing"
  | "canister-out-of-range"
  | "time-missing"
  | "time-too-old"
  | "time-in-future";

export type CertificateVerification =
  | {
      readonly ok: true;
      readonly certificate: Certificate;
      readonly rootHash: Uint8Array;
      readonly timeNs: bigint;
      /** The DER key that signed the tree (the root key or the delegated subnet's key). */
      readonly signingKeyDer: Uint8Array;
    }
  | { readonly ok: false; readonly failure: CertificateFailure; readonly detail: string };

export interface VerifyCertificateOptions {
  /** Effective canister id; checked against the delegation's ranges when there is a delegation. */
  readonly canisterId?: Uint8Array | { toUint8Array(): Uint8Array };
  /** Current time in ns since the epoch; without it, freshness is not checked. */
  readonly nowNs?: bigint;
  /** Oldest accepted /time: now − this (default 5 min; the agent's window). */
  readonly maxAgeNs?: bigint;
  /** Latest accepted /time: now + this (default 5 min). */
  readonly maxFutureNs?: bigint;
  /** Oldest accepted /time of a delegation's certificate (default 30 days). */
  readonly delegationMaxAgeNs?: bigint;
}

const MINUTE_NS = 60_000_000_000n;
const DAY_NS = 24n * 60n * MINUTE_NS;

const fail = (failure: CertificateFailure, detail: string): CertificateVerification => ({ ok: false, failure, detail });

export function verifyCertificate(
  bytes: Uint8Array,
  rootPublicKeyDer: Uint8Array,
  options: VerifyCertificateOptions = {},
): CertificateVerification {
  return verifyInner(bytes, rootPublicKeyDer, options, false);
}

function verifyInner(
  bytes: Uint8Array,
  rootPublicKeyDer: Uint8Array,
  options: VerifyCertificateOptions,
  isDelegation: boolean,
): CertificateVerification {
  const cert = decodeCertificate(bytes);
  if (cert === undefined) return fail("malformed", "not a CBOR certificate {tree, signature, delegation?}");
  if (blsPublicKeyFromDer(rootPublicKeyDer) === undefined) {
    return fail("bad-root-key", `root key is not a 133-byte IC BLS DER key (${rootPublicKeyDer.length} bytes)`);
  }

  let signingKeyDer = rootPublicKeyDer;
  if (cert.delegation !== undefined) {
    if (isDelegation) return fail("nested-delegation", "a delegation's certificate has a delegation itself");
    const { subnetId, certificate } = cert.delegation;
    const inner = verifyInner(certificate, rootPublicKeyDer, { ...options, maxAgeNs: options.delegationMaxAgeNs ?? 30n * DAY_NS }, true);
    if (!inner.ok) {
      return inner.failure === "nested-delegation" ? inner : fail("delegation-invalid", `delegation: ${inner.failure}: ${inner.detail}`);
    }
    const key = lookupPath(["subnet", subnetId, "public_key"], inner.certificate.tree);
    if (key.status !== "found") return fail("delegation-key-missing", `/subnet/<id>/public_key is ${key.status} in the delegation`);
    signingKeyDer = key.value;
    if (options.canisterId !== undefined) {
      const id = options.canisterId instanceof Uint8Array ? options.canisterId : options.canisterId.toUint8Array();
      const ranges = delegationRanges(inner.certificate.tree, subnetId);
      if (ranges === undefined) return fail("canister-ranges-missing", "the delegation reveals no canister ranges for its subnet");
      if (!inRanges(id, ranges)) return fail("canister-out-of-range", "the canister is outside the delegated subnet's ranges");
    }
  }

  const publicKey = blsPublicKeyFromDer(signingKeyDer);
  if (publicKey === undefined) return fail("delegation-key-missing", "the delegated key is not an IC BLS DER key");
  const rootHash = reconstruct(cert.tree);
  if (!verifyBlsBytes(cert.signature, messageBytes(certificationMessage(rootHash)), publicKey)) {
    return fail("bad-signature", "BLS signature on ds(ic-state-root) ‖ root hash does not verify");
  }

  const timeNs = lookupTime(cert.tree);
  if (timeNs === undefined) return fail("time-missing", "the certificate does not reveal /time");
  if (options.nowNs !== undefined) {
    const oldest = options.nowNs - (options.maxAgeNs ?? 5n * MINUTE_NS);
    const newest = options.nowNs + (options.maxFutureNs ?? 5n * MINUTE_NS);
    if (timeNs < oldest) return fail("time-too-old", `certificate time ${timeNs} is older than ${oldest}`);
    if (timeNs > newest) return fail("time-in-future", `certificate time ${timeNs} is later than ${newest}`);
  }
  return { ok: true, certificate: cert, rootHash, timeNs, signingKeyDer };
}

/** Ranges of a delegated subnet: /canister_ranges/<id>/* (spec lookup*), else /subnet/<id>/canister_ranges. */
function delegationRanges(tree: HashTree, subnetId: Uint8Array): CanisterRange[] | undefined {
  const sharded = lookupSubtree(["canister_ranges", subnetId], tree);
  if (sharded.status === "found") {
    const all: CanisterRange[] = [];
    for (const { subtree } of labeledChildren(sharded.subtree)) {
      if (subtree.kind !== "leaf") return undefined;
      const ranges = decodeCanisterRanges(subtree.value);
      if (ranges === undefined) return undefined;
      all.push(...ranges);
    }
    if (all.length > 0) return all;
  }
  const legacy = lookupPath(["subnet", subnetId, "canister_ranges"], tree);
  return legacy.status === "found" ? decodeCanisterRanges(legacy.value) : undefined;
}
