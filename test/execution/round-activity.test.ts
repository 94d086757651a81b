// The round driver finds heartbeats, due timers, expiring callbacks and busy canisters through
// indexes carried from round to round (canister-activity.ts, the scheduling states' match with the
// canisters) instead of walking every canister. A round must not depend on whether those indexes
// were carried (warm) or rebuilt from scratch (cold: a fresh canisters array): same outputs, same
// state bytes, over random rounds with heartbeats, timers, local calls and long executions.
import test from "ava";
import fc from "fast-check";
import type { CanisterMessage, CanisterState, ExecutionParams, ExecutionResult } from "../../harness/execution/interfaces.ts";
import { encodeRoundMetadata, executeRound, initialRoundState, type ExecutionRoundState, type RoundOutput } from "../../harness/execution/round.ts";
import { canisterStateHash } from "../../harness/state/canister-codec.ts";
import { makeCanister } from "../state/fixtures.ts";
import { ModelExecutor, costArg } from "../state/model-executor.ts";
import { smallConfig } from "./small-round-config.ts";

const CANISTERS = 8;

function canister(i: number, heartbeat: boolean, timer: boolean): CanisterState {
  const c = makeCanister(i + 1, { wasmPages: 1 });
  const exports = [...c.execution!.exports, ...(heartbeat ? ["canister_heartbeat"] : []), ...(timer ? ["canister_global_timer"] : [])];
  // Every other timer canister starts with its timer set; the others only once an `arm` sets it.
  return { ...c, computeAllocationPercent: 0, globalTimerNs: timer && i % 2 === 0 ? BigInt(1 + (i % 3)) : 0n, execution: { ...c.execution!, exports } };
}

/** The model executor, plus method `arm`: an `add` that also sets the canister's global timer to now + 1. */
class ArmingExecutor extends ModelExecutor {
  override executeMessage(canister: CanisterState, message: CanisterMessage, params: ExecutionParams): ExecutionResult {
    if (message.kind !== "ingress" || message.method !== "arm") return super.executeMessage(canister, message, params);
    const result = super.executeMessage(canister, { ...message, method: "add" }, params);
    return { ...result, canister: { ...result.canister, globalTimerNs: params.timeNs + 1n } };
  }
}

/** Everything a round produces, as comparable text. */
function digestOf(out: RoundOutput): string {
  const show = (x: unknown): string => JSON.stringify(x, (_, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
  return show({
    metadata: encodeRoundMetadata(out.state),
    canisters: out.state.canisters.map(canisterStateHash),
    executed: out.executed.map((e) => [e.canister, e.message.kind, e.instructionsUsed, e.slices]),
    notFully: out.notFullyExecuted,
    aborted: out.aborted,
    perCore: out.instructionsPerCore,
    iterations: out.iterations,
  });
}

// Per round and canister: 0 nothing, 1 a cheap add, 2 a long add (sliced), 3 a ping to the next
// canister (a local call), 4 an update that sets the canister's timer (the index must pick it up).
const roundArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: CANISTERS, maxLength: CANISTERS });

test("property: a round gives the same result whether the driver's indexes were carried from the last round or rebuilt", (t) => {
  fc.assert(
    fc.property(fc.array(fc.boolean(), { minLength: CANISTERS, maxLength: CANISTERS }), fc.array(fc.boolean(), { minLength: CANISTERS, maxLength: CANISTERS }), fc.array(roundArb, { minLength: 1, maxLength: 12 }), (heartbeats, timers, rounds) => {
      let state: ExecutionRoundState = initialRoundState(Array.from({ length: CANISTERS }, (_, i) => canister(i, heartbeats[i]!, timers[i]!)));
      let seq = 0;
      for (const [r, codes] of rounds.entries()) {
        const round = r + 1;
        const messages = state.canisters.flatMap((c, i) => {
          const code = codes[i]!;
          const message = (method: string, cost: bigint, extra: Uint8Array): CanisterMessage => ({ kind: "ingress", messageId: `m${seq++}`, caller: "2vxsx-fae" as never, method, arg: costArg(cost, extra) });
          if (code === 1) return [{ canister: c.id, message: message("add", 200n, new Uint8Array([1])) }];
          if (code === 2) return [{ canister: c.id, message: message("add", 2_500n, new Uint8Array([2])) }];
          if (code === 3) return [{ canister: c.id, message: message("ping", 100n, new TextEncoder().encode(state.canisters[(i + 1) % CANISTERS]!.id)) }];
          if (code === 4) return [{ canister: c.id, message: message("arm", 100n, new Uint8Array([1])) }];
          return [];
        });
        const input = { round, timeNs: BigInt(round), messages, isCheckpointRound: round % 5 === 0 };
        const warm = executeRound(new ArmingExecutor(), smallConfig, state, input);
        const cold = executeRound(new ArmingExecutor(), smallConfig, { ...state, canisters: [...state.canisters] }, input);
        if (digestOf(warm) !== digestOf(cold)) return false;
        state = warm.state;
      }
      return true;
    }),
    { numRuns: 60, seed: 77 },
  );
  t.pass();
});

test("an idle canister is not visited: a round over many idle canisters runs only the ones with work, heartbeats and due timers", (t) => {
  const many = Array.from({ length: 300 }, (_, i) => canister(i, i === 17, i === 42));
  t.is(many[42]!.globalTimerNs, 1n);
  const exec = new ModelExecutor();
  const first = executeRound(exec, smallConfig, initialRoundState(many), { round: 1, timeNs: 5n, messages: [], isCheckpointRound: false });
  // canister 17 gets its heartbeat; canister 42's timer (deadline 1 + 42 % 3 = 1) is due
  t.deepEqual(exec.calls.map((c) => [c.canister, c.kind]), [
    [many[17]!.id, "heartbeat"],
    [many[42]!.id, "global-timer"],
  ]);
  t.deepEqual(first.notFullyExecuted, []);
  // the timer fired and was cleared; the next round only has the heartbeat
  const second = executeRound(exec, smallConfig, first.state, { round: 2, timeNs: 6n, messages: [], isCheckpointRound: false });
  t.deepEqual(exec.calls.slice(2).map((c) => [c.canister, c.kind]), [[many[17]!.id, "heartbeat"]]);
  t.is(second.state.canisters.length, 300);
});
