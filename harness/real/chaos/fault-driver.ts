// Applies a real plan's steps to a running cluster at their scenario times (wall clock from the
// run's origin) and records what was applied and when (issue 12 item 9): the fault timeline of the
// report and of the replay scenario. Proxies are changed in process through the embedded
// Toxiproxy server's registry; processes through the cluster (SIGKILL with the supervisor held
// off until the restart, SIGSTOP/SIGCONT).
import type { Cluster } from "../cluster.ts";
import type { ReplicaId } from "../../types.ts";
import { describeAction, REAL_SUBNET, type PlannedStep, type RealAction } from "./plan.ts";

export interface AppliedStep {
  readonly fault: number;
  readonly faultKind: PlannedStep["faultKind"];
  readonly phase: PlannedStep["phase"];
  readonly plannedS: number;
  /** Seconds from the origin when the step was applied. */
  readonly appliedS: number;
  readonly action: string;
  /** Set when the step could not be applied (the run's verdict then says so in its notes). */
  readonly error?: string;
}

/** A restarted replica serving again (seconds from the origin): recovery takes real time. */
export interface RestartServing {
  readonly replica: number;
  readonly servingS: number;
}

export const memberName = (r: ReplicaId | number): string => `${REAL_SUBNET}/r${r}`;

export class FaultDriver {
  readonly applied: AppliedStep[] = [];
  readonly restarts: RestartServing[] = [];
  /** Faults that disabled each proxy and have not healed (overlapping faults share proxies). */
  private readonly disabledBy = new Map<string, number>();
  private readonly paused = new Set<number>();
  /** The pid each killed replica had: its restart serves under another one. */
  private readonly killedPids = new Map<number, number | undefined>();
  private readonly pending: Promise<void>[] = [];
  private cancelled = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly elapsedMs: () => number,
    private readonly progress: (line: string) => void,
  ) {}

  /** Applies every step at its time; resolves after the last one (or at `cancel`). */
  async run(steps: readonly PlannedStep[]): Promise<void> {
    for (const step of steps) {
      // Node's timers may fire a fraction of a millisecond before the monotonic clock says the
      // time has come: wait again until it has, so no step is applied before its planned time.
      for (let waitMs = step.atS * 1000 - this.elapsedMs(); waitMs > 0; waitMs = step.atS * 1000 - this.elapsedMs()) {
        await new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs)));
      }
      if (this.cancelled) return;
      await this.apply(step);
    }
  }

  cancel(): void {
    this.cancelled = true;
  }

  /** Replicas paused by a fault that has not healed (they cannot answer until resumed). */
  pausedReplicas(): ReadonlySet<number> {
    return this.paused;
  }

  /** Resumes paused replicas (before the end-of-run reads) and waits for pending restarts. */
  async settle(): Promise<void> {
    for (const r of this.paused) this.cluster.signal(memberName(r), "SIGCONT");
    await Promise.all(this.pending);
  }

  private async apply(step: PlannedStep): Promise<void> {
    const appliedS = this.elapsedMs() / 1000;
    const describe = describeAction(step.action);
    let error: string | undefined;
    try {
      await this.perform(step.action);
    } catch (e) {
      error = (e as Error).message;
    }
    this.applied.push({ fault: step.fault, faultKind: step.faultKind, phase: step.phase, plannedS: step.atS, appliedS: round3(appliedS), action: describe, ...(error === undefined ? {} : { error }) });
    this.progress(`${appliedS.toFixed(1)} s: faults[${step.fault}] (${step.faultKind}) ${step.phase}: ${describe}${error === undefined ? "" : ` FAILED: ${error}`}`);
  }

  private async perform(action: RealAction): Promise<void> {
    const registry = this.cluster.toxiproxy.registry;
    const must = <T>(outcome: { ok: true; value: T } | { ok: false; failure: { message: string } }, what: string): void => {
      if (!outcome.ok) throw new Error(`${what}: ${outcome.failure.message}`);
    };
    switch (action.kind) {
      case "disable-proxies":
        for (const name of action.proxies) {
          const count = this.disabledBy.get(name) ?? 0;
          this.disabledBy.set(name, count + 1);
          if (count === 0) must(await registry.update(name, { enabled: false }), `disable ${name}`);
        }
        return;
      case "enable-proxies":
        for (const name of action.proxies) {
          const count = (this.disabledBy.get(name) ?? 1) - 1;
          this.disabledBy.set(name, count);
          if (count === 0) must(await registry.update(name, { enabled: true }), `enable ${name}`);
        }
        return;
      case "add-latency":
        for (const name of action.proxies) {
          must(await registry.addToxic(name, { name: action.toxic, type: "latency", stream: "upstream", toxicity: 1, attributes: { latency: action.latencyMs, jitter: action.jitterMs } }), `latency on ${name}`);
        }
        return;
      case "remove-toxic":
        for (const name of action.proxies) must(await registry.removeToxic(name, action.toxic), `remove ${action.toxic} from ${name}`);
        return;
      case "kill":
        for (const r of action.replicas) {
          this.killedPids.set(r, this.cluster.member(memberName(r)).child.pid);
          this.cluster.holdDown(memberName(r));
          this.cluster.signal(memberName(r), "SIGKILL");
        }
        return;
      case "restart":
        for (const r of action.replicas) {
          this.cluster.release(memberName(r));
          this.pending.push(this.noteServing(r));
        }
        return;
      case "pause":
        for (const r of action.replicas) {
          this.paused.add(r);
          this.cluster.signal(memberName(r), "SIGSTOP");
        }
        return;
      case "resume":
        for (const r of action.replicas) {
          this.paused.delete(r);
          this.cluster.signal(memberName(r), "SIGCONT");
        }
        return;
    }
  }

  /** Notes when a restarted replica serves again (it binds new ports and loads its disk first). */
  private async noteServing(r: number): Promise<void> {
    const killed = this.killedPids.get(r);
    // Until the killed process's exit is seen it still looks like it serves: wait for a new pid.
    const servesAgain = (): boolean => this.cluster.serving(memberName(r)) && this.cluster.member(memberName(r)).child.pid !== killed;
    const deadline = this.elapsedMs() + 120_000;
    while (!servesAgain() && this.elapsedMs() < deadline && !this.cancelled) await new Promise((resolve) => setTimeout(resolve, 100));
    if (!servesAgain()) return;
    const servingS = round3(this.elapsedMs() / 1000);
    this.restarts.push({ replica: r, servingS });
    this.progress(`${servingS.toFixed(1)} s: r${r} serves again after its restart`);
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
