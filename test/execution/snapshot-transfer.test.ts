// Issue 14 item 4: snapshots as builders want them — downloaded through the management canister
// (read_canister_snapshot_metadata / read_canister_snapshot_data), uploaded into another canister
// (upload_canister_snapshot_metadata / upload_canister_snapshot_data) and loaded there, so the
// fork answers as the original did. Method names, fields and limits: the IC interface spec
// ("IC method read_canister_snapshot_data" …, ic.did); error codes and texts: dfinity/ic
// rs/execution_environment/src/canister_manager/types.rs (InvalidSlice, SliceTooLarge,
// CanisterSnapshotImmutable, CanisterSnapshotInconsistent) and MAX_SLICE_SIZE_BYTES = 2,000,000.
import test from "ava";
import "../setup-instrumenter.ts"; // runs canisters: loads the Wasm instrumenter first
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { DEFAULT_SENDER, ExecutionLab, LabError } from "../../harness/execution/lab.ts";
import { MANAGEMENT_TYPES } from "../../harness/execution/management.ts";
import { downloadSnapshot, uploadMetadataArgs, uploadSnapshot, type CallManagement } from "../../harness/execution/snapshot-archive.ts";
import { decodeCanisterSystemState, encodeCanisterSystemState, canisterStateHash } from "../../harness/state/canister-codec.ts";
import type { CanisterId, PrincipalText } from "../../harness/execution/interfaces.ts";
import { fixture } from "./helpers.ts";

const MGMT = "aaaaa-aa" as CanisterId;
const td = new TextDecoder();
const te = new TextEncoder();

/** Byte equality without ava's per-element diffing (megabytes of memory here). */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

function managementOf(lab: ExecutionLab, caller: PrincipalText = DEFAULT_SENDER): CallManagement {
  return (method, arg) => {
    const r = lab.updateRaw(MGMT, method, arg, { caller });
    if (r.response.kind === "reject") throw new LabError(r.response.code, r.response.message, r.response.errorCode);
    return r.response.data;
  };
}

function call(lab: ExecutionLab, method: keyof typeof MANAGEMENT_TYPES, arg: unknown, caller: PrincipalText = DEFAULT_SENDER) {
  const types = MANAGEMENT_TYPES[method];
  return lab.updateRaw(MGMT, method, IDL.encode([types.arg!], [arg]), { caller }).response;
}

/** A vault with a note in its heap, 70,000 bytes in stable memory (two Wasm pages) and certified data; one snapshot. */
function vaultWithSnapshot(build: "classic" | "eop") {
  const lab = new ExecutionLab();
  const original = lab.createCanister();
  lab.installCode(original, fixture(`motoko/vault.${build}.wasm`));
  lab.update(original, "put", [IDL.Text, IDL.Text], ["colour", "teal"], []);
  lab.update(original, "fillStable", [IDL.Nat64, IDL.Nat8], [70_000n, 7], [IDL.Nat64]);
  lab.update(original, "certify", [IDL.Vec(IDL.Nat8)], [te.encode("vault v1")], []);
  const snapshot = lab.takeSnapshot(original);
  return { lab, original, snapshotId: te.encode(snapshot.id) };
}

