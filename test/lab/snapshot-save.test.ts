import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
// Issue 14 item 4, last part: `subnetlab snapshot save` writes a canister's state out of a run
// directory, and a scenario canister `fromSnapshot` starts from it at genesis — so a test with a
// large stable memory starts from a saved state instead of loading dummy data. A C counter (heap
// counter, stable-memory counter, certified data) and a Motoko key-value store (heap) are saved
// from one run and forked into another; the fork answers as the original did and holds the same
// module, heap, stable memory and certified data from its first certified state on.
import test from "ava";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CanisterState } from "../../harness/execution/interfaces.ts";
import { moduleHashOf, type SavedCanisterState } from "../../harness/execution/saved-canister-state.ts";
import { ExecutionStateMachine } from "../../harness/replica/execution-state-machine.ts";
import { recordRun } from "../../harness/replay/record.ts";
import { makeRepro, readRepro, ReproError } from "../../harness/replay/repro.ts";
import { replay } from "../../harness/replay/replay.ts";
import { runSnapshot } from "../../harness/replay/snapshot-command.ts";
import { readCanisterStateFile, writeCanisterStateFile } from "../../harness/scenario/canister-state-file.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { ScenarioError, type Scenario } from "../../harness/scenario/scenario.ts";
import { PAGE_SIZE_BYTES, PageMap } from "../../harness/state/page-map.ts";
import { replicaId } from "../../harness/types.ts";
import { ExecutionLab } from "../../harness/execution/lab.ts";
import { encodeRoundMetadata, initialRoundState } from "../../harness/execution/round.ts";
import { FileDisk } from "../../harness/real/file-disk.ts";
import { createRunDir, diskDir, REAL_CONSENSUS_CONFIG } from "../../harness/real/run-dir.ts";
import { StateManager } from "../../harness/state/state-manager.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const COUNTER_WASM = "fixtures/canisters/c/counter.wasm";
const KV_WASM = "fixtures/canisters/motoko/kv.classic.wasm";
const tmp = (): string => mkdtempSync(join(tmpdir(), "subnetlab-snapshot-save-"));

/** The original run: the counter's heap counter at 2, its stable counter at 1, certified data set; kv holds colour = teal. */
const SOURCE: Scenario = {
  name: "snapshot-source",
  description: "a C counter and a Motoko key-value store write heap, stable memory and certified data",
  n: 4,
  durationS: 10,
  canisters: [{ name: "counter", wasm: COUNTER_WASM }, { name: "kv", wasm: KV_WASM }],
  actions: [
    { atS: 1, kind: "call", canister: "counter", method: "inc" },
    { atS: 1.5, kind: "call", canister: "counter", method: "inc" },
    { atS: 2, kind: "call", canister: "counter", method: "stable_inc" },
    { atS: 2.5, kind: "call", canister: "counter", method: "set_certified", args: [{ text: "saved v1" }] },
    { atS: 3, kind: "call", canister: "kv", method: "insert", args: [{ text: "colour" }, { text: "teal" }] },
    ...probes(8),
  ],
};

function probes(atS: number): Scenario["actions"] & object {
  return [
    { atS, kind: "probe", canister: "counter", method: "get", label: "heap" },
    { atS, kind: "probe", canister: "counter", method: "get_stable", label: "stable" },
    { atS, kind: "probe", canister: "kv", method: "lookup", args: [{ text: "colour" }], label: "colour" },
  ];
}

/** The fork: both canisters from their saved files, probed at once, then the counter goes its own way. */
function forkScenario(counterFile: string, kvFile: string): Scenario {
  return {
    name: "snapshot-fork",
    description: "starts the counter and the key-value store from saved states",
    n: 4,
    durationS: 6,
    canisters: [
      { name: "counter", wasm: COUNTER_WASM, fromSnapshot: counterFile },
      { name: "kv", wasm: KV_WASM, fromSnapshot: kvFile },
    ],
    actions: [...probes(1), { atS: 2, kind: "call", canister: "counter", method: "inc" }, { atS: 4, kind: "probe", canister: "counter", method: "get", label: "heap-after" }],
  };
}

