// host:port strings as Toxiproxy reads and prints them (Go's net.SplitHostPort / Addr().String()).
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { failed, internalFailure, success, type Outcome } from "./types.ts";

export interface HostPort {
  /** "" = every interface. */
  readonly host: string;
  readonly port: number;
}

/** Splits "host:port", "[v6]:port" or ":port"; the reason is Go's wording when it fails. */
export function splitHostPort(address: string): Outcome<HostPort> {
  const bad = (reason: string) => failed<HostPort>(internalFailure(`address ${address}: ${reason}`));
  const colon = address.lastIndexOf(":");
  if (colon < 0) return bad("missing port in address");
  let host = address.slice(0, colon);
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) return bad("missing ']' in address");
    host = host.slice(1, -1);
  } else if (host.includes(":")) {
    return bad("too many colons in address");
  }
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) return bad(`invalid port ${JSON.stringify(portText)}`);
  return success({ host, port });
}

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A host name as an IP address, IPv4 first (as Go's resolver prefers for "tcp"); "" stays "". */
export async function resolveHost(host: string): Promise<Outcome<string>> {
  if (host === "" || isIP(host) !== 0) return success(host);
  try {
    const all = await lookup(host, { all: true });
    const chosen = all.find((a) => a.family === 4) ?? all[0];
    if (chosen === undefined) return failed(internalFailure(`lookup ${host}: no such host`));
    return success(chosen.address);
  } catch {
    return failed(internalFailure(`lookup ${host}: no such host`));
  }
}

/** "localhost:26379" → "127.0.0.1:26379": how Toxiproxy decides whether a listen address changed. */
export async function resolveAddress(address: string): Promise<Outcome<string>> {
  const split = splitHostPort(address);
  if (!split.ok) return split;
  const host = await resolveHost(split.value.host);
  if (!host.ok) return host;
  return success(formatAddress(host.value, split.value.port));
}
