// Issue 11, checker gap C3: code no fault reached. A Byzantine replica now forges or replays
// artifacts (`forge` with `artifacts`: CUPs, certifications and their shares, XNet slices,
// state-sync chunks, blocks re-including finalized ingress), and workloads send update calls that
// write and then trap. For each named check — the CUP signature check, the block validator's
// duplicate-ingress check, the rollback of a trapped update's heap — a deliberately broken copy of
// the honest code (a canary) is caught on the first run of a scenario with the new fault or
// workload, which passes with the honest code; for the other forgeries, the honest replicas
// refuse them (and the lab notices when the refusal is removed).
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { DEFAULT_FORGE_ARTIFACTS, FORGE_ARTIFACTS, checkFaultSpec, type FaultSpec, type ForgeArtifact } from "../../harness/faults/spec.ts";
import { corruptSnapshot } from "../../harness/faults/forgery.ts";
import type { ForgeryCanary } from "../../harness/consensus/config.ts";
import { defineScenario, type Scenario } from "../../harness/scenario/scenario.ts";
import { runScenario, type RunReport } from "../../harness/scenario/runner.ts";
import { generateScenario, FUZZ_KINDS } from "../../harness/scenario/generate.ts";
import { withinFaultBound } from "../../harness/replay/shrink.ts";
import { CertificationPool, certificationMessageOf, signCertificationShare } from "../../harness/replica/certification.ts";
import type { SubnetVerifier } from "../../harness/crypto/interfaces.ts";
import { changedByTrap } from "../../harness/replica/trap-watch.ts";
import { checkTrappedUpdates } from "../../harness/checks/traps.ts";
import { simSubnetKeys } from "../../harness/crypto/sim-backend.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { PageMap } from "../../harness/state/page-map.ts";
import type { CanisterState } from "../../harness/execution/interfaces.ts";
import type { StateSnapshot } from "../../harness/replica/interfaces.ts";
import { decodeKvSnapshot } from "../../harness/replica/kv-state-machine.ts";
import { decodeCheckpointFiles, encodeCheckpointFiles } from "../../harness/state/state-sync.ts";
import { encodeValue } from "../../harness/sim/disk-records.ts";
import { height, replicaId, type HashHex, type Height } from "../../harness/types.ts";

const show = (report: RunReport): string => JSON.stringify(report.violations.slice(0, 3).map((v) => v.message));
const count = (report: RunReport, kind: string): number => report.eventCounts[kind] ?? 0;

/** n = 4, r1 forges `artifacts` from the start; optionally a canary and more faults. */
function forging(artifacts: readonly ForgeArtifact[], options: { canary?: ForgeryCanary; canisters?: boolean; faults?: FaultSpec[]; dkgIntervalLength?: number } = {}): Scenario {
  return defineScenario({
    name: `forge-${artifacts.join("-")}${options.canary === undefined ? "" : `-${options.canary}`}`,
    description: `r1 forges ${artifacts.join(", ")}.`,
    n: 4,
    durationS: 40,
    ...(options.canisters === true
      ? { canisters: [{ name: "kv", wasm: "fixtures/canisters/motoko/kv.classic.wasm" }], workload: { ratePerSec: 20, call: { canister: "kv", method: "insert" as const }, stopS: 20 } }
      : { workload: { ratePerSec: 20 } }),
    faults: [{ kind: "forge", replicas: [1], artifacts }, ...(options.faults ?? [])],
    livenessBoundS: 15,
    consensus: { dkgIntervalLength: options.dkgIntervalLength ?? 9, ...(options.canary === undefined ? {} : { canary: options.canary }) },
  });
}

// ---- the fault spec ---------------------------------------------------------------------------------

