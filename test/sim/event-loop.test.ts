import test from "ava";
import fc from "fast-check";
import { EventLoop } from "../../harness/sim/event-loop.ts";
import { timeUs } from "../../harness/types.ts";

test("events run in (time, sequence) order whatever order they were scheduled in", (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
      const loop = new EventLoop();
      const ran: [number, number][] = [];
      times.forEach((at, seq) => loop.schedule(timeUs(at), () => ran.push([loop.now(), seq])));
      loop.runUntil(timeUs(100));
      const expected = times.map((at, seq) => [at, seq] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      return JSON.stringify(ran) === JSON.stringify(expected);
    }),
  );
  t.pass();
});

test("cancelled events do not run; the clock ends at the horizon; past times run now", (t) => {
  const loop = new EventLoop();
  const ran: string[] = [];
  const h = loop.schedule(timeUs(10), () => ran.push("cancelled"));
  loop.schedule(timeUs(20), () => {
    ran.push("b");
    loop.schedule(timeUs(5), () => ran.push(`past@${loop.now()}`));
  });
  loop.cancel(h);
  loop.runUntil(timeUs(30));
  t.deepEqual(ran, ["b", "past@20"]);
  t.is(loop.now(), timeUs(30));
  t.is(loop.pending(), 0);
});
