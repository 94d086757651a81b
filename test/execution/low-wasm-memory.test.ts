// Issue 15 item 4: the low-memory hook. With `wasm_memory_threshold` set, once the canister's Wasm
// memory leaves less than that below `wasm_memory_limit`, the system runs `canister_on_low_wasm_memory`
// once (status condition_not_satisfied → ready → executed); it runs again only after the
// condition stopped holding and holds again. read_canister_snapshot_metadata reports the status
// a snapshot was taken with.
//
// Where the expected behaviour comes from: the IC interface spec ("On low wasm memory hook",
// "IC method update_settings", "IC method read_canister_snapshot_metadata"); dfinity/ic
// rs/replicated_state/src/canister_state/system_state.rs (condition: threshold > limit − usage)
// and system_state/task_queue.rs (the status transitions, the hook before other tasks).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { DEFAULT_SENDER, ExecutionLab, MANAGEMENT_CANISTER, MANAGEMENT_TYPES, type CanisterId } from "../../harness/execution/index.ts";
import { APP_SUBNET_ROUND_CONFIG } from "../../harness/execution/round.ts";
import { canisterStateHash, decodeCanisterSystemState, encodeCanisterSystemState } from "../../harness/state/canister-codec.ts";
import { fixture, readU32, u32le, wat } from "./helpers.ts";

const PAGE = 65_536n;
const T = MANAGEMENT_TYPES;
const ic = MANAGEMENT_CANISTER as string as CanisterId;

// `grow n` grows the Wasm memory by n pages; the hook counts its runs at address 100; `runs`
// (a query) answers the count.
const HOOKED = wat(`(module
  (import "ic0" "msg_arg_data_copy" (func $argCopy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func (export "canister_update grow") (call $argCopy (i32.const 0) (i32.const 0) (i32.const 4)) (drop (memory.grow (i32.load (i32.const 0)))) (call $reply))
  (func (export "canister_on_low_wasm_memory") (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (i32.const 1))))
  (func (export "canister_query runs") (call $append (i32.const 100) (i32.const 4)) (call $reply)))`);

function setUp(options: ConstructorParameters<typeof ExecutionLab>[0] = {}) {
  const lab = new ExecutionLab(options);
  const id = lab.createCanister();
  lab.installCode(id, HOOKED);
  const settings = (limitPages: bigint | undefined, thresholdPages: bigint | undefined): void => {
    lab.update(ic, "update_settings", [T.update_settings.arg], [
      {
        canister_id: Principal.fromText(id),
        settings: {
          controllers: [], compute_allocation: [], memory_allocation: [], freezing_threshold: [], reserved_cycles_limit: [], log_visibility: [], environment_variables: [],
          wasm_memory_limit: limitPages === undefined ? [] : [limitPages * PAGE],
          wasm_memory_threshold: thresholdPages === undefined ? [] : [thresholdPages * PAGE],
        },
        sender_canister_version: [],
      },
    ], [], { caller: DEFAULT_SENDER });
  };
  const grow = (pages: number): void => void lab.updateRaw(id, "grow", u32le(pages));
  const runs = (): number => {
    const r = lab.queryRaw(id, "runs", new Uint8Array()).response;
    return r.kind === "reply" ? readU32(r.data) : -1;
  };
  const status = (): string => lab.canister(id).lowWasmMemoryHook ?? "condition_not_satisfied";
  return { lab, id, settings, grow, runs, status };
}

test("item 4: the hook runs once when the memory left under wasm_memory_limit drops below wasm_memory_threshold, and again only after the condition stopped holding (task_queue.rs)", (t) => {
  const { lab, settings, grow, runs, status } = setUp();
  settings(10n, 5n); // 1 page used: 9 left, not below 5
  t.is(status(), "condition_not_satisfied");
  grow(5); // 6 used: 4 left < 5
  t.is(status(), "ready", "the execution that grew the memory made the hook Ready");
  t.is(runs(), 0, "a query does not run it");
  lab.tick();
  t.is(runs(), 1, "it runs as a system task at the start of the next round");
  t.is(status(), "executed");
  grow(0);
  lab.tick();
  t.is(runs(), 1, "while the condition holds it does not run again");
  settings(100n, undefined); // 94 left: the condition stops holding
  t.is(status(), "condition_not_satisfied", "re-armed");
  settings(10n, undefined);
  t.is(status(), "ready", "settings changes re-evaluate the condition too");
  grow(0); // the hook goes before the canister's next message
  t.is(runs(), 2);
  t.is(status(), "executed");
});

test("item 4: a threshold of 0 (the default) never schedules the hook; canister_status reports the settings", (t) => {
  const { lab, id, settings, grow, runs, status } = setUp();
  grow(20);
  lab.tick();
  t.is(runs(), 0);
  t.is(status(), "condition_not_satisfied");
  t.is(lab.canister(id).lowWasmMemoryHook, undefined, "no hook state is kept");
  settings(30n, 12n);
  const [s] = lab.update(ic, "canister_status", [T.canister_status.arg], [{ canister_id: Principal.fromText(id) }], [...T.canister_status.ret], { caller: DEFAULT_SENDER }) as [
    { settings: { wasm_memory_limit: bigint; wasm_memory_threshold: bigint } },
  ];
  t.is(s.settings.wasm_memory_limit, 30n * PAGE);
  t.is(s.settings.wasm_memory_threshold, 12n * PAGE);
});

