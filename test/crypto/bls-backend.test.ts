import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import test from "ava";
import fc from "fast-check";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import {
  BLS_DER_PREFIX,
  blsPublicKeyFromDer,
  blsSigner,
  blsSubnetKeys,
  blsVerifier,
  dealBlsKeys,
  certificationMessage,
  IC_BLS_DST,
  messageBytes,
  subnetPublicKeyDer,
  verifyBlsBytes,
} from "../../harness/crypto/bls-backend.ts";
import { compressG1, pairingCheck } from "../../harness/crypto/bls-pairing.ts";
import type { Signature } from "../../harness/crypto/interfaces.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId, type ReplicaId } from "../../harness/types.ts";

// The same contract tests as test/crypto/sim-backend.test.ts, run against real BLS12-381.
const keys = blsSubnetKeys(4, Rng.fromSeed(9));
const { verifier } = keys;
const r = replicaId;
const sharesOf = (signers: number[], sign: (i: ReplicaId) => Signature) => new Map(signers.map((i) => [r(i), sign(r(i))] as const));

test("a replica's signature verifies only under its own id", (t) => {
  t.is(verifier.backend, "bls");
  const sig = keys.signerFor(r(1)).signBasic("proposal|5|abc");
  t.is(sig.length, 128, "Ed25519: 64 bytes");
  t.true(verifier.verifyBasic(r(1), "proposal|5|abc", sig));
  t.false(verifier.verifyBasic(r(2), "proposal|5|abc", sig), "r1 cannot sign in r2's name");
  t.false(verifier.verifyBasic(r(1), "proposal|6|abc", sig));
  t.false(verifier.verifyMultiShare(r(1), "proposal|5|abc", sig), "roles are domain-separated");
  t.false(verifier.verifyBasic(r(7), "proposal|5|abc", sig), "outside the subnet");
  t.false(verifier.verifyBasic(r(1), "proposal|5|abc", "zz" as Signature), "garbage is rejected, not thrown");
  t.throws(() => keys.signerFor(r(4)));
});

test("multi-signatures aggregate only valid shares and need the threshold", (t) => {
  const msg = "notarization|3|h";
  const shares = sharesOf([0, 1, 2], (i) => keys.signerFor(i).signMultiShare(msg));
  for (const [node, share] of shares) {
    t.is(share.length, 96, "G1 signature: 48 bytes compressed");
    t.true(verifier.verifyMultiShare(node, msg, share));
  }
  const multi = verifier.aggregateMulti(msg, shares);
  t.truthy(multi);
  t.deepEqual(multi?.signers, [0, 1, 2]);
  t.true(verifier.verifyMulti(msg, multi!, 3));
  t.false(verifier.verifyMulti(msg, multi!, 4), "3 signers do not meet a threshold of 4");
  t.false(verifier.verifyMulti(msg, { signers: [r(0), r(1), r(3)], signature: multi!.signature }, 3), "signer set is bound");
  t.false(verifier.verifyMulti(msg, { signers: [r(1), r(0), r(2)], signature: multi!.signature }, 3), "signers ascending");
  t.false(verifier.verifyMulti("notarization|4|h", multi!, 3));
  const forged = new Map(shares);
  forged.set(r(3), keys.signerFor(r(0)).signMultiShare(msg));
  t.is(verifier.aggregateMulti(msg, forged), undefined, "a share signed by r0 under r3's name is rejected");
  t.is(verifier.aggregateMulti(msg, new Map()), undefined);
  // Two invalid shares crafted to cancel (σ0 + E, σ1 − E) sum to the valid aggregate; the
  // batched check (random linear combination) still refuses them.
  const E = bls12_381.shortSignatures.hash(utf8ToBytes("offset"));
  const sig = (s: Signature) => bls12_381.shortSignatures.Signature.fromHex(s);
  const hex = (p: typeof E) => bytesToHex(bls12_381.shortSignatures.Signature.toBytes(p)) as Signature;
  const s0 = shares.get(r(0))!;
  const s1 = shares.get(r(1))!;
  const cancelling = new Map([[r(0), hex(sig(s0).add(E))], [r(1), hex(sig(s1).subtract(E))], [r(2), shares.get(r(2))!]] as const);
  t.false(verifier.verifyMultiShare(r(0), msg, cancelling.get(r(0))!));
  t.is(verifier.aggregateMulti(msg, cancelling), undefined, "cancelling invalid shares are refused");
});

