// A simulated execution subnet an official agent can talk to: real BLS12-381 and Ed25519 keys
// (the agent verifies certificates and query signatures with its own code), the execution state
// machine, and a registry whose subnet id is the self-authenticating id of the subnet's root key
// — without a delegation the agent derives the subnet id from the root key and looks everything
// up under it (agent-compat §10, sharp edge 3).
//
// Clock. The agent reads its own wall clock: it sends ingress_expiry ∈ [now + 4 min, now + 5 min]
// and accepts certificates whose /time lies within ±5 min of now. The simulation never reads a
// wall clock; instead the subnet's virtual clock *starts* at `startTimeUs` (µs since the Unix
// epoch, given by the caller — a test passes the wall clock plus a lead) and from there advances
// only as the simulation runs, so the same start time and the same requests give the same run.
// Let d = virtual now − the agent's wall clock. The replica accepts an expiry in
// [now, now + 5 min 30 s], so d ∈ [−30 s, +4 min] keeps every agent envelope valid, and the
// agent's freshness check needs |d| ≤ 5 min. Starting the virtual clock AGENT_CLOCK_LEAD_MS
// ahead of the wall clock puts d in the middle of that window: a simulation may run up to about
// two minutes faster or slower than real time before an agent notices (when it does, its
// "Invalid request expiry" handling resynchronises its clock from a certificate's /time).
import { DEFAULT_CONSENSUS_CONFIG, type ConsensusConfig } from "../consensus/config.ts";
import type { BlsSubnetKeys } from "../crypto/bls-backend.ts";
import { assert } from "../assert.ts";
import { ExecutionStateMachine, type GenesisCanister } from "../replica/execution-state-machine.ts";
import { SimSubnet } from "../replica/subnet.ts";
import { CANISTERS_PER_SUBNET, Registry, type CanisterRange } from "../routing/registry.ts";
import { EventLoop } from "../sim/event-loop.ts";
import { defaultNetworkConfig, type NetworkConfig } from "../sim/network.ts";
import { Rng } from "../sim/rng.ts";
import { Trace } from "../sim/trace.ts";
import { timeUs, type ReplicaId } from "../types.ts";
import type { CanisterId } from "../execution/interfaces.ts";
import { subnetFacts, subnetIdText, type SubnetFacts } from "./facts.ts";
import type { ReplicaObserver } from "../replica/replica.ts";

/** How far ahead of the caller's wall clock a subnet for agents should start (see the clock note). */
export const AGENT_CLOCK_LEAD_MS = 120_000;

export interface AgentSubnetOptions {
  /** Replicas (default 4: f = 1). */
  readonly n?: number;
  readonly seed: number | string;
  /** Where the virtual clock starts, µs since the Unix epoch (see the clock note above). */
  readonly startTimeUs: number;
  /** Canisters installed at genesis, ids from the start of the range, controlled by a genesis principal. */
  readonly genesis?: readonly Omit<GenesisCanister, "id">[];
  readonly consensus?: Partial<ConsensusConfig>;
  readonly network?: NetworkConfig;
  readonly trace?: Trace;
  readonly observer?: ReplicaObserver;
}

export interface AgentSubnet {
  readonly subnet: SimSubnet;
  readonly facts: SubnetFacts;
  readonly registry: Registry;
  readonly range: CanisterRange;
  /** The ids of the genesis canisters, in the order given. */
  readonly genesisCanisterIds: readonly CanisterId[];
}

const NO_OBSERVER: ReplicaObserver = { onBatchDelivered: () => {}, onStateSynced: () => {} };

/** Builds (does not start) a BLS execution subnet whose state tree an official agent accepts. */
export function simulatedAgentSubnet(options: AgentSubnetOptions): AgentSubnet {
  const n = options.n ?? 4;
  assert(Number.isSafeInteger(options.startTimeUs) && options.startTimeUs >= 0, `startTimeUs must be a non-negative integer of µs, got ${options.startTimeUs}`);
  const consensus: ConsensusConfig = { ...DEFAULT_CONSENSUS_CONFIG, dkgIntervalLength: 19, ...options.consensus };
  const loop = new EventLoop();
  loop.runUntil(timeUs(options.startTimeUs));
  const range: CanisterRange = { start: 0n, end: CANISTERS_PER_SUBNET - 1n };
  // The registry needs the subnet id, which comes from keys the subnet deals in its constructor:
  // the state machines are made only when the subnet starts, after `late` is filled in.
  const late: { facts?: SubnetFacts; registry?: Registry } = {};
  const subnet = new SimSubnet({
    n,
    consensus,
    network: options.network ?? defaultNetworkConfig(n),
    rng: Rng.fromSeed(options.seed),
    trace: options.trace ?? new Trace(),
    observer: options.observer ?? NO_OBSERVER,
    crypto: "bls",
    loop,
    makeStateMachine: (_id: ReplicaId, disk) => {
      const { facts, registry } = late;
      assert(facts !== undefined && registry !== undefined, "the subnet's registry is made before it starts");
      const id = subnetIdText(facts);
      const record = registry.subnet(id);
      assert(record !== undefined, "the registry holds the subnet");
      const genesis = (options.genesis ?? []).map((g, k) => ({ ...g, id: registry.canisterId(record, k) }));
      return new ExecutionStateMachine(disk, {
        genesis,
        checkpointInterval: consensus.dkgIntervalLength + 1,
        subnet: {
          id,
          registry,
          publicKeyDerOf: (s) => (s === id ? facts.rootKeyDer : undefined),
          nodesOf: (s) => (s === id ? facts.nodes.map((node) => [node.nodeId, node.publicKeyDer] as const) : undefined),
        },
      });
    },
  });
  const keys = subnet.keys as BlsSubnetKeys;
  assert("thresholdPublicKey" in keys, "a subnet for agents signs with the bls backend");
  const facts = subnetFacts(keys, range);
  const registry = new Registry([{ id: subnetIdText(facts), name: "a", size: n, canisterRange: range }]);
  late.facts = facts;
  late.registry = registry;
  const record = registry.subnets[0];
  assert(record !== undefined, "the registry holds the subnet");
  const genesisCanisterIds = (options.genesis ?? []).map((_, k) => registry.canisterId(record, k));
  return { subnet, facts, registry, range, genesisCanisterIds };
}
