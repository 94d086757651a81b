// npm run bench:ic — one 13-replica execution subnet under 1,000 updates per simulated second to
// the key-value canister (the paper's Listing 1, Motoko): updates finalized and executed per
// simulated second, and simulated seconds per wall second. Two rows measured one after another in
// one process: simulated user signatures (the consensus lab's fast path) and signed IC call
// envelopes from Ed25519 / P-256 / secp256k1 / anonymous users, so the ratio shows what real
// sender authentication costs. Each senders kind runs twice, with execution shared between
// honest replicas (issue 13 item 1, the default) and without (--no-shared-execution), so the
// gain is a ratio measured side by side; a short warm-up run comes first (module compilation).
// Prints a table and, as its last line, JSON.
import { ExecutionStateMachine } from "../harness/replica/execution-state-machine.ts";
import { defineScenario } from "../harness/scenario/scenario.ts";
import { runScenario } from "../harness/scenario/runner.ts";
import { ensureInstrumenter } from "../harness/execution/instrumenter.ts";
import { replicaId } from "../harness/types.ts";

const RATE_PER_SEC = Number(process.env.BENCH_RATE ?? 1000);
const N = Number(process.env.BENCH_N ?? 13);
const SUBMIT_S = Number(process.env.BENCH_SECONDS ?? 20);
/** Updates are submitted from 1 s to 1 + SUBMIT_S; the run goes on 10 s more to drain. */
const DURATION_S = SUBMIT_S + 11;

interface Row {
  senders: string;
  sharing: boolean;
  submitted: number;
  executed: number;
  executedPerSimS: number;
  executedPerSimSecond: number;
  executions: number;
  sharedExecutions: number;
  auditedExecutions: number;
  wallS: number;
  simSecondsPerWallSecond: number;
  height: number;
}

function scenarioOf(senders: "sim" | "mixed", submitS: number) {
  return defineScenario({
    name: `bench-ic-${senders}`,
    description: `bench: ${N} replicas, kv canister, ${RATE_PER_SEC} updates/s, ${senders} senders`,
    n: N,
    durationS: submitS + 11,
    canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }],
    workload: { ratePerSec: RATE_PER_SEC, startS: 1, stopS: 1 + submitS, call: { canister: "kv", method: "insert" }, senders, keySpace: 100_000 },
    consensus: { dkgIntervalLength: 99 },
    livenessBoundS: 10,
  });
}

function measure(senders: "sim" | "mixed", sharing: boolean): Row {
  let executed = 0;
  const started = performance.now();
  const report = runScenario(scenarioOf(senders, SUBMIT_S), {
    seed: 1,
    sharedExecution: sharing,
    onFinish: (subnet) => {
      const machine = subnet.replica(replicaId(0))?.stateMachine;
      if (machine instanceof ExecutionStateMachine) executed = machine.inspectHistory().filter(([, s]) => s.startsWith("completed")).length;
    },
    onProgress: (s, total) => process.stderr.write(`[${senders}, sharing ${sharing ? "on" : "off"}] ${s.toFixed(0)}/${total} s simulated\n`),
  });
  const wallS = (performance.now() - started) / 1000;
  const executedPerSimS = Number((executed / SUBMIT_S).toFixed(1));
  return {
    senders,
    sharing,
    submitted: report.ingress.submitted,
    executed,
    executedPerSimS,
    executedPerSimSecond: executedPerSimS,
    executions: report.execution?.executions ?? 0,
    sharedExecutions: report.execution?.shared ?? 0,
    auditedExecutions: report.execution?.audited ?? 0,
    wallS: Number(wallS.toFixed(2)),
    simSecondsPerWallSecond: Number((DURATION_S / wallS).toFixed(2)),
    height: Math.min(...report.replicas.map((r) => r.deliveredHeight)),
  };
}

// Warm-up: compiles and instruments the canister once, so the first measured row does not pay it.
await ensureInstrumenter(); // binaryen, loaded on demand (the scenario has canisters)
runScenario(scenarioOf("sim", 1), { seed: 1 });
const rows: Row[] = [];
for (const senders of ["sim", "mixed"] as const) {
  for (const sharing of [true, false]) rows.push(measure(senders, sharing));
}

console.log(`${N} replicas, kv canister, ${RATE_PER_SEC} updates/s for ${SUBMIT_S} s (+${DURATION_S - SUBMIT_S} s to drain)`);
console.log("senders   sharing   submitted   executed   executed per sim-s   executions   shared   audited   wall s   sim-s/wall-s   height");
for (const r of rows) {
  console.log(
    `${r.senders.padEnd(9)} ${(r.sharing ? "on" : "off").padEnd(9)} ${String(r.submitted).padEnd(11)} ${String(r.executed).padEnd(10)} ${String(r.executedPerSimS).padEnd(20)} ${String(r.executions).padEnd(12)} ${String(r.sharedExecutions).padEnd(8)} ${String(r.auditedExecutions).padEnd(9)} ${String(r.wallS).padEnd(8)} ${String(r.simSecondsPerWallSecond).padEnd(14)} ${r.height}`,
  );
}
const row = (senders: string, sharing: boolean): Row | undefined => rows.find((r) => r.senders === senders && r.sharing === sharing);
for (const senders of ["sim", "mixed"]) {
  const on = row(senders, true);
  const off = row(senders, false);
  if (on !== undefined && off !== undefined) console.log(`${senders}: sharing on runs ${(off.wallS / on.wallS).toFixed(2)}× as fast as off`);
}
const [sim, real] = [row("sim", true), row("mixed", true)];
if (sim !== undefined && real !== undefined) console.log(`envelopes vs simulated signatures (sharing on): ${(real.wallS / sim.wallS).toFixed(2)}× the wall time`);
console.log(JSON.stringify({ benchmark: "ic", n: N, ratePerSec: RATE_PER_SEC, node: process.version, rows }));
