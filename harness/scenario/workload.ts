// The ingress client: submits signed messages at a steady rate to random replicas (as a boundary
// node would), resubmits a message that has not been finalized after a while to another replica
// (as the agent does after a timeout), and mixes in invalid messages that replicas must refuse.
import { MAX_INGRESS_BYTES_PER_MESSAGE, MAX_INGRESS_TTL_US } from "../consensus/config.ts";
import { IDL } from "@dfinity/candid";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ingressId, type IngressAuth, type IngressCall, type IngressMessage } from "../consensus/ingress.ts";
import type { EventLoop } from "../sim/event-loop.ts";
import { percent, type Rng } from "../sim/rng.ts";
import type { Trace } from "../sim/trace.ts";
import { replicaId, secondsToUs, timeUs, type HashHex, type ReplicaId, type TimeUs } from "../types.ts";
import type { SubmitResult } from "../replica/subnet.ts";
import { encodeArgs, type CallTemplate } from "./calls.ts";
import { Principal } from "@dfinity/principal";
import { hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { encodeEnvelope, type Envelope } from "../ingress/envelope.ts";
import { userIdentity, type UserIdentity, type UserScheme } from "../ingress/identity.ts";
import { ingressFromEnvelope } from "../consensus/ingress.ts";

/** Where a message for a canister goes: its subnet's size and submit function (multi-subnet runs). */
export interface IngressTarget {
  readonly n: number;
  submit(to: ReplicaId, message: IngressMessage): SubmitResult;
}

export interface WorkloadSpec {
  /** Messages per simulated second. */
  readonly ratePerSec: number;
  readonly startS?: number;
  /** Stop submitting at this time (default: 30 s before the end, so liveness can be judged). */
  readonly stopS?: number;
  /** Payload bytes a message stands for. */
  readonly payloadBytes?: number;
  /** Distinct keys written. */
  readonly keySpace?: number;
  /** Share of messages that are invalid (bad signature, expired, oversized), in percent. */
  readonly invalidPercent?: number;
  readonly resubmitAfterS?: number;
  /** Send canister calls instead of placeholder commands: `insert(k, v)` of Listing 1's key-value canister. */
  readonly call?: { readonly canister: string; readonly method: "insert" };
  /** Or: each message is one of these calls, chosen at random (arguments from the templates). */
  readonly calls?: readonly CallTemplate[];
  /**
   * How users sign calls: `sim` (default) keyed-hash signatures on simulated messages; or signed IC
   * call envelopes (CBOR, request ids) from Ed25519, ECDSA P-256 or secp256k1 users, the anonymous
   * user, or `mixed` (each of the 16 users has one of the four). Envelopes need `call` or `calls`.
   */
  readonly senders?: "sim" | UserScheme | "mixed";
}

const MIXED_SCHEMES: readonly UserScheme[] = ["ed25519", "ecdsa-p256", "ecdsa-secp256k1", "anonymous"];

export interface SubmittedMessage {
  readonly message: IngressMessage;
  readonly valid: boolean;
  readonly firstSubmitUs: TimeUs;
  /** Every (replica, time) that accepted the message into its ingress pool, in order. */
  readonly acceptedBy: { readonly replica: ReplicaId; readonly atUs: TimeUs }[];
}

const TICK_US = 10_000;

export class Workload {
  readonly submitted = new Map<HashHex, SubmittedMessage>();
  private readonly retryQueue: { id: HashHex; at: number; attempts: number; last: ReplicaId | undefined }[] = [];
  private retryHead = 0;
  private nonce = 0;
  private credit = 0;
  private readonly users = new Map<number, UserIdentity>();
  rejectedAtSubmit = 0;

  constructor(
    private readonly spec: WorkloadSpec,
    private readonly rng: Rng,
    private readonly auth: IngressAuth,
    private readonly n: number,
    private readonly submit: (to: ReplicaId, message: IngressMessage) => SubmitResult,
    private readonly isFinalized: (id: HashHex) => boolean,
    private readonly trace: Trace,
    /** Canister name → textual id, for `call`. */
    private readonly canisterIds: ReadonlyMap<string, string> = new Map(),
    /** Fleet name → its members' textual ids: a call to a fleet goes to a member chosen at random. */
    private readonly fleetIds: ReadonlyMap<string, readonly string[]> = new Map(),
    /** Multi-subnet runs: the subnet hosting a canister id (default: the one subnet above). */
    private readonly targetOf?: (canister: string) => IngressTarget,
  ) {}

  /** Schedules the client's ticks on the loop. */
  install(loop: EventLoop, durationS: number): void {
    const startUs = secondsToUs(this.spec.startS ?? 1);
    const stopUs = secondsToUs(this.spec.stopS ?? Math.max(0, durationS - 30));
    const tick = (): void => {
      const now = loop.now();
      if (now < stopUs) this.generate(now);
      this.resubmitStale(now);
      if (now + TICK_US <= secondsToUs(durationS)) loop.after(TICK_US, tick);
    };
    loop.schedule(startUs, tick);
  }

  validIds(): Set<HashHex> {
    const ids = new Set<HashHex>();
    for (const [id, s] of this.submitted) if (s.valid) ids.add(id);
    return ids;
  }

  private generate(now: TimeUs): void {
    this.credit += this.spec.ratePerSec * TICK_US;
    while (this.credit >= 1_000_000) {
      this.credit -= 1_000_000;
      this.submitNew(now);
    }
  }

  private submitNew(now: TimeUs): void {
    const invalidKind = this.rng.chance(percent(this.spec.invalidPercent ?? 0)) ? this.rng.between(0, 2) : -1;
    const nonce = this.nonce++;
    const sender = `user${nonce % 16}`;
    const key = `k${this.rng.below(this.spec.keySpace ?? 1000)}`;
    const body = `put ${key} v${nonce}`;
    const sizeBytes = invalidKind === 2 ? MAX_INGRESS_BYTES_PER_MESSAGE + 1 : (this.spec.payloadBytes ?? 256);
    const expiryUs = timeUs(invalidKind === 1 ? Math.max(0, now - 1) : now + MAX_INGRESS_TTL_US - 60_000_000);
    const call = this.callFor(key, `v${nonce}`);
    if (this.spec.senders !== undefined && this.spec.senders !== "sim" && call !== undefined) {
      this.submitEnvelope(now, nonce, call, invalidKind);
      return;
    }
    const id = ingressId(sender, nonce, body, sizeBytes, expiryUs, call);
    const signature = invalidKind === 0 ? "not-a-signature" : this.auth.sign(sender, id);
    const message: IngressMessage = { id, sender, nonce, body, sizeBytes, expiryUs, signature, ...(call === undefined ? {} : { call }) };
    this.submitted.set(id, { message, valid: invalidKind === -1, firstSubmitUs: now, acceptedBy: [] });
    const to = this.sendSomewhere(message, now, undefined);
    if (invalidKind === -1) this.retryQueue.push({ id, at: now + this.resubmitAfterUs(), attempts: 1, last: to });
  }

  /**
   * A signed IC call envelope from user `nonce % 16`; invalid kinds: 0 a corrupted signature (the
   * anonymous user instead signs, which it must not), 1 already expired, 2 over the 2 MiB limit.
   */
  private submitEnvelope(now: TimeUs, nonce: number, call: IngressCall, invalidKind: number): void {
    const user = this.user(nonce % 16);
    const expiryUs = invalidKind === 1 ? Math.max(0, now - 1) : now + MAX_INGRESS_TTL_US - 60_000_000;
    const arg = invalidKind === 2 ? new Uint8Array(MAX_INGRESS_BYTES_PER_MESSAGE + 1) : hexToBytes(call.argHex);
    const nonceBytes = new Uint8Array(8);
    new DataView(nonceBytes.buffer).setBigUint64(0, BigInt(nonce));
    let envelope: Envelope = user.sign({ request_type: "call", canister_id: Principal.fromText(call.canister).toUint8Array(), method_name: call.method, arg, ingress_expiry: BigInt(expiryUs) * 1000n, nonce: nonceBytes });
    if (invalidKind === 0) envelope = corruptSignature(envelope);
    const bytes = encodeEnvelope(envelope);
    const derived = ingressFromEnvelope(bytes, BigInt(now) * 1000n);
    // Messages that fail validation here still go to a replica, which must refuse them too.
    const message: IngressMessage = derived.ok
      ? derived.message
      : { id: ingressId("envelope", nonce, "", bytes.length, expiryUs, call), sender: user.principal, nonce, body: "", sizeBytes: bytes.length, expiryUs: timeUs(expiryUs), signature: "", call, envelope: bytes };
    const valid = invalidKind === -1;
    this.submitted.set(message.id, { message, valid, firstSubmitUs: now, acceptedBy: [] });
    const to = this.sendSomewhere(message, now, undefined);
    if (valid) this.retryQueue.push({ id: message.id, at: now + this.resubmitAfterUs(), attempts: 1, last: to });
  }

  private user(k: number): UserIdentity {
    let user = this.users.get(k);
    if (user === undefined) {
      const senders = this.spec.senders as UserScheme | "mixed";
      const scheme = senders === "mixed" ? (MIXED_SCHEMES[k % MIXED_SCHEMES.length] as UserScheme) : senders;
      user = userIdentity(scheme, utf8ToBytes(`workload-user-${k}`));
      this.users.set(k, user);
    }
    return user;
  }

  /** Candid `insert(key : Text, value : Text)` for the scenario's key-value canister. */
  private callFor(key: string, value: string): IngressCall | undefined {
    const templates = this.spec.calls;
    if (templates !== undefined && templates.length > 0) {
      const template = templates[this.rng.below(templates.length)]!;
      const canister = this.canisterIdOf(template.canister) ?? "";
      return { canister, method: template.method, argHex: bytesToHex(encodeArgs(template.args, this.rng, this.canisterIds)) };
    }
    const spec = this.spec.call;
    if (spec === undefined) return undefined;
    const canister = this.canisterIdOf(spec.canister);
    if (canister === undefined) return undefined;
    return { canister, method: spec.method, argHex: bytesToHex(new Uint8Array(IDL.encode([IDL.Text, IDL.Text], [key, value]))) };
  }

  /** A canister's id; for a fleet, one member's, drawn from the workload's stream (only then). */
  private canisterIdOf(name: string): string | undefined {
    const members = this.fleetIds.get(name);
    if (members !== undefined) return members[this.rng.below(members.length)];
    return this.canisterIds.get(name);
  }

  private resubmitAfterUs(): number {
    return secondsToUs(this.spec.resubmitAfterS ?? 10);
  }

  private resubmitStale(now: TimeUs): void {
    while (this.retryHead < this.retryQueue.length) {
      const entry = this.retryQueue[this.retryHead];
      if (entry === undefined || entry.at > now) break;
      this.retryHead++;
      if (this.isFinalized(entry.id)) continue;
      const s = this.submitted.get(entry.id);
      if (s === undefined || s.message.expiryUs < now) continue;
      this.trace.record(now, -1, { kind: "workload.resubmit", detail: { id: entry.id.slice(0, 16), attempt: entry.attempts + 1 } });
      const to = this.sendSomewhere(s.message, now, entry.last);
      this.retryQueue.push({ id: entry.id, at: now + this.resubmitAfterUs(), attempts: entry.attempts + 1, last: to });
    }
    if (this.retryHead > 4096) {
      this.retryQueue.splice(0, this.retryHead);
      this.retryHead = 0;
    }
  }

  /**
   * Tries replicas from a random one on until one takes the message (a boundary node routes around
   * dead ones); a retry starts elsewhere than the last attempt, as an agent switching nodes would.
   * Returns the replica that has the message now, if any.
   */
  private sendSomewhere(message: IngressMessage, now: TimeUs, avoid: ReplicaId | undefined): ReplicaId | undefined {
    const target = message.call !== undefined && this.targetOf !== undefined ? this.targetOf(message.call.canister) : { n: this.n, submit: this.submit };
    const n = target.n;
    let first = this.rng.below(n);
    if (avoid !== undefined && n > 1 && first === avoid) first = (first + 1) % n;
    for (let k = 0; k < n; k++) {
      const to = replicaId((first + k) % n);
      const result = target.submit(to, message);
      if (result.accepted) {
        this.submitted.get(message.id)?.acceptedBy.push({ replica: to, atUs: now });
        return to;
      }
      if (result.reason === "duplicate") return to;
      if (result.reason !== "replica-down") {
        this.rejectedAtSubmit++;
        return undefined;
      }
    }
    this.trace.record(now, -1, { kind: "workload.unavailable", detail: { id: message.id.slice(0, 16) } });
    return undefined;
  }
}

/** A signature with one bit flipped; the anonymous user gets a signature it must not carry. */
function corruptSignature(envelope: Envelope): Envelope {
  const sig = envelope.sender_sig;
  if (sig === undefined) return { ...envelope, sender_sig: new Uint8Array(64).fill(1), sender_pubkey: new Uint8Array(44) };
  const flipped = sig.slice();
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  return { ...envelope, sender_sig: flipped };
}
