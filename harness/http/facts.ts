// The public facts of one subnet that its HTTP interface serves and checks against: the root key
// (the subnet's high-threshold BLS key in the IC's 133-byte DER form — a local subnet is its own
// root of trust, so certificates carry no delegation), the subnet id the agent derives from it,
// the canister ranges, and every node's id and Ed25519 key (query signatures are checked against
// /subnet/<id>/node/<node>/public_key). Nothing here is secret: real mode publishes it at genesis.
import { Principal } from "@dfinity/principal";
import type { BlsVerifierKeys } from "../crypto/bls-backend.ts";
import { blsPublicKeyToDer } from "../crypto/bls-backend.ts";
import { subnetIdOfRootKey, type CanisterRange as TreeCanisterRange } from "../crypto/certificate.ts";
import { selfAuthenticating } from "../crypto/sender-auth.ts";
import { canisterIdFromU64, principalBytes } from "../execution/interfaces.ts";
import type { CanisterRange, SubnetId } from "../routing/registry.ts";
import type { ReplicaId } from "../types.ts";

export interface NodeFacts {
  /** The node's principal: SHA-224 of its DER key ‖ 0x02, as the IC derives node ids. */
  readonly nodeId: Uint8Array;
  /** 44-byte DER Ed25519 key (agent-compat §10: exactly this length, or the agent refuses it). */
  readonly publicKeyDer: Uint8Array;
}

export interface SubnetFacts {
  /** 133-byte DER BLS12-381 G2 key: what GET /api/v2/status hands out as root_key. */
  readonly rootKeyDer: Uint8Array;
  /** Self-authenticating id of the root key: without a delegation the agent files /subnet/<id> under it. */
  readonly subnetId: Uint8Array;
  /** Closed ranges of raw canister ids, as at /subnet/<id>/canister_ranges. */
  readonly canisterRanges: readonly TreeCanisterRange[];
  /** Indexed by replica id. */
  readonly nodes: readonly NodeFacts[];
}

/** The facts of a subnet from its published keys (no secret) and its range of canister ids. */
export function subnetFacts(keys: BlsVerifierKeys, range: CanisterRange): SubnetFacts {
  const rootKeyDer = blsPublicKeyToDer(keys.thresholdPublicKey("high"));
  const nodes = Array.from({ length: keys.verifier.size }, (_, i) => {
    const publicKeyDer = keys.nodePublicKeyDer(i as ReplicaId);
    return { nodeId: selfAuthenticating(publicKeyDer), publicKeyDer };
  });
  return {
    rootKeyDer,
    subnetId: subnetIdOfRootKey(rootKeyDer),
    canisterRanges: [[principalBytes(canisterIdFromU64(range.start)), principalBytes(canisterIdFromU64(range.end))]],
    nodes,
  };
}

/** The subnet id in text form, as the registry names subnets. */
export const subnetIdText = (facts: SubnetFacts): SubnetId => Principal.fromUint8Array(facts.subnetId).toText() as SubnetId;
