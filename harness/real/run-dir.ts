// A real-mode run directory (issue 12 items 3 and 5): what `subnetlab up` creates at genesis and
// what a second `up` on the same directory resumes from.
//
//   DIR/cluster-spec.json                 subnets (name, size), consensus settings — never changes
//   DIR/keys/<subnet>/public.json         the subnet's public keys (every process reads it)
//   DIR/nodes/<subnet>-r<i>/secret.json   node i's own secret keys (only its process reads it; 0600)
//   DIR/nodes/<subnet>-r<i>/disk/         node i's disk (pool log, checkpoints)
//
// Keys come from a fresh random seed that is not written anywhere: real mode is not replayable, and
// a seed on disk would be every node's secret at once.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blsPublicKeyToDer, blsSigner, blsSubnetKeysOf, blsVerifier, dealBlsKeys, type BlsPublicKeys, type BlsVerifierKeys } from "../crypto/bls-backend.ts";
import type { NodeSigner } from "../crypto/interfaces.ts";
import { decodeNodeSecrets, decodePublicKeys, encodeNodeSecrets, encodePublicKeys, secretsMatch } from "../crypto/key-files.ts";
import { checkConsensusConfig, DEFAULT_CONSENSUS_CONFIG, type ConsensusConfig } from "../consensus/config.ts";
import { Rng } from "../sim/rng.ts";
import { Principal } from "@dfinity/principal";
import type { CatchUpPackage } from "../consensus/artifacts.ts";
import { subnetIdOfRootKey } from "../crypto/certificate.ts";
import { makeGenesis } from "../replica/subnet.ts";
import { CANISTERS_PER_SUBNET, Registry, type SubnetId } from "../routing/registry.ts";
import { decodeGenesisCup, encodeGenesisCup } from "./genesis-cup.ts";
import { replicaId, type ReplicaId } from "../types.ts";

const SPEC_FORMAT = "subnetlab/cluster-spec";
const SPEC_VERSION = 1;
const SUBNET_NAME = /^[a-z][a-z0-9-]{0,30}$/;

export interface SubnetSpec {
  readonly name: string;
  readonly n: number;
}

export interface ClusterSpec {
  readonly subnets: readonly SubnetSpec[];
  readonly consensus: ConsensusConfig;
}

/** A run directory refused: the message says what is wrong and where. */
export class RunDirError extends Error {}

export const specPath = (dir: string): string => join(dir, "cluster-spec.json");
export const genesisPath = (dir: string, subnet: string): string => join(dir, "keys", subnet, "genesis-cup.bin");
export const publicKeysPath = (dir: string, subnet: string): string => join(dir, "keys", subnet, "public.json");
export const nodeDir = (dir: string, subnet: string, node: ReplicaId): string => join(dir, "nodes", `${subnet}-r${node}`);
export const secretKeysPath = (dir: string, subnet: string, node: ReplicaId): string => join(nodeDir(dir, subnet, node), "secret.json");
export const diskDir = (dir: string, subnet: string, node: ReplicaId): string => join(nodeDir(dir, subnet, node), "disk");

/** Real-mode consensus defaults: the IC's application-subnet delays, checkpoints every 100 heights. */
export const REAL_CONSENSUS_CONFIG: ConsensusConfig = { ...DEFAULT_CONSENSUS_CONFIG, dkgIntervalLength: 99 };

/** Creates the run directory's spec and keys; refuses a directory that already holds a cluster. */
export function createRunDir(dir: string, spec: ClusterSpec): void {
  checkSpec(spec);
  if (existsSync(specPath(dir))) throw new RunDirError(`${dir} already holds a cluster (${specPath(dir)}); resume it, or choose another --out`);
  mkdirSync(dir, { recursive: true });
  for (const subnet of spec.subnets) {
    mkdirSync(join(dir, "keys", subnet.name), { recursive: true });
    const dealing = dealBlsKeys(subnet.n, Rng.fromSeed(randomBytes(32).toString("hex")));
    // The genesis CUP needs every node's threshold share: the dealer signs it while it still holds them.
    writeFileSync(genesisPath(dir, subnet.name), encodeGenesisCup(makeGenesis(blsSubnetKeysOf(dealing), subnet.n)));
    mkdirSync(join(dir, "keys", subnet.name), { recursive: true });
    writeFileSync(publicKeysPath(dir, subnet.name), encodePublicKeys(dealing.publicKeys));
    for (const secrets of dealing.secrets) {
      const path = secretKeysPath(dir, subnet.name, secrets.node);
      mkdirSync(nodeDir(dir, subnet.name, secrets.node), { recursive: true });
      writeFileSync(path, encodeNodeSecrets(secrets), { mode: 0o600 });
      chmodSync(path, 0o600);
    }
  }
  // Written last: a directory without a spec is an interrupted genesis, which createRunDir may redo.
  writeFileSync(specPath(dir), `${JSON.stringify({ format: SPEC_FORMAT, version: SPEC_VERSION, ...spec }, null, 2)}\n`);
}

