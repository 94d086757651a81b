// Certifying a CertifiedState and serving certificates from it (research/ic-protocol.md §5.3, §6;
// research/agent-compat.md §9).
//
// Every height each replica signs a share of the subnet's high-threshold key (n − f = 2f+1 shares)
// over ds("ic-state-root") ‖ root hash; shares over the same hash combine into the subnet's
// certification of that height. `CertificationScheme` is that contract for both crypto backends:
//
// - bls: the real IC scheme (bls-backend.ts). A certificate is CBOR {tree, signature} with a
//   48-byte BLS signature; it verifies with certificate.ts `verifyCertificate` and with agents,
//   under the 133-byte DER key at /subnet/<id>/public_key.
// - sim: the same CBOR certificate, but the signature is the sim backend's 32-byte combined
//   threshold "signature" (a keyed hash). Only the subnet's SubnetVerifier can check it
//   (`verifyStateCertificate` with the scheme); the scheme's "public key" is a fingerprint that
//   names the key without being usable to verify.
//
// The shares and certifications here have the same fields as replica/certification.ts's
// CertificationShare and Certification (height, hash hex, signer, signature hex), and the same
// signatures, so the two are interchangeable; they are declared here because the state layer sits
// below the replica.
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { certificationMessage, subnetPublicKeyDer, type BlsSubnetKeys } from "../crypto/bls-backend.ts";
import {
  decodeCertificate,
  encodeCertificate,
  lookupTime,
  nodeIdOf,
  verifyCertificate,
  type CanisterRange,
  type CertificateVerification,
  type VerifyCertificateOptions,
} from "../crypto/certificate.ts";
import { concatBytes, reconstruct, type Label } from "../crypto/hash-tree.ts";
import type { Signature, SubnetKeys } from "../crypto/interfaces.ts";
import type { HashHex, Height, ReplicaId } from "../types.ts";
import type { CertifiedState, SubnetEntry } from "./certified-tree.ts";

export interface StateCertificationShare {
  readonly height: Height;
  /** Root hash (hex) of the signer's certified state at `height`. */
  readonly hash: HashHex;
  readonly signer: ReplicaId;
  readonly signature: Signature;
}

export interface StateCertification {
  readonly height: Height;
  readonly hash: HashHex;
  /** The subnet's high-threshold signature over ds("ic-state-root") ‖ hash. */
  readonly signature: Signature;
}

export interface CertificationScheme {
  readonly backend: "sim" | "bls";
  /** Shares needed for a certification: the high threshold n − f. */
  readonly threshold: number;
  /** bls: the 133-byte DER key agents verify with; sim: a fingerprint of the sim key (see top). */
  readonly subnetPublicKeyDer: Uint8Array;
  signShare(replica: ReplicaId, height: Height, rootHash: Uint8Array): StateCertificationShare;
  verifyShare(share: StateCertificationShare): boolean;
  /**
   * Combines shares of one (height, hash) — grouping by hash is the caller's job; undefined when
   * fewer than `threshold` distinct signers or any share is invalid.
   */
  combine(shares: readonly StateCertificationShare[]): StateCertification | undefined;
  verify(rootHash: Uint8Array, signature: Signature): boolean;
}

const SIM_KEY_PREFIX = utf8ToBytes("subnetlab-sim-threshold-key:");
const SIM_KEY_FINGERPRINT_MESSAGE = "subnetlab sim subnet key fingerprint";

const isBlsKeys = (keys: SubnetKeys): keys is BlsSubnetKeys => keys.verifier.backend === "bls" && "thresholdPublicKey" in keys;

/** The certification scheme of a subnet's keys (either backend). */
export function certificationScheme(keys: SubnetKeys): CertificationScheme {
  const { verifier } = keys;
  return {
    backend: verifier.backend,
    threshold: verifier.thresholdOf("high"),
    subnetPublicKeyDer: isBlsKeys(keys) ? subnetPublicKeyDer(keys) : simPublicKey(keys),
    signShare(replica, height, rootHash) {
      const signature = keys.signerFor(replica).signThresholdShare("high", certificationMessage(rootHash));
      return { height, hash: bytesToHex(rootHash) as HashHex, signer: replica, signature };
    },
    verifyShare: (share) => verifier.verifyThresholdShare("high", share.signer, certificationMessage(hexToBytes(share.hash)), share.signature),
    combine(shares) {
      const first = shares[0];
      if (first === undefined) return undefined;
      assert(shares.every((s) => s.height === first.height && s.hash === first.hash), "combine shares of one height and hash only");
      const bySigner = new Map(shares.map((s) => [s.signer, s.signature] as const));
      const signature = verifier.combineThreshold("high", certificationMessage(hexToBytes(first.hash)), bySigner);
      return signature === undefined ? undefined : { height: first.height, hash: first.hash, signature };
    },
    verify: (rootHash, signature) => verifier.verifyThreshold("high", certificationMessage(rootHash), signature),
  };
}

