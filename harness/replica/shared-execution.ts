// Execute once, verify always (issue 13 item 1). The n honest replicas of a simulated subnet
// deliver the same batches on the same states; executing, committing, hashing and certifying each
// batch n times is the simulator's largest cost on execution subnets. One `SharedExecution` per
// simulated subnet (never process-wide) remembers, per (pre-state hash, batch, configuration) key,
// the outcome the first replica computed; a later replica with the same key adopts it instead of
// executing. Everything adopted is immutable (execution states and their page maps, routing
// states, certified trees) or replayed on the adopter's own objects (ingress-history operations,
// its state manager's digest and checkpoint files on its own disk, its observers).
//
// Both state machines share through it, each with its own outcome type (`SharedOutcome` is what
// the cache and the audit read): `ExecutionStateMachine` (BatchOutcome, below) and the key-value
// placeholder `KvStateMachine` (KvBatchOutcome: the batch's writes and history operations, which
// an adopter applies to its own store and history without rehashing them).
//
// Only replicas that run the honest code path share (`runsHonestExecution`): a fault hook, a
// canary or a custom executor makes a replica execute on its own, always, and never store. A
// replica whose pre-state differs misses by construction.
//
// The audit: for every stored outcome one other sharing replica, drawn from the subnet's own PRNG
// stream `execution-audit`, re-executes on its own executor instead of adopting and compares
// state hash, certified hash and replies. On a mismatch it keeps its own result, the entry is
// disputed (every later replica executes on its own) and the mismatch is kept for the checker
// harness/checks/execution-audit.ts. What it cannot catch: a bad outcome whose replica was not
// audited at that height and whose adopters all took it — the audit draws one auditor per
// computed outcome, so a replica that computes wrongly every time it computes is caught at the
// first such height whose auditor delivers it.
import { createHash } from "node:crypto";
import { assert } from "../assert.ts";
import { freezeShared } from "../paranoia.ts";
import type { ExecutionRoundState } from "../execution/round.ts";
import type { RoutingState } from "../routing/streams.ts";
import type { SubnetId } from "../routing/registry.ts";
import type { Rng } from "../sim/rng.ts";
import type { CertifiedState } from "../state/certified-tree.ts";
import type { CommitResult } from "../state/state-manager.ts";
import type { HashHex, Height } from "../types.ts";
import { describeStatus } from "./ingress-history.ts";
import type { HistoryOp } from "./history-journal.ts";
import type { TrappedChange } from "./trap-watch.ts";
import type { BatchWork } from "./execution-time.ts";

/** What the cache and the audit read of any state machine's outcome of a batch. */
export interface SharedOutcome {
  readonly height: Height;
  /** The state hash after the batch. */
  readonly stateHash: HashHex;
  /** The certified tree's root hash after the batch (state machines that certify a tree). */
  readonly certifiedHash?: HashHex;
  /** The batch's writes to the ingress history, in order (the audit compares their statuses). */
  readonly historyOps: readonly HistoryOp[];
}

/** Everything one replica's execution of a batch produced that another replica may adopt (execution subnets). */
export interface BatchOutcome extends SharedOutcome {
  /** The execution state after the batch (committed: heap deltas cleared at checkpoint heights). */
  readonly state: ExecutionRoundState;
  /** The state manager's commit: digest, and at checkpoint heights the committed state and manifest. */
  readonly commit: CommitResult;
  readonly routing: RoutingState;
  /** What the stream check observes (`onInducted`). */
  readonly inducted: readonly (readonly [SubnetId, readonly bigint[]])[];
  /** What the trapped-update check observes (`onTrappedChange`). */
  readonly trapped: readonly TrappedChange[];
  readonly certified: CertifiedState;
  readonly certifiedHash: HashHex;
  /** What executing the batch cost (the time model charges adopters the same). */
  readonly work: BatchWork;
}

