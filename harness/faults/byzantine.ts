// Byzantine behaviours: each one runs the honest code and rewrites what it decides or sends
// (DESIGN.md rule 6). Every malicious act is written to the trace with `malicious: true`.
import { makeBlock, proposalOf, signedProposal, notarizationShare, finalizationShare, signedNotarization, signedFinalization, type BlockProposal } from "../consensus/artifacts.ts";
import type { Change, ConsensusContext } from "../consensus/consensus.ts";
import type { NodeSigner } from "../crypto/interfaces.ts";
import { sha256 } from "../crypto/sha256.ts";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import type { WireItem } from "../p2p/messages.ts";
import type { BehaviourEnv, ReplicaBehaviour } from "../replica/behaviour.ts";
export type { BehaviourEnv };
import { height, replicaId, timeUs, type HashHex, type ReplicaId } from "../types.ts";

export interface ActiveWindow {
  readonly fromUs: number;
  readonly toUs: number | undefined;
}
export const isActive = (w: ActiveWindow, nowUs: number): boolean => nowUs >= w.fromUs && (w.toUs === undefined || nowUs < w.toUs);

type Side = "A" | "B";

/** Shared knowledge of a colluding group: which of their twin blocks each side may see. */
export class CollusionRing {
  readonly twins = new Map<HashHex, Side>();
  constructor(readonly members: ReadonlySet<ReplicaId>, readonly sideA: ReadonlySet<ReplicaId>) {}
  sideOf(peer: ReplicaId): Side | "both" {
    return this.members.has(peer) ? "both" : this.sideA.has(peer) ? "A" : "B";
  }
}

/** Block hash an outgoing item is about, if any (proposals, adverts, shares, aggregates). */
function referencedBlock(item: WireItem): HashHex | undefined {
  if (item.kind === "advert") return item.type === "proposal" ? (item.id.slice(1) as HashHex) : undefined;
  if (item.kind !== "artifact") return undefined;
  const a = item.artifact;
  switch (a.type) {
    case "proposal":
      return a.block.hash;
    case "notarization-share":
    case "finalization-share":
    case "notarization":
    case "finalization":
      return a.blockHash;
    default:
      return undefined;
  }
}

/** Makes a second, different, validly signed proposal at the same height and rank. */
function twinOf(proposal: BlockProposal, signer: NodeSigner): BlockProposal {
  const b = proposal.block;
  const twin = makeBlock({ parent: b.parent, height: b.height, rank: b.rank, maker: b.maker, context: { timeUs: timeUs(b.context.timeUs + 1) }, isSummary: b.isSummary, ingress: b.ingress.slice(0, Math.max(0, b.ingress.length - 1)) });
  return proposalOf(twin, signer.signBasic(signedProposal(twin.height, twin.hash)));
}

function ownProposals(changes: readonly Change[], self: ReplicaId): BlockProposal[] {
  const out: BlockProposal[] = [];
  for (const c of changes) {
    if (c.kind === "add" && c.artifact.type === "proposal" && c.artifact.block.maker === self) out.push(c.artifact);
  }
  return out;
}

function withTwins(changes: Change[], env: BehaviourEnv, twins: Map<HashHex, Side>): Change[] {
  const extra: Change[] = [];
  for (const proposal of ownProposals(changes, env.self)) {
    if (twins.has(proposal.block.hash)) continue;
    const twin = twinOf(proposal, env.signer);
    twins.set(proposal.block.hash, "A");
    twins.set(twin.block.hash, "B");
    extra.push({ kind: "add", artifact: twin });
    env.log({ kind: "fault.equivocate", malicious: true, detail: { height: proposal.block.height, a: proposal.block.hash.slice(0, 12), b: twin.block.hash.slice(0, 12) } });
  }
  return extra.length === 0 ? changes : [...changes, ...extra];
}

