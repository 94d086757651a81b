// Message semantics (IC interface spec "Abstract behaviour"; research/ic-protocol.md §4.8, §4.12):
// atomic updates, query isolation, the query cache, inter-canister calls with callbacks and
// cleanup, heartbeat / global timer, and the paper's Listing 1 key-value store.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { ExecutionLab, RejectCode, lifecycle, type CanisterId } from "../../harness/execution/index.ts";
import { fixture, readU32, readU64, watFixture } from "./helpers.ts";

const none = new Uint8Array();
const u32Reply = (lab: ExecutionLab, id: CanisterId, method: string): number => {
  const r = lab.queryRaw(id, method, none);
  if (r.response.kind !== "reply") throw new Error(`${method}: ${JSON.stringify(r.response)}`);
  return readU32(r.response.data);
};

test("a trapping update rolls back heap, globals and stable memory (spec: traps discard all changes)", (t) => {
  const lab = new ExecutionLab({ queryCache: false });
  const id = lab.createCanister();
  lab.installCode(id, watFixture("state.wat"));
  t.is(lab.updateRaw(id, "bump", none).response.kind, "reply");
  const before = lab.canister(id);
  const digestBefore = lifecycle.memoryDigest(before);
  const r = lab.updateRaw(id, "bump_then_trap", none);
  t.is(r.response.kind, "reject");
  if (r.response.kind === "reject") {
    t.is(r.response.code, RejectCode.CanisterError);
    t.regex(r.response.message, /ic0\.trap.*boom/);
  }
  // Everything but the canister's log is unchanged; the log records the trap (#12 item 7: traps
  // are logged, as on the IC).
  const after = lab.canister(id);
  t.is(after.execution, before.execution, "the execution state object is unchanged");
  t.deepEqual({ ...after, execution: undefined, log: undefined }, { ...before, execution: undefined, log: undefined });
  t.regex(new TextDecoder().decode(after.log?.records.at(-1)?.content), /^\[TRAP\]: .*boom/);
  t.is(lifecycle.memoryDigest(lab.canister(id)), digestBefore);
  t.is(u32Reply(lab, id, "global"), 1);
  t.is(u32Reply(lab, id, "heap"), 1);
  t.is(u32Reply(lab, id, "stable"), 1);
  // The live instance was rolled back too: the next update starts from the committed values.
  t.is(readU32((lab.updateRaw(id, "bump", none).response as { data: Uint8Array }).data), 2);
  t.is(u32Reply(lab, id, "heap"), 2);
  t.is(u32Reply(lab, id, "stable"), 2);
});

test("a trap after memory.grow restores the memory size", (t) => {
  const lab = new ExecutionLab({ queryCache: false });
  const id = lab.createCanister();
  lab.installCode(id, watFixture("state.wat"));
  t.is(u32Reply(lab, id, "memory_pages"), 2);
  t.is(lab.updateRaw(id, "grow_then_trap", none).response.kind, "reject");
  t.is(u32Reply(lab, id, "memory_pages"), 2);
  t.is(lab.canister(id).execution?.wasmMemoryPages, 2);
});

