// Scenarios are typed modules in scenarios/: `export default defineScenario({...})`. This module
// defines their shape and checks them with clear messages before anything runs.
import { DEFAULT_CONSENSUS_CONFIG, checkConsensusConfig, type ConsensusConfig } from "../consensus/config.ts";
import { BYZANTINE_KINDS, checkFaultSpec, FAULTY_KINDS, replicasOf, type FaultSpec } from "../faults/spec.ts";
import type { VerdictText } from "../checks/checks.ts";
import { defaultNetworkConfig, REGIONS, type NetworkConfig } from "../sim/network.ts";
import type { WorkloadSpec } from "./workload.ts";
import { ACTION_KINDS, checkArgTemplates, type ArgTemplate, type ProbeExpectations, type ScenarioAction } from "./calls.ts";
import { unknownFieldMessage } from "./spelling.ts";
import { executionTimeModel, type CheckpointMode, type ExecutionTimeModel } from "../replica/execution-time.ts";
import { faultsTolerated } from "../types.ts";
import { expandFleets, fleetMemberName, MAX_FLEET_SIZE } from "./fleets.ts";

export interface CanisterSpec {
  readonly name: string;
  /** Repository path of the Wasm module. */
  readonly wasm: string;
  /** Candid install argument. */
  readonly init?: readonly ArgTemplate[];
  /**
   * A canister state file written by `subnetlab snapshot save` (absolute, or relative to the
   * repository root like `wasm`): the canister is created at genesis and its saved module, heap,
   * stable memory, globals, certified data and timer are loaded into it instead of installing
   * `wasm` — whose bytes must be the file's module (a check that the file is the one meant).
   * No `init`: nothing is installed. The file's content hash goes into the run's repro bundle.
   */
  readonly fromSnapshot?: string;
  /**
   * A fleet (harness/scenario/fleets.ts): the module installed into this many canisters, named
   * `<name>-0` … (canister per user). Workload calls to the fleet's name go to a random member;
   * actions on it go to every member.
   */
  readonly count?: number;
}

/** One subnet of a multi-subnet scenario. */
export interface SubnetSpec {
  /** Lower-case name (`a`, `b`, …); replicas are reported as `a/r0`. */
  readonly name: string;
  readonly n: number;
  readonly canisters?: readonly CanisterSpec[];
  /** Faults inside this subnet (replica indices are the subnet's own). */
  readonly faults?: readonly FaultSpec[];
}

/** Cut every XNet link between groups of subnets from `fromS` to `toS` (omitted: to the end). */
export interface XNetPartitionSpec {
  readonly kind: "partition-subnets";
  readonly groups: readonly (readonly string[])[];
  readonly fromS: number;
  readonly toS?: number;
}

/** Application invariants checked at the end of the run (property "invariant", exit code 14). */
export type InvariantSpec =
  /** Σ (supply + in_flight) over the ledgers = Σ minted, and no acknowledged transfer lost. */
  | { readonly kind: "ledger-conservation"; readonly ledgers: readonly string[] }
  /** Every finalized call was answered (replied or rejected) on every live honest replica. */
  | { readonly kind: "every-call-answered" };

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
  readonly canisters?: readonly CanisterSpec[];
  /** Signature backend (default `sim`; `bls` is real BLS12-381 and Ed25519, much slower). */
  readonly crypto?: "sim" | "bls";
  /**
   * Several subnets (One Internet Computer): each with its replicas, canisters and faults; they
   * talk through certified XNet streams. `n` must then equal the first subnet's size, and the
   * top-level `canisters` and `faults` must be absent.
   */
  readonly subnets?: readonly SubnetSpec[];
  readonly xnetFaults?: readonly XNetPartitionSpec[];
  /** Timed calls, management operations and probes. */
  readonly actions?: readonly ScenarioAction[];
  readonly expectProbes?: ProbeExpectations;
  readonly invariants?: readonly InvariantSpec[];
  /** How execution subnets run their replicas' executions (harness/replica/shared-execution.ts). */
  readonly execution?: ExecutionSettings;
}

/**
 * Execute once, verify always (issue 13 item 1): `sharing` (default on) lets honest replicas with
 * the same pre-state adopt one replica's execution of a batch (on key-value subnets: its
 * application of the batch); `audit` (default on) has one other replica per shared batch compute
 * it again and compare. Neither changes the trace digest.
 */
