// The execution state a subnet starts from (height 0): each genesis canister created with the
// genesis controller and either installed from its module or loaded from a saved state. Every
// replica builds it on its own executor (harness/replica/execution-state-machine.ts); a replica
// that shares executions takes it from its subnet's SharedExecution instead, which builds it once.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import * as lifecycle from "../execution/lifecycle.ts";
import type { CanisterExecutor, CanisterId, CanisterState, PrincipalText } from "../execution/interfaces.ts";
import { WasmExecutor } from "../execution/executor.ts";
import { loadSavedState, type SavedCanisterState } from "../execution/saved-canister-state.ts";
import { encodeRoundMetadata, initialRoundState, type ExecutionRoundState } from "../execution/round.ts";
import { freezeShared } from "../paranoia.ts";
import { stateDigest } from "../state/state-manager.ts";
import { senderPrincipal } from "./ingress-induction.ts";
import type { ExecutionSharing } from "./shared-execution.ts";

export interface GenesisCanister {
  readonly id: CanisterId;
  readonly wasm: Uint8Array;
  readonly arg?: Uint8Array;
  /** Instead of installing `wasm`: this saved state, loaded into the created canister (and its file's content hash). */
  readonly saved?: { readonly state: SavedCanisterState; readonly contentHash: string };
}

/**
 * Genesis states by the executor that built them and the canisters' modules and arguments. Each
 * replica incarnation has its own executor (its own live instances), so a replica never adopts a
 * genesis another executor computed: a nondeterministic executor shows up as a divergence from
 * the first height. Weak keys: an executor's genesis goes with it.
 */
const genesisCache = new WeakMap<CanisterExecutor, Map<string, ExecutionRoundState>>();

/** The genesis state of a replica: its own executor's, or (when it shares executions) its subnet's. */
export function genesisStateFor(executor: CanisterExecutor, genesis: readonly GenesisCanister[], sharing: ExecutionSharing | undefined): ExecutionRoundState {
  if (sharing === undefined) return genesisState(executor, genesis);
  return sharing.genesis(genesisKey(genesis), () => genesisState(executor, genesis), (state) => stateDigest(0, { canisters: state.canisters, metadata: encodeRoundMetadata(state) }));
}

/** What a genesis state is a function of: each canister's id, module, init argument and saved state. */
function genesisKey(genesis: readonly GenesisCanister[]): string {
  return genesis.map((g) => `${g.id}:${bytesToHex(sha256(g.wasm))}:${g.arg === undefined ? "" : bytesToHex(g.arg)}:${g.saved?.contentHash ?? ""}`).join(",");
}

function genesisState(executor: CanisterExecutor, genesis: readonly GenesisCanister[]): ExecutionRoundState {
  const key = genesisKey(genesis);
  const built = genesisCache.get(executor) ?? new Map<string, ExecutionRoundState>();
  genesisCache.set(executor, built);
  const cached = built.get(key);
  if (cached !== undefined) return cached;
  const controller = senderPrincipal("genesis");
  const canisters = genesis.map((g) => {
    const created = lifecycle.createCanister({ id: g.id, controllers: [controller], cycles: 100_000_000_000_000n });
    if (g.saved !== undefined) return genesisFromSaved(executor, created, controller, g.saved.state);
    const installed = executor.installCode(created, { mode: "install", wasmModule: g.wasm, arg: g.arg ?? new Uint8Array(), sender: controller }, { instructionLimit: 300_000_000_000n, timeNs: 0n });
    assert(installed.ok, `genesis install of ${g.id} failed: ${installed.ok ? "" : installed.message}`);
    return installed.canister;
  });
  const state = freezeShared(initialRoundState(canisters));
  built.set(key, state);
  return state;
}

/**
 * A genesis canister started from a saved state: loaded through the snapshot upload and load steps
 * a builder takes (saved-canister-state.ts), identically on every replica. The scenario layer
 * checked the file (content hash, module = the scenario's wasm), so a refusal here is a harness bug.
 */
function genesisFromSaved(executor: CanisterExecutor, created: CanisterState, controller: PrincipalText, saved: SavedCanisterState): CanisterState {
  assert(executor instanceof WasmExecutor, "canisters from saved states need the Wasm executor");
  const loaded = loadSavedState(created, controller, saved, executor, 0n);
  assert(loaded.ok, `genesis load of ${created.id} from a saved state failed: ${loaded.ok ? "" : loaded.message}`);
  return loaded.canister;
}
