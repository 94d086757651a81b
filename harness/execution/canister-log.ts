// A canister's log (interface spec "fetch_canister_logs"; the IC's canister logging): the lines it
// passed to ic0.debug_print and the IC's own record of a Wasm trap or an ic0.trap — "[TRAP]: <trap
// code>" or "[TRAP]: <message>" ("(no message)" when empty), nothing for other failures such as the
// instruction limit (rs/embedders wasm_executor.rs) — each with an increasing index and the time of
// the round, kept in replicated state up to a size limit — the oldest records go first. Prints of
// queries are not logged (their state is thrown away), prints of trapped messages are. The lab adds
// nothing of its own.
import type { CanisterLog, CanisterLogRecord, CanisterState, ExecutionResult } from "./interfaces.ts";
import type { HypervisorError } from "./reject-codes.ts";

/** The IC keeps about 4 KiB of log per canister (its canister log buffer size). */
export const CANISTER_LOG_MAX_BYTES = 4096;
/** What a record costs against the limit besides its content: its idx and timestamp. */
const RECORD_OVERHEAD_BYTES = 16;

const encoder = new TextEncoder();
const recordBytes = (r: CanisterLogRecord): number => r.content.length + RECORD_OVERHEAD_BYTES;

/** `canister` with `lines` appended at `timeNs`, trimmed to the size limit. */
export function appendToLog(canister: CanisterState, lines: readonly string[], timeNs: bigint): CanisterState {
  if (lines.length === 0) return canister;
  const log = canister.log ?? { records: [], nextIdx: 0n };
  let nextIdx = log.nextIdx;
  const records = [...log.records];
  for (const line of lines) {
    // A single record larger than the buffer keeps its last bytes, as a ring buffer would.
    const content = encoder.encode(line).slice(-(CANISTER_LOG_MAX_BYTES - RECORD_OVERHEAD_BYTES));
    records.push({ idx: nextIdx, timestampNs: timeNs, content });
    nextIdx++;
  }
  let total = records.reduce((sum, r) => sum + recordBytes(r), 0);
  let drop = 0;
  while (total > CANISTER_LOG_MAX_BYTES) total -= recordBytes(records[drop++] as CanisterLogRecord);
  return { ...canister, log: { records: records.slice(drop), nextIdx } };
}

/** The IC's log records of a failed execution: one per Wasm trap or ic0.trap (a failed cleanup adds its own). */
export function trapRecords(error: HypervisorError | undefined): string[] {
  if (error === undefined) return [];
  switch (error.kind) {
    case "called-trap":
      return [`[TRAP]: ${error.message === "" ? "(no message)" : error.message}`];
    case "trapped":
      return [`[TRAP]: ${error.trap}`];
    case "cleanup":
      return [...trapRecords(error.callback), ...trapRecords(error.cleanup)];
    default:
      return [];
  }
}

/** A replicated execution's result with its prints and trap, if any, logged. */
export function withLoggedOutput(result: ExecutionResult, timeNs: bigint): ExecutionResult {
  const trap = result.outcome.kind === "trapped" ? trapRecords(result.outcome.error) : [];
  const lines = [...result.debugLog, ...trap];
  return lines.length === 0 ? result : { ...result, canister: appendToLog(result.canister, lines, timeNs) };
}