for (const build of ["classic", "eop"] as const) {
  test(`item 4 (${build}): a snapshot downloaded and uploaded into a fresh canister gives the same module, heap, stable memory and certified data; the fork answers as the original`, (t) => {
    const { lab, original, snapshotId } = vaultWithSnapshot(build);
    const mgmt = managementOf(lab);
    // Slices of 1,000,000 bytes: the heap (2 MiB) and stable memory (9 MiB: a Motoko region reserves 128 Wasm pages) take several reads each.
    const archive = downloadSnapshot(mgmt, original, snapshotId, 1_000_000);
    t.deepEqual(Object.keys(archive.metadata.source), ["taken_from_canister"]);
    t.is(archive.wasmModule.length, fixture(`motoko/vault.${build}.wasm`).length);
    t.is(archive.stableMemory.length % 65_536, 0);
    t.true(sameBytes(archive.wasmModule, fixture(`motoko/vault.${build}.wasm`)), "the module as installed");

    const fork = lab.createCanister();
    const uploaded = uploadSnapshot(mgmt, fork, archive, { sliceBytes: 1_000_000 });
    lab.loadSnapshot(fork, td.decode(uploaded));

    const a = lab.canister(original).execution!;
    const b = lab.canister(fork).execution!;
    t.is(b.moduleHash, a.moduleHash);
    t.is(b.wasmMemory.hash(), a.wasmMemory.hash(), "heap pages equal");
    t.is(b.stableMemory.hash(), a.stableMemory.hash(), "stable memory pages equal");
    t.is(b.wasmMemoryPages, a.wasmMemoryPages);
    t.is(b.stableMemoryPages, a.stableMemoryPages);
    t.deepEqual(b.globals, a.globals);
    t.deepEqual(b.exports, a.exports);
    t.deepEqual(lab.canister(fork).certifiedData, te.encode("vault v1"));

    for (const id of [original, fork]) {
      t.deepEqual(lab.query(id, "get", [IDL.Text], ["colour"], [IDL.Opt(IDL.Text)]), [["teal"]]);
      const [bytes] = lab.query(id, "readStable", [IDL.Nat64, IDL.Nat], [69_990n, 10n], [IDL.Vec(IDL.Nat8)]) as [Uint8Array];
      t.deepEqual([...bytes], Array.from({ length: 10 }, (_, i) => (7 + ((69_990 + i) % 251)) % 256));
    }
    // A fork, not a link: it goes its own way.
    lab.update(fork, "put", [IDL.Text, IDL.Text], ["colour", "red"], []);
    t.deepEqual(lab.query(original, "get", [IDL.Text], ["colour"], [IDL.Opt(IDL.Text)]), [["teal"]]);
    t.deepEqual(lab.query(fork, "get", [IDL.Text], ["colour"], [IDL.Opt(IDL.Text)]), [["red"]]);
  });
}

test("item 4: the uploaded snapshot's metadata reads back as uploaded, and the canister state with it survives a checkpoint (v3 encoding)", (t) => {
  const { lab, original, snapshotId } = vaultWithSnapshot("classic");
  const mgmt = managementOf(lab);
  const archive = downloadSnapshot(mgmt, original, snapshotId);
  const fork = lab.createCanister();
  const uploaded = uploadSnapshot(mgmt, fork, { ...archive, metadata: { ...archive.metadata, global_timer: [] } });
  const back = downloadSnapshot(mgmt, fork, uploaded);
  t.deepEqual(Object.keys(back.metadata.source), ["metadata_upload"]);
  t.deepEqual(back.metadata.global_timer, [], "no timer given: none reported");
  t.true(sameBytes(back.stableMemory, archive.stableMemory));
  t.true(sameBytes(back.wasmMemory, archive.wasmMemory));
  t.deepEqual(back.metadata.globals, archive.metadata.globals);

  const c = lab.canister(fork);
  const snap = c.snapshots[0]!;
  const resolve = { memory: (role: string) => (role.endsWith("vmemory_0") ? snap.execution.wasmMemory : snap.execution.stableMemory), module: () => snap.execution.wasmModule };
  const bytes = encodeCanisterSystemState(c);
  t.is(td.decode(bytes.subarray(1, 22)), "subnetlab-canister-v3");
  const decoded = decodeCanisterSystemState(bytes, resolve);
  t.deepEqual(decoded.snapshots[0]!.upload, { timerGiven: false });
  t.is(canisterStateHash(decoded), canisterStateHash(c));
  t.is(td.decode(encodeCanisterSystemState(lab.canister(original)).subarray(1, 22)), "subnetlab-canister-v1", "a taken snapshot keeps the old encoding");
});

