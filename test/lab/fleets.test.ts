// Fleets (issue 14 item 2): one canister entry with `count` stands for that many canisters from one
// module — canister per user. Calls to the fleet's name are spread over its members, actions on it
// reach every member, the module is held once for the whole fleet, and bad fleets are refused with
// a sentence that says what to change. The shipped scenario (scenarios/fleet-upgrade.ts: a fleet
// upgraded under load, timers and heartbeats on a fraction) runs and replays in scenarios.test.ts.
import "../setup-instrumenter.ts";
import test from "ava";
import { readFileSync } from "node:fs";
import { ExecutionLab } from "../../harness/execution/lab.ts";
import { expandFleets, fleetMemberName, fleetsOf } from "../../harness/scenario/fleets.ts";
import { runScenario } from "../../harness/scenario/runner.ts";
import { allCanisters, checkScenario, ScenarioError, type Scenario } from "../../harness/scenario/scenario.ts";
import type { ScenarioAction } from "../../harness/scenario/calls.ts";

const USER_WASM = "fixtures/canisters/wat/user.wasm";
const repo = (path: string): string => new URL(`../../${path}`, import.meta.url).pathname;
const u64 = (reply: string | undefined): bigint => {
  const hex = /^reply ([0-9a-f]{16})$/.exec(reply ?? "")?.[1];
  if (hex === undefined) throw new Error(`not a u64 reply: ${reply}`);
  return Buffer.from(hex, "hex").readBigUInt64LE();
};

const base: Scenario = {
  name: "fleet-test",
  description: "a small fleet",
  n: 4,
  durationS: 12,
  canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }, { name: "user", wasm: USER_WASM, count: 3 }],
};

test("a fleet entry stands for count canisters named <name>-<i>, in declaration order", (t) => {
  const specs = [{ name: "a", wasm: "x.wasm" }, { name: "user", wasm: USER_WASM, init: [{ nat: 5 }], count: 3 }, { name: "z", wasm: "y.wasm" }];
  t.deepEqual(expandFleets(specs).map((c) => c.name), ["a", "user-0", "user-1", "user-2", "z"]);
  t.true(expandFleets(specs).every((c) => !("count" in c)), "members are plain canisters");
  t.deepEqual(expandFleets(specs)[2]!.init, [{ nat: 5 }], "members share the entry's module and init");
  t.deepEqual([...fleetsOf(specs)], [["user", ["user-0", "user-1", "user-2"]]]);
  t.is(fleetMemberName("user", 79_999), "user-79999");
  t.deepEqual(allCanisters(base).map((c) => c.name), ["kv", "user-0", "user-1", "user-2"]);
});

test("bad fleets are refused with what to change", (t) => {
  const refused = (s: Scenario, pattern: RegExp): void => {
    const error = t.throws(() => checkScenario(s), { instanceOf: ScenarioError });
    t.regex(error?.message ?? "", pattern);
  };
  const withFleet = (count: number): Scenario => ({ ...base, canisters: [{ name: "user", wasm: USER_WASM, count }] });
  for (const count of [0, -1, 1.5, 100_001, Number.NaN]) refused(withFleet(count), /count \(a fleet's size\) must be an integer in 1\.\.100000/);
  refused({ ...base, canisters: [{ name: "user", wasm: USER_WASM, count: 2 }, { name: "user-1", wasm: USER_WASM }] }, /canister name "user-1" must be unique/);
  const action = (a: ScenarioAction): Scenario => ({ ...base, actions: [a] });
  refused(action({ atS: 1, kind: "probe", canister: "user", method: "touches", label: "p" }), /probe names fleet "user"; name one member \(e\.g\. "user-0"\)/);
  refused(action({ atS: 1, kind: "take-snapshot", canister: "user", label: "s" }), /take-snapshot names fleet "user"/);
  refused({ ...base, workload: { ratePerSec: 1, calls: [{ canister: "users", method: "touch", args: [] }] } }, /workload\.calls\[0\]\.canister "users" is not one of the scenario's canisters or fleets/);
  refused({ ...base, workload: { ratePerSec: 1, calls: [{ canister: "kv", method: "insert", args: [{ canister: "user" }] }] } }, /unknown canister "user"/);
  t.notThrows(() => checkScenario({ ...base, workload: { ratePerSec: 1, calls: [{ canister: "user", method: "touch", args: [] }] }, actions: [{ atS: 1, kind: "upgrade", canister: "user", wasm: USER_WASM }, { atS: 2, kind: "probe", canister: "user-2", method: "touches", label: "p" }] }));
});

test("calls to a fleet spread over its members, and a fleet action reaches every member", (t) => {
  const members = 6;
  const probes = Array.from({ length: members }, (_, i): ScenarioAction => ({ atS: 11, kind: "probe", canister: `user-${i}`, method: "touches", label: `touches-${i}` }));
  const versions = Array.from({ length: members }, (_, i): ScenarioAction => ({ atS: 11, kind: "probe", canister: `user-${i}`, method: "version", label: `version-${i}` }));
  const report = runScenario(
    {
      ...base,
      durationS: 12,
      canisters: [{ name: "user", wasm: USER_WASM, count: members }],
      workload: { ratePerSec: 20, startS: 1, stopS: 6, calls: [{ canister: "user", method: "touch", args: [] }] },
      actions: [{ atS: 3, kind: "upgrade", canister: "user", wasm: "fixtures/canisters/wat/user-v2.wasm" }, ...probes, ...versions],
      livenessBoundS: 10,
    },
    { seed: 3 },
  );
  t.is(report.verdict, "pass", JSON.stringify(report.violations.slice(0, 2)));
  const answer = (label: string): string | undefined => {
    const probe = report.probes?.find((p) => p.label === label);
    t.is(new Set(Object.values(probe?.answers ?? {})).size, 1, `${label}: the honest replicas agree`);
    return Object.values(probe?.answers ?? {})[0];
  };
  const touches = Array.from({ length: members }, (_, i) => u64(answer(`touches-${i}`)));
  t.true(touches.every((n) => n > 0n), `every member was called: ${touches.join(", ")}`);
  // Each member counts its own calls in stable memory, which the upgrade keeps: together they
  // answered every call the workload had finalized.
  t.is(touches.reduce((a, b) => a + b, 0n), BigInt(report.ingress.finalized), `Σ touches = finalized calls (${report.ingress.finalized})`);
  t.deepEqual(Array.from({ length: members }, (_, i) => u64(answer(`version-${i}`))), Array(members).fill(2n), "the upgrade reached every member");
  t.is(report.eventCounts["action.upgrade"], members);
});

test("a module installed into many canisters is held once: every member's state shares the bytes", (t) => {
  const lab = new ExecutionLab();
  const ids = Array.from({ length: 3 }, () => lab.createCanister());
  // A fresh buffer for each install, as each install_code message carries its own copy.
  for (const id of ids) lab.installCode(id, new Uint8Array(readFileSync(repo(USER_WASM))));
  const modules = ids.map((id) => lab.canister(id).execution?.wasmModule);
  t.truthy(modules[0]);
  t.true(modules.every((m) => m === modules[0]), "one Uint8Array for the fleet");
  const buffer = new Uint8Array(readFileSync(repo(USER_WASM)));
  const late = lab.createCanister();
  lab.installCode(late, buffer);
  buffer.fill(0);
  t.is(lab.canister(late).execution?.wasmModule, modules[0], "the caller's buffer is not kept: overwriting it changes no canister");
  t.deepEqual(modules[0], new Uint8Array(readFileSync(repo(USER_WASM))));
});
