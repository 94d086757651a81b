// State layer: canonical canister encoding and hash, manifest, checkpoints through the Disk,
// heap delta, full-state digest. Expected values come from independent recomputation: a state
// rebuilt from scratch (fresh PageMaps from bytes, fresh objects, no memoised hashes) must hash the
// same as the incrementally maintained one; a checkpoint read back must reproduce the digest.
import test from "ava";
import fc from "fast-check";
import { assert } from "../../harness/assert.ts";
import type { CallbackId, CallContextId, CanisterState } from "../../harness/execution/interfaces.ts";
import { canisterStateHash, decodeCanisterSystemState, encodeCanisterSystemState } from "../../harness/state/canister-codec.ts";
import { listCheckpoints, loadCheckpoint } from "../../harness/state/checkpoint.ts";
import { computeManifest, diffManifests, stateFiles } from "../../harness/state/manifest.ts";
import { PAGE_SIZE_BYTES, PageMap } from "../../harness/state/page-map.ts";
import { StateManager, diffStates, heapDeltaBytes, sortCanisters, stateDigest, type SubnetState } from "../../harness/state/state-manager.ts";
import { SimDisk } from "../../harness/sim/disk.ts";
import { makeCanister, page, writePages } from "./fixtures.ts";

/** A deep copy whose memories are rebuilt from their bytes: nothing memoised is shared. */
function rebuilt(c: CanisterState): CanisterState {
  const e = c.execution;
  return decodeCanisterSystemState(encodeCanisterSystemState(c), {
    memory: (role) => {
      if (e === undefined) throw new Error("no execution");
      return PageMap.fromBytes((role === "vmemory_0" ? e.wasmMemory : e.stableMemory).toBytes());
    },
    module: () => (e === undefined ? new Uint8Array(0) : e.wasmModule.slice()),
  });
}

test("canister encoding round-trips every field (call contexts, callbacks, nat cycles, globals)", (t) => {
  const c = writePages(makeCanister(5, { withCallState: true, stablePages: 3 }), new Map([[2, page(9)]]), new Map([[1, page(4)]]));
  const back = rebuilt(c);
  t.deepEqual(encodeCanisterSystemState(back), encodeCanisterSystemState(c));
  t.is(back.cyclesBalance, c.cyclesBalance);
  t.deepEqual(back.callContexts, c.callContexts);
  t.deepEqual(back.callbacks, c.callbacks);
  t.is(canisterStateHash(back), canisterStateHash(c));
});

test("item 4: best-effort state round-trips — a callback's deadline and expiry, a call context's deadline — and a canister without it keeps its encoding", (t) => {
  const plain = makeCanister(6, { withCallState: true });
  t.regex(new TextDecoder().decode(encodeCanisterSystemState(plain).subarray(1, 22)), /^subnetlab-canister-v1/, "no best-effort state: the old encoding, the old hash");
  const [cb] = plain.callbacks;
  assert(cb !== undefined, "the fixture has a callback");
  const c: CanisterState = {
    ...plain,
    callContexts: [...plain.callContexts, { id: 9n as CallContextId, origin: { kind: "canister", caller: plain.id, callbackId: 4n as CallbackId, deadlineNs: 1_700_000_300_000_000_000n }, responded: false, availableCycles: 0n }],
    callbacks: [{ ...cb, deadlineNs: 1_700_000_010_000_000_000n }, { ...cb, id: (cb.id + 1n) as CallbackId, deadlineNs: 1_700_000_005_000_000_000n, expired: true }],
  };
  const back = rebuilt(c);
  t.deepEqual(back.callbacks, c.callbacks);
  t.deepEqual(back.callContexts, c.callContexts);
  t.is(canisterStateHash(back), canisterStateHash(c));
  t.not(canisterStateHash(c), canisterStateHash({ ...c, callbacks: [c.callbacks[0]!, { ...c.callbacks[1]!, expired: undefined as never }] }), "expiry is part of the hash");
});

test("canister hash changes with one page and with one system field, and only then", (t) => {
  const c = makeCanister(1);
  const h = canisterStateHash(c);
  t.not(canisterStateHash(writePages(c, new Map([[3, page(0, [100, 1])]]))), h);
  t.not(canisterStateHash({ ...c, cyclesBalance: c.cyclesBalance - 1n }), h);
  t.not(canisterStateHash({ ...c, status: "stopped" }), h);
  t.is(canisterStateHash({ ...c }), h); // a structurally equal copy
});

test("property: incremental canister hash after random writes = hash of the state rebuilt from bytes", (t) => {
  const write = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 5 }));
  fc.assert(
    fc.property(fc.array(fc.array(write, { maxLength: 5 }), { minLength: 1, maxLength: 6 }), (batches) => {
      let c = makeCanister(2, { wasmPages: 300, stablePages: 2 });
      for (const batch of batches) {
        const wasm = new Map<number, Uint8Array>();
        const stable = new Map<number, Uint8Array>();
        for (const [isStable, index, fill] of batch) (isStable ? stable : wasm).set(index, page(fill, [index % PAGE_SIZE_BYTES, 7]));
        c = writePages(c, wasm, stable);
        if (canisterStateHash(c) !== canisterStateHash(rebuilt(c))) return false;
      }
      return true;
    }),
    { numRuns: 60, seed: 7 },
  );
  t.pass();
});

