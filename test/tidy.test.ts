// Tidy test (DESIGN.md rule 4): the replica core must not reach for ambient time, randomness or
// timers. Only harness/real (real processes), harness/report and the CLI may.
import test from "ava";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const ALLOWED = [/^harness\/real\//, /^harness\/report\//, /^harness\/cli\.ts$/];
export const BANNED: readonly [RegExp, string][] = [
  [/\bDate\.now\s*\(/, "Date.now() — use env.now()"],
  [/\bnew Date\s*\(\s*\)/, "new Date() — use env.now()"],
  [/\bMath\.random\s*\(/, "Math.random() — use env.rng"],
  [/\bperformance\.now\s*\(/, "performance.now() — use env.now()"],
  [/\bprocess\.hrtime\b/, "process.hrtime — use env.now()"],
  [/\bset(Timeout|Interval|Immediate)\s*\(/, "timers — use env.setTimer()"],
  [/\bqueueMicrotask\s*\(/, "queueMicrotask — the core is synchronous"],
  [/\brandom(Bytes|UUID|Int)\s*\(/, "crypto randomness — use env.rng"],
  [/\bgetRandomValues\s*\(/, "crypto randomness — use env.rng"],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

export function ambientUses(text: string): string[] {
  const hits: string[] = [];
  text.split("\n").forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "");
    for (const [pattern, why] of BANNED) if (pattern.test(code)) hits.push(`${i + 1}: ${why}`);
  });
  return hits;
}

test("the tidy scanner recognises every banned ambient source", (t) => {
  const sample = ["Date.now()", "new Date()", "Math.random()", "performance.now()", "process.hrtime.bigint()", "setTimeout(f, 1)", "setInterval(f)", "setImmediate(f)", "queueMicrotask(f)", "crypto.randomBytes(8)", "crypto.getRandomValues(a)"];
  for (const line of sample) t.true(ambientUses(line).length > 0, line);
  t.deepEqual(ambientUses("const at = env.now(); // Date.now() is banned"), []);
});

test("the replica core uses no ambient time, randomness or timers", (t) => {
  const offenders: string[] = [];
  for (const file of sourceFiles(join(ROOT, "harness"))) {
    const rel = relative(ROOT, file);
    if (ALLOWED.some((re) => re.test(rel))) continue;
    for (const hit of ambientUses(readFileSync(file, "utf8"))) offenders.push(`${rel}:${hit}`);
  }
  t.deepEqual(offenders, []);
});

// Issue 12 item 2: one replica API. The scenario runners read replicas through `ReplicaApi`
// (harness/replica/interfaces.ts) and the `MessageRouting` contract, never by downcasting to the
// execution state machine, so the same runners and HTTP server can sit on any replica.
test("item 2: scenario runners never downcast a replica's state machine", (t) => {
  const offenders: string[] = [];
  for (const file of sourceFiles(join(ROOT, "harness", "scenario"))) {
    readFileSync(file, "utf8").split("\n").forEach((line, i) => {
      if (/instanceof\s+ExecutionStateMachine\b|as\s+ExecutionStateMachine\b/.test(line.replace(/\/\/.*$/, ""))) offenders.push(`${relative(ROOT, file)}:${i + 1}`);
    });
  }
  t.deepEqual(offenders, []);
});

// Issue 12 item 2: XNet goes through the replica API and its Env; SimIC only carries the bytes, with
// no randomness of its own deciding who is asked.
test("item 2: the multi-subnet simulator draws no randomness for XNet requests", (t) => {
  const ic = readFileSync(join(ROOT, "harness", "replica", "ic.ts"), "utf8");
  t.false(/\brng\.below\(/.test(ic), "SimIC picks XNet servers itself");
  t.false(/xnetRequests\(\)/.test(ic), "SimIC drives the replicas' XNet requests itself");
});
