// harness/memo.ts: a bounded memo of a pure function of one string must never change an outcome.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
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

// ---- issue 13 item 2: bounded memos ----------------------------------------------------------

const EXPECTED_MEMOS = [
  "bls.hashToG1",
  "bls.parsedG1",
  "canisterId",
  "canisterSortKeys",
  "compiledModules",
  "kvCheckpointEncodings",
  "p2p.internedItems",
  "requestId.keyHashes",
  "senderPrincipal",
  "sender-auth.identities",
  "sender-auth.ownSignatures",
  "sender-auth.publicKeys",
  "senderVerification",
  "validatedEnvelopesByContent",
];

/**
 * Module-level Maps and Sets that start empty and are not registered memos, with why they stay
 * small. A new one fails the scan until it is bounded (BoundedMap, registerProcessMemo), weakly
 * keyed, or listed here with its reason.
 */
const UNREGISTERED_GROWING = new Map([
  ["harness/scenario/load.ts forced", "inside the text of a module-resolution hook: one URL per scenario module loaded"],
  ["harness/state/page-map.ts pageStore", "weak references, removed by a FinalizationRegistry when the page is collected"],
  ["harness/state/manifest.ts zeroChunkHashes", "one entry per chunk size: at most the pages in a chunk"],
  ["harness/p2p/codec.ts interned", "registered as p2p.internedItems with a byte bound too"],
]);

function harnessFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? harnessFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

test("issue 13 item 2: every module-level Map or Set that grows is a bounded, registered memo (or weakly keyed, or listed with its reason)", (t) => {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const found: string[] = [];
  for (const file of harnessFiles(join(root, "harness"))) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^(?:export )?(?:const|let) ([A-Za-z_$][\w$]*)(?::[^=]+)? = new (?:Map|Set)\b(?:<[^(]*>)?\(\)/.exec(line);
      if (m !== null) found.push(`${relative(root, file)} ${m[1]}`);
    }
  }
  t.deepEqual(found.sort(), [...UNREGISTERED_GROWING.keys()].sort());
});

test("issue 13 item 2: many runs in one process keep every memo within its capacity, and shrinking the capacities changes no digest", async (t) => {
  const { defineScenario } = await import("../../harness/scenario/scenario.ts");
  const { runScenario } = await import("../../harness/scenario/runner.ts");
  const { processMemos } = await import("../../harness/memo.ts");
  // Loading the harness registers its memos (the BLS backend is loaded on demand elsewhere).
  await import("../../harness/crypto/bls-backend.ts");
  const memos = processMemos();
  t.deepEqual([...new Set(memos.map((m) => m.name))].filter((name) => EXPECTED_MEMOS.includes(name)).sort(), [...EXPECTED_MEMOS].sort());
  const scenarios = [
    defineScenario({ name: "memo-kv", description: "key-value subnet", n: 4, durationS: 3, workload: { ratePerSec: 200, stopS: 2 }, consensus: { dkgIntervalLength: 4 }, livenessBoundS: 2 }),
    defineScenario({
      name: "memo-canister",
      description: "execution subnet, signed envelopes",
      n: 4,
      durationS: 3,
      canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }],
      workload: { ratePerSec: 40, startS: 1, stopS: 2, call: { canister: "kv", method: "insert" }, senders: "mixed", keySpace: 1000 },
      consensus: { dkgIntervalLength: 9 },
      livenessBoundS: 2,
    }),
  ];
  const digests = (): string[] => scenarios.map((s) => runScenario(s, { seed: 1 }).traceDigest);
  const normal = digests();
  const used = memos.filter((m) => m.size > 0).map((m) => m.name);
  for (const name of ["canisterId", "compiledModules", "senderPrincipal", "senderVerification", "kvCheckpointEncodings"]) t.true(used.includes(name), `the runs use ${name}`);
  const capacities = memos.map((m) => m.capacity);
  try {
    for (const m of memos) m.capacity = 2;
    t.deepEqual(digests(), normal, "memos hold pure results: evicting them changes nothing");
    for (const m of memos) t.true(m.size <= m.capacity, `${m.name}: ${m.size} entries over its capacity ${m.capacity}`);
  } finally {
    memos.forEach((m, i) => (m.capacity = capacities[i] as number));
  }
  for (const m of memos) t.true(m.size <= m.capacity, `${m.name}: ${m.size} entries over its capacity ${m.capacity}`);
});
