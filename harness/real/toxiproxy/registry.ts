// The server's model: every proxy by name and the operations of Toxiproxy's HTTP API, as typed
// calls that in-process users (real mode's `subnetlab up`) make directly and that the HTTP adapter
// maps to routes. Changes run one at a time, in call order, like Toxiproxy's locked collection.
import { Rng } from "../../sim/rng.ts";
import { resolveAddress } from "./address.ts";
import { Proxy, type ProxyRandom } from "./proxy.ts";
import {
  FAILURES, failed, missingField, success, TOXIPROXY_API_VERSION,
  type ApiFailure, type Outcome, type ProxyInput, type ProxyJson, type ProxyPatch, type ToxicInput, type ToxicJson, type ToxicPatch,
} from "./types.ts";

/** What `populate` made or kept, in input order, and the failure that stopped it, if one did. */
export interface PopulateResult {
  readonly proxies: readonly ProxyJson[];
  readonly failure?: ApiFailure;
}

export class ProxyRegistry {
  private readonly proxies = new Map<string, Proxy>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly random: ProxyRandom;

  constructor(seed: number | bigint | string) {
    this.random = toxiproxyRandom(seed);
  }

  version(): string {
    return TOXIPROXY_API_VERSION;
  }

  /** Every proxy, by name in byte order (Go marshals a map with sorted keys). */
  list(): ProxyJson[] {
    return this.sortedProxies().map((proxy) => proxy.toJson());
  }

  get(name: string): Outcome<ProxyJson> {
    const proxy = this.proxies.get(name);
    return proxy === undefined ? failed(FAILURES.proxyNotFound) : success(proxy.toJson());
  }

  /** Live connections through a proxy (0 for an unknown one). */
  connectionCount(name: string): number {
    return this.proxies.get(name)?.connectionCount ?? 0;
  }

  create(input: ProxyInput): Promise<Outcome<ProxyJson>> {
    return this.serially(async () => {
      if (input.name === "") return failed(missingField("name"));
      if (input.upstream === "") return failed(missingField("upstream"));
      if (this.proxies.has(input.name)) return failed(FAILURES.proxyAlreadyExists);
      return this.startAndAdd(input);
    });
  }

  /**
   * Creates proxies in order after checking every one has a name and an upstream. A proxy of the
   * same name whose resolved listen address and upstream are equal is kept as it is; otherwise it
   * is stopped and replaced (its toxics go with it).
   */
  populate(inputs: readonly ProxyInput[]): Promise<PopulateResult> {
    return this.serially(async () => {
      const invalid = inputs.findIndex((input) => input.name === "" || input.upstream === "");
      const wrong = inputs[invalid];
      if (wrong !== undefined) return { proxies: [], failure: missingField(`${wrong.name === "" ? "name" : "upstream"} at proxy ${invalid + 1}`) };
      const made: ProxyJson[] = [];
      for (const input of inputs) {
        const outcome = await this.addOrReplace(input);
        if (!outcome.ok) return { proxies: made, failure: outcome.failure };
        made.push(outcome.value);
      }
      return { proxies: made };
    });
  }

  /**
   * Changes listen, upstream or enabled (missing fields keep their values). A new listen address or
   * upstream restarts the listener and drops live connections; enabled:false closes the listener
   * and every connection.
   */
  update(name: string, patch: ProxyPatch): Promise<Outcome<ProxyJson>> {
    return this.serially(async () => {
      const proxy = this.proxies.get(name);
      if (proxy === undefined) return failed(FAILURES.proxyNotFound);
      const listen = patch.listen ?? proxy.listen;
      const upstream = patch.upstream ?? proxy.upstream;
      const enabled = patch.enabled ?? proxy.enabled; // before a restart below disables it
      const resolved = await resolveAddress(listen);
      if (!resolved.ok) return resolved;
      if (resolved.value !== proxy.listen || upstream !== proxy.upstream) {
        await proxy.stop();
        proxy.listen = listen;
        proxy.upstream = upstream;
      }
      if (enabled && !proxy.enabled) {
        const started = await proxy.start();
        if (!started.ok) return started;
      } else if (!enabled) {
        await proxy.stop();
      }
      return success(proxy.toJson());
    });
  }

