// Cycles: execution fees and prepayment (ic-protocol.md §4.11: update execution 5 M + 1 cycle per
// instruction on a 13-node application subnet, scaled by n/13; a canister that cannot prepay the
// maximum fee is not executed), and the ic0 balance API.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { APP_SUBNET_FEES, ExecutionLab, RejectCode } from "../../harness/execution/index.ts";
import { fixture, readU64, wat } from "./helpers.ts";

const none = new Uint8Array();

test("an update pays 5 M + 1 cycle per instruction; queries are free", (t) => {
  const lab = new ExecutionLab({ fees: APP_SUBNET_FEES, instructionLimit: 1_000_000n });
  const id = lab.createCanister({ cycles: 10_000_000_000n });
  lab.installCode(id, fixture("c/counter.wasm"));
  const before = lab.cyclesBalance(id);
  const r = lab.updateRaw(id, "inc", none);
  t.is(lab.cyclesBalance(id), before - (5_000_000n + r.instructionsUsed));
  const q = lab.queryRaw(id, "get", none);
  t.true(q.instructionsUsed > 0n);
  t.is(lab.cyclesBalance(id), before - (5_000_000n + r.instructionsUsed));
  // A trapped update still pays for its instructions.
  const trapped = lab.updateRaw(id, "inc_all_then_trap", none);
  t.is(trapped.response.kind, "reject");
  t.is(lab.cyclesBalance(id), before - (5_000_000n + r.instructionsUsed) - (5_000_000n + trapped.instructionsUsed));
  // On a 34-node subnet everything costs 34/13 as much (integer division).
  const big = new ExecutionLab({ fees: { ...APP_SUBNET_FEES, subnetSize: 34 }, instructionLimit: 1_000_000n });
  const b = big.createCanister({ cycles: 10_000_000_000n });
  big.installCode(b, fixture("c/counter.wasm"));
  const used = big.updateRaw(b, "inc", none).instructionsUsed;
  t.is(big.cyclesBalance(b), 10_000_000_000n - ((5_000_000n + used) * 34n) / 13n);
});

test("a canister that cannot prepay the maximum fee is rejected with SYS_TRANSIENT", (t) => {
  const limit = 1_000_000n;
  const lab = new ExecutionLab({ fees: APP_SUBNET_FEES, instructionLimit: limit });
  const id = lab.createCanister({ cycles: 5_000_000n + limit - 1n });
  lab.installCode(id, fixture("c/counter.wasm"));
  const r = lab.updateRaw(id, "inc", none);
  t.is(r.response.kind, "reject");
  if (r.response.kind === "reject") {
    t.is(r.response.code, RejectCode.SysTransient);
    t.regex(r.response.message, /out of cycles/);
  }
  t.is(lab.cyclesBalance(id), 5_000_000n + limit - 1n, "nothing charged");
  t.is(readU64((lab.queryRaw(id, "get", none).response as { data: Uint8Array }).data), 0n);
});

test("canister_cycle_balance128 reports the balance as a little-endian u128", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister({ cycles: (1n << 70n) + 5n });
  lab.installCode(
    id,
    wat(`(module (import "ic0" "canister_cycle_balance128" (func $b (param i32)))
      (import "ic0" "msg_reply_data_append" (func $a (param i32 i32))) (import "ic0" "msg_reply" (func $r))
      (memory 1) (func (export "canister_query balance") (call $b (i32.const 0)) (call $a (i32.const 0) (i32.const 16)) (call $r)))`),
  );
  const data = (lab.queryRaw(id, "balance", none).response as { data: Uint8Array }).data;
  t.is(readU64(data.subarray(0, 8)), 5n);
  t.is(readU64(data.subarray(8, 16)), 1n << 6n);
});