/** One execution that an audit found to differ from the outcome it was going to adopt. */
export interface AuditMismatch {
  readonly subnet: string;
  readonly height: number;
  /** The replica that re-executed (the auditor) and the one whose outcome was stored. */
  readonly auditor: string;
  readonly computer: string;
  readonly auditorStateHash: HashHex;
  readonly computerStateHash: HashHex;
  /** Which parts differ: "state hash", "certified hash", "replies". */
  readonly differing: readonly string[];
}

export interface SharedExecutionStats {
  /** Batches a replica executed itself (every replica, sharing or not; audits included). */
  readonly executions: number;
  /** Batches a replica adopted instead of executing. */
  readonly shared: number;
  /** Re-executions by an auditor compared with a stored outcome. */
  readonly audited: number;
  readonly mismatches: number;
}

export interface SharedExecutionOptions {
  /** The subnet's name in reports ("a"; in multi-subnet runs its scenario name). */
  readonly subnet: string;
  /** Off: every replica executes on its own (the cache only counts). */
  readonly sharing: boolean;
  /** Draw an auditor for every stored outcome (default on). */
  readonly audit?: boolean;
  /** The subnet's own stream for drawing auditors (`<subnet rng>.fork("execution-audit")`). */
  readonly auditRng: Rng;
  /** Outcomes more than this many heights below the newest stored one are dropped (default 32). */
  readonly keepHeights?: number;
}

interface Entry<O extends SharedOutcome> {
  readonly key: string;
  readonly outcome: O;
  readonly computer: string;
  /** The member drawn to re-execute instead of adopting, if any. */
  readonly auditor: number | undefined;
  audited: boolean;
  disputed: boolean;
}

/** What a sharing replica does with a batch. */
export type SharingPlan<O extends SharedOutcome = BatchOutcome> =
  | { readonly kind: "compute"; readonly key: string }
  | { readonly kind: "adopt"; readonly outcome: O }
  | { readonly kind: "audit"; readonly key: string }
  /** The entry is disputed: execute on its own and store nothing. */
  | { readonly kind: "own" };

const DEFAULT_KEEP_HEIGHTS = 32;

/** A genesis state built by one member, audited by the next one to start (issue 14 item 2). */
interface GenesisEntry {
  readonly state: ExecutionRoundState;
  readonly digest: HashHex;
  readonly computer: number;
  audited: boolean;
  disputed: boolean;
}

/** One subnet's shared outcomes; `O` is its state machine's outcome type (one kind of machine per subnet). */
export class SharedExecution<O extends SharedOutcome = BatchOutcome> {
  private readonly entries = new Map<string, Entry<O>>();
  /** Genesis states by their canisters' key (ids, module hashes, arguments, saved states). */
  private readonly genesisEntries = new Map<string, GenesisEntry>();
  /** Sharing members (replica index → name), and the height each one delivered last. */
  private readonly members = new Map<number, string>();
  private readonly lastDelivered = new Map<number, number>();
  private newestHeight = 0;
  private counts = { executions: 0, shared: 0, audited: 0 };
  readonly mismatches: AuditMismatch[] = [];
  readonly options: SharedExecutionOptions;

  constructor(options: SharedExecutionOptions) {
    this.options = options;
  }

  get sharing(): boolean {
    return this.options.sharing;
  }

  get stats(): SharedExecutionStats {
    return { ...this.counts, mismatches: this.mismatches.length };
  }

  /** Entries held now (bounded; tests check it). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The handle one replica's state machines get (every incarnation of replica `index`).
   * `mayShare` false: the replica only counts its executions (a Byzantine replica, whatever its
   * behaviour does, never shares).
   */
  member(index: number, name: string, mayShare = true): ExecutionSharing<O> {
    return new ExecutionSharing<O>(this, index, name, mayShare);
  }

  /** @internal A sharing machine of replica `index` was built. */
  join(index: number, name: string): void {
    this.members.set(index, name);
  }

  /** @internal */
  countExecution(): void {
    this.counts.executions++;
  }

