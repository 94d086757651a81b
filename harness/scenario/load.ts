// Loads scenario modules from disk with clear, one-line errors for the usual mistakes: a missing
// file, a syntax error (file:line:column), a module that throws while loading, a missing default
// export, a field the scenario type does not have.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { register } from "node:module";
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkScenario, ScenarioError, type Scenario } from "./scenario.ts";
import { prepareScenario } from "./prepare.ts";

export interface LoadedScenario {
  readonly path: string;
  readonly contentHash: string;
  readonly scenario: Scenario;
}

// Node decides a `.ts` file's module format from the nearest package.json: outside this repository
// (no "type": "module" above it) a scenario would load as CommonJS, where `export default` and the
// ESM imports of the harness fail in confusing ways. This resolve hook runs before tsx's and marks
// a scenario file — and the TypeScript files it imports relatively — as ES modules, wherever they
// live. Only URLs carrying SCENARIO_MARK (and their TypeScript imports outside node_modules) change.
const SCENARIO_MARK = "subnetlab-scenario";
const ESM_SCENARIO_HOOK = `
const forced = new Set();
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  const marked = specifier.includes(${JSON.stringify(SCENARIO_MARK)});
  const importedByScenario = context.parentURL !== undefined && forced.has(context.parentURL);
  if ((marked || importedByScenario) && result.url.startsWith("file:") && !result.url.includes("/node_modules/") && /\\.(m?ts|tsx)(\\?|$)/.test(result.url)) {
    forced.add(result.url);
    if (result.format !== "module") return { ...result, format: "module" };
  }
  return result;
}
`;

let hookRegistered = false;

function registerScenarioHook(): void {
  if (hookRegistered) return;
  register(`data:text/javascript,${encodeURIComponent(ESM_SCENARIO_HOOK)}`);
  hookRegistered = true;
}

export async function loadScenario(file: string): Promise<LoadedScenario> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ScenarioError(`scenario file not found: ${file}`);
  if (!statSync(path).isFile()) throw new ScenarioError(`not a file: ${file}`);
  registerScenarioHook();
  let module: { default?: unknown };
  try {
    module = (await import(`${pathToFileURL(path).href}?${SCENARIO_MARK}`)) as { default?: unknown };
  } catch (error) {
    throw new ScenarioError(`${file}: ${describeLoadError(error, path)}`);
  }
  const scenario = module.default;
  if (scenario === undefined || scenario === null || typeof scenario !== "object" || Array.isArray(scenario)) {
    throw new ScenarioError(`${file} has no default export object; write \`export default defineScenario({...})\``);
  }
  try {
    checkScenario(scenario as Scenario);
  } catch (error) {
    throw new ScenarioError(`${file}: ${(error as Error).message}`);
  }
  const contentHash = createHash("sha256").update(readFileSync(path)).digest("hex");
  await prepareScenario(scenario as Scenario);
  return { path, contentHash, scenario: scenario as Scenario };
}

/** One line for why importing the scenario module failed, with line:column where there is one. */
export function describeLoadError(error: unknown, path: string): string {
  // A scenario's own `defineScenario` check: its message already names the problem.
  if (error instanceof ScenarioError || (error instanceof Error && error.name === "ScenarioError")) return (error as Error).message;
  if (!(error instanceof Error)) return `threw while loading: ${String(error)}`;
  // esbuild (through tsx) reports syntax errors as a TransformError with located messages.
  const located = (error as { errors?: { text?: string; location?: { line?: number; column?: number } | null }[] }).errors?.[0];
  if (located?.location !== undefined && located.location !== null) {
    // esbuild's columns are 0-based; editors count from 1.
    return `syntax error at ${located.location.line}:${(located.location.column ?? 0) + 1}: ${located.text ?? error.message}`;
  }
  // Across the module-hooks thread only the message survives: "<file>:<line>:<col>: ERROR: <text>".
  const esbuildLine = /:(\d+):(\d+): ERROR: (.+)/.exec(error.message);
  if (esbuildLine !== null) return `syntax error at ${esbuildLine[1]}:${Number(esbuildLine[2]) + 1}: ${esbuildLine[3]}`;
  if (error instanceof SyntaxError) {
    const at = firstLocationIn(error.stack ?? "", path);
    return `syntax error${at === undefined ? "" : ` at ${at}`}: ${error.message}`;
  }
  const code = (error as { code?: unknown }).code;
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") return `cannot load an import: ${firstLine(error.message)}`;
  const at = firstLocationIn(error.stack ?? "", path);
  return `threw while loading${at === undefined ? "" : ` (at ${at})`}: ${error.name}: ${firstLine(error.message)}`;
}

/** "line:column" of the first stack frame inside the scenario file. */
function firstLocationIn(stack: string, path: string): string | undefined {
  for (const line of stack.split("\n")) {
    const index = line.indexOf(path);
    if (index < 0) continue;
    const match = /^:(\d+):(\d+)/.exec(line.slice(index + path.length).replace(/^\?[^:]*/, ""));
    if (match !== null) return `${match[1]}:${match[2]}`;
  }
  return undefined;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? text;
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
