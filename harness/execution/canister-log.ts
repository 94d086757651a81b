// A canister's log (interface spec "fetch_canister_logs"; the IC's canister logging): the lines it
// passed to ic0.debug_print and a line per trap, each with an increasing index and the time of the
// round, kept in replicated state up to a size limit — the oldest records go first. Prints of
// queries are not logged (their state is thrown away), prints of trapped messages are.
import type { CanisterLog, CanisterLogRecord, CanisterState, ExecutionResult } from "./interfaces.ts";

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

/** A replicated execution's result with its prints and trap, if any, logged. */
export function withLoggedOutput(result: ExecutionResult, timeNs: bigint): ExecutionResult {
  const trap = result.outcome.kind === "trapped" ? [`[TRAP]: ${result.outcome.message}`] : [];
  const lines = [...result.debugLog, ...trap];
  return lines.length === 0 ? result : { ...result, canister: appendToLog(result.canister, lines, timeNs) };
}
