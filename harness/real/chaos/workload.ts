// The scenario's workload in real mode (issue 12 item 9): the Motoko key-value canister
// (fixtures/canisters/motoko/kv.eop.wasm) deployed through the management canister, then signed
// `insert(k<i>, v<i>)` update calls at the scenario's rate — capped to what real mode sustains —
// each to a replica that is up, chosen at random (a seeded stream), moved on to another one when
// the first does not answer, as a boundary node routes around a dead replica. Every attempt is
// logged (time from the run's origin, target replica, request id, outcome) for the report and for
// the replay scenario.
import { readFileSync } from "node:fs";
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { Rng } from "../../sim/rng.ts";
import type { WorkloadSpec } from "../../scenario/workload.ts";
import type { CallOutcome, IcClient } from "./ingress-client.ts";

/**
 * Updates per second real mode is driven at, at most: `npm run bench:real` certifies about 7 per
 * second on this machine with 32 concurrent callers (docs/BENCHMARKS.md); a chaos run shares the
 * machine with its faults and checkers, so it stays well below.
 */
export const REAL_RATE_MAX_PER_SEC = 4;
/** Calls in flight at once (each waits up to the replica's 10 s for its certified answer). */
const IN_FLIGHT_MAX = 96;

export const KV_WASM = "fixtures/canisters/motoko/kv.eop.wasm";
const REPO_ROOT = new URL("../../../", import.meta.url);

export interface Target {
  readonly replica: number;
  readonly url: string;
}

export interface IngressLogEntry {
  /** Ms from the run's origin when the call was sent. */
  readonly atMs: number;
  readonly replica: number;
  readonly requestId: string;
  readonly method: string;
  readonly outcome: CallOutcome["kind"];
  /** Ms from the origin when the answer came. */
  readonly answeredMs: number;
  readonly detail?: string;
}

export class DeployError extends Error {}

/** How long the deployment's calls may take to be answered and certified. */
const DEPLOY_PATIENCE_MS = 240_000;

const managementTypes = {
  create: IDL.Record({ amount: IDL.Opt(IDL.Nat), settings: IDL.Opt(IDL.Null) }),
  created: IDL.Record({ canister_id: IDL.Principal }),
  install: IDL.Record({ mode: IDL.Variant({ install: IDL.Null }), canister_id: IDL.Principal, wasm_module: IDL.Vec(IDL.Nat8), arg: IDL.Vec(IDL.Nat8) }),
};

/** Creates a canister with cycles and installs the key-value canister; returns its id and the request ids sent. */
export async function deployKv(client: IcClient, targets: () => readonly Target[], nonce: () => bigint): Promise<{ canisterId: string; requestIds: string[] }> {
  const requestIds: string[] = [];
  const call = async (what: string, canisterId: string, method: string, arg: Uint8Array, effectiveCanisterId: string): Promise<Uint8Array> => {
    // One envelope for every attempt: a replica answers a resubmitted call as the first one, so an
    // answer that came too late (202) is waited for again rather than the call made twice.
    const signed = client.sign({ canisterId, method, arg, effectiveCanisterId, nonce: nonce() });
    requestIds.push(signed.requestId);
    // Patient: a busy machine's subnet may take minutes to certify the first blocks.
    const deadline = Date.now() + DEPLOY_PATIENCE_MS;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const target = targets()[attempt % Math.max(1, targets().length)];
      if (target === undefined) throw new DeployError(`${what}: no replica is up`);
      const outcome = await client.send(target.url, signed);
      if (outcome.kind === "replied") return outcome.reply;
      if (outcome.kind === "rejected") throw new DeployError(`${what} rejected (code ${outcome.code}): ${outcome.message}`);
      if (outcome.kind === "refused" && outcome.status !== 503) throw new DeployError(`${what} refused (${outcome.status}): ${outcome.text}`);
      if (outcome.kind !== "accepted") await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new DeployError(`${what}: no certified answer within ${DEPLOY_PATIENCE_MS / 1000} s`);
  };
  const createArg = new Uint8Array(IDL.encode([managementTypes.create], [{ amount: [10n ** 13n], settings: [] }]));
  const created = await call("provisional_create_canister_with_cycles", "aaaaa-aa", "provisional_create_canister_with_cycles", createArg, "aaaaa-aa");
  const [{ canister_id }] = IDL.decode([managementTypes.created], created) as unknown as [{ canister_id: Principal }];
  const canisterId = canister_id.toText();
  const wasm = new Uint8Array(readFileSync(new URL(KV_WASM, REPO_ROOT)));
  const installArg = new Uint8Array(IDL.encode([managementTypes.install], [{ mode: { install: null }, canister_id, wasm_module: wasm, arg: new Uint8Array(IDL.encode([], [])) }]));
  await call("install_code", "aaaaa-aa", "install_code", installArg, canisterId);
  return { canisterId, requestIds };
}

