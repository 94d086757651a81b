// `subnetlab toxiproxy`: serve the Toxiproxy-compatible API until SIGINT or SIGTERM.
import { readFileSync } from "node:fs";
import { EXIT } from "../../report/exit-codes.ts";
import { decodeProxyList, parseBody } from "./json-input.ts";
import { ToxiproxyServer, ToxiproxyStartError, TOXIPROXY_DEFAULT_PORT } from "./server.ts";
import { TOXIPROXY_API_VERSION, type ProxyInput } from "./types.ts";
import { untilStopSignal } from "../signals.ts";

export interface ToxiproxyCommand {
  readonly port?: string | undefined;
  readonly host?: string | undefined;
  /** A JSON file holding an array of proxies, as the body of `POST /populate`. */
  readonly config?: string | undefined;
  readonly seed: number;
}

class CommandError extends Error {}

function parsePort(text: string | undefined): number {
  if (text === undefined) return TOXIPROXY_DEFAULT_PORT;
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new CommandError(`--port takes a TCP port from 0 to 65535 (0 picks a free one), got ${JSON.stringify(text)}`);
  return Number(text);
}

function readConfig(path: string): ProxyInput[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CommandError(`--config ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const parsed = parseBody(text);
  const proxies = parsed.ok ? decodeProxyList(parsed.value) : parsed;
  if (!proxies.ok) throw new CommandError(`--config ${path}: expected a JSON array of proxies ({name, listen, upstream, enabled?}): ${proxies.failure.message}`);
  return proxies.value;
}

/** Runs the server; answers the exit code. Bad options and listen failures are one line, exit 2. */
export async function serveToxiproxy(command: ToxiproxyCommand): Promise<number> {
  let server: ToxiproxyServer;
  let proxies: ProxyInput[] = [];
  try {
    const port = parsePort(command.port);
    if (command.config !== undefined) proxies = readConfig(command.config);
    server = await ToxiproxyServer.start({ host: command.host ?? "127.0.0.1", port, seed: command.seed, proxies });
  } catch (error) {
    if (!(error instanceof CommandError || error instanceof ToxiproxyStartError)) throw error;
    process.stderr.write(`subnetlab: toxiproxy: ${error.message}\n`);
    return EXIT.usage;
  }
  const from = command.config === undefined ? "" : `, ${proxies.length} proxies from ${command.config}`;
  process.stdout.write(`toxiproxy: serving the Toxiproxy ${TOXIPROXY_API_VERSION} API on ${server.url} (seed ${command.seed}${from}); SIGINT or SIGTERM stops it\n`);
  const signal = await untilStopSignal();
  await server.stop();
  process.stdout.write(`toxiproxy: stopped (${signal})\n`);
  return EXIT.pass;
}
