// Unit tests of the consensus components on a hand-built pool. Expected behaviour comes from the
// IC's rules as summarised in ../shared/research/ic-protocol.md §1.5 (notary), §1.6 (finalization
// rule), §1.8 (block validity) and §2 (payload limits).
import test from "ava";
import { makeBlock, notarization, notarizationShare, proposalOf, signedNotarization, signedProposal, type Block, type BlockProposal } from "../../harness/consensus/artifacts.ts";
import { DEFAULT_CONSENSUS_CONFIG, MAX_INGRESS_MESSAGES_PER_BLOCK } from "../../harness/consensus/config.ts";
import { finalizerChanges, validate, validatorChanges, notaryChanges, notaryDelayWithCertificationUs, type ConsensusContext } from "../../harness/consensus/consensus.ts";
import { ingressId, type IngressMessage } from "../../harness/consensus/ingress.ts";
import { ConsensusPool } from "../../harness/consensus/pool.ts";
import { SimSubnet } from "../../harness/replica/subnet.ts";
import { defaultNetworkConfig } from "../../harness/sim/network.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { Trace } from "../../harness/sim/trace.ts";
import { height, replicaId, timeUs, type ReplicaId } from "../../harness/types.ts";
import type { SubnetVerifier } from "../../harness/crypto/interfaces.ts";

const subnet = new SimSubnet({
  n: 4, consensus: DEFAULT_CONSENSUS_CONFIG, network: defaultNetworkConfig(4), rng: Rng.fromSeed(5), trace: new Trace(),
  observer: { onBatchDelivered: () => {}, onStateSynced: () => {} },
});
const genesisBeacon = subnet.genesis.content.beacon;
const ranking = subnet.membership.ranking(genesisBeacon);
const makerOfRank = (rank: number): ReplicaId => ranking[rank] as ReplicaId;

function context(self: ReplicaId, pool: ConsensusPool, nowUs: number, finalizedIds: Set<string> = new Set()): ConsensusContext {
  return {
    self, config: DEFAULT_CONSENSUS_CONFIG, membership: subnet.membership, pool, signer: subnet.keys.signerFor(self), verifier: subnet.keys.verifier,
    ingressAuth: subnet.ingressAuth, nowUs: timeUs(nowUs), ingressCandidates: () => [], ingressAlreadyFinalized: (id) => finalizedIds.has(id),
    stateHashAt: () => undefined, lastDeliveredHeight: () => height(0),
  };
}

function ingress(nonce: number, overrides: Partial<IngressMessage> = {}): IngressMessage {
  const base = { sender: "alice", nonce, body: `put k v${nonce}`, sizeBytes: 100, expiryUs: timeUs(200_000_000) };
  const id = ingressId(base.sender, base.nonce, base.body, base.sizeBytes, base.expiryUs);
  return { ...base, id, signature: subnet.ingressAuth.sign(base.sender, id), ...overrides };
}

function proposal(rank: number, opts: { maker?: ReplicaId; ingress?: IngressMessage[]; timeUs?: number; signer?: ReplicaId } = {}): BlockProposal {
  const maker = opts.maker ?? makerOfRank(rank);
  const block = makeBlock({ parent: subnet.genesis.content.block.hash, height: height(1), rank, maker, context: { timeUs: timeUs(opts.timeUs ?? 1000) }, isSummary: false, ingress: opts.ingress ?? [] });
  return proposalOf(block, subnet.keys.signerFor(opts.signer ?? maker).signBasic(signedProposal(block.height, block.hash)));
}

function notarize(pool: ConsensusPool, block: Block): void {
  const msg = signedNotarization(block.height, block.hash);
  const shares = new Map([0, 1, 2].map((i) => [replicaId(i), subnet.keys.signerFor(replicaId(i)).signMultiShare(msg)] as const));
  const multi = subnet.keys.verifier.aggregateMulti(msg, shares);
  if (multi === undefined) throw new Error("aggregation failed");
  pool.addValidated(notarization(block.height, block.hash, multi), timeUs(0));
}

const LATE = 10_000_000; // long after every rank's delay

test("a valid rank-0 proposal validates; wrong rank, forged signature and bad hash are invalid", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  const ctx = context(replicaId(0), pool, LATE);
  t.is(validate(ctx, proposal(0)).kind, "valid");
  const wrongRank = proposal(0, { maker: makerOfRank(1) });
  t.deepEqual(validate(ctx, wrongRank), { kind: "invalid", reason: `maker ${makerOfRank(1)} has rank 1, claims 0` });
  t.deepEqual(validate(ctx, proposal(0, { signer: makerOfRank(1) })), { kind: "invalid", reason: "bad proposal signature" });
  const p = proposal(0);
  const tampered = { ...p, block: { ...p.block, rank: 2 } };
  t.is(validate(ctx, tampered).kind, "invalid");
  t.deepEqual(validate(ctx, proposal(3)).kind, subnet.membership.f < 3 ? "invalid" : "valid", "rank 3 > f is no block maker");
});

