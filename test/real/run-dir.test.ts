// Issue 12 items 3 and 5: the real-mode run directory — per-node secret files created at genesis,
// each process loading only its own, and clear refusals for a directory that is not right.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRunDir, loadNodeKeys, readSpec, REAL_CONSENSUS_CONFIG, RunDirError, secretKeysPath, replicasOf } from "../../harness/real/run-dir.ts";
import { replicaId } from "../../harness/types.ts";

function freshDir(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "subnetlab-rundir-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("item 3: genesis writes one secret file per node, readable by its owner only, and each node loads its own keys", (t) => {
  const dir = freshDir(t);
  createRunDir(dir, { subnets: [{ name: "app", n: 4 }], consensus: REAL_CONSENSUS_CONFIG });
  t.deepEqual(readSpec(dir).subnets, [{ name: "app", n: 4 }]);
  t.is(replicasOf(readSpec(dir)).length, 4);
  const message = "certification|1|ab";
  const signed = [0, 1, 2, 3].map((i) => {
    t.is(statSync(secretKeysPath(dir, "app", replicaId(i))).mode & 0o777, 0o600, `r${i}'s secret file mode`);
    const keys = loadNodeKeys(dir, "app", replicaId(i));
    return [replicaId(i), keys.signer.signThresholdShare("high", message)] as const;
  });
  const { verifier } = loadNodeKeys(dir, "app", replicaId(0)).verifierKeys;
  t.truthy(verifier.combineThreshold("high", message, new Map(signed)), "shares from four separately loaded nodes combine");
});

test("item 5: a run directory is created once and refused with a reason when wrong", (t) => {
  const dir = freshDir(t);
  createRunDir(dir, { subnets: [{ name: "app", n: 4 }, { name: "two", n: 1 }], consensus: REAL_CONSENSUS_CONFIG });
  t.throws(() => createRunDir(dir, { subnets: [{ name: "app", n: 4 }], consensus: REAL_CONSENSUS_CONFIG }), { instanceOf: RunDirError, message: /already holds a cluster/ });
  // Node 1's file put where node 2's belongs: refused, not silently signing as the wrong node.
  writeFileSync(secretKeysPath(dir, "app", replicaId(2)), readFileSync(secretKeysPath(dir, "app", replicaId(1))));
  t.throws(() => loadNodeKeys(dir, "app", replicaId(2)), { instanceOf: RunDirError, message: /holds node 1's keys, not node 2's/ });
  // Another subnet's public keys: the node's secrets do not match them.
  writeFileSync(join(dir, "keys", "app", "public.json"), readFileSync(join(dir, "keys", "two", "public.json")));
  t.throws(() => loadNodeKeys(dir, "app", replicaId(0)), { instanceOf: RunDirError, message: /subnet has 1 nodes|does not match/ });
  t.throws(() => readSpec(join(dir, "nowhere")), { instanceOf: RunDirError, message: /holds no cluster/ });
  const bad = freshDir(t);
  t.throws(() => createRunDir(bad, { subnets: [{ name: "App!", n: 4 }], consensus: REAL_CONSENSUS_CONFIG }), { instanceOf: RunDirError, message: /lower-case letters/ });
  t.throws(() => createRunDir(bad, { subnets: [{ name: "a", n: 0 }], consensus: REAL_CONSENSUS_CONFIG }), { instanceOf: RunDirError, message: /has 0 nodes/ });
});
