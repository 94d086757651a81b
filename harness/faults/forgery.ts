// The `forge` fault (DESIGN.md rule 6): a Byzantine replica runs the honest code and rewrites what
// it sends into forged or replayed artifacts, one kind per `ForgeArtifact` mode. A replica can
// sign only as itself, so every forgery carries its own signature where another's (or the
// subnet's threshold signature) belongs, or replays something genuine where it does not belong.
// Honest replicas must refuse all of it; issue 11 (C3) is about the code that does the refusing,
// which no honest run reaches. Every forged artifact is logged once as malicious in the trace.
import { beacon, catchUpPackage, makeBlock, notarizationShare, proposalOf, signedBeacon, signedCup, signedProposal, type Block, type BlockProposal, type CatchUpContent, type CatchUpPackage, type CatchUpShare, type ConsensusArtifact } from "../consensus/artifacts.ts";
import type { Change, ConsensusContext } from "../consensus/consensus.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import { reconstruct, labeledChildren, lookupSubtree, leaf, type HashTree } from "../crypto/hash-tree.ts";
import { domainHash } from "../crypto/hash.ts";
import type { Signature } from "../crypto/interfaces.ts";
import type { StateSnapshot } from "../replica/interfaces.ts";
import { decodeKvSnapshot } from "../replica/kv-state-machine.ts";
import { decodeCheckpointFiles, encodeCheckpointFiles } from "../state/state-sync.ts";
import type { WireItem } from "../p2p/messages.ts";
import { certificationMessageOf, type Certification, type CertificationShare } from "../replica/certification.ts";
import type { BehaviourEnv, ReplicaBehaviour } from "../replica/behaviour.ts";
import { certifiedSlice, subnetLabel, type CertifiedSlice } from "../routing/xnet.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { height, replicaId, timeUs, type HashHex, type Height, type ReplicaId, type TimeUs } from "../types.ts";
import { isActive, type ActiveWindow } from "./byzantine.ts";
import type { ForgeArtifact } from "./spec.ts";

/** Messages a replayed-ingress proposal re-includes, and how far back on the chain it looks. */
const REPLAYED_MESSAGES_MAX = 3;
const REPLAY_LOOKBACK_HEIGHTS = 8;
/** How many heights back a replayed certification share comes from. */
const SHARE_REPLAY_DISTANCE = 3;

export function forger(env: BehaviourEnv, window: ActiveWindow, artifacts: readonly ForgeArtifact[]): ReplicaBehaviour {
  const modes = new Set(artifacts);
  const victim = replicaId((env.self + 1) % env.n);
  const logged = new Set<string>();
  /** Logs each forged artifact once (a forger resends to every peer, and retransmits). */
  const logOnce = (kind: string, id: string, detail: Record<string, string | number>): void => {
    if (logged.has(id)) return;
    logged.add(id);
    if (logged.size > 20_000) logged.clear();
    env.log({ kind, malicious: true, detail });
  };
  const certifications = modes.has("certification") ? new CertificationForger(env, victim, logOnce) : undefined;
  const active = (): boolean => isActive(window, env.now());
  return {
    rewriteChanges: (changes, ctx) => (active() && modes.has("replayed-ingress") ? withReplayedIngress(changes, ctx, env, logOnce) : changes),
    filterOutgoing: (_to, item, ctx) => {
      if (!active()) return [item];
      const out: WireItem[] = [item];
      if (item.kind === "artifact") {
        const legacy = legacyForgery(item.artifact, env, victim, modes);
        if (legacy !== undefined) {
          logOnce("fault.forge", legacy.id, { type: legacy.type, id: legacy.id.slice(0, 16), victim });
          out.push({ kind: "artifact", artifact: legacy });
        }
        if (modes.has("cup") && item.artifact.type === "cup-share" && item.artifact.signer === env.self) {
          for (const cup of forgedCups(item.artifact, ctx, env)) {
            logOnce("fault.forge-cup", cup.id, { height: cup.content.height, state: cup.content.stateHash.slice(0, 12) });
            out.push({ kind: "artifact", artifact: cup });
          }
        }
      }
      if (certifications !== undefined) out.push(...certifications.extraFor(item));
      if (modes.has("state-sync-chunk") && item.kind === "state-response") {
        const corrupted = corruptSnapshot(item.snapshot);
        if (corrupted !== undefined) {
          logOnce("fault.forge-state-chunk", `S${item.snapshot.height}|${corrupted.chunk}`, { height: item.snapshot.height, chunk: corrupted.chunk });
          out[0] = { kind: "state-response", snapshot: corrupted.snapshot };
        }
      }
      return out;
    },
    ...(modes.has("xnet-slice")
      ? {
          rewriteXNetSlice: (slice: CertifiedSlice): CertifiedSlice => {
            if (!active()) return slice;
            const forged = forgedSlice(slice);
            if (forged === undefined) return slice;
            logOnce("fault.forge-xnet-slice", forged.slice.id, { destination: slice.destination.slice(0, 11), height: slice.certification.height, how: forged.how });
            return forged.slice;
          },
        }
      : {}),
  };
}

