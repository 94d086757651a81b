// slow_close: data passes; when the source ends, the destination is closed only `delay` ms later
// (Toxiproxy toxics/slow_close.go). An interrupt during the wait leaves the end for the next run.
import { attribute, DEADLINE, END, STOP, type ToxicKind } from "./io.ts";

export const slowClose: ToxicKind = {
  type: "slow_close",
  fields: ["delay"],
  async run(io, attributes) {
    const delayMs = attribute(attributes, "delay");
    for (;;) {
      const item = await io.take();
      if (item === STOP) return;
      if (item === DEADLINE) continue;
      if (item === END) {
        if (await io.sleep(delayMs)) io.close();
        return;
      }
      io.emit(item);
    }
  },
};
