// Issue 15: `wasm_memory_limit` from canister settings is enforced as the replica enforces it.
//
// Where the expected behaviour comes from (dfinity/ic):
//  - rs/embedders/src/wasmtime_embedder/system_api.rs `try_grow_wasm_memory`: a memory.grow that
//    takes the Wasm memory above the limit fails the message with WasmMemoryLimitExceeded (the new
//    size as the peak); a limit of 0 means unlimited; `effective_wasm_memory_limit`: only in
//    init/post_upgrade, the start function and update methods — not in queries (of any kind),
//    inspect_message, callbacks, system tasks or pre_upgrade;
//  - rs/execution_environment/src/execution/update.rs `CallOrTaskHelper::new`: an update call to a
//    canister whose memory is already above the limit fails before it runs (replicated queries run);
//  - rs/execution_environment/src/execution/install_code.rs `InstallCodeHelper::finish`: an install
//    that leaves the memory above the limit fails;
//  - rs/interfaces/src/execution_environment/errors.rs: the text (IC0539) and its hint line.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { DEFAULT_SENDER, ExecutionLab, MANAGEMENT_CANISTER, MANAGEMENT_TYPES, RejectCode, type CanisterId, type Response } from "../../harness/execution/index.ts";
import { fixture, readU32, u32le, settingsRecord, wat } from "./helpers.ts";

const PAGE = 65_536n;
const ic = MANAGEMENT_CANISTER as string as CanisterId;

/** The IC's WasmMemoryLimitExceeded as a user reads it (errors.rs: display, ".", newline, hint). */
const limitExceeded = (id: CanisterId, limitBytes: bigint, peakBytes: bigint): string =>
  `Error from Canister ${id}: Canister exceeded its current Wasm memory limit of ${limitBytes} bytes. ` +
  `The peak Wasm memory usage was ${peakBytes} bytes. If the canister reaches 4GiB, then it may stop functioning and may become unrecoverable. ` +
  "Please reach out to the canister owner to investigate the reason for the increased memory usage. " +
  "It might be necessary to move data from the Wasm memory to the stable memory. " +
  "If such high Wasm memory usage is expected and safe, then the developer can increase the Wasm memory limit in the canister settings..\n" +
  "Try checking the canister for a possible memory leak or modifying it to use more stable memory instead of Wasm memory. " +
  "See documentation: https://internetcomputer.org/docs/current/references/execution-errors#wasm-memory-limit-exceeded";

// `grow n` (update), `qgrow n` (query) and the heartbeat (when armed by `arm`) grow the memory by
// n pages and answer memory.grow's result (−1 when refused); `size` answers the size in pages.
const GROWER = `(module
  (import "ic0" "msg_arg_data_copy" (func $argCopy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func $grow (call $argCopy (i32.const 0) (i32.const 0) (i32.const 4))
    (i32.store (i32.const 8) (memory.grow (i32.load (i32.const 0))))
    (call $append (i32.const 8) (i32.const 4)) (call $reply))
  (func (export "canister_update grow") (call $grow))
  (func (export "canister_query qgrow") (call $grow))
  (func (export "canister_update arm") (call $argCopy (i32.const 16) (i32.const 0) (i32.const 4)) (call $reply))
  (func (export "canister_heartbeat") (if (i32.load (i32.const 16)) (then (drop (memory.grow (i32.load (i32.const 16)))) (i32.store (i32.const 16) (i32.const 0)))))
  (func (export "canister_query size") (i32.store (i32.const 8) (memory.size)) (call $append (i32.const 8) (i32.const 4)) (call $reply)))`;

function settingsArg(id: CanisterId, limitBytes: bigint): unknown {
  return {
    canister_id: Principal.fromText(id),
    settings: settingsRecord({ wasm_memory_limit: [limitBytes] }),
    sender_canister_version: [],
  };
}

