// The replicated ingress history (ic-protocol.md §2): message id → status (received, processing,
// completed with its reply, failed with its reject, done), pruned MAX_INGRESS_TTL after a terminal
// status was set. Over capacity (the IC's INGRESS_HISTORY_MAX_MESSAGES, 600,000), the oldest
// answered entries become `done` and lose their reply, as the IC's forget_terminal_statuses does.
// Its digest is an XOR of entry hashes, kept incrementally, and is part of the state hash.
import { Principal } from "@dfinity/principal";
import { bytesToHex } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import { HashInput } from "../hash-input.ts";
import { MAX_INGRESS_TTL_US } from "../consensus/config.ts";
import type { HashHex } from "../types.ts";
import { isTerminal, type IngressStatus } from "./interfaces.ts";

/** rs/limits INGRESS_HISTORY_MAX_MESSAGES = 2 × 1000 messages per block × 300 s TTL. */
export const INGRESS_HISTORY_MAX_MESSAGES = 600_000;

const TTL_NS = BigInt(MAX_INGRESS_TTL_US) * 1000n;

interface Entry {
  readonly status: IngressStatus;
  /** Terminal entries leave the history at this batch time; processing ones stay. */
  readonly pruneAtNs: bigint | undefined;
  /**
   * The envelope's sender (a principal), as the IC's ingress history keeps the user id: the HTTP
   * interface refuses to show a request's status to anyone else. Absent for the simulator's own
   * keyed-hash messages, which have no principal.
   */
  readonly sender: string | undefined;
}

/** (id, status, prune time, sender) per entry; the sender is left out when absent. */
export type IngressHistoryData = readonly (readonly [HashHex, IngressStatus, string | undefined, string?])[];

export class IngressHistory {
  private entries = new Map<HashHex, Entry>();
  private acc = new Uint8Array(32);
  /** Answered (completed/failed) entries, oldest first: the candidates for `done`. */
  private answered = new Set<HashHex>();
  /**
   * Ids whose status changed (set, became done, or pruned) since the last takeChanged(); kept only
   * once a consumer has called takeChanged() — a history nobody asks (key-value subnets) would
   * otherwise collect every id it ever held.
   */
  private changed: Set<HashHex> | undefined;
  /** False while applying changes whose resulting digest is known (applyWithKnownDigest). */
  private hashing = true;

  constructor(readonly maxMessages = INGRESS_HISTORY_MAX_MESSAGES) {}

  get size(): number {
    return this.entries.size;
  }

  status(id: HashHex): IngressStatus | undefined {
    return this.entries.get(id)?.status;
  }

  has(id: HashHex): boolean {
    return this.entries.has(id);
  }

  /** Who sent the message (its envelope's principal), while its status is kept. */
  sender(id: HashHex): string | undefined {
    return this.entries.get(id)?.sender;
  }

  /** Sets a status; `sender` is given when the message is inducted and kept by later changes. */
  set(id: HashHex, status: IngressStatus, nowNs: bigint, sender?: string): void {
    const previous = this.entries.get(id);
    if (previous !== undefined) {
      this.xorEntry(id, previous.status, previous.sender);
      this.entries.delete(id);
    }
    const terminal = isTerminal(status);
    const kept = sender ?? previous?.sender;
    // Re-inserting keeps the map in status-time order, which pruning relies on.
    this.entries.set(id, { status, pruneAtNs: terminal ? nowNs + TTL_NS : undefined, sender: kept });
    this.xorEntry(id, status, kept);
    this.changed?.add(id);
    // Answered ids are a subset of the entries' ids, so a new id needs no delete.
    if (previous !== undefined) this.answered.delete(id);
    if (status.status === "completed" || status.status === "failed") this.answered.add(id);
    this.forgetOldAnswers();
  }

