// The seams where a fault injector transforms an honest replica (DESIGN.md rule 6). An honest
// replica uses HONEST; harness/faults builds other behaviours that wrap these hooks and log every
// malicious act in the trace.
import type { Change, ConsensusContext } from "../consensus/consensus.ts";
import type { WireItem } from "../p2p/messages.ts";
import type { NodeSigner } from "../crypto/interfaces.ts";
import type { TraceEvent } from "../sim/env.ts";
import type { ReplicaId, TimeUs } from "../types.ts";
import type { TransitionCorruptor } from "./kv-state-machine.ts";
import type { CertifiedSlice } from "../routing/xnet.ts";

export interface ReplicaBehaviour {
  /** Rewrites what consensus decided this step (equivocate, sign everything, forge, withhold). */
  rewriteChanges(changes: Change[], ctx: ConsensusContext): Change[];
  /** Per peer: the items actually sent (drop, alter, duplicate). */
  filterOutgoing(to: ReplicaId, item: WireItem, ctx: ConsensusContext): readonly WireItem[];
  /** Corrupts this replica's state transitions (divergent replica), if set. */
  readonly corruptor?: TransitionCorruptor;
  /** Rewrites the certified XNet slices this replica serves to other subnets (forged slices), if set. */
  readonly rewriteXNetSlice?: (slice: CertifiedSlice) => CertifiedSlice;
  /**
   * Rewrites the bytes of each bundle this replica sends, after encoding (garbage on the wire), if
   * set. The simulator then encodes this replica's bundles whatever its wire mode.
   */
  readonly rewriteWire?: (to: ReplicaId, bytes: Uint8Array) => Uint8Array;
}

export const HONEST: ReplicaBehaviour = {
  rewriteChanges: (changes) => changes,
  filterOutgoing: (_to, item) => [item],
};

/** What a behaviour may use: the replica's own key (never another's), the clock and the trace. */
export interface BehaviourEnv {
  readonly self: ReplicaId;
  readonly n: number;
  readonly signer: NodeSigner;
  now(): TimeUs;
  /** Records a malicious act in the trace. */
  log(event: TraceEvent): void;
}
