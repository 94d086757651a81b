// The bls backend's keys as files (real mode, issue 12 item 3): genesis writes one public-keys file
// for the whole subnet and one secret-keys file per node; each replica process reads the public
// file and only its own secret file. JSON with hex strings, a format tag and a version, so a wrong
// or damaged file is refused with a message naming what is wrong instead of yielding bad keys.
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { replicaId } from "../types.ts";
import type { BlsNodeSecrets, BlsPublicKeys } from "./bls-backend.ts";
import type { ThresholdGroup } from "./interfaces.ts";

const PUBLIC_FORMAT = "subnetlab/bls-public-keys";
const SECRET_FORMAT = "subnetlab/bls-node-secrets";
const VERSION = 1;
const GROUPS: readonly ThresholdGroup[] = ["low", "high"];

export type KeyFileResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export function encodePublicKeys(keys: BlsPublicKeys): string {
  const group = (g: ThresholdGroup) => ({ publicKey: bytesToHex(keys.groups[g].publicKey), publicShares: keys.groups[g].publicShares.map(bytesToHex) });
  return `${JSON.stringify(
    { format: PUBLIC_FORMAT, version: VERSION, n: keys.n, basic: keys.basic.map(bytesToHex), multi: keys.multi.map(bytesToHex), groups: { low: group("low"), high: group("high") } },
    null,
    2,
  )}\n`;
}

export function encodeNodeSecrets(secrets: BlsNodeSecrets): string {
  return `${JSON.stringify(
    {
      format: SECRET_FORMAT,
      version: VERSION,
      node: secrets.node,
      basic: bytesToHex(secrets.basic),
      multi: bytesToHex(secrets.multi),
      shares: { low: bytesToHex(secrets.shares.low), high: bytesToHex(secrets.shares.high) },
    },
    null,
    2,
  )}\n`;
}

/** Thrown inside the decoders only; turned into a `KeyFileResult` failure at their boundary. */
class KeyFileError extends Error {}

export function decodePublicKeys(text: string): KeyFileResult<BlsPublicKeys> {
  return decoding(() => {
    const doc = header(text, PUBLIC_FORMAT);
    const n = doc.n;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new KeyFileError("n must be a positive integer");
    const keyList = (field: string, value: unknown, bytes: number, check: (b: Uint8Array) => void): Uint8Array[] => {
      if (!Array.isArray(value) || value.length !== n) throw new KeyFileError(`${field} must list ${n} keys`);
      return value.map((v, i) => hexField(`${field}[${i}]`, v, bytes, check));
    };
    const groupsDoc = object("groups", doc.groups);
    const group = (g: ThresholdGroup) => {
      const d = object(`groups.${g}`, groupsDoc[g]);
      return { publicKey: hexField(`groups.${g}.publicKey`, d.publicKey, 96, checkG2), publicShares: keyList(`groups.${g}.publicShares`, d.publicShares, 96, checkG2) };
    };
    return {
      n,
      basic: keyList("basic", doc.basic, 32, checkEd25519),
      multi: keyList("multi", doc.multi, 96, checkG2),
      groups: { low: group("low"), high: group("high") },
    };
  });
}

export function decodeNodeSecrets(text: string): KeyFileResult<BlsNodeSecrets> {
  return decoding(() => {
    const doc = header(text, SECRET_FORMAT);
    const node = doc.node;
    if (typeof node !== "number" || !Number.isInteger(node) || node < 0) throw new KeyFileError("node must be a non-negative integer");
    const shares = object("shares", doc.shares);
    const [low, high] = GROUPS.map((g) => hexField(`shares.${g}`, shares[g], 32, checkScalar));
    return {
      node: replicaId(node),
      basic: hexField("basic", doc.basic, 32, () => undefined),
      multi: hexField("multi", doc.multi, 32, checkScalar),
      shares: { low: low as Uint8Array, high: high as Uint8Array },
    };
  });
}

/** Whether a node's secrets belong to these public keys (a node started with another subnet's or another node's file). */
export function secretsMatch(secrets: BlsNodeSecrets, keys: BlsPublicKeys): string | undefined {
  if (secrets.node >= keys.n) return `the secret keys are node ${secrets.node}'s, but the subnet has ${keys.n} nodes`;
  const same = (a: Uint8Array, b: Uint8Array | undefined): boolean => b !== undefined && bytesToHex(a) === bytesToHex(b);
  if (!same(ed25519.getPublicKey(secrets.basic), keys.basic[secrets.node])) return `node ${secrets.node}'s Ed25519 key does not match the public keys file`;
  const g2Of = (secret: Uint8Array): Uint8Array => bls12_381.shortSignatures.getPublicKey(secret).toBytes(true);
  if (!same(g2Of(secrets.multi), keys.multi[secrets.node])) return `node ${secrets.node}'s multi-signature key does not match the public keys file`;
  for (const g of GROUPS) {
    if (!same(g2Of(secrets.shares[g]), keys.groups[g].publicShares[secrets.node])) return `node ${secrets.node}'s ${g} threshold share does not match the public keys file`;
  }
  return undefined;
}

// ---- helpers ------------------------------------------------------------------------------------

function decoding<T>(decode: () => T): KeyFileResult<T> {
  try {
    return { ok: true, value: decode() };
  } catch (e) {
    if (e instanceof KeyFileError) return { ok: false, error: e.message };
    throw e;
  }
}

function header(text: string, format: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new KeyFileError(`not JSON: ${(e as Error).message}`);
  }
  const o = object("the file", doc);
  if (o.format !== format) throw new KeyFileError(`format is ${JSON.stringify(o.format)}, expected ${JSON.stringify(format)}`);
  if (o.version !== VERSION) throw new KeyFileError(`version ${JSON.stringify(o.version)} is not supported (expected ${VERSION})`);
  return o;
}

function object(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new KeyFileError(`${field} must be an object`);
  return value as Record<string, unknown>;
}

function hexField(field: string, value: unknown, bytes: number, check: (b: Uint8Array) => void): Uint8Array {
  if (typeof value !== "string" || !new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(value)) throw new KeyFileError(`${field} must be ${bytes} bytes of lower-case hex`);
  const decoded = hexToBytes(value);
  try {
    check(decoded);
  } catch (e) {
    if (e instanceof KeyFileError) throw new KeyFileError(`${field}: ${e.message}`);
    throw e;
  }
  return decoded;
}

function checkG2(bytes: Uint8Array): void {
  try {
    if (bls12_381.G2.Point.fromBytes(bytes).is0()) throw new KeyFileError("a G2 key is the identity point");
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new KeyFileError(`not a G2 point: ${(e as Error).message}`);
  }
}

function checkEd25519(bytes: Uint8Array): void {
  try {
    ed25519.Point.fromBytes(bytes);
  } catch (e) {
    throw new KeyFileError(`not an Ed25519 public key: ${(e as Error).message}`);
  }
}

function checkScalar(bytes: Uint8Array): void {
  // Big-endian, as Fr.toBytes writes it (Fr.fromBytes would silently reduce an out-of-range value).
  const x = BigInt(`0x${bytesToHex(bytes)}`);
  if (x >= bls12_381.fields.Fr.ORDER) throw new KeyFileError("a BLS secret must be a scalar below the group order");
  if (x === 0n) throw new KeyFileError("a BLS secret must not be zero");
}
