// The IC HTTP interface of one real-mode replica: node's HTTP server around the bytes-in/bytes-out
// handler of harness/http (the same handler the simulator mounts as an in-process fetch).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpHandler } from "../http/interfaces.ts";
import { HTTP_MAX_REQUEST_BODY_BYTES } from "../ingress/envelope.ts";

export interface RunningHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A body over the IC's limit is refused as the IC's boundary does (413), without reading it all. */
class BodyTooLarge extends Error {}

function readBody(request: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > HTTP_MAX_REQUEST_BODY_BYTES) {
        reject(new BodyTooLarge());
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks))));
    request.on("error", reject);
  });
}

export function startHttpServer(handler: HttpHandler, host = "127.0.0.1", port = 0): Promise<RunningHttpServer> {
  const server: Server = createServer((request, response) => {
    response.on("error", () => undefined);
    readBody(request)
      .then(async (body) => {
        const path = (request.url ?? "/").split("?")[0] ?? "/";
        const answer = await handler({ method: request.method ?? "GET", path, body });
        response.writeHead(answer.status, answer.headers);
        response.end(answer.body);
      })
      .catch((error: unknown) => {
        if (response.headersSent) return void response.destroy();
        const tooLarge = error instanceof BodyTooLarge;
        response.writeHead(tooLarge ? 413 : 500, { "content-type": "text/plain" });
        response.end(tooLarge ? `request body larger than ${HTTP_MAX_REQUEST_BODY_BYTES} bytes` : `internal error: ${error instanceof Error ? error.message : String(error)}`);
      });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
