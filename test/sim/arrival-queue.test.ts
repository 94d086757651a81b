import test from "ava";
import fc from "fast-check";
import { ArrivalQueue } from "../../harness/sim/arrival-queue.ts";
import { timeUs } from "../../harness/types.ts";

test("issue 13 item 3: an arrival queue hands out exactly what came before (time, sequence), in that order", (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 120 }), fc.integer({ min: 0, max: 45 }), fc.nat(200), (times, cutAt, cutSeq) => {
      const queue = new ArrivalQueue<number>();
      times.forEach((at, seq) => queue.push(timeUs(at), seq, seq));
      const taken = queue.takeBefore(timeUs(cutAt), cutSeq).map((a) => a.item);
      const before = (at: number, seq: number): boolean => at < cutAt || (at === cutAt && seq < cutSeq);
      const expected = times.map((at, seq) => ({ at, seq })).filter((a) => before(a.at, a.seq)).sort((a, b) => a.at - b.at || a.seq - b.seq).map((a) => a.seq);
      t.deepEqual(taken, expected);
      t.is(queue.size, times.length - expected.length);
      const rest = queue.takeBefore(timeUs(1000), 0).map((a) => a.item);
      t.true(rest.every((seq) => !before(times[seq] as number, seq)));
    }),
    { numRuns: 200 },
  );
});