test("C3: forge artifacts are validated with the offending name, the nearest valid one and the list", (t) => {
  const check = (artifacts: unknown): void => checkFaultSpec({ kind: "forge", replicas: [1], artifacts } as FaultSpec, 0, 4, 30);
  for (const artifacts of [FORGE_ARTIFACTS, DEFAULT_FORGE_ARTIFACTS, ["cup"]]) t.notThrows(() => check(artifacts));
  t.throws(() => check(["cupp"]), { message: /^faults\[0\] \(forge\): unknown artifact "cupp" \(did you mean "cup"\?\); a forger forges one of "notarization-share", .*"replayed-ingress"$/ });
  t.throws(() => check(["xnet-slices"]), { message: /unknown artifact "xnet-slices" \(did you mean "xnet-slice"\?\)/ });
  t.throws(() => check(["proposal"]), { message: /unknown artifact "proposal"; a forger forges one of/ });
  t.throws(() => check([]), { message: /artifacts must be a non-empty list of "notarization-share"/ });
  t.throws(() => check("cup"), { message: /artifacts must be a non-empty list/ });
  t.throws(() => check(["cup", "cup"]), { message: /artifact "cup" is listed twice/ });
  t.throws(() => defineScenario({ name: "bad-forge", description: "", n: 4, durationS: 10, faults: [{ kind: "forge", replicas: [0], artifacts: ["certfication" as ForgeArtifact] }] }), { message: /scenario "bad-forge": faults\[0\] \(forge\): unknown artifact "certfication" \(did you mean "certification"\?\)/ });
});

// ---- (a) catch-up packages: the CUP signature check ----------------------------------------------------

test("C3(a): forged CUPs (a summary height ahead, a state hash nobody computed) are refused and the run passes", (t) => {
  const report = runScenario(forging(["cup"]), { seed: 1 });
  t.is(report.verdict, "pass", show(report));
  t.true(count(report, "fault.forge-cup") >= 4, "the forger made CUPs at several summary heights");
  t.true(count(report, "artifact.invalid") > 0, "honest replicas refused them (bad CUP signature)");
  t.true(report.maliciousEvents >= count(report, "fault.forge-cup"), "each forged CUP is logged as malicious");
  t.true(report.replicas.every((r) => r.finalizedHeight > 20), "consensus went on past the forged summary heights");
});

test("C3(a): without the CUP signature check (canary cup-signature-unchecked) the first run is a safety violation", (t) => {
  const report = runScenario(forging(["cup"], { canary: "cup-signature-unchecked" }), { seed: 1 });
  t.is(report.verdict, "safety", show(report));
  const accepted = report.violations.find((v) => /accepted a cup at height \d+ for [0-9a-f]{12} with 0 valid signer\(s\); it needs 3/.test(v.message));
  t.truthy(accepted, show(report));
  t.is(accepted?.property, "safety");
  t.false(accepted?.replicas.includes("r1"), "an honest replica is named, not the forger");
});

// ---- (e) blocks re-including finalized ingress: the validator's duplicate check ------------------------

test("C3(e): proposals that re-include finalized ingress are refused as duplicates and the run passes", (t) => {
  const report = runScenario(forging(["replayed-ingress"], { dkgIntervalLength: 49 }), { seed: 1 });
  t.is(report.verdict, "pass", show(report));
  t.true(count(report, "fault.replay-ingress") > 0, "the forger proposed blocks with replayed ingress");
  t.true(count(report, "artifact.invalid") >= count(report, "fault.replay-ingress"), "every such block was refused");
});

test("C3(e): without the block validator's duplicate-ingress check (canary validator-skips-ingress-dedup) the first run is a validity violation", (t) => {
  const report = runScenario(forging(["replayed-ingress"], { dkgIntervalLength: 49, canary: "validator-skips-ingress-dedup" }), { seed: 1 });
  t.is(report.verdict, "validity", show(report));
  const twice = report.violations.find((v) => v.property === "validity");
  t.regex(twice?.message ?? "", /^r\d finalized ingress finalized twice [0-9a-f]{12} at height \d+$/);
  t.true(twice?.replicas.includes("maker:r1"), "the forger made the block");
});

// ---- trapped updates: the rollback of a trapped update's heap -----------------------------------------