function setUp(module = GROWER) {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  const setLimit = (limitBytes: bigint): void => void lab.update(ic, "update_settings", [MANAGEMENT_TYPES.update_settings.arg], [settingsArg(id, limitBytes)], [], { caller: DEFAULT_SENDER });
  lab.installCode(id, wat(module));
  const answer = (r: Response): number | string => (r.kind === "reply" ? readU32(r.data) | 0 : `${r.code} ${r.errorCode ?? ""} ${r.message}`);
  const grow = (pages: number): number | string => answer(lab.updateRaw(id, "grow", u32le(pages)).response);
  const qgrow = (pages: number): number | string => answer(lab.queryRaw(id, "qgrow", u32le(pages)).response);
  const size = (): number => readU32((lab.queryRaw(id, "size", new Uint8Array()).response as { data: Uint8Array }).data);
  return { lab, id, setLimit, grow, qgrow, size };
}

test("memory.grow past wasm_memory_limit in an update fails it with IC0539 and the IC's text; within the limit it grows (system_api.rs try_grow_wasm_memory)", (t) => {
  const { id, setLimit, grow, size } = setUp();
  setLimit(4n * PAGE);
  t.is(grow(3), 1, "1 → 4 pages: exactly the limit");
  t.is(grow(1), `5 IC0539 ${limitExceeded(id, 4n * PAGE, 5n * PAGE)}`, "the new size is the peak");
  t.is(size(), 4, "the failed update changed nothing");
});

test("queries are not held to wasm_memory_limit, neither in non-replicated nor in replicated mode (effective_wasm_memory_limit)", (t) => {
  const { lab, id, setLimit, qgrow, size } = setUp();
  setLimit(2n * PAGE);
  t.is(qgrow(5), 1, "a non-replicated query grows past the limit");
  const r = lab.updateRaw(id, "qgrow", u32le(5)).response;
  t.is(r.kind === "reply" ? readU32(r.data) : -1, 1, "a query method called as an update (replicated query) too");
  t.is(size(), 1, "query changes are discarded");
});

test("a wasm_memory_limit of 0 means unlimited (system_api.rs: 'A Wasm memory limit of 0 means unlimited')", (t) => {
  const { setLimit, grow, size } = setUp();
  setLimit(0n);
  t.is(grow(100), 1);
  t.is(size(), 101);
});

test("system tasks are not held to the limit, but an update to a canister already above it fails before it runs (update.rs); a replicated query still runs", (t) => {
  const { lab, id, setLimit, grow, size } = setUp();
  setLimit(2n * PAGE);
  t.is(grow(0), 1);
  lab.updateRaw(id, "arm", u32le(3));
  lab.tick();
  t.is(size(), 4, "the heartbeat grew the memory to 4 pages, above the 2-page limit");
  t.is(grow(0), `5 IC0539 ${limitExceeded(id, 2n * PAGE, 4n * PAGE)}`, "the current size is the peak");
  const q = lab.updateRaw(id, "qgrow", u32le(0)).response;
  t.is(q.kind, "reply", "a replicated query is not refused");
  setLimit(4n * PAGE);
  t.is(grow(0), 4, "with the limit raised to the memory in use, updates run again");
});

test("a limit lowered under the memory in use refuses updates until it is raised (update.rs CallOrTaskHelper::new)", (t) => {
  const { id, setLimit, grow } = setUp();
  t.is(grow(9), 1);
  setLimit(5n * PAGE);
  t.is(grow(0), `5 IC0539 ${limitExceeded(id, 5n * PAGE, 10n * PAGE)}`);
  setLimit(0n);
  t.is(grow(0), 10);
});