// ---- the forger's original acts: shares in a victim's name, blocks with unsigned ingress -------------

function legacyForgery(artifact: ConsensusArtifact, env: BehaviourEnv, victim: ReplicaId, modes: ReadonlySet<ForgeArtifact>): ConsensusArtifact | undefined {
  if (modes.has("notarization-share") && artifact.type === "notarization-share" && artifact.signer === env.self) {
    // The forger's own signature under the victim's name: a replica can never sign as another.
    return notarizationShare(artifact.height, artifact.blockHash, victim, artifact.signature);
  }
  if (modes.has("invalid-ingress") && artifact.type === "proposal" && artifact.block.maker === env.self && !artifact.block.isSummary) {
    const bogus: IngressMessage = { ...(artifact.block.ingress[0] ?? forgedIngress(artifact.block.height, env.now())), signature: "forged" };
    const block = makeBlock({ ...artifact.block, ingress: [bogus], context: { timeUs: timeUs(artifact.block.context.timeUs + 2) } });
    return proposalOf(block, env.signer.signBasic(signedProposal(block.height, block.hash)));
  }
  return undefined;
}

function forgedIngress(h: Height, now: TimeUs): IngressMessage {
  return { id: `forged-${h}` as HashHex, sender: "nobody", nonce: h, body: "put stolen 1", sizeBytes: 64, expiryUs: timeUs(now + 60_000_000), signature: "forged" as Signature };
}

// ---- replayed ingress ---------------------------------------------------------------------------------

/**
 * The forger's own proposals re-include ingress that an earlier finalized block already carried
 * (the block replaces its honest proposal: one proposal per height, so this is no equivocation).
 * Honest validators must refuse the block as a duplicate; if they do not, the message is finalized
 * twice (the validity checker).
 */
function withReplayedIngress(changes: Change[], ctx: ConsensusContext, env: BehaviourEnv, logOnce: LogOnce): Change[] {
  return changes.map((change) => {
    if (change.kind !== "add" || change.artifact.type !== "proposal") return change;
    const proposal = change.artifact;
    if (proposal.block.maker !== env.self || proposal.block.isSummary) return change;
    const replayed = replayableIngress(ctx, proposal.block);
    if (replayed.length === 0) return change;
    const ingress = [...replayed, ...proposal.block.ingress].slice(0, ctx.config.maxIngressMessagesPerBlock);
    const block = makeBlock({ ...proposal.block, ingress });
    const forged: BlockProposal = proposalOf(block, env.signer.signBasic(signedProposal(block.height, block.hash)));
    logOnce("fault.replay-ingress", forged.id, { height: block.height, block: block.hash.slice(0, 12), replayed: replayed.map((m) => m.id.slice(0, 8)).join(",") });
    return { kind: "add", artifact: forged };
  });
}

/** Up to a few messages of the most recent finalized blocks, still unexpired at the block's time. */
function replayableIngress(ctx: ConsensusContext, block: Block): IngressMessage[] {
  const { pool } = ctx;
  const inBlock = new Set(block.ingress.map((m) => m.id));
  const out: IngressMessage[] = [];
  const bottom = Math.max(1, pool.finalizedHeight - REPLAY_LOOKBACK_HEIGHTS);
  for (let h = pool.finalizedHeight; h >= bottom && out.length < REPLAYED_MESSAGES_MAX; h--) {
    for (const message of pool.finalizedBlock(height(h))?.ingress ?? []) {
      if (out.length >= REPLAYED_MESSAGES_MAX) break;
      if (!inBlock.has(message.id) && message.expiryUs > block.context.timeUs) out.push(message);
    }
  }
  return out;
}

