// The `bls` crypto backend: the real schemes the IC uses, from @noble/curves.
//
// - basic signatures: Ed25519 node keys;
// - multi-signatures (notarization, finalization): BLS12-381 with signatures in G1 (48 bytes) and
//   public keys in G2 (96 bytes), the IC's "minimal signature size" choice; shares are aggregated
//   by point addition and verified against the sum of the signers' public keys. Keys come from
//   this dealer, never from the replicas, so rogue-key attacks are out of scope (no PoPs needed);
// - threshold signatures (random beacon "low" = f+1, certification / CUPs "high" = n−f): a
//   trusted dealer Shamir-shares one master secret per group (node i holds p(i+1)); a share is a
//   BLS signature under the node's secret share, verified against its public key share; any
//   `threshold` valid shares combine by Lagrange interpolation at 0 in the exponent into THE
//   signature of the group key, which is therefore unique per message.
// Aggregation and combination check all shares at once (one pairing check over a Fiat–Shamir
// random linear combination), which is as strict as share-by-share checks up to 2^-128, and the
// verifier remembers recent verdicts, since all replicas of a simulated subnet share it.
//
// Every secret is drawn from the `Rng` passed in, so the same seed gives the same keys.
// Messages are strings (the crypto contract); `messageBytes` says which bytes get signed:
// `domainMessage(domain, payload)` (e.g. the certification message ds("ic-state-root") ‖ root
// hash) or plain UTF-8 text, which may not start with a control character so that the two kinds
// can never collide. All signatures use the IC's DST BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_.
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "./sha256.ts";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { BoundedMap } from "../memo.ts";
import type { Rng } from "../sim/rng.ts";
import { faultsTolerated, type ReplicaId } from "../types.ts";
import { concatBytes, domainSeparator } from "./hash-tree.ts";
import { compressG1, pairingCheck } from "./bls-pairing.ts";
import type {
  MultiSignature,
  NodeSigner,
  Signature,
  SubnetKeys,
  SubnetVerifier,
  ThresholdGroup,
} from "./interfaces.ts";

/** The IC's hash-to-G1 domain separation tag (interface spec "Certification"). */
export const IC_BLS_DST = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/** DER prefix of an IC BLS12-381 G2 public key (interface spec "Certification", extract_der). */
export const BLS_DER_PREFIX = hexToBytes("308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100");
/** DER prefix of an Ed25519 public key (RFC 8410), as node keys appear in the state tree. */
export const ED25519_DER_PREFIX = hexToBytes("302a300506032b6570032100");

const short = bls12_381.shortSignatures;
const Fr = bls12_381.fields.Fr;
type G1 = ReturnType<typeof short.hash>;
type G2 = ReturnType<typeof short.getPublicKey>;

// ---------------------------------------------------------------------------------------------
// Messages

const DOMAIN_MARK = "\u0000ds:";
const KNOWN_DOMAINS = new Set(["ic-state-root", "ic-response", "ic-request", "ic-request-auth-delegation"]);

/** A message whose signed bytes are ds(domain) ‖ payload (e.g. "ic-state-root" ‖ root hash). */
export function domainMessage(domain: string, payload: Uint8Array): string {
  assert(KNOWN_DOMAINS.has(domain), `unknown signing domain ${domain}`);
  return `${DOMAIN_MARK}${domain}:${bytesToHex(payload)}`;
}

/** The certification message of a state root hash: ds("ic-state-root") ‖ root. */
export const certificationMessage = (rootHash: Uint8Array): string => {
  assert(rootHash.length === 32, "a root hash has 32 bytes");
  return domainMessage("ic-state-root", rootHash);
};

/** The bytes signed for a message string (see the file comment). */
export function messageBytes(message: string): Uint8Array {
  if (message.startsWith(DOMAIN_MARK)) {
    const rest = message.slice(DOMAIN_MARK.length);
    const colon = rest.indexOf(":");
    const domain = rest.slice(0, colon);
    assert(colon > 0 && KNOWN_DOMAINS.has(domain), `malformed domain message ${JSON.stringify(message.slice(0, 40))}`);
    return concatBytes(domainSeparator(domain), hexToBytes(rest.slice(colon + 1)));
  }
  assert(message.length === 0 || message.charCodeAt(0) >= 0x20, "plain messages may not start with a control character");
  return utf8ToBytes(message);
}

