// The invariant "a trapped update changes nothing" (issue 11, C3), over what honest replicas
// reported while executing (harness/replica/trap-watch.ts): an update call that traps must leave
// the canister's heap, stable memory, globals and certified data as they were. A violation names
// the replica, the height, the call and what changed; one per replica (the first), with a count.
import type { Violation } from "./checks.ts";

export interface TrappedChangeSeen {
  readonly replica: string;
  readonly height: number;
  readonly canister: string;
  readonly message: string;
  readonly method: string;
  readonly trap: string;
  readonly changed: readonly string[];
}

export function checkTrappedUpdates(seen: readonly TrappedChangeSeen[]): Violation[] {
  const byReplica = new Map<string, TrappedChangeSeen[]>();
  for (const s of seen) {
    const list = byReplica.get(s.replica);
    if (list === undefined) byReplica.set(s.replica, [s]);
    else list.push(s);
  }
  return [...byReplica.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([replica, list]) => {
    const first = list[0]!;
    const more = list.length > 1 ? `; ${list.length - 1} more trapped update(s) changed state on ${replica}` : "";
    return {
      property: "invariant" as const,
      height: first.height,
      replicas: [replica],
      message: `${replica}: update ${first.method} (${first.message.slice(0, 16)}) on ${first.canister} trapped at height ${first.height} ("${first.trap.slice(0, 60)}"), yet its ${first.changed.join(", ")} changed; a trapped update must leave the canister as it was${more}`,
    };
  });
}