/** Counters in C and Motoko; a third of the calls write state and then trap. */
function trappingCalls(): Scenario {
  return defineScenario({
    name: "trapping-calls",
    description: "Update calls that write heap, stable memory and globals and then trap, among calls that succeed.",
    n: 4,
    durationS: 30,
    canisters: [{ name: "counter", wasm: "fixtures/canisters/c/counter.wasm" }, { name: "mo-counter", wasm: "fixtures/canisters/motoko/counter.classic.wasm" }],
    workload: {
      ratePerSec: 10,
      stopS: 12,
      calls: [
        { canister: "counter", method: "inc", args: [] },
        { canister: "counter", method: "inc_all_then_trap", args: [] },
        { canister: "mo-counter", method: "inc", args: [] },
        { canister: "mo-counter", method: "incThenTrap", args: [] },
      ],
    },
    actions: [{ atS: 25, kind: "probe", canister: "counter", method: "get", label: "counter-at-end" }],
    livenessBoundS: 15,
    consensus: { dkgIntervalLength: 19 },
  });
}

test("C3: update calls that write and then trap leave the canisters as they were (honest code: the run passes)", (t) => {
  const report = runScenario(trappingCalls(), { seed: 1 });
  t.is(report.verdict, "pass", show(report));
  t.true(report.ingress.finalized >= 100, `${report.ingress.finalized} calls finalized`);
});

test("C3: without the rollback of a trapped update's heap (execution canary trapped-update-keeps-heap) the first run is an invariant violation", (t) => {
  const report = runScenario(trappingCalls(), { seed: 1, executionCanary: "trapped-update-keeps-heap" });
  t.is(report.verdict, "invariant", show(report));
  const kept = report.violations.filter((v) => v.property === "invariant" && /trapped at height/.test(v.message));
  t.deepEqual(kept.map((v) => v.replicas).flat().sort(), ["r0", "r1", "r2", "r3"], "every replica ran the broken executor");
  t.regex(kept[0]?.message ?? "", /^r0: update (inc_all_then_trap|incThenTrap) \([0-9a-f]{16}\) on [a-z0-9-]+ trapped at height \d+ \(".*"\), yet its heap \(pages [\d, …]+\)(, globals)? changed; a trapped update must leave the canister as it was/);
});

test("C3: the trapped-update invariant compares heap, stable memory, globals and certified data, and names the replica, call and height", (t) => {
  const exec = { moduleHash: "00" as HashHex, wasmModule: new Uint8Array(), wasmMemory: PageMap.fromBytes(new Uint8Array(8192)), wasmMemoryPages: 1, stableMemory: PageMap.empty(), stableMemoryPages: 0n, globals: [1n], exports: [] };
  const before = { id: "c1", execution: exec, certifiedData: new Uint8Array([1]), cyclesBalance: 10n } as unknown as CanisterState;
  t.deepEqual(changedByTrap(before, { ...before, cyclesBalance: 5n } as CanisterState), [], "cycles may be charged");
  const written = new Uint8Array(8192);
  written[4100] = 7;
  const after = { ...before, execution: { ...exec, wasmMemory: PageMap.fromBytes(written), globals: [2n] }, certifiedData: new Uint8Array([2]) } as unknown as CanisterState;
  t.deepEqual(changedByTrap(before, after), ["heap (pages 1)", "globals", "certified data"]);
  const [v] = checkTrappedUpdates([
    { replica: "r2", height: 7, canister: "c1", message: "ab".repeat(32), method: "inc_all_then_trap", trap: "rollback me", changed: ["heap (pages 1)"] },
    { replica: "r2", height: 9, canister: "c1", message: "cd".repeat(32), method: "inc_all_then_trap", trap: "rollback me", changed: ["heap (pages 1)"] },
  ]);
  t.deepEqual(v, { property: "invariant", height: 7, replicas: ["r2"], message: `r2: update inc_all_then_trap (${"ab".repeat(8)}) on c1 trapped at height 7 ("rollback me"), yet its heap (pages 1) changed; a trapped update must leave the canister as it was; 1 more trapped update(s) changed state on r2` });
});

// ---- (b) certifications and certification shares ---------------------------------------------------------

