import { readFileSync } from "node:fs";
import test from "ava";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { blsSubnetKeys, subnetPublicKeyDer } from "../../harness/crypto/bls-backend.ts";
import {
  certifyTree,
  decodeCertificate,
  delegateSubnet,
  encodeCertificate,
  nodeIdOf,
  subnetIdOfRootKey,
  subnetStateEntry,
  verifyCertificate,
  witnessCertificate,
  type Certificate,
} from "../../harness/crypto/certificate.ts";
import {
  buildHashTree,
  lookupPath,
  subtree,
  value,
  type HashTree,
  type LabeledTree,
} from "../../harness/crypto/hash-tree.ts";
import { encodeUleb128 } from "../../harness/crypto/request-id.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId } from "../../harness/types.ts";

const NOW_NS = 1_700_000_000_000_000_000n;
const root = blsSubnetKeys(4, Rng.fromSeed("root-subnet"));
const rootDer = subnetPublicKeyDer(root);
const rootSubnetId = subnetIdOfRootKey(rootDer);
const canister = hexToBytes("00000000000000010101");

function stateTree(timeNs: bigint, status: string): LabeledTree {
  return subtree([
    ["time", value(encodeUleb128(timeNs))],
    ["request_status", subtree([[new Uint8Array(32).fill(1), subtree([["status", value(status)], ["reply", value("DIDL\x00\x00")]])]])],
    ["subnet", subtree([subnetStateEntry(root, [[canister, canister]])])],
  ]);
}

test("certify with the high threshold, encode with tag 55799, verify; a witness verifies too", (t) => {
  const full = buildHashTree(stateTree(NOW_NS, "replied"));
  const cert = certifyTree(root, full);
  const bytes = encodeCertificate(cert);
  t.is(bytesToHex(bytes.slice(0, 3)), "d9d9f7", "self-describing CBOR tag");
  const result = verifyCertificate(bytes, rootDer, { nowNs: NOW_NS + 1_000_000_000n, canisterId: canister });
  t.true(result.ok, result.ok ? "" : `${result.failure}: ${result.detail}`);
  if (result.ok) t.is(result.timeNs, NOW_NS);
  // What read_state would send: prune to the requested paths (plus /time); same signature.
  const small = encodeCertificate(witnessCertificate(cert, [["request_status", new Uint8Array(32).fill(1)]]));
  t.true(small.length < bytes.length);
  const ok = verifyCertificate(small, rootDer, { nowNs: NOW_NS });
  t.true(ok.ok);
  if (ok.ok) {
    const status = lookupPath(["request_status", new Uint8Array(32).fill(1), "status"], ok.certificate.tree);
    t.deepEqual(status.status === "found" ? new TextDecoder().decode(status.value) : status.status, "replied");
  }
  // What query-signature checks read: /subnet/<id>/{public_key, canister_ranges, node/<id>/public_key}.
  const nodeKey = lookupPath(["subnet", rootSubnetId, "node", nodeIdOf(root, replicaId(2)), "public_key"], full);
  t.is(nodeKey.status === "found" ? bytesToHex(nodeKey.value) : nodeKey.status, bytesToHex(root.nodePublicKeyDer(replicaId(2))));
  const key = lookupPath(["subnet", rootSubnetId, "public_key"], full);
  t.is(key.status === "found" ? bytesToHex(key.value) : key.status, bytesToHex(rootDer));
  // Any n−f shares give the same certificate signature.
  t.is(bytesToHex(certifyTree(root, full, [replicaId(1), replicaId(2), replicaId(3)]).signature), bytesToHex(cert.signature));
});

test("tampering with one leaf, a wrong key, a stale time or a missing /time fails with a typed reason", (t) => {
  const cert = certifyTree(root, buildHashTree(stateTree(NOW_NS, "replied")));
  const tampered: Certificate = { ...cert, tree: buildHashTree(stateTree(NOW_NS, "rejected")) };
  const r1 = verifyCertificate(encodeCertificate(tampered), rootDer);
  t.deepEqual(r1.ok ? "ok" : r1.failure, "bad-signature");

  const otherDer = subnetPublicKeyDer(blsSubnetKeys(4, Rng.fromSeed("other")));
  const r2 = verifyCertificate(encodeCertificate(cert), otherDer);
  t.deepEqual(r2.ok ? "ok" : r2.failure, "bad-signature");

  const r3 = verifyCertificate(encodeCertificate(cert), rootDer.slice(1));
  t.deepEqual(r3.ok ? "ok" : r3.failure, "bad-root-key");

  const r4 = verifyCertificate(encodeCertificate(cert), rootDer, { nowNs: NOW_NS + 6n * 60_000_000_000n });
  t.deepEqual(r4.ok ? "ok" : r4.failure, "time-too-old");
  const r5 = verifyCertificate(encodeCertificate(cert), rootDer, { nowNs: NOW_NS - 6n * 60_000_000_000n });
  t.deepEqual(r5.ok ? "ok" : r5.failure, "time-in-future");

  const noTime = certifyTree(root, buildHashTree(subtree([["canister", subtree([])]])));
  const r6 = verifyCertificate(encodeCertificate(noTime), rootDer);
  t.deepEqual(r6.ok ? "ok" : r6.failure, "time-missing");

  const r7 = verifyCertificate(hexToBytes("d9d9f7a0"), rootDer);
  t.deepEqual(r7.ok ? "ok" : r7.failure, "malformed");
});

