// A replica's ingress pool: the signed messages it has admitted and not yet seen on its finalized
// chain, which its block maker selects from. Messages enter by submission, gossip or a queued
// arrival (ingress-arrivals.ts) and leave when a delivered batch (or a synced state) holds them,
// when they expire (on the status tick), never otherwise: the pool's size is bounded instead.
import { MAX_INGRESS_BYTES_PER_MESSAGE } from "../consensus/config.ts";
import type { Block } from "../consensus/artifacts.ts";
import { checkIngress, type IngressAuth, type IngressInvalidReason, type IngressMessage } from "../consensus/ingress.ts";
import type { HashHex, TimeUs } from "../types.ts";

/** Maximum messages held by default before new submissions are refused. */
const DEFAULT_CAPACITY = 50_000;

export type IngressAdmission = IngressInvalidReason | "duplicate" | "pool-full" | undefined;

export interface IngressPoolDeps {
  readonly ingressAuth: IngressAuth;
  readonly capacity?: number;
  /** The message is already on this replica's executed chain (its ingress history knows it). */
  readonly alreadyFinalized: (id: HashHex) => boolean;
}

export class IngressPool {
  private readonly messages = new Map<HashHex, IngressMessage>();

  constructor(private readonly deps: IngressPoolDeps) {}

  get size(): number {
    return this.messages.size;
  }

  has(id: HashHex): boolean {
    return this.messages.has(id);
  }

  /** In admission order: the block maker's candidates. */
  values(): IterableIterator<IngressMessage> {
    return this.messages.values();
  }

  /** `atUs`: when the message reached this replica (queued arrivals are admitted a little later). */
  admit(message: IngressMessage, atUs: TimeUs): IngressAdmission {
    // (An envelope's size is judged with the rest of it, by checkIngress, with the IC's reason.)
    if (message.envelope === undefined && message.sizeBytes > MAX_INGRESS_BYTES_PER_MESSAGE) return "too-large";
    if (this.messages.has(message.id) || this.deps.alreadyFinalized(message.id)) return "duplicate";
    const problem = checkIngress(message, this.deps.ingressAuth, atUs);
    if (problem !== undefined) return problem;
    if (this.messages.size >= (this.deps.capacity ?? DEFAULT_CAPACITY)) return "pool-full";
    this.messages.set(message.id, message);
    return undefined;
  }

  /** A delivered (or state-synced) block's messages are on the chain: the pool lets them go. */
  forget(block: Block): void {
    for (const message of block.ingress) this.messages.delete(message.id);
  }

  purgeExpired(nowUs: TimeUs): void {
    for (const [id, message] of this.messages) if (message.expiryUs < nowUs) this.messages.delete(id);
  }
}