export interface ExecutionSettings {
  readonly sharing?: boolean;
  readonly audit?: boolean;
  /**
   * Issue 14 item 1: execution rounds, hashing and checkpoints take simulated time, from the
   * instructions, pages and canisters they touch (harness/replica/execution-time.ts). Default off:
   * the replica's own work takes no time, as in every scenario written before it.
   */
  readonly timeModel?: boolean;
  /**
   * With the time model: "blocking" (default; the IC's behaviour the checkpoint-downtime scenario
   * reproduces) or "background" (checkpoints written from an immutable copy while execution goes on).
   */
  readonly checkpoints?: CheckpointMode;
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
  checkFields(s, fail);
  if (typeof s.name !== "string" || !/^[a-z0-9-]+$/.test(s.name)) fail("name must be lower-case letters, digits and dashes");
  if (!Number.isInteger(s.n) || s.n < 1 || s.n > 100) fail(`n must be an integer in 1..100, got ${s.n}`);
  if (!(s.durationS > 0 && s.durationS <= 3600)) fail(`durationS must be in (0, 3600], got ${s.durationS}`);
  if (s.workload !== undefined && !(s.workload.ratePerSec >= 0 && s.workload.ratePerSec <= 100_000)) {
    fail("workload.ratePerSec must be in [0, 100000]");
  }
  if (s.crypto !== undefined && s.crypto !== "sim" && s.crypto !== "bls") fail(`crypto must be "sim" or "bls", got ${JSON.stringify(s.crypto)}`);
  const names = new Set<string>();
  const fleets = checkFleetSizes(s, fail);
  for (const c of allCanisters(s)) {
    if (!/^[a-z0-9-]+$/.test(c.name) || names.has(c.name)) fail(`canister name ${JSON.stringify(c.name)} must be unique lower-case letters, digits and dashes`);
    names.add(c.name);
    for (const problem of checkArgTemplates(c.init ?? [], names, `canister ${c.name} init`)) fail(problem);
    if (c.fromSnapshot !== undefined) {
      if (typeof c.fromSnapshot !== "string" || c.fromSnapshot === "") fail(`canister ${c.name}: fromSnapshot must be the path of a canister state file`);
      if (c.init !== undefined) fail(`canister ${c.name}: fromSnapshot loads a saved state, so nothing is installed: drop init`);
    }
  }
  for (const fleet of fleets) if (names.has(fleet)) fail(`fleet ${JSON.stringify(fleet)} has the name of a canister`);
  const callable = (name: string): boolean => names.has(name) || fleets.has(name);
  const call = s.workload?.call;
  if (call !== undefined && !callable(call.canister)) fail(`workload.call.canister ${JSON.stringify(call.canister)} is not one of the scenario's canisters or fleets`);
  for (const [i, template] of (s.workload?.calls ?? []).entries()) {
    if (!callable(template.canister)) fail(`workload.calls[${i}].canister ${JSON.stringify(template.canister)} is not one of the scenario's canisters or fleets`);
    for (const problem of checkArgTemplates(template.args, names, `workload.calls[${i}]`)) fail(problem);
  }
  const senders = s.workload?.senders;
  if (senders !== undefined && !["sim", "ed25519", "ecdsa-p256", "ecdsa-secp256k1", "anonymous", "mixed"].includes(senders)) fail(`workload.senders must be sim, ed25519, ecdsa-p256, ecdsa-secp256k1, anonymous or mixed, got ${JSON.stringify(senders)}`);
  if (senders !== undefined && senders !== "sim" && call === undefined && (s.workload?.calls ?? []).length === 0) fail("workload.senders other than sim sign canister calls: give workload.call or workload.calls");
  checkSubnets(s, fail);
  checkActions(s, names, fleets, fail);
  for (const sub of s.subnets ?? []) {
    (sub.faults ?? []).forEach((f, i) => {
      try {
        checkFaultSpec(f, i, sub.n, s.durationS);
      } catch (error) {
        fail(`subnet ${sub.name}: ${(error as Error).message}`);
      }
    });
  }
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

/** Every canister of the scenario, over all its subnets, in declaration order (fleets expanded). */
export function allCanisters(s: Scenario): CanisterSpec[] {
  return expandFleets(declaredCanisters(s));
}

/** The canister entries as the scenario declares them (a fleet is one entry). */
export function declaredCanisters(s: Scenario): CanisterSpec[] {
  return s.subnets === undefined ? [...(s.canisters ?? [])] : s.subnets.flatMap((sub) => [...(sub.canisters ?? [])]);
}

/** Checks each fleet's `count`; the fleets' names. */
function checkFleetSizes(s: Scenario, fail: (message: string) => never): Set<string> {
  const fleets = new Set<string>();
  for (const c of declaredCanisters(s)) {
    if (c.count === undefined) continue;
    if (!Number.isInteger(c.count) || c.count < 1 || c.count > MAX_FLEET_SIZE) fail(`canister ${JSON.stringify(c.name)}: count (a fleet's size) must be an integer in 1..${MAX_FLEET_SIZE}, got ${c.count}`);
    if (fleets.has(c.name)) fail(`fleet name ${JSON.stringify(c.name)} is used twice`);
    fleets.add(c.name);
  }
  return fleets;
}

function checkSubnets(s: Scenario, fail: (message: string) => never): void {
  if (s.subnets === undefined) {
    if (s.xnetFaults !== undefined && s.xnetFaults.length > 0) fail("xnetFaults need subnets");
    return;
  }
  if (s.subnets.length < 1 || s.subnets.length > 8) fail("subnets must list 1 to 8 subnets");
  if (s.canisters !== undefined || (s.faults ?? []).length > 0) fail("with subnets, declare canisters and faults inside each subnet");
  const names = new Set<string>();
  for (const sub of s.subnets) {
    if (!/^[a-z][a-z0-9]*$/.test(sub.name) || names.has(sub.name)) fail(`subnet name ${JSON.stringify(sub.name)} must be unique lower-case letters and digits`);
    names.add(sub.name);
    if (!Number.isInteger(sub.n) || sub.n < 1 || sub.n > 40) fail(`subnet ${sub.name}: n must be an integer in 1..40, got ${sub.n}`);
  }
  if (s.subnets[0]?.n !== s.n) fail(`n (${s.n}) must equal the first subnet's size (${s.subnets[0]?.n})`);
  for (const [i, p] of (s.xnetFaults ?? []).entries()) {
    if (p.kind !== "partition-subnets") fail(`xnetFaults[${i}]: unknown kind ${JSON.stringify(p.kind)}`);
    if (p.groups.length < 2 || p.groups.some((g) => g.length === 0 || g.some((name) => !names.has(name)))) fail(`xnetFaults[${i}]: groups must be ≥ 2 non-empty lists of subnet names`);
    if (!(p.fromS >= 0 && (p.toS === undefined || p.toS > p.fromS) && (p.toS ?? 0) <= s.durationS)) fail(`xnetFaults[${i}]: need 0 ≤ fromS < toS ≤ durationS`);
  }
}

/** Actions a fleet's name may carry: each is sent to every member. */
const FLEET_ACTION_KINDS: ReadonlySet<ScenarioAction["kind"]> = new Set(["call", "upgrade", "reinstall", "stop", "start"]);

function checkActions(s: Scenario, canisters: ReadonlySet<string>, fleets: ReadonlySet<string>, fail: (message: string) => never): void {
  const labels = new Set<string>();
  for (const [i, a] of (s.actions ?? []).entries()) {
    const at = `actions[${i}]`;
    if (!ACTION_KINDS.includes(a.kind)) fail(`${at}: unknown kind ${JSON.stringify(a.kind)} (one of ${ACTION_KINDS.join(", ")})`);
    if (!(a.atS >= 0 && a.atS < s.durationS)) fail(`${at}: atS must be in [0, durationS)`);
    if (fleets.has(a.canister)) {
      if (!FLEET_ACTION_KINDS.has(a.kind)) fail(`${at}: ${a.kind} names fleet ${JSON.stringify(a.canister)}; name one member (e.g. ${JSON.stringify(fleetMemberName(a.canister, 0))}) — only ${[...FLEET_ACTION_KINDS].join(", ")} go to a whole fleet`);
    } else if (!canisters.has(a.canister)) fail(`${at}: unknown canister ${JSON.stringify(a.canister)}`);
    if ("args" in a) for (const problem of checkArgTemplates(a.args ?? [], canisters, at)) fail(problem);
    if (a.kind === "take-snapshot" || a.kind === "probe") {
      if (labels.has(a.label)) fail(`${at}: label ${JSON.stringify(a.label)} is used twice`);
      labels.add(a.label);
    }
    if (a.kind === "load-snapshot" && !labels.has(a.snapshot)) fail(`${at}: no earlier take-snapshot is labelled ${JSON.stringify(a.snapshot)}`);
  }
  for (const [x, y] of [...(s.expectProbes?.equal ?? []), ...(s.expectProbes?.differ ?? [])]) {
    if (!labels.has(x) || !labels.has(y)) fail(`expectProbes names a probe that no action defines (${x}, ${y})`);
  }
  for (const inv of s.invariants ?? []) {
    if (inv.kind === "ledger-conservation" && inv.ledgers.some((l) => !canisters.has(l))) fail(`invariant ledger-conservation names an unknown canister`);
  }
}

/** The scenario's execution time model, or undefined when its replicas' own work takes no time. */
export function executionTimeOf(s: Scenario): ExecutionTimeModel | undefined {
  if (s.execution?.timeModel !== true) return undefined;
  return executionTimeModel(s.execution.checkpoints === undefined ? {} : { checkpoints: s.execution.checkpoints });
}

/** `{ executionTime }` for SimSubnet options when the scenario has a time model, else `{}`. */
export function executionTimeOption(s: Scenario): { readonly executionTime?: ExecutionTimeModel } {
  const model = executionTimeOf(s);
  return model === undefined ? {} : { executionTime: model };
}

export function consensusConfigOf(s: Scenario): ConsensusConfig {
  return { ...DEFAULT_CONSENSUS_CONFIG, ...s.consensus };
}

export function networkConfigOf(s: Scenario): NetworkConfig {
  return { ...defaultNetworkConfig(s.n), ...s.network, regions: defaultNetworkConfig(s.n).regions.map((_, i) => REGIONS[i % REGIONS.length] ?? "europe") };
}

// ---- field names ---------------------------------------------------------------------------------
// A misspelt optional field would otherwise be ignored silently (`fualts: [...]` runs without
// faults), so every object of a scenario is checked against its type's fields. The tables are
// `Record<keyof …, true>` so that adding a field to a type without listing it here fails typecheck.

type KeysOfUnion<T> = T extends unknown ? keyof T : never;
type FieldTable<T> = Record<KeysOfUnion<T>, true>;

const SCENARIO_FIELDS: FieldTable<Scenario> = {
  name: true, description: true, n: true, durationS: true, workload: true, faults: true, expect: true, consensus: true, network: true,
  livenessBoundS: true, canisters: true, crypto: true, subnets: true, xnetFaults: true, actions: true, expectProbes: true, invariants: true,
  execution: true,
};
const EXECUTION_FIELDS: FieldTable<ExecutionSettings> = { sharing: true, audit: true, timeModel: true, checkpoints: true };
const WORKLOAD_FIELDS: FieldTable<WorkloadSpec> = {
  ratePerSec: true, startS: true, stopS: true, payloadBytes: true, keySpace: true, invalidPercent: true, resubmitAfterS: true, call: true, calls: true, senders: true,
};
const CALL_FIELDS: FieldTable<NonNullable<WorkloadSpec["calls"]>[number]> = { canister: true, method: true, args: true };
const FAULT_FIELDS: FieldTable<FaultSpec> = {
  kind: true, replicas: true, fromS: true, toS: true, artifacts: true, target: true, sideA: true, delayMs: true, atS: true, restartS: true,
  groups: true, from: true, to: true, effect: true, percent: true, maxDelayMs: true, scope: true,
};
const CONSENSUS_FIELDS: FieldTable<ConsensusConfig> = {
  unitDelayMs: true, initialNotaryDelayMs: true, dkgIntervalLength: true, statusIntervalMs: true, maxIngressMessagesPerBlock: true, maxIngressBytesPerBlock: true, canary: true,
};
const NETWORK_FIELDS: FieldTable<NonNullable<Scenario["network"]>> = { jitterPercent: true, bandwidthMbps: true };
const EXPECT_FIELDS: FieldTable<Expectation> = { verdict: true, replicas: true };
const CANISTER_FIELDS: FieldTable<CanisterSpec> = { name: true, wasm: true, init: true, fromSnapshot: true, count: true };
const SUBNET_FIELDS: FieldTable<SubnetSpec> = { name: true, n: true, canisters: true, faults: true };
const XNET_FAULT_FIELDS: FieldTable<XNetPartitionSpec> = { kind: true, groups: true, fromS: true, toS: true };
const ACTION_FIELDS: FieldTable<ScenarioAction> = { atS: true, kind: true, canister: true, method: true, args: true, wasm: true, label: true, snapshot: true };
const PROBE_EXPECTATION_FIELDS: FieldTable<ProbeExpectations> = { equal: true, differ: true };
const INVARIANT_FIELDS: FieldTable<InvariantSpec> = { kind: true, ledgers: true };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Refuses a value that is not an object, and any field its type does not have. */
function checkObjectFields(value: unknown, fields: Record<string, true>, where: string, fail: (message: string) => never): void {
  if (value === undefined) return;
  if (!isPlainObject(value)) fail(`${where} must be an object, got ${value === null ? "null" : Array.isArray(value) ? "a list" : typeof value}`);
  const valid = Object.keys(fields);
  for (const key of Object.keys(value as object)) if (!(key in fields)) fail(unknownFieldMessage(key, valid, where === "" ? "" : where));
}

/** Checks a list of objects; each element's fields as `checkObjectFields`. */
function checkListFields(value: unknown, fields: Record<string, true>, where: string, fail: (message: string) => never): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) fail(`${where} must be a list`);
  (value as unknown[]).forEach((item, i) => checkObjectFields(item ?? null, fields, `${where}[${i}]`, fail));
}

