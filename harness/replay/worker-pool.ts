// Lab worker processes kept up between fuzz campaigns (issue 13 item 4). A worker pays 1.4–1.7 s
// of CPU to import the harness when it starts; a pool lets one process run several campaigns —
// node counts in `bench:fuzz`, the canary campaigns of a test file — on the same workers.
//
// Reuse must not let one run's process state change another run's result: every run is a pure
// function of its scenario and seed (DESIGN.md), and the fuzzer's determinism re-runs check it by
// running a seed again in a process that did not run it. Workers remember what they ran
// (LabWorker.hasRun), so the fuzzer keeps that rule across campaigns, starting a fresh process when
// every worker it holds has run the seed.
//
// The environment of the workers is fixed when the pool is made (SUBNETLAB_WIRE, paranoid mode,
// the disk cache): a campaign that needs another environment needs another pool.
import { LabWorker } from "./worker-client.ts";

export class WorkerPool {
  private readonly idle: LabWorker[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private started = 0;
  private closed = false;

  /** `env`: the workers' environment (default: this process's, as it is now). */
  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.env = { ...env };
  }

  /** Worker processes this pool has started so far (tests count them). */
  get startedCount(): number {
    return this.started;
  }

  /** `count` workers for one campaign: idle ones first, new ones for the rest. */
  acquire(count: number): LabWorker[] {
    if (this.closed) throw new Error("worker pool is closed");
    const workers: LabWorker[] = [];
    while (workers.length < count) {
      const worker = this.idle.shift() ?? this.start();
      if (!worker.alive) continue;
      worker.setKeepsParentAlive(true);
      workers.push(worker);
    }
    return workers;
  }

  /** A new worker outside the pool, for one job (the caller closes it). */
  startFresh(): LabWorker {
    return this.start();
  }

  /** Takes workers back after a campaign; killed or dead ones are dropped. */
  release(workers: readonly LabWorker[]): void {
    for (const worker of workers) {
      if (!worker.alive) continue;
      if (this.closed) {
        worker.close();
        continue;
      }
      // An idle worker must not keep the parent process alive; it exits when the parent does.
      worker.setKeepsParentAlive(false);
      this.idle.push(worker);
    }
  }

  /** Lets every idle worker exit; workers still out are closed when released. */
  close(): void {
    this.closed = true;
    for (const worker of this.idle.splice(0)) worker.close();
  }

  private start(): LabWorker {
    this.started++;
    return LabWorker.start(this.env);
  }
}
