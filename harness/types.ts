// Branded ids and quantities shared by every layer. The brand makes the compiler refuse to mix a
// height with a replica index or a microsecond count with a byte count.

export type Brand<T, B extends string> = T & { readonly __brand: B };

/** Index of a replica inside its subnet, 0..n-1. Displayed as `r<i>`. */
export type ReplicaId = Brand<number, "ReplicaId">;
/** Consensus height (= execution round). */
export type Height = Brand<number, "Height">;
/** Virtual time in microseconds since the start of the run. */
export type TimeUs = Brand<number, "TimeUs">;
/** Hex-encoded SHA-256 digest (64 chars). */
export type HashHex = Brand<string, "HashHex">;

export const replicaId = (n: number): ReplicaId => {
  if (!Number.isInteger(n) || n < 0) throw new Error(`invalid replica index ${n}`);
  return n as ReplicaId;
};
export const height = (n: number): Height => {
  if (!Number.isInteger(n) || n < 0) throw new Error(`invalid height ${n}`);
  return n as Height;
};
export const timeUs = (n: number): TimeUs => {
  if (!Number.isInteger(n) || n < 0) throw new Error(`invalid virtual time ${n}`);
  return n as TimeUs;
};
export const msToUs = (ms: number): TimeUs => timeUs(Math.round(ms * 1000));
export const secondsToUs = (s: number): TimeUs => timeUs(Math.round(s * 1_000_000));
export const usToMs = (us: number): number => us / 1000;

export const replicaName = (id: ReplicaId): string => `r${id}`;

/** Parses `r3` or `3` into a replica id; returns undefined for anything else. */
export function parseReplicaName(text: string): ReplicaId | undefined {
  const match = /^r?(\d+)$/.exec(text.trim());
  return match?.[1] === undefined ? undefined : replicaId(Number(match[1]));
}

/** Faults tolerated by a subnet of n replicas: f = floor((n-1)/3). */
export const faultsTolerated = (n: number): number => Math.floor((n - 1) / 3);
