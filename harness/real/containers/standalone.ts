// A replica process without a parent on an IPC channel (issue 12 item 10): in a container the
// process cannot learn its peers' ports over IPC, so everything it needs is on its command line.
//
// Every replica of a container cluster listens on the same fixed ports inside its own network
// namespace and reaches each peer by the peer's network alias, which the engine's DNS resolves to
// wherever that container runs now (a restarted container may get a new address; the alias stays):
//
//   node-main --dir DIR --subnet s0 --node 2 --listen-host 0.0.0.0 --p2p-port 4100 --http-port 8080 \
//             --peers 0=s0-r0:4100,1=s0-r1:4100,3=s0-r3:4100
//
// It starts the replica as soon as its sockets are bound and then prints READY_LINE on stdout,
// which the cluster waits for (and, after a restart, the HTTP status endpoint).
import { replicaId, type ReplicaId } from "../../types.ts";
import { parseHostPort } from "../tcp-transport.ts";

/** The replica's P2P port inside its container. */
export const CONTAINER_P2P_PORT = 4100;
/** The replica's IC HTTP interface inside its container. */
export const CONTAINER_HTTP_PORT = 8080;
/** What a standalone replica prints once it runs. */
export const READY_LINE = "subnetlab replica ready";

/** The network alias (and DNS name) of a replica's container. */
export const replicaAlias = (subnet: string, node: ReplicaId): string => `${subnet}-r${node}`;

/** `--peers` for a replica: every other member of its subnet at its alias and the fixed P2P port. */
export function peersArgument(subnet: string, n: number, self: ReplicaId): string {
  return Array.from({ length: n }, (_, i) => replicaId(i))
    .filter((peer) => peer !== self)
    .map((peer) => `${peer}=${replicaAlias(subnet, peer)}:${CONTAINER_P2P_PORT}`)
    .join(",");
}

/** Parses `--peers 1=host:port,2=host:port`; throws a RangeError naming the bad entry. */
export function parsePeersArgument(text: string, self: ReplicaId, n: number): Map<ReplicaId, string> {
  const peers = new Map<ReplicaId, string>();
  for (const entry of text.split(",").filter((e) => e !== "")) {
    const match = /^(\d+)=(.+)$/.exec(entry);
    if (match === null) throw new RangeError(`--peers entry ${JSON.stringify(entry)} is not <node>=<host>:<port>`);
    const node = Number(match[1]);
    if (node >= n || node === self) throw new RangeError(`--peers entry ${JSON.stringify(entry)}: node ${node} is not a peer (subnet of ${n}, self ${self})`);
    parseHostPort(match[2] as string);
    if (peers.has(replicaId(node))) throw new RangeError(`--peers names node ${node} twice`);
    peers.set(replicaId(node), match[2] as string);
  }
  if (peers.size !== n - 1) throw new RangeError(`--peers names ${peers.size} peers; a subnet of ${n} needs all ${n - 1} others`);
  return peers;
}

/** A port option: an integer 0-65535 (0 = any free port), or the default when absent. */
export function portOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || text.trim() === "") throw new RangeError(`--${name} ${JSON.stringify(text)} is not a port (0-65535)`);
  return port;
}
