import { defineScenario, type Scenario } from "../harness/scenario/scenario.ts";

// Canister per user (issue 14 item 2), small enough for every CI run; scenarios/scale/fleet-80k.ts
// (npm run scale:fleet) is the same shape with 80,000 canisters. One module, three fleets: most
// users idle between their own calls, a fraction with a 5-second global timer, a few with a
// heartbeat every round. Calls to a fleet's name go to a member chosen at random; the upgrade
// action sends install_code to every member of the fleet (one ingress message each, from the
// controller), with v2 of the same module.
export interface FleetShape {
  /** Idle users, users with a 5-second timer, users with a heartbeat. */
  readonly users: number;
  readonly timedUsers: number;
  readonly heartbeatUsers: number;
  readonly name: string;
  /**
   * Simulated seconds (default 30). A block carries at most 1,000 ingress messages, so upgrading
   * a fleet of N takes at least N / 1,000 blocks: the last member is probed 4 s before the end.
   */
  readonly durationS?: number;
}

export function fleetScenario(shape: FleetShape): Scenario {
  const total = shape.users + shape.timedUsers + shape.heartbeatUsers;
  const durationS = shape.durationS ?? 30;
  return defineScenario({
    name: shape.name,
    description:
      `Canister per user: ${total.toLocaleString("en")} canisters from one module (${shape.users.toLocaleString("en")} idle users, ${shape.timedUsers} with a 5 s timer, ${shape.heartbeatUsers} with a heartbeat) take 60 calls/s spread over the fleet; at 8 s the whole fleet of users is upgraded to v2 while the calls go on. Every call is answered, the members' state survives the upgrade in stable memory, version() changes from 1 to 2, and timers keep firing.`,
    n: 4,
    durationS,
    canisters: [
      { name: "user", wasm: "fixtures/canisters/wat/user.wasm", count: shape.users },
      { name: "timed", wasm: "fixtures/canisters/wat/user.wasm", init: [{ nat: 5 }], count: shape.timedUsers },
      { name: "beating", wasm: "fixtures/canisters/wat/user-heartbeat.wasm", count: shape.heartbeatUsers },
    ],
    workload: { ratePerSec: 60, stopS: 20, calls: [{ canister: "user", method: "touch", args: [] }, { canister: "timed", method: "touch", args: [] }] },
    actions: [
      { atS: 6, kind: "probe", canister: "user-7", method: "version", label: "version-before" },
      { atS: 6, kind: "probe", canister: "timed-3", method: "ticks", label: "ticks-early" },
      { atS: 8, kind: "upgrade", canister: "user", wasm: "fixtures/canisters/wat/user-v2.wasm" },
      { atS: 8, kind: "upgrade", canister: "timed", wasm: "fixtures/canisters/wat/user-v2.wasm" },
      { atS: 18, kind: "probe", canister: "user-7", method: "version", label: "version-after" },
      { atS: durationS - 4, kind: "probe", canister: `user-${shape.users - 1}`, method: "version", label: "last-version-after" },
      { atS: 22, kind: "probe", canister: "timed-3", method: "ticks", label: "ticks-late" },
    ],
    expectProbes: { differ: [["version-before", "version-after"], ["ticks-early", "ticks-late"]], equal: [["version-after", "last-version-after"]] },
    invariants: [{ kind: "every-call-answered" }],
    consensus: { dkgIntervalLength: 19 },
    expect: { verdict: "pass" },
  });
}

export default fleetScenario({ name: "fleet-upgrade", users: 400, timedUsers: 20, heartbeatUsers: 5 });
