// Toxiproxy's HTTP API (api.go) as a thin adapter over ProxyRegistry: routes, status codes and
// bodies as Toxiproxy sends them. Errors are `{"error": msg, "status": code}` plus a newline, sent
// the way Go's http.Error sends them (text/plain); a browser's User-Agent gets 403.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import {
  decodeProxyInput, decodeProxyList, decodeProxyPatch, decodeToxicInput, decodeToxicPatch, parseBody,
} from "./json-input.ts";
import type { ProxyRegistry } from "./registry.ts";
import { badRequestBody, internalFailure, type ApiFailure, type Outcome, type ProxyJson } from "./types.ts";

type Reply =
  | { readonly kind: "json"; readonly status: number; readonly body: unknown }
  | { readonly kind: "text"; readonly status: number; readonly contentType: string; readonly body: string }
  | { readonly kind: "empty"; readonly status: number }
  | { readonly kind: "error"; readonly failure: ApiFailure };

type Method = "GET" | "POST" | "PATCH" | "DELETE";

interface RequestContext {
  readonly registry: ProxyRegistry;
  readonly params: Readonly<Record<string, string>>;
  /** The request body parsed as JSON (or the decoding failure). */
  json(): Promise<Outcome<unknown>>;
}

type Handler = (context: RequestContext) => Promise<Reply> | Reply;

interface Route {
  /** Path segments; ":name" matches one non-empty segment. */
  readonly pattern: readonly string[];
  readonly handlers: Partial<Record<Method, Handler>>;
}

const BODY_BYTES_MAX = 16 * 1024 * 1024;

const json = (body: unknown, status = 200): Reply => ({ kind: "json", status, body });
const empty = (status = 204): Reply => ({ kind: "empty", status });
const error = (failure: ApiFailure): Reply => ({ kind: "error", failure });

function reply<T>(outcome: Outcome<T>, toReply: (value: T) => Reply): Reply {
  return outcome.ok ? toReply(outcome.value) : error(outcome.failure);
}

/** Parses the body and decodes it; any failure becomes the reply. */
async function withBody<T>(context: RequestContext, decode: (value: unknown) => Outcome<T>, act: (input: T) => Promise<Reply>): Promise<Reply> {
  const parsed = await context.json();
  if (!parsed.ok) return error(parsed.failure);
  const decoded = decode(parsed.value);
  return decoded.ok ? act(decoded.value) : error(decoded.failure);
}

const param = (context: RequestContext, name: string): string => context.params[name] ?? "";

const updateProxy: Handler = (c) => withBody(c, decodeProxyPatch, async (patch) => reply(await c.registry.update(param(c, "proxy"), patch), (p) => json(p)));
const updateToxic: Handler = (c) =>
  withBody(c, decodeToxicPatch, async (patch) => reply(await c.registry.updateToxic(param(c, "proxy"), param(c, "toxic"), patch), (t) => json(t)));

const ROUTES: readonly Route[] = [
  // Written by hand in Go too: a space after the colon and a newline.
  { pattern: ["version"], handlers: { GET: (c) => ({ kind: "text", status: 200, contentType: "application/json;charset=utf-8", body: `{"version": "${c.registry.version()}"}\n` }) } },
  { pattern: ["reset"], handlers: { POST: async (c) => reply(await c.registry.reset(), () => empty()) } },
  {
    pattern: ["proxies"],
    handlers: {
      // Written by hand: a JS object would put integer-like names first, Go sorts names bytewise.
      GET: (c) => ({ kind: "text", status: 200, contentType: "application/json", body: `{${c.registry.list().map((p) => `${JSON.stringify(p.name)}:${JSON.stringify(p)}`).join(",")}}` }),
      POST: (c) => withBody(c, decodeProxyInput, async (input) => reply(await c.registry.create(input), (p) => json(p, 201))),
    },
  },
  {
    pattern: ["populate"],
    handlers: {
      POST: async (c) => {
        const parsed = await c.json();
        const inputs = parsed.ok ? decodeProxyList(parsed.value) : parsed;
        if (!inputs.ok) return populateReply([], inputs.failure);
        const result = await c.registry.populate(inputs.value);
        return populateReply(result.proxies, result.failure);
      },
    },
  },
  {
    pattern: ["proxies", ":proxy"],
    handlers: {
      GET: (c) => reply(c.registry.get(param(c, "proxy")), (p) => json(p)),
      POST: updateProxy,
      PATCH: updateProxy,
      DELETE: async (c) => reply(await c.registry.remove(param(c, "proxy")), () => empty()),
    },
  },
  {
    pattern: ["proxies", ":proxy", "toxics"],
    handlers: {
      GET: (c) => reply(c.registry.toxics(param(c, "proxy")), (list) => json(list)),
      // 200, not 201: Toxiproxy answers a created toxic with 200.
      POST: (c) => withBody(c, decodeToxicInput, async (input) => reply(await c.registry.addToxic(param(c, "proxy"), input), (t) => json(t))),
    },
  },
  {
    pattern: ["proxies", ":proxy", "toxics", ":toxic"],
    handlers: {
      GET: (c) => reply(c.registry.getToxic(param(c, "proxy"), param(c, "toxic")), (t) => json(t)),
      POST: updateToxic,
      PATCH: updateToxic,
      DELETE: async (c) => reply(await c.registry.removeToxic(param(c, "proxy"), param(c, "toxic")), () => empty()),
    },
  },
];

