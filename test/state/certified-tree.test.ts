import test from "ava";
import fc from "fast-check";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { blsSubnetKeys } from "../../harness/crypto/bls-backend.ts";
import { decodeCertificate, encodeCanisterRanges, nodeIdOf, verifyCertificate } from "../../harness/crypto/certificate.ts";
import {
  buildHashTree,
  compareLabels,
  flattenForks,
  leaf,
  leafHash,
  lookupPath,
  reconstruct,
  subtree,
  value,
  wellFormed,
  type LabeledTree,
  type LookupResult,
} from "../../harness/crypto/hash-tree.ts";
import { encodeUleb128 } from "../../harness/crypto/request-id.ts";
import { simSubnetKeys } from "../../harness/crypto/sim-backend.ts";
import { CertifiedState, encodeControllers, streamIndexLabel, type RequestStatus } from "../../harness/state/certified-tree.ts";
import { LabelMap, REPLICA_SHAPE_MAX_CHILDREN, type CertifiedSubtree } from "../../harness/state/label-map.ts";
import { digestBytes, leafDigest, reconstructDigest } from "../../harness/state/tree-hash.ts";
import {
  certificationScheme,
  certifyState,
  dataCertificate,
  ownSubnetEntry,
  readStateCertificate,
  verifyStateCertificate,
} from "../../harness/state/state-certification.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { height, replicaId } from "../../harness/types.ts";

const NOW_NS = 1_700_000_000_000_000_000n;
const messageId = (n: number): Uint8Array => sha256(utf8ToBytes(`message ${n}`));
const canisterId = (n: number): Uint8Array => {
  const id = new Uint8Array(10);
  new DataView(id.buffer).setBigUint64(0, BigInt(n));
  id.set([1, 1], 8);
  return id;
};
const subnetId = (name: string): Uint8Array => sha256(utf8ToBytes(`subnet ${name}`)).slice(0, 29);
const text = (r: LookupResult): string => (r.status === "found" ? new TextDecoder().decode(r.value) : r.status);
const hex = (r: LookupResult): string => (r.status === "found" ? bytesToHex(r.value) : r.status);

const REPLY = utf8ToBytes("DIDL\x00\x01\x71\x0bhello world");
const statusOf = (n: number): RequestStatus => {
  switch (n % 5) {
    case 0:
      return { status: "replied", reply: utf8ToBytes(`reply ${n}`) };
    case 1:
      return { status: "rejected", rejectCode: 4, rejectMessage: `reject ${n}`, errorCode: "IC0503" };
    case 2:
      return { status: "processing" };
    case 3:
      return { status: "received" };
    default:
      return { status: "done" };
  }
};

function withStatuses(state: CertifiedState, ids: readonly number[]): CertifiedState {
  for (const n of ids) state = state.withRequestStatus(messageId(n), statusOf(n));
  return state;
}

// The labeled tree the spec describes for a request status ("Request status" in the system state
// tree), written out independently of certified-tree.ts.
function expectedStatusTree(status: RequestStatus): LabeledTree {
  if (status.status === "replied") return subtree([["reply", value(status.reply)], ["status", value("replied")]]);
  if (status.status === "rejected") {
    return subtree([
      ["error_code", value(status.errorCode)],
      ["reject_code", value(encodeUleb128(status.rejectCode))],
      ["reject_message", value(status.rejectMessage)],
      ["status", value("rejected")],
    ]);
  }
  return subtree([["status", value(status.status)]]);
}

