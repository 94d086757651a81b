// Listening ports for the cluster's proxies chosen below the kernel's ephemeral range. A proxy that
// is disabled (Toxiproxy's way to cut a link) gives up its port while the peers keep dialling it;
// if that port lies in the ephemeral range, Linux may pick it as the source port of one of those
// very dials, and the socket connects to itself ("TCP simultaneous open") and holds the port — the
// proxy then cannot listen again ("bind: address already in use") and the cut never heals. A port
// the kernel never hands out as a source port cannot be taken that way.
import { readFileSync } from "node:fs";

/** The lowest port we use: above the well-known and the usual registered service ports. */
const LOWEST = 20_000;

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** Ports below Linux's ephemeral range (ip_local_port_range), or undefined where it is unknown. */
export function portsBelowEphemeral(rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"): PortRange | undefined {
  let text: string;
  try {
    text = readFileSync(rangeFile, "utf8");
  } catch {
    return undefined;
  }
  const low = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isInteger(low) || low - 1 - LOWEST < 1_000) return undefined;
  return { first: LOWEST, last: low - 1 };
}

/**
 * Candidate ports to try in turn: from a random point of the range onwards (several clusters on one
 * machine — parallel tests — then rarely collide), wrapping around; [0] (any port) where the range
 * is unknown.
 */
export function candidatePorts(range: PortRange | undefined, count: number, random: () => number = Math.random): number[] {
  if (range === undefined) return [0];
  const size = range.last - range.first + 1;
  const start = Math.floor(random() * size);
  return Array.from({ length: Math.min(count, size) }, (_, i) => range.first + ((start + i) % size));
}

/** Whether a failed listen is worth retrying on another port. */
export const isPortTaken = (message: string): boolean => /address already in use|EADDRINUSE|permission denied|EACCES/i.test(message);