export interface WorkloadPlan {
  readonly ratePerSec: number;
  readonly startS: number;
  readonly stopS: number;
  /** Why the plan differs from the scenario's workload (rate capped, invalid share not sent…). */
  readonly notes: readonly string[];
}

/** The scenario's workload as real mode drives it. */
export function realWorkloadPlan(spec: WorkloadSpec | undefined, durationS: number): WorkloadPlan {
  const notes: string[] = [];
  const requested = spec?.ratePerSec ?? 0;
  const ratePerSec = Math.min(requested, REAL_RATE_MAX_PER_SEC);
  if (requested > ratePerSec) notes.push(`workload: ${requested}/s requested, driven at ${ratePerSec}/s (real mode sustains a few certified updates per second; see bench:real)`);
  if (requested > 0) notes.push("workload: signed Ed25519 update calls insert(k, v) to the Motoko key-value canister deployed at the start, whatever the scenario's call templates or placeholder commands");
  if ((spec?.invalidPercent ?? 0) > 0) notes.push(`workload: the ${spec?.invalidPercent}% invalid messages are not sent (replicas refuse them over HTTP before consensus sees them)`);
  return { ratePerSec, startS: spec?.startS ?? 1, stopS: Math.min(durationS, spec?.stopS ?? Math.max(0, durationS - 30)), notes };
}

export class RealWorkload {
  readonly log: IngressLogEntry[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private nonce = 0n;
  /** Calls started (each may take several attempts). */
  started = 0;

  constructor(
    private readonly client: IcClient,
    private readonly canisterId: string,
    private readonly targets: () => readonly Target[],
    private readonly rng: Rng,
    /** Ms since the run's origin (wall clock). */
    private readonly elapsedMs: () => number,
    private readonly nonceBase: bigint,
  ) {}

  /** Sends calls at `plan.ratePerSec` from startS to stopS; resolves once every call has its answer. */
  async run(plan: WorkloadPlan): Promise<void> {
    if (plan.ratePerSec > 0) {
      const count = Math.max(0, Math.ceil((plan.stopS - plan.startS) * plan.ratePerSec));
      for (let k = 0; k < count; k++) {
        const dueMs = (plan.startS + k / plan.ratePerSec) * 1000;
        const waitMs = dueMs - this.elapsedMs();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        if (this.inFlight.size >= IN_FLIGHT_MAX) continue;
        const sending = this.insert(k).finally(() => this.inFlight.delete(sending));
        this.inFlight.add(sending);
      }
    }
    await Promise.all([...this.inFlight]);
  }

  /** Request ids the client holds a certified `replied` for. */
  acknowledged(): string[] {
    return this.log.filter((e) => e.outcome === "replied").map((e) => e.requestId);
  }

  /** Every request id sent (any attempt). */
  sent(): string[] {
    return [...new Set(this.log.map((e) => e.requestId))];
  }

  private async insert(k: number): Promise<void> {
    this.started++;
    const arg = new Uint8Array(IDL.encode([IDL.Text, IDL.Text], [`k${k}`, `v${k}`]));
    const signed = this.client.sign({ canisterId: this.canisterId, method: "insert", arg, nonce: this.nonceBase + this.nonce++ });
    const tried = new Set<number>();
    for (;;) {
      const up = this.targets().filter((t) => !tried.has(t.replica));
      if (up.length === 0) return;
      const target = up[this.rng.below(up.length)] as Target;
      tried.add(target.replica);
      const atMs = this.elapsedMs();
      const outcome = await this.client.send(target.url, signed);
      this.log.push({
        atMs: Math.round(atMs), replica: target.replica, requestId: signed.requestId, method: "insert", outcome: outcome.kind, answeredMs: Math.round(this.elapsedMs()),
        ...(outcome.kind === "refused" ? { detail: `${outcome.status} ${outcome.text}` } : outcome.kind === "unreachable" ? { detail: outcome.error } : outcome.kind === "rejected" ? { detail: `${outcome.code} ${outcome.message}` } : {}),
      });
      // Another replica gets the same envelope when this one is down or unhealthy (a boundary node's retry).
      const retry = outcome.kind === "unreachable" || (outcome.kind === "refused" && outcome.status === 503);
      if (!retry) return;
    }
  }
}
