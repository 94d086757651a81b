// `subnetlab up --containers`: the subnet of `up`, one container per replica, until SIGINT/SIGTERM.
// Progress goes to stderr; the ready line (JSON) to stdout and DIR/cluster.json, as with processes.
import { EXIT } from "../../report/exit-codes.ts";
import { RunDirError } from "../run-dir.ts";
import { untilStopSignal } from "../signals.ts";
import { ContainerCluster, ContainerStartError } from "./cluster.ts";
import { EngineMissingError } from "./engine.ts";
import { ImageBuildError } from "./image.ts";

export interface UpContainersCommand {
  readonly out: string;
  readonly nodes?: readonly number[];
  readonly readyTimeoutMs?: number;
  readonly quiet: boolean;
}

/** Runs the container cluster until a stop signal; answers the exit code (2 for a refused directory). */
export async function runUpContainers(command: UpContainersCommand): Promise<number> {
  const progress = command.quiet ? undefined : (line: string): void => void process.stderr.write(`up: ${line}\n`);
  // A signal during the start-up (image build, containers starting) must still remove what exists.
  const stopSignal = untilStopSignal();
  // testcontainers loads signal-exit (through proper-lockfile), which re-raises a signal when its
  // own are the only listeners left — untilStopSignal removes its listener at the first signal, so
  // without this one the process would die before it removed the containers.
  const holdSignals = (): void => undefined;
  process.on("SIGINT", holdSignals);
  process.on("SIGTERM", holdSignals);
  try {
    return await upUntilStopped(command, progress, stopSignal);
  } finally {
    process.off("SIGINT", holdSignals);
    process.off("SIGTERM", holdSignals);
  }
}

async function upUntilStopped(command: UpContainersCommand, progress: ((line: string) => void) | undefined, stopSignal: Promise<NodeJS.Signals>): Promise<number> {
  let cluster: ContainerCluster;
  try {
    const starting = ContainerCluster.up({
      out: command.out,
      supervise: true,
      ...(command.nodes === undefined ? {} : { nodes: command.nodes }),
      ...(command.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: command.readyTimeoutMs }),
      ...(progress === undefined ? {} : { progress }),
    });
    const first = await Promise.race([starting, stopSignal]);
    if (typeof first === "string") {
      progress?.(`stopping (${first}) once the containers that are starting exist`);
      await (await starting.catch(() => undefined))?.stop();
      return EXIT.pass;
    }
    cluster = first;
  } catch (error) {
    if (!(error instanceof RunDirError || error instanceof ContainerStartError || error instanceof EngineMissingError || error instanceof ImageBuildError)) throw error;
    process.stderr.write(`subnetlab: up --containers: ${error.message}\n`);
    return error instanceof RunDirError ? EXIT.usage : EXIT.harnessError;
  }
  const info = await cluster.writeInfo();
  process.stdout.write(`${JSON.stringify(info)}\n`);
  const signal = await stopSignal;
  progress?.(`stopping (${signal})`);
  await cluster.stop();
  return EXIT.pass;
}