  remove(name: string): Promise<Outcome<void>> {
    return this.serially(async () => {
      const proxy = this.proxies.get(name);
      if (proxy === undefined) return failed(FAILURES.proxyNotFound);
      await proxy.stop();
      this.proxies.delete(name);
      return success(undefined);
    });
  }

  /** Enables every proxy and removes every toxic; proxies stay (`POST /reset`). */
  reset(): Promise<Outcome<void>> {
    return this.serially(async () => {
      for (const proxy of this.sortedProxies()) {
        if (!proxy.enabled) {
          const started = await proxy.start();
          if (!started.ok) return started;
        }
        await proxy.toxics.removeAll();
      }
      return success(undefined);
    });
  }

  toxics(proxyName: string): Outcome<ToxicJson[]> {
    const proxy = this.proxies.get(proxyName);
    return proxy === undefined ? failed(FAILURES.proxyNotFound) : success(proxy.toxics.list());
  }

  addToxic(proxyName: string, input: ToxicInput): Promise<Outcome<ToxicJson>> {
    return this.withProxy(proxyName, (proxy) => proxy.toxics.add(input));
  }

  getToxic(proxyName: string, toxicName: string): Outcome<ToxicJson> {
    const list = this.toxics(proxyName);
    if (!list.ok) return list;
    const toxic = list.value.find((t) => t.name === toxicName);
    return toxic === undefined ? failed(FAILURES.toxicNotFound) : success(toxic);
  }

  updateToxic(proxyName: string, toxicName: string, patch: ToxicPatch): Promise<Outcome<ToxicJson>> {
    return this.withProxy(proxyName, (proxy) => proxy.toxics.update(toxicName, patch));
  }

  removeToxic(proxyName: string, toxicName: string): Promise<Outcome<void>> {
    return this.withProxy(proxyName, (proxy) => proxy.toxics.remove(toxicName));
  }

  /** Stops every proxy (the server is shutting down); the proxies stay listed. */
  stopAll(): Promise<void> {
    return this.serially(async () => {
      await Promise.all([...this.proxies.values()].map((proxy) => proxy.stop()));
    });
  }

  private async addOrReplace(input: ProxyInput): Promise<Outcome<ProxyJson>> {
    const existing = this.proxies.get(input.name);
    if (existing !== undefined) {
      const resolved = await resolveAddress(input.listen);
      if (!resolved.ok) return resolved;
      if (resolved.value === existing.listen && input.upstream === existing.upstream) return success(existing.toJson());
      await existing.stop();
    }
    return this.startAndAdd(input);
  }

  /** Builds a proxy, starts it unless it is created disabled, and registers it under its name. */
  private async startAndAdd(input: ProxyInput): Promise<Outcome<ProxyJson>> {
    const proxy = new Proxy(input.name, input.listen, input.upstream, this.random);
    if (input.enabled ?? true) {
      const started = await proxy.start();
      if (!started.ok) return started;
    }
    this.proxies.set(input.name, proxy);
    return success(proxy.toJson());
  }

  private withProxy<T>(name: string, act: (proxy: Proxy) => Promise<Outcome<T>>): Promise<Outcome<T>> {
    return this.serially(async () => {
      const proxy = this.proxies.get(name);
      return proxy === undefined ? failed(FAILURES.proxyNotFound) : act(proxy);
    });
  }

  private sortedProxies(): Proxy[] {
    return [...this.proxies.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  }

  /** Runs `act` after every change asked for before it has finished. */
  private serially<T>(act: () => Promise<T>): Promise<T> {
    const result = this.queue.then(act);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** Toxicity rolls on one stream, jitter and slicing on another, both from `seed`. */
export function toxiproxyRandom(seed: number | bigint | string): ProxyRandom {
  const root = Rng.fromSeed(`toxiproxy:${String(seed)}`);
  const rolls = root.fork("toxicity");
  const draws = root.fork("toxics");
  return {
    // Toxiproxy compares a float32 draw in [0, 1) with the float32 toxicity.
    rollToxicity: (toxicity) => rolls.nextU32() / 2 ** 32 < Math.fround(toxicity),
    randomBelow: (bound) => draws.below(bound),
  };
}
