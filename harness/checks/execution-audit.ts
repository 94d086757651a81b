// The execution audit's verdict (issue 13 item 1, harness/replica/shared-execution.ts): when a
// replica drawn to re-execute a shared batch got another outcome than the replica whose outcome
// the others adopted, one of the two executed wrongly — a nondeterministic or buggy executor that
// sharing would otherwise hide from the state-agreement check, since the adopters hold the same
// (possibly wrong) state. One violation per mismatch, naming both replicas.
import type { AuditMismatch } from "../replica/shared-execution.ts";
import type { Violation } from "./checks.ts";

export function checkExecutionAudit(mismatches: readonly AuditMismatch[]): Violation[] {
  return mismatches.map((m) => ({
    property: "state-divergence" as const,
    height: m.height,
    replicas: [m.auditor, m.computer],
    message: `execution audit: replica ${m.auditor}'s execution of height ${m.height} differs from ${m.computer}'s (state hash ${m.auditorStateHash.slice(0, 16)} vs ${m.computerStateHash.slice(0, 16)}; differing: ${m.differing.join(", ")})`,
  }));
}
