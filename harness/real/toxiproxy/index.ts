// A Toxiproxy-compatible fault proxy (issue 12 item 8): embed it with ToxiproxyServer.start, drive
// it over HTTP with toxiproxy-node-client, or make the same changes in process via `registry`.
export { ToxiproxyServer, ToxiproxyStartError, TOXIPROXY_DEFAULT_PORT, type ToxiproxyServerOptions } from "./server.ts";
export { ProxyRegistry, type PopulateResult } from "./registry.ts";
export { serveToxiproxy, type ToxiproxyCommand } from "./command.ts";
export {
  TOXIPROXY_API_VERSION, TOXIC_TYPES,
  type ApiFailure, type Direction, type Outcome, type ProxyInput, type ProxyJson, type ProxyPatch,
  type ToxicInput, type ToxicJson, type ToxicPatch, type ToxicType,
} from "./types.ts";