  /**
   * Over capacity (more answers held than `maxMessages`): the oldest answered entries become
   * `done` — same prune time, reply dropped, so they no longer take the memory a reply takes.
   */
  private forgetOldAnswers(): void {
    if (this.answered.size <= this.maxMessages) return;
    for (const id of this.answered) {
      if (this.answered.size <= this.maxMessages) break;
      const entry = this.entries.get(id);
      this.answered.delete(id);
      if (entry === undefined) continue;
      this.xorEntry(id, entry.status, entry.sender);
      const done: IngressStatus = { status: "done", height: entry.status.height };
      this.entries.set(id, { status: done, pruneAtNs: entry.pruneAtNs, sender: entry.sender });
      this.xorEntry(id, done, entry.sender);
      this.changed?.add(id);
    }
  }

  /** Drops terminal entries whose time-to-live has passed (they are in status-time order). */
  prune(nowNs: bigint): void {
    for (const [id, entry] of this.entries) {
      if (entry.pruneAtNs === undefined) continue;
      if (entry.pruneAtNs > nowNs) break;
      this.xorEntry(id, entry.status, entry.sender);
      this.entries.delete(id);
      this.answered.delete(id);
      this.changed?.add(id);
    }
  }

  /**
   * The ids whose status changed since the last call (for the certified state tree). The first
   * call starts the tracking: nothing was kept before it, so it returns every id held — all a
   * consumer that had seen nothing of this history needs.
   */
  takeChanged(): HashHex[] {
    if (this.changed === undefined) {
      this.changed = new Set();
      return [...this.entries.keys()];
    }
    const ids = [...this.changed];
    this.changed.clear();
    return ids;
  }

  /** Every id with a status, in status-time order. */
  ids(): IterableIterator<HashHex> {
    return this.entries.keys();
  }

  digestHex(): string {
    return bytesToHex(this.acc);
  }

  /** The digest's bytes (a copy). */
  digestBytes(): Uint8Array {
    return this.acc.slice();
  }

  /**
   * Runs `changes` (calls of set and prune) without hashing each entry they touch, then takes
   * `digestAfter` as the digest. For a replica adopting another's outcome of a batch (shared
   * execution): both histories were equal before (same pre-state hash), so the same changes lead
   * to the digest they led to there; hashing every entry again was most of the cost of applying them.
   */
  applyWithKnownDigest(changes: () => void, digestAfter: Uint8Array): void {
    assert(digestAfter.length === this.acc.length, "a history digest is 32 bytes");
    this.hashing = false;
    try {
      changes();
    } finally {
      this.hashing = true;
    }
    this.acc.set(digestAfter);
  }

  private xorEntry(id: HashHex, status: IngressStatus, sender: string | undefined): void {
    if (this.hashing) xorEntryDigest(this.acc, id, status, sender);
  }

  toData(): IngressHistoryData {
    return [...this.entries].map(([id, e]) => {
      const pruneAt = e.pruneAtNs === undefined ? undefined : String(e.pruneAtNs);
      return e.sender === undefined ? ([id, e.status, pruneAt] as const) : ([id, e.status, pruneAt, e.sender] as const);
    });
  }

  static fromData(data: IngressHistoryData, maxMessages = INGRESS_HISTORY_MAX_MESSAGES): IngressHistory {
    const history = new IngressHistory(maxMessages);
    for (const [id, status, pruneAt, sender] of data) {
      history.entries.set(id, { status, pruneAtNs: pruneAt === undefined ? undefined : BigInt(pruneAt), sender });
      xorEntryDigest(history.acc, id, status, sender);
      if (status.status === "completed" || status.status === "failed") history.answered.add(id);
    }
    return history;
  }