// (a) Expected root hash: hash-tree.ts `buildHashTree` (the replica's fork shape, checked against
// the spec's example in test/crypto/hash-tree.test.ts) over the labeled tree that
// lazy_tree_conversion.rs / the spec's "system state tree" describe. Every node here has at most
// REPLICA_SHAPE_MAX_CHILDREN children, where our shape is the replica's.
test("a small state hashes exactly as buildHashTree over the equivalent labeled tree", (t) => {
  const keys = blsSubnetKeys(4, Rng.fromSeed("certified-tree-small"));
  const own = subnetId("own");
  const other = subnetId("other");
  const ranges = [[canisterId(0), canisterId(0xfffff)]] as const;
  const moduleHash = sha256(utf8ToBytes("module"));
  const controller = utf8ToBytes("controller-principal");
  const ownEntry = ownSubnetEntry(keys, ranges);
  let state = CertifiedState.empty()
    .withTime(NOW_NS)
    .withCanister(canisterId(1), { controllers: [controller], moduleHash, certifiedData: utf8ToBytes("data"), metadata: [["candid:service", utf8ToBytes("service : {}")]] })
    .withCanister(canisterId(2), { controllers: [], certifiedData: new Uint8Array() })
    .withSubnet(own, ownEntry)
    .withSubnet(other, { publicKeyDer: ownEntry.publicKeyDer, canisterRanges: [[canisterId(0x100000), canisterId(0x1fffff)]] })
    .withStream(other, { header: utf8ToBytes("header"), messages: [[7n, utf8ToBytes("m7")], [8n, utf8ToBytes("m8")], [9n, utf8ToBytes("m9")]] });
  const ids = Array.from({ length: REPLICA_SHAPE_MAX_CHILDREN }, (_, i) => i);
  state = withStatuses(state, ids);

  const nodes = Array.from({ length: keys.verifier.size }, (_, i) => [nodeIdOf(keys, replicaId(i)), subtree([["public_key", value(keys.nodePublicKeyDer(replicaId(i)))]])] as const);
  const expected = buildHashTree(
    subtree([
      [
        "canister",
        subtree([
          [
            canisterId(1),
            subtree([
              ["certified_data", value("data")],
              ["controllers", value(encodeControllers([controller]))],
              ["metadata", subtree([["candid:service", value("service : {}")]])],
              ["module_hash", value(moduleHash)],
            ]),
          ],
          [canisterId(2), subtree([["controllers", value(encodeControllers([]))]])],
        ]),
      ],
      ["request_status", subtree(ids.map((n) => [messageId(n), expectedStatusTree(statusOf(n))] as const))],
      [
        "streams",
        subtree([[other, subtree([["header", value("header")], ["messages", subtree([7n, 8n, 9n].map((i) => [streamIndexLabel(i), value(`m${i}`)] as const))]])]]),
      ],
      [
        "subnet",
        subtree([
          [own, subtree([["canister_ranges", value(encodeCanisterRanges(ranges))], ["node", subtree(nodes)], ["public_key", value(ownEntry.publicKeyDer)]])],
          [other, subtree([["canister_ranges", value(encodeCanisterRanges([[canisterId(0x100000), canisterId(0x1fffff)]]))], ["public_key", value(ownEntry.publicKeyDer)]])],
        ]),
      ],
      ["time", value(encodeUleb128(NOW_NS))],
    ]),
  );
  t.is(bytesToHex(state.rootHash()), bytesToHex(reconstruct(expected)));
  t.deepEqual(state.hashTree(), expected, "the same tree, node for node");
  // One more request status: /request_status switches to the crit-bit trie shape (label-map.ts).
  const bigger = withStatuses(state, [REPLICA_SHAPE_MAX_CHILDREN]);
  t.is(bytesToHex(bigger.rootHash()), bytesToHex(reconstruct(bigger.hashTree())));
  t.true(wellFormed(bigger.hashTree()));
});

