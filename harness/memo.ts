// Bounded memoisation of pure functions of one string. The simulated replicas of a subnet share a
// process, so the same pure conversion (a sender's principal, a canister id's canonical text)
// would otherwise run once per replica per message. A hit returns exactly what `fn` returned for
// the same input, so no outcome depends on the memo; the oldest entry goes first when full.
import { assert } from "./assert.ts";

export function memoizeBounded<R>(fn: (input: string) => R, capacity: number): (input: string) => R {
  assert(Number.isSafeInteger(capacity) && capacity >= 1, `memo capacity must be a positive integer, got ${capacity}`);
  const results = new Map<string, R>();
  return (input) => {
    const remembered = results.get(input);
    if (remembered !== undefined) return remembered;
    const result = fn(input); // throws before anything is remembered
    if (results.size >= capacity) results.delete(results.keys().next().value as string);
    results.set(input, result);
    return result;
  };
}
