// The registry as message routing needs it (ic-protocol.md §3.1): which subnets exist, how many
// replicas each has, and the routing table that maps canister-id ranges to subnets. The IC keeps
// this in the NNS registry canister, versioned; a simulated IC fixes it at genesis.
import { Principal } from "@dfinity/principal";
import { sha256 } from "../crypto/sha256.ts";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { canisterIdFromU64, MANAGEMENT_CANISTER, type CanisterId } from "../execution/interfaces.ts";
import type { Brand } from "../types.ts";

/** A subnet's principal in text form. */
export type SubnetId = Brand<string, "SubnetId">;

/** Canister ids are u64 indices in the IC's opaque-id scheme (8 bytes big-endian, then 0x01 0x01). */
export interface CanisterRange {
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
}

export interface SubnetRecord {
  readonly id: SubnetId;
  /** Short name used in scenarios, traces and reports (`a`, `b`, …). */
  readonly name: string;
  readonly size: number;
  readonly canisterRange: CanisterRange;
}

/** Each subnet owns 2^20 canister ids, the first at `index × 2^20` (the IC gives 2^20 per range too). */
export const CANISTERS_PER_SUBNET = 1n << 20n;

/** A deterministic subnet id from its name: a self-authenticating principal over a name hash. */
export function subnetIdOf(name: string): SubnetId {
  return Principal.selfAuthenticating(sha256(utf8ToBytes(`subnetlab-subnet|${name}`))).toText() as SubnetId;
}

/** The u64 index of an opaque canister id, or undefined for other principals. */
export function canisterIndexOf(id: string): bigint | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Principal.fromText(id).toUint8Array();
  } catch {
    return undefined;
  }
  if (bytes.length !== 10 || bytes[8] !== 0x01 || bytes[9] !== 0x01) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
}

export class Registry {
  readonly subnets: readonly SubnetRecord[];
  private readonly byId: ReadonlyMap<SubnetId, SubnetRecord>;

  constructor(subnets: readonly SubnetRecord[]) {
    assert(subnets.length > 0, "a registry needs at least one subnet");
    this.subnets = subnets;
    this.byId = new Map(subnets.map((s) => [s.id, s]));
    assert(this.byId.size === subnets.length, "subnet ids must be unique");
    const sorted = [...subnets].sort((a, b) => (a.canisterRange.start < b.canisterRange.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) {
      assert(sorted[i - 1]!.canisterRange.end < sorted[i]!.canisterRange.start, `canister ranges of ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap`);
    }
  }

  /** Subnets named in order, each with the next block of canister ids. */
  static of(subnets: readonly { readonly name: string; readonly size: number }[]): Registry {
    return new Registry(
      subnets.map((s, i) => ({
        id: subnetIdOf(s.name),
        name: s.name,
        size: s.size,
        canisterRange: { start: BigInt(i) * CANISTERS_PER_SUBNET, end: BigInt(i + 1) * CANISTERS_PER_SUBNET - 1n },
      })),
    );
  }

  subnet(id: SubnetId): SubnetRecord | undefined {
    return this.byId.get(id);
  }

  byName(name: string): SubnetRecord | undefined {
    return this.subnets.find((s) => s.name === name);
  }

  /** The subnet hosting a canister id (by range), or undefined when no range covers it. */
  route(canister: string): SubnetRecord | undefined {
    if (canister === MANAGEMENT_CANISTER) return undefined;
    const index = canisterIndexOf(canister);
    if (index === undefined) return undefined;
    return this.subnets.find((s) => index >= s.canisterRange.start && index <= s.canisterRange.end);
  }

  /** The k-th canister id of a subnet's range (genesis canisters are 0, 1, …). */
  canisterId(subnet: SubnetRecord, k: number): CanisterId {
    const index = subnet.canisterRange.start + BigInt(k);
    assert(index <= subnet.canisterRange.end, `subnet ${subnet.name} has no canister slot ${k}`);
    return canisterIdFromU64(index);
  }
}