test("a query runs on current state and its writes are discarded (Motoko and C)", (t) => {
  const lab = new ExecutionLab({ queryCache: false });
  const mo = lab.createCanister();
  lab.installCode(mo, fixture("motoko/counter.classic.wasm"));
  lab.update(mo, "inc", [], [], [IDL.Nat]);
  t.deepEqual(lab.query(mo, "incInQuery", [], [], [IDL.Nat]), [2n], "the query sees the committed count");
  t.deepEqual(lab.query(mo, "incInQuery", [], [], [IDL.Nat]), [2n], "… and its own write was discarded");
  t.deepEqual(lab.query(mo, "get", [], [], [IDL.Nat]), [1n]);
  // Motoko checks its own state at upgrade: a leaked query write would make pre_upgrade trap
  // (research/wasm-toolchain.md §1 "Queries must be rolled back").
  lab.upgradeCanister(mo, fixture("motoko/counter.classic.wasm"));
  t.deepEqual(lab.query(mo, "get", [], [], [IDL.Nat]), [1n]);

  const c = lab.createCanister();
  lab.installCode(c, fixture("c/counter.wasm"));
  lab.updateRaw(c, "stable_inc", none);
  const q = lab.queryRaw(c, "inc_in_query", none);
  t.is(readU64((q.response as { data: Uint8Array }).data), 100n);
  t.is(readU64((lab.queryRaw(c, "get", none).response as { data: Uint8Array }).data), 0n);
  t.is(readU64((lab.queryRaw(c, "get_stable", none).response as { data: Uint8Array }).data), 1n);
  t.is(lab.canister(c).execution?.stableMemory.readPage(0)[0], 1);
});

test("the query cache answers repeated queries and is invalidated by any state change", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("motoko/counter.classic.wasm"));
  const get = () => lab.queryRaw(id, "get", IDL.encode([], []));
  const first = get();
  const second = get();
  t.false(first.cached);
  t.true(second.cached);
  t.deepEqual(second.response, first.response);
  t.deepEqual(lab.queryCacheStats, { hits: 1, misses: 1, invalidations: 0 });
  // Different caller → different key (ic-protocol.md §4.12: keyed by caller too).
  t.false(lab.queryRaw(id, "get", IDL.encode([], []), { caller: lab.canisterIds()[0] as never }).cached);
  lab.update(id, "inc", [], [], [IDL.Nat]);
  const third = get();
  t.false(third.cached, "an executed update changed the canister version");
  t.deepEqual(IDL.decode([IDL.Nat], (third.response as { data: Uint8Array }).data), [1n]);
  t.true(get().cached);
  // A trapped update changes nothing, so the cache stays valid.
  t.throws(() => lab.update(id, "incThenTrap", [], [], []));
  t.true(get().cached);
  // A snapshot load changes the state → invalidated.
  const snap = lab.takeSnapshot(id);
  lab.update(id, "inc", [], [], [IDL.Nat]);
  t.deepEqual(IDL.decode([IDL.Nat], (get().response as { data: Uint8Array }).data), [2n]);
  lab.loadSnapshot(id, snap.id);
  const afterLoad = get();
  t.false(afterLoad.cached);
  t.deepEqual(IDL.decode([IDL.Nat], (afterLoad.response as { data: Uint8Array }).data), [1n]);
});

test("inter-canister calls: Motoko caller awaits the callee; callbacks run as later messages", (t) => {
  for (const flavour of ["classic", "eop"]) {
    const lab = new ExecutionLab();
    const callee = lab.createCanister();
    const caller = lab.createCanister();
    lab.installCode(callee, fixture(`motoko/callee.${flavour}.wasm`));
    lab.installCode(caller, fixture(`motoko/caller.${flavour}.wasm`));
    t.deepEqual(lab.update(caller, "callPing", [IDL.Text, IDL.Nat], [callee, 41n], [IDL.Nat]), [42n], flavour);
    t.deepEqual(lab.update(caller, "callPing", [IDL.Text, IDL.Nat], [callee, 1n], [IDL.Nat]), [2n], flavour);
    t.deepEqual(lab.query(caller, "getTotal", [], [], [IDL.Nat]), [44n]);
    t.deepEqual(lab.query(callee, "callCount", [], [], [IDL.Nat]), [2n]);
    // A trapping callee: the caller's reject callback runs and catches the error.
    t.deepEqual(lab.update(caller, "callFail", [IDL.Text], [callee], [IDL.Text]), ["rejected"]);
    // Every call context and callback is closed again.
    t.deepEqual(lab.canister(caller).callContexts, []);
    t.deepEqual(lab.canister(caller).callbacks, []);
    // Calling a canister that does not exist: DESTINATION_INVALID reaches the caller's reject path.
    t.deepEqual(lab.update(caller, "callFail", [IDL.Text], ["aaaaa-aa"], [IDL.Text]), ["rejected"]);
  }
});

