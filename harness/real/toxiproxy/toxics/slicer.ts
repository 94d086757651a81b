// slicer: cuts every chunk into pieces of about `average_size` bytes (± `size_variation`) and
// pauses `delay` MICROseconds after each piece (Toxiproxy toxics/slicer.go). Pieces come from
// halving a range at a randomly shifted midpoint until a range is within the variation of the
// average size, so small and large pieces are spread evenly. Where Toxiproxy's recursion would not
// end or would cut outside the chunk (average 0, variation ≥ half a range) the cut is kept
// inside the range and a single byte is never cut.
import { attribute, DEADLINE, END, STOP, type StageIo, type ToxicKind } from "./io.ts";

export const slicer: ToxicKind = {
  type: "slicer",
  fields: ["average_size", "size_variation", "delay"],
  async run(io, attributes) {
    const averageBytes = attribute(attributes, "average_size");
    const variationBytes = attribute(attributes, "size_variation");
    const delayMs = attribute(attributes, "delay") / 1000;
    for (;;) {
      const item = await io.take();
      if (item === STOP) return;
      if (item === END) return io.close();
      if (item === DEADLINE) continue;
      let from = 0;
      for (const to of pieceEnds(io, item.data.length, averageBytes, variationBytes)) {
        io.emit({ data: item.data.subarray(from, to), readAtMs: item.readAtMs });
        from = to;
        if (delayMs > 0 && !(await io.sleep(delayMs))) {
          if (from < item.data.length) io.emit({ data: item.data.subarray(from), readAtMs: item.readAtMs });
          return;
        }
      }
    }
  },
};

/** The end offset of every piece of a chunk of `length` bytes, in order. */
export function pieceEnds(io: Pick<StageIo, "randomBelow">, length: number, averageBytes: number, variationBytes: number): number[] {
  const ends: number[] = [];
  // Depth-first, left range first, with an explicit stack: skewed cuts cannot overflow the call stack.
  const pending: [number, number][] = [[0, length]];
  for (let range = pending.pop(); range !== undefined; range = pending.pop()) {
    const [start, end] = range;
    if (end - start - averageBytes <= variationBytes || end - start <= 1) {
      if (end > start) ends.push(end);
      continue;
    }
    let middle = start + Math.floor((end - start) / 2);
    if (variationBytes > 0) middle += io.randomBelow(2 * variationBytes) - variationBytes;
    middle = Math.min(end - 1, Math.max(start + 1, middle));
    pending.push([middle, end], [start, middle]);
  }
  return ends;
}