// LabelMap against a model (a sorted array): labels of any length, many sharing prefixes or being
// prefixes of one another, which is where a crit-bit trie can go wrong. Expected lookups follow
// the spec's lookup_path semantics (hash-tree.ts lookupPath).
const leafValue = (bytes: Uint8Array): CertifiedSubtree => ({ hash: () => leafDigest(bytes), reveal: () => leaf(bytes), witness: () => leaf(bytes) });
test("LabelMap matches a sorted model: content, canonical hash, well-formed full tree, witness lookups", (t) => {
  const labelArb = fc.uint8Array({ min: 0, max: 3, maxLength: 4 }).map((l) => (l.length > 0 && l[0] === 3 ? Uint8Array.of(0xff, ...l) : l));
  const op = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant("set" as const), label: labelArb, value: fc.nat(9) }), weight: 8 },
    { arbitrary: fc.record({ kind: fc.constant("delete" as const), label: labelArb }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant("deleteBelow" as const), label: labelArb }), weight: 1 },
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 150, size: "max" }), fc.array(labelArb, { minLength: 1, maxLength: 4 }), (ops, queries) => {
      let map = LabelMap.empty<CertifiedSubtree>();
      const model = new Map<string, [Uint8Array, number]>();
      for (const o of ops) {
        const key = bytesToHex(o.label);
        if (o.kind === "set") {
          map = map.set(o.label, leafValue(Uint8Array.of(o.value)));
          model.set(key, [o.label, o.value]);
        } else if (o.kind === "delete") {
          map = map.delete(o.label);
          model.delete(key);
        } else {
          map = map.deleteBelow(o.label);
          for (const [k, [label]] of model) if (compareLabels(label, o.label) < 0) model.delete(k);
        }
      }
      const sorted = [...model.values()].sort((a, b) => compareLabels(a[0], b[0]));
      const entries = [...map.entries()].map(([label, v]) => [bytesToHex(label), bytesToHex(digestBytes(v.hash()))]);
      const expected = sorted.map(([label, v]) => [bytesToHex(label), bytesToHex(leafHash(Uint8Array.of(v)))]);
      if (JSON.stringify(entries) !== JSON.stringify(expected) || map.size !== sorted.length) return false;
      const rebuilt = LabelMap.fromEntries(sorted.map(([label, v]) => [label, leafValue(Uint8Array.of(v))] as const));
      if (rebuilt.hash() !== map.hash()) return false;
      const full = map.reveal();
      const labels = flattenForks(full).map((node) => (node.kind === "labeled" ? bytesToHex(node.label) : "?"));
      if (JSON.stringify(labels) !== JSON.stringify(sorted.map(([label]) => bytesToHex(label)))) return false;
      if (bytesToHex(reconstruct(full)) !== bytesToHex(digestBytes(map.hash()))) return false;
      const witness = map.witness(queries.map((q) => [q]));
      if (bytesToHex(reconstruct(witness)) !== bytesToHex(digestBytes(map.hash())) || !wellFormed(witness)) return false;
      return queries.every((q) => {
        const held = model.get(bytesToHex(q));
        const found = lookupPath([q], witness);
        return held === undefined ? found.status === "absent" : found.status === "found" && found.value[0] === held[1];
      });
    }),
    { numRuns: 100 },
  );
  t.pass();
});

// tree-hash.ts must give hash-tree.ts's bytes (the spec's reconstruct), for any tree.
test("tree-hash.ts digests equal hash-tree.ts reconstruct", (t) => {
  const labelArb = fc.uint8Array({ maxLength: 90 });
  const tree = fc.letrec<{ node: LabeledTree }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.uint8Array({ maxLength: 40 }).map((v) => value(v)),
      fc.uniqueArray(fc.tuple(labelArb, tie("node")), { maxLength: 5, selector: ([l]) => bytesToHex(l) }).map((children) => subtree(children)),
    ),
  })).node;
  fc.assert(
    fc.property(tree, (labeledTree) => {
      const hashTree = buildHashTree(labeledTree);
      return bytesToHex(digestBytes(reconstructDigest(hashTree))) === bytesToHex(reconstruct(hashTree));
    }),
    { numRuns: 100 },
  );
  // Inputs beyond the scratch buffer (1 KiB) take the other path.
  const big = buildHashTree(subtree([[new Uint8Array(1_100).fill(7), value(new Uint8Array(2_000).fill(9))]]));
  t.is(bytesToHex(digestBytes(reconstructDigest(big))), bytesToHex(reconstruct(big)));
});

test("the empty state is the root fork of empty nodes and /time 0", (t) => {
  const expected = buildHashTree(
    subtree([
      ["canister", subtree([])],
      ["request_status", subtree([])],
      ["streams", subtree([])],
      ["subnet", subtree([])],
      ["time", value(encodeUleb128(0n))],
    ]),
  );
  t.is(bytesToHex(CertifiedState.empty().rootHash()), bytesToHex(reconstruct(expected)));
});