test("manifest: memoised chunk hashes equal a fresh computation; diff names the changed file", (t) => {
  const a = makeCanister(1, { wasmPages: 700 }); // 700 pages = 2.7 MiB → 3 chunks
  const before = computeManifest(stateFiles([a], new Uint8Array([1])));
  const a2 = writePages(a, new Map([[300, page(1)]])); // inside chunk 1 only
  const incremental = computeManifest(stateFiles([a2], new Uint8Array([1])));
  const fresh = computeManifest(stateFiles([rebuilt(a2)], new Uint8Array([1])));
  t.is(incremental.rootHash, fresh.rootHash);
  t.not(incremental.rootHash, before.rootHash);
  const diff = diffManifests(before, incremental);
  t.deepEqual(diff.differentFiles, [`canister_states/${a.id}/canister.bin`, `canister_states/${a.id}/vmemory_0.bin`]);
  // chunk 1 of the memory (offset 1 MiB) and the system-state chunk changed, nothing else
  t.deepEqual(
    diff.chunksToFetch.map((c) => `${c.path}@${c.offset}`),
    [`canister_states/${a.id}/canister.bin@0`, `canister_states/${a.id}/vmemory_0.bin@1048576`],
  );
});

test("state digest: unsorted input is rejected, equal states agree, a divergent canister differs", (t) => {
  const cs = sortCanisters([makeCanister(3), makeCanister(1), makeCanister(2)]);
  const s: SubnetState = { canisters: cs, metadata: new Uint8Array([0]) };
  t.is(stateDigest(4, s), stateDigest(4, { canisters: cs.map(rebuilt), metadata: new Uint8Array([0]) }));
  t.throws(() => stateDigest(4, { canisters: [...cs].reverse(), metadata: new Uint8Array() }));
  const diverged = cs.map((c, i) => (i === 1 ? writePages(c, new Map([[0, page(1)]])) : c));
  t.not(stateDigest(4, { canisters: diverged, metadata: new Uint8Array([0]) }), stateDigest(4, s));
  t.not(stateDigest(5, s), stateDigest(4, s));
});

test("checkpoint every interval; heap delta cleared; second checkpoint writes only new pages", (t) => {
  const disk = new SimDisk();
  const sm = new StateManager(disk, { checkpointIntervalRounds: 3, keepCheckpoints: 2 });
  let canisters = sortCanisters([makeCanister(1, { wasmPages: 64 }), makeCanister(2, { wasmPages: 64 })]);
  const checkpointsAt: number[] = [];
  for (let h = 1; h <= 6; h++) {
    // round h writes page h of canister 1 with fresh content
    canisters = canisters.map((c, i) => (i === 0 ? writePages(c, new Map([[h, page(0, [0, h])]])) : c));
    const r = sm.commit(h, { canisters, metadata: new Uint8Array([h]) });
    canisters = [...r.state.canisters];
    if (r.checkpoint !== undefined) {
      checkpointsAt.push(h);
      t.is(r.heapDeltaBytes, 3 * PAGE_SIZE_BYTES); // three rounds × one page since the last checkpoint
      t.is(heapDeltaBytes(r.state.canisters), 0);
      // first checkpoint: pages 1..3; second: only pages 4..6 are new content (1..3 reused)
      t.is(r.checkpoint.stats.pagesWritten, 3);
      t.is(r.checkpoint.stats.pagesReused, h === 3 ? 0 : 3);
      t.is(r.stateDigest, stateDigest(h, { canisters: canisters.map(rebuilt), metadata: new Uint8Array([h]) }));
    }
  }
  t.deepEqual(checkpointsAt, [3, 6]);
  t.deepEqual(listCheckpoints(disk), [3, 6]);
});

test("restart: a new StateManager on the same disk loads the newest checkpoint with the same digest", (t) => {
  const disk = new SimDisk();
  const sm = new StateManager(disk, { checkpointIntervalRounds: 2, keepCheckpoints: 2 });
  let canisters = sortCanisters([makeCanister(7, { wasmPages: 40, stablePages: 8, withCallState: true })]);
  const digests = new Map<number, string>();
  const digestAt = (h: number): string | undefined => digests.get(h);
  for (let h = 1; h <= 4; h++) {
    canisters = canisters.map((c) => writePages(c, new Map([[h * 3, page(h)]]), new Map([[h, page(h + 1)]])));
    const r = sm.commit(h, { canisters, metadata: new Uint8Array([9, h]) });
    canisters = [...r.state.canisters];
    digests.set(h, r.stateDigest);
  }
  const restarted = new StateManager(disk, { checkpointIntervalRounds: 2, keepCheckpoints: 2 });
  const loaded = restarted.loadLatestCheckpoint();
  t.truthy(loaded);
  t.is(loaded?.height, 4);
  t.is(loaded?.stateDigest as string | undefined, digestAt(4));
  t.deepEqual(loaded?.rejected, []);
  // the loaded state continues like the original: one more identical round ⇒ identical digests
  const next = (cs: readonly CanisterState[]): CanisterState[] => cs.map((c) => writePages(c, new Map([[1, page(42)]])));
  t.is(restarted.commit(5, { canisters: next(loaded?.state.canisters ?? []), metadata: new Uint8Array([5]) }).stateDigest, sm.commit(5, { canisters: next(canisters), metadata: new Uint8Array([5]) }).stateDigest);
});