export function equivocatingMaker(env: BehaviourEnv, window: ActiveWindow): ReplicaBehaviour {
  const twins = new Map<HashHex, Side>();
  const peers = Array.from({ length: env.n }, (_, i) => replicaId(i)).filter((p) => p !== env.self);
  const sideA = new Set(peers.slice(0, Math.ceil(peers.length / 2)));
  return {
    rewriteChanges: (changes) => (isActive(window, env.now()) ? withTwins(changes, env, twins) : changes),
    filterOutgoing: (to, item) => {
      const hash = referencedBlock(item);
      const version = hash === undefined ? undefined : twins.get(hash);
      if (version === undefined || item.kind === "artifact" && item.artifact.type !== "proposal") return [item];
      return version === (sideA.has(to) ? "A" : "B") ? [item] : [];
    },
  };
}

export function colluder(env: BehaviourEnv, window: ActiveWindow, ring: CollusionRing): ReplicaBehaviour {
  const signed = new Set<string>();
  return {
    rewriteChanges: (changes, ctx) => {
      if (!isActive(window, env.now())) return changes;
      const extra = signEverything(ctx, env, signed);
      return withTwins(extra.length === 0 ? changes : [...changes, ...extra], env, ring.twins);
    },
    filterOutgoing: (to, item) => {
      const hash = referencedBlock(item);
      const version = hash === undefined ? undefined : ring.twins.get(hash);
      if (version === undefined) return [item];
      const side = ring.sideOf(to);
      return side === "both" || side === version ? [item] : [];
    },
  };
}

/** Heights below its own finalized tip that a colluder still signs for (the other side may lag). */
const COLLUDER_LOOKBACK = 4;

/**
 * Notarization shares for every proposal and finalization shares for every notarized block, also
 * a few heights below its own finalized tip, where the other side of the fork is still deciding.
 */
function signEverything(ctx: ConsensusContext, env: BehaviourEnv, signed: Set<string>): Change[] {
  const { pool } = ctx;
  const out: Change[] = [];
  const top = height(pool.notarizedHeight + 1);
  const bottom = height(Math.max(1, pool.finalizedHeight - COLLUDER_LOOKBACK));
  const once = (key: string): boolean => !signed.has(key) && signed.add(key) !== undefined;
  for (let h = bottom; h <= top; h = height(h + 1)) {
    if (pool.roundStartUs(h) === undefined) continue;
    for (const proposal of pool.proposals.get(h)?.values() ?? []) {
      const hash = proposal.block.hash;
      if (pool.notarizationShares.get(h)?.get(hash)?.has(env.self) === true || !once(`N${h}|${hash}`)) continue;
      out.push({ kind: "add", artifact: notarizationShare(h, hash, env.self, env.signer.signMultiShare(signedNotarization(h, hash))) });
      env.log({ kind: "fault.notarize-any", malicious: true, detail: { height: h, block: hash.slice(0, 12) } });
    }
    for (const block of pool.notarizedBlocks(h)) {
      if (block.height !== h || pool.finalizationShares.get(h)?.get(block.hash)?.has(env.self) === true || !once(`F${h}|${block.hash}`)) continue;
      out.push({ kind: "add", artifact: finalizationShare(h, block.hash, env.self, env.signer.signMultiShare(signedFinalization(h, block.hash))) });
      env.log({ kind: "fault.finalize-any", malicious: true, detail: { height: h, block: block.hash.slice(0, 12) } });
    }
  }
  if (signed.size > 10_000) signed.clear();
  return out;
}

export function silent(env: BehaviourEnv, window: ActiveWindow): ReplicaBehaviour {
  let announced = false;
  return {
    rewriteChanges: (changes) => changes,
    filterOutgoing: (_to, item) => {
      if (!isActive(window, env.now())) {
        announced = false;
        return [item];
      }
      if (!announced) env.log({ kind: "fault.silent", malicious: true });
      announced = true;
      return [];
    },
  };
}