test("an aggregate equal to the sum of verified shares is accepted without a pairing; other bytes for the same signers are still checked and refused", (t) => {
  const fresh = blsSubnetKeys(4, Rng.fromSeed(10)); // its own verdict caches
  const msg = "finalization|9|h";
  const shares = sharesOf([0, 1, 2, 3], (i) => fresh.signerFor(i).signMultiShare(msg));
  for (const [node, share] of shares) t.true(fresh.verifier.verifyMultiShare(node, msg, share));
  const point = (s: Signature) => bls12_381.shortSignatures.Signature.fromHex(s);
  const hex = (p: ReturnType<typeof point>) => bytesToHex(bls12_381.shortSignatures.Signature.toBytes(p)) as Signature;
  // Another replica's signer set, summed by hand (this verifier never aggregated it).
  const sum = hex(point(shares.get(r(1))!).add(point(shares.get(r(2))!)).add(point(shares.get(r(3))!)));
  t.true(fresh.verifier.verifyMulti(msg, { signers: [r(1), r(2), r(3)], signature: sum }, 3));
  const E = bls12_381.shortSignatures.hash(utf8ToBytes("offset"));
  t.false(fresh.verifier.verifyMulti(msg, { signers: [r(1), r(2), r(3)], signature: hex(point(sum).add(E)) }, 3), "not the sum: the pairing check refuses it");
  t.false(fresh.verifier.verifyMulti(msg, { signers: [r(0), r(2), r(3)], signature: sum }, 3), "the sum of other signers' shares");
  // Shares this verifier never saw: the pairing check decides, as before.
  const other = "finalization|10|h";
  const unseen = sharesOf([0, 1, 2], (i) => fresh.signerFor(i).signMultiShare(other));
  const aggregate = hex([...unseen.values()].map(point).reduce((x, y) => x.add(y)));
  t.true(fresh.verifier.verifyMulti(other, { signers: [r(0), r(1), r(2)], signature: aggregate }, 3));
  t.false(fresh.verifier.verifyMulti(other, { signers: [r(0), r(1), r(2)], signature: hex(point(aggregate).add(E)) }, 3));
});

test("threshold signatures are unique per message whichever shares are combined", (t) => {
  const msg = "beacon|7|p";
  t.is(verifier.thresholdOf("low"), 2);
  t.is(verifier.thresholdOf("high"), 3);
  const low = (i: ReplicaId) => keys.signerFor(i).signThresholdShare("low", msg);
  const a = verifier.combineThreshold("low", msg, sharesOf([0, 1], low));
  const b = verifier.combineThreshold("low", msg, sharesOf([2, 3], low));
  const c = verifier.combineThreshold("low", msg, sharesOf([1, 3], low));
  t.truthy(a);
  t.is(a, b);
  t.is(a, c);
  t.true(verifier.verifyThreshold("low", msg, a!));
  t.false(verifier.verifyThreshold("high", msg, a!));
  t.false(verifier.verifyThreshold("low", "beacon|8|p", a!));
  t.false(verifier.verifyThresholdShare("low", r(1), msg, low(r(0))), "share bound to its node");
  t.is(verifier.combineThreshold("low", msg, sharesOf([0], low)), undefined, "below threshold");
  t.is(verifier.combineThreshold("high", msg, sharesOf([0, 1, 2], low)), undefined, "low shares do not make a high signature");
  const bad = sharesOf([0, 1, 2], low);
  bad.set(r(2), keys.signerFor(r(2)).signThresholdShare("low", "beacon|8|p"));
  t.is(verifier.combineThreshold("low", msg, bad), undefined, "any invalid share is refused");
  const high = (i: ReplicaId) => keys.signerFor(i).signThresholdShare("high", msg);
  const h1 = verifier.combineThreshold("high", msg, sharesOf([0, 1, 2], high));
  const h2 = verifier.combineThreshold("high", msg, sharesOf([1, 2, 3], high));
  t.is(h1, h2);
  t.true(verifier.verifyThreshold("high", msg, h1!));
});

