// latency: each chunk leaves `latency ± jitter` ms after it was read (Toxiproxy toxics/latency.go).
// Chunks keep their order, and each one's wait counts from its own read time, so a stream is
// delayed rather than throttled. A negative delay (jitter larger than latency) is no delay.
import { attribute, DEADLINE, END, STOP, type StageIo, type ToxicKind } from "./io.ts";

/** Jitter beyond this (about 24 days) is clamped so the uniform draw stays within 32 bits. */
const JITTER_MS_MAX = 2 ** 31 - 1;

export const latency: ToxicKind = {
  type: "latency",
  fields: ["latency", "jitter"],
  async run(io, attributes) {
    const latencyMs = attribute(attributes, "latency");
    const jitterMs = Math.min(attribute(attributes, "jitter"), JITTER_MS_MAX);
    for (;;) {
      const item = await io.take();
      if (item === STOP) return;
      if (item === END) return io.close();
      if (item === DEADLINE) continue;
      const waitMs = drawDelayMs(io, latencyMs, jitterMs) - (io.nowMs() - item.readAtMs);
      if (waitMs > 0 && !(await io.sleep(waitMs))) {
        io.emit(item); // interrupted: hand the chunk on undelayed rather than lose it
        return;
      }
      // The chunk's clock moves on by the planned wait, so a second latency toxic adds to this one.
      item.readAtMs += waitMs;
      io.emit(item);
    }
  },
};

/** latency + U[-jitter, +jitter) ms, as Toxiproxy draws it (integer milliseconds). */
function drawDelayMs(io: StageIo, latencyMs: number, jitterMs: number): number {
  return jitterMs > 0 ? latencyMs + io.randomBelow(2 * jitterMs) - jitterMs : latencyMs;
}