/**
 * 201 with the proxies; a failure is reported beside the proxies made before it, with its status
 * (Go marshals none made as a nil slice: null).
 */
function populateReply(proxies: readonly ProxyJson[], failure: ApiFailure | undefined): Reply {
  if (failure === undefined) return json({ proxies }, 201);
  return json({ error: failure.message, status: failure.status, proxies: proxies.length === 0 ? null : proxies }, failure.status);
}

function match(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of pattern.entries()) {
    const segment = segments[i] as string;
    if (part.startsWith(":")) {
      if (segment === "") return undefined;
      params[part.slice(1)] = segment;
    } else if (part !== segment) {
      return undefined;
    }
  }
  return params;
}

function pathSegments(url: string | undefined): string[] | undefined {
  try {
    const path = new URL(url ?? "/", "http://toxiproxy").pathname;
    return path.split("/").slice(1).map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

function readBody(request: IncomingMessage): Promise<Outcome<string>> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let bytes = 0;
    request.on("data", (part: Buffer) => {
      bytes += part.length;
      if (bytes <= BODY_BYTES_MAX) parts.push(part);
    });
    request.on("end", () => resolve(bytes > BODY_BYTES_MAX ? { ok: false, failure: badRequestBody(`longer than ${BODY_BYTES_MAX} bytes`) } : { ok: true, value: Buffer.concat(parts).toString("utf8") }));
    request.on("error", (e) => resolve({ ok: false, failure: badRequestBody(e.message) }));
  });
}

/** Defaults to what Go's http.Error sends. */
function sendText(response: ServerResponse, status: number, text: string, contentType = "text/plain; charset=utf-8", noSniff = true): void {
  response.writeHead(status, noSniff ? { "Content-Type": contentType, "X-Content-Type-Options": "nosniff" } : { "Content-Type": contentType });
  response.end(text);
}

function send(response: ServerResponse, result: Reply): void {
  switch (result.kind) {
    case "json":
      response.writeHead(result.status, { "Content-Type": "application/json" });
      return void response.end(JSON.stringify(result.body));
    case "text":
      return sendText(response, result.status, result.body, result.contentType, false);
    case "empty":
      response.writeHead(result.status);
      return void response.end();
    case "error":
      return sendText(response, result.failure.status, `${JSON.stringify({ error: result.failure.message, status: result.failure.status })}\n`);
  }
}

async function handle(registry: ProxyRegistry, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const segments = pathSegments(request.url);
  const found = segments === undefined ? undefined : ROUTES.map((route) => ({ route, params: match(route.pattern, segments) })).find((m) => m.params !== undefined);
  if (found === undefined || found.params === undefined) return sendText(response, 404, "404 page not found\n");
  const handler = found.route.handlers[(request.method ?? "GET") as Method];
  if (handler === undefined) {
    response.writeHead(405);
    return void response.end();
  }
  if ((request.headers["user-agent"] ?? "").startsWith("Mozilla/")) return sendText(response, 403, "User agent not allowed\n");
  let body: Promise<Outcome<string>> | undefined;
  const context: RequestContext = {
    registry,
    params: found.params,
    json: async () => {
      body ??= readBody(request);
      const text = await body;
      return text.ok ? parseBody(text.value) : text;
    },
  };
  send(response, await handler(context));
}

/** The request listener for node:http; a failure inside is a bug, answered with 500 and logged. */
export function toxiproxyApi(registry: ProxyRegistry): RequestListener {
  return (request, response) => {
    handle(registry, request, response).catch((e: unknown) => {
      process.stderr.write(`toxiproxy: internal error on ${request.method} ${request.url}: ${(e as Error).stack ?? String(e)}\n`);
      if (!response.headersSent) send(response, error(internalFailure(String((e as Error).message ?? e))));
      else response.destroy();
    });
  };
}