test("a rank-r proposal waits for the rank delay before it validates (§1.4)", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  const p = proposal(1);
  t.is(validate(context(replicaId(0), pool, 999_999), p).kind, "wait");
  t.is(validate(context(replicaId(0), pool, DEFAULT_CONSENSUS_CONFIG.unitDelayMs * 1000), p).kind, "valid");
});

test("payload validation rejects invalid, duplicated and already-finalized ingress and oversize blocks (§2)", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  const ctx = context(replicaId(0), pool, LATE);
  const good = ingress(1);
  t.is(validate(ctx, proposal(0, { ingress: [good] })).kind, "valid");
  const reasons = [
    proposal(0, { ingress: [ingress(2, { signature: "forged" })] }),
    proposal(0, { ingress: [ingress(3, { expiryUs: timeUs(10) })] }),
    proposal(0, { ingress: [ingress(4, { sizeBytes: 3 * 1024 * 1024 })] }),
    proposal(0, { ingress: [good, good] }),
  ].map((p) => validate(ctx, p));
  t.deepEqual(reasons.map((v) => v.kind), ["invalid", "invalid", "invalid", "invalid"]);
  t.regex((reasons[0] as { reason: string }).reason, /bad-signature/);
  t.regex((reasons[3] as { reason: string }).reason, /duplicated/);
  t.is(validate(context(replicaId(0), pool, LATE, new Set([good.id])), proposal(0, { ingress: [good] })).kind, "invalid", "already in the ingress history");
  const tooMany = Array.from({ length: MAX_INGRESS_MESSAGES_PER_BLOCK + 1 }, (_, i) => ingress(100 + i, { sizeBytes: 10 }));
  t.regex((validate(ctx, proposal(0, { ingress: tooMany })) as { reason: string }).reason, /more than 1000/);
});

test("finalization rule: share only for the one notarized block this replica alone notarization-shared (§1.6)", (t) => {
  const self = replicaId(3);
  const a = proposal(0);
  const b = proposal(1);
  // Case 1: exactly one notarized block, no conflicting own share → a finalization share.
  const pool1 = new ConsensusPool(subnet.genesis);
  pool1.addValidated(a, timeUs(0));
  notarize(pool1, a.block);
  t.deepEqual(finalizerChanges(context(self, pool1, LATE)).map((c) => c.artifact.type), ["finalization-share"]);
  // Case 2: two notarized blocks at the height → no share.
  const pool2 = new ConsensusPool(subnet.genesis);
  pool2.addValidated(a, timeUs(0));
  pool2.addValidated(b, timeUs(0));
  notarize(pool2, a.block);
  notarize(pool2, b.block);
  t.deepEqual(finalizerChanges(context(self, pool2, LATE)), []);
  // Case 3: one notarized block, but this replica notarization-shared another → no share.
  const pool3 = new ConsensusPool(subnet.genesis);
  pool3.addValidated(a, timeUs(0));
  pool3.addValidated(b, timeUs(0));
  notarize(pool3, a.block);
  const msg = signedNotarization(b.block.height, b.block.hash);
  pool3.addValidated(notarizationShare(b.block.height, b.block.hash, self, subnet.keys.signerFor(self).signMultiShare(msg)), timeUs(0));
  t.deepEqual(finalizerChanges(context(self, pool3, LATE)), []);
});

test("the notary signs only the lowest-ranked proposal and only after its notary delay (§1.5)", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  pool.addValidated(proposal(0), timeUs(0));
  pool.addValidated(proposal(1), timeUs(0));
  const early = DEFAULT_CONSENSUS_CONFIG.initialNotaryDelayMs * 1000 - 1;
  t.deepEqual(notaryChanges(context(replicaId(2), pool, early)), []);
  const changes = notaryChanges(context(replicaId(2), pool, early + 1));
  t.is(changes.length, 1);
  const share = changes[0]?.artifact;
  t.is(share?.type === "notarization-share" ? share.blockHash : "", proposal(0).block.hash);
});

test("a second signed proposal by one maker at one height yields an equivocation proof", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  const first = proposal(0, { timeUs: 1000 });
  const second = proposal(0, { timeUs: 1001 });
  pool.addValidated(first, timeUs(0));
  pool.addUnvalidated(second);
  const changes = validatorChanges(context(replicaId(2), pool, LATE));
  const proof = changes.find((c) => c.artifact.type === "equivocation-proof")?.artifact;
  t.is(proof?.type === "equivocation-proof" ? proof.signer : undefined, makerOfRank(0));
  if (proof !== undefined) pool.addValidated(proof, timeUs(0));
  t.true(pool.isDisqualified(height(1), makerOfRank(0)));
  t.deepEqual(notaryChanges(context(replicaId(2), pool, LATE)), [], "no notarization share for a disqualified maker");
});