/** Hash-to-G1 with a small FIFO cache: consensus verifies many shares of one message. */
const HASH_CACHE_MAX = 512;
const hashCache = new BoundedMap<string, G1>("bls.hashToG1", HASH_CACHE_MAX);
const VERDICT_CACHE_MAX = 8192;
/** Distinct signer sets whose summed key a verifier keeps (with the key's pairing lines). */
const AGGREGATED_KEYS_MAX = 64;
function hashToG1(message: string): G1 {
  const cached = hashCache.get(message);
  if (cached !== undefined) return cached;
  const point = short.hash(messageBytes(message), IC_BLS_DST);
  hashCache.set(message, point);
  return point;
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers

const sigHex = (point: G1): Signature => bytesToHex(compressG1(point)) as Signature;

/** A share or signature as a G1 point; decompressing costs a square root, so recent ones are kept. */
function parseG1(signature: string): G1 | undefined {
  const known = parsedG1.get(signature);
  if (known !== undefined) return known === "invalid" ? undefined : known;
  const point = decodeG1(signature);
  parsedG1.set(signature, point ?? "invalid");
  return point;
}
const parsedG1 = new BoundedMap<string, G1 | "invalid">("bls.parsedG1", HASH_CACHE_MAX * 4);

function decodeG1(signature: string): G1 | undefined {
  if (!/^[0-9a-f]{96}$/.test(signature)) return undefined;
  try {
    const point = short.Signature.fromHex(signature);
    return point.is0() ? undefined : point;
  } catch {
    return undefined;
  }
}

/** Sets a key in a FIFO-bounded cache. */
function boundedSet<V>(cache: Map<string, V>, key: string, value: V, max: number): void {
  if (cache.size >= max) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
}

interface ShareEntry {
  /** The share's key in the verifier's verdict cache. */
  readonly key: string;
  readonly signature: G1;
  readonly publicKey: G2;
}

/** A uniformly random nonzero scalar mod r from 64 bytes of the stream (bias < 2^-254). */
function randomScalar(rng: Rng): bigint {
  for (;;) {
    let x = 0n;
    for (let i = 0; i < 16; i++) x = (x << 32n) | BigInt(rng.nextU32());
    const s = Fr.create(x);
    if (s !== 0n) return s;
  }
}

function bytesFromRng(rng: Rng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const w = rng.nextU32();
    for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (w >>> (24 - 8 * j)) & 0xff;
  }
  return out;
}

const secretKeyBytes = (s: bigint): Uint8Array => Fr.toBytes(s);

/**
 * Checks that every signature verifies under its key, all on one message, with one pairing check:
 * Σ rᵢσᵢ against Σ rᵢPKᵢ, where the 128-bit rᵢ are derived from the message and all the
 * signatures (Fiat–Shamir), so invalid shares cannot be crafted to cancel out. Deterministic.
 * Variable-time multiplication is fine here: every input is public.
 */
