// Representation-independent hashing of structured data and request ids (IC interface
// specification, "Representation-independent hashing of structured data" and "Request ids";
// research/agent-compat.md §4).
//
//   hash_of_map(m) = H(concat(sort([H(utf8 key) · hash(value) for each present key])))
//   text → H(utf8), blob → H(bytes), nat → H(shortest unsigned LEB128),
//   negative int → H(shortest signed LEB128), array → H(concat(hash(element)...)), map → hash_of_map.
//
// Values are typed by their JS type, which is how a decoded CBOR request arrives: string = text,
// Uint8Array = blob, number/bigint ≥ 0 = nat, < 0 = int, arrays, plain objects = maps, and a
// Principal (anything with `toUint8Array()`) = its bytes. Keys whose value is undefined are
// omitted, as the spec's optional fields are.
import { sha256 } from "./sha256.ts";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { BoundedMap } from "../memo.ts";

export type HashableValue =
  | string
  | Uint8Array
  | number
  | bigint
  | { toUint8Array(): Uint8Array }
  | readonly HashableValue[]
  | HashableMap;

export interface HashableMap {
  readonly [key: string]: HashableValue | undefined;
}

/** 32-byte request id. */
export type RequestId = Uint8Array & { readonly __brand: "RequestId" };

/** Shortest unsigned LEB128. */
export function encodeUleb128(n: bigint | number): Uint8Array {
  let v = BigInt(n);
  assert(v >= 0n, `unsigned LEB128 of a negative number ${v}`);
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v === 0n) {
      out.push(byte);
      return Uint8Array.from(out);
    }
    out.push(byte | 0x80);
  }
}

/** Shortest signed LEB128. */
export function encodeSleb128(n: bigint | number): Uint8Array {
  let v = BigInt(n);
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n; // arithmetic shift for bigint
    const signBitSet = (byte & 0x40) !== 0;
    if ((v === 0n && !signBitSet) || (v === -1n && signBitSet)) {
      out.push(byte);
      return Uint8Array.from(out);
    }
    out.push(byte | 0x80);
  }
}

/** Decodes an unsigned LEB128 number (e.g. `/time`); undefined if malformed or trailing bytes. */
export function decodeUleb128(bytes: Uint8Array): bigint | undefined {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    result |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) return i === bytes.length - 1 ? result : undefined;
  }
  return undefined;
}

const isBytesLike = (v: object): v is { toUint8Array(): Uint8Array } =>
  typeof (v as { toUint8Array?: unknown }).toUint8Array === "function";

/** The representation-independent hash of one value. */
export function hashValue(v: HashableValue): Uint8Array {
  if (typeof v === "string") return sha256(utf8ToBytes(v));
  if (typeof v === "number") {
    assert(Number.isSafeInteger(v), `only integers are hashable, got ${v}`);
    return sha256(v >= 0 ? encodeUleb128(v) : encodeSleb128(v));
  }
  if (typeof v === "bigint") return sha256(v >= 0n ? encodeUleb128(v) : encodeSleb128(v));
  if (v instanceof Uint8Array) return sha256(v);
  if (Array.isArray(v)) {
    const parts = (v as readonly HashableValue[]).map(hashValue);
    const joined = new Uint8Array(parts.length * 32);
    parts.forEach((p, i) => joined.set(p, i * 32));
    return sha256(joined);
  }
  if (isBytesLike(v)) return sha256(v.toUint8Array());
  return hashOfMap(v as HashableMap);
}

/** The representation-independent hash of a map (the spec's hash_of_map). */
export function hashOfMap(map: HashableMap): Uint8Array {
  const pairs: Uint8Array[] = [];
  for (const key of Object.keys(map)) {
    const v = map[key];
    if (v === undefined) continue;
    const pair = new Uint8Array(64);
    pair.set(keyHash(key), 0);
    pair.set(hashValue(v), 32);
    pairs.push(pair);
  }
  pairs.sort(compareBytes);
  const joined = new Uint8Array(pairs.length * 64);
  pairs.forEach((p, i) => joined.set(p, i * 64));
  return sha256(joined);
}

// The field names of requests are few ("request_type", "sender", "ingress_expiry", …) and every
// request id hashes them again: their hashes are remembered in a small bounded memo (hostile input
// may bring any number of field names). A remembered hash is H(utf8 key); callers only read it.
const keyHashes = new BoundedMap<string, Uint8Array>("requestId.keyHashes", 64);
function keyHash(key: string): Uint8Array {
  let hash = keyHashes.get(key);
  if (hash === undefined) {
    hash = sha256(utf8ToBytes(key));
    keyHashes.set(key, hash);
  }
  return hash;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Request content as the agent sends it (call / query / read_state); extra fields are hashed too. */
export interface RequestContent extends HashableMap {
  readonly request_type: "call" | "query" | "read_state" | (string & {});
  readonly sender: Uint8Array | { toUint8Array(): Uint8Array };
  readonly ingress_expiry: bigint | number;
  readonly nonce?: Uint8Array;
  readonly canister_id?: Uint8Array | { toUint8Array(): Uint8Array };
  readonly method_name?: string;
  readonly arg?: Uint8Array;
  readonly paths?: readonly (readonly Uint8Array[])[];
}

/** The request id: hash_of_map of the request's `content`. */
export function requestId(content: RequestContent): RequestId {
  return hashOfMap(content) as RequestId;
}

export const requestIdHex = (content: RequestContent): string => bytesToHex(requestId(content));