/** Collects what a command writes. */
function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out: () => out.join(""), err: () => err.join("") };
}

const answersOf = (report: RunReport, label: string): string[] => Object.values(report.probes?.find((p) => p.label === label)?.answers ?? {});

function canisterOf(machine: unknown, name: "counter" | "kv"): CanisterState {
  if (!(machine instanceof ExecutionStateMachine)) throw new Error("not an execution subnet");
  const c = machine.canisters[name === "counter" ? 0 : 1];
  if (c === undefined) throw new Error(`no ${name}`);
  return c;
}

/** The source run recorded, its two canisters saved with the command, and r0's canisters at the end (computed once). */
let sourceRun: Promise<{ dir: string; files: string; report: RunReport; original: Record<"counter" | "kv", CanisterState>; lastHeight: number; saveOutput: string }> | undefined;
function source() {
  sourceRun ??= (async () => {
    const dir = tmp();
    const files = tmp();
    const { report } = recordRun({ scenario: SOURCE, seed: 1, outDir: dir, keepTrace: true });
    let original: Record<"counter" | "kv", CanisterState> | undefined;
    runScenario(SOURCE, { seed: 1, onFinish: (subnet) => {
      const machine = subnet.replica(replicaId(0))?.stateMachine;
      original = { counter: canisterOf(machine, "counter"), kv: canisterOf(machine, "kv") };
    } });
    const counter = io();
    const savedCounter = await runSnapshot(["save", dir, "--canister", "counter", "--out", join(files, "counter.state"), "--quiet"], counter.io);
    const savedKv = await runSnapshot(["save", dir, "--canister", "rrkah-fqaaa-aaaaa-aaaaq-cai", "--out", join(files, "kv.state"), "--quiet"], io().io);
    if (savedCounter !== 0 || savedKv !== 0 || original === undefined) throw new Error(`save failed: ${counter.err()}`);
    return { dir, files, report, original, lastHeight: report.replicas[0]!.deliveredHeight, saveOutput: counter.out() };
  })();
  return sourceRun;
}

function assertSameState(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, a: CanisterState | SavedCanisterState, b: CanisterState, what: string): void {
  const ae = "execution" in a ? a.execution! : a;
  const be = b.execution!;
  t.is(be.moduleHash, ae.moduleHash, `${what}: module hash`);
  t.is(be.wasmMemory.hash(), ae.wasmMemory.hash(), `${what}: heap bytes`);
  t.is(be.wasmMemoryPages, ae.wasmMemoryPages, `${what}: heap size`);
  t.is(be.stableMemory.hash(), ae.stableMemory.hash(), `${what}: stable memory bytes`);
  t.is(be.stableMemoryPages, ae.stableMemoryPages, `${what}: stable memory size`);
  t.deepEqual(be.globals, ae.globals, `${what}: globals`);
  t.deepEqual([...b.certifiedData], [...a.certifiedData], `${what}: certified data`);
}

test("snapshot save writes the canister's state at the end of the run: module, heap, stable memory, globals, certified data", async (t) => {
  const { files, original, lastHeight, saveOutput } = await source();
  t.regex(saveOutput, /saved canister counter \(rwlgt-iiaaa-aaaaa-aaaaa-cai\) of r0 at height \d+/);
  for (const name of ["counter", "kv"] as const) {
    const read = readCanisterStateFile(join(files, `${name}.state`));
    if (!read.ok) return t.fail(read.message);
    t.is(read.saved.origin.height, lastHeight, "default: the last height r0 executed");
    t.is(read.saved.origin.replica, "r0");
    t.is(read.saved.origin.scenario, "snapshot-source");
    assertSameState(t, read.saved, original[name], name);
  }
  const counter = readCanisterStateFile(join(files, "counter.state"));
  if (!counter.ok) return t.fail();
  t.is(Buffer.from(counter.saved.certifiedData).subarray(-8).toString(), "saved v1");
  t.true(counter.saved.stableMemory.nonZeroPageIndices().length > 0, "the stable counter is in the file");
  t.is(counter.saved.moduleHash, moduleHashOf(readFileSync(join(ROOT, COUNTER_WASM))));
});