// ---- catch-up packages --------------------------------------------------------------------------------

/**
 * Two CUPs the subnet never agreed on, made when the forger signs its own CUP share: one for the
 * next summary height (which nobody has reached: an invented block, beacon and state), one for the
 * share's height with a state hash nobody computed. Both carry the forger's share signature where
 * the subnet's threshold signature belongs.
 */
function forgedCups(share: CatchUpShare, ctx: ConsensusContext, env: BehaviourEnv): CatchUpPackage[] {
  const real = share.content;
  const interval = ctx.config.dkgIntervalLength + 1;
  const ahead = height(real.height + interval);
  const invented = domainHash("forged-cup", `${env.self}|${ahead}|${real.block.hash}`) as HashHex;
  const block = makeBlock({ parent: invented, height: ahead, rank: 0, maker: env.self, context: { timeUs: timeUs(real.block.context.timeUs + interval * 1_000_000) }, isSummary: true, ingress: [] });
  const forgedBeacon = beacon(ahead, invented, env.signer.signThresholdShare("low", signedBeacon(ahead, invented)));
  const aheadContent: CatchUpContent = { height: ahead, block, beacon: forgedBeacon, stateHash: domainHash("forged-state", `${ahead}|${real.stateHash}`) as HashHex };
  const otherState: CatchUpContent = { ...real, stateHash: domainHash("forged-state", `${real.height}|${real.stateHash}`) as HashHex };
  return [aheadContent, otherState].map((content) => catchUpPackage(content, env.signer.signThresholdShare("high", signedCup(content))));
}

// ---- certifications and their shares --------------------------------------------------------------------

type LogOnce = (kind: string, id: string, detail: Record<string, string | number>) => void;

/**
 * Whenever the forger sends its own certification share for height h it adds: a share in the
 * victim's name over an invented hash (its own signature), its own share of an earlier height
 * replayed as is (stale) and relabelled as h (the signature covers only the hash, as on the IC,
 * so this is a valid share of the forger for a wrong hash), a certification of h over an invented
 * hash (its share signature in place of the subnet's), and the newest genuine certification it
 * passed on to a peer, relabelled as h.
 */
class CertificationForger {
  private readonly ownShares = new Map<Height, CertificationShare>();
  private genuine: Certification | undefined;

  constructor(private readonly env: BehaviourEnv, private readonly victim: ReplicaId, private readonly logOnce: LogOnce) {}

  extraFor(item: WireItem): WireItem[] {
    if (item.kind === "certification") {
      if (this.genuine === undefined || item.certification.height > this.genuine.height) this.genuine = item.certification;
      return [];
    }
    if (item.kind !== "certification-share" || item.share.signer !== this.env.self) return [];
    const share = item.share;
    this.remember(share);
    const h = share.height;
    const invented = domainHash("forged-certified-state", `${this.env.self}|${h}|${share.hash}`) as HashHex;
    const ownSignature = this.env.signer.signThresholdShare("high", certificationMessageOf(invented));
    const out: WireItem[] = [];
    const add = (what: string, extra: WireItem, detail: Record<string, string | number>): void => {
      this.logOnce(`fault.${what}`, `${what}|${h}|${JSON.stringify(detail)}`, { height: h, ...detail });
      out.push(extra);
    };
    add("forge-certification-share", { kind: "certification-share", share: { height: h, hash: invented, signer: this.victim, signature: ownSignature } }, { victim: this.victim });
    const old = this.ownShares.get((h - SHARE_REPLAY_DISTANCE) as Height);
    if (old !== undefined) {
      add("replay-certification-share", { kind: "certification-share", share: old }, { from: old.height, as: old.height });
      add("replay-certification-share", { kind: "certification-share", share: { ...old, height: h } }, { from: old.height, as: h });
    }
    add("forge-certification", { kind: "certification", certification: { height: h, hash: invented, signature: ownSignature } }, { hash: invented.slice(0, 12) });
    const genuine = this.genuine;
    if (genuine !== undefined && genuine.height !== h) {
      add("replay-certification", { kind: "certification", certification: { ...genuine, height: h } }, { from: genuine.height, as: h });
    }
    return out;
  }

