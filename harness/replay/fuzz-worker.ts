// A lab worker process (started by worker-client.ts). It serves three requests:
//  - "run": one fuzz case (fuzz.ts), the fuzzer's parallelism;
//  - "rerun": the trace digest of a fuzz seed, computed again in this process — a process that
//    did not run that seed, so a result that depends on the process (its caches, its history, the
//    order of earlier runs) shows up as a second digest; on a mismatch it records the run as the
//    seed's repro;
//  - "rerun-file": the digest of a scenario file and seed (`run --twice`, `suite --twice`), loaded
//    afresh here.
// Each request's work is deterministic on its own; timing is the parent's job (it holds the only
// clock). An exception is answered as {type: "error"}: the parent ends the campaign (C5).
// A worker serves any number of requests, across campaigns (worker-pool.ts); it loads the Wasm
// instrumenter only when a scenario it is asked to run has canisters (scenario/prepare.ts), and
// exits when its parent goes away.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AssertionError } from "../assert.ts";
import { ensureInstrumenter } from "../execution/instrumenter.ts";
import { generateScenario } from "../scenario/generate.ts";
import { loadScenario } from "../scenario/load.ts";
import { prepareScenario } from "../scenario/prepare.ts";
import { runScenario } from "../scenario/runner.ts";
import type { Scenario } from "../scenario/scenario.ts";
import { fuzzCase, generateOptionsOf, type FuzzCaseOptions } from "./fuzz.ts";
import { recordRun } from "./record.ts";
import type { WorkerReply, WorkerRequest } from "./worker-client.ts";

// TEST-ONLY fault injection, read by this worker process and nowhere else (see
// test/lab/fuzz-hardening.test.ts). Never set them outside tests:
//  - SUBNETLAB_TEST_THROW_AT_SEED=S: the "run" request for fuzz seed S fails with an assertion, as a
//    harness bug inside a worker would (the campaign must end with exit 3 and name S).
//  - SUBNETLAB_TEST_PERTURB_RERUN=1: every re-run in this process runs one simulated second longer
//    than asked, so its trace digest differs — a planted nondeterminism that only the second
//    process shows (`run --twice` and the fuzzer must report it with their own exit code).
const THROW_AT_SEED = process.env.SUBNETLAB_TEST_THROW_AT_SEED;
const PERTURB_RERUN = process.env.SUBNETLAB_TEST_PERTURB_RERUN === "1";
// BENCHMARK switch (scripts/bench-fuzz.ts, the side with the optimisations off):
// SUBNETLAB_EAGER_INSTRUMENTER=1 loads binaryen at start, as every worker did before it was lazy.
if (process.env.SUBNETLAB_EAGER_INSTRUMENTER === "1") await ensureInstrumenter();

function perturbed(scenario: Scenario): Scenario {
  return PERTURB_RERUN ? { ...scenario, durationS: scenario.durationS + 1 } : scenario;
}

function runCase(seed: number, options: FuzzCaseOptions): WorkerReply {
  if (THROW_AT_SEED !== undefined && Number(THROW_AT_SEED) === seed) {
    throw new AssertionError(`planted harness error at seed ${seed} (SUBNETLAB_TEST_THROW_AT_SEED)`);
  }
  return { type: "result", result: fuzzCase(seed, options, () => 0) };
}

/** The seed's digest in this process; on a mismatch the run is recorded here as the seed's repro. */
function rerunCase(seed: number, options: FuzzCaseOptions, expectedDigest: string): WorkerReply {
  const scenario = generateScenario(seed, generateOptionsOf(options));
  const digest = runScenario(perturbed(scenario), { seed }).traceDigest;
  if (digest === expectedDigest) return { type: "digest", digest };
  const seedDir = join(options.outDir, "failures", `seed-${seed}`);
  // A failing seed already has its run directory; the second process's run goes beside it.
  const dir = existsSync(join(seedDir, "repro.json")) ? join(seedDir, "rerun") : seedDir;
  const recorded = recordRun({ scenario, seed, outDir: dir, keepTrace: true });
  writeFileSync(join(seedDir, "nondeterminism.json"), `${JSON.stringify({ seed, digests: [expectedDigest, digest], repro: recorded.reproPath }, null, 2)}\n`);
  return { type: "digest", digest, repro: recorded.reproPath };
}

async function rerunFile(file: string, seed: number): Promise<WorkerReply> {
  const loaded = await loadScenario(file);
  return { type: "digest", digest: runScenario(perturbed(loaded.scenario), { seed }).traceDigest };
}

async function serve(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.type) {
    case "run":
      await prepareScenario(generateScenario(request.seed, generateOptionsOf(request.options)));
      return runCase(request.seed, request.options);
    case "rerun":
      await prepareScenario(generateScenario(request.seed, generateOptionsOf(request.options)));
      return rerunCase(request.seed, request.options, request.expectedDigest);
    case "rerun-file":
      return rerunFile(request.file, request.seed);
  }
}

const send = (message: WorkerReply | { type: "ready" }): void => {
  process.send?.(message);
};

/** The reply with the CPU time this process spent on it (worker-client.ts, cpuMs). */
async function serveTimed(request: WorkerRequest): Promise<WorkerReply> {
  const before = process.cpuUsage();
  const reply = await serve(request);
  const spent = process.cpuUsage(before);
  return reply.type === "error" ? reply : { ...reply, cpuMs: (spent.user + spent.system) / 1000 };
}

process.on("message", (request: WorkerRequest | { type: "exit" }) => {
  if (request.type === "exit") {
    process.disconnect?.();
    process.exit(0);
  }
  serveTimed(request).then(send, (error: unknown) => {
    send({ type: "error", error: (error as Error).stack ?? String(error), usage: (error as Error).name === "ScenarioError" });
  });
});
// The parent died or let go of the channel: nothing more will come.
process.on("disconnect", () => process.exit(0));
send({ type: "ready" });
