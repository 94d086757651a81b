// Test helpers for the Toxiproxy-compatible server: local TCP servers (every socket with an
// 'error' handler, since reset_peer makes peers see ECONNRESET), watched sockets, a started server
// with a toxiproxy-node-client pointed at it.
import { connect, createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { Toxiproxy } from "toxiproxy-node-client";
import { ToxiproxyServer, type ToxiproxyServerOptions } from "../../harness/real/toxiproxy/index.ts";

export const nowMs = (): number => performance.now();

/** Everything a socket did, with performance.now() times. */
export class Watched {
  readonly chunks: { readonly atMs: number; readonly data: Buffer }[] = [];
  error: NodeJS.ErrnoException | undefined;
  endedAtMs: number | undefined;
  closedAtMs: number | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly socket: Socket) {
    socket.on("data", (data: Buffer) => this.note(() => this.chunks.push({ atMs: nowMs(), data })));
    socket.on("end", () => this.note(() => (this.endedAtMs = nowMs())));
    socket.on("error", (error: NodeJS.ErrnoException) => this.note(() => (this.error = error)));
    socket.on("close", () => this.note(() => (this.closedAtMs = nowMs())));
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks.map((c) => c.data));
  }

  get closed(): boolean {
    return this.closedAtMs !== undefined;
  }

  /** True once `holds()` does, false if `timeoutMs` passes first. */
  until(holds: () => boolean, timeoutMs: number): Promise<boolean> {
    if (holds()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!holds()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(holds());
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  untilBytes(count: number, timeoutMs: number): Promise<boolean> {
    return this.until(() => this.bytes.length >= count, timeoutMs);
  }

  untilClosed(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  private note(change: () => void): void {
    change();
    for (const waiter of [...this.waiters]) waiter();
  }
}

export interface TcpServer {
  readonly port: number;
  readonly address: string;
  /** Every accepted connection, watched, in order. */
  readonly accepted: Watched[];
  nextAccepted(timeoutMs?: number): Promise<Watched>;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that hands each connection (already watched) to `onConnection`. */
export async function tcpServer(onConnection: (peer: Watched) => void = () => {}): Promise<TcpServer> {
  const accepted: Watched[] = [];
  const sockets = new Set<Socket>();
  let arrived: (() => void) | undefined;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const peer = new Watched(socket);
    accepted.push(peer);
    onConnection(peer);
    arrived?.();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    accepted,
    nextAccepted: (timeoutMs = 2000) => {
      const index = accepted.length;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no connection arrived")), timeoutMs);
        arrived = () => {
          const peer = accepted[index];
          if (peer === undefined) return;
          clearTimeout(timer);
          arrived = undefined;
          resolve(peer);
        };
        arrived();
      });
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes back whatever it reads. */
export const echoServer = (): Promise<TcpServer> => tcpServer((peer) => peer.socket.on("data", (data: Buffer) => peer.socket.write(data)));

/** Connects to "host:port"; the socket is watched from the start. */
export function dial(address: string): Promise<Watched> {
  const colon = address.lastIndexOf(":");
  const socket = connect(Number(address.slice(colon + 1)), address.slice(0, colon));
  const watched = new Watched(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(watched));
    socket.once("error", reject);
  });
}

/** Round trip of `message` through an echo path, in ms (undefined if no full echo within the timeout). */
export async function roundTripMs(peer: Watched, message: string, timeoutMs = 2000): Promise<number | undefined> {
  const before = peer.bytes.length;
  const sentAtMs = nowMs();
  peer.socket.write(message);
  if (!(await peer.untilBytes(before + Buffer.byteLength(message), timeoutMs))) return undefined;
  return nowMs() - sentAtMs;
}

export interface Lab {
  readonly server: ToxiproxyServer;
  readonly client: Toxiproxy;
  readonly upstream: TcpServer;
  close(): Promise<void>;
}

/** A Toxiproxy server on a free port, a client for it, and an upstream (an echo server by default). */
export async function lab(options: ToxiproxyServerOptions & { upstream?: TcpServer } = {}): Promise<Lab> {
  const upstream = options.upstream ?? (await echoServer());
  const server = await ToxiproxyServer.start({ ...options, port: 0 });
  return {
    server,
    client: new Toxiproxy(server.url),
    upstream,
    close: async () => {
      await server.stop();
      await upstream.close();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