test("property: any `threshold` shares combine to the same signature (n = 7)", (t) => {
  const k7 = blsSubnetKeys(7, Rng.fromSeed("seven"));
  const v7 = k7.verifier;
  for (const group of ["low", "high"] as const) {
    const msg = `subsets|${group}`;
    const all = sharesOf([0, 1, 2, 3, 4, 5, 6], (i) => k7.signerFor(i).signThresholdShare(group, msg));
    const expected = v7.combineThreshold(group, msg, all);
    t.truthy(expected);
    t.true(v7.verifyThreshold(group, msg, expected!));
    fc.assert(
      fc.property(fc.shuffledSubarray([0, 1, 2, 3, 4, 5, 6], { minLength: v7.thresholdOf(group), maxLength: v7.thresholdOf(group) }), (subset) => {
        const picked = new Map(subset.map((i) => [r(i), all.get(r(i))!] as const));
        return v7.combineThreshold(group, msg, picked) === expected;
      }),
      { numRuns: 4, seed: 7 },
    );
  }
  t.is(v7.thresholdOf("low"), 3);
  t.is(v7.thresholdOf("high"), 5);
});

test("keys are deterministic in the seed", (t) => {
  const again = blsSubnetKeys(4, Rng.fromSeed(9));
  t.is(bytesToHex(subnetPublicKeyDer(again)), bytesToHex(subnetPublicKeyDer(keys)));
  t.is(again.signerFor(r(2)).signBasic("x"), keys.signerFor(r(2)).signBasic("x"));
  t.not(bytesToHex(subnetPublicKeyDer(blsSubnetKeys(4, Rng.fromSeed(10)))), bytesToHex(subnetPublicKeyDer(keys)));
});

test("the certification key: 133-byte DER, and the combined high signature verifies on raw bytes", (t) => {
  const der = subnetPublicKeyDer(keys);
  t.is(der.length, 133);
  t.is(bytesToHex(der.slice(0, 37)), bytesToHex(BLS_DER_PREFIX));
  t.is(keys.nodePublicKeyDer(r(0)).length, 44);
  const root = new Uint8Array(32).fill(0xab);
  const msg = certificationMessage(root);
  // ds("ic-state-root") ‖ root: 0x0d "ic-state-root" then the 32 bytes.
  t.is(bytesToHex(messageBytes(msg)), `0d${bytesToHex(utf8ToBytes("ic-state-root"))}${"ab".repeat(32)}`);
  const sig = verifier.combineThreshold("high", msg, sharesOf([0, 2, 3], (i) => keys.signerFor(i).signThresholdShare("high", msg)));
  t.truthy(sig);
  t.true(verifyBlsBytes(hexToBytes(sig!), messageBytes(msg), blsPublicKeyFromDer(der)!));
  t.throws(() => messageBytes("\ric-state-root"), undefined, "plain text cannot impersonate a domain message");
});

// Known answer: dfinity/agent-js packages/bls-verify/src/index.test.ts, test "verify" (copied as
// data into fixtures/vectors/agent-js-mainnet-vectors.json): a G1 signature of "hello" with the
// IC's DST under a G2 key.
test("known answer: agent-js BLS vector (G1 signature, G2 key, IC DST)", (t) => {
  const v = JSON.parse(readFileSync(new URL("../../fixtures/vectors/agent-js-mainnet-vectors.json", import.meta.url), "utf8"))
    .blsKnownAnswer as { publicKey: string; signature: string; message: string; wrongMessage: string };
  t.true(verifyBlsBytes(hexToBytes(v.signature), utf8ToBytes(v.message), hexToBytes(v.publicKey)));
  t.false(verifyBlsBytes(hexToBytes(v.signature), utf8ToBytes(v.wrongMessage), hexToBytes(v.publicKey)));
});

