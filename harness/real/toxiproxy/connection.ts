// A proxied connection: the client's socket, the socket dialled to the upstream, and two links —
// upstream (client → server) and downstream (server → client). When one link closes its
// destination, the other link's source is that same socket, so that link ends too: whichever side
// closes first, the whole connection comes down once both links have flushed (as in Toxiproxy).
import type { Socket } from "node:net";
import { Link, type LinkHost } from "./link.ts";
import type { ToxicEntry } from "./toxic-chains.ts";
import type { Direction } from "./types.ts";

export interface ConnectionHost {
  chain(direction: Direction): readonly ToxicEntry[];
  rollToxicity(toxicity: number): boolean;
  randomBelow(bound: number): number;
  /** Both sockets are closed; the connection's links are done. */
  gone(connection: Connection): void;
}

export class Connection implements LinkHost {
  readonly upstreamLink: Link;
  readonly downstreamLink: Link;
  /** Close both sockets with RST: a reset_peer toxic existed when the connection was accepted. */
  private readonly abortive: boolean;
  private readonly closing = new Set<Socket>();
  private readonly closed = new Set<Socket>();

  constructor(
    readonly client: Socket,
    readonly server: Socket,
    private readonly host: ConnectionHost,
  ) {
    const upstreamChain = host.chain("upstream");
    const downstreamChain = host.chain("downstream");
    this.abortive = [...upstreamChain, ...downstreamChain].some((entry) => entry.kind.abortiveClose === true);
    this.upstreamLink = new Link("upstream", client, server, upstreamChain, this);
    this.downstreamLink = new Link("downstream", server, client, downstreamChain, this);
    this.wire(client, this.upstreamLink, this.downstreamLink);
    this.wire(server, this.downstreamLink, this.upstreamLink);
  }

  start(): void {
    this.upstreamLink.start();
    this.downstreamLink.start();
  }

  link(direction: Direction): Link {
    return direction === "upstream" ? this.upstreamLink : this.downstreamLink;
  }

  /** The proxy was disabled or removed: both sockets close now, whatever is in flight. */
  destroy(): void {
    this.upstreamLink.dispose();
    this.downstreamLink.dispose();
    for (const socket of [this.client, this.server]) {
      if (this.abortive && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  closeDestination(link: Link): void {
    this.closeSocket(link.dest);
    // In Toxiproxy a closed socket fails the other direction's read at once.
    this.linkReading(link.dest).endOfSource();
  }

  rollToxicity(toxicity: number): boolean {
    return this.host.rollToxicity(toxicity);
  }

  randomBelow(bound: number): number {
    return this.host.randomBelow(bound);
  }

  fail(error: unknown): void {
    process.stderr.write(`toxiproxy: a toxic failed, closing its connection: ${(error as Error).stack ?? String(error)}\n`);
    this.destroy();
  }

  private wire(socket: Socket, reading: Link, writing: Link): void {
    socket.on("data", (data: Buffer) => reading.receive(data));
    socket.on("end", () => reading.endOfSource());
    // A peer that resets or dies must never crash the server: an error is just the socket's end.
    socket.on("error", () => this.socketGone(socket, reading, writing));
    socket.on("close", () => this.socketGone(socket, reading, writing));
  }

  private socketGone(socket: Socket, reading: Link, writing: Link): void {
    reading.endOfSource();
    writing.destinationGone();
    this.closed.add(socket);
    if (this.closed.size === 2) {
      this.upstreamLink.dispose();
      this.downstreamLink.dispose();
      this.host.gone(this);
    }
  }

  private linkReading(socket: Socket): Link {
    return socket === this.client ? this.upstreamLink : this.downstreamLink;
  }

  private closeSocket(socket: Socket): void {
    if (this.closing.has(socket) || socket.destroyed) return;
    this.closing.add(socket);
    if (this.abortive) return void socket.resetAndDestroy();
    // Toxiproxy's Close(): what was written still goes out, then the socket is gone.
    socket.end(() => socket.destroy());
  }
}