export function readSpec(dir: string): ClusterSpec {
  const path = specPath(dir);
  if (!existsSync(path)) throw new RunDirError(`${dir} holds no cluster (no ${path})`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new RunDirError(`${path}: not JSON: ${(e as Error).message}`);
  }
  if (doc.format !== SPEC_FORMAT || doc.version !== SPEC_VERSION) throw new RunDirError(`${path}: not a subnetlab cluster spec of version ${SPEC_VERSION}`);
  const spec = { subnets: doc.subnets, consensus: doc.consensus } as ClusterSpec;
  checkSpec(spec, path);
  return spec;
}

export function readPublicKeys(dir: string, subnet: string): BlsPublicKeys {
  const path = publicKeysPath(dir, subnet);
  if (!existsSync(path)) throw new RunDirError(`no public keys for subnet ${subnet} (${path})`);
  const decoded = decodePublicKeys(readFileSync(path, "utf8"));
  if (!decoded.ok) throw new RunDirError(`${path}: ${decoded.error}`);
  return decoded.value;
}

/** What one replica process loads: the subnet's public keys and its own signer — no other secret. */
export interface NodeKeys {
  readonly publicKeys: BlsPublicKeys;
  readonly verifierKeys: BlsVerifierKeys;
  readonly signer: NodeSigner;
  /** The subnet's certification key as 133-byte DER (what agents verify certificates with). */
  readonly publicKeyDer: Uint8Array;
}

export function loadNodeKeys(dir: string, subnet: string, node: ReplicaId): NodeKeys {
  const publicKeys = readPublicKeys(dir, subnet);
  const path = secretKeysPath(dir, subnet, node);
  if (!existsSync(path)) throw new RunDirError(`no secret keys for ${subnet}/r${node} (${path})`);
  const decoded = decodeNodeSecrets(readFileSync(path, "utf8"));
  if (!decoded.ok) throw new RunDirError(`${path}: ${decoded.error}`);
  if (decoded.value.node !== node) throw new RunDirError(`${path} holds node ${decoded.value.node}'s keys, not node ${node}'s`);
  const mismatch = secretsMatch(decoded.value, publicKeys);
  if (mismatch !== undefined) throw new RunDirError(`${path}: ${mismatch}`);
  const verifierKeys = blsVerifier(publicKeys);
  // The node's own shares need no pairing check by its own verifier (a fifth of a replica's checks).
  const signer = verifierKeys.vouchedSigner(blsSigner(decoded.value));
  return { publicKeys, verifierKeys, signer, publicKeyDer: blsPublicKeyToDer(verifierKeys.thresholdPublicKey("high")) };
}

/** The subnet's genesis catch-up package, signed by the dealer at genesis. */
export function readGenesisCup(dir: string, subnet: string): CatchUpPackage {
  const path = genesisPath(dir, subnet);
  if (!existsSync(path)) throw new RunDirError(`no genesis CUP for subnet ${subnet} (${path})`);
  const decoded = decodeGenesisCup(readFileSync(path));
  if (!decoded.ok) throw new RunDirError(`${path}: ${decoded.error}`);
  return decoded.value;
}

/**
 * The registry of the cluster: each subnet's id is the self-authenticating principal of its
 * certification key, as agents derive it from the root key (agent-compat.md sharp edge 3).
 */
export function clusterRegistry(dir: string, spec: ClusterSpec): Registry {
  return new Registry(
    spec.subnets.map((s, i) => ({
      id: Principal.fromUint8Array(subnetIdOfRootKey(blsPublicKeyToDer(readPublicKeys(dir, s.name).groups.high.publicKey))).toText() as SubnetId,
      name: s.name,
      size: s.n,
      canisterRange: { start: BigInt(i) * CANISTERS_PER_SUBNET, end: BigInt(i + 1) * CANISTERS_PER_SUBNET - 1n },
    })),
  );
}

/** Every replica of the cluster as (subnet, node) pairs, in spec order. */
export function replicasOf(spec: ClusterSpec): { readonly subnet: string; readonly node: ReplicaId }[] {
  return spec.subnets.flatMap((s) => Array.from({ length: s.n }, (_, i) => ({ subnet: s.name, node: replicaId(i) })));
}

function checkSpec(spec: ClusterSpec, where = "the cluster spec"): void {
  if (!Array.isArray(spec.subnets) || spec.subnets.length === 0) throw new RunDirError(`${where}: at least one subnet is needed`);
  const names = new Set<string>();
  for (const s of spec.subnets) {
    if (typeof s.name !== "string" || !SUBNET_NAME.test(s.name)) throw new RunDirError(`${where}: subnet name ${JSON.stringify(s.name)} must be lower-case letters, digits and dashes`);
    if (names.has(s.name)) throw new RunDirError(`${where}: two subnets are named ${s.name}`);
    names.add(s.name);
    if (!Number.isInteger(s.n) || s.n < 1 || s.n > 64) throw new RunDirError(`${where}: subnet ${s.name} has ${JSON.stringify(s.n)} nodes; 1 to 64 are supported in real mode`);
  }
  try {
    checkConsensusConfig(spec.consensus);
  } catch (e) {
    throw new RunDirError(`${where}: ${(e as Error).message}`);
  }
}
