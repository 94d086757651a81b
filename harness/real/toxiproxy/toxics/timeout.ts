// timeout: nothing passes; the stream closes `timeout` ms after this run started (the connection
// was accepted, or the chain changed), or never when timeout is 0 — a black hole (Toxiproxy
// toxics/timeout.go). Removing the toxic closes the streams it held (its cleanup hook).
import { attribute, STOP, type ToxicKind } from "./io.ts";

export const timeout: ToxicKind = {
  type: "timeout",
  fields: ["timeout"],
  closesLinkWhenRemoved: true,
  async run(io, attributes) {
    const timeoutMs = attribute(attributes, "timeout");
    const closeAtMs = timeoutMs > 0 ? io.nowMs() + timeoutMs : undefined;
    for (;;) {
      const item = await io.take(closeAtMs);
      if (item === STOP) return;
      if (typeof item === "symbol") return io.close(); // END or DEADLINE
      io.discard(item);
    }
  },
};