  /** @internal What member `index` does with the batch under `key`. */
  plan(index: number, height: Height, key: string): SharingPlan<O> {
    this.noteDelivery(index, height);
    const entry = this.entries.get(key);
    if (entry === undefined) return { kind: "compute", key };
    if (entry.disputed) return { kind: "own" };
    if (entry.auditor === index && !entry.audited) return { kind: "audit", key };
    this.counts.shared++;
    return { kind: "adopt", outcome: entry.outcome };
  }

  /**
   * @internal The genesis state for member `index`: the first sharing member builds it, the next
   * one to start builds it again and compares (the audit; a difference is a mismatch at height 0,
   * and from then on every member builds its own), the others adopt it. Installing thousands of
   * canisters n times was most of the start of a large fleet. Not counted in `stats` (batches only).
   */
  genesis(index: number, key: string, build: () => ExecutionRoundState, digestOf: (state: ExecutionRoundState) => HashHex): ExecutionRoundState {
    const entry = this.genesisEntries.get(key);
    if (entry === undefined) {
      const state = build();
      this.genesisEntries.set(key, { state, digest: digestOf(state), computer: index, audited: this.options.audit === false, disputed: false });
      return state;
    }
    if (entry.disputed || (!entry.audited && entry.computer !== index)) {
      const own = build();
      if (entry.disputed) return own;
      entry.audited = true;
      const digest = digestOf(own);
      if (digest !== entry.digest) {
        entry.disputed = true;
        this.mismatches.push({ subnet: this.options.subnet, height: 0, auditor: this.nameOf(index), computer: this.nameOf(entry.computer), auditorStateHash: digest, computerStateHash: entry.digest, differing: ["genesis state"] });
      }
      return own;
    }
    return entry.state;
  }

  /** @internal Member `index` computed the outcome under `key` (plan "compute"). */
  store(index: number, key: string, outcome: O): void {
    const computer = this.nameOf(index);
    // Paranoid mode: the adopted plain objects are frozen, so a replica that mutated what it
    // shares (instead of building new objects) throws instead of changing the others' states.
    freezeShared(outcome);
    this.entries.set(key, { key, outcome, computer, auditor: this.drawAuditor(index), audited: false, disputed: false });
    this.newestHeight = Math.max(this.newestHeight, outcome.height);
    this.evict();
  }

  /**
   * @internal Member `index` re-executed the batch under `key` (plan "audit"): its outcome against
   * the stored one. A mismatch disputes the entry. Returns whether they agree.
   */
  audit(index: number, key: string, own: O): boolean {
    const entry = this.entries.get(key);
    assert(entry !== undefined, "an audited entry is kept until its audit");
    entry.audited = true;
    this.counts.audited++;
    const differing = differences(entry.outcome, own);
    if (differing.length === 0) return true;
    entry.disputed = true;
    this.mismatches.push({
      subnet: this.options.subnet,
      height: own.height,
      auditor: this.nameOf(index),
      computer: entry.computer,
      auditorStateHash: own.stateHash,
      computerStateHash: entry.outcome.stateHash,
      differing,
    });
    return false;
  }

  private nameOf(index: number): string {
    return this.members.get(index) ?? `r${index}`;
  }

  private noteDelivery(index: number, height: Height): void {
    this.lastDelivered.set(index, height);
  }

  /** One member other than `computer`, by the subnet's audit stream; none when the audit is off or no other member shares. */
  private drawAuditor(computer: number): number | undefined {
    if (this.options.audit === false) return undefined;
    const others = [...this.members.keys()].filter((i) => i !== computer).sort((a, b) => a - b);
    if (others.length === 0) return undefined;
    return others[this.options.auditRng.below(others.length)];
  }