test("item 4: rounds mode — the hook runs in the same round, before the canister's next message (the replica's task queue front)", (t) => {
  const { lab, settings, grow, runs, status } = setUp({ rounds: APP_SUBNET_ROUND_CONFIG });
  settings(10n, 5n);
  grow(5);
  t.is(runs(), 1);
  t.is(status(), "executed");
});

test("item 4: read_canister_snapshot_metadata reports the hook status the snapshot was taken with; loading it brings that status back", (t) => {
  const { lab, id, settings, grow, status } = setUp();
  const metadata = (snapshotId: Uint8Array): unknown => {
    const [m] = lab.update(ic, "read_canister_snapshot_metadata", [T.read_canister_snapshot_metadata.arg], [{ canister_id: Principal.fromText(id), snapshot_id: snapshotId }], [...T.read_canister_snapshot_metadata.ret], { caller: DEFAULT_SENDER }) as [
      { on_low_wasm_memory_hook_status: unknown },
    ];
    return m.on_low_wasm_memory_hook_status;
  };
  const take = (): Uint8Array => {
    const [s] = lab.update(ic, "take_canister_snapshot", [T.take_canister_snapshot.arg], [{ canister_id: Principal.fromText(id), replace_snapshot: [] }], [...T.take_canister_snapshot.ret], { caller: DEFAULT_SENDER }) as [{ id: Uint8Array }];
    return s.id;
  };
  const before = take();
  t.deepEqual(metadata(before), [{ condition_not_satisfied: null }]);
  settings(10n, 5n);
  grow(5);
  lab.tick();
  const after = take();
  t.deepEqual(metadata(after), [{ executed: null }]);
  // Load the first snapshot: one page again, 9 left under the limit: the condition does not hold.
  lab.update(ic, "load_canister_snapshot", [T.load_canister_snapshot.arg], [{ canister_id: Principal.fromText(id), snapshot_id: before, sender_canister_version: [] }], [], { caller: DEFAULT_SENDER });
  t.is(status(), "condition_not_satisfied");
  lab.update(ic, "load_canister_snapshot", [T.load_canister_snapshot.arg], [{ canister_id: Principal.fromText(id), snapshot_id: after, sender_canister_version: [] }], [], { caller: DEFAULT_SENDER });
  t.is(status(), "executed", "the snapshot's status, still true of its memory");
});

test("item 4: the hook's settings and status are replicated state: they round-trip through the canister encoding and change its hash", (t) => {
  const { lab, id, settings, grow } = setUp();
  const plain = lab.canister(id);
  settings(10n, 5n);
  grow(5);
  const c = lab.canister(id);
  t.is(c.lowWasmMemoryHook, "ready");
  const bytes = encodeCanisterSystemState(c);
  const e = c.execution!;
  const back = decodeCanisterSystemState(bytes, { memory: (role) => (role === "vmemory_0" ? e.wasmMemory : e.stableMemory), module: () => e.wasmModule });
  t.deepEqual(encodeCanisterSystemState(back), bytes);
  t.is(back.wasmMemoryLimitBytes, 10n * PAGE);
  t.is(back.wasmMemoryThresholdBytes, 5n * PAGE);
  t.is(back.lowWasmMemoryHook, "ready");
  t.is(canisterStateHash(back), canisterStateHash(c));
  t.not(canisterStateHash({ ...c, lowWasmMemoryHook: "executed" }), canisterStateHash(c));
  t.regex(new TextDecoder().decode(encodeCanisterSystemState(plain).subarray(1, 22)), /^subnetlab-canister-v1/, "a canister without hook settings keeps its encoding");
});

for (const build of ["classic", "eop"] as const) {
  test(`item 4 (${build}): a Motoko canister's \`system func lowmemory\` runs once its memory nears wasm_memory_limit, once (fixtures/canisters/motoko/lowmem.mo)`, (t) => {
    const lab = new ExecutionLab();
    const id = lab.createCanister();
    lab.installCode(id, fixture(`motoko/lowmem.${build}.wasm`));
    lab.update(id, "grow", [IDL.Nat], [0n], [IDL.Nat]);
    const used = BigInt(lab.canister(id).execution?.wasmMemoryPages ?? 0);
    // A limit 256 MiB above what is in use (never reached here, as the IC would trap at it); the
    // condition holds once more than 2 MiB more are in use.
    const limit = (used + 4096n) * PAGE;
    const threshold = limit - (used + 32n) * PAGE;
    lab.update(ic, "update_settings", [T.update_settings.arg], [
      {
        canister_id: Principal.fromText(id),
        settings: { controllers: [], compute_allocation: [], memory_allocation: [], freezing_threshold: [], reserved_cycles_limit: [], log_visibility: [], environment_variables: [], wasm_memory_limit: [limit], wasm_memory_threshold: [threshold] },
        sender_canister_version: [],
      },
    ], [], { caller: DEFAULT_SENDER });
    const runs = (): bigint => (lab.query(id, "runs", [], [], [IDL.Nat]) as [bigint])[0];
    lab.tick();
    t.is(runs(), 0n, "not yet: less than 2 MiB more in use");
    const [size] = lab.update(id, "grow", [IDL.Nat], [4096n], [IDL.Nat]) as [bigint];
    t.true(size > (used + 32n) * PAGE && size < limit, `grew past the threshold, under the limit (${size})`);
    lab.tick();
    t.is(runs(), 1n);
    lab.update(id, "grow", [IDL.Nat], [1024n], [IDL.Nat]);
    lab.tick();
    t.is(runs(), 1n, "once: the condition still holds");
  });
}
