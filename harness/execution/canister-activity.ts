// Which canisters the round driver (round.ts) has to look at besides those with queued messages or
// long executions: the ones that get a heartbeat, a global timer that is set, best-effort callbacks
// that may expire, a low-memory hook that is due. Derived from the canisters alone — not replicated
// state, not hashed — so that a round of a 100,000-canister subnet with a few busy ones does not
// walk every canister to find them.
//
// An index belongs to one canisters array (same canisters, same objects). It is remembered per
// array (WeakMap), carried over from round to round by applying the canisters a round changed
// (`withChanged`), and rebuilt from scratch (O(n)) for an array nobody registered — a state built
// by other code (install, deletion, decode, ExecutionLab). Paranoid runs compare the carried index
// with a rebuilt one.
import { assert } from "../assert.ts";
import { paranoid } from "../paranoia.ts";
import { compareCanisterIds } from "../state/canister-order.ts";
import type { CanisterId, CanisterState } from "./interfaces.ts";
import { hookDue } from "./low-wasm-memory.ts";

/** A set global timer, ordered by (deadline, id). */
export interface ArmedTimer {
  readonly deadlineNs: bigint;
  readonly id: CanisterId;
}

const exportsMethod = (c: CanisterState, name: string): boolean => c.execution?.exports.includes(name) ?? false;

/** Running and exports canister_heartbeat: gets a heartbeat task every round. */
const getsHeartbeat = (c: CanisterState): boolean => c.status === "running" && exportsMethod(c, "canister_heartbeat");

/** Running, exports canister_global_timer and has a timer set: gets a task once the timer is due. */
const armedTimer = (c: CanisterState): boolean => c.status === "running" && c.globalTimerNs > 0n && exportsMethod(c, "canister_global_timer");

/** Has a best-effort callback whose deadline may still pass (deadlines.ts). */
const awaitsDeadline = (c: CanisterState): boolean => c.callbacks.some((cb) => cb.deadlineNs !== undefined && cb.expired !== true);

const compareTimers = (a: ArmedTimer, b: ArmedTimer): number => (a.deadlineNs !== b.deadlineNs ? (a.deadlineNs < b.deadlineNs ? -1 : 1) : compareCanisterIds(a.id, b.id));

const remembered = new WeakMap<readonly CanisterState[], CanisterActivity>();

export class CanisterActivity {
  private constructor(
    /** Canisters that get a heartbeat every round. */
    readonly heartbeat: ReadonlySet<CanisterId>,
    /** Armed global timers by (deadline, id). */
    readonly timers: readonly ArmedTimer[],
    /** Canisters with best-effort callbacks that may expire. */
    readonly deadlines: ReadonlySet<CanisterId>,
    /** Canisters whose low-memory hook is due. */
    readonly hookReady: ReadonlySet<CanisterId>,
  ) {}

  /** The index of `canisters`: remembered, else built (O(n)) and remembered. */
  static of(canisters: readonly CanisterState[]): CanisterActivity {
    const known = remembered.get(canisters);
    if (known !== undefined) return known;
    const built = CanisterActivity.build(canisters);
    remembered.set(canisters, built);
    return built;
  }

  /** Registers `activity` as the index of `canisters` (checked against a rebuild in paranoid runs). */
  static remember(canisters: readonly CanisterState[], activity: CanisterActivity): void {
    if (paranoid) assert(activity.sameAs(CanisterActivity.build(canisters)), "carried canister activity index differs from a rebuilt one");
    remembered.set(canisters, activity);
  }

  private static build(canisters: readonly CanisterState[]): CanisterActivity {
    const heartbeat = new Set<CanisterId>();
    const timers: ArmedTimer[] = [];
    const deadlines = new Set<CanisterId>();
    const hookReady = new Set<CanisterId>();
    for (const c of canisters) {
      if (getsHeartbeat(c)) heartbeat.add(c.id);
      if (armedTimer(c)) timers.push({ deadlineNs: c.globalTimerNs, id: c.id });
      if (awaitsDeadline(c)) deadlines.add(c.id);
      if (hookDue(c)) hookReady.add(c.id);
    }
    return new CanisterActivity(heartbeat, timers.sort(compareTimers), deadlines, hookReady);
  }

  /** Canisters whose timer is due at `nowNs` (deadline ≤ now), in (deadline, id) order. */
  dueTimers(nowNs: bigint): CanisterId[] {
    const due: CanisterId[] = [];
    for (const t of this.timers) {
      if (t.deadlineNs > nowNs) break;
      due.push(t.id);
    }
    return due;
  }

  /** The index after the given canisters changed (`before` → `after`, same id). O(changes + sets touched). */
  withChanged(changes: readonly { readonly before: CanisterState; readonly after: CanisterState }[]): CanisterActivity {
    if (changes.length === 0) return this;
    const heartbeat = updatedSet(this.heartbeat, changes, getsHeartbeat);
    const deadlines = updatedSet(this.deadlines, changes, awaitsDeadline);
    const hookReady = updatedSet(this.hookReady, changes, hookDue);
    const timersChanged = changes.some(({ before, after }) => armedTimer(before) || armedTimer(after));
    let timers = this.timers;
    if (timersChanged) {
      const changedIds = new Set(changes.map((c) => c.before.id));
      const kept = this.timers.filter((t) => !changedIds.has(t.id));
      const added = changes.filter(({ after }) => armedTimer(after)).map(({ after }) => ({ deadlineNs: after.globalTimerNs, id: after.id }));
      timers = mergeSorted(kept, added.sort(compareTimers));
    }
    return new CanisterActivity(heartbeat, timers, deadlines, hookReady);
  }

  private sameAs(other: CanisterActivity): boolean {
    const sameSet = (a: ReadonlySet<CanisterId>, b: ReadonlySet<CanisterId>): boolean => a.size === b.size && [...a].every((id) => b.has(id));
    return (
      sameSet(this.heartbeat, other.heartbeat) &&
      sameSet(this.deadlines, other.deadlines) &&
      sameSet(this.hookReady, other.hookReady) &&
      this.timers.length === other.timers.length &&
      this.timers.every((t, i) => t.id === other.timers[i]!.id && t.deadlineNs === other.timers[i]!.deadlineNs)
    );
  }
}

/** `set` with membership re-decided for the changed canisters; the same object when nothing moved. */
function updatedSet(
  set: ReadonlySet<CanisterId>,
  changes: readonly { readonly before: CanisterState; readonly after: CanisterState }[],
  member: (c: CanisterState) => boolean,
): ReadonlySet<CanisterId> {
  let out: Set<CanisterId> | undefined;
  for (const { after } of changes) {
    const now = member(after);
    if (now === (out ?? set).has(after.id)) continue;
    out ??= new Set(set);
    if (now) out.add(after.id);
    else out.delete(after.id);
  }
  return out ?? set;
}

function mergeSorted(a: readonly ArmedTimer[], b: readonly ArmedTimer[]): ArmedTimer[] {
  const out: ArmedTimer[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && compareTimers(a[i]!, b[j]!) <= 0)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
