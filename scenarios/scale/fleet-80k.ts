// Issue 14 item 2 at full size: 80,000 canisters from one module on one subnet (canister per user),
// the same shape as scenarios/fleet-upgrade.ts — 1 % of the users on a 5-second timer, 0.1 % with
// a heartbeat, calls spread over the fleet, and the whole fleet upgraded while the calls go on.
// Not part of `npm run chaos` (it takes minutes): `npm run scale:fleet` runs it and prints the
// wall time and memory it took (figures in docs/BENCHMARKS.md).
import { fleetScenario } from "../fleet-upgrade.ts";

// 80 blocks at least for the upgrade (1,000 ingress messages a block) while the users' calls go on.
export default fleetScenario({ name: "fleet-80k", users: 79_120, timedUsers: 800, heartbeatUsers: 80, durationS: 60 });
