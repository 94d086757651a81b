// Consensus artifacts (ic-protocol.md §1.2). Every artifact has a content id and an estimated wire
// size; the simulated network charges bandwidth by that size.
import type { MultiSignature, Signature } from "../crypto/interfaces.ts";
import { domainHash } from "../crypto/hash.ts";
import type { HashHex, Height, ReplicaId, TimeUs } from "../types.ts";
import type { IngressMessage } from "./ingress.ts";
import type { CertifiedSlice } from "../routing/xnet.ts";

export interface BlockContext {
  readonly timeUs: TimeUs;
}

export interface Block {
  readonly hash: HashHex;
  readonly parent: HashHex;
  readonly height: Height;
  readonly rank: number;
  readonly maker: ReplicaId;
  readonly context: BlockContext;
  /** Summary blocks (every dkgInterval+1 heights) carry no ingress. */
  readonly isSummary: boolean;
  readonly ingress: readonly IngressMessage[];
  /** Certified stream slices from other subnets (multi-subnet runs only), at most one per source. */
  readonly xnet?: readonly CertifiedSlice[];
  readonly payloadBytes: number;
}

export interface BlockProposal {
  readonly type: "proposal";
  readonly id: string;
  readonly block: Block;
  readonly signature: Signature;
  readonly sizeBytes: number;
}

interface ShareBase {
  readonly id: string;
  readonly height: Height;
  readonly signer: ReplicaId;
  readonly signature: Signature;
  readonly sizeBytes: number;
}

export interface NotarizationShare extends ShareBase {
  readonly type: "notarization-share";
  readonly blockHash: HashHex;
}
export interface FinalizationShare extends ShareBase {
  readonly type: "finalization-share";
  readonly blockHash: HashHex;
}
export interface Notarization {
  readonly type: "notarization";
  readonly id: string;
  readonly height: Height;
  readonly blockHash: HashHex;
  readonly multi: MultiSignature;
  readonly sizeBytes: number;
}
export interface Finalization {
  readonly type: "finalization";
  readonly id: string;
  readonly height: Height;
  readonly blockHash: HashHex;
  readonly multi: MultiSignature;
  readonly sizeBytes: number;
}
export interface RandomBeaconShare extends ShareBase {
  readonly type: "beacon-share";
  readonly parent: HashHex;
}
export interface RandomBeacon {
  readonly type: "beacon";
  readonly id: string;
  readonly height: Height;
  readonly parent: HashHex;
  readonly signature: Signature;
  /** H(signature): what the next beacon chains to and what seeds the ranks. */
  readonly hash: HashHex;
  readonly sizeBytes: number;
}
export interface EquivocationProof {
  readonly type: "equivocation-proof";
  readonly id: string;
  readonly height: Height;
  readonly signer: ReplicaId;
  readonly hash1: HashHex;
  readonly signature1: Signature;
  readonly hash2: HashHex;
  readonly signature2: Signature;
  readonly sizeBytes: number;
}
export interface CatchUpContent {
  readonly height: Height;
  readonly block: Block;
  readonly beacon: RandomBeacon;
  readonly stateHash: HashHex;
}
export interface CatchUpShare extends ShareBase {
  readonly type: "cup-share";
  readonly content: CatchUpContent;
}
export interface CatchUpPackage {
  readonly type: "cup";
  readonly id: string;
  readonly content: CatchUpContent;
  readonly signature: Signature;
  readonly sizeBytes: number;
}

export type ConsensusArtifact =
  | BlockProposal
  | NotarizationShare
  | Notarization
  | FinalizationShare
  | Finalization
  | RandomBeaconShare
  | RandomBeacon
  | EquivocationProof
  | CatchUpShare
  | CatchUpPackage;

export type ArtifactType = ConsensusArtifact["type"];

export function artifactHeight(artifact: ConsensusArtifact): Height {
  return artifact.type === "proposal"
    ? artifact.block.height
    : artifact.type === "cup"
      ? artifact.content.height
      : artifact.height;
}

// ---- canonical signed contents (fixed field order; a domain per role) -------------------------

export const signedProposal = (h: Height, blockHash: HashHex): string => `proposal|${h}|${blockHash}`;
export const signedNotarization = (h: Height, blockHash: HashHex): string => `notarization|${h}|${blockHash}`;
export const signedFinalization = (h: Height, blockHash: HashHex): string => `finalization|${h}|${blockHash}`;
export const signedBeacon = (h: Height, parent: HashHex): string => `beacon|${h}|${parent}`;
export const signedCup = (c: CatchUpContent): string =>
  `cup|${c.height}|${c.block.hash}|${c.beacon.hash}|${c.stateHash}`;

