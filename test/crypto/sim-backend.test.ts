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