  private remember(share: CertificationShare): void {
    this.ownShares.set(share.height, share);
    this.ownShares.delete((share.height - 2 * SHARE_REPLAY_DISTANCE) as Height);
  }
}

// ---- XNet slices -----------------------------------------------------------------------------------------

/**
 * The slice with its messages altered — the second replaced by the first (a replayed call), or
 * the only one with a byte flipped — and the certification's hash set to the altered tree's root,
 * so the witness checks out and only the subnet's signature does not. A slice without messages
 * is left alone.
 */
function forgedSlice(slice: CertifiedSlice): { slice: CertifiedSlice; how: string } | undefined {
  const path = [new TextEncoder().encode("streams"), subnetLabel(slice.destination), new TextEncoder().encode("messages")];
  const messages = lookupSubtree(path, slice.witness);
  if (messages.status !== "found") return undefined;
  const children = labeledChildren(messages.subtree).filter((c) => c.subtree.kind === "leaf");
  const [first, second] = children;
  if (first === undefined || first.subtree.kind !== "leaf") return undefined;
  const target = second ?? first;
  const value = second !== undefined ? first.subtree.value : flipMiddleByte(first.subtree.value);
  const witness = replaceUnder(slice.witness, path, 0, target.label, leaf(value));
  const certification: Certification = { ...slice.certification, hash: bytesToHex(reconstruct(witness)) as HashHex };
  return { slice: certifiedSlice(slice.source, slice.destination, certification, witness, Math.max(0, slice.sizeBytes - 160)), how: second !== undefined ? "message replayed" : "message altered" };
}

function flipMiddleByte(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const at = Math.floor(out.length / 2);
  out[at] = (out[at] ?? 0) ^ 0x01;
  return out;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** The tree with the node labelled `label` under `path` replaced (copying only along the way). */
function replaceUnder(tree: HashTree, path: readonly Uint8Array[], depth: number, label: Uint8Array, replacement: HashTree): HashTree {
  switch (tree.kind) {
    case "fork":
      return { kind: "fork", left: replaceUnder(tree.left, path, depth, label, replacement), right: replaceUnder(tree.right, path, depth, label, replacement) };
    case "labeled": {
      const step = path[depth];
      if (step === undefined) return sameBytes(tree.label, label) ? { kind: "labeled", label: tree.label, subtree: replacement } : tree;
      return sameBytes(tree.label, step) ? { kind: "labeled", label: tree.label, subtree: replaceUnder(tree.subtree, path, depth + 1, label, replacement) } : tree;
    }
    default:
      return tree;
  }
}

// ---- state-sync chunks -------------------------------------------------------------------------------------

/**
 * The snapshot with one chunk of its bytes corrupted — the lowest bit of one byte flipped — such
 * that it still decodes, so only verification against the state hash can refuse it (what the
 * canary state-sync-unverified skips). An execution snapshot (checkpoint files) gets the middle
 * byte of its first page changed; a key-value one (JSON text) the first byte from the middle on
 * whose change leaves the text decodable (of the next 256). Nothing is mutated: the honest snapshot stays as it is.
 */
export function corruptSnapshot(snapshot: StateSnapshot): { snapshot: StateSnapshot; chunk: string } | undefined {
  const files = decodeCheckpointFiles(snapshot.data);
  if (files.ok) {
    const target = files.value.find(([key]) => key.startsWith("pages/")) ?? files.value[files.value.length - 1];
    if (target === undefined || target[1].length === 0) return undefined;
    const [key, bytes] = target;
    const at = Math.floor(bytes.length / 2);
    const changed = flipLowestBit(bytes, at);
    const data = encodeCheckpointFiles(files.value.map((f) => (f[0] === key ? [key, changed] as const : f)));
    return { snapshot: { ...snapshot, data }, chunk: `${key.slice(0, 22)}@${at}` };
  }
  const middle = Math.floor(snapshot.data.length / 2);
  for (let at = middle; at < Math.min(snapshot.data.length, middle + 256); at++) {
    const data = flipLowestBit(snapshot.data, at);
    if (decodeKvSnapshot(data).ok) return { snapshot: { ...snapshot, data }, chunk: `byte ${at}` };
  }
  return undefined;
}

function flipLowestBit(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] = (out[at] ?? 0) ^ 0x01;
  return out;
}
