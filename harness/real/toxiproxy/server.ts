// A Toxiproxy-compatible server in this process: the HTTP API on host:port over a ProxyRegistry.
// Real mode embeds it (one proxy per directed replica link); `subnetlab toxiproxy` runs it alone.
import { createServer, type Server } from "node:http";
import { formatAddress } from "./address.ts";
import { toxiproxyApi } from "./http-api.ts";
import { ProxyRegistry } from "./registry.ts";
import type { ProxyInput } from "./types.ts";

export interface ToxiproxyServerOptions {
  /** API address; default 127.0.0.1. */
  readonly host?: string;
  /** API port; default 8474 (Toxiproxy's); 0 takes a free port (see `port` after start). */
  readonly port?: number;
  /** Seeds toxicity rolls, jitter and slicing; default 1. */
  readonly seed?: number | bigint | string;
  /** Proxies to create before the API listens (as `POST /populate`). */
  readonly proxies?: readonly ProxyInput[];
}

/** Starting failed: a proxy of `proxies` or the API could not listen. */
export class ToxiproxyStartError extends Error {
  override readonly name = "ToxiproxyStartError";
}

export const TOXIPROXY_DEFAULT_PORT = 8474;

export class ToxiproxyServer {
  private constructor(
    readonly registry: ProxyRegistry,
    private readonly http: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** The API's base URL, e.g. http://127.0.0.1:8474 (no trailing slash, as clients expect). */
  get url(): string {
    return `http://${formatAddress(this.host, this.port)}`;
  }

  static async start(options: ToxiproxyServerOptions = {}): Promise<ToxiproxyServer> {
    const host = options.host ?? "127.0.0.1";
    const registry = new ProxyRegistry(options.seed ?? 1);
    const populated = await registry.populate(options.proxies ?? []);
    if (populated.failure !== undefined) {
      await registry.stopAll();
      throw new ToxiproxyStartError(`cannot create the configured proxies: ${populated.failure.message}`);
    }
    const http = createServer(toxiproxyApi(registry));
    try {
      const port = await listen(http, host, options.port ?? TOXIPROXY_DEFAULT_PORT);
      return new ToxiproxyServer(registry, http, host, port);
    } catch (error) {
      await registry.stopAll();
      throw new ToxiproxyStartError(`cannot serve the API on ${formatAddress(host, options.port ?? TOXIPROXY_DEFAULT_PORT)}: ${(error as Error).message}`);
    }
  }

  /** Stops the API and every proxy, closing all their connections. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await this.registry.stopAll();
    await closed;
  }
}

function listen(http: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.once("error", reject);
    http.listen({ host, port }, () => {
      http.off("error", reject);
      const address = http.address();
      if (address === null || typeof address !== "object") return reject(new Error("the API listener has no TCP address"));
      resolve(address.port);
    });
  });
}
