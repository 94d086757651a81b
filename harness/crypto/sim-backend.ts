// The `sim` crypto backend: keyed SHA-256 "signatures" whose keys live in a registry that only
// this module sees. A replica receives a NodeSigner bound to its own key, so it can never produce
// another node's share; aggregation and threshold combination verify every share first and then
// sign with a group key, which models an ideal multi-/threshold-signature scheme at hash speed.
import { sha256HexOf } from "./sha256.ts";
import { assert } from "../assert.ts";
import type { Rng } from "../sim/rng.ts";
import { faultsTolerated, type ReplicaId } from "../types.ts";
import type {
  MultiSignature,
  NodeSigner,
  Signature,
  SubnetKeys,
  SubnetVerifier,
  ThresholdGroup,
} from "./interfaces.ts";

type Role = "basic" | "multi" | "low" | "high";

/** Verified shares remembered per subnet (oldest forgotten first): a few heights of every kind. */
const VERIFIED_SHARES_MAX = 20_000;

function keyedSign(key: string, role: string, message: string): Signature {
  return sha256HexOf(`${key}|${role}|${message}`) as Signature;
}

function randomKey(rng: Rng): string {
  return [rng.nextU32(), rng.nextU32(), rng.nextU32(), rng.nextU32()]
    .map((w) => w.toString(16).padStart(8, "0"))
    .join("");
}

export function simSubnetKeys(n: number, rng: Rng): SubnetKeys {
  assert(n >= 1, "a subnet needs at least one node");
  const nodeKeys = Array.from({ length: n }, () => randomKey(rng));
  const groupKeys: Record<ThresholdGroup | "multi", string> = {
    low: randomKey(rng),
    high: randomKey(rng),
    multi: randomKey(rng),
  };
  const f = faultsTolerated(n);
  const thresholds: Record<ThresholdGroup, number> = { low: f + 1, high: n - f };
  const nodeKey = (node: ReplicaId): string => {
    const key = nodeKeys[node];
    assert(key !== undefined, `no key for node ${node} in a subnet of ${n}`);
    return key;
  };
  const share = (node: ReplicaId, role: Role, message: string): Signature =>
    keyedSign(nodeKey(node), role, message);
  // Issue 13 item 3, "a share already verified is never verified again": every replica of a
  // subnet aggregates the same shares through this one verifier (and its validator checked each
  // one before), so 90 % of the share hashes in aggregation were repeats. A share that verified
  // is remembered under its signature with what it was verified for; a lookup still compares
  // signer, role and message, so the memo only ever saves a hash, never changes a verdict.
  const verified = new Map<Signature, { readonly node: ReplicaId; readonly role: Role; readonly message: string }>();
  const validShare = (node: ReplicaId, role: Role, message: string, signature: Signature): boolean => {
    if (node >= n) return false;
    const known = verified.get(signature);
    if (known !== undefined && known.node === node && known.role === role && known.message === message) return true;
    if (share(node, role, message) !== signature) return false;
    if (verified.size >= VERIFIED_SHARES_MAX) verified.delete(verified.keys().next().value as Signature);
    verified.set(signature, { node, role, message });
    return true;
  };
  const validShares = (
    role: Role,
    message: string,
    shares: ReadonlyMap<ReplicaId, Signature>,
  ): ReplicaId[] | undefined => {
    const signers = [...shares.keys()].sort((a, b) => a - b);
    for (const node of signers) {
      if (!validShare(node, role, message, shares.get(node) as Signature)) return undefined;
    }
    return signers;
  };

  const verifier: SubnetVerifier = {
    backend: "sim",
    size: n,
    thresholdOf: (group) => thresholds[group],
    verifyBasic: (node, message, signature) => node < n && share(node, "basic", message) === signature,
    verifyMultiShare: (node, message, s) => validShare(node, "multi", message, s),
    aggregateMulti(message, shares): MultiSignature | undefined {
      const signers = validShares("multi", message, shares);
      if (signers === undefined || signers.length === 0) return undefined;
      return { signers, signature: keyedSign(groupKeys.multi, signers.join(","), message) };
    },
    verifyMulti(message, multi, threshold) {
      const signers = multi.signers;
      for (let i = 1; i < signers.length; i++) {
        if ((signers[i] as number) <= (signers[i - 1] as number)) return false;
      }
      if (signers.length < threshold || signers.some((s) => s >= n)) return false;
      return multi.signature === keyedSign(groupKeys.multi, signers.join(","), message);
    },
    verifyThresholdShare: (group, node, message, s) => validShare(node, group, message, s),
    combineThreshold(group, message, shares) {
      const signers = validShares(group, message, shares);
      if (signers === undefined || signers.length < thresholds[group]) return undefined;
      return keyedSign(groupKeys[group], "combined", message);
    },
    verifyThreshold: (group, message, signature) =>
      signature === keyedSign(groupKeys[group], "combined", message),
  };

  return {
    verifier,
    signerFor(node: ReplicaId): NodeSigner {
      nodeKey(node);
      return {
        node,
        signBasic: (message) => share(node, "basic", message),
        signMultiShare: (message) => share(node, "multi", message),
        signThresholdShare: (group, message) => share(node, group, message),
      };
    },
  };
}
