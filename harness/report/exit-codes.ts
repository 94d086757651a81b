// Exit codes by verdict class, so CI can tell a fork from a stall from a broken harness.
import type { VerdictText } from "../checks/checks.ts";

export const EXIT = {
  pass: 0,
  usage: 2,
  harnessError: 3,
  replayMismatch: 4,
  nondeterministic: 5,
  safety: 10,
  stateDivergence: 11,
  validity: 12,
  liveness: 13,
  invariant: 14,
} as const;

export function exitCodeOf(verdict: VerdictText): number {
  switch (verdict) {
    case "pass":
      return EXIT.pass;
    case "safety":
      return EXIT.safety;
    case "state-divergence":
      return EXIT.stateDivergence;
    case "validity":
      return EXIT.validity;
    case "liveness":
      return EXIT.liveness;
    case "invariant":
      return EXIT.invariant;
  }
}

export const EXIT_CODE_HELP = `Exit codes:
  0   pass: every check held
  2   usage error, answered in one line naming the file and the problem (bad option,
      missing or invalid scenario, unwritable --out, unreadable repro or trace; also a
      fuzz or run that executed nothing, a suite with an invalid scenario)
  3   harness error (a bug in subnetlab itself, e.g. a failed assertion; fuzz names the
      seed and saves its repro)
  5   nondeterminism: the same seed gave two trace digests in two processes
      (run/suite --twice, fuzz re-runs); the repro is saved
  10  safety violated (two honest replicas finalized different blocks)
  11  state divergence (a replica's state hash differs from the others')
  12  validity violated (invalid or duplicate ingress finalized)
  13  liveness violated (no progress or ingress not finalized after the last heal)
  14  an application invariant failed (ledger supply, probes, a call never answered, certification)`;
