// Observation for the invariant "a trapped update changes nothing" (issue 11, C3): an update call
// (ingress or inter-canister request) that traps must leave the canister's heap, its size, stable
// memory, globals and certified data exactly as they were — only the cycles for the instructions
// it used are charged. The round's executor is wrapped; whenever a trapped update's result state
// differs from its input state, the difference is reported (harness/checks/traps.ts judges it).
// Cheap: page maps that were not written are the same objects, and equal ones compare by hash.
import type { PageMap } from "../state/page-map.ts";
import type { CanisterExecutor, CanisterMessage, CanisterState, ExecutionParams, ExecutionResult, InstallCodeArgs, LifecycleResult } from "../execution/interfaces.ts";

export interface TrappedChange {
  readonly canister: string;
  /** The ingress message id, or the calling canister's id for an inter-canister request. */
  readonly message: string;
  readonly method: string;
  readonly trap: string;
  /** What changed: "heap (pages 3, 4, 5)", "stable memory", "globals", … */
  readonly changed: readonly string[];
}

export class TrapWatchingExecutor implements CanisterExecutor {
  constructor(private readonly inner: CanisterExecutor, private readonly report: (change: TrappedChange) => void) {}

  executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    const result = this.inner.executeMessage(canister, message, params);
    if (result.outcome.kind !== "trapped" || (message.kind !== "ingress" && message.kind !== "request")) return result;
    const changed = changedByTrap(canister, result.canister);
    if (changed.length > 0) {
      this.report({
        canister: canister.id,
        message: message.kind === "ingress" ? message.messageId : `request from ${message.caller}`,
        method: message.method,
        trap: result.outcome.message,
        changed,
      });
    }
    return result;
  }

  installCode(canister: CanisterState, args: InstallCodeArgs, params: ExecutionParams): LifecycleResult {
    return this.inner.installCode(canister, args, params);
  }
}

/** The parts of a canister that differ between before and after (cycles are allowed to). */
export function changedByTrap(before: CanisterState, after: CanisterState): string[] {
  const a = before.execution;
  const b = after.execution;
  if (a === undefined || b === undefined) return a === b ? [] : ["module"];
  const changed: string[] = [];
  if (a.wasmMemory !== b.wasmMemory && !a.wasmMemory.equals(b.wasmMemory)) changed.push(`heap (${describePages(a.wasmMemory.pageCount() === b.wasmMemory.pageCount() ? differingPages(a.wasmMemory, b.wasmMemory) : undefined)})`);
  if (a.wasmMemoryPages !== b.wasmMemoryPages) changed.push(`heap size (${a.wasmMemoryPages} → ${b.wasmMemoryPages} Wasm pages)`);
  if (a.stableMemory !== b.stableMemory && !a.stableMemory.equals(b.stableMemory)) changed.push("stable memory");
  if (a.stableMemoryPages !== b.stableMemoryPages) changed.push("stable memory size");
  if (a.globals !== b.globals && JSON.stringify(a.globals, bigintAsText) !== JSON.stringify(b.globals, bigintAsText)) changed.push("globals");
  if (!sameBytes(before.certifiedData, after.certifiedData)) changed.push("certified data");
  return changed;
}

function differingPages(a: PageMap, b: PageMap): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.pageCount() && out.length < 8; i++) if (a.pageHash(i) !== b.pageHash(i)) out.push(i);
  return out;
}

function describePages(pages: readonly number[] | undefined): string {
  if (pages === undefined) return "resized";
  return pages.length === 0 ? "contents" : `pages ${pages.join(", ")}${pages.length >= 8 ? ", …" : ""}`;
}

const bigintAsText = (_key: string, value: unknown): unknown => (typeof value === "bigint" ? `${value}n` : value);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}
