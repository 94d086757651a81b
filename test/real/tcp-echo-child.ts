// Child process of the transport tests (tcp-transport.test.ts, issue 12 item 4): replica argv[2]
// listening on port argv[3] with one peer, replica argv[4] at argv[5]; it sends every frame it
// receives back to its sender prefixed with "echo:", and prints its port once it listens.
import { TcpTransport } from "../../harness/real/tcp-transport.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId } from "../../harness/types.ts";

const [self, port, peer, peerAddress] = process.argv.slice(2);
if (peerAddress === undefined) throw new Error("usage: tcp-echo-child.ts SELF PORT PEER PEER_ADDRESS");
const prefix = new TextEncoder().encode("echo:");
const transport: TcpTransport = new TcpTransport({
  self: replicaId(Number(self)),
  listenPort: Number(port),
  peers: [{ id: replicaId(Number(peer)), address: peerAddress }],
  rng: Rng.fromSeed(`echo/${self}`),
  backoffMsInitial: 10,
  backoffMsMax: 80,
  onFrame: (from, bytes) => {
    const reply = new Uint8Array(prefix.length + bytes.length);
    reply.set(prefix, 0);
    reply.set(bytes, prefix.length);
    transport.send(from, reply);
  },
  log: () => undefined,
});
console.log(await transport.start());