test("a trap in a reply callback rolls back the callback, runs cleanup, and rejects the caller", (t) => {
  // The caller's reply callback (table entry 0) writes the heap then traps; the cleanup closure
  // (table entry 1) records that it ran in a global.
  const lab = new ExecutionLab({ queryCache: false });
  const callee = lab.createCanister();
  lab.installCode(callee, fixture("c/counter.wasm"));
  const src = `(module
    (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "ic0" "call_on_cleanup" (func $cleanup (param i32 i32)))
    (import "ic0" "call_perform" (func $perform (result i32)))
    (import "ic0" "trap" (func $trap (param i32 i32)))
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1) (table 2 funcref) (elem (i32.const 0) $on_reply $on_cleanup)
    (global $cleaned (mut i32) (i32.const 0))
    (data (i32.const 0) "${watBytes(principalHex(callee))}")
    (data (i32.const 64) "inc")
    (func $on_reply (param i32) (i32.store (i32.const 200) (i32.const 99)) (call $trap (i32.const 64) (i32.const 3)))
    (func $on_cleanup (param i32) (global.set $cleaned (i32.const 1)))
    (func (export "canister_update go")
      (call $call_new (i32.const 0) (i32.const ${principalLength(callee)}) (i32.const 64) (i32.const 3)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (call $cleanup (i32.const 1) (i32.const 0))
      (drop (call $perform)))
    (func (export "canister_query probe")
      (i32.store (i32.const 300) (i32.add (global.get $cleaned) (i32.load (i32.const 200))))
      (call $append (i32.const 300) (i32.const 4)) (call $reply)))`;
  const caller = lab.createCanister();
  lab.installCode(caller, watText(src));
  const r = lab.updateRaw(caller, "go", none);
  t.is(r.response.kind, "reject");
  if (r.response.kind === "reject") {
    t.is(r.response.code, RejectCode.CanisterError);
    // The callback's ic0.trap, as the IC reports it to the ingress sender (rs/interfaces errors.rs).
    t.regex(r.response.message, /^Error from Canister \S+: Canister called `ic0.trap` with message: 'inc'\.\nConsider gracefully handling/);
    t.is(r.response.errorCode, "IC0503");
  }
  // cleanup ran (global = 1) and the callback's heap write (99) was rolled back.
  t.is(u32Reply(lab, caller, "probe"), 1);
  t.deepEqual(lab.canister(caller).callContexts, []);
  // The callee did execute the call.
  t.is(readU64((lab.queryRaw(callee, "get", none).response as { data: Uint8Array }).data), 1n);
});

test("global timer and heartbeat entry points (Motoko mo:core Timer)", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, fixture("motoko/counter.eop.wasm"));
  lab.update(id, "armTimer", [IDL.Nat], [5n], []);
  const deadline = lab.canister(id).globalTimerNs;
  t.is(deadline, lab.timeNs + 5_000_000_000n, "Motoko armed the global timer 5 s ahead");
  lab.tick();
  t.deepEqual(lab.query(id, "tickCount", [], [], [IDL.Nat]), [0n], "not due yet");
  lab.advanceTime(5_000_000_000n);
  lab.tick();
  t.deepEqual(lab.query(id, "tickCount", [], [], [IDL.Nat]), [1n], "fired once due");
  lab.advanceTime(60_000_000_000n);
  lab.tick();
  t.deepEqual(lab.query(id, "tickCount", [], [], [IDL.Nat]), [1n], "one-shot");

  const hb = lab.createCanister();
  lab.installCode(
    hb,
    watText(`(module (import "ic0" "msg_reply_data_append" (func $a (param i32 i32))) (import "ic0" "msg_reply" (func $r))
      (memory 1) (global $beats (mut i32) (i32.const 0))
      (func (export "canister_heartbeat") (global.set $beats (i32.add (global.get $beats) (i32.const 1))))
      (func (export "canister_query beats") (i32.store (i32.const 0) (global.get $beats)) (call $a (i32.const 0) (i32.const 4)) (call $r)))`),
  );
  lab.tick();
  lab.tick();
  lab.tick();
  t.is(u32Reply(lab, hb, "beats"), 3);
});