test("item 4: slices beyond the data, slices over 2,000,000 bytes, uploads into a taken snapshot and non-controllers are refused with the IC's codes and texts", (t) => {
  const { lab, original, snapshotId } = vaultWithSnapshot("classic");
  const canister_id = Principal.fromText(original);
  const moduleSize = BigInt(fixture("motoko/vault.classic.wasm").length);
  const read = (kind: string, offset: bigint, size: bigint, caller?: PrincipalText) =>
    call(lab, "read_canister_snapshot_data", { canister_id, snapshot_id: snapshotId, kind: { [kind]: { offset, size } } }, caller);
  t.like(read("wasm_module", moduleSize - 10n, 11n), { kind: "reject", code: 4, errorCode: "IC0408", message: `Invalid subslice into wasm module / main memory / stable memory: offset: ${moduleSize - 10n}, size: 11` });
  t.like(read("wasm_memory", 0n, 2_000_001n), { kind: "reject", code: 4, errorCode: "IC0408", message: "Requested slice too large: 2000001 > 2000000" });
  t.is(read("wasm_module", moduleSize - 10n, 10n).kind, "reply", "the last 10 bytes are inside");
  const stranger = Principal.selfAuthenticating(new Uint8Array(32).fill(9)).toText() as PrincipalText;
  t.like(read("wasm_module", 0n, 1n, stranger), { kind: "reject", errorCode: "IC0512" });
  const upload = call(lab, "upload_canister_snapshot_data", { canister_id, snapshot_id: snapshotId, kind: { wasm_module: { offset: 0n } }, chunk: new Uint8Array([1]) });
  t.like(upload, { kind: "reject", code: 4, errorCode: "IC0409", message: "Only canister snapshots created by metadata upload can be mutated." });
  const chunkRead = call(lab, "read_canister_snapshot_data", { canister_id, snapshot_id: snapshotId, kind: { wasm_chunk: { hash: new Uint8Array(32) } } });
  t.like(chunkRead, { kind: "reject", errorCode: "IC0408" });
  t.regex(chunkRead.kind === "reject" ? chunkRead.message : "", /chunk store is not modelled/);
  const missing = call(lab, "read_canister_snapshot_metadata", { canister_id, snapshot_id: te.encode(`${original}-9`) });
  t.like(missing, { kind: "reject", code: 3, errorCode: "IC0305" });
});

test("item 4: an uploaded snapshot whose module is not valid, or whose globals do not fit its module, is refused at load and leaves the canister as it was", (t) => {
  const { lab, original, snapshotId } = vaultWithSnapshot("classic");
  const mgmt = managementOf(lab);
  const archive = downloadSnapshot(mgmt, original, snapshotId);
  const fork = lab.createCanister();
  const before = lab.canister(fork);

  const broken = archive.wasmModule.slice();
  broken[0] = 0xff; // no longer "\0asm"
  const badModule = uploadSnapshot(mgmt, fork, { ...archive, wasmModule: broken });
  const e1 = t.throws(() => lab.loadSnapshot(fork, td.decode(badModule)), { instanceOf: LabError });
  t.is(e1?.errorCode, "IC0408");
  t.regex(e1?.message ?? "", /has an invalid Wasm module/);

  const badGlobals = uploadSnapshot(mgmt, fork, { ...archive, metadata: { ...archive.metadata, globals: [...archive.metadata.globals, { i32: 1 }] } });
  const e2 = t.throws(() => lab.loadSnapshot(fork, td.decode(badGlobals)), { instanceOf: LabError });
  t.regex(e2?.message ?? "", /has globals \[.*\], but its module declares/);
  // Through the management canister the same refusal is a reject, not an exception.
  const viaCall = call(lab, "load_canister_snapshot", { canister_id: Principal.fromText(fork), snapshot_id: badGlobals, sender_canister_version: [] });
  t.like(viaCall, { kind: "reject", errorCode: "IC0408" });
  t.is(lab.canister(fork).execution, before.execution, "still empty");

  const sizes = call(lab, "upload_canister_snapshot_metadata", { ...uploadMetadataArgs(fork, archive.metadata), wasm_memory_size: 1000n });
  t.like(sizes, { kind: "reject", errorCode: "IC0408" });
});
