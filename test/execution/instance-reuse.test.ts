// Items 1–3 of the hardening issue (#11): a message's result is a function of the canister state
// and the message alone — not of which instance ran it, what ran on that instance before, how
// deep the host's stack is, what other canisters ran in between, or which process it runs in.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import fc from "fast-check";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { WasmExecutor } from "../../harness/execution/executor.ts";
import { ModuleCache } from "../../harness/execution/module-cache.ts";
import { atHostStackDepth, hostStackCapacityFrames } from "./stack-helpers.ts";
import { FIXTURE_CANISTERS, fingerprint, installFixture, runCall, sequenceDigest, type Call } from "./reuse-helpers.ts";

test("item 2: a module that drops a data segment starts every message from a fresh instance", (t) => {
  // On the IC every message runs on a new instance built from the canister state (memory,
  // globals): a dropped passive segment is back by the next message. A reused instance remembered
  // the drop, so the second `init_then_drop` trapped (memory.init on a dropped segment).
  const executor = new WasmExecutor(new ModuleCache());
  const call = { canister: "wat-hidden-state", method: "init_then_drop" };
  const once = runCall(executor, installFixture(executor, call.canister), call);
  const twice = runCall(executor, once.canister, call);
  t.is(once.result.outcome.kind, "completed");
  t.is(twice.result.outcome.kind, "completed", JSON.stringify(twice.result.outcome));
  t.is(fingerprint(twice.result, twice.canister).reply, Buffer.from("hello").toString("hex"));
});

const callArb = (canister: string) =>
  fc.record({
    canister: fc.constant(canister),
    method: fc.constantFrom(...(FIXTURE_CANISTERS.get(canister) ?? [])),
  });

test("items 1–3 property: pooled or fresh instances, host stack depth and execution order never change a reply or a state hash", (t) => {
  const capacity = hostStackCapacityFrames();
  // Compiled modules are shared (a pure function of the bytes); instances never are here.
  const modules = new ModuleCache();
  const names = [...FIXTURE_CANISTERS.keys()];
  fc.assert(
    fc.property(
      fc.array(fc.oneof(...names.map(callArb)), { minLength: 6, maxLength: 24 }),
      fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 24, maxLength: 24 }),
      (calls: Call[], depthPercents: number[]) => {
        // Reference (the IC's semantics): every message on a brand-new executor, so on a new
        // instance made from the canister state alone; one canister at a time; shallow host stack.
        const reference = new Map<string, string[]>();
        for (const name of names) {
          let c = installFixture(new WasmExecutor(modules), name);
          const out: string[] = [];
          for (const call of calls.filter((x) => x.canister === name)) {
            const r = runCall(new WasmExecutor(modules), c, call);
            c = r.canister;
            out.push(JSON.stringify(fingerprint(r.result, c)));
          }
          reference.set(name, out);
        }
        // Pooled instances on one executor shared by all canisters, calls interleaved, each at a
        // random host stack depth.
        const shared = new WasmExecutor(modules);
        const states = new Map(names.map((n) => [n, installFixture(shared, n)]));
        const seen = new Map<string, string[]>(names.map((n) => [n, []]));
        calls.forEach((call, i) => {
          const frames = Math.floor((capacity * (depthPercents[i] ?? 0)) / 100);
          const r = atHostStackDepth(frames, () => runCall(shared, states.get(call.canister)!, call));
          states.set(call.canister, r.canister);
          seen.get(call.canister)!.push(JSON.stringify(fingerprint(r.result, r.canister)));
        });
        for (const name of names) t.deepEqual(seen.get(name), reference.get(name), name);
      },
    ),
    { numRuns: Number(process.env["FC_RUNS"] ?? 12), seed: 11 },
  );
});

test("items 1–3: a fresh process computes the same replies and state hashes for the same call sequence", (t) => {
  const script = fileURLToPath(new URL("./reuse-digest.ts", import.meta.url));
  const here = sequenceDigest(7, 40);
  const there = execFileSync(process.execPath, ["--import", "tsx", script, "7", "40"], { encoding: "utf8", timeout: 120_000 }).trim();
  t.is(there, here);
});