test("Listing 1 key-value store: insert (update) then lookup (query), Motoko and C", (t) => {
  for (const flavour of ["classic", "eop"]) {
    const lab = new ExecutionLab();
    const kv = lab.createCanister();
    lab.installCode(kv, fixture(`motoko/kv.${flavour}.wasm`));
    lab.update(kv, "insert", [IDL.Text, IDL.Text], ["k1", "v1"], []);
    lab.update(kv, "insert", [IDL.Text, IDL.Text], ["k2", "v2"], []);
    lab.update(kv, "insert", [IDL.Text, IDL.Text], ["k1", "v1b"], []);
    t.deepEqual(lab.query(kv, "lookup", [IDL.Text], ["k1"], [IDL.Opt(IDL.Text)]), [["v1b"]]);
    t.deepEqual(lab.query(kv, "lookup", [IDL.Text], ["k2"], [IDL.Opt(IDL.Text)]), [["v2"]]);
    t.deepEqual(lab.query(kv, "lookup", [IDL.Text], ["nope"], [IDL.Opt(IDL.Text)]), [[]]);
    t.deepEqual(lab.query(kv, "size", [], [], [IDL.Nat]), [2n]);
    // lookup is a query: calling it as an update runs it in replicated mode and keeps nothing.
    t.is(lab.updateRaw(kv, "lookup", IDL.encode([IDL.Text], ["k1"])).response.kind, "reply");
    t.throws(() => lab.query(kv, "insert", [IDL.Text, IDL.Text], ["a", "b"], []), { message: /IC0536\): Error from Canister \S+: Canister has no query method 'insert'\.\./ });
  }
  const lab = new ExecutionLab();
  const kv = lab.createCanister();
  lab.installCode(kv, fixture("c/kv.wasm"));
  const enc = (s: string) => new TextEncoder().encode(s);
  t.is(lab.updateRaw(kv, "insert", enc("alpha\u0000one")).response.kind, "reply");
  t.is(lab.updateRaw(kv, "insert", enc("beta\u0000two")).response.kind, "reply");
  const hit = lab.queryRaw(kv, "lookup", enc("beta"));
  t.deepEqual(hit.response, { kind: "reply", data: enc("two") });
  t.is(readU64((lab.queryRaw(kv, "size", none).response as { data: Uint8Array }).data), 2n);
});

// --- helpers for inline WAT that needs a principal -------------------------------------------------
import { Principal } from "@dfinity/principal";
import { wat } from "./helpers.ts";
function principalHex(id: string): string {
  return Buffer.from(Principal.fromText(id).toUint8Array()).toString("hex");
}
function watBytes(hex: string): string {
  return (hex.match(/../g) ?? []).map((b) => `\\${b}`).join("");
}
function principalLength(id: string): number {
  return Principal.fromText(id).toUint8Array().length;
}
function watText(src: string): Uint8Array {
  return wat(src);
}

