// reset_peer: on the first chunk (or end) after the run starts, drop it, wait `timeout` ms, then
// close (Toxiproxy toxics/reset_peer.go). The close is a TCP RST for connections accepted while
// the toxic existed (Toxiproxy sets SO_LINGER 0 on them); older connections see a normal close.
// Like Toxiproxy, the wait is not cut short by a chain change.
import { attribute, DEADLINE, STOP, type ToxicKind } from "./io.ts";

export const resetPeer: ToxicKind = {
  type: "reset_peer",
  fields: ["timeout"],
  abortiveClose: true,
  async run(io, attributes) {
    const timeoutMs = attribute(attributes, "timeout");
    let item = await io.take();
    while (item === DEADLINE) item = await io.take();
    if (item === STOP) return;
    if (typeof item !== "symbol") io.discard(item);
    await io.sleepThrough(timeoutMs);
    io.close();
  },
};
