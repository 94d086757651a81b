// Assertions stay on in every build: a failed one is a bug in subnetlab, never an expected outcome
// of a scenario (those are typed results). The harness turns an assertion failure inside a replica
// into a `harness-error` verdict.

export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, context: string): never {
  throw new AssertionError(`unreachable: ${context}: ${JSON.stringify(value)}`);
}

export function defined<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new AssertionError(`expected ${what} to be defined`);
  return value;
}