/**
 * A public name for a sim subnet key: the combined sim signature of a fixed message. It is
 * unique per key and deterministic, but (a keyed hash) verifies nothing by itself.
 */
function simPublicKey(keys: SubnetKeys): Uint8Array {
  const threshold = keys.verifier.thresholdOf("high");
  const shares = new Map<ReplicaId, Signature>();
  for (let i = 0; i < threshold; i++) {
    const node = i as ReplicaId;
    shares.set(node, keys.signerFor(node).signThresholdShare("high", SIM_KEY_FINGERPRINT_MESSAGE));
  }
  const combined = keys.verifier.combineThreshold("high", SIM_KEY_FINGERPRINT_MESSAGE, shares);
  assert(combined !== undefined, "the sim backend combines its own shares");
  return concatBytes(SIM_KEY_PREFIX, hexToBytes(combined));
}

/**
 * Certifies `state` at `height` with shares of `signers` (default: the first `threshold`
 * replicas): what 2f+1 honest replicas produce together, in one call (tests, genesis).
 */
export function certifyState(
  scheme: CertificationScheme,
  state: CertifiedState,
  height: Height,
  signers?: readonly ReplicaId[],
): StateCertification {
  const chosen = signers ?? Array.from({ length: scheme.threshold }, (_, i) => i as ReplicaId);
  const rootHash = state.rootHash();
  const certification = scheme.combine(chosen.map((replica) => scheme.signShare(replica, height, rootHash)));
  assert(certification !== undefined, `cannot certify with ${chosen.length} of ${scheme.threshold} shares`);
  return certification;
}

/**
 * The certificate a read_state response carries: the certified state pruned to `paths` (and
 * /time) with the certification's signature. `state` must be the state that was certified.
 */
export function readStateCertificate(
  state: CertifiedState,
  certification: StateCertification,
  paths: readonly (readonly (Label | string)[])[],
): Uint8Array {
  assert(bytesToHex(state.rootHash()) === certification.hash, "the certification is of another state");
  return encodeCertificate({ tree: state.witness(paths), signature: hexToBytes(certification.signature) });
}

/** What ic0.data_certificate_copy returns to `canisterId`: /time and its certified_data. */
export function dataCertificate(state: CertifiedState, certification: StateCertification, canisterId: Uint8Array): Uint8Array {
  return readStateCertificate(state, certification, [["canister", canisterId, "certified_data"]]);
}

/**
 * Checks certificate bytes issued under `scheme`: bls delegates to certificate.ts (the agent's
 * checks); sim decodes the same CBOR, rebuilds the root and checks the combined sim signature,
 * then /time and its freshness like the bls path.
 */
export function verifyStateCertificate(
  scheme: CertificationScheme,
  bytes: Uint8Array,
  options: Pick<VerifyCertificateOptions, "nowNs" | "maxAgeNs" | "maxFutureNs"> = {},
): CertificateVerification {
  if (scheme.backend === "bls") return verifyCertificate(bytes, scheme.subnetPublicKeyDer, options);
  const certificate = decodeCertificate(bytes);
  if (certificate === undefined) return { ok: false, failure: "malformed", detail: "not a CBOR certificate {tree, signature}" };
  if (certificate.delegation !== undefined) return { ok: false, failure: "nested-delegation", detail: "sim certificates carry no delegation" };
  const rootHash = reconstruct(certificate.tree);
  if (!scheme.verify(rootHash, bytesToHex(certificate.signature) as Signature)) {
    return { ok: false, failure: "bad-signature", detail: "sim threshold signature on ds(ic-state-root) ‖ root hash does not verify" };
  }
  const timeNs = lookupTime(certificate.tree);
  if (timeNs === undefined) return { ok: false, failure: "time-missing", detail: "the certificate does not reveal /time" };
  if (options.nowNs !== undefined) {
    const minuteNs = 60_000_000_000n;
    if (timeNs < options.nowNs - (options.maxAgeNs ?? 5n * minuteNs)) return { ok: false, failure: "time-too-old", detail: `certificate time ${timeNs}` };
    if (timeNs > options.nowNs + (options.maxFutureNs ?? 5n * minuteNs)) return { ok: false, failure: "time-in-future", detail: `certificate time ${timeNs}` };
  }
  return { ok: true, certificate, rootHash, timeNs, signingKeyDer: scheme.subnetPublicKeyDer };
}

/** The own subnet's /subnet/<id> entry from BLS keys: its DER key, ranges and every node's key. */
export function ownSubnetEntry(keys: BlsSubnetKeys, canisterRanges: readonly CanisterRange[]): SubnetEntry {
  const nodes = Array.from({ length: keys.verifier.size }, (_, i) => {
    const node = i as ReplicaId;
    return [nodeIdOf(keys, node), keys.nodePublicKeyDer(node)] as const;
  });
  return { publicKeyDer: subnetPublicKeyDer(keys), canisterRanges, nodes };
}