test("C3(b): forged and replayed certifications and shares are refused; the replicas keep certifying their own state and the run passes", (t) => {
  const report = runScenario(forging(["certification"], { canisters: true }), { seed: 1 });
  t.is(report.verdict, "pass", show(report));
  for (const kind of ["fault.forge-certification", "fault.forge-certification-share", "fault.replay-certification", "fault.replay-certification-share"]) t.true(count(report, kind) > 0, kind);
  t.true(count(report, "certification.refused") > 0, "replayed certifications (genuine signature, another height's hash) were refused");
});

test("C3(b): without the certification checks (canary certification-unchecked) the first run is a safety violation", (t) => {
  const report = runScenario(forging(["certification"], { canisters: true, canary: "certification-unchecked" }), { seed: 1 });
  t.is(report.verdict, "safety", show(report));
  t.true(report.violations.some((v) => /a certification at height \d+ for [0-9a-f]{12} with 0 valid signer\(s\); it needs 3/.test(v.message)), show(report));
});

test("C3(b): a replica adopts a certification only over its own hash — a genuine one replayed under another height is refused, one ahead of execution waits", (t) => {
  const keys = simSubnetKeys(4, Rng.fromSeed(5));
  const own = new Map<Height, HashHex>([[height(5), "aa".repeat(32) as HashHex], [height(6), "bb".repeat(32) as HashHex]]);
  const pool = new CertificationPool(keys.verifier, (h) => own.get(h));
  let genuine;
  for (const r of [0, 1, 2]) genuine = pool.addShare(signCertificationShare(keys.signerFor(replicaId(r)), height(5), own.get(height(5))!)) ?? genuine;
  t.is(genuine?.hash, own.get(height(5)), "2f+1 shares over the own hash combine");
  const other = new CertificationPool(keys.verifier, (h) => own.get(h));
  t.deepEqual(other.addCertification({ ...genuine!, height: height(6) }), { kind: "differs", own: own.get(height(6)) }, "a replay under height 6 is refused");
  t.is(other.latestCertification, undefined);
  t.deepEqual(other.addCertification({ ...genuine!, hash: "cc".repeat(32) as HashHex }), { kind: "bad-signature" });
  t.deepEqual(other.addCertification({ ...genuine!, height: height(7) }), { kind: "held" }, "height 7 is not executed yet");
  own.set(height(7), "dd".repeat(32) as HashHex);
  t.deepEqual(other.onExecuted(height(7)).held?.verdict, { kind: "differs", own: own.get(height(7)) }, "judged once executed");
  t.deepEqual(other.addCertification(genuine!), { kind: "adopted", certification: genuine });
  // A share over a hash other than the replica's own never completes a certification for it.
  const mine = new CertificationPool(keys.verifier, (h) => own.get(h));
  for (const r of [0, 1, 2]) t.is(mine.addShare(signCertificationShare(keys.signerFor(replicaId(r)), height(6), "ee".repeat(32) as HashHex)), undefined);
});