test("a vouched signer: its own shares count as checked in its verifier; a signer with another dealing's keys is refused", (t) => {
  const dealing = dealBlsKeys(4, Rng.fromSeed(21));
  const own = blsVerifier(dealing.publicKeys);
  const signers = dealing.secrets.map((secrets) => blsSigner(secrets));
  const vouched = own.vouchedSigner(signers[0]!);
  const msg = "notarization|9|h";
  const shares = new Map([vouched, ...signers.slice(1, 3)].map((s) => [s.node, s.signMultiShare(msg)] as const));
  const multi = own.verifier.aggregateMulti(msg, shares);
  t.truthy(multi);
  t.true(blsVerifier(dealing.publicKeys).verifier.verifyMulti(msg, multi!, 3), "a fresh verifier, which vouches for nobody, accepts the aggregate");
  const combined = own.verifier.combineThreshold("high", msg, new Map([vouched, ...signers.slice(1, 3)].map((s) => [s.node, s.signThresholdShare("high", msg)] as const)));
  t.true(combined !== undefined && blsVerifier(dealing.publicKeys).verifier.verifyThreshold("high", msg, combined));
  // Only what the signer itself produced is vouched for: a forged share in its name still fails.
  const forged = new Map(shares).set(vouched.node, signers[1]!.signMultiShare(msg));
  t.is(own.verifier.aggregateMulti(msg, forged), undefined);
  // …and what it produced counts for it alone: its share in another node's name fails too.
  const stolen = new Map(shares).set(signers[1]!.node, shares.get(vouched.node)!);
  t.is(own.verifier.aggregateMulti(msg, stolen), undefined);
  t.false(own.verifier.verifyMultiShare(signers[1]!.node, msg, shares.get(vouched.node)!));
  const stranger = blsSigner(dealBlsKeys(4, Rng.fromSeed(22)).secrets[0]!);
  t.throws(() => own.vouchedSigner(stranger), { message: /multi-signature key is not the subnet's key/ });
});

// The fast paths (no repeated subgroup checks, cached pairing lines) against noble's own encoder
// and verifier, which are the reference: same bytes, same verdicts, valid or not.
const scalar = fc.bigInt({ min: 1n, max: bls12_381.fields.Fr.ORDER - 1n });

test("property: compressG1 encodes a G1 point exactly as noble's toBytes (the point at infinity included)", (t) => {
  const G1 = bls12_381.G1.Point;
  t.is(bytesToHex(compressG1(G1.ZERO)), bytesToHex(G1.ZERO.toBytes(true)));
  fc.assert(
    fc.property(scalar, (k) => {
      const p = G1.BASE.multiply(k);
      return bytesToHex(compressG1(p)) === bytesToHex(p.toBytes(true)) && bytesToHex(compressG1(p.negate())) === bytesToHex(p.negate().toBytes(true));
    }),
    { numRuns: 40 },
  );
  t.pass();
});

test("property: pairingCheck agrees with noble's short.verify on valid signatures, wrong keys, wrong messages and sums", (t) => {
  const short = bls12_381.shortSignatures;
  const hashOf = (m: string) => short.hash(utf8ToBytes(m), IC_BLS_DST);
  fc.assert(
    fc.property(scalar, scalar, fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), fc.boolean(), (a, b, m1, m2, longLived) => {
      const pkA = short.getPublicKey(bls12_381.fields.Fr.toBytes(a));
      const pkB = short.getPublicKey(bls12_381.fields.Fr.toBytes(b));
      const sigA = short.sign(hashOf(m1), bls12_381.fields.Fr.toBytes(a));
      const sigB = short.sign(hashOf(m1), bls12_381.fields.Fr.toBytes(b));
      const cases: [typeof sigA, typeof sigA, typeof pkA][] = [
        [sigA, hashOf(m1), pkA],
        [sigA, hashOf(m1), pkB],
        [sigA, hashOf(m2), pkA],
        [sigA.add(sigB), hashOf(m1), pkA.add(pkB)], // an aggregate
        [sigA.add(sigB), hashOf(m1), pkA],
      ];
      return cases.every(([sig, h, pk]) => pairingCheck(sig, h, pk, longLived) === short.verify(sig, h, pk));
    }),
    { numRuns: 8 },
  );
  t.true(pairingCheck(short.sign(hashOf("m"), bls12_381.fields.Fr.toBytes(5n)), hashOf("m"), short.getPublicKey(bls12_381.fields.Fr.toBytes(5n)), true));
  t.false(pairingCheck(bls12_381.G1.Point.ZERO, hashOf("m"), short.getPublicKey(bls12_381.fields.Fr.toBytes(5n)), true), "the zero signature is never valid");
});

test("costs (logged): keygen, sign, verify, aggregate, combine", (t) => {
  // Each measured operation gets a fresh message: the verifier remembers recent verdicts.
  const timeEach = <T>(inputs: readonly T[], fn: (x: T) => unknown): number => {
    const start = performance.now();
    for (const x of inputs) fn(x);
    return (performance.now() - start) / inputs.length;
  };
  const messages = (tag: string, count: number): string[] => Array.from({ length: count }, (_, i) => `cost|${tag}|${i}`);
  const keygen = timeEach([1, 2], (seed) => blsSubnetKeys(4, Rng.fromSeed(seed)));
  const k13 = blsSubnetKeys(13, Rng.fromSeed(2));
  const v13 = k13.verifier;
  const signer = k13.signerFor(r(0));
  const basic = messages("basic", 20).map((m) => [m, signer.signBasic(m)] as const);
  const basicSign = timeEach(messages("basic-sign", 20), (m) => signer.signBasic(m));
  const basicVerify = timeEach(basic, ([m, s]) => v13.verifyBasic(r(0), m, s));
  const multi = messages("share", 8).map((m) => [m, signer.signMultiShare(m)] as const);
  const shareSign = timeEach(messages("share-sign", 8), (m) => signer.signMultiShare(m));
  const shareVerify = timeEach(multi, ([m, s]) => v13.verifyMultiShare(r(0), m, s));
  const nineOf = (m: string, sign: (i: ReplicaId) => Signature) => sharesOf([0, 1, 2, 3, 4, 5, 6, 7, 8], sign);
  const high = messages("combine", 3).map((m) => [m, nineOf(m, (i) => k13.signerFor(i).signThresholdShare("high", m))] as const);
  const combine = timeEach(high, ([m, shares]) => v13.combineThreshold("high", m, shares));
  const combined = high.map(([m, shares]) => [m, v13.combineThreshold("high", m, shares)!] as const);
  const thresholdVerify = timeEach(combined, ([m, s]) => v13.verifyThreshold("high", m, s));
  const agg = messages("aggregate", 3).map((m) => [m, nineOf(m, (i) => k13.signerFor(i).signMultiShare(m))] as const);
  const aggregate = timeEach(agg, ([m, shares]) => v13.aggregateMulti(m, shares));
  const fresh = blsSubnetKeys(13, Rng.fromSeed(2)).verifier; // same keys, empty verdict cache
  const multis = agg.map(([m, shares]) => [m, v13.aggregateMulti(m, shares)!] as const);
  const multiVerify = timeEach(multis, ([m, ms]) => fresh.verifyMulti(m, ms, 9));
  const cached = timeEach(multis, ([m, ms]) => fresh.verifyMulti(m, ms, 9));
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  t.log(`keygen n=4: ${ms(keygen)}`);
  t.log(`Ed25519 sign ${ms(basicSign)}, verify ${ms(basicVerify)}`);
  t.log(`BLS share sign (incl. hash-to-G1) ${ms(shareSign)}, share verify ${ms(shareVerify)}`);
  t.log(`n=13: combine 9 high shares (one batched check of all shares) ${ms(combine)}, threshold verify ${ms(thresholdVerify)}`);
  t.log(`n=13: aggregate 9 multi shares (one batched check) ${ms(aggregate)}, multi verify ${ms(multiVerify)}, remembered ${ms(cached)}`);
  t.true(combined.every(([m, s]) => v13.verifyThreshold("high", m, s)));
});
