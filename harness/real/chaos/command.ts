// The CLI side of `subnetlab run <scenario> --real --out DIR`: progress on stderr, the verdict on
// stdout, the exit code of the verdict as `run` in simulation (2 with one line for a scenario real
// mode refuses or a directory it cannot use).
import { EXIT, exitCodeOf } from "../../report/exit-codes.ts";
import { loadScenario } from "../../scenario/load.ts";
import { ChildStartError } from "../child.ts";
import { RunDirError } from "../run-dir.ts";
import { RealModeRefusal } from "./plan.ts";
import { runRealScenario } from "./run-real.ts";
import { DeployError } from "./workload.ts";
import { join } from "node:path";

export interface RealRunCommand {
  readonly file: string;
  readonly seed: number;
  readonly out: string | undefined;
  readonly quiet: boolean;
}

export async function runRealCommand(command: RealRunCommand): Promise<number> {
  const loaded = await loadScenario(command.file);
  // A real run needs a fresh directory: by default one per start time.
  const out = command.out ?? join("reports", `${loaded.scenario.name}-real-${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "")}`);
  const progress = command.quiet ? undefined : (line: string): void => void process.stderr.write(`[real ${loaded.scenario.name}] ${line}\n`);
  try {
    const { report, replayScenario } = await runRealScenario(loaded.scenario, { out, seed: command.seed, scenarioPath: loaded.path, ...(progress === undefined ? {} : { progress }) });
    const heights = report.replicas.map((r) => `${r.replica}:${r.deliveredHeight}${r.role === "honest" ? "" : `(${r.role})`}`).join(" ");
    const lines = [`${report.scenario} (real): ${report.verdict.toUpperCase()}  heights ${heights}`];
    for (const v of report.violations.slice(0, 5)) lines.push(`  ${v.property}: ${v.message}`);
    for (const note of report.notes) lines.push(`  note: ${note}`);
    lines.push(`  report: ${join(out, "report.html")}`, `  replay in the simulator: npx subnetlab run ${replayScenario}`);
    process.stdout.write(`${lines.join("\n")}\n`);
    return exitCodeOf(report.verdict);
  } catch (error) {
    if (error instanceof RealModeRefusal || error instanceof RunDirError) {
      process.stderr.write(`subnetlab: run --real: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof ChildStartError || error instanceof DeployError) {
      process.stderr.write(`subnetlab: run --real: ${error.message}\n`);
      return EXIT.harnessError;
    }
    throw error;
  }
}