test("install: canister_init may not grow past the limit, and an install may not leave the memory above it (install_code.rs); pre_upgrade is not held to it", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.update(ic, "update_settings", [MANAGEMENT_TYPES.update_settings.arg], [settingsArg(id, 2n * PAGE)], [], { caller: DEFAULT_SENDER });
  const growsInInit = wat(`(module (memory 1) (func (export "canister_init") (drop (memory.grow (i32.const 2)))))`);
  const e1 = t.throws(() => lab.installCode(id, growsInInit));
  t.true(e1?.message.includes(limitExceeded(id, 2n * PAGE, 3n * PAGE)), e1?.message);
  const bigMemory = wat(`(module (memory 3))`);
  const e2 = t.throws(() => lab.installCode(id, bigMemory));
  t.true(e2?.message.includes(limitExceeded(id, 2n * PAGE, 3n * PAGE)), e2?.message);
  t.is(lab.canister(id).execution, undefined, "both installs failed");
  // pre_upgrade may grow past the limit (so a canister can move to a smaller version); the new
  // module's memory (1 page, replaced) is within it.
  const growsInPreUpgrade = wat(`(module (memory 1) (func (export "canister_pre_upgrade") (drop (memory.grow (i32.const 5)))))`);
  lab.installCode(id, growsInPreUpgrade);
  lab.upgradeCanister(id, wat(`(module (memory 1))`));
  t.is(lab.canister(id).execution?.wasmMemoryPages, 1);
});

test("a reply callback is not held to the limit (effective_wasm_memory_limit: response execution)", (t) => {
  // `go` calls its own `pong` and grows by 3 pages in the reply callback.
  const module = wat(`(module
    (import "ic0" "canister_self_size" (func $selfSize (result i32)))
    (import "ic0" "canister_self_copy" (func $selfCopy (param i32 i32 i32)))
    (import "ic0" "call_new" (func $callNew (param i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "ic0" "call_perform" (func $perform (result i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1) (table 1 funcref) (elem (i32.const 0) $onReply)
    (data (i32.const 100) "pong")
    (func $onReply (param i32) (drop (memory.grow (i32.const 3))) (call $reply))
    (func (export "canister_update go")
      (call $selfCopy (i32.const 0) (i32.const 0) (call $selfSize))
      (call $callNew (i32.const 0) (call $selfSize) (i32.const 100) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (drop (call $perform)))
    (func (export "canister_update pong") (call $reply)))`);
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, module);
  lab.update(ic, "update_settings", [MANAGEMENT_TYPES.update_settings.arg], [settingsArg(id, 2n * PAGE)], [], { caller: DEFAULT_SENDER });
  const r = lab.updateRaw(id, "go", new Uint8Array()).response;
  t.is(r.kind, "reply");
  t.is(lab.canister(id).execution?.wasmMemoryPages, 4);
});

for (const build of ["classic", "eop"] as const) {
  test(`a Motoko canister (${build}) that allocates past wasm_memory_limit gets IC0539 (fixtures/canisters/motoko/lowmem.mo)`, (t) => {
    const lab = new ExecutionLab();
    const id = lab.createCanister();
    lab.installCode(id, fixture(`motoko/lowmem.${build}.wasm`));
    lab.update(id, "grow", [IDL.Nat], [0n], [IDL.Nat]);
    const pages = BigInt(lab.canister(id).execution?.wasmMemoryPages ?? 0);
    const limit = (pages + 64n) * PAGE; // 4 MiB above what is in use
    lab.update(ic, "update_settings", [MANAGEMENT_TYPES.update_settings.arg], [settingsArg(id, limit)], [], { caller: DEFAULT_SENDER });
    const r = lab.updateRaw(id, "grow", IDL.encode([IDL.Nat], [8192n])).response; // keeps 8 MiB
    t.is(r.kind, "reject");
    if (r.kind !== "reject") return;
    t.is(r.code, RejectCode.CanisterError);
    t.is(r.errorCode, "IC0539");
    const peak = /The peak Wasm memory usage was (\d+) bytes/.exec(r.message)?.[1];
    t.true(peak !== undefined && BigInt(peak) > limit && BigInt(peak) % PAGE === 0n, `peak ${peak}`);
    t.is(r.message, limitExceeded(id, limit, BigInt(peak ?? 0)));
    t.is(BigInt(lab.canister(id).execution?.wasmMemoryPages ?? 0), pages, "the allocation was rolled back");
  });
}
