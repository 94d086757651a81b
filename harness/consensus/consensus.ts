// IC consensus as small components that read the pool and return change sets (ic-protocol.md §1):
// validator → aggregator → random-beacon maker → block maker → notary → finalizer → CUP maker.
// Nothing here sends, sleeps or reads a clock: the replica passes `nowUs`, applies the changes and
// gossips what was added. Byzantine behaviour is a rewrite of these change sets (harness/faults).
import { assert } from "../assert.ts";
import type { MultiSignature, NodeSigner, Signature, SubnetVerifier } from "../crypto/interfaces.ts";
import { height, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import {
  beacon,
  beaconShare,
  catchUpPackage,
  cupShare,
  equivocationProof,
  finalization,
  finalizationShare,
  makeBlock,
  notarization,
  notarizationShare,
  proposalOf,
  signedBeacon,
  signedCup,
  signedFinalization,
  signedNotarization,
  signedProposal,
  type Block,
  type BlockProposal,
  type ConsensusArtifact,
} from "./artifacts.ts";
import {
  PERMITTED_DRIFT_AT_VALIDATOR_US,
  isSummaryHeight,
  type ConsensusConfig,
} from "./config.ts";
import { checkIngress, type IngressAuth, type IngressMessage } from "./ingress.ts";
import type { CertifiedSlice } from "../routing/xnet.ts";
import type { Membership } from "./membership.ts";
import { cupKey, type ConsensusPool } from "./pool.ts";

export type Change =
  /** An artifact this replica made. */
  | { readonly kind: "add"; readonly artifact: ConsensusArtifact }
  /** An artifact from a peer that passed validation. */
  | { readonly kind: "validated"; readonly artifact: ConsensusArtifact }
  | { readonly kind: "invalid"; readonly artifact: ConsensusArtifact; readonly reason: string };

/** What the components may read besides the pool. */
export interface ConsensusContext {
  readonly self: ReplicaId;
  readonly config: ConsensusConfig;
  readonly membership: Membership;
  readonly pool: ConsensusPool;
  readonly signer: NodeSigner;
  readonly verifier: SubnetVerifier;
  readonly ingressAuth: IngressAuth;
  readonly nowUs: TimeUs;
  /** Candidate ingress for a payload, in arrival order. */
  ingressCandidates(): Iterable<IngressMessage>;
  /** True if the message was already finalized (ingress history within its TTL). */
  ingressAlreadyFinalized(id: HashHex): boolean;
  stateHashAt(h: Height): HashHex | undefined;
  lastDeliveredHeight(): Height;
  /** Latest height this replica holds a state certification for; undefined if nothing is certified. */
  certifiedHeight?(): Height | undefined;
  /** Multi-subnet runs: certified stream slices for a block on top of `parent`. */
  xnetPayload?(parent: Block): readonly CertifiedSlice[];
  /** Multi-subnet runs: why a slice in a block is invalid, or undefined. */
  checkXNetSlice?(slice: CertifiedSlice): string | undefined;
  /**
   * True once the running step used its time (real mode: the replica yields to its event loop);
   * the validator then returns what it has so far. Never true in simulation (time stands still).
   */
  overBudget?(): boolean;
}

// ---- timing ---------------------------------------------------------------------------------------

export function blockMakerDelayUs(config: ConsensusConfig, rank: number): number {
  return rank * config.unitDelayMs * 1000;
}

/** ACCEPTABLE_NOTARIZATION_CERTIFICATION_GAP: no notarization while certification lags this far. */
export const NOTARIZATION_CERTIFICATION_GAP_LIMIT = 70;
/** Extra notary delay per height that finalization is ahead of certification (beyond 1). */
export const CERTIFICATION_LAG_DELAY_MS = 2000;

/**
 * The notary delay with the certification terms (ic-protocol.md §1.4): + 2 s per height that
 * finalization is ahead of certification when that gap exceeds 1, and no notarization at all
 * (undefined) while notarization is 70 heights ahead of certification. Subnets that certify nothing
 * (the placeholder state machine) have neither term.
 */
export function notaryDelayWithCertificationUs(ctx: ConsensusContext, rank: number): number | undefined {
  const { pool, config } = ctx;
  const base = notaryDelayUs(config, rank, pool.notarizedHeight, pool.finalizedHeight);
  const certified = ctx.certifiedHeight?.();
  if (certified === undefined) return base;
  if (pool.notarizedHeight - certified >= NOTARIZATION_CERTIFICATION_GAP_LIMIT) return undefined;
  const lag = pool.finalizedHeight - certified;
  return lag > 1 ? base + lag * CERTIFICATION_LAG_DELAY_MS * 1000 : base;
}

/** initial + unit × rank × 1.5^(notarized − finalized), in integers (gap capped to keep it finite). */
export function notaryDelayUs(config: ConsensusConfig, rank: number, notarizedHeight: Height, finalizedHeight: Height): number {
  const gap = Math.min(Math.max(0, notarizedHeight - finalizedHeight), 16);
  let scaled = rank * config.unitDelayMs * 1000;
  for (let i = 0; i < gap; i++) scaled = Math.floor((scaled * 3) / 2);
  return config.initialNotaryDelayMs * 1000 + scaled;
}

// ---- validator ------------------------------------------------------------------------------------

export type Verdict =
  | { readonly kind: "valid" }
  | { readonly kind: "invalid"; readonly reason: string }
  /** A dependency is missing or a delay has not elapsed: try again later. */
  | { readonly kind: "wait" }
  /** Below what this replica still needs: drop quietly. */
  | { readonly kind: "stale" };

const VALID: Verdict = { kind: "valid" };
const WAIT: Verdict = { kind: "wait" };
const STALE: Verdict = { kind: "stale" };
const invalid = (reason: string): Verdict => ({ kind: "invalid", reason });

// Note [verification cache] (see ingress.ts): a pure check of an artifact's own bytes is
// remembered per artifact object, so an artifact that waits for its parent is not re-verified at
// every step. Keyed by verifier too: two subnets never share a result.
const verified = new WeakMap<object, WeakMap<SubnetVerifier, unknown>>();
function once<T>(key: object, verifier: SubnetVerifier, check: () => T): T {
  let byVerifier = verified.get(key);
  if (byVerifier?.has(verifier) === true) return byVerifier.get(verifier) as T;
  const result = check();
  if (byVerifier === undefined) {
    byVerifier = new WeakMap();
    verified.set(key, byVerifier);
  }
  byVerifier.set(verifier, result);
  return result;
}

export function validate(ctx: ConsensusContext, artifact: ConsensusArtifact): Verdict {
  const { pool, verifier, membership } = ctx;
  switch (artifact.type) {
    case "proposal":
      return validateProposal(ctx, artifact);
    case "notarization-share":
    case "finalization-share": {
      if (artifact.height <= pool.finalizedHeight) return STALE;
      if (artifact.signer >= membership.n) return invalid("signer outside the committee");
      // Note [verify last]: a share is useless once its block has the aggregate, and unusable
      // before the block is here, so the signature (a pairing with the bls backend) is checked
      // only when the share can count — a replica catching up then verifies no stale shares.
      const aggregates = artifact.type === "notarization-share" ? pool.notarizations : pool.finalizations;
      if (aggregates.get(artifact.height)?.has(artifact.blockHash) === true) return STALE;
      if (!pool.blocks.has(artifact.blockHash)) return WAIT;
      if (artifact.type === "finalization-share" && !pool.isNotarized(artifact.height, artifact.blockHash)) return WAIT;
      const authentic = once(artifact, verifier, () => {
        const message = artifact.type === "notarization-share"
          ? signedNotarization(artifact.height, artifact.blockHash)
          : signedFinalization(artifact.height, artifact.blockHash);
        return verifier.verifyMultiShare(artifact.signer, message, artifact.signature);
      });
      return authentic ? VALID : invalid("bad share signature");
    }
    case "notarization":
    case "finalization": {
      if (artifact.type === "finalization" && artifact.height <= pool.finalizedHeight) return STALE;
      if (artifact.height <= pool.latestCup.content.height) return STALE;
      // Another aggregate of the same block (other signers, made by another replica) adds nothing:
      // dropped unverified, as the IC's validator drops duplicates of validated content.
      const held = artifact.type === "notarization" ? pool.notarizations : pool.finalizations;
      if (held.get(artifact.height)?.has(artifact.blockHash) === true) return STALE;
      const message = artifact.type === "notarization"
        ? signedNotarization(artifact.height, artifact.blockHash)
        : signedFinalization(artifact.height, artifact.blockHash);
      return verifier.verifyMulti(message, artifact.multi, multiSignatureThreshold(ctx))
        ? VALID
        : invalid("bad multi-signature");
    }
    case "beacon-share":
    case "beacon": {
      if (artifact.height <= pool.beaconHeight && artifact.type === "beacon") return STALE;
      if (artifact.height <= pool.beaconHeight && pool.beacons.has(artifact.height)) return STALE;
      const parent = pool.beacons.get(height(artifact.height - 1));
      if (parent === undefined) return WAIT;
      if (parent.hash !== artifact.parent) return invalid("beacon does not chain to the previous beacon");
      const message = signedBeacon(artifact.height, artifact.parent);
      if (artifact.type === "beacon") {
        return verifier.verifyThreshold("low", message, artifact.signature) ? VALID : invalid("bad beacon signature");
      }
      return verifier.verifyThresholdShare("low", artifact.signer, message, artifact.signature)
        ? VALID
        : invalid("bad beacon share");
    }
    case "equivocation-proof": {
      if (artifact.height <= pool.finalizedHeight) return STALE;
      const ok =
        artifact.hash1 !== artifact.hash2 &&
        verifier.verifyBasic(artifact.signer, signedProposal(artifact.height, artifact.hash1), artifact.signature1) &&
        verifier.verifyBasic(artifact.signer, signedProposal(artifact.height, artifact.hash2), artifact.signature2);
      return ok ? VALID : invalid("equivocation proof does not hold");
    }
    case "cup-share": {
      if (artifact.height <= pool.latestCup.content.height) return STALE;
      return verifier.verifyThresholdShare("high", artifact.signer, signedCup(artifact.content), artifact.signature)
        ? VALID
        : invalid("bad CUP share");
    }
    case "cup": {
      if (artifact.content.height <= pool.latestCup.content.height) return STALE;
      if (ctx.config.canary === "cup-signature-unchecked") return VALID;
      return verifier.verifyThreshold("high", signedCup(artifact.content), artifact.signature)
        ? VALID
        : invalid("bad CUP signature");
    }
  }
}

function validateProposal(ctx: ConsensusContext, proposal: BlockProposal): Verdict {
  const { pool, membership, verifier, config } = ctx;
  const block = proposal.block;
  const h = block.height;
  if (h <= pool.finalizedHeight) {
    // The finalized block itself is still useful to a replica that lacks it (batch delivery).
    const finalizedHere = pool.finalizations.get(h)?.has(block.hash) === true && !pool.blocks.has(block.hash);
    if (!finalizedHere) return STALE;
  }
  // Hash and signature are pure functions of the proposal: checked once, even if it waits.
  const authenticity = once(proposal, verifier, () =>
    makeBlock(block).hash !== block.hash
      ? "block hash does not match its content"
      : verifier.verifyBasic(block.maker, signedProposal(h, block.hash), proposal.signature) ? "ok" : "bad proposal signature");
  if (authenticity !== "ok") return invalid(authenticity);
  const previousBeacon = pool.beacons.get(height(h - 1));
  if (previousBeacon === undefined) return WAIT;
  const rank = membership.rankOf(previousBeacon, block.maker);
  if (rank !== block.rank) return invalid(`maker ${block.maker} has rank ${rank}, claims ${block.rank}`);
  if (!membership.isBlockMaker(rank)) return invalid(`rank ${rank} is not a block maker`);
  const parent = pool.blocks.get(block.parent);
  if (parent === undefined || !pool.isNotarized(height(h - 1), block.parent)) return WAIT;
  if (parent.height !== h - 1) return invalid("parent is not at the previous height");
  if (block.context.timeUs < parent.context.timeUs) return invalid("block time goes backwards");
  if (block.context.timeUs > ctx.nowUs + PERMITTED_DRIFT_AT_VALIDATOR_US) return WAIT;
  // The rank delay paces what the notary endorses; a block that 2f+1 replicas already notarized
  // (or finalized) needs no pacing — a replica catching up would otherwise wait a unit delay at
  // every height whose block came from a maker of rank ≥ 1.
  const roundStart = pool.roundStartUs(h);
  const endorsed = pool.isNotarized(h, block.hash);
  if (h > pool.finalizedHeight && !endorsed && (roundStart === undefined || ctx.nowUs < roundStart + blockMakerDelayUs(config, rank))) {
    return WAIT;
  }
  const seen = ancestorIngress(ctx, parent);
  // Without the blocks between the executed state and the parent, duplicates cannot be judged yet.
  if (seen === undefined) return WAIT;
  const payloadProblem = checkPayload(ctx, block, seen);
  return payloadProblem === undefined ? VALID : invalid(payloadProblem);
}

/**
 * Payload validity: summary rule, limits, every message valid and not seen before on the chain
 * (`seen`: the ingress of the ancestors this replica has not executed yet; executed ones are in
 * its ingress history).
 */
export function checkPayload(ctx: ConsensusContext, block: Block, seen: Set<HashHex>): string | undefined {
  if (block.isSummary !== isSummaryHeight(block.height, ctx.config)) return "summary flag does not match the height";
  if (block.isSummary && block.ingress.length > 0) return "summary block carries ingress";
  if (block.ingress.length > ctx.config.maxIngressMessagesPerBlock) return `more than ${ctx.config.maxIngressMessagesPerBlock} ingress messages`;
  const xnetBytes = (block.xnet ?? []).reduce((sum, s) => sum + s.sizeBytes, 0);
  if (block.payloadBytes - xnetBytes > ctx.config.maxIngressBytesPerBlock) return `ingress payload exceeds ${ctx.config.maxIngressBytesPerBlock} bytes`;
  const xnetProblem = checkXNetPayload(ctx, block);
  if (xnetProblem !== undefined) return xnetProblem;
  for (const message of block.ingress) {
    const problem = checkIngress(message, ctx.ingressAuth, block.context.timeUs);
    if (problem !== undefined) return `ingress ${message.id.slice(0, 8)} invalid: ${problem}`;
    const duplicate = seen.has(message.id) || ctx.ingressAlreadyFinalized(message.id);
    const dedupSkipped = ctx.config.canary === "no-ingress-dedup" || ctx.config.canary === "validator-skips-ingress-dedup";
    if (duplicate && !dedupSkipped) return `ingress ${message.id.slice(0, 8)} duplicated`;
    seen.add(message.id);
  }
  return undefined;
}

function checkXNetPayload(ctx: ConsensusContext, block: Block): string | undefined {
  const slices = block.xnet ?? [];
  if (slices.length === 0) return undefined;
  if (block.isSummary) return "summary block carries stream slices";
  if (ctx.checkXNetSlice === undefined) return "stream slices on a subnet without XNet";
  const sources = new Set<string>();
  for (const slice of slices) {
    if (sources.has(slice.source)) return `two slices from subnet ${slice.source}`;
    sources.add(slice.source);
    const problem = ctx.checkXNetSlice(slice);
    if (problem !== undefined) return `slice from ${slice.source} invalid: ${problem}`;
  }
  return undefined;
}

/**
 * Ingress ids in the ancestors of `parent` above the height this replica has executed (those
 * below are in its ingress history), or undefined if one of those blocks is missing — e.g. right
 * after a catch-up package, before state sync: then duplicates cannot be excluded yet.
 */
function ancestorIngress(ctx: ConsensusContext, parent: Block): Set<HashHex> | undefined {
  const executed = ctx.lastDeliveredHeight();
  const ids = new Set<HashHex>();
  let cursor: Block | undefined = parent;
  while (cursor !== undefined && cursor.height > executed) {
    for (const m of cursor.ingress) ids.add(m.id);
    if (cursor.height === executed + 1) return ids;
    cursor = ctx.pool.blocks.get(cursor.parent);
  }
  return cursor === undefined ? undefined : ids;
}

export function validatorChanges(ctx: ConsensusContext): Change[] {
  const changes: Change[] = [];
  const { pool } = ctx;
  for (const artifact of [...pool.unvalidated.values()]) {
    const verdict = validate(ctx, artifact);
    switch (verdict.kind) {
      case "valid":
        changes.push({ kind: "validated", artifact });
        if (artifact.type === "proposal") changes.push(...equivocationFor(ctx, artifact));
        break;
      case "invalid":
        changes.push({ kind: "invalid", artifact, reason: verdict.reason });
        break;
      case "stale":
        pool.removeUnvalidated(artifact.id);
        break;
      case "wait":
        break;
    }
    if (changes.length > 0 && ctx.overBudget?.() === true) break;
  }
  return changes;
}

function equivocationFor(ctx: ConsensusContext, proposal: BlockProposal): Change[] {
  const block = proposal.block;
  if (ctx.pool.isDisqualified(block.height, block.maker)) return [];
  for (const other of ctx.pool.proposals.get(block.height)?.values() ?? []) {
    if (other.block.maker === block.maker && other.block.hash !== block.hash) {
      return [{ kind: "add", artifact: equivocationProof(other, proposal) }];
    }
  }
  return [];
}

// ---- aggregator ----------------------------------------------------------------------------------

/** Shares a notarization or finalization needs: 2f+1 (the canary bug: 2f). */
function multiSignatureThreshold(ctx: ConsensusContext): number {
  const threshold = ctx.membership.notarizationThreshold;
  return ctx.config.canary === "aggregate-with-2f" ? threshold - 1 : threshold;
}

/** Multi-signature shares per height and block, aggregated once 2f+1 agree and none exists yet. */
function aggregateMultiShares(
  ctx: ConsensusContext,
  sharesByHeight: ReadonlyMap<Height, ReadonlyMap<HashHex, ReadonlyMap<ReplicaId, { readonly signature: Signature }>>>,
  existing: ReadonlyMap<Height, ReadonlyMap<HashHex, unknown>>,
  signed: (h: Height, hash: HashHex) => string,
  build: (h: Height, hash: HashHex, multi: MultiSignature) => ConsensusArtifact,
): Change[] {
  const { pool, verifier } = ctx;
  const changes: Change[] = [];
  for (const [h, byHash] of sharesByHeight) {
    if (h <= pool.finalizedHeight) continue;
    for (const [hash, shares] of byHash) {
      if (shares.size < multiSignatureThreshold(ctx) || existing.get(h)?.has(hash) === true) continue;
      const multi = verifier.aggregateMulti(signed(h, hash), signatures(shares));
      assert(multi !== undefined, `validated shares for ${signed(h, hash)} failed to aggregate`);
      changes.push({ kind: "add", artifact: build(h, hash, multi) });
    }
  }
  return changes;
}

export function aggregatorChanges(ctx: ConsensusContext): Change[] {
  const { pool, verifier } = ctx;
  const changes: Change[] = [
    ...aggregateMultiShares(ctx, pool.notarizationShares, pool.notarizations, signedNotarization, notarization),
    ...aggregateMultiShares(ctx, pool.finalizationShares, pool.finalizations, signedFinalization, finalization),
  ];
  const nextBeacon = height(pool.beaconHeight + 1);
  const beaconShares = pool.beaconShares.get(nextBeacon);
  const parent = pool.beacons.get(pool.beaconHeight);
  if (beaconShares !== undefined && parent !== undefined && beaconShares.size >= verifier.thresholdOf("low")) {
    const signature = verifier.combineThreshold("low", signedBeacon(nextBeacon, parent.hash), signatures(beaconShares));
    if (signature !== undefined) changes.push({ kind: "add", artifact: beacon(nextBeacon, parent.hash, signature) });
  }
  for (const [h, byContent] of pool.cupShares) {
    if (h <= pool.latestCup.content.height) continue;
    for (const shares of byContent.values()) {
      if (shares.size < verifier.thresholdOf("high")) continue;
      const first = shares.values().next().value;
      assert(first !== undefined, "empty CUP share set");
      const signature = verifier.combineThreshold("high", signedCup(first.content), signatures(shares));
      if (signature !== undefined) changes.push({ kind: "add", artifact: catchUpPackage(first.content, signature) });
    }
  }
  return changes;
}

function signatures<S extends { readonly signature: Signature }>(
  shares: ReadonlyMap<ReplicaId, S>,
): Map<ReplicaId, S["signature"]> {
  const out = new Map<ReplicaId, S["signature"]>();
  for (const [signer, share] of shares) out.set(signer, share.signature);
  return out;
}

// ---- random beacon maker ---------------------------------------------------------------------------

export function beaconMakerChanges(ctx: ConsensusContext): Change[] {
  const { pool, self, signer } = ctx;
  const h = height(pool.beaconHeight + 1);
  if (pool.notarizedHeight < pool.beaconHeight) return [];
  if (pool.beaconShares.get(h)?.has(self) === true) return [];
  const parent = pool.beacons.get(pool.beaconHeight);
  assert(parent !== undefined, `beacon at beacon height ${pool.beaconHeight} missing`);
  const signature = signer.signThresholdShare("low", signedBeacon(h, parent.hash));
  return [{ kind: "add", artifact: beaconShare(h, parent.hash, self, signature) }];
}

// ---- block maker -----------------------------------------------------------------------------------

/** When this replica may next propose, or undefined if it is not a maker at the next height. */
export function blockMakerReadyAtUs(ctx: ConsensusContext): TimeUs | undefined {
  const { pool, membership, self } = ctx;
  const h = height(pool.notarizedHeight + 1);
  const previousBeacon = pool.beacons.get(height(h - 1));
  const roundStart = pool.roundStartUs(h);
  if (previousBeacon === undefined || roundStart === undefined) return undefined;
  const rank = membership.rankOf(previousBeacon, self);
  if (!membership.isBlockMaker(rank)) return undefined;
  for (const proposal of pool.proposals.get(h)?.values() ?? []) {
    if (proposal.block.maker === self) return undefined;
  }
  return (roundStart + blockMakerDelayUs(ctx.config, rank)) as TimeUs;
}

export function blockMakerChanges(ctx: ConsensusContext): Change[] {
  const readyAt = blockMakerReadyAtUs(ctx);
  if (readyAt === undefined || ctx.nowUs < readyAt) return [];
  const { pool, membership, self } = ctx;
  const h = height(pool.notarizedHeight + 1);
  const previousBeacon = pool.beacons.get(height(h - 1));
  assert(previousBeacon !== undefined, "block maker ready without a beacon");
  const rank = membership.rankOf(previousBeacon, self);
  for (const proposal of pool.proposals.get(h)?.values() ?? []) {
    if (proposal.block.rank < rank && !pool.isDisqualified(h, proposal.block.maker)) return [];
  }
  const parent = pool.notarizedBlocks(height(h - 1))[0];
  assert(parent !== undefined, `no notarized block at notarized height ${h - 1}`);
  const block = buildBlock(ctx, parent, h, rank);
  return [{ kind: "add", artifact: proposalOf(block, ctx.signer.signBasic(signedProposal(h, block.hash))) }];
}

export function buildBlock(ctx: ConsensusContext, parent: Block, h: Height, rank: number): Block {
  const timeUs = (ctx.nowUs > parent.context.timeUs ? ctx.nowUs : parent.context.timeUs) as TimeUs;
  const isSummary = isSummaryHeight(h, ctx.config);
  const ingress = isSummary ? [] : selectIngress(ctx, parent, timeUs);
  const xnet = isSummary ? [] : (ctx.xnetPayload?.(parent) ?? []);
  return makeBlock({ parent: parent.hash, height: h, rank, maker: ctx.self, context: { timeUs }, isSummary, ingress, ...(xnet.length === 0 ? {} : { xnet }) });
}

/** Ingress selection: valid at the block time, not on the chain yet, within the IC's limits. */
function selectIngress(ctx: ConsensusContext, parent: Block, timeUs: TimeUs): IngressMessage[] {
  const seen = ancestorIngress(ctx, parent);
  // Missing ancestors (state not synced yet): an empty payload is the only one known to be valid.
  if (seen === undefined) return [];
  const chosen: IngressMessage[] = [];
  let bytes = 0;
  for (const message of ctx.ingressCandidates()) {
    if (chosen.length >= ctx.config.maxIngressMessagesPerBlock) break;
    if (bytes + message.sizeBytes > ctx.config.maxIngressBytesPerBlock) continue;
    const duplicate = seen.has(message.id) || ctx.ingressAlreadyFinalized(message.id);
    if (duplicate && ctx.config.canary !== "no-ingress-dedup") continue;
    if (checkIngress(message, ctx.ingressAuth, timeUs) !== undefined) continue;
    chosen.push(message);
    bytes += message.sizeBytes;
  }
  return chosen;
}

// ---- notary ----------------------------------------------------------------------------------------

/** Lowest-ranked proposals at h whose makers are not disqualified (several if a maker equivocated). */
function lowestRankedProposals(ctx: ConsensusContext, h: Height): BlockProposal[] {
  const candidates = [...(ctx.pool.proposals.get(h)?.values() ?? [])].filter(
    (p) => !ctx.pool.isDisqualified(h, p.block.maker),
  );
  if (candidates.length === 0) return [];
  // Canary bug: every valid proposal counts as "lowest ranked".
  if (ctx.config.canary === "notarize-two-blocks") return candidates.sort((a, b) => (a.block.hash < b.block.hash ? -1 : 1));
  const best = Math.min(...candidates.map((p) => p.block.rank));
  return candidates.filter((p) => p.block.rank === best).sort((a, b) => (a.block.hash < b.block.hash ? -1 : 1));
}

export function notaryReadyAtUs(ctx: ConsensusContext): TimeUs | undefined {
  const { pool, config } = ctx;
  const h = height(pool.notarizedHeight + 1);
  const roundStart = pool.roundStartUs(h);
  if (roundStart === undefined) return undefined;
  let earliest: number | undefined;
  for (const proposal of lowestRankedProposals(ctx, h)) {
    if (pool.notarizationShares.get(h)?.get(proposal.block.hash)?.has(ctx.self) === true) continue;
    const delay = notaryDelayWithCertificationUs(ctx, proposal.block.rank);
    if (delay === undefined) continue;
    const at = roundStart + delay;
    earliest = earliest === undefined ? at : Math.min(earliest, at);
  }
  return earliest as TimeUs | undefined;
}

export function notaryChanges(ctx: ConsensusContext): Change[] {
  const { pool, config, self, signer } = ctx;
  const h = height(pool.notarizedHeight + 1);
  const roundStart = pool.roundStartUs(h);
  if (roundStart === undefined) return [];
  const changes: Change[] = [];
  for (const proposal of lowestRankedProposals(ctx, h)) {
    const hash = proposal.block.hash;
    if (pool.notarizationShares.get(h)?.get(hash)?.has(self) === true) continue;
    const delay = notaryDelayWithCertificationUs(ctx, proposal.block.rank);
    if (delay === undefined || ctx.nowUs < roundStart + delay) continue;
    changes.push({ kind: "add", artifact: notarizationShare(h, hash, self, signer.signMultiShare(signedNotarization(h, hash))) });
  }
  return changes;
}

// ---- finalizer ---------------------------------------------------------------------------------------

/**
 * The finalization rule (ic-protocol.md §1.6): share for B at h only if B is the one notarized block
 * at h this replica knows and it notarization-shared no other block at h.
 */
export function finalizerChanges(ctx: ConsensusContext): Change[] {
  const { pool, self, signer } = ctx;
  const changes: Change[] = [];
  for (let h = height(pool.finalizedHeight + 1); h <= pool.notarizedHeight; h = height(h + 1)) {
    if (ctx.config.canary === "finalizer-ignores-rule") {
      changes.push(...finalizeEveryNotarized(ctx, h));
      continue;
    }
    if (hasFinalizationShareAt(ctx, h)) continue;
    const notarized = pool.notarizedBlocks(h);
    const only = notarized[0];
    if (notarized.length !== 1 || only === undefined) continue;
    if (sharedOtherNotarization(ctx, h, only.hash) && ctx.config.canary !== "finalize-after-other-notarization") continue;
    changes.push({
      kind: "add",
      artifact: finalizationShare(h, only.hash, self, signer.signMultiShare(signedFinalization(h, only.hash))),
    });
  }
  return changes;
}

/** Canary bug: a finalization share for every notarized block at h (the rule ignored). */
function finalizeEveryNotarized(ctx: ConsensusContext, h: Height): Change[] {
  const out: Change[] = [];
  for (const block of ctx.pool.notarizedBlocks(h)) {
    if (block.height !== h || ctx.pool.finalizationShares.get(h)?.get(block.hash)?.has(ctx.self) === true) continue;
    out.push({ kind: "add", artifact: finalizationShare(h, block.hash, ctx.self, ctx.signer.signMultiShare(signedFinalization(h, block.hash))) });
  }
  return out;
}

function hasFinalizationShareAt(ctx: ConsensusContext, h: Height): boolean {
  for (const shares of ctx.pool.finalizationShares.get(h)?.values() ?? []) {
    if (shares.has(ctx.self)) return true;
  }
  return false;
}

function sharedOtherNotarization(ctx: ConsensusContext, h: Height, hash: HashHex): boolean {
  for (const [otherHash, shares] of ctx.pool.notarizationShares.get(h) ?? []) {
    if (otherHash !== hash && shares.has(ctx.self)) return true;
  }
  return false;
}

// ---- catch-up package maker ----------------------------------------------------------------------------

export function cupMakerChanges(ctx: ConsensusContext): Change[] {
  const { pool, config, self, signer } = ctx;
  const interval = config.dkgIntervalLength + 1;
  const delivered = ctx.lastDeliveredHeight();
  const s = height(Math.floor(delivered / interval) * interval);
  if (s <= pool.latestCup.content.height) return [];
  const block = pool.finalizedBlock(s);
  const beaconAtS = pool.beacons.get(s);
  const stateHash = ctx.stateHashAt(s);
  if (block === undefined || beaconAtS === undefined || stateHash === undefined) return [];
  for (const shares of pool.cupShares.get(s)?.values() ?? []) if (shares.has(self)) return [];
  const content = { height: s, block, beacon: beaconAtS, stateHash };
  const share = cupShare(content, self, signer.signThresholdShare("high", signedCup(content)));
  return [{ kind: "add", artifact: share }];
}

export { cupKey };

/** One pass of every component, in the IC's order. */
export function onStateChange(ctx: ConsensusContext): Change[] {
  for (const component of [validatorChanges, aggregatorChanges, beaconMakerChanges, blockMakerChanges, notaryChanges, finalizerChanges, cupMakerChanges]) {
    const changes = component(ctx);
    if (changes.length > 0) return changes;
  }
  return [];
}