test("a scenario started fromSnapshot holds the saved state from its first executed height and answers as the original did", async (t) => {
  const { files, report: sourceReport, original } = await source();
  const firstHeight: Partial<Record<"counter" | "kv", CanisterState>> = {};
  const report = runScenario(forkScenario(join(files, "counter.state"), join(files, "kv.state")), {
    seed: 3,
    onDelivered: (replica, block, machine) => {
      if (replica !== 0 || block.height !== 1) return;
      firstHeight.counter = canisterOf(machine, "counter");
      firstHeight.kv = canisterOf(machine, "kv");
    },
  });
  t.is(report.verdict, "pass");
  // Height 1 is the first state replicas certify: it already holds the saved heap and stable memory.
  assertSameState(t, original.counter, firstHeight.counter!, "counter at height 1");
  assertSameState(t, original.kv, firstHeight.kv!, "kv at height 1");
  for (const label of ["heap", "stable", "colour"]) {
    const expected = answersOf(sourceReport, label)[0];
    t.truthy(expected);
    t.deepEqual(answersOf(report, label), [expected, expected, expected, expected], `${label}: every replica answers as the original`);
  }
  t.deepEqual(answersOf(report, "heap")[0], "reply 0200000000000000");
  t.deepEqual(answersOf(report, "heap-after"), Array(4).fill("reply 0300000000000000"), "the fork goes on from the saved counter");
});

test("the same seed and the same file give the same trace digest; a state saved at another height gives another", async (t) => {
  const { dir, files } = await source();
  const scenario = forkScenario(join(files, "counter.state"), join(files, "kv.state"));
  const a = runScenario(scenario, { seed: 5 });
  const b = runScenario(scenario, { seed: 5 });
  t.is(a.traceDigest, b.traceDigest);
  const earlier = join(tmp(), "counter-at-3.state");
  t.is(await runSnapshot(["save", dir, "--canister", "counter", "--at", "3", "--out", earlier, "--quiet"], io().io), 0);
  const read = readCanisterStateFile(earlier);
  t.true(read.ok && read.saved.origin.height === 3);
  const c = runScenario(forkScenario(earlier, join(files, "kv.state")), { seed: 5 });
  t.not(c.traceDigest, a.traceDigest);
  t.deepEqual(answersOf(c, "heap"), Array(4).fill("reply 0000000000000000"), "at height 3 (before the first call, at 1 s) the counter was 0");
});

test("repro.json records each file's content hash; replay runs with the same file and refuses a changed or damaged one", async (t) => {
  const { dir: sourceDir, files } = await source();
  const own = tmp();
  copyFileSync(join(files, "counter.state"), join(own, "counter.state"));
  copyFileSync(join(files, "kv.state"), join(own, "kv.state"));
  const out = tmp();
  recordRun({ scenario: forkScenario(join(own, "counter.state"), join(own, "kv.state")), seed: 2, outDir: out, keepTrace: false });
  const { bundle, dir } = readRepro(out);
  const counterHash = readCanisterStateFile(join(own, "counter.state"));
  t.deepEqual(bundle.scenario.snapshotFiles?.map((f) => f.canister), ["counter", "kv"]);
  t.is(bundle.scenario.snapshotFiles?.[0]?.contentHash, counterHash.ok ? counterHash.contentHash : "");
  t.true((await replay(bundle, dir)).matches);

  // Another valid state under the same name: the replay would start elsewhere, so it is refused.
  t.is(await runSnapshot(["save", sourceDir, "--canister", "counter", "--at", "5", "--out", join(own, "counter.state"), "--quiet"], io().io), 0);
  const changed = await t.throwsAsync(replay(bundle, dir), { instanceOf: ReproError });
  t.regex(changed?.message ?? "", /canister counter starts from .*counter\.state, which changed since the run: its content hash is [0-9a-f]{16}…, the run recorded [0-9a-f]{16}…/);
  const bytes = readFileSync(join(own, "kv.state"));
  writeFileSync(join(own, "kv.state"), bytes.subarray(0, bytes.length - 100));
  copyFileSync(join(files, "counter.state"), join(own, "counter.state"));
  const damaged = await t.throwsAsync(replay(bundle, dir), { instanceOf: ReproError });
  t.regex(damaged?.message ?? "", /canister kv starts from .*kv\.state, which cannot be read now: .*truncated/);
});

