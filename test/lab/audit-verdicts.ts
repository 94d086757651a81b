// What the tests of shared batches (shared-execution.test.ts, shared-kv-batches.test.ts) require of
// a run where one replica computes differently: with sharing on, the execution audit names it in
// every mismatch; with sharing off, the state-agreement check names it and the audit says nothing.
import type { ExecutionContext } from "ava";
import type { RunReport } from "../../harness/scenario/runner.ts";

const isAuditViolation = (v: RunReport["violations"][number]): boolean => v.message.startsWith("execution audit:");

/** The audit caught `replica`; `differing` is what its first mismatch must list first. */
export function assertAuditNames(t: ExecutionContext, report: RunReport, replica: string, differing = "state hash"): void {
  const audit = report.violations.filter(isAuditViolation);
  t.true(audit.length > 0, JSON.stringify(report.violations.map((v) => v.message)));
  t.true(audit.every((v) => v.replicas.includes(replica)), JSON.stringify(audit));
  t.regex(audit[0]?.message ?? "", new RegExp(`^execution audit: replica r\\d's execution of height \\d+ differs from r\\d's \\(state hash [0-9a-f]{16} vs [0-9a-f]{16}; differing: ${differing}`));
  t.true((report.execution?.mismatches ?? 0) > 0);
  t.is(report.verdict, "state-divergence");
}

/** Sharing off: state agreement names `replica` first, and no audit ran. */
export function assertAgreementNames(t: ExecutionContext, report: RunReport, replica: string): void {
  const divergence = report.violations.find((v) => v.property === "state-divergence");
  t.deepEqual(divergence?.replicas, [replica], JSON.stringify(report.violations.map((v) => v.message)));
  t.false(report.violations.some(isAuditViolation));
}