test("item 1 (catch-up): certification shares are checked only when they can count — threshold-many over the own hash of an executed height, none below a held certification — and a forged one neither counts nor displaces the genuine one", (t) => {
  const keys = simSubnetKeys(4, Rng.fromSeed(6));
  let checks = 0;
  const verifier: SubnetVerifier = {
    ...keys.verifier,
    thresholdOf: (group) => keys.verifier.thresholdOf(group),
    verifyThreshold: (group, message, signature) => keys.verifier.verifyThreshold(group, message, signature),
    combineThreshold: (group, message, shares) => keys.verifier.combineThreshold(group, message, shares),
    verifyThresholdShare: (group, node, message, share) => {
      checks++;
      return keys.verifier.verifyThresholdShare(group, node, message, share);
    },
  };
  const own = new Map<Height, HashHex>();
  const pool = new CertificationPool(verifier, (h) => own.get(h));
  const hash5 = "a5".repeat(32) as HashHex;
  const share = (signer: number, h: Height, hash: HashHex) => signCertificationShare(keys.signerFor(replicaId(signer)), h, hash);
  // Before r1's genuine share: one claiming r1, signed by r3.
  pool.addShare({ ...share(3, height(5), hash5), signer: replicaId(1) });
  for (const r of [1, 0, 2, 3]) t.is(pool.addShare(share(r, height(5), hash5)), undefined, "height 5 is not executed yet");
  t.is(checks, 0, "nothing checked before the replica executed height 5");
  own.set(height(5), hash5);
  const combined = pool.onExecuted(height(5)).combined;
  t.true(combined !== undefined && keys.verifier.verifyThreshold("high", certificationMessageOf(hash5), combined.signature), "the genuine shares combine");
  t.is(checks, 4, "the forged share and the threshold's three genuine ones; r3's was not needed");
  // A peer's certification of height 8 is held: shares of 6 and 7 will never be needed.
  const hash8 = "a8".repeat(32) as HashHex;
  const helper = new CertificationPool(keys.verifier, () => hash8);
  let cert8;
  for (const r of [0, 1, 2]) cert8 = helper.addShare(share(r, height(8), hash8)) ?? cert8;
  t.deepEqual(pool.addCertification(cert8!), { kind: "held" });
  checks = 0;
  for (const r of [0, 1, 2, 3]) pool.addShare(share(r, height(6), "a6".repeat(32) as HashHex));
  own.set(height(6), "a6".repeat(32) as HashHex);
  t.is(pool.onExecuted(height(6)).combined, undefined, "height 6 is passed over");
  t.is(checks, 0, "its shares were never checked");
  own.set(height(8), hash8);
  t.deepEqual(pool.onExecuted(height(8)).held?.verdict, { kind: "adopted", certification: cert8 });
});

// ---- (c) XNet slices --------------------------------------------------------------------------------------

function xnetForging(canary?: ForgeryCanary): Scenario {
  const accounts = { oneOf: ["alice", "bob", "carol", "dave"] };
  return defineScenario({
    name: `xnet-forge${canary === undefined ? "" : `-${canary}`}`,
    description: "a/r1 serves forged XNet slices (a message replaced by its predecessor, the certification's hash set to the altered tree).",
    n: 4,
    durationS: 40,
    subnets: [
      { name: "a", n: 4, canisters: [{ name: "ledger-a", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "alice" }, { nat: 1_000_000 }] }], faults: [{ kind: "forge", replicas: [1], artifacts: ["xnet-slice"] }] },
      { name: "b", n: 4, canisters: [{ name: "ledger-b", wasm: "fixtures/canisters/motoko/ledger.classic.wasm", init: [{ text: "bob" }, { nat: 1_000_000 }] }] },
    ],
    workload: {
      ratePerSec: 8,
      stopS: 20,
      calls: [
        { canister: "ledger-a", method: "transfer_remote", args: [{ canister: "ledger-b" }, { text: "alice" }, accounts, { nat: [1, 50] }] },
        { canister: "ledger-b", method: "transfer_remote", args: [{ canister: "ledger-a" }, { text: "bob" }, accounts, { nat: [1, 50] }] },
      ],
    },
    invariants: [{ kind: "ledger-conservation", ledgers: ["ledger-a", "ledger-b"] }, { kind: "every-call-answered" }],
    livenessBoundS: 15,
    consensus: { dkgIntervalLength: 19, ...(canary === undefined ? {} : { canary }) },
  });
}

test("C3(c): forged XNet slices are refused by the destination (bad certification signature) and the run passes", (t) => {
  const report = runScenario(xnetForging(), { seed: 1 });
  t.is(report.verdict, "pass", show(report));
  t.true(count(report, "fault.forge-xnet-slice") > 0);
  t.true(count(report, "xnet.reject") > 0, "b's replicas refused them");
});

test("C3(c): without the XNet signature check (canary xnet-slice-signature-unchecked) the first run is an invariant violation", (t) => {
  const report = runScenario(xnetForging("xnet-slice-signature-unchecked"), { seed: 1 });
  t.is(report.verdict, "invariant", show(report));
});

// ---- (d) state-sync chunks ----------------------------------------------------------------------------------

/** r3 is down long enough to need state sync; r1 corrupts the checkpoints it serves. */
const stateSyncForging = (canary?: ForgeryCanary): Scenario => forging(["state-sync-chunk"], { canisters: true, faults: [{ kind: "crash", replicas: [3], atS: 5, restartS: 22 }], ...(canary === undefined ? {} : { canary }) });

