// One proxy: a listener that, for every accepted client, dials the upstream and joins the two
// sockets with a Connection. Disabling closes the listener and every live connection; enabling
// listens again on `listen`, which after the first start is the bound address (port 0 resolved),
// so a proxy comes back on the same port.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { assert } from "../../assert.ts";
import { formatAddress, resolveHost, splitHostPort } from "./address.ts";
import { Connection, type ConnectionHost } from "./connection.ts";
import { ToxicChains, type ToxicEntry } from "./toxic-chains.ts";
import { failed, internalFailure, success, type Direction, type Outcome, type ProxyJson } from "./types.ts";

/** The server's seeded randomness, shared by its proxies. */
export interface ProxyRandom {
  rollToxicity(toxicity: number): boolean;
  randomBelow(bound: number): number;
}

export class Proxy implements ConnectionHost {
  readonly toxics = new ToxicChains();
  private enabledNow = false;
  private server: Server | undefined;
  private readonly connections = new Set<Connection>();
  /** Sockets of clients whose upstream is still being dialled, and those dials. */
  private readonly dialling = new Set<Socket>();

  constructor(
    readonly name: string,
    public listen: string,
    public upstream: string,
    private readonly random: ProxyRandom,
  ) {}

  get enabled(): boolean {
    return this.enabledNow;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  toJson(): ProxyJson {
    return { name: this.name, listen: this.listen, upstream: this.upstream, enabled: this.enabledNow, toxics: this.toxics.list() };
  }

  async start(): Promise<Outcome<void>> {
    assert(!this.enabledNow, `proxy ${this.name} started twice`);
    // Go's net.Listen takes "" as every interface on a free port.
    const address = splitHostPort(this.listen === "" ? ":0" : this.listen);
    if (!address.ok) return failed(internalFailure(`listen tcp ${this.listen}: ${address.failure.message}`));
    const host = await resolveHost(address.value.host);
    if (!host.ok) return failed(internalFailure(`listen tcp ${this.listen}: ${host.failure.message}`));
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.accept(client));
    const listening = await listenOn(server, host.value, address.value.port);
    if (!listening.ok) return listening;
    server.on("error", (error) => process.stderr.write(`toxiproxy: proxy ${this.name}: ${error.message}\n`));
    this.server = server;
    this.enabledNow = true;
    this.listen = listening.value;
    return success(undefined);
  }

  /** Closes the listener and every connection (in flight data is lost, as in Toxiproxy). */
  async stop(): Promise<void> {
    if (!this.enabledNow) return;
    this.enabledNow = false;
    const server = this.server;
    this.server = undefined;
    for (const connection of this.connections) connection.destroy();
    for (const socket of this.dialling) socket.destroy();
    this.connections.clear();
    this.dialling.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  chain(direction: Direction): readonly ToxicEntry[] {
    return this.toxics.chain(direction);
  }

  rollToxicity(toxicity: number): boolean {
    return this.random.rollToxicity(toxicity);
  }

  randomBelow(bound: number): number {
    return this.random.randomBelow(bound);
  }

  gone(connection: Connection): void {
    this.connections.delete(connection);
    this.toxics.detach(connection.upstreamLink);
    this.toxics.detach(connection.downstreamLink);
  }

  /** A client arrived: dial the upstream; if that fails, the client is closed (nothing else). */
  private accept(client: Socket): void {
    client.on("error", () => {}); // a client that resets before the dial completes is simply dropped
    const target = splitHostPort(this.upstream);
    if (!target.ok) return void client.destroy();
    const server = createConnection({ host: target.value.host || "localhost", port: target.value.port, allowHalfOpen: true });
    this.dialling.add(client).add(server);
    let connected = false;
    server.on("error", () => {
      if (connected) return; // the connection's own handlers take it from here
      this.dialling.delete(client);
      this.dialling.delete(server);
      client.destroy();
    });
    server.once("connect", () => {
      connected = true;
      this.dialling.delete(client);
      this.dialling.delete(server);
      if (!this.enabledNow || client.destroyed) {
        client.destroy();
        server.destroy();
        return;
      }
      const connection = new Connection(client, server, this);
      this.connections.add(connection);
      this.toxics.attach(connection.upstreamLink);
      this.toxics.attach(connection.downstreamLink);
      connection.start();
    });
  }
}

/** Listens and answers the bound address, or the listen failure in Go's words. */
function listenOn(server: Server, host: string, port: number): Promise<Outcome<string>> {
  return new Promise((resolve) => {
    const onError = (error: NodeJS.ErrnoException) => {
      resolve(failed(internalFailure(`listen tcp ${formatAddress(host, port)}: ${describeListenError(error)}`)));
    };
    server.once("error", onError);
    server.listen({ host: host === "" ? undefined : host, port }, () => {
      server.off("error", onError);
      const bound = server.address();
      assert(bound !== null && typeof bound === "object", "a TCP listener has an address");
      resolve(success(formatAddress(bound.address, bound.port)));
    });
  });
}

function describeListenError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "EADDRINUSE":
      return "bind: address already in use";
    case "EADDRNOTAVAIL":
      return "bind: cannot assign requested address";
    case "EACCES":
      return "bind: permission denied";
    default:
      return error.message;
  }
}