// (a) for any size: the root hash is reconstruct(full tree) and reconstruct(any witness).
test("root hash = reconstruct(full tree) = reconstruct(witness of any paths), witnesses well formed", (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { maxLength: 120, size: "max" }),
      fc.array(fc.integer({ min: 0, max: 450 }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }),
      (present, queried, messageIndices) => {
        const state = withStatuses(CertifiedState.empty().withTime(NOW_NS), present).withStream(subnetId("b"), {
          header: utf8ToBytes("h"),
          messages: Array.from({ length: 30 }, (_, i) => [BigInt(i + 5), utf8ToBytes(`m${i}`)] as const),
        });
        const root = bytesToHex(state.rootHash());
        const paths = [
          ...queried.map((n) => ["request_status", messageId(n)]),
          ...messageIndices.map((i) => ["streams", subnetId("b"), "messages", streamIndexLabel(BigInt(i))]),
          ["canister", canisterId(3)],
        ];
        const witness = state.witness(paths);
        return bytesToHex(reconstruct(state.hashTree())) === root && bytesToHex(reconstruct(witness)) === root && wellFormed(witness);
      },
    ),
    { numRuns: 60 },
  );
  t.pass();
});

// (b) The hash is a function of the content, not of the order of updates.
test("order independence: the same updates in any order, and remove then re-insert, give the same hash", (t) => {
  const update = fc.record({ id: fc.integer({ min: 0, max: 80 }), remove: fc.boolean(), kind: fc.integer({ min: 0, max: 4 }) });
  fc.assert(
    fc.property(fc.array(update, { maxLength: 160, size: "max" }), fc.integer(), (updates, seed) => {
      // The final content of each id is decided by its last update; replay those finals in a
      // shuffled order on top of a differently ordered history.
      const apply = (state: CertifiedState, u: { id: number; remove: boolean; kind: number }): CertifiedState =>
        u.remove ? state.withoutRequestStatus(messageId(u.id)) : state.withRequestStatus(messageId(u.id), statusOf(u.id * 5 + u.kind));
      const inOrder = updates.reduce(apply, CertifiedState.empty());
      const finals = new Map(updates.map((u) => [u.id, u] as const));
      const shuffled = Rng.fromSeed(seed).shuffle([...finals.values()]);
      const direct = shuffled.reduce(apply, CertifiedState.empty());
      // Remove everything present, then re-insert it in yet another order.
      const present = [...finals.values()].filter((u) => !u.remove);
      const cleared = present.reduce((s, u) => s.withoutRequestStatus(messageId(u.id)), inOrder);
      const reinserted = [...present].reverse().reduce(apply, cleared);
      const expected = bytesToHex(inOrder.rootHash());
      return (
        bytesToHex(direct.rootHash()) === expected &&
        bytesToHex(reinserted.rootHash()) === expected &&
        bytesToHex(cleared.rootHash()) === bytesToHex(CertifiedState.empty().rootHash()) &&
        inOrder.requestStatusCount === present.length
      );
    }),
    { numRuns: 100 },
  );
  t.pass();
});

test("streams: garbage collection plus appends give the hash of the stream built afresh", (t) => {
  const sid = subnetId("b");
  const messages = (from: number, to: number): [bigint, Uint8Array][] =>
    Array.from({ length: to - from }, (_, k) => [BigInt(from + k), utf8ToBytes(`message ${from + k}`)]);
  const start = CertifiedState.empty().withStream(sid, { header: utf8ToBytes("h1"), messages: messages(0, 100) });
  const advanced = start.withStream(sid, { header: utf8ToBytes("h2"), messages: messages(40, 130) });
  const fresh = CertifiedState.empty().withStream(sid, { header: utf8ToBytes("h2"), messages: messages(40, 130) });
  t.is(bytesToHex(advanced.rootHash()), bytesToHex(fresh.rootHash()));
  const shrunk = advanced.withStream(sid, { header: utf8ToBytes("h2"), messages: messages(50, 60) });
  t.is(bytesToHex(shrunk.rootHash()), bytesToHex(CertifiedState.empty().withStream(sid, { header: utf8ToBytes("h2"), messages: messages(50, 60) }).rootHash()));
  t.is(start.withStream(sid, { header: utf8ToBytes("h1"), messages: messages(0, 100) }), start, "an unchanged stream is the same state");
  // An XNet slice: header and messages 60..63 proven, the rest pruned.
  const witness = advanced.witness([["streams", sid, "header"], ...[60n, 61n, 62n, 63n].map((i) => ["streams", sid, "messages", streamIndexLabel(i)])]);
  t.is(text(lookupPath(["streams", sid, "header"], witness)), "h2");
  t.is(text(lookupPath(["streams", sid, "messages", streamIndexLabel(61n)], witness)), "message 61");
  t.is(lookupPath(["streams", sid, "messages", streamIndexLabel(70n)], witness).status, "unknown");
  t.is(lookupPath(["streams", sid, "messages", streamIndexLabel(39n)], advanced.witness([["streams", sid, "messages", streamIndexLabel(39n)]])).status, "absent");
});