test("query cache: results that read ic0.time expire with the time; others after 600 s (ic-protocol.md §4.12)", (t) => {
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(
    id,
    wat(`(module (import "ic0" "time" (func $time (result i64)))
      (import "ic0" "msg_reply_data_append" (func $a (param i32 i32))) (import "ic0" "msg_reply" (func $r))
      (memory 1)
      (func (export "canister_query now") (i64.store (i32.const 0) (call $time)) (call $a (i32.const 0) (i32.const 8)) (call $r))
      (func (export "canister_query const") (call $a (i32.const 0) (i32.const 8)) (call $r)))`),
  );
  const now1 = lab.queryRaw(id, "now", none);
  t.true(lab.queryRaw(id, "now", none).cached);
  t.true(lab.queryRaw(id, "const", none).cached === false);
  lab.advanceTime(1n);
  const now2 = lab.queryRaw(id, "now", none);
  t.false(now2.cached, "time changed and the query read it");
  t.is(readU64((now2.response as { data: Uint8Array }).data), readU64((now1.response as { data: Uint8Array }).data) + 1n);
  t.true(lab.queryRaw(id, "const", none).cached, "time-independent result stays cached");
  lab.advanceTime(600_000_000_000n);
  t.false(lab.queryRaw(id, "const", none).cached, "entries live at most 600 s");
});

test("composite query: calls another canister's query, sees its reply, and keeps no state (ic-protocol.md §4.12)", (t) => {
  // A's composite query `sum` bumps a global (must be discarded), calls B.get (C counter, 8-byte
  // reply) and, in the reply callback, replies with B's answer + A's global.
  const lab = new ExecutionLab({ queryCache: false });
  const b = lab.createCanister();
  lab.installCode(b, fixture("c/counter.wasm"));
  lab.updateRaw(b, "inc", none);
  lab.updateRaw(b, "inc", none);
  const a = lab.createCanister();
  const src = `(module
    (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "ic0" "call_perform" (func $perform (result i32)))
    (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
    (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
    (import "ic0" "msg_reply" (func $reply))
    (memory 1) (table 1 funcref) (elem (i32.const 0) $on_reply)
    (global $bumps (mut i32) (i32.const 0))
    (data (i32.const 0) "${watBytes(principalHex(b))}") (data (i32.const 64) "get")
    (func $on_reply (param i32)
      (call $copy (i32.const 200) (i32.const 0) (i32.const 8))
      (i64.store (i32.const 200) (i64.add (i64.load (i32.const 200)) (i64.extend_i32_u (global.get $bumps))))
      (call $append (i32.const 200) (i32.const 8)) (call $reply))
    (func (export "canister_composite_query sum")
      (global.set $bumps (i32.add (global.get $bumps) (i32.const 10)))
      (call $call_new (i32.const 0) (i32.const ${principalLength(b)}) (i32.const 64) (i32.const 3)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (drop (call $perform))))`;
  lab.installCode(a, watText(src));
  const before = lab.canister(a);
  for (let i = 0; i < 2; i++) {
    const r = lab.queryRaw(a, "sum", none);
    t.is(r.response.kind, "reply");
    t.is(readU64((r.response as { data: Uint8Array }).data), 12n, "B's count (2) + A's bump (10), every time");
    t.false(r.cached);
  }
  t.is(lab.canister(a), before, "nothing of the composite query is kept");
});

test("Motoko composite query awaits another canister's query (classic and EOP)", (t) => {
  for (const flavour of ["classic", "eop"]) {
    const lab = new ExecutionLab();
    const callee = lab.createCanister();
    const composite = lab.createCanister();
    lab.installCode(callee, fixture(`motoko/callee.${flavour}.wasm`));
    lab.installCode(composite, fixture(`motoko/composite.${flavour}.wasm`));
    lab.update(callee, "ping", [IDL.Nat], [1n], [IDL.Nat]);
    lab.update(callee, "ping", [IDL.Nat], [2n], [IDL.Nat]);
    t.deepEqual(lab.query(composite, "countOf", [IDL.Text], [callee], [IDL.Nat]), [1002n], flavour);
    // A callee that does not exist: the await throws, the composite query rejects.
    t.throws(() => lab.query(composite, "countOf", [IDL.Text], ["aaaaa-aa"], [IDL.Nat]), { instanceOf: Error }, flavour);
  }
});
