// Time slicing and checkpoints with the real Wasm runtime (part A's WasmExecutor) and the paper's
// benchmark canister (fixtures/canisters/bench). Expected values: the slice count follows from the
// executor's instruction count for the message (ceil(instructions / slice), see dts.ts); the
// reply of `primes n` is the n-th prime (7919 for n = 1000, a well-known value); replicas that
// run the same rounds must produce identical state digests.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { readFileSync } from "node:fs";
import { WasmExecutor } from "../../harness/execution/executor.ts";
import { canisterIdFromU64, principalText, type CanisterMessage, type CanisterState } from "../../harness/execution/interfaces.ts";
import { createCanister } from "../../harness/execution/lifecycle.ts";
import { slicesNeeded } from "../../harness/execution/dts.ts";
import { APP_SUBNET_ROUND_CONFIG, decodeRoundMetadata, executeAndCommit, executeQuery, executeRound, initialRoundState, type ExecutionRoundState, type RoundConfig } from "../../harness/execution/round.ts";
import { StateManager } from "../../harness/state/state-manager.ts";
import { SimDisk } from "../../harness/sim/disk.ts";

const caller = principalText("2vxsx-fae");
const wasm = new Uint8Array(readFileSync(new URL("../../fixtures/canisters/bench/bench.wasm", import.meta.url)));
const SLICE = 500_000n;
const config: RoundConfig = {
  ...APP_SUBNET_ROUND_CONFIG,
  scheduler: { ...APP_SUBNET_ROUND_CONFIG.scheduler, maxInstructionsPerSlice: SLICE, maxInstructionsPerRound: 3n * SLICE, maxInstructionsPerMessageWithoutDts: SLICE, maxInstructionsPerMessage: 20n * SLICE },
};

function installed(executor: WasmExecutor): CanisterState {
  const r = executor.installCode(createCanister({ id: canisterIdFromU64(5n), controllers: [caller], cycles: 10n ** 15n }), { mode: "install", wasmModule: wasm, arg: new Uint8Array(), sender: caller }, { instructionLimit: 10n ** 11n, timeNs: 1n });
  if (!r.ok) throw new Error(r.message);
  return r.canister;
}
const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const primes = (n: number, id: string): CanisterMessage => ({ kind: "ingress", messageId: id, caller, method: "primes", arg: u32(n) });
const lastQuery: Extract<CanisterMessage, { kind: "query" }> = { kind: "query", caller, method: "last", arg: new Uint8Array() };
const u64le = (b: Uint8Array | undefined): bigint => (b === undefined ? -1n : new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));

function queryLast(executor: WasmExecutor, state: ExecutionRoundState): bigint {
  const r = executeQuery(executor, config, state, state.canisters[0]!.id, lastQuery, 1n);
  const resp = r.responses[0]?.response;
  return resp?.kind === "reply" ? u64le(resp.data) : -1n;
}

test("real Wasm: primes(1000) is sliced over rounds, queries see the old value until the commit", (t) => {
  const executor = new WasmExecutor();
  let state = initialRoundState([installed(executor)]);
  const id = state.canisters[0]!.id;
  const seen: bigint[] = [];
  let committed: { round: number; instructions: bigint; slices: number; reply: bigint } | undefined;
  for (let round = 1; round <= 8 && committed === undefined; round++) {
    const out = executeRound(executor, config, state, { round, timeNs: BigInt(round), messages: round === 1 ? [{ canister: id, message: primes(1000, "p1") }] : [], isCheckpointRound: false });
    state = out.state;
    seen.push(queryLast(executor, state));
    const e = out.executed[0];
    const reply = out.ingressResponses[0]?.response;
    if (e !== undefined) committed = { round, instructions: e.instructionsUsed, slices: e.slices, reply: reply?.kind === "reply" ? u64le(reply.data) : -1n };
  }
  t.truthy(committed);
  t.is(committed!.reply, 7919n); // the 1000th prime
  const expectedSlices = slicesNeeded(committed!.instructions, SLICE);
  t.true(expectedSlices >= 2, `primes(1000) used ${committed!.instructions} instructions: must exceed one slice for this test`);
  t.is(committed!.slices, expectedSlices);
  t.is(committed!.round, expectedSlices); // one slice per round from round 1
  t.deepEqual(seen, [...Array.from({ length: expectedSlices - 1 }, () => 0n), 7919n]);
});

test("real Wasm: checkpoint abort, crash, restart from disk: the replica continues with the digests of an uninterrupted one", (t) => {
  const inputs = (id: CanisterState["id"], round: number) => (round === 1 || round === 4 ? [{ canister: id, message: primes(1000, `p${round}`) }] : []);
  interface Replica { sm: StateManager; executor: WasmExecutor; state: ExecutionRoundState }
  const replicaConfig: RoundConfig = { ...config, checkpointIntervalRounds: 2 };
  const step = (r: Replica, round: number): { digest: string; aborted: number } => {
    const res = executeAndCommit(r.executor, replicaConfig, r.sm, r.state, { round, timeNs: BigInt(round), messages: inputs(r.state.canisters[0]!.id, round) });
    r.state = res.state;
    return { digest: res.commit.stateDigest, aborted: res.output.aborted.length };
  };
  const fresh = (disk: SimDisk): Replica => {
    const executor = new WasmExecutor();
    return { sm: new StateManager(disk, { checkpointIntervalRounds: 2, keepCheckpoints: 2 }), executor, state: initialRoundState([installed(executor)]) };
  };
  const a = fresh(new SimDisk());
  const straight = Array.from({ length: 7 }, (_, k) => step(a, k + 1));
  // round 2 is a checkpoint round: primes(1000) from round 1 (≥ 2 slices, see the test above) is aborted
  t.is(straight[1]!.aborted, 1);
  t.true(straight.some((s, k) => k > 1 && s.aborted === 0));
  // a second replica that crashes after round 3 and restarts from its disk
  const disk = new SimDisk();
  const b = fresh(disk);
  for (let round = 1; round <= 3; round++) t.is(step(b, round).digest, straight[round - 1]!.digest);
  const sm = new StateManager(disk, { checkpointIntervalRounds: 2, keepCheckpoints: 2 });
  const loaded = sm.loadLatestCheckpoint();
  t.is(loaded?.height, 2);
  const restarted: Replica = { sm, executor: new WasmExecutor(), state: decodeRoundMetadata(loaded!.state.metadata, loaded!.state.canisters) };
  for (let round = 3; round <= 7; round++) t.is(step(restarted, round).digest, straight[round - 1]!.digest, `round ${round}`);
});