function batchVerify(message: string, entries: readonly { readonly signature: G1; readonly publicKey: G2 }[]): boolean {
  if (entries.length === 0) return false;
  const hashed = hashToG1(message);
  try {
    if (entries.length === 1) {
      const only = entries[0] as { signature: G1; publicKey: G2 };
      return pairingCheck(only.signature, hashed, only.publicKey, true);
    }
    const transcript = concatBytes(utf8ToBytes("subnetlab-bls-batch"), messageBytes(message), ...entries.map((e) => compressG1(e.signature)));
    const seed = sha256(transcript);
    let sig: G1 | undefined;
    let pk: G2 | undefined;
    entries.forEach((e, i) => {
      const r = BigInt(`0x${bytesToHex(sha256(concatBytes(seed, Uint8Array.of(i >>> 8, i & 0xff))).slice(0, 16))}`) | 1n;
      sig = sig === undefined ? e.signature.multiplyUnsafe(r) : sig.add(e.signature.multiplyUnsafe(r));
      pk = pk === undefined ? e.publicKey.multiplyUnsafe(r) : pk.add(e.publicKey.multiplyUnsafe(r));
    });
    return pairingCheck(sig as G1, hashed, pk as G2, false);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

interface ThresholdKeys {
  readonly threshold: number;
  readonly shares: readonly bigint[]; // node i holds p(i + 1)
  readonly publicShares: readonly G2[];
  readonly publicKey: G2;
}

/** Trusted-dealer Shamir sharing of a fresh master secret: any `threshold` shares interpolate. */
function dealThreshold(n: number, threshold: number, rng: Rng): ThresholdKeys {
  const coefficients = Array.from({ length: threshold }, () => randomScalar(rng));
  const evaluate = (x: bigint): bigint => {
    let acc = 0n;
    for (let k = coefficients.length - 1; k >= 0; k--) acc = Fr.add(Fr.mul(acc, x), coefficients[k] as bigint);
    return acc;
  };
  const shares = Array.from({ length: n }, (_, i) => evaluate(BigInt(i + 1)));
  assert(shares.every((s) => s !== 0n), "zero key share (probability 2^-255)");
  return {
    threshold,
    shares,
    publicShares: shares.map((s) => short.getPublicKey(secretKeyBytes(s))),
    publicKey: short.getPublicKey(secretKeyBytes(coefficients[0] as bigint)),
  };
}

/** Lagrange coefficient at 0 for x = xs[i] over the points xs (all distinct, nonzero). */
function lagrangeAtZero(xs: readonly bigint[], i: number): bigint {
  const xi = xs[i] as bigint;
  let num = 1n;
  let den = 1n;
  for (let j = 0; j < xs.length; j++) {
    if (j === i) continue;
    const xj = xs[j] as bigint;
    num = Fr.mul(num, xj);
    den = Fr.mul(den, Fr.sub(xj, xi));
  }
  return Fr.mul(num, Fr.inv(den));
}

/** The bls backend's keys in one process (simulation): every node's signer and the public keys. */
export interface BlsSubnetKeys extends SubnetKeys, BlsVerifierKeys {}

/**
 * What the dealer publishes at genesis: every public key of the subnet (the registry's part of the
 * IC's key material). A verifier needs nothing else; it holds no secret.
 */
export interface BlsPublicKeys {
  readonly n: number;
  /** Node i's Ed25519 public key (32 bytes). */
  readonly basic: readonly Uint8Array[];
  /** Node i's BLS multi-signature public key (G2, 96 bytes compressed). */
  readonly multi: readonly Uint8Array[];
  /** Per threshold group: the group key and node i's public key share (G2, 96 bytes each). */
  readonly groups: Readonly<Record<ThresholdGroup, { readonly publicKey: Uint8Array; readonly publicShares: readonly Uint8Array[] }>>;
}

/** What one node holds: its own secrets only (32-byte Ed25519 seed, BLS scalars big-endian). */
export interface BlsNodeSecrets {
  readonly node: ReplicaId;
  readonly basic: Uint8Array;
  readonly multi: Uint8Array;
  readonly shares: Readonly<Record<ThresholdGroup, Uint8Array>>;
}

/** The dealer's output: the public keys for everyone, and one secret bundle per node. */
export interface BlsDealing {
  readonly publicKeys: BlsPublicKeys;
  readonly secrets: readonly BlsNodeSecrets[];
}

/** Trusted-dealer key generation for a subnet of n nodes (simulated DKG), all from `rng`. */
export function dealBlsKeys(n: number, rng: Rng): BlsDealing {
  assert(Number.isInteger(n) && n >= 1, "a subnet needs at least one node");
  const f = faultsTolerated(n);
  const basicSecrets = Array.from({ length: n }, () => bytesFromRng(rng, 32));
  const multiSecrets = Array.from({ length: n }, () => randomScalar(rng));
  const groups: Record<ThresholdGroup, ThresholdKeys> = {
    low: dealThreshold(n, f + 1, rng),
    high: dealThreshold(n, n - f, rng),
  };
  const publicGroup = (g: ThresholdKeys) => ({ publicKey: g.publicKey.toBytes(true), publicShares: g.publicShares.map((p) => p.toBytes(true)) });
  return {
    publicKeys: {
      n,
      basic: basicSecrets.map((sk) => ed25519.getPublicKey(sk)),
      multi: multiSecrets.map((sk) => short.getPublicKey(secretKeyBytes(sk)).toBytes(true)),
      groups: { low: publicGroup(groups.low), high: publicGroup(groups.high) },
    },
    secrets: basicSecrets.map((basic, i) => ({
      node: i as ReplicaId,
      basic,
      multi: secretKeyBytes(multiSecrets[i] as bigint),
      shares: { low: secretKeyBytes(groups.low.shares[i] as bigint), high: secretKeyBytes(groups.high.shares[i] as bigint) },
    })),
  };
}

/** The bls backend's keys: the SubnetKeys contract plus the public keys real mode publishes. */
export function blsSubnetKeys(n: number, rng: Rng): BlsSubnetKeys {
  return blsSubnetKeysOf(dealBlsKeys(n, rng));
}

/** Every node's signer and the verifier of one dealing, in one process (simulation; real mode's genesis). */
export function blsSubnetKeysOf(dealing: BlsDealing): BlsSubnetKeys {
  const n = dealing.publicKeys.n;
  const verifier = blsVerifier(dealing.publicKeys);
  const signers = dealing.secrets.map((secrets) => blsSigner(secrets));
  return {
    ...verifier,
    signerFor(node: ReplicaId): NodeSigner {
      const signer = signers[node];
      assert(signer !== undefined, `no key for node ${node} in a subnet of ${n}`);
      return signer;
    },
  };
}

/** Public keys only: verification, aggregation, and the keys the state tree publishes. */
export interface BlsVerifierKeys {
  readonly verifier: SubnetVerifier;
  /** The group public key (G2, 96 bytes compressed). "high" is the subnet's certification key. */
  thresholdPublicKey(group: ThresholdGroup): Uint8Array;
  /** Node i's Ed25519 public key in DER (44 bytes), as at /subnet/<id>/node/<node>/public_key. */
  nodePublicKeyDer(node: ReplicaId): Uint8Array;
  /**
   * The node's own signer, whose shares this verifier then takes as valid without a pairing check
   * (a node aggregates its own share with its peers' in every round). Throws unless the signer's
   * keys are the ones this verifier holds for that node (checked once, here, for real).
   */
  vouchedSigner(signer: NodeSigner): NodeSigner;
}

/** One node's signer, from its own secrets alone (real mode: each process loads only its own). */
export function blsSigner(secrets: BlsNodeSecrets): NodeSigner {
  const { basic, multi, shares } = secrets;
  return {
    node: secrets.node,
    signBasic: (message) => bytesToHex(ed25519.sign(messageBytes(message), basic)) as Signature,
    signMultiShare: (message) => sigHex(short.sign(hashToG1(message), multi)),
    signThresholdShare: (group, message) => sigHex(short.sign(hashToG1(message), shares[group])),
  };
}

/** A verifier over a subnet's published keys; it closes over no secret. */
export function blsVerifier(keys: BlsPublicKeys): BlsVerifierKeys {
  const { n } = keys;
  const f = faultsTolerated(n);
  const thresholds: Record<ThresholdGroup, number> = { low: f + 1, high: n - f };
  const basicPublic = keys.basic;
  const g2 = (bytes: Uint8Array): G2 => bls12_381.G2.Point.fromBytes(bytes);
  const multiPublic = keys.multi.map(g2);
  const groups: Record<ThresholdGroup, { readonly threshold: number; readonly publicKey: G2; readonly publicShares: readonly G2[] }> = {
    low: { threshold: thresholds.low, publicKey: g2(keys.groups.low.publicKey), publicShares: keys.groups.low.publicShares.map(g2) },
    high: { threshold: thresholds.high, publicKey: g2(keys.groups.high.publicKey), publicShares: keys.groups.high.publicShares.map(g2) },
  };
  const inSubnet = (node: ReplicaId): boolean => Number.isInteger(node) && node >= 0 && node < n;
  // Every replica of a simulated subnet verifies the same shares through this one verifier:
  // remember recent verdicts (pure functions of their inputs) so each pairing runs once.
  const verdicts = new Map<string, boolean>();
  const combined = new Map<string, Signature>();
  /**
   * Checks, in one batch, the shares whose validity is not remembered yet, and remembers them:
   * each replica aggregates shares its validator already checked one by one, so typically only
   * its own share is new.
   */
  const sharesValid = (message: string, entries: readonly ShareEntry[]): boolean => {
    const unknown = entries.filter((e) => verdicts.get(e.key) !== true);
    if (unknown.length === 0) return true;
    if (!batchVerify(message, unknown)) return false;
    for (const e of unknown) remember(e.key, () => true);
    return true;
  };
  const remember = (key: string, compute: () => boolean): boolean => {
    const known = verdicts.get(key);
    if (known !== undefined) return known;
    const verdict = compute();
    if (verdicts.size >= VERDICT_CACHE_MAX) {
      const oldest = verdicts.keys().next().value;
      if (oldest !== undefined) verdicts.delete(oldest);
    }
    verdicts.set(key, verdict);
    return verdict;
  };
  const blsVerify = (signature: G1 | undefined, message: string, publicKey: G2): boolean => {
    if (signature === undefined) return false;
    try {
      return pairingCheck(signature, hashToG1(message), publicKey, true);
    } catch {
      return false;
    }
  };
  /** The sum of the signers' multi-signature keys; a subnet sees few distinct signer sets, each kept with its lines. */
  const aggregatedKeys = new Map<string, G2>();
  const aggregatedKey = (signers: readonly ReplicaId[]): G2 => {
    const key = signers.join(",");
    let sum = aggregatedKeys.get(key);
    if (sum === undefined) {
      sum = signers.map((s) => multiPublic[s] as G2).reduce((a, b) => a.add(b));
      boundedSet(aggregatedKeys, key, sum, AGGREGATED_KEYS_MAX);
    }
    return sum;
  };
  const verifyShare = (group: ThresholdGroup, node: ReplicaId, message: string, share: Signature): boolean =>
    inSubnet(node) &&
    remember(`${group}|${node}|${share}|${message}`, () => blsVerify(parseG1(share), message, groups[group].publicShares[node] as G2));
  const verifyMultiShare = (node: ReplicaId, message: string, share: Signature): boolean => {
    if (!inSubnet(node) || !remember(`multi|${node}|${share}|${message}`, () => blsVerify(parseG1(share), message, multiPublic[node] as G2))) return false;
    rememberShare(node, message, share);
    return true;
  };
  /**
   * Valid multi-signature shares by (signer, message): a BLS signature is unique per key and
   * message, so an aggregate of these signers on this message is valid exactly when it equals the
   * sum of their shares — a few point additions instead of a pairing check (issue 13 item 3: a
   * signature already verified is not verified again, not even inside another signer set's sum).
   */
  const validShares = new Map<string, Signature>();
  const rememberShare = (node: ReplicaId, message: string, share: Signature): void => boundedSet(validShares, `${node}|${message}`, share, VERDICT_CACHE_MAX);
  const sumOfValidShares = (signers: readonly ReplicaId[], message: string): string | undefined => {
    let sum: G1 | undefined;
    for (const node of signers) {
      const share = validShares.get(`${node}|${message}`);
      const point = share === undefined ? undefined : parseG1(share);
      if (point === undefined) return undefined;
      sum = sum === undefined ? point : sum.add(point);
    }
    return sum === undefined ? undefined : sigHex(sum);
  };

  const verifier: SubnetVerifier = {
    backend: "bls",
    size: n,
    thresholdOf: (group) => thresholds[group],
    verifyBasic(node, message, signature) {
      if (!inSubnet(node) || !/^[0-9a-f]{128}$/.test(signature)) return false;
      try {
        return ed25519.verify(hexToBytes(signature), messageBytes(message), basicPublic[node] as Uint8Array);
      } catch {
        return false;
      }
    },
    verifyMultiShare,
    aggregateMulti(message, shares): MultiSignature | undefined {
      const signers = [...shares.keys()].sort((a, b) => a - b);
      if (signers.length === 0) return undefined;
      const entries: ShareEntry[] = [];
      for (const node of signers) {
        const share = shares.get(node) as Signature;
        const signature = inSubnet(node) ? parseG1(share) : undefined;
        if (signature === undefined) return undefined;
        entries.push({ key: `multi|${node}|${share}|${message}`, signature, publicKey: multiPublic[node] as G2 });
      }
      if (!sharesValid(message, entries)) return undefined;
      for (const node of signers) rememberShare(node, message, shares.get(node) as Signature);
      const signature = sigHex(entries.map((e) => e.signature).reduce((a, b) => a.add(b)));
      // The sum of valid shares is a valid aggregate: a peer sending the same one is not re-checked.
      remember(`multi-agg|${signers.join(",")}|${signature}|${message}`, () => true);
      return { signers, signature };
    },
    verifyMulti(message, multi, threshold) {
      const signers = multi.signers;
      for (let i = 0; i < signers.length; i++) {
        if (!inSubnet(signers[i] as ReplicaId)) return false;
        if (i > 0 && (signers[i] as number) <= (signers[i - 1] as number)) return false;
      }
      if (signers.length === 0 || signers.length < threshold) return false;
      return remember(`multi-agg|${signers.join(",")}|${multi.signature}|${message}`, () =>
        sumOfValidShares(signers, message) === multi.signature || blsVerify(parseG1(multi.signature), message, aggregatedKey(signers)),
      );
    },
    verifyThresholdShare: verifyShare,
    combineThreshold(group, message, shares) {
      const signers = [...shares.keys()].sort((a, b) => a - b);
      const { threshold } = groups[group];
      if (signers.length < threshold) return undefined;
      const entries: ShareEntry[] = [];
      for (const node of signers) {
        const share = shares.get(node) as Signature;
        const signature = inSubnet(node) ? parseG1(share) : undefined;
        if (signature === undefined) return undefined;
        entries.push({ key: `${group}|${node}|${share}|${message}`, signature, publicKey: groups[group].publicShares[node] as G2 });
      }
      if (!sharesValid(message, entries)) return undefined;
      // Any `threshold` valid shares interpolate to the same signature (it is unique per message),
      // so the first replica's combination serves every other one.
      const memoKey = `${group}|${message}`;
      const known = combined.get(memoKey);
      if (known !== undefined) return known;
      const xs = signers.slice(0, threshold).map((node) => BigInt(node + 1));
      let sum: G1 | undefined;
      xs.forEach((_, i) => {
        const term = (entries[i] as ShareEntry).signature.multiplyUnsafe(lagrangeAtZero(xs, i));
        sum = sum === undefined ? term : sum.add(term);
      });
      const signature = sigHex(sum as G1);
      boundedSet(combined, memoKey, signature, VERDICT_CACHE_MAX);
      // Interpolated from valid shares, so valid; and unique per message: the same bytes from a
      // peer need no pairing check either.
      remember(`${group}-combined|${signature}|${message}`, () => true);
      return signature;
    },
    verifyThreshold: (group, message, signature) =>
      remember(`${group}-combined|${signature}|${message}`, () => blsVerify(parseG1(signature), message, groups[group].publicKey)),
  };

  const assertNode = (node: ReplicaId): void => assert(inSubnet(node), `no key for node ${node} in a subnet of ${n}`);
  const vouchedSigner = (signer: NodeSigner): NodeSigner => {
    const node = signer.node;
    assertNode(node);
    const probe = "subnetlab: own keys";
    assert(verifyMultiShare(node, probe, signer.signMultiShare(probe)), `node ${node}'s multi-signature key is not the subnet's key for it`);
    for (const group of ["low", "high"] as const) {
      assert(verifyShare(group, node, probe, signer.signThresholdShare(group, probe)), `node ${node}'s ${group} threshold key share is not the subnet's share for it`);
    }
    return {
      node,
      signBasic: (message) => signer.signBasic(message),
      signMultiShare(message) {
        const share = signer.signMultiShare(message);
        remember(`multi|${node}|${share}|${message}`, () => true);
        return share;
      },
      signThresholdShare(group, message) {
        const share = signer.signThresholdShare(group, message);
        remember(`${group}|${node}|${share}|${message}`, () => true);
        return share;
      },
    };
  };
  return {
    vouchedSigner,
    verifier,
    thresholdPublicKey: (group) => groups[group].publicKey.toBytes(true),
    nodePublicKeyDer(node) {
      assertNode(node);
      return concatBytes(ED25519_DER_PREFIX, basicPublic[node] as Uint8Array);
    },
  };
}

/** The subnet's high-threshold (certification) public key in the IC's 133-byte DER form. */
export function subnetPublicKeyDer(keys: BlsSubnetKeys): Uint8Array {
  return blsPublicKeyToDer(keys.thresholdPublicKey("high"));
}

export function blsPublicKeyToDer(publicKey: Uint8Array): Uint8Array {
  assert(publicKey.length === 96, "a G2 public key has 96 bytes compressed");
  return concatBytes(BLS_DER_PREFIX, publicKey);
}

/** The 96-byte G2 key inside an IC BLS DER key; undefined unless exactly prefix ‖ 96 bytes. */
export function blsPublicKeyFromDer(der: Uint8Array): Uint8Array | undefined {
  if (der.length !== BLS_DER_PREFIX.length + 96) return undefined;
  for (let i = 0; i < BLS_DER_PREFIX.length; i++) if (der[i] !== BLS_DER_PREFIX[i]) return undefined;
  return der.slice(BLS_DER_PREFIX.length);
}

/** Verifies an IC BLS signature (G1, 48 bytes) on raw message bytes under a G2 key (96 bytes). */
export function verifyBlsBytes(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 48 || publicKey.length !== 96) return false;
  try {
    const sig = short.Signature.fromBytes(signature);
    const pk = bls12_381.G2.Point.fromBytes(publicKey);
    if (sig.is0() || pk.is0()) return false;
    return short.verify(sig, short.hash(message, IC_BLS_DST), pk);
  } catch {
    return false;
  }
}