test("a truncated, altered, extended or foreign file is refused with the reason, by show and by a scenario", async (t) => {
  const { files } = await source();
  const good = readFileSync(join(files, "counter.state"));
  const dir = tmp();
  const variants: [string, Uint8Array, RegExp][] = [
    ["truncated", good.subarray(0, good.length - 1), /truncated: \d+ bytes of the \d+ its header announces/],
    ["cut-in-header", good.subarray(0, 15), /truncated: 15 bytes, too short for its header/],
    ["altered", (() => { const b = Uint8Array.from(good); b[b.length - 5000]! ^= 0x01; return b; })(), /its content hash does not match .*: the file was altered or corrupted/],
    ["extended", Buffer.concat([good, Buffer.from([0])]), /1 bytes beyond the \d+ its header announces/],
    ["foreign", readFileSync(join(ROOT, COUNTER_WASM)), /not a subnetlab canister state file/],
    ["future", (() => { const b = Uint8Array.from(good); b[11] = 2; return b; })(), /format version 2; this subnetlab reads version 1/],
  ];
  for (const [name, bytes, reason] of variants) {
    const path = join(dir, `${name}.state`);
    writeFileSync(path, bytes);
    const read = readCanisterStateFile(path);
    t.false(read.ok, name);
    t.regex(read.ok ? "" : read.message, reason, name);
    const shown = io();
    t.is(await runSnapshot(["show", path], shown.io), 2, name);
    t.regex(shown.err(), reason, name);
  }
  const fromTruncated = forkScenario(join(dir, "truncated.state"), join(files, "kv.state"));
  const error = t.throws(() => runScenario(fromTruncated, { seed: 1 }), { instanceOf: ScenarioError });
  t.regex(error?.message ?? "", /canister counter: fromSnapshot .*truncated\.state: truncated/);
  const shown = io();
  t.is(await runSnapshot(["show", join(files, "counter.state")], shown.io), 0);
  t.regex(shown.out(), /canister rwlgt-iiaaa-aaaaa-aaaaa-cai of scenario snapshot-source seed 1, r0 after height \d+/);
});

test("a file whose module is not the scenario's wasm is refused before the run", async (t) => {
  const { files } = await source();
  const swapped: Scenario = { ...forkScenario(join(files, "counter.state"), join(files, "kv.state")), canisters: [{ name: "counter", wasm: KV_WASM, fromSnapshot: join(files, "counter.state") }], actions: [] };
  const error = t.throws(() => runScenario(swapped, { seed: 1 }), { instanceOf: ScenarioError });
  t.regex(error?.message ?? "", /holds module 5aa142805ca1bf9b… \(canister rwlgt-iiaaa-aaaaa-aaaaa-cai of snapshot-source\), but wasm .*kv\.classic\.wasm is [0-9a-f]{16}…/);
  const withInit: Scenario = { ...swapped, canisters: [{ name: "counter", wasm: COUNTER_WASM, fromSnapshot: "x.state", init: [{ nat: 1 }] }] };
  t.throws(() => runScenario(withInit, { seed: 1 }), { instanceOf: ScenarioError, message: /fromSnapshot loads a saved state, so nothing is installed: drop init/ });
});

