// harness/memo.ts: a bounded memo of a pure function of one string must never change an outcome.
import test from "ava";
import { memoizeBounded } from "../../harness/memo.ts";

test("memoizeBounded: a hit returns the first result, errors are not remembered, the oldest entry goes first", (t) => {
  let calls = 0;
  const upper = memoizeBounded((s) => {
    calls++;
    if (s === "bad") throw new Error("bad input");
    return { value: s.toUpperCase() };
  }, 2);
  const first = upper("a");
  t.is(upper("a"), first, "a hit hands back the same result object");
  t.is(calls, 1);
  t.throws(() => upper("bad"), { message: "bad input" });
  t.throws(() => upper("bad"), { message: "bad input" });
  t.is(calls, 3, "a throwing input is computed again each time");
  upper("b");
  upper("c"); // capacity 2: "a" is forgotten
  t.is(calls, 5);
  t.not(upper("a"), first, "recomputed after eviction");
  t.deepEqual(upper("a"), first, "with an equal result");
  t.throws(() => memoizeBounded((s) => s, 0), { message: /positive integer/ });
});