test("C3(d): a corrupted state-sync chunk is refused; the replica syncs from an honest peer and the run passes — without the check (canary state-sync-unverified) it diverges", (t) => {
  // r3 asks a random peer; the first seed whose r3 asks the forger shows the refusal.
  let seed = 1;
  let honest = runScenario(stateSyncForging(), { seed });
  while (count(honest, "fault.forge-state-chunk") === 0 && seed < 12) honest = runScenario(stateSyncForging(), { seed: ++seed });
  t.true(count(honest, "fault.forge-state-chunk") > 0, "r3 asked the forger in one of the seeds");
  t.is(honest.verdict, "pass", show(honest));
  t.true(count(honest, "state-sync.reject") >= 1, "the corrupted checkpoint was refused");
  t.true(count(honest, "state-sync.done") >= 1, "and the state synced from an honest peer");
  const broken = runScenario(stateSyncForging("state-sync-unverified"), { seed });
  t.is(broken.verdict, "state-divergence", show(broken));
  t.deepEqual([...new Set(broken.violations.filter((v) => v.property === "state-divergence").flatMap((v) => v.replicas))], ["r3"], "only the replica that synced the corrupted chunk");
});

test("C3(d): a corrupted snapshot differs in one chunk, still decodes, and leaves the served one untouched", (t) => {
  // An execution snapshot is its checkpoint's files (state/state-sync.ts): the first page is hit.
  const page = new Uint8Array(4096).fill(7);
  const record = new Uint8Array([1, 2, 3]);
  const files = encodeCheckpointFiles([["pages/ab", page], ["checkpoint/000000000010", record]]);
  const snapshot: StateSnapshot = { height: height(10), stateHash: "ff" as HashHex, sizeBytes: 10, data: files };
  const corrupted = corruptSnapshot(snapshot);
  t.is(corrupted?.chunk, "pages/ab@2048");
  const decoded = decodeCheckpointFiles(corrupted?.snapshot.data ?? new Uint8Array());
  t.true(decoded.ok);
  const [recordFile, pageFile] = decoded.ok ? decoded.value : [];
  t.deepEqual(recordFile, ["checkpoint/000000000010", record], "other files are as they were");
  t.is(pageFile?.[1][2048], 6, "one bit of the page flipped");
  t.is(pageFile?.[1].filter((b) => b !== 7).length, 1);
  t.is(page[2048], 7, "the original is not mutated");
  // A key-value snapshot is JSON text: the byte changed is one whose change still decodes.
  const kv = encodeValue({ entries: [["k1", "v1"], ["k2", "v2"]], history: [] });
  const kvCorrupted = corruptSnapshot({ ...snapshot, data: kv });
  t.true(kvCorrupted !== undefined && decodeKvSnapshot(kvCorrupted.snapshot.data).ok);
  t.is(kvCorrupted?.snapshot.data.filter((b, i) => b !== kv[i]).length, 1);
  t.is(corruptSnapshot({ ...snapshot, data: new Uint8Array([1, 2, 3]) }), undefined, "bytes that decode as neither are left alone");
});

// ---- the fuzzer ------------------------------------------------------------------------------------------------

test("C3: the fuzzer's swarm draws forge modes within the fault bound, each on in about half of the forge faults", (t) => {
  const modes = new Map<string, number>();
  let forges = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const scenario = generateScenario(seed, { nodes: [4, 7], kinds: FUZZ_KINDS });
    t.true(withinFaultBound(scenario), `seed ${seed}`);
    for (const f of scenario.faults ?? []) {
      if (f.kind !== "forge") continue;
      forges++;
      for (const a of f.artifacts ?? DEFAULT_FORGE_ARTIFACTS) modes.set(a, (modes.get(a) ?? 0) + 1);
    }
  }
  t.true(forges >= 40, `${forges} forge faults`);
  for (const mode of FORGE_ARTIFACTS) {
    const share = (modes.get(mode) ?? 0) / forges;
    t.true(share > 0.3 && share < 0.8, `${mode}: ${modes.get(mode) ?? 0} of ${forges}`);
  }
});
