// The parent's side of a lab worker process (fuzz-worker.ts): start it, send one request at a
// time, get its reply — or a typed failure when it reports an exception or dies — and kill it.
// Used by the fuzzer (parallel runs, re-runs in another process; through worker-pool.ts, which
// keeps workers up between campaigns) and by `run/suite --twice` (a re-run in a fresh process).
// Each worker remembers which cases it has run, so that a re-run meant for "a process that did not
// run the seed" can avoid one that did, even in an earlier campaign.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FuzzCaseOptions, FuzzCaseResult } from "./fuzz.ts";

export type WorkerRequest =
  | { readonly type: "run"; readonly seed: number; readonly options: FuzzCaseOptions }
  | { readonly type: "rerun"; readonly seed: number; readonly options: FuzzCaseOptions; readonly expectedDigest: string }
  | { readonly type: "rerun-file"; readonly file: string; readonly seed: number };

export type WorkerReply =
  | { readonly type: "result"; readonly result: FuzzCaseResult; readonly cpuMs?: number }
  /** A re-run's digest; `repro` when it differed from the expected one and the run was recorded. */
  | { readonly type: "digest"; readonly digest: string; readonly repro?: string; readonly cpuMs?: number }
  /** An exception in the worker; `usage` when it was the user's scenario (ScenarioError). */
  | { readonly type: "error"; readonly error: string; readonly usage?: boolean };
// cpuMs: the worker process's CPU time (all its threads, user + system) spent on the request — a
// benchmark figure (bench:fuzz) less noisy than wall time on a shared machine; no verdict uses it.

/** The worker reported an exception, or exited while a request was open. */
export class WorkerFailure extends Error {
  override readonly name = "WorkerFailure";
  constructor(message: string, readonly detail: string, readonly usage = false) {
    super(message);
  }
}

const WORKER = fileURLToPath(new URL("./fuzz-worker.ts", import.meta.url));

/**
 * What a request runs, as far as process state is concerned: the generated scenario of a fuzz
 * seed under given options (run and re-run alike), or a scenario file with a seed.
 */
export function caseKeyOf(request: WorkerRequest): string {
  if (request.type === "rerun-file") return `file ${request.file} seed ${request.seed}`;
  // Every option but where results go and what happens after the run decides the scenario.
  const { outDir: _outDir, shrink: _shrink, determinismPercent: _percent, ...scenarioOptions } = request.options;
  return `fuzz seed ${request.seed} ${JSON.stringify(scenarioOptions)}`;
}

export class LabWorker {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private pending: { resolve: (reply: WorkerReply) => void; reject: (error: WorkerFailure) => void } | undefined;
  private exited = false;
  private retired = false;
  /** caseKeyOf() of every request sent to this process. */
  private readonly cases = new Set<string>();

  private constructor(env: NodeJS.ProcessEnv | undefined) {
    this.child = fork(WORKER, [], { execArgv: ["--import", import.meta.resolve("tsx")], stdio: ["ignore", "inherit", "inherit", "ipc"], ...(env === undefined ? {} : { env }) });
    let signalReady: () => void = () => undefined;
    let failReady: (error: WorkerFailure) => void = () => undefined;
    this.ready = new Promise((resolve, reject) => {
      signalReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => undefined);
    this.child.on("message", (message: WorkerReply | { type: "ready" }) => {
      if (message.type === "ready") return signalReady();
      const pending = this.pending;
      this.pending = undefined;
      if (pending === undefined) return;
      if (message.type === "error") pending.reject(new WorkerFailure(message.error.split("\n")[0] ?? message.error, message.error, message.usage === true));
      else pending.resolve(message);
    });
    const died = (why: string): void => {
      this.exited = true;
      const failure = new WorkerFailure(`lab worker ${why}`, `lab worker ${why}`);
      failReady(failure);
      this.pending?.reject(failure);
      this.pending = undefined;
    };
    this.child.on("error", (error) => died(`failed: ${error.message}`));
    this.child.on("exit", (code, signal) => died(`exited (${signal ?? `code ${code}`})`));
  }

  /** Starts a worker process; `env` replaces the inherited environment when given. */
  static start(env?: NodeJS.ProcessEnv): LabWorker {
    return new LabWorker(env);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the process can still take requests (not killed, not exited). */
  get alive(): boolean {
    return !this.exited && !this.retired;
  }

  /** Whether this process has run the case (caseKeyOf) — its state may remember it. */
  hasRun(caseKey: string): boolean {
    return this.cases.has(caseKey);
  }

  /** Whether the process keeps the parent alive; idle pooled workers do not. */
  setKeepsParentAlive(keep: boolean): void {
    const channel = this.child.channel as { ref(): void; unref(): void } | null | undefined;
    if (keep) {
      this.child.ref();
      channel?.ref();
    } else {
      this.child.unref();
      channel?.unref();
    }
  }

  /** Sends one request (one at a time) and resolves with the reply. */
  async request(request: WorkerRequest): Promise<WorkerReply> {
    await this.ready;
    if (this.pending !== undefined) throw new Error("lab worker: one request at a time");
    if (!this.alive) throw new WorkerFailure("lab worker is gone", "lab worker is gone");
    this.cases.add(caseKeyOf(request));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(request);
    });
  }

  /** Lets the worker exit on its own (after its current request). */
  close(): void {
    if (!this.exited && this.child.connected) this.child.send({ type: "exit" });
    this.retired = true; // no further requests, though the process may still be finishing
  }

  /** Ends the worker now (a campaign that stops on a harness error does not wait for it). */
  kill(): void {
    this.retired = true;
    if (!this.exited) this.child.kill("SIGKILL");
  }
}

/** One request in a fresh worker process, which exits afterwards. */
export async function inFreshProcess(request: WorkerRequest): Promise<WorkerReply> {
  const worker = LabWorker.start();
  try {
    return await worker.request(request);
  } finally {
    worker.close();
  }
}