// (c) read_state semantics (spec "Lookup", "Request: Read state"): Found for what was asked,
// Absent for ids that do not exist, Unknown for everything pruned.
test("read_state witness: replied status found with its reply, unknown ids absent, the rest unknown", (t) => {
  for (const size of [5, 3_000]) {
    const ids = Array.from({ length: size }, (_, i) => i);
    const replied = messageId(1_000_000);
    const state = withStatuses(CertifiedState.empty().withTime(NOW_NS), ids)
      .withRequestStatus(replied, { status: "replied", reply: REPLY })
      .withCanister(canisterId(1), { controllers: [], moduleHash: sha256(utf8ToBytes("m")), certifiedData: utf8ToBytes("cd") });
    const missing = messageId(2_000_000);
    const witness = state.witness([["request_status", replied], ["request_status", missing]]);
    t.is(bytesToHex(reconstruct(witness)), bytesToHex(state.rootHash()), `size ${size}`);
    t.is(text(lookupPath(["request_status", replied, "status"], witness)), "replied");
    t.is(hex(lookupPath(["request_status", replied, "reply"], witness)), bytesToHex(REPLY));
    t.is(lookupPath(["request_status", missing, "status"], witness).status, "absent", `size ${size}`);
    t.is(lookupPath(["request_status", messageId(3), "status"], witness).status, "unknown");
    t.is(lookupPath(["canister", canisterId(1), "certified_data"], witness).status, "unknown");
    t.is(hex(lookupPath(["time"], witness)), bytesToHex(encodeUleb128(NOW_NS)), "/time is always included");
    // Ids below the smallest and above the largest label are absent too.
    for (const edge of [new Uint8Array(32), new Uint8Array(32).fill(0xff)]) {
      t.is(state.lookup(["request_status", edge, "status"]).status, "absent");
    }
  }
});

test("read_state witness, property: every queried id is found or absent as it should be, others unknown", (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 100, size: "max" }), fc.array(fc.integer({ min: 0, max: 320 }), { minLength: 1, maxLength: 5 }), (present, queried) => {
      const state = withStatuses(CertifiedState.empty(), present);
      const witness = state.witness(queried.map((n) => ["request_status", messageId(n)]));
      const has = new Set(present);
      const asked = new Set(queried);
      for (const n of queried) {
        const found = lookupPath(["request_status", messageId(n), "status"], witness);
        if (has.has(n) ? text(found) !== statusOf(n).status : found.status !== "absent") return false;
      }
      return present.filter((n) => !asked.has(n)).every((n) => lookupPath(["request_status", messageId(n), "status"], witness).status === "unknown");
    }),
    { numRuns: 80 },
  );
  t.pass();
});