test("the notary delay grows 2 s per height certification trails finalization, and stops 70 heights ahead (§1.4)", (t) => {
  const at = (notarized: number, finalized: number, certified: number | undefined): number | undefined => {
    const pool = { notarizedHeight: height(notarized), finalizedHeight: height(finalized) } as ConsensusPool;
    const ctx = { ...context(replicaId(0), new ConsensusPool(subnet.genesis), 0), pool, ...(certified === undefined ? {} : { certifiedHeight: () => height(certified) }) };
    return notaryDelayWithCertificationUs(ctx, 0);
  };
  const base = DEFAULT_CONSENSUS_CONFIG.initialNotaryDelayMs * 1000;
  t.is(at(10, 10, undefined), base, "a subnet that certifies nothing has no certification term");
  t.is(at(10, 10, 9), base, "a gap of one height is normal");
  t.is(at(10, 10, 7), base + 3 * 2_000_000);
  t.is(at(79, 79, 10), base + 69 * 2_000_000, "69 ahead: a long delay, but notarization goes on");
  t.is(at(80, 79, 10), undefined, "70 heights ahead of certification: no notarization");
});

/** The subnet's verifier, counting the signature checks that go through it. */
function countingVerifier(): { verifier: SubnetVerifier; checks: () => number } {
  const inner = subnet.keys.verifier;
  let checks = 0;
  const counted = <A extends unknown[]>(f: (...args: A) => boolean) => (...args: A): boolean => {
    checks++;
    return f(...args);
  };
  const verifier: SubnetVerifier = {
    backend: inner.backend,
    size: inner.size,
    thresholdOf: (group) => inner.thresholdOf(group),
    verifyBasic: counted((node, message, signature) => inner.verifyBasic(node, message, signature)),
    verifyMultiShare: counted((node, message, share) => inner.verifyMultiShare(node, message, share)),
    aggregateMulti: (message, shares) => inner.aggregateMulti(message, shares),
    verifyMulti: counted((message, multi, threshold) => inner.verifyMulti(message, multi, threshold)),
    verifyThresholdShare: counted((group, node, message, share) => inner.verifyThresholdShare(group, node, message, share)),
    combineThreshold: (group, message, shares) => inner.combineThreshold(group, message, shares),
    verifyThreshold: counted((group, message, signature) => inner.verifyThreshold(group, message, signature)),
  };
  return { verifier, checks: () => checks };
}

test("item 1 (catch-up): a share is not signature-checked while its block is missing, nor once its block has the aggregate; a second aggregate of a block is dropped unchecked", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  const { verifier, checks } = countingVerifier();
  const ctx = { ...context(replicaId(0), pool, LATE), verifier };
  const block = proposal(0).block;
  const share = (signer: number) => notarizationShare(block.height, block.hash, replicaId(signer), subnet.keys.signerFor(replicaId(signer)).signMultiShare(signedNotarization(block.height, block.hash)));
  t.is(validate(ctx, share(1)).kind, "wait", "the block is not here: the share waits");
  t.is(checks(), 0, "and was not verified");
  pool.addValidated(proposal(0), timeUs(0));
  t.is(validate(ctx, share(1)).kind, "valid");
  t.is(checks(), 1, "verified once the block is here");
  notarize(pool, block);
  t.is(validate(ctx, share(2)).kind, "stale", "the block has its notarization: a share adds nothing");
  const msg = signedNotarization(block.height, block.hash);
  const other = subnet.keys.verifier.aggregateMulti(msg, new Map([1, 2, 3].map((i) => [replicaId(i), subnet.keys.signerFor(replicaId(i)).signMultiShare(msg)] as const)));
  t.is(validate(ctx, notarization(block.height, block.hash, other!)).kind, "stale", "another notarization of the same block (other signers)");
  t.is(checks(), 1, "neither was verified");
});

test("item 1 (catch-up): a proposal whose block is already notarized validates without waiting for its rank's delay", (t) => {
  const pool = new ConsensusPool(subnet.genesis);
  const p = proposal(1);
  t.is(validate(context(replicaId(0), pool, 999_999), p).kind, "wait", "not notarized: it waits for rank 1's delay");
  notarize(pool, p.block);
  t.is(validate(context(replicaId(0), pool, 999_999), p).kind, "valid", "2f+1 endorsed it already");
});
