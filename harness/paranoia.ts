// Paranoid mode (issue 11, item 3): extra checks for test runs that make sharing between replicas
// safe to rely on. Caches and shared artifacts are what lets a mistake in one replica's execution
// hide in another's result, so in paranoid mode
//  - shared plain objects (genesis states, compiled-module descriptions) are deep-frozen: code
//    that mutates them throws at once instead of changing what other replicas see;
//  - the module cache instruments every new module twice and requires identical bytes, so
//    nondeterministic instrumentation cannot hide behind the one cached copy;
//  - signatures the lab's own users made are verified anyway (sender-auth.ts, Note [own signatures]).
// It only adds checks: no result depends on it. `npm test` turns it on (package.json, ava
// environmentVariables); SUBNETLAB_PARANOID=1 turns it on anywhere — a fuzz campaign's workers
// inherit it (`SUBNETLAB_PARANOID=1 npx subnetlab fuzz …`), at a cost in runs per second, which is
// why the gate's default leaves it off.

export const paranoid: boolean = process.env["SUBNETLAB_PARANOID"] === "1";

/** Deep-freezes plain objects and arrays (not class instances, typed arrays or maps) in paranoid mode. */
export function freezeShared<T>(value: T): T {
  if (paranoid) deepFreezePlain(value, new WeakSet());
  return value;
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === Array.prototype || proto === null;
}

function deepFreezePlain(v: unknown, seen: WeakSet<object>): void {
  if (v === null || typeof v !== "object" || seen.has(v) || !isPlain(v)) return;
  seen.add(v);
  for (const child of Object.values(v)) deepFreezePlain(child, seen);
  Object.freeze(v);
}
