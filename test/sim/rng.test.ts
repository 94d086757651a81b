import test from "ava";
import fc from "fast-check";
import { Rng, ratio } from "../../harness/sim/rng.ts";

test("same seed gives the same stream; named forks are independent of draws on the parent", (t) => {
  const a = Rng.fromSeed(42);
  const b = Rng.fromSeed(42);
  t.deepEqual([a.nextU32(), a.nextU32()], [b.nextU32(), b.nextU32()]);
  const before = Rng.fromSeed(7).fork("net").nextU32();
  const parent = Rng.fromSeed(7);
  parent.nextU32();
  parent.nextU32();
  t.is(parent.fork("net").nextU32(), before, "a fork does not depend on how much the parent drew");
  t.not(Rng.fromSeed(7).fork("net").nextU32(), Rng.fromSeed(7).fork("r0").nextU32());
  t.not(Rng.fromSeed(1).nextU32(), Rng.fromSeed(2).nextU32());
});

test("below(bound) stays in range and shuffle is a permutation", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 1000 }), (seed, bound) => {
      const rng = Rng.fromSeed(seed);
      for (let i = 0; i < 50; i++) {
        const x = rng.below(bound);
        if (!(x >= 0 && x < bound && Number.isInteger(x))) return false;
      }
      const items = Array.from({ length: bound % 50 }, (_, i) => i);
      return JSON.stringify([...rng.shuffle(items)].sort((p, q) => p - q)) === JSON.stringify(items);
    }),
  );
  t.pass();
});

test("chance(num/den) matches its ratio within statistical tolerance", (t) => {
  const rng = Rng.fromSeed(3);
  let hits = 0;
  for (let i = 0; i < 100_000; i++) if (rng.chance(ratio(1, 4))) hits++;
  // 100k Bernoulli(0.25): sd ≈ 137, so ±1000 is > 7 sd.
  t.true(Math.abs(hits - 25_000) < 1000, `hits ${hits}`);
  t.false(Rng.fromSeed(1).chance(ratio(0, 5)));
  t.true(Rng.fromSeed(1).chance(ratio(5, 5)));
  t.throws(() => ratio(3, 2));
});