export function withholding(env: BehaviourEnv, window: ActiveWindow, types: ReadonlySet<string>): ReplicaBehaviour {
  const logged = new Set<string>();
  return {
    rewriteChanges: (changes) => changes,
    filterOutgoing: (_to, item) => {
      if (!isActive(window, env.now())) return [item];
      const type = item.kind === "artifact" ? item.artifact.type : item.kind === "advert" ? item.type : undefined;
      if (type === undefined || !types.has(type)) return [item];
      const id = item.kind === "artifact" ? item.artifact.id : item.kind === "advert" ? item.id : "";
      if (!logged.has(id)) {
        logged.add(id);
        env.log({ kind: "fault.withhold", malicious: true, detail: { type, id: id.slice(0, 16) } });
      }
      return [];
    },
  };
}

/** Divergent state transition: values written while active get a marker appended. */
export function divergent(env: BehaviourEnv, window: ActiveWindow): ReplicaBehaviour {
  let logged = false;
  return {
    rewriteChanges: (changes) => changes,
    filterOutgoing: (_to, item) => [item],
    corruptor: (h, _key, value) => {
      if (!isActive(window, env.now())) return value;
      if (!logged) env.log({ kind: "fault.diverge", malicious: true, detail: { height: h } });
      logged = true;
      return `${value}~`;
    },
  };
}

/** Runs several behaviours in sequence (a replica may carry more than one fault). */
/** How a garbler spoils a bundle's bytes. */
const GARBLINGS = ["bit-flip", "truncate", "noise"] as const;

/**
 * Sends garbage on the wire: while active, `percent` of its bundles (chosen by a hash of who, to
 * whom and the bundle's number, so runs replay) get one bit flipped, are cut short, or are
 * replaced by noise of the same length. Each act is logged.
 */
export function garbler(env: BehaviourEnv, window: ActiveWindow, percent: number): ReplicaBehaviour {
  let sent = 0;
  return {
    rewriteChanges: (changes) => changes,
    filterOutgoing: (_to, item) => [item],
    rewriteWire: (to, bytes) => {
      if (!isActive(window, env.now()) || bytes.length === 0) return bytes;
      const draw = sha256(utf8ToBytes(`garble|${env.self}|${to}|${sent++}`));
      const word = (i: number): number => new DataView(draw.buffer, draw.byteOffset + 4 * i, 4).getUint32(0);
      if (word(0) % 100 >= percent) return bytes;
      const how = GARBLINGS[word(1) % GARBLINGS.length] as (typeof GARBLINGS)[number];
      const out = how === "truncate" ? bytes.slice(0, word(2) % bytes.length) : bytes.slice();
      if (how === "bit-flip") {
        const bit = word(2) % (8 * bytes.length);
        out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
      }
      if (how === "noise") for (let i = 0; i < out.length; i++) out[i] = (draw[i % 32] as number) ^ (i & 0xff);
      env.log({ kind: "fault.garble", malicious: true, detail: { to, how, bytes: bytes.length } });
      return out;
    },
  };
}

export function compose(behaviours: readonly ReplicaBehaviour[]): ReplicaBehaviour {
  const corruptor = behaviours.find((b) => b.corruptor !== undefined)?.corruptor;
  const sliceRewriters = behaviours.flatMap((b) => (b.rewriteXNetSlice === undefined ? [] : [b.rewriteXNetSlice]));
  const wireRewriters = behaviours.flatMap((b) => (b.rewriteWire === undefined ? [] : [b.rewriteWire]));
  const composed: ReplicaBehaviour = {
    ...(sliceRewriters.length === 0 ? {} : { rewriteXNetSlice: (slice) => sliceRewriters.reduce((acc, rewrite) => rewrite(acc), slice) }),
    ...(wireRewriters.length === 0 ? {} : { rewriteWire: (to, bytes) => wireRewriters.reduce((acc, rewrite) => rewrite(to, acc), bytes) }),
    rewriteChanges: (changes, ctx) => behaviours.reduce((acc, b) => b.rewriteChanges(acc, ctx), changes),
    filterOutgoing: (to, item, ctx) => {
      let items: readonly WireItem[] = [item];
      for (const b of behaviours) items = items.flatMap((i) => b.filterOutgoing(to, i, ctx));
      return items;
    },
  };
  return corruptor === undefined ? composed : { ...composed, corruptor };
}