function checkFields(s: Scenario, fail: (message: string) => never): void {
  if (!isPlainObject(s)) fail("a scenario must be an object");
  const valid = Object.keys(SCENARIO_FIELDS);
  for (const key of Object.keys(s)) if (!(key in SCENARIO_FIELDS)) fail(unknownFieldMessage(key, valid));
  checkObjectFields(s.workload, WORKLOAD_FIELDS, "workload", fail);
  checkObjectFields(s.workload?.call, { canister: true, method: true }, "workload.call", fail);
  checkListFields(s.workload?.calls, CALL_FIELDS, "workload.calls", fail);
  checkListFields(s.faults, FAULT_FIELDS, "faults", fail);
  checkObjectFields(s.consensus, CONSENSUS_FIELDS, "consensus", fail);
  checkObjectFields(s.network, NETWORK_FIELDS, "network", fail);
  checkObjectFields(s.expect, EXPECT_FIELDS, "expect", fail);
  checkListFields(s.canisters, CANISTER_FIELDS, "canisters", fail);
  checkListFields(s.subnets, SUBNET_FIELDS, "subnets", fail);
  for (const [i, sub] of (s.subnets ?? []).entries()) {
    checkListFields(sub.canisters, CANISTER_FIELDS, `subnets[${i}].canisters`, fail);
    checkListFields(sub.faults, FAULT_FIELDS, `subnets[${i}].faults`, fail);
  }
  checkListFields(s.xnetFaults, XNET_FAULT_FIELDS, "xnetFaults", fail);
  checkListFields(s.actions, ACTION_FIELDS, "actions", fail);
  checkObjectFields(s.expectProbes, PROBE_EXPECTATION_FIELDS, "expectProbes", fail);
  checkListFields(s.invariants, INVARIANT_FIELDS, "invariants", fail);
  checkObjectFields(s.execution, EXECUTION_FIELDS, "execution", fail);
  for (const key of ["sharing", "audit", "timeModel"] as const) {
    const value = s.execution?.[key];
    if (value !== undefined && typeof value !== "boolean") fail(`execution.${key} must be true or false, got ${JSON.stringify(value)}`);
  }
  const checkpoints = s.execution?.checkpoints;
  if (checkpoints !== undefined && checkpoints !== "blocking" && checkpoints !== "background") fail(`execution.checkpoints must be "blocking" or "background", got ${JSON.stringify(checkpoints)}`);
  if (checkpoints !== undefined && s.execution?.timeModel !== true) fail("execution.checkpoints needs execution.timeModel: true (without the time model checkpoints take no time)");
}

