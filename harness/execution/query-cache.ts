// Replica-side query cache (research/ic-protocol.md §4.12): results of non-replicated queries,
// keyed by (canister, method, argument, caller). An entry is valid while the canister's version
// and cycle balance are those it was computed on — every committed change bumps the version, so any
// state change invalidates — and, if the query read `ic0.time`, while the time is the same.
// Entries are also dropped after `maxAgeNs` of (virtual) time, 600 s by default (§4.12).
import { bytesToHex } from "@noble/hashes/utils.js";
import type { CanisterId, CanisterState, PrincipalText } from "./interfaces.ts";

export interface QueryCacheKey {
  readonly canister: CanisterId;
  readonly method: string;
  readonly arg: Uint8Array;
  readonly caller: PrincipalText;
}

interface Entry<T> {
  readonly version: bigint;
  readonly cycles: bigint;
  readonly createdNs: bigint;
  /** Set when the result depends on the time it was computed at. */
  readonly timeNs: bigint | undefined;
  readonly value: T;
}

export const QUERY_CACHE_MAX_AGE_NS = 600_000_000_000n;

export class QueryCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  readonly stats = { hits: 0, misses: 0, invalidations: 0 };

  constructor(private readonly maxAgeNs: bigint = QUERY_CACHE_MAX_AGE_NS) {}

  private static key(k: QueryCacheKey): string {
    return `${k.canister}|${k.method}|${bytesToHex(k.arg)}|${k.caller}`;
  }

  /** The cached value if still valid for `canister` at `nowNs`. */
  get(k: QueryCacheKey, canister: CanisterState, nowNs: bigint): T | undefined {
    const key = QueryCache.key(k);
    const e = this.entries.get(key);
    if (e === undefined) {
      this.stats.misses++;
      return undefined;
    }
    const valid =
      e.version === canister.version &&
      e.cycles === canister.cyclesBalance &&
      (e.timeNs === undefined || e.timeNs === nowNs) &&
      nowNs - e.createdNs <= this.maxAgeNs;
    if (!valid) {
      this.entries.delete(key);
      this.stats.invalidations++;
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    return e.value;
  }

  set(k: QueryCacheKey, canister: CanisterState, nowNs: bigint, readTime: boolean, value: T): void {
    this.entries.set(QueryCache.key(k), {
      version: canister.version,
      cycles: canister.cyclesBalance,
      createdNs: nowNs,
      timeNs: readTime ? nowNs : undefined,
      value,
    });
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
