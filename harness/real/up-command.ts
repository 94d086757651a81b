// `subnetlab up`: start (or resume) a local multi-replica subnet as processes and keep it running
// until SIGINT/SIGTERM. Progress goes to stderr; the ready line (JSON) to stdout and DIR/cluster.json.
import { EXIT } from "../report/exit-codes.ts";
import { ChildStartError } from "./child.ts";
import { Cluster } from "./cluster.ts";
import { RunDirError } from "./run-dir.ts";
import { ToxiproxyStartError } from "./toxiproxy/index.ts";
import { untilStopSignal } from "./signals.ts";

export interface UpCommand {
  readonly out: string;
  readonly nodes?: readonly number[];
  readonly toxiproxyPort?: number;
  readonly readyTimeoutMs?: number;
  readonly quiet: boolean;
}

/** Runs the cluster until a stop signal; answers the exit code (2 with one line for a refused directory). */
export async function runUp(command: UpCommand): Promise<number> {
  const progress = command.quiet ? undefined : (line: string): void => void process.stderr.write(`up: ${line}\n`);
  let cluster: Cluster;
  try {
    cluster = await Cluster.up({
      out: command.out,
      ...(command.nodes === undefined ? {} : { nodes: command.nodes }),
      ...(command.toxiproxyPort === undefined ? {} : { toxiproxyPort: command.toxiproxyPort }),
      ...(command.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: command.readyTimeoutMs }),
      ...(progress === undefined ? {} : { progress }),
    });
  } catch (error) {
    if (!(error instanceof RunDirError || error instanceof ChildStartError || error instanceof ToxiproxyStartError)) throw error;
    process.stderr.write(`subnetlab: up: ${error.message}\n`);
    return error instanceof RunDirError ? EXIT.usage : EXIT.harnessError;
  }
  const info = cluster.writeInfo();
  process.stdout.write(`${JSON.stringify(info)}\n`);
  const signal = await untilStopSignal();
  progress?.(`stopping (${signal})`);
  await cluster.stop();
  return EXIT.pass;
}
