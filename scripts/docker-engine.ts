// Ensures a Docker engine for `subnetlab up --containers` and its test suite (issue 12 item 10).
//
//   npx tsx scripts/docker-engine.ts          ensure an engine; prints DOCKER_HOST=<url> on stdout
//                                             (and SUBNETLAB_DOCKER_STARTED=1 when it started dockerd)
//   npx tsx scripts/docker-engine.ts --stop   stop the dockerd this script started (if any)
//
// Order: an engine that already answers (`docker info` with the caller's DOCKER_HOST, or the one
// this script started earlier) is used as it is. Otherwise, as root with apt, Debian's `docker.io`
// is installed (about 21 s the first time) and `dockerd` is started by hand — there is no init
// system on these machines — with all its state under one folder (SUBNETLAB_DOCKER_STATE, default
// /var/tmp/subnetlab-docker) and a private socket there, so it never meets a system daemon.
//
// The daemon runs with `--iptables=false --bridge=none`: with iptables on it sets the host's FORWARD
// policy to DROP (which cut the project's own netns bridges off, research/containers-toxiproxy.md
// §2.1), and the default docker0 bridge is not needed (subnetlab makes its own network). Published
// ports still work through docker-proxy. dockerd turns net.ipv4.ip_forward on regardless; the value
// found before is kept in the state folder and put back by --stop.
//
// Exit codes: 0 engine ready; 3 no engine can be had here (not root, no apt, no package), so
// callers such as .ci/run can skip with the printed reason; 1 anything else (the daemon was
// installed but does not start: read <state>/dockerd.log).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { DEFAULT_DOCKER_STATE_DIR } from "../harness/real/containers/engine.ts";
const SOCKET_WAIT_MS = 30_000;
const STOP_WAIT_MS = 20_000;
const POLL_MS = 100;

export interface EngineReady {
  readonly ok: true;
  /** What to put in DOCKER_HOST (testcontainers and the docker CLI read it). */
  readonly dockerHost: string;
  /** True when this call started dockerd (so the caller may stop it again with `stopDockerEngine`). */
  readonly startedNow: boolean;
  /** True when the daemon is the one under the state folder (started now or by an earlier call). */
  readonly ours: boolean;
}

export interface EngineUnavailable {
  readonly ok: false;
  /** "unavailable": this machine cannot have an engine (skip); "failed": it should, but did not start. */
  readonly kind: "unavailable" | "failed";
  readonly reason: string;
}

export type EngineResult = EngineReady | EngineUnavailable;

export interface EngineOptions {
  readonly stateDir?: string;
  readonly progress?: (line: string) => void;
}

export const stateDirOf = (options: EngineOptions = {}): string => options.stateDir ?? process.env.SUBNETLAB_DOCKER_STATE ?? DEFAULT_DOCKER_STATE_DIR;
const socketUrlOf = (stateDir: string): string => `unix://${join(stateDir, "docker.sock")}`;
const pidFileOf = (stateDir: string): string => join(stateDir, "dockerd.pid");
const ipForwardFileOf = (stateDir: string): string => join(stateDir, "ip_forward.before");
const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

/** Whether an engine answers at `dockerHost` (undefined: the CLI's default). */
export async function engineAnswers(dockerHost: string | undefined): Promise<boolean> {
  if (!(await $`command -v docker`.quiet().nothrow()).ok) return false;
  const env = { ...process.env };
  if (dockerHost === undefined) delete env.DOCKER_HOST;
  else env.DOCKER_HOST = dockerHost;
  const info = await $({ env, quiet: true, nothrow: true })`docker info --format {{.ServerVersion}}`.timeout("10s");
  return info.ok;
}

/** Finds or starts an engine; never throws for an expected failure (see `EngineResult`). */
export async function ensureDockerEngine(options: EngineOptions = {}): Promise<EngineResult> {
  const progress = options.progress ?? (() => undefined);
  const stateDir = stateDirOf(options);
  const ours = socketUrlOf(stateDir);
  const given = process.env.DOCKER_HOST;
  if (given !== undefined && given !== ours && (await engineAnswers(given))) return { ok: true, dockerHost: given, startedNow: false, ours: false };
  if (given === undefined && (await engineAnswers(undefined))) return { ok: true, dockerHost: "unix:///var/run/docker.sock", startedNow: false, ours: false };
  if (await engineAnswers(ours)) return { ok: true, dockerHost: ours, startedNow: false, ours: true };

  const installed = await ensureDockerd(progress);
  if (!installed.ok) return installed;
  return await startDockerd(stateDir, progress);
}

