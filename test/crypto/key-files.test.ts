// Issue 12 item 3: per-node keys. A real-mode replica process holds only its own secrets (one
// file per node) plus the subnet's public keys; everything it signs must verify and combine under
// a verifier built from the public file alone, exactly as in the one-process simulation backend.
import test from "ava";
import { blsSigner, blsSubnetKeys, blsVerifier, dealBlsKeys } from "../../harness/crypto/bls-backend.ts";
import { decodeNodeSecrets, decodePublicKeys, encodeNodeSecrets, encodePublicKeys, secretsMatch } from "../../harness/crypto/key-files.ts";
import type { Signature } from "../../harness/crypto/interfaces.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId, type ReplicaId } from "../../harness/types.ts";

const dealing = dealBlsKeys(4, Rng.fromSeed("key-files"));
const publicText = encodePublicKeys(dealing.publicKeys);
const secretTexts = dealing.secrets.map(encodeNodeSecrets);

function loadNode(i: number) {
  const pub = decodePublicKeys(publicText);
  const own = decodeNodeSecrets(secretTexts[i] as string);
  if (!pub.ok || !own.ok) throw new Error("a freshly written key file did not decode");
  return { publicKeys: pub.value, signer: blsSigner(own.value), secrets: own.value };
}

test("item 3: nodes loaded from their own key files sign what a public-keys-only verifier accepts", (t) => {
  const nodes = [0, 1, 2, 3].map(loadNode);
  const { verifier } = blsVerifier((nodes[0] as ReturnType<typeof loadNode>).publicKeys);
  const message = "certification|7|abc";
  const shares = new Map<ReplicaId, Signature>(nodes.map((n, i) => [replicaId(i), n.signer.signThresholdShare("high", message)] as const));
  for (const [node, share] of shares) t.true(verifier.verifyThresholdShare("high", node, message, share), `node ${node}'s share`);
  const combined = verifier.combineThreshold("high", message, new Map([...shares].slice(1)));
  t.truthy(combined);
  t.true(verifier.verifyThreshold("high", message, combined as Signature));
  // The same seed in the one-process backend gives the same group signature (threshold signatures are unique).
  const simulated = blsSubnetKeys(4, Rng.fromSeed("key-files"));
  const again = simulated.verifier.combineThreshold("high", message, new Map([0, 1, 2].map((i) => [replicaId(i), simulated.signerFor(replicaId(i)).signThresholdShare("high", message)] as const)));
  t.is(again, combined);
  const proposal = (nodes[2] as ReturnType<typeof loadNode>).signer.signBasic("proposal|1|x");
  t.true(verifier.verifyBasic(replicaId(2), "proposal|1|x", proposal));
  t.false(verifier.verifyBasic(replicaId(1), "proposal|1|x", proposal), "node 2's key signs only as node 2");
});

test("item 3: a node's secret file holds its own secrets only, and is checked against the public keys", (t) => {
  const own = loadNode(1);
  t.is(own.secrets.node, replicaId(1));
  t.false(secretTexts[1]?.includes(Buffer.from(dealing.secrets[0]?.basic ?? []).toString("hex")) ?? true, "no other node's secret in the file");
  t.is(secretsMatch(own.secrets, own.publicKeys), undefined);
  const otherSubnet = dealBlsKeys(4, Rng.fromSeed("another subnet"));
  t.regex(secretsMatch(own.secrets, otherSubnet.publicKeys) ?? "", /node 1's Ed25519 key does not match/);
  const swapped = { ...own.secrets, node: replicaId(2) };
  t.regex(secretsMatch(swapped, own.publicKeys) ?? "", /node 2's Ed25519 key does not match/);
  t.regex(secretsMatch({ ...own.secrets, node: replicaId(9) }, own.publicKeys) ?? "", /subnet has 4 nodes/);
});

test("item 3: damaged key files are refused with a reason, never turned into keys", (t) => {
  const reason = (r: { ok: boolean; error?: string }): string => (r.ok ? "accepted" : (r.error ?? ""));
  t.regex(reason(decodePublicKeys("{")), /not JSON/);
  t.regex(reason(decodePublicKeys(secretTexts[0] as string)), /format is "subnetlab\/bls-node-secrets"/);
  t.regex(reason(decodeNodeSecrets(publicText)), /format is "subnetlab\/bls-public-keys"/);
  const doc = JSON.parse(publicText);
  t.regex(reason(decodePublicKeys(JSON.stringify({ ...doc, version: 2 }))), /version 2 is not supported/);
  t.regex(reason(decodePublicKeys(JSON.stringify({ ...doc, multi: doc.multi.slice(1) }))), /multi must list 4 keys/);
  // A bit flipped in a G2 key almost never leaves a point on the curve: refused, not a wrong key.
  const flipped = `${doc.groups.high.publicKey.slice(0, 10)}${doc.groups.high.publicKey[10] === "0" ? "1" : "0"}${doc.groups.high.publicKey.slice(11)}`;
  t.regex(reason(decodePublicKeys(JSON.stringify({ ...doc, groups: { ...doc.groups, high: { ...doc.groups.high, publicKey: flipped } } }))), /groups\.high\.publicKey: not a G2 point/);
  const secret = JSON.parse(secretTexts[0] as string);
  t.regex(reason(decodeNodeSecrets(JSON.stringify({ ...secret, shares: { ...secret.shares, low: "00".repeat(32) } }))), /must not be zero/);
  t.regex(reason(decodeNodeSecrets(JSON.stringify({ ...secret, multi: "ff".repeat(32) }))), /below the group order/);
  t.regex(reason(decodeNodeSecrets(JSON.stringify({ ...secret, basic: "abc" }))), /basic must be 32 bytes/);
});