  /**
   * Drops outcomes no member can still ask for: at or below the lowest height every member has
   * delivered, or more than `keepHeights` below the newest (a replica that lags further, or
   * restarts from an older checkpoint, executes on its own). An outcome whose audit is still
   * pending stays while it is within the bound.
   */
  private evict(): void {
    const keep = this.options.keepHeights ?? DEFAULT_KEEP_HEIGHTS;
    let lowestDelivered = Infinity;
    for (const index of this.members.keys()) lowestDelivered = Math.min(lowestDelivered, this.lastDelivered.get(index) ?? 0);
    for (const [key, entry] of this.entries) {
      const h = entry.outcome.height;
      const passedByAll = h <= lowestDelivered && (entry.auditor === undefined || entry.audited);
      if (passedByAll || h <= this.newestHeight - keep) this.entries.delete(key);
    }
  }
}

/** A replica's handle on its subnet's SharedExecution (given to each of its state machines). */
export class ExecutionSharing<O extends SharedOutcome = BatchOutcome> {
  constructor(
    private readonly shared: SharedExecution<O>,
    readonly index: number,
    readonly name: string,
    private readonly mayShare: boolean,
  ) {}

  /** Sharing is on for the subnet and this replica may take part. */
  get enabled(): boolean {
    return this.shared.sharing && this.mayShare;
  }

  join(): void {
    this.shared.join(this.index, this.name);
  }

  countExecution(): void {
    this.shared.countExecution();
  }

  plan(height: Height, key: string): SharingPlan<O> {
    return this.shared.plan(this.index, height, key);
  }

  store(key: string, outcome: O): void {
    this.shared.store(this.index, key, outcome);
  }

  audit(key: string, own: O): boolean {
    return this.shared.audit(this.index, key, own);
  }

  genesis(key: string, build: () => ExecutionRoundState, digestOf: (state: ExecutionRoundState) => HashHex): ExecutionRoundState {
    return this.shared.genesis(this.index, key, build, digestOf);
  }

  /**
   * Delivers one batch the shared way (for a member that is `enabled`): adopts the stored outcome
   * of `key`, or computes it — storing it for the others when it is the first, comparing it with
   * the stored one when this member is the batch's auditor, keeping it to itself when disputed.
   */
  deliver(height: Height, key: string, compute: () => O, adopt: (outcome: O) => void): void {
    const plan = this.plan(height, key);
    if (plan.kind === "adopt") {
      adopt(plan.outcome);
      return;
    }
    this.countExecution();
    const outcome = compute();
    if (plan.kind === "compute") this.store(key, outcome);
    else if (plan.kind === "audit") this.audit(key, outcome);
  }
}

/** The parts of two outcomes of one batch that differ (the certified hash where the machine has one). */
function differences(a: SharedOutcome, b: SharedOutcome): string[] {
  const out: string[] = [];
  if (a.stateHash !== b.stateHash) out.push("state hash");
  if (a.certifiedHash !== b.certifiedHash) out.push("certified hash");
  if (repliesDigest(a.historyOps) !== repliesDigest(b.historyOps)) out.push("replies");
  return out;
}

/** The statuses (replies, rejects) a batch wrote to the ingress history, in order. */
function repliesDigest(ops: readonly HistoryOp[]): string {
  const h = createHash("sha256");
  for (const o of ops) if (o.op === "set") h.update(`${o.id}|${describeStatus(o.status)}|${o.sender ?? ""}\n`);
  return h.digest("hex");
}

/**
 * The execution-affecting settings of a replica's state machine: any of them makes it execute on
 * its own and never store (fault hooks, canaries, an executor supplied from outside).
 */
export interface ExecutionHooks {
  readonly executor?: unknown;
  readonly corrupt?: unknown;
  readonly corruptReplies?: unknown;
  readonly perturbExecution?: unknown;
  readonly executionCanary?: unknown;
  readonly inductionCanary?: unknown;
  readonly snapshotCanary?: unknown;
  readonly skipChecksums?: boolean;
}

export function runsHonestExecution(o: ExecutionHooks): boolean {
  return (
    o.executor === undefined &&
    o.corrupt === undefined &&
    o.corruptReplies === undefined &&
    o.perturbExecution === undefined &&
    o.executionCanary === undefined &&
    o.inductionCanary === undefined &&
    o.snapshotCanary === undefined &&
    o.skipChecksums !== true
  );
}
