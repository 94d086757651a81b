// One replica as an OS process, seen from `subnetlab up` (issue 12 item 5).
//
// The handshake over the IPC channel, in order:
//   child  → parent  { type: "listening", p2pPort, httpPort,    sockets bound on 127.0.0.1, port 0
//                      xnetPort? }                              (xnetPort: several subnets only)
//   parent → child   { type: "start", peers, xnetPeers,          where to reach each peer (its proxy),
//                      rootUrls? }                              and a non-root replica the root's HTTP
//   child  → parent  { type: "ready" }                           the replica runs and serves HTTP
// Later, `{ type: "root-urls", rootUrls }` tells a non-root replica where restarted root replicas listen.
// Ports are ephemeral and learnt at run time, so nothing has to be free in advance; a restarted
// replica binds new ports and the parent points its proxies' upstreams at them, while the peers
// keep talking to the proxies' fixed listen addresses.
import { fork, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export type ToChild =
  | {
      readonly type: "start";
      readonly peers: Readonly<Record<string, string>>;
      /** Replicas of other subnets by `<subnet name>/<replica>`: their XNet proxies' addresses. */
      readonly xnetPeers: Readonly<Record<string, string>>;
      /** A non-root subnet's replica: the root subnet's HTTP endpoints (for the delegation). */
      readonly rootUrls?: readonly string[];
    }
  | { readonly type: "root-urls"; readonly rootUrls: readonly string[] }
  /** `run --real`: the wall time (µs since the epoch) its scenario's second 0 is at (Byzantine windows count from it). */
  | { readonly type: "run-origin"; readonly atUs: number }
  /** `run --real`: which of these ingress ids the replica's executed state knows (the durability check). */
  | { readonly type: "final-state"; readonly ids: readonly string[] };
export type FromChild =
  | { readonly type: "listening"; readonly p2pPort: number; readonly httpPort: number; readonly xnetPort?: number }
  | { readonly type: "ready" }
  | { readonly type: "final-state"; readonly executedHeight: number; readonly known: readonly string[] }
  | { readonly type: "fatal"; readonly message: string };

export interface ChildOptions {
  /** The module the child runs (harness/real/node-main.ts). */
  readonly entry: string;
  readonly args: readonly string[];
  /** stdout and stderr of the child go here (appended: a restart keeps the earlier log). */
  readonly logFile: string;
  readonly readyTimeoutMs: number;
}

export interface Listening {
  readonly pid: number;
  readonly p2pPort: number;
  readonly httpPort: number;
  readonly xnetPort?: number;
}

/** A child that failed to come up: the message names the replica and points at its log. */
export class ChildStartError extends Error {}

export class ReplicaChild {
  private child: ChildProcess | undefined;
  private exitWaiters: (() => void)[] = [];

  constructor(readonly name: string, private readonly options: ChildOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process and waits until its sockets are bound. */
  async spawn(): Promise<Listening> {
    mkdirSync(dirname(this.options.logFile), { recursive: true });
    const log = createWriteStream(this.options.logFile, { flags: "a" });
    const child = fork(this.options.entry, [...this.options.args], {
      execArgv: ["--import", import.meta.resolve("tsx"), ...cpuProfileArgs()],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.child = child;
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.once("exit", () => {
      log.end();
      const waiters = this.exitWaiters;
      this.exitWaiters = [];
      for (const w of waiters) w();
    });
    const listening = await this.expect("listening");
    if (listening.type !== "listening") throw new ChildStartError(`${this.name}: unexpected ${listening.type}`);
    return { pid: child.pid as number, p2pPort: listening.p2pPort, httpPort: listening.httpPort, ...(listening.xnetPort === undefined ? {} : { xnetPort: listening.xnetPort }) };
  }

  /** Sends the peer table and waits until the replica runs. */
  async start(message: ToChild): Promise<void> {
    const child = this.child;
    if (child === undefined) throw new ChildStartError(`${this.name}: not spawned`);
    child.send(message);
    await this.expect("ready");
  }

  /** Sends a message to the running process and waits for its answer of type `answer`. */
  async ask(message: ToChild, answer: FromChild["type"]): Promise<FromChild> {
    const child = this.child;
    if (child === undefined || !this.running) throw new ChildStartError(`${this.name}: not running`);
    const answered = this.expect(answer);
    child.send(message);
    return await answered;
  }

  /** Sends a message that needs no answer (no-op if the process is gone). */
  post(message: ToChild): void {
    if (this.running && this.child?.connected === true) this.child.send(message);
  }

  /** Sends a signal (SIGKILL = crash, SIGSTOP/SIGCONT = pause, SIGTERM = stop); no-op if it is gone. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child?.kill(signal);
  }

  /** Stops the process (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    this.child?.kill("SIGCONT"); // a paused process cannot handle SIGTERM
    this.child?.kill("SIGTERM");
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Resolves when the process exits (at once if it is not running). */
  exited(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  private expect(type: FromChild["type"]): Promise<FromChild> {
    const child = this.child;
    if (child === undefined) return Promise.reject(new ChildStartError(`${this.name}: not spawned`));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
      };
      const onMessage = (m: FromChild): void => {
        if (m.type === "fatal") {
          done();
          reject(new ChildStartError(`${this.name}: ${m.message} (log: ${this.options.logFile})`));
        } else if (m.type === type) {
          done();
          resolve(m);
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        done();
        reject(new ChildStartError(`${this.name} exited (${signal ?? `code ${code}`}) before it was ${type} (log: ${this.options.logFile})`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new ChildStartError(`${this.name} was not ${type} within ${this.options.readyTimeoutMs} ms (log: ${this.options.logFile})`));
      }, this.options.readyTimeoutMs);
      child.on("message", onMessage);
      child.on("exit", onExit);
    });
  }
}

/**
 * SUBNETLAB_REPLICA_CPU_PROF=DIR: every replica process writes a V8 CPU profile into DIR when it
 * exits (SIGTERM, as `Cluster.stop` sends; not after SIGKILL) — open it in Chrome DevTools.
 */
function cpuProfileArgs(): string[] {
  const dir = process.env.SUBNETLAB_REPLICA_CPU_PROF;
  return dir === undefined || dir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}
