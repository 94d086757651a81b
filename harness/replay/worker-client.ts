// The parent's side of a lab worker process (fuzz-worker.ts): start it, send one request at a
// time, get its reply — or a typed failure when it reports an exception or dies — and kill it.
// Used by the fuzzer (parallel runs, re-runs in another process) and by `run/suite --twice`
// (a re-run in a fresh process).
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FuzzCaseOptions, FuzzCaseResult } from "./fuzz.ts";

export type WorkerRequest =
  | { readonly type: "run"; readonly seed: number; readonly options: FuzzCaseOptions }
  | { readonly type: "rerun"; readonly seed: number; readonly options: FuzzCaseOptions; readonly expectedDigest: string }
  | { readonly type: "rerun-file"; readonly file: string; readonly seed: number };

export type WorkerReply =
  | { readonly type: "result"; readonly result: FuzzCaseResult }
  /** A re-run's digest; `repro` when it differed from the expected one and the run was recorded. */
  | { readonly type: "digest"; readonly digest: string; readonly repro?: string }
  /** An exception in the worker; `usage` when it was the user's scenario (ScenarioError). */
  | { readonly type: "error"; readonly error: string; readonly usage?: boolean };

/** The worker reported an exception, or exited while a request was open. */
export class WorkerFailure extends Error {
  override readonly name = "WorkerFailure";
  constructor(message: string, readonly detail: string, readonly usage = false) {
    super(message);
  }
}

const WORKER = fileURLToPath(new URL("./fuzz-worker.ts", import.meta.url));

export class LabWorker {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private pending: { resolve: (reply: WorkerReply) => void; reject: (error: WorkerFailure) => void } | undefined;
  private exited = false;

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

  /** Sends one request (one at a time) and resolves with the reply. */
  async request(request: WorkerRequest): Promise<WorkerReply> {
    await this.ready;
    if (this.pending !== undefined) throw new Error("lab worker: one request at a time");
    if (this.exited) throw new WorkerFailure("lab worker is gone", "lab worker is gone");
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(request);
    });
  }

  /** Lets the worker exit on its own (after its current request). */
  close(): void {
    if (!this.exited && this.child.connected) this.child.send({ type: "exit" });
  }

  /** Ends the worker now (a campaign that stops on a harness error does not wait for it). */
  kill(): void {
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
