// Canister calls as scenarios write them: Candid arguments from small declarative templates (so a
// scenario stays plain data that repro bundles can store), and timed actions — one-off calls,
// management-canister operations (upgrade, stop/start, snapshots) and probes that query every
// honest replica and record the answers in the report.
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import type { Rng } from "../sim/rng.ts";

export type ArgTemplate =
  | { readonly text: string }
  /** A text chosen at random for each call. */
  | { readonly oneOf: readonly string[] }
  /** A natural number, fixed or uniform in [min, max]. */
  | { readonly nat: number | readonly [number, number] }
  /** The principal of one of the scenario's canisters, by name. */
  | { readonly canister: string };

export interface CallTemplate {
  readonly canister: string;
  readonly method: string;
  readonly args: readonly ArgTemplate[];
}

export type ScenarioAction =
  /** A one-off update call, sent by the canisters' controller. */
  | { readonly atS: number; readonly kind: "call"; readonly canister: string; readonly method: string; readonly args?: readonly ArgTemplate[] }
  /** install_code in upgrade or reinstall mode with the module at `wasm` (repository path). */
  | { readonly atS: number; readonly kind: "upgrade" | "reinstall"; readonly canister: string; readonly wasm: string; readonly args?: readonly ArgTemplate[] }
  | { readonly atS: number; readonly kind: "stop" | "start"; readonly canister: string }
  /** take_canister_snapshot; `label` names it for a later load. */
  | { readonly atS: number; readonly kind: "take-snapshot"; readonly canister: string; readonly label: string }
  /** load_canister_snapshot of the snapshot taken under `snapshot`. */
  | { readonly atS: number; readonly kind: "load-snapshot"; readonly canister: string; readonly snapshot: string }
  /** Queries `method` on every live honest replica; the answers go into the report under `label`. */
  | { readonly atS: number; readonly kind: "probe"; readonly canister: string; readonly method: string; readonly args?: readonly ArgTemplate[]; readonly label: string };

export const ACTION_KINDS: readonly ScenarioAction["kind"][] = ["call", "upgrade", "reinstall", "stop", "start", "take-snapshot", "load-snapshot", "probe"];

/** What the scenario expects of its probes (by label): the same answer, or a different one. */
export interface ProbeExpectations {
  readonly equal?: readonly (readonly [string, string])[];
  readonly differ?: readonly (readonly [string, string])[];
}

function typeOf(arg: ArgTemplate): IDL.Type {
  if ("text" in arg || "oneOf" in arg) return IDL.Text;
  if ("nat" in arg) return IDL.Nat;
  return IDL.Principal;
}

/** Candid bytes for the templates; `canisterIds` maps scenario canister names to principals. */
export function encodeArgs(args: readonly ArgTemplate[], rng: Rng | undefined, canisterIds: ReadonlyMap<string, string>): Uint8Array {
  const values = args.map((arg): unknown => {
    if ("text" in arg) return arg.text;
    if ("oneOf" in arg) return arg.oneOf[rng === undefined ? 0 : rng.below(arg.oneOf.length)] ?? "";
    if ("nat" in arg) {
      if (typeof arg.nat === "number") return BigInt(arg.nat);
      const [min, max] = arg.nat;
      return BigInt(rng === undefined ? min : rng.between(min, max));
    }
    const id = canisterIds.get(arg.canister);
    if (id === undefined) throw new Error(`argument names canister ${JSON.stringify(arg.canister)}, which the scenario does not declare`);
    return Principal.fromText(id);
  });
  return new Uint8Array(IDL.encode(args.map(typeOf), values));
}

/** Problems with templates, as sentences (empty when fine). */
export function checkArgTemplates(args: readonly ArgTemplate[], canisters: ReadonlySet<string>, where: string): string[] {
  const problems: string[] = [];
  args.forEach((arg, i) => {
    const at = `${where} argument ${i}`;
    if ("oneOf" in arg && arg.oneOf.length === 0) problems.push(`${at}: oneOf needs at least one text`);
    if ("nat" in arg) {
      const range = typeof arg.nat === "number" ? [arg.nat, arg.nat] : arg.nat;
      if (!range.every((v) => Number.isInteger(v) && v >= 0) || (range[0] ?? 0) > (range[1] ?? 0)) problems.push(`${at}: nat must be a non-negative integer or a [min, max] range`);
    }
    if ("canister" in arg && !canisters.has(arg.canister)) problems.push(`${at}: unknown canister ${JSON.stringify(arg.canister)}`);
  });
  return problems;
}