async function ensureDockerd(progress: (line: string) => void): Promise<{ ok: true } | EngineUnavailable> {
  if ((await $`command -v dockerd`.quiet().nothrow()).ok) return { ok: true };
  if (process.getuid?.() !== 0) return { ok: false, kind: "unavailable", reason: "no Docker engine answers and dockerd is not installed; installing Debian's docker.io needs root" };
  if (!(await $`command -v apt-get`.quiet().nothrow()).ok) return { ok: false, kind: "unavailable", reason: "no Docker engine answers and there is no apt-get to install Debian's docker.io" };
  progress("installing Debian's docker.io (apt-get)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = await $({ env, quiet: true, nothrow: true })`apt-get update -qq`.timeout("5m");
  if (!update.ok) return { ok: false, kind: "unavailable", reason: `apt-get update failed (no package mirror reachable?): ${lastLine(update.stderr)}` };
  // Postinst cannot start the service (no init system) and says so; that is expected and harmless.
  const install = await $({ env, quiet: true, nothrow: true })`apt-get install -y -qq --no-install-recommends docker.io`.timeout("10m");
  if (!install.ok || !(await $`command -v dockerd`.quiet().nothrow()).ok) return { ok: false, kind: "unavailable", reason: `apt-get install docker.io failed: ${lastLine(install.stderr)}` };
  return { ok: true };
}

async function startDockerd(stateDir: string, progress: (line: string) => void): Promise<EngineResult> {
  if (process.getuid?.() !== 0) return { ok: false, kind: "unavailable", reason: "dockerd is installed but no engine answers; starting it needs root" };
  mkdirSync(stateDir, { recursive: true });
  const socket = join(stateDir, "docker.sock");
  // A daemon killed without cleanup leaves its pid file and socket; dockerd refuses a live pid file only.
  if (existsSync(pidFileOf(stateDir)) && !processAlive(Number(readFileSync(pidFileOf(stateDir), "utf8")))) rmSync(pidFileOf(stateDir), { force: true });
  rmSync(socket, { force: true });
  if (!existsSync(ipForwardFileOf(stateDir)) && existsSync(IP_FORWARD)) writeFileSync(ipForwardFileOf(stateDir), readFileSync(IP_FORWARD, "utf8"));
  progress(`starting dockerd (state in ${stateDir}, log in ${join(stateDir, "dockerd.log")})`);
  const log = openSync(join(stateDir, "dockerd.log"), "a");
  const args = [
    "--data-root", join(stateDir, "data"),
    "--exec-root", join(stateDir, "exec"),
    "--pidfile", pidFileOf(stateDir),
    "-H", `unix://${socket}`,
    "--iptables=false",
    "--bridge=none",
  ];
  const daemon = spawn("dockerd", args, { detached: true, stdio: ["ignore", log, log] });
  let exited: string | undefined;
  daemon.once("exit", (code, signal) => (exited = signal ?? `code ${code}`));
  daemon.unref();
  const until = Date.now() + SOCKET_WAIT_MS;
  while (Date.now() < until && exited === undefined) {
    if (existsSync(socket) && (await engineAnswers(`unix://${socket}`))) return { ok: true, dockerHost: `unix://${socket}`, startedNow: true, ours: true };
    await sleep(POLL_MS);
  }
  const why = exited === undefined ? `did not answer within ${SOCKET_WAIT_MS} ms` : `exited (${exited})`;
  return { ok: false, kind: "failed", reason: `dockerd ${why}; see ${join(stateDir, "dockerd.log")}` };
}

/** Stops the dockerd under the state folder (SIGTERM, then waits), and puts ip_forward back. */
export async function stopDockerEngine(options: EngineOptions = {}): Promise<{ readonly stopped: boolean }> {
  const stateDir = stateDirOf(options);
  const pidFile = pidFileOf(stateDir);
  if (!existsSync(pidFile)) return { stopped: false };
  const pid = Number(readFileSync(pidFile, "utf8"));
  let stopped = false;
  if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
    process.kill(pid, "SIGTERM");
    const until = Date.now() + STOP_WAIT_MS;
    while (processAlive(pid) && Date.now() < until) await sleep(POLL_MS);
    if (processAlive(pid)) process.kill(pid, "SIGKILL");
    stopped = true;
  }
  const before = ipForwardFileOf(stateDir);
  if (existsSync(before) && existsSync(IP_FORWARD)) {
    writeFileSync(IP_FORWARD, readFileSync(before, "utf8"));
    rmSync(before);
  }
  return { stopped };
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const lastLine = (text: string): string => text.trim().split("\n").at(-1) ?? "";

async function main(argv: readonly string[]): Promise<number> {
  const progress = (line: string): void => void process.stderr.write(`docker-engine: ${line}\n`);
  if (argv.includes("--stop")) {
    const { stopped } = await stopDockerEngine();
    progress(stopped ? "stopped the dockerd started by this script" : "no dockerd started by this script is running");
    return 0;
  }
  const unknown = argv.filter((a) => a !== "--stop");
  if (unknown.length > 0) {
    progress(`unknown argument ${unknown[0]} (usage: docker-engine.ts [--stop])`);
    return 2;
  }
  const result = await ensureDockerEngine({ progress });
  if (!result.ok) {
    progress(result.reason);
    return result.kind === "unavailable" ? 3 : 1;
  }
  progress(result.startedNow ? "dockerd started" : "a Docker engine already answers");
  process.stdout.write(`DOCKER_HOST=${result.dockerHost}\n`);
  // For a caller that should stop again what it started (.ci/run does): --stop.
  if (result.startedNow) process.stdout.write("SUBNETLAB_DOCKER_STARTED=1\n");
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
