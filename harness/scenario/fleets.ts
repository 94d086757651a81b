// Fleets: one module installed into many canisters (canister per user, issue 14 item 2). A scenario
// declares a fleet as one canister entry with `count`; it stands for `count` canisters named
// `<name>-0` … `<name>-<count−1>`, installed in that order (so they take consecutive ids). The
// fleet's name stays usable where "any member" or "every member" makes sense: a workload call to a
// fleet goes to a member chosen at random, an upgrade/reinstall/stop/start/call action to a fleet is
// sent to every member. Nothing below the scenario layer knows about fleets: the replicas see
// ordinary canisters, and the module is compiled and instrumented once for all of them (the
// executor's module cache is keyed by the module's hash).
import type { CanisterSpec } from "./scenario.ts";

/** Upper bound of one fleet: the IC's subnets hold about 100,000 canisters (issue 14). */
export const MAX_FLEET_SIZE = 100_000;

/** The name of a fleet's `index`-th member. */
export function fleetMemberName(fleet: string, index: number): string {
  return `${fleet}-${index}`;
}

/** The canisters the specs stand for, fleets expanded in place, in declaration order. */
export function expandFleets(specs: readonly CanisterSpec[]): CanisterSpec[] {
  const out: CanisterSpec[] = [];
  for (const spec of specs) {
    if (spec.count === undefined) {
      out.push(spec);
      continue;
    }
    const { count, ...member } = spec;
    for (let i = 0; i < count; i++) out.push({ ...member, name: fleetMemberName(spec.name, i) });
  }
  return out;
}

/** Fleet name → its members' names, in order. */
export function fleetsOf(specs: readonly CanisterSpec[]): Map<string, string[]> {
  const fleets = new Map<string, string[]>();
  for (const spec of specs) {
    if (spec.count !== undefined) fleets.set(spec.name, Array.from({ length: spec.count }, (_, i) => fleetMemberName(spec.name, i)));
  }
  return fleets;
}