// ---- notes: legal but probably not what was meant ---------------------------------------------------

/**
 * Things a scenario may do but that deserve a word in the run's notes: a subnet size not of the
 * form 3f+1 (the extra replicas add no fault tolerance), and more Byzantine replicas than f while
 * the scenario expects every check to pass (nothing guarantees that beyond f).
 */
export function scenarioNotes(s: Scenario): string[] {
  const groups = s.subnets === undefined
    ? [{ label: "", n: s.n, faults: s.faults ?? [] }]
    : s.subnets.map((sub) => ({ label: `subnet ${sub.name}: `, n: sub.n, faults: sub.faults ?? [] }));
  const notes: string[] = [];
  for (const g of groups) {
    const f = faultsTolerated(g.n);
    if ((g.n - 1) % 3 !== 0) notes.push(`${g.label}n = ${g.n} is not of the form 3f+1: it tolerates f = ${f}, as n = ${3 * f + 1} does`);
    const faulty = new Set<number>();
    let storage = false;
    for (const fault of g.faults) {
      if (!FAULTY_KINDS.has(fault.kind)) continue;
      for (const r of replicasOf(fault)) faulty.add(r);
      if (!BYZANTINE_KINDS.has(fault.kind)) storage = true;
    }
    if (faulty.size > f && (s.expect?.verdict ?? "pass") === "pass") {
      const names = [...faulty].sort((a, b) => a - b).map((r) => `r${r}`).join(", ");
      notes.push(`${g.label}${faulty.size} ${storage ? "faulty (Byzantine or storage-faulted)" : "Byzantine"} replicas (${names}) exceed f = ${f} for n = ${g.n}, yet the scenario expects pass: nothing guarantees safety or liveness beyond f`);
    }
  }
  return notes;
}
