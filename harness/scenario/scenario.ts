// Scenarios are typed modules in scenarios/: `export default defineScenario({...})`. This module
// defines their shape and checks them with clear messages before anything runs.
import { DEFAULT_CONSENSUS_CONFIG, checkConsensusConfig, type ConsensusConfig } from "../consensus/config.ts";
import { checkFaultSpec, type FaultSpec } from "../faults/spec.ts";
import type { VerdictText } from "../checks/checks.ts";
import { defaultNetworkConfig, REGIONS, type NetworkConfig } from "../sim/network.ts";
import type { WorkloadSpec } from "./workload.ts";

export interface Expectation {
  readonly verdict: VerdictText;
  /** Replica names (`r3`) that the violations must name — and, for state divergence, only them. */
  readonly replicas?: readonly string[];
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly n: number;
  readonly durationS: number;
  readonly workload?: WorkloadSpec;
  readonly faults?: readonly FaultSpec[];
  /** What the suite expects; `subnetlab run` still exits non-zero on any violation. */
  readonly expect?: Expectation;
  readonly consensus?: Partial<ConsensusConfig>;
  readonly network?: Partial<Pick<NetworkConfig, "jitterPercent" | "bandwidthMbps">>;
  /** Liveness bound after the last heal, in simulated seconds (default 30). */
  readonly livenessBoundS?: number;
  /**
   * Wasm canisters installed at genesis on every replica (paths relative to the repository root).
   * With canisters, batches run on the execution environment instead of the key-value placeholder.
   */
  readonly canisters?: readonly { readonly name: string; readonly wasm: string }[];
  /** Signature backend (default `sim`; `bls` is real BLS12-381 and Ed25519, much slower). */
  readonly crypto?: "sim" | "bls";
}

export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

export function defineScenario(scenario: Scenario): Scenario {
  checkScenario(scenario);
  return scenario;
}

export function checkScenario(s: Scenario): void {
  const fail = (message: string): never => {
    throw new ScenarioError(`scenario ${JSON.stringify(s.name ?? "?")}: ${message}`);
  };
  if (typeof s.name !== "string" || !/^[a-z0-9-]+$/.test(s.name)) fail("name must be lower-case letters, digits and dashes");
  if (!Number.isInteger(s.n) || s.n < 1 || s.n > 100) fail(`n must be an integer in 1..100, got ${s.n}`);
  if (!(s.durationS > 0 && s.durationS <= 3600)) fail(`durationS must be in (0, 3600], got ${s.durationS}`);
  if (s.workload !== undefined && !(s.workload.ratePerSec >= 0 && s.workload.ratePerSec <= 100_000)) {
    fail("workload.ratePerSec must be in [0, 100000]");
  }
  if (s.crypto !== undefined && s.crypto !== "sim" && s.crypto !== "bls") fail(`crypto must be "sim" or "bls", got ${JSON.stringify(s.crypto)}`);
  const names = new Set<string>();
  for (const c of s.canisters ?? []) {
    if (!/^[a-z0-9-]+$/.test(c.name) || names.has(c.name)) fail(`canister name ${JSON.stringify(c.name)} must be unique lower-case letters, digits and dashes`);
    names.add(c.name);
  }
  const call = s.workload?.call;
  if (call !== undefined && !names.has(call.canister)) fail(`workload.call.canister ${JSON.stringify(call.canister)} is not one of the scenario's canisters`);
  (s.faults ?? []).forEach((f, i) => {
    try {
      checkFaultSpec(f, i, s.n, s.durationS);
    } catch (error) {
      fail((error as Error).message);
    }
  });
  try {
    checkConsensusConfig(consensusConfigOf(s));
  } catch (error) {
    fail(`consensus: ${(error as Error).message}`);
  }
}

export function consensusConfigOf(s: Scenario): ConsensusConfig {
  return { ...DEFAULT_CONSENSUS_CONFIG, ...s.consensus };
}

export function networkConfigOf(s: Scenario): NetworkConfig {
  return { ...defaultNetworkConfig(s.n), ...s.network, regions: defaultNetworkConfig(s.n).regions.map((_, i) => REGIONS[i % REGIONS.length] ?? "europe") };
}