test("a delegation: root certifies the subnet's key and ranges; the subnet's certificate verifies under the root key", (t) => {
  const app = blsSubnetKeys(4, Rng.fromSeed("app-subnet"));
  const appDer = subnetPublicKeyDer(app);
  const lo = hexToBytes("00000000002000000101");
  const hi = hexToBytes("00000000002fffff0101");
  const delegation = delegateSubnet(root, app, [[lo, hi]], NOW_NS - 86_400_000_000_000n);
  t.is(bytesToHex(delegation.subnetId), bytesToHex(subnetIdOfRootKey(appDer)));
  const delegationTree = decodeCertificate(delegation.certificate)!.tree;
  const outer = (tree: HashTree): Uint8Array => encodeCertificate({ ...certifyTree(app, tree), delegation });
  const appTree = buildHashTree(subtree([["time", value(encodeUleb128(NOW_NS))]]));
  const inside = verifyCertificate(outer(appTree), rootDer, { canisterId: hexToBytes("000000000020000c0101"), nowNs: NOW_NS });
  t.true(inside.ok, inside.ok ? "" : `${inside.failure}: ${inside.detail}`);
  if (inside.ok) t.is(bytesToHex(inside.signingKeyDer), bytesToHex(appDer));
  const outside = verifyCertificate(outer(appTree), rootDer, { canisterId: canister, nowNs: NOW_NS });
  t.deepEqual(outside.ok ? "ok" : outside.failure, "canister-out-of-range");
  // Signed by the root key directly but carrying the delegation: wrong key.
  const wrong = encodeCertificate({ ...certifyTree(root, appTree), delegation });
  const wrongResult = verifyCertificate(wrong, rootDer);
  t.deepEqual(wrongResult.ok ? "ok" : wrongResult.failure, "bad-signature");
  // A delegation whose certificate itself has a delegation is refused.
  const nested = { subnetId: delegation.subnetId, certificate: outer(delegationTree) };
  const r = verifyCertificate(encodeCertificate({ ...certifyTree(app, appTree), delegation: nested }), rootDer);
  t.deepEqual(r.ok ? "ok" : r.failure, "nested-delegation");
});

// Real data: dfinity/agent-js packages/bls-verify/src/index.test.ts (a mainnet certificate with a
// delegation, the IC mainnet root key, the instant and canister ranges agent-js uses), copied as
// data into fixtures/vectors/agent-js-mainnet-vectors.json.
test("known answer: a mainnet certificate with a delegation verifies under the IC root key", (t) => {
  const v = JSON.parse(readFileSync(new URL("../../fixtures/vectors/agent-js-mainnet-vectors.json", import.meta.url), "utf8")) as {
    icRootKeyDer: string;
    delegatedCertificate: { certificate: string; verifiedAt: string; canistersInRange: string[]; canistersOutOfRange: string[] };
  };
  const d = v.delegatedCertificate;
  const bytes = hexToBytes(d.certificate);
  const rootKey = hexToBytes(v.icRootKeyDer);
  const nowNs = BigInt(Date.parse(d.verifiedAt)) * 1_000_000n;
  for (const id of d.canistersInRange) {
    const r = verifyCertificate(bytes, rootKey, { canisterId: hexToBytes(id), nowNs });
    t.true(r.ok, r.ok ? id : `${id}: ${r.failure}: ${r.detail}`);
  }
  for (const id of d.canistersOutOfRange) {
    const r = verifyCertificate(bytes, rootKey, { canisterId: hexToBytes(id), nowNs });
    t.deepEqual(r.ok ? "ok" : r.failure, "canister-out-of-range", id);
  }
  const decoded = decodeCertificate(bytes)!;
  const zeroed = encodeCertificate({ ...decoded, signature: new Uint8Array(decoded.signature.length) });
  const bad = verifyCertificate(zeroed, rootKey);
  t.false(bad.ok, "an all-zero signature is refused");
  const late = verifyCertificate(bytes, rootKey, { nowNs: nowNs + 10n * 60_000_000_000n });
  t.deepEqual(late.ok ? "ok" : late.failure, "time-too-old");
  // Our encoder reproduces the tree part byte for byte: decode → encode → same root hash & signature.
  const again = verifyCertificate(encodeCertificate(decoded), rootKey, { canisterId: hexToBytes(d.canistersInRange[0]!) });
  t.true(again.ok);
});
