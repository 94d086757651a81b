// bandwidth: at most `rate` KB/s (1 KB = 1000 bytes) per connection and direction (Toxiproxy
// toxics/bandwidth.go). Each chunk adds len/rate ms to a sleep budget; the error of every timer
// is carried into the next sleep, so the long-run rate holds although timers are coarse. Chunks
// larger than 100 ms worth of bytes go out in 100 ms slices. rate ≤ 0 is unlimited (Toxiproxy's
// intent; its Go loop would stall on 0 and panic below it).
import { attribute, DEADLINE, END, STOP, type Chunk, type ToxicKind } from "./io.ts";

const SLICE_MS = 100;

export const bandwidth: ToxicKind = {
  type: "bandwidth",
  fields: ["rate"],
  async run(io, attributes) {
    const rateKBps = attribute(attributes, "rate");
    const sliceBytes = rateKBps * SLICE_MS;
    let sleepMs = 0;
    for (;;) {
      const item = await io.take();
      if (item === STOP) return;
      if (item === END) return io.close();
      if (item === DEADLINE) continue;
      if (rateKBps <= 0) {
        io.emit(item);
        continue;
      }
      sleepMs += item.data.length / rateKBps;
      let rest: Chunk = item;
      while (rest.data.length > sliceBytes) {
        if (!(await io.sleep(SLICE_MS))) return io.emit(rest);
        io.emit({ data: rest.data.subarray(0, sliceBytes), readAtMs: rest.readAtMs });
        rest = { data: rest.data.subarray(sliceBytes), readAtMs: rest.readAtMs };
        sleepMs -= SLICE_MS;
      }
      const sleptFromMs = io.nowMs();
      if (!(await io.sleep(sleepMs))) return io.emit(rest);
      sleepMs -= io.nowMs() - sleptFromMs;
      io.emit(rest);
    }
  },
};