test("item 7: a corrupted page on disk is detected by its content hash, removed, and the previous checkpoint is used", (t) => {
  const disk = new SimDisk();
  const sm = new StateManager(disk, { checkpointIntervalRounds: 1, keepCheckpoints: 2 });
  let canisters = sortCanisters([makeCanister(1, { wasmPages: 8 })]);
  canisters = [...sm.commit(1, { canisters: canisters.map((c) => writePages(c, new Map([[0, page(1)]]))), metadata: new Uint8Array() }).state.canisters];
  const d2 = sm.commit(2, { canisters: canisters.map((c) => writePages(c, new Map([[1, page(2)]]))), metadata: new Uint8Array() });
  // flip one byte of the page only checkpoint 2 has (fill 2)
  const key = `pages/${d2.state.canisters[0]!.execution!.wasmMemory.pageHash(1)}`;
  const stored = disk.read(key)!;
  const corrupted = stored.slice();
  corrupted[0] = 0xff;
  disk.write(key, corrupted);
  const unchecked = loadCheckpoint(disk, 2, { unchecked: true });
  t.true(unchecked.ok, "the canary skip-checksum takes the rotten page");
  const direct = loadCheckpoint(disk, 2);
  t.false(direct.ok);
  t.regex(direct.ok ? "" : direct.reason, /its bytes do not match its hash/);
  t.false(disk.has(key), "the rotten page is removed, so the next checkpoint writes it again");
  const loaded = new StateManager(disk, sm.config).loadLatestCheckpoint();
  t.is(loaded?.height, 1);
  t.is(loaded?.rejected.length, 1);
  t.is(loaded?.stateDigest, sm.digestAt(1));
});

test("property: checkpoint save/load round-trips the digest for random canisters and writes", (t) => {
  const canisterWrites = fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 4 }), fc.boolean()), { maxLength: 6 });
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 4 }), fc.array(canisterWrites, { minLength: 1, maxLength: 4 }), (ids, rounds) => {
      const disk = new SimDisk();
      const sm = new StateManager(disk, { checkpointIntervalRounds: 2, keepCheckpoints: 1 });
      let canisters = sortCanisters(ids.map((n) => makeCanister(n, { wasmPages: 20 + n, stablePages: n % 3 })));
      let last: { h: number; digest: string } | undefined;
      rounds.forEach((writes, r) => {
        const h = r + 1;
        canisters = canisters.map((c, i) => {
          const mine = writes.filter((_, k) => k % canisters.length === i);
          const wasm = new Map(mine.filter((w) => !w[2]).map((w) => [w[0], page(w[1], [w[0] % 4096, h])] as const));
          const stable = new Map(mine.filter((w) => w[2]).map((w) => [w[0] % 40, page(w[1])] as const));
          return writePages(c, wasm, stable);
        });
        const res = sm.commit(h, { canisters, metadata: new Uint8Array([h]) });
        canisters = [...res.state.canisters];
        if (res.checkpoint !== undefined) last = { h, digest: res.stateDigest };
      });
      const loaded = new StateManager(disk, sm.config).loadLatestCheckpoint();
      if (last === undefined) return loaded === undefined;
      return loaded !== undefined && loaded.height === last.h && loaded.stateDigest === last.digest;
    }),
    { numRuns: 50, seed: 11 },
  );
  t.pass();
});

test("diffStates names the divergent canister and a metadata difference (cross-replica check)", (t) => {
  const cs = sortCanisters([makeCanister(1), makeCanister(2), makeCanister(3)]);
  const honest: SubnetState = { canisters: cs, metadata: new Uint8Array([1]) };
  t.deepEqual(diffStates(honest, { canisters: cs.map(rebuilt), metadata: new Uint8Array([1]) }), { canisters: [], metadata: false });
  const corrupted = cs.map((c, i) => (i === 2 ? writePages(c, new Map([[4, page(0, [9, 9])]])) : c));
  t.deepEqual(diffStates(honest, { canisters: corrupted, metadata: new Uint8Array([2]) }), { canisters: [cs[2]!.id], metadata: true });
  t.deepEqual(diffStates(honest, { canisters: cs.slice(0, 2), metadata: new Uint8Array([1]) }).canisters, [cs[2]!.id]);
});
