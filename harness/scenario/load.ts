// Loads scenario modules from disk with clear errors for the usual mistakes.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkScenario, ScenarioError, type Scenario } from "./scenario.ts";

export interface LoadedScenario {
  readonly path: string;
  readonly contentHash: string;
  readonly scenario: Scenario;
}

export async function loadScenario(file: string): Promise<LoadedScenario> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ScenarioError(`scenario file not found: ${file}`);
  if (!statSync(path).isFile()) throw new ScenarioError(`not a file: ${file}`);
  const module = (await import(pathToFileURL(path).href)) as { default?: Scenario };
  const scenario = module.default;
  if (scenario === undefined || typeof scenario !== "object") {
    throw new ScenarioError(`${file} has no default export; write \`export default defineScenario({...})\``);
  }
  checkScenario(scenario);
  const contentHash = createHash("sha256").update(readFileSync(path)).digest("hex");
  return { path, contentHash, scenario };
}

/** Scenario files named on the command line: files as given, directories expanded (sorted). */
export function scenarioFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new ScenarioError(`no such file or directory: ${p}`);
    if (statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) if (name.endsWith(".ts")) files.push(join(p, name));
    } else {
      files.push(p);
    }
  }
  return files;
}