// (d) Certificates: verified with certificate.ts `verifyCertificate` (the agent's checks, itself
// tested against a mainnet certificate in test/crypto/certificate.test.ts).
test("a BLS-certified read_state certificate verifies under the subnet's DER key; one altered reply byte fails", (t) => {
  const keys = blsSubnetKeys(4, Rng.fromSeed("certified-tree-bls"));
  const scheme = certificationScheme(keys);
  const replied = messageId(77);
  const own = subnetId("own");
  const state = withStatuses(CertifiedState.empty().withTime(NOW_NS), Array.from({ length: 200 }, (_, i) => i))
    .withRequestStatus(replied, { status: "replied", reply: REPLY })
    .withSubnet(own, ownSubnetEntry(keys, [[canisterId(0), canisterId(0xfffff)]]))
    .withCanister(canisterId(1), { controllers: [], moduleHash: sha256(utf8ToBytes("m")), certifiedData: utf8ToBytes("certified!") });
  const certification = certifyState(scheme, state, height(12));
  t.true(scheme.verify(state.rootHash(), certification.signature));

  const bytes = readStateCertificate(state, certification, [["request_status", replied]]);
  const result = verifyCertificate(bytes, scheme.subnetPublicKeyDer, { nowNs: NOW_NS + 1_000_000_000n });
  t.true(result.ok, result.ok ? "" : `${result.failure}: ${result.detail}`);
  if (result.ok) t.is(hex(lookupPath(["request_status", replied, "reply"], result.certificate.tree)), bytesToHex(REPLY));

  const at = indexOf(bytes, REPLY);
  t.true(at > 0, "the reply appears verbatim in the certificate");
  const altered = bytes.slice();
  altered[at + REPLY.length - 1] = (altered[at + REPLY.length - 1] as number) ^ 0x01;
  const tampered = verifyCertificate(altered, scheme.subnetPublicKeyDer);
  t.is(tampered.ok ? "ok" : tampered.failure, "bad-signature");

  // ic0.data_certificate_copy: /time and the canister's certified_data, nothing else.
  const data = dataCertificate(state, certification, canisterId(1));
  const dataResult = verifyCertificate(data, scheme.subnetPublicKeyDer);
  t.true(dataResult.ok);
  const tree = decodeCertificate(data)!.tree;
  t.is(text(lookupPath(["canister", canisterId(1), "certified_data"], tree)), "certified!");
  t.is(lookupPath(["canister", canisterId(1), "module_hash"], tree).status, "unknown");
  t.is(lookupPath(["request_status", replied, "status"], tree).status, "unknown");
  t.true(data.length < 1_000, `a data certificate is small (${data.length} bytes)`);

  // Any 2f+1 shares combine into the same (unique) signature; 2f shares do not combine.
  const rootHash = state.rootHash();
  const others = [1, 2, 3].map((i) => scheme.signShare(replicaId(i), height(12), rootHash));
  t.true(others.every((s) => scheme.verifyShare(s)));
  t.is(scheme.combine(others)?.signature, certification.signature);
  t.is(scheme.combine(others.slice(0, 2)), undefined);
});

test("sim certification: same certificate encoding, verified through the subnet's sim verifier", (t) => {
  const keys = simSubnetKeys(13, Rng.fromSeed("certified-tree-sim"));
  const scheme = certificationScheme(keys);
  t.is(scheme.threshold, 9);
  const replied = messageId(5);
  const state = withStatuses(CertifiedState.empty().withTime(NOW_NS), [1, 2, 3]).withRequestStatus(replied, { status: "replied", reply: REPLY });
  const certification = certifyState(scheme, state, height(3), [2, 3, 4, 5, 6, 7, 8, 9, 12].map(replicaId));
  const bytes = readStateCertificate(state, certification, [["request_status", replied]]);
  const ok = verifyStateCertificate(scheme, bytes, { nowNs: NOW_NS });
  t.true(ok.ok, ok.ok ? "" : `${ok.failure}: ${ok.detail}`);
  if (ok.ok) t.is(hex(lookupPath(["request_status", replied, "reply"], ok.certificate.tree)), bytesToHex(REPLY));

  const altered = bytes.slice();
  const replyAt = indexOf(bytes, REPLY);
  altered[replyAt] = (altered[replyAt] as number) ^ 0x01;
  const tampered = verifyStateCertificate(scheme, altered);
  t.is(tampered.ok ? "ok" : tampered.failure, "bad-signature");
  const otherSubnet = certificationScheme(simSubnetKeys(13, Rng.fromSeed("another-sim-subnet")));
  const wrongKey = verifyStateCertificate(otherSubnet, bytes);
  t.is(wrongKey.ok ? "ok" : wrongKey.failure, "bad-signature");
  t.not(bytesToHex(otherSubnet.subnetPublicKeyDer), bytesToHex(scheme.subnetPublicKeyDer));
  t.is(scheme.combine([2, 3, 4, 5, 6, 7, 8, 9].map((i) => scheme.signShare(replicaId(i), height(3), state.rootHash()))), undefined, "2f shares");
});

test("lookup on the state itself: found, absent, error", (t) => {
  const state = withStatuses(CertifiedState.empty().withTime(5n), [0, 1]);
  t.is(text(state.lookup(["request_status", messageId(0), "reply"])), "reply 0");
  t.is(state.lookup(["request_status", messageId(9)]).status, "absent");
  t.is(state.lookup(["request_status"]).status, "error", "a subtree is not a value");
  t.is(hex(state.lookup(["time"])), "05");
  t.deepEqual(state.requestStatusOf(messageId(1)), statusOf(1));
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
