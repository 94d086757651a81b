// limit_data: forwards at most `bytes` bytes per connection and direction, truncating the chunk
// that crosses the limit, then closes (Toxiproxy toxics/limit_data.go). The count lives in the
// stage's state, so editing the chain does not reset it.
import { attribute, DEADLINE, END, STOP, type ToxicKind } from "./io.ts";

export const limitData: ToxicKind = {
  type: "limit_data",
  fields: ["bytes"],
  async run(io, attributes, state) {
    const limitBytes = attribute(attributes, "bytes");
    for (;;) {
      const item = await io.take();
      if (item === STOP) return;
      if (item === END) return io.close();
      if (item === DEADLINE) continue;
      const allowedBytes = Math.max(0, limitBytes - state.bytesSent);
      if (allowedBytes < item.data.length) {
        io.discard({ data: item.data.subarray(allowedBytes), readAtMs: item.readAtMs });
      }
      const sent = allowedBytes < item.data.length ? { data: item.data.subarray(0, allowedBytes), readAtMs: item.readAtMs } : item;
      if (sent.data.length > 0) {
        io.emit(sent);
        state.bytesSent += sent.data.length;
      }
      if (limitBytes - state.bytesSent <= 0) return io.close();
    }
  },
};
