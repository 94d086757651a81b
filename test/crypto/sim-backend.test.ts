import test from "ava";
import { simSubnetKeys } from "../../harness/crypto/sim-backend.ts";
import type { Signature } from "../../harness/crypto/interfaces.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { replicaId, type ReplicaId } from "../../harness/types.ts";

const keys = simSubnetKeys(4, Rng.fromSeed(9));
const { verifier } = keys;
const r = replicaId;
const sharesOf = (signers: number[], sign: (i: ReplicaId) => Signature) => new Map(signers.map((i) => [r(i), sign(r(i))] as const));

test("a replica's signature verifies only under its own id", (t) => {
  const sig = keys.signerFor(r(1)).signBasic("proposal|5|abc");
  t.true(verifier.verifyBasic(r(1), "proposal|5|abc", sig));
  t.false(verifier.verifyBasic(r(2), "proposal|5|abc", sig), "r1 cannot sign in r2's name");
  t.false(verifier.verifyBasic(r(1), "proposal|6|abc", sig));
  t.false(verifier.verifyMultiShare(r(1), "proposal|5|abc", sig), "roles are domain-separated");
});

test("multi-signatures aggregate only valid shares and need the threshold", (t) => {
  const msg = "notarization|3|h";
  const shares = sharesOf([0, 1, 2], (i) => keys.signerFor(i).signMultiShare(msg));
  const multi = verifier.aggregateMulti(msg, shares);
  t.truthy(multi);
  t.deepEqual(multi?.signers, [0, 1, 2]);
  t.true(verifier.verifyMulti(msg, multi!, 3));
  t.false(verifier.verifyMulti(msg, multi!, 4), "3 signers do not meet a threshold of 4");
  t.false(verifier.verifyMulti(msg, { signers: [r(0), r(1), r(3)], signature: multi!.signature }, 3), "signer set is bound");
  const forged = new Map(shares);
  forged.set(r(3), keys.signerFor(r(0)).signMultiShare(msg));
  t.is(verifier.aggregateMulti(msg, forged), undefined, "a share signed by r0 under r3's name is rejected");
});

test("threshold signatures are unique per message whichever shares are combined", (t) => {
  const msg = "beacon|7|p";
  t.is(verifier.thresholdOf("low"), 2);
  t.is(verifier.thresholdOf("high"), 3);
  const a = verifier.combineThreshold("low", msg, sharesOf([0, 1], (i) => keys.signerFor(i).signThresholdShare("low", msg)));
  const b = verifier.combineThreshold("low", msg, sharesOf([2, 3], (i) => keys.signerFor(i).signThresholdShare("low", msg)));
  t.truthy(a);
  t.is(a, b);
  t.true(verifier.verifyThreshold("low", msg, a!));
  t.false(verifier.verifyThreshold("high", msg, a!));
  t.is(verifier.combineThreshold("low", msg, sharesOf([0], (i) => keys.signerFor(i).signThresholdShare("low", msg))), undefined, "below threshold");
  t.is(verifier.combineThreshold("high", msg, sharesOf([0, 1, 2], (i) => keys.signerFor(i).signThresholdShare("low", msg))), undefined, "low shares do not make a high signature");
});

test("issue 13 item 3: a share verified once is remembered only for its signer, role and message", (t) => {
  const fresh = simSubnetKeys(4, Rng.fromSeed(11));
  const v = fresh.verifier;
  const share = fresh.signerFor(r(2)).signMultiShare("notarization|7|abc");
  t.true(v.verifyMultiShare(r(2), "notarization|7|abc", share));
  t.true(v.verifyMultiShare(r(2), "notarization|7|abc", share), "again, from the memo");
  // The remembered signature is worth nothing for anything else.
  t.false(v.verifyMultiShare(r(1), "notarization|7|abc", share), "another signer");
  t.false(v.verifyMultiShare(r(2), "notarization|8|abc", share), "another message");
  t.false(v.verifyThresholdShare("low", r(2), "notarization|7|abc", share), "another role");
  t.false(v.verifyThresholdShare("high", r(2), "notarization|7|abc", share as Signature), "another group");
  // Aggregation uses the memo too, and still refuses a share moved to another signer.
  const shares = sharesOf([0, 1, 2], (i) => fresh.signerFor(i).signMultiShare("notarization|7|abc"));
  t.truthy(v.aggregateMulti("notarization|7|abc", shares));
  t.truthy(v.aggregateMulti("notarization|7|abc", shares), "a second replica aggregating the same shares");
  const moved = new Map(shares);
  moved.set(r(3), shares.get(r(2)) as Signature);
  moved.delete(r(2));
  t.is(v.aggregateMulti("notarization|7|abc", moved), undefined);
  t.is(v.aggregateMulti("notarization|8|abc", shares), undefined);
});