  describe(): [string, string][] {
    return [...this.entries].map(([id, e]) => [id, describeStatus(e.status)] as [string, string]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }
}

/**
 * History data read from untrusted bytes (a peer's checkpoint): rebuilt field by field with every
 * status in the shape this module writes, or the reason it is not history data.
 */
export function ingressHistoryDataOf(value: unknown): { readonly ok: true; readonly data: IngressHistoryData } | { readonly ok: false; readonly reason: string } {
  if (!Array.isArray(value)) return { ok: false, reason: "history is not a list" };
  const data: (readonly [HashHex, IngressStatus, string | undefined, string?])[] = [];
  for (const entry of value as unknown[]) {
    if (!Array.isArray(entry) || (entry.length !== 3 && entry.length !== 4)) return { ok: false, reason: "history entry is not [id, status, prune time, sender?]" };
    const [id, status, pruneAt, sender] = entry as unknown[];
    const checked = statusOf(status);
    if (typeof id !== "string" || checked === undefined) return { ok: false, reason: `history entry ${String(id).slice(0, 16)}: bad id or status` };
    if (pruneAt !== undefined && (typeof pruneAt !== "string" || !/^(0|[1-9][0-9]*)$/.test(pruneAt))) return { ok: false, reason: "history prune time is not a decimal" };
    if (entry.length === 4 && !isPrincipalText(sender)) return { ok: false, reason: `history entry ${id.slice(0, 16)}: the sender is not a principal` };
    data.push(entry.length === 4 ? [id as HashHex, checked, pruneAt, sender as string] : [id as HashHex, checked, pruneAt]);
  }
  return { ok: true, data };
}

/** A principal's text form (what `sender` holds), checked by its round trip through the bytes. */
function isPrincipalText(v: unknown): v is string {
  if (typeof v !== "string" || v.length > 63) return false;
  try {
    return Principal.fromText(v).toText() === v;
  } catch {
    return false;
  }
}

const isErrorCode = (v: unknown): v is string => typeof v === "string" && /^IC\d{4}$/.test(v);
const isHeight = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function statusOf(v: unknown): IngressStatus | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const s = v as Record<string, unknown>;
  const keys = Object.keys(s).sort().join(",");
  if (!isHeight(s["height"])) return undefined;
  const h = s["height"] as IngressStatus["height"];
  switch (s["status"]) {
    case "received":
    case "processing":
    case "done":
      return keys === "height,status" ? { status: s["status"], height: h } : undefined;
    case "completed":
      return keys === "height,reply,status" && typeof s["reply"] === "string" ? { status: "completed", height: h, reply: s["reply"] } : undefined;
    case "failed":
      return keys === "code,errorCode,height,message,status" && isHeight(s["code"]) && typeof s["message"] === "string" && isErrorCode(s["errorCode"])
        ? { status: "failed", height: h, code: s["code"], message: s["message"], errorCode: s["errorCode"] }
        : undefined;
    default:
      return undefined;
  }
}

export function describeStatus(status: IngressStatus): string {
  switch (status.status) {
    case "received":
    case "processing":
    case "done":
      return `${status.status}@${status.height}`;
    case "completed":
      return `completed@${status.height}: ${status.reply}`;
    case "failed":
      return `failed@${status.height}: reject ${status.code} ${status.errorCode}: ${status.message}`;
  }
}

const STATUS_TAG = { received: 0, processing: 1, completed: 2, failed: 3, done: 4 } as const;
const scratch = new HashInput();

/**
 * XORs an entry's hash into `acc`: SHA-256 of its id, status (kind, height, reply or reject code,
 * error code and message) and sender (when there is one, as on the IC), as bytes. Node's one-shot
 * native SHA-256 on a reused buffer costs less than the text and memo this replaced.
 */
function xorEntryDigest(acc: Uint8Array, id: HashHex, status: IngressStatus, sender: string | undefined): void {
  const w = scratch.reset().text("history").text(id).u8(STATUS_TAG[status.status]).f64(status.height);
  if (status.status === "completed") w.text(status.reply);
  else if (status.status === "failed") w.f64(status.code).text(status.errorCode).text(status.message);
  if (sender === undefined) w.u8(0);
  else w.u8(1).text(sender);
  w.xorSha256Into(acc);
}
