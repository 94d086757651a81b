// A stand-in for harness/real/node-main.ts in the cluster tests: it speaks the same IPC handshake
// (child.ts), listens on a P2P, an XNet and an HTTP port, and every 100 ms tells each peer, of its
// subnet and of the others (through the address `up` gave it: its proxy), who it is. GET /seen
// answers which peers reached it lately, and which root replicas' URLs it was given.
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { dir: { type: "string" }, subnet: { type: "string" }, node: { type: "string" } } });
const me = `${values.subnet}/r${values.node}`;
const seenAt = new Map<string, number>();

const p2p = createServer((socket) => {
  socket.on("error", () => undefined);
  socket.on("data", (data) => {
    for (const line of data.toString().split("\n")) if (line !== "") seenAt.set(line, Date.now());
  });
});
const http = createHttpServer((_req, res) => {
  const recent = [...seenAt].filter(([, at]) => Date.now() - at < 400).map(([who]) => who).sort();
  res.end(JSON.stringify({ me, seen: recent, rootUrls }));
});
const listen = (server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));

const xnet = createServer((socket) => p2p.emit("connection", socket));
const p2pPort = await listen(p2p);
const xnetPort = await listen(xnet);
const httpPort = await listen(http);
let rootUrls: readonly string[] = [];
process.send?.({ type: "listening", p2pPort, httpPort, xnetPort });
process.on("message", (m: { type: string; peers: Record<string, string>; xnetPeers: Record<string, string>; rootUrls?: string[] }) => {
  if (m.type === "root-urls" || m.type === "start") rootUrls = m.rootUrls ?? [];
  if (m.type !== "start") return;
  setInterval(() => {
    for (const address of [...Object.values(m.peers), ...Object.values(m.xnetPeers)]) {
      const [host, port] = address.split(":");
      const socket = connect(Number(port), host as string, () => socket.end(`${me}\n`));
      socket.on("error", () => undefined);
    }
  }, 100);
  process.send?.({ type: "ready" });
});
process.on("SIGTERM", () => process.exit(0));
process.on("disconnect", () => process.exit(0));