test("snapshot save refuses bad input with exit 2 and one clear line, and leaves --out as it was", async (t) => {
  const { dir } = await source();
  const outDir = tmp();
  const out = join(outDir, "x.state");
  writeFileSync(out, "previous content");
  const realDir = tmp();
  writeFileSync(join(realDir, "cluster-spec.json"), "{}");
  const cases: [string[], RegExp][] = [
    [["--canister", "nosuch"], /--canister nosuch: neither a canister of snapshot-source nor a canister id \(the scenario's canisters: counter = rwlgt-iiaaa-aaaaa-aaaaa-cai, kv = rrkah-fqaaa-aaaaa-aaaaq-cai\)/],
    [["--canister", "ryjl3-tyaaa-aaaaa-aaaba-cai"], /no canister ryjl3-tyaaa-aaaaa-aaaba-cai on r0 at height \d+/],
    [["--canister", "counter", "--at", "100000"], /--at 100000 was not reached on r0: it executed heights up to \d+ in this run/],
    [["--canister", "counter", "--replica", "r4"], /--replica r4: the run has replicas r0..r3/],
    [["--canister", "counter", "--replica", "x"], /--replica takes a replica name like r0/],
    [["--canister", "counter", "--at", "0"], /--at takes a height ≥ 1/],
    [["--out", out], /save needs --canister/],
  ];
  for (const [extra, pattern] of cases) {
    const c = io();
    const args = extra.includes("--out") ? ["save", dir, ...extra] : ["save", dir, ...extra, "--out", out, "--quiet"];
    t.is(await runSnapshot(args, c.io), 2, extra.join(" "));
    t.regex(c.err(), pattern, extra.join(" "));
    t.is(c.err().trim().split("\n").length, 1, `${extra.join(" ")}: one line`);
  }
  for (const [runDir, pattern] of [
    [join(outDir, "nope"), /nope: no such run directory/],
    [outDir, /holds no repro\.json/],
    [realDir, /cluster-spec\.json: not a subnetlab cluster spec/],
  ] as const) {
    const c = io();
    t.is(await runSnapshot(["save", runDir, "--canister", "counter", "--out", out], c.io), 2, runDir);
    t.regex(c.err(), pattern);
  }
  const missingParent = io();
  t.is(await runSnapshot(["save", dir, "--canister", "counter", "--out", join(outDir, "no", "x.state"), "--quiet"], missingParent.io), 2);
  t.regex(missingParent.err(), /--out .*no\/x\.state: no directory/);
  t.is(readFileSync(out, "utf8"), "previous content", "a refused save leaves the target untouched");
  t.deepEqual(readdirSync(outDir).sort(), ["x.state"], "and no temporary file");
});

test("a failed write leaves no file behind, and a save replaces the target whole", (t) => {
  const dir = tmp();
  const saved: SavedCanisterState = sparseState(2);
  t.throws(() => writeCanisterStateFile(join(dir, "missing", "x.state"), saved));
  t.deepEqual(readdirSync(dir), []);
  const path = join(dir, "x.state");
  writeFileSync(path, "old");
  writeCanisterStateFile(path, saved);
  t.true(readCanisterStateFile(path).ok);
  t.deepEqual(readdirSync(dir), ["x.state"]);
});

test("from a real-mode run directory the state comes from the replica's newest checkpoint that verifies", async (t) => {
  // A cluster directory as subnetlab up creates it, with r1's disk holding two checkpoints
  // written by the state manager a replica uses: the counter at 1 (height 100), then at 2 with
  // its stable counter at 1 and certified data (height 200).
  const dir = tmp();
  createRunDir(dir, { subnets: [{ name: "s0", n: 4 }], consensus: REAL_CONSENSUS_CONFIG });
  const lab = new ExecutionLab();
  const id = lab.createCanister();
  lab.installCode(id, readFileSync(join(ROOT, COUNTER_WASM)));
  const disk = new FileDisk(diskDir(dir, "s0", replicaId(1)));
  const manager = new StateManager(disk, { checkpointIntervalRounds: 100, keepCheckpoints: 2 });
  const checkpoint = (h: number) => manager.checkpointInstalled(h, { canisters: [lab.canister(id)], metadata: encodeRoundMetadata(initialRoundState([lab.canister(id)])) });
  lab.updateRaw(id, "inc", new Uint8Array());
  checkpoint(100);
  lab.updateRaw(id, "inc", new Uint8Array());
  lab.updateRaw(id, "stable_inc", new Uint8Array());
  lab.updateRaw(id, "set_certified", new TextEncoder().encode("from disk"));
  checkpoint(200);
  disk.close();

  const out = join(tmp(), "real.state");
  const saved = io();
  t.is(await runSnapshot(["save", dir, "--canister", id, "--replica", "r1", "--out", out], saved.io), 0, saved.err());
  t.regex(saved.out(), new RegExp(`saved canister ${id} of s0/r1 at height 200 to `));
  const read = readCanisterStateFile(out);
  if (!read.ok) return t.fail(read.message);
  assertSameState(t, read.saved, lab.canister(id), "newest checkpoint");
  t.is(Buffer.from(read.saved.certifiedData).toString(), "from disk");

  const older = join(tmp(), "real-100.state");
  t.is(await runSnapshot(["save", dir, "--canister", id, "--replica", "r1", "--at", "100", "--out", older], io().io), 0);
  const read100 = readCanisterStateFile(older);
  t.true(read100.ok && read100.saved.origin.height === 100 && read100.saved.certifiedData.length === 0);

  // The newest checkpoint's record damaged on disk: the one before it is the newest that verifies.
  const damaged = new FileDisk(diskDir(dir, "s0", replicaId(1)));
  const key = damaged.keys("checkpoint/").find((k) => Number(k.slice("checkpoint/".length)) === 200)!;
  damaged.write(key, new Uint8Array([1, 2, 3]));
  damaged.sync();
  damaged.close();
  const fallback = io();
  t.is(await runSnapshot(["save", dir, "--canister", id, "--replica", "r1", "--out", out], fallback.io), 0);
  t.regex(fallback.out(), /at height 100 to /);

  for (const [args, pattern] of [
    [["--canister", id, "--replica", "r1", "--at", "150"], /--at 150: no checkpoint at that height on s0-r1 \(its disk holds checkpoints 100, 200\)/],
    [["--canister", id, "--replica", "r2"], /no disk \(has s0-r2 ever started\?\)/],
    [["--canister", id, "--replica", "r4"], /--replica r4: subnet s0 has replicas r0..r3/],
    [["--canister", "counter", "--replica", "r1"], /a real-mode run has no scenario names; give the canister's id/],
    [["--canister", "ryjl3-tyaaa-aaaaa-aaaba-cai", "--replica", "r1"], new RegExp(`no canister ryjl3-tyaaa-aaaaa-aaaba-cai in s0-r1's checkpoint 100 \\(it holds ${id}\\)`)],
    [["--canister", id, "--subnet", "s9"], /no subnet s9 \(it has s0\)/],
  ] as const) {
    const c = io();
    t.is(await runSnapshot(["save", dir, ...args, "--out", join(tmp(), "x.state")], c.io), 2, args.join(" "));
    t.regex(c.err(), pattern);
  }
});

/**
 * The sparse-stable fixture with `gib` GiB of stable memory of which three pages were written —
 * the state a builder would otherwise fill with dummy data before each test.
 */
function sparseState(gib: number): SavedCanisterState {
  const wasm = readFileSync(join(ROOT, "fixtures/canisters/wat/sparse-stable.wasm"));
  const stablePages = (BigInt(gib) << 30n) / 65_536n;
  const page = (byte: number) => new Uint8Array(PAGE_SIZE_BYTES).fill(byte);
  const lastPage = Number((stablePages * 65_536n) / BigInt(PAGE_SIZE_BYTES)) - 1;
  return {
    origin: { canisterId: "rwlgt-iiaaa-aaaaa-aaaaa-cai", scenario: "hand-made", seed: 0, replica: "r0", height: 1, batchTimeNs: 0n },
    wasmModule: wasm,
    moduleHash: moduleHashOf(wasm),
    wasmMemory: PageMap.empty().resized(18 * 65_536),
    wasmMemoryPages: 18,
    stableMemory: PageMap.empty().resized(Number(stablePages) * 65_536).withPages(new Map([[0, page(1)], [1000, page(2)], [lastPage, page(3)]])),
    stableMemoryPages: stablePages,
    globals: [],
    certifiedData: new Uint8Array([1, 2, 3]),
    globalTimerNs: 0n,
    canisterVersion: 7n,
  };
}

test("a canister with 8 GiB of sparse stable memory starts from a small file: only written pages are stored and loaded", (t) => {
  const dir = tmp();
  const path = join(dir, "sparse.state");
  const saved = sparseState(8);
  writeCanisterStateFile(path, saved);
  t.true(readFileSync(path).length < 64 * 1024, "three stored pages, not 8 GiB");
  let loaded: CanisterState | undefined;
  const report = runScenario({
    name: "sparse-from-snapshot",
    description: "8 GiB of stable memory from a saved state",
    n: 4,
    durationS: 3,
    canisters: [{ name: "sparse", wasm: "fixtures/canisters/wat/sparse-stable.wasm", fromSnapshot: path }],
    actions: [{ atS: 1, kind: "probe", canister: "sparse", method: "size", label: "size" }],
  }, { seed: 1, onFinish: (subnet) => { loaded = (subnet.replica(replicaId(2))?.stateMachine as ExecutionStateMachine).canisters[0]; } });
  t.is(report.verdict, "pass");
  const sizeLe = Buffer.alloc(8);
  sizeLe.writeBigUInt64LE(saved.stableMemoryPages);
  t.deepEqual(answersOf(report, "size"), Array(4).fill(`reply ${sizeLe.toString("hex")}`), "stable64_size: 8 GiB in Wasm pages");
  t.is(loaded?.execution?.stableMemory.hash(), saved.stableMemory.hash());
  t.deepEqual(loaded?.execution?.stableMemory.nonZeroPageIndices(), saved.stableMemory.nonZeroPageIndices());
  t.deepEqual([...loaded!.certifiedData], [1, 2, 3]);
});

test("a fleet starts from one state file: every member holds the saved state, and the repro records the file once", (t) => {
  const dir = tmp();
  const path = join(dir, "sparse.state");
  const saved = sparseState(1);
  writeCanisterStateFile(path, saved);
  let loaded: readonly CanisterState[] = [];
  const scenario: Scenario = {
    name: "fleet-from-snapshot",
    description: "three canisters from one saved state",
    n: 4,
    durationS: 3,
    canisters: [{ name: "sparse", wasm: "fixtures/canisters/wat/sparse-stable.wasm", fromSnapshot: path, count: 3 }],
  };
  const report = runScenario(scenario, { seed: 1, onFinish: (subnet) => { loaded = (subnet.replica(replicaId(1))?.stateMachine as ExecutionStateMachine).canisters; } });
  t.is(report.verdict, "pass");
  t.is(loaded.length, 3);
  for (const c of loaded) t.is(c.execution?.stableMemory.hash(), saved.stableMemory.hash(), c.id);
  const bundle = makeRepro({ scenario, seed: 1, checkpointEvery: 1_000, checkpoints: [], report });
  t.deepEqual(bundle.scenario.snapshotFiles?.map((f) => f.canister), ["sparse"], "one record for the fleet, under its name");
});

test("subnetlab --help and snapshot --help name the command, the option and the exit codes; the CLI saves end to end", async (t) => {
  const { dir } = await source();
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/subnetlab.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  const help = cli("--help");
  t.is(help.status, 0);
  t.regex(help.stdout, /subnetlab snapshot save <run dir> --canister NAME\|ID --out FILE \[--replica rN\] \[--at HEIGHT\]/);
  t.regex(help.stdout, /fromSnapshot/);
  const own = cli("snapshot", "--help");
  t.is(own.status, 0);
  for (const word of ["--canister", "--out", "--replica", "--at", "SLCANSTATE", "Exit codes", "  4   the replay departs"]) t.true(own.stdout.includes(word), word);
  const out = join(tmp(), "kv.state");
  const saved = cli("snapshot", "save", dir, "--canister", "kv", "--out", out, "--quiet");
  t.is(saved.status, 0, saved.stderr);
  t.regex(saved.stdout, /saved canister kv \(rrkah-fqaaa-aaaaa-aaaaq-cai\) of r0 at height \d+ to .*kv\.state\n/);
  t.true(existsSync(out));
  const refused = cli("snapshot", "save", dir, "--canister", "kv", "--out", out, "--at", "99999", "--quiet");
  t.is(refused.status, 2);
  t.regex(refused.stderr, /^subnetlab: snapshot save: --at 99999 was not reached on r0/);
});
