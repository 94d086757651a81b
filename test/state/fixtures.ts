// Builders of plain CanisterState values for state-layer tests (no Wasm needed).
import {
  canisterIdFromU64,
  principalText,
  type CallbackId,
  type CallContextId,
  type CanisterId,
  type CanisterState,
} from "../../harness/execution/interfaces.ts";
import { sha256HexOf } from "../../harness/state/encoding.ts";
import { PAGE_SIZE_BYTES, PageMap } from "../../harness/state/page-map.ts";
import type { HashHex } from "../../harness/types.ts";

export const page = (fill: number, poke?: readonly [number, number]): Uint8Array => {
  const p = new Uint8Array(PAGE_SIZE_BYTES).fill(fill);
  if (poke !== undefined) p[poke[0]] = poke[1];
  return p;
};

export function makeCanister(n: number, opts: { wasmPages?: number; stablePages?: number; withCallState?: boolean } = {}): CanisterState {
  const module = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, n & 0xff]);
  const id: CanisterId = canisterIdFromU64(BigInt(n));
  const withCalls = opts.withCallState ?? false;
  return {
    id,
    controllers: [principalText("2vxsx-fae")],
    status: "running",
    cyclesBalance: 10n ** 30n + BigInt(n), // larger than u64: exercises the nat encoding
    computeAllocationPercent: n % 101,
    certifiedData: new Uint8Array([n & 0xff, 1, 2]),
    globalTimerNs: 0n,
    version: 1n,
    execution: {
      moduleHash: sha256HexOf(module) as HashHex,
      wasmModule: module,
      wasmMemory: PageMap.fromBytes(new Uint8Array((opts.wasmPages ?? 16) * PAGE_SIZE_BYTES)),
      wasmMemoryPages: Math.ceil(((opts.wasmPages ?? 16) * PAGE_SIZE_BYTES) / 65536),
      stableMemory: PageMap.fromBytes(new Uint8Array((opts.stablePages ?? 0) * PAGE_SIZE_BYTES)),
      stableMemoryPages: BigInt(Math.ceil(((opts.stablePages ?? 0) * PAGE_SIZE_BYTES) / 65536)),
      globals: [
        { type: "i32", bits: 7n },
        { type: "f64", bits: 0x7ff8000000000000n },
      ],
      exports: ["canister_query get", "canister_update inc"],
    },
    callContexts: withCalls
      ? [
          { id: 0n as CallContextId, origin: { kind: "ingress", messageId: "m1", caller: principalText("2vxsx-fae") }, responded: false, availableCycles: 5n },
          { id: 1n as CallContextId, origin: { kind: "canister", caller: canisterIdFromU64(99n), callbackId: 4n as CallbackId }, responded: true, availableCycles: 0n },
          { id: 2n as CallContextId, origin: { kind: "system", task: "global-timer" }, responded: false, availableCycles: 0n },
        ]
      : [],
    callbacks: withCalls
      ? [
          {
            id: 3n as CallbackId,
            callContextId: 0n as CallContextId,
            callee: canisterIdFromU64(98n),
            onReply: { fun: 1, env: 2n },
            onReject: { fun: 3, env: 4n },
            onCleanup: undefined,
            cyclesSent: 100n,
          },
        ]
      : [],
    nextCallContextId: withCalls ? 3n : 0n,
    nextCallbackId: withCalls ? 4n : 0n,
    snapshots: [],
  };
}

/** The canister with pages written into its main memory (and optionally stable memory). */
export function writePages(c: CanisterState, wasm: ReadonlyMap<number, Uint8Array>, stable: ReadonlyMap<number, Uint8Array> = new Map()): CanisterState {
  const e = c.execution;
  if (e === undefined) throw new Error("canister has no module");
  return {
    ...c,
    version: c.version + 1n,
    execution: { ...e, wasmMemory: e.wasmMemory.withPages(wasm), stableMemory: e.stableMemory.withPages(stable) },
  };
}