export function blockHash(b: Omit<Block, "hash">): HashHex {
  const ingressIds = b.ingress.map((m) => m.id).join(",");
  const xnet = b.xnet === undefined || b.xnet.length === 0 ? "" : `|xnet:${b.xnet.map((s) => s.id).join(",")}`;
  return domainHash(
    "ic-block",
    `${b.parent}|${b.height}|${b.rank}|${b.maker}|${b.context.timeUs}|${b.isSummary ? 1 : 0}|${ingressIds}${xnet}`,
  );
}

/** Header bytes (hashes, height, rank, context, signature) before the payload. */
const BLOCK_HEADER_BYTES = 256;
const SHARE_BYTES = 160;
const MULTI_SIG_BASE_BYTES = 120;

export function makeBlock(fields: Omit<Block, "hash" | "payloadBytes">): Block {
  const payloadBytes = fields.ingress.reduce((sum, m) => sum + m.sizeBytes, 0) + (fields.xnet ?? []).reduce((sum, s) => sum + s.sizeBytes, 0);
  const withSize = { ...fields, payloadBytes };
  return { ...withSize, hash: blockHash(withSize) };
}

export function proposalOf(block: Block, signature: Signature): BlockProposal {
  return {
    type: "proposal",
    id: `P${block.hash}`,
    block,
    signature,
    sizeBytes: BLOCK_HEADER_BYTES + block.payloadBytes,
  };
}

export function notarizationShare(h: Height, hash: HashHex, signer: ReplicaId, signature: Signature): NotarizationShare {
  return { type: "notarization-share", id: `NS${h}|${hash}|${signer}`, height: h, blockHash: hash, signer, signature, sizeBytes: SHARE_BYTES };
}
export function finalizationShare(h: Height, hash: HashHex, signer: ReplicaId, signature: Signature): FinalizationShare {
  return { type: "finalization-share", id: `FS${h}|${hash}|${signer}`, height: h, blockHash: hash, signer, signature, sizeBytes: SHARE_BYTES };
}
export function notarization(h: Height, hash: HashHex, multi: MultiSignature): Notarization {
  return { type: "notarization", id: `N${h}|${hash}`, height: h, blockHash: hash, multi, sizeBytes: MULTI_SIG_BASE_BYTES + 4 * multi.signers.length };
}
export function finalization(h: Height, hash: HashHex, multi: MultiSignature): Finalization {
  return { type: "finalization", id: `F${h}|${hash}`, height: h, blockHash: hash, multi, sizeBytes: MULTI_SIG_BASE_BYTES + 4 * multi.signers.length };
}
export function beaconShare(h: Height, parent: HashHex, signer: ReplicaId, signature: Signature): RandomBeaconShare {
  return { type: "beacon-share", id: `BS${h}|${signer}`, height: h, parent, signer, signature, sizeBytes: SHARE_BYTES };
}
export function beacon(h: Height, parent: HashHex, signature: Signature): RandomBeacon {
  const hash = domainHash("ic-random-beacon", signature);
  return { type: "beacon", id: `B${h}`, height: h, parent, signature, hash, sizeBytes: SHARE_BYTES };
}
export function cupShare(content: CatchUpContent, signer: ReplicaId, signature: Signature): CatchUpShare {
  return { type: "cup-share", id: `CS${content.height}|${content.stateHash}|${signer}`, height: content.height, content, signer, signature, sizeBytes: SHARE_BYTES + BLOCK_HEADER_BYTES };
}
export function catchUpPackage(content: CatchUpContent, signature: Signature): CatchUpPackage {
  // The id names the whole content: a CUP over the same block with another state hash (forged) must
  // not share an id with the genuine one, or whichever arrives first would shadow the other.
  return { type: "cup", id: `C${content.height}|${content.block.hash}|${content.stateHash}`, content, signature, sizeBytes: 2 * BLOCK_HEADER_BYTES + SHARE_BYTES };
}
export function equivocationProof(a: BlockProposal, b: BlockProposal): EquivocationProof {
  const [x, y] = a.block.hash < b.block.hash ? [a, b] : [b, a];
  return equivocationProofOf(x.block.height, x.block.maker, x.block.hash, x.signature, y.block.hash, y.signature);
}
export function equivocationProofOf(h: Height, signer: ReplicaId, hash1: HashHex, signature1: Signature, hash2: HashHex, signature2: Signature): EquivocationProof {
  return { type: "equivocation-proof", id: `E${h}|${signer}`, height: h, signer, hash1, signature1, hash2, signature2, sizeBytes: 2 * SHARE_BYTES };
}
