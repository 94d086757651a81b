// The real replicated state machine behind MessageRouting (issue 4, step 1): each finalized batch
// is inducted into canister input queues and executed by one execution round (credit scheduler,
// DTS, instruction limits) on Wasm canisters; the state manager commits the subnet state, hashes
// it and checkpoints it at summary heights. Ingress replies and rejects go to the ingress history.
// Not yet here (issue 4): subnet-to-subnet streams, certification, ingress envelopes.
import { Principal } from "@dfinity/principal";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assert } from "../assert.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import * as lifecycle from "../execution/lifecycle.ts";
import { canisterId, type CanisterExecutor, type CanisterId, type CanisterState, type PrincipalText } from "../execution/interfaces.ts";
import { WasmExecutor } from "../execution/executor.ts";
import { APP_SUBNET_ROUND_CONFIG, decodeRoundMetadata, encodeRoundMetadata, executeAndCommit, initialRoundState, type ExecutionRoundState, type InductedMessage, type RoundConfig } from "../execution/round.ts";
import { StateManager, stateDigest, type SubnetState } from "../state/state-manager.ts";
import type { Disk } from "../sim/env.ts";
import { height, type HashHex, type Height } from "../types.ts";
import { IngressHistory, type IngressHistoryData } from "./ingress-history.ts";
import type { Batch, IngressStatus, MessageRouting, StateSnapshot } from "./interfaces.ts";

export interface GenesisCanister {
  readonly id: CanisterId;
  readonly wasm: Uint8Array;
  readonly arg?: Uint8Array;
}

export interface ExecutionMachineOptions {
  readonly genesis: readonly GenesisCanister[];
  /** Checkpoint every this many heights (consensus summary heights: dkgIntervalLength + 1). */
  readonly checkpointInterval: number;
  readonly executor?: CanisterExecutor;
  /**
   * Fault injection (divergent replica): when it returns true for a batch, the replica's state
   * after that batch is perturbed — one byte of the first canister's heap changed — as a
   * nondeterministic or buggy execution would. Called with the batch height and time.
   */
  readonly corrupt?: (h: number, timeNs: bigint) => boolean;
}

interface ExecutionSnapshotData {
  readonly subnet: SubnetState;
  readonly history: IngressHistoryData;
}

const STATE_HASH_KEEP = 512;
/** Every replica builds the same genesis; build it once per process and share it (immutable). */
const genesisCache = new Map<string, ExecutionRoundState>();
let sharedExecutor: WasmExecutor | undefined;

export class ExecutionStateMachine implements MessageRouting {
  private state: ExecutionRoundState;
  private history = new IngressHistory();
  private nextHeight: Height = height(1);
  private readonly stateHashes = new Map<Height, HashHex>();
  private stateManager: StateManager;
  private readonly executor: CanisterExecutor;
  private readonly roundConfig: RoundConfig;

  constructor(private readonly disk: Disk, private readonly options: ExecutionMachineOptions) {
    this.executor = options.executor ?? (sharedExecutor ??= new WasmExecutor());
    this.roundConfig = { ...APP_SUBNET_ROUND_CONFIG, checkpointIntervalRounds: options.checkpointInterval };
    this.stateManager = this.newStateManager();
    this.state = genesisState(this.executor, options.genesis);
    const restored = this.stateManager.loadLatestCheckpoint();
    if (restored !== undefined) {
      const history = disk.read<IngressHistoryData>(historyKey(restored.height));
      this.adopt(restored.height, restored.state, history ?? []);
    }
  }

  expectedBatchHeight(): Height {
    return this.nextHeight;
  }

  deliverBatch(batch: Batch): void {
    assert(batch.height === this.nextHeight, `batch ${batch.height} delivered, expected ${this.nextHeight}`);
    this.history.prune(batch.timeNs);
    const messages: InductedMessage[] = [];
    for (const message of batch.ingress) {
      if (this.history.has(message.id)) continue; // induction drops duplicates, as the IC's does
      const inducted = this.induct(message, batch);
      if (inducted !== undefined) messages.push(inducted);
    }
    const { state, output } = executeAndCommit(this.executor, this.roundConfig, this.stateManager, this.state, { round: batch.height, timeNs: batch.timeNs, messages });
    this.state = this.options.corrupt?.(batch.height, batch.timeNs) === true ? perturbHeap(state) : state;
    for (const r of output.ingressResponses) {
      if (r.origin.kind !== "ingress") continue;
      const status: IngressStatus = r.response.kind === "reply"
        ? { status: "completed", height: batch.height, reply: bytesToHex(r.response.data) }
        : { status: "failed", height: batch.height, error: `reject ${r.response.code}: ${r.response.message}` };
      this.history.set(r.origin.messageId as HashHex, status, batch.timeNs);
    }
    const digest = this.stateManager.digestAt(batch.height);
    assert(digest !== undefined, `state manager has no digest for height ${batch.height}`);
    const hash = combinedHash(batch.height, digest, this.history);
    this.stateHashes.set(batch.height, hash);
    this.stateHashes.delete((batch.height - STATE_HASH_KEEP) as Height);
    this.stateManager.pruneDigestsBelow(batch.height - STATE_HASH_KEEP);
    if (this.stateManager.isCheckpointHeight(batch.height)) {
      this.disk.write(historyKey(batch.height), this.history.toData(), this.history.size * 96);
      this.disk.write(snapshotKey(batch.height), { height: batch.height, stateHash: hash, sizeBytes: 0, data: { subnet: this.subnetState(), history: this.history.toData() } } satisfies StateSnapshot, 0);
      for (const prefix of ["exec-snapshot/", "exec-history/"]) for (const key of this.disk.keys(prefix).slice(0, -3)) this.disk.remove(key);
    }
    this.nextHeight = height(batch.height + 1);
  }

  stateHashAt(h: Height): HashHex | undefined {
    return this.stateHashes.get(h);
  }

  checkpointAt(h: Height): StateSnapshot | undefined {
    return this.disk.read<StateSnapshot>(snapshotKey(h));
  }

  verifySnapshot(snapshot: StateSnapshot): boolean {
    const data = snapshot.data as ExecutionSnapshotData;
    return combinedHash(snapshot.height, stateDigest(snapshot.height, data.subnet), IngressHistory.fromData(data.history)) === snapshot.stateHash;
  }

  installSnapshot(snapshot: StateSnapshot): void {
    assert(this.verifySnapshot(snapshot), `snapshot at ${snapshot.height} does not match its hash`);
    const data = snapshot.data as ExecutionSnapshotData;
    this.stateManager = this.newStateManager();
    this.adopt(snapshot.height, data.subnet, data.history);
    this.stateHashes.clear();
    this.stateHashes.set(snapshot.height, snapshot.stateHash);
    this.disk.write(snapshotKey(snapshot.height), snapshot, 0);
  }

  ingressStatus(id: HashHex): IngressStatus | undefined {
    return this.history.status(id);
  }

  /** The ingress history as sorted (id, status) rows, for state diffs. */
  inspectHistory(): [string, string][] {
    return this.history.describe();
  }

  /** Canisters as they are now (tests, dumps). */
  get canisters(): readonly CanisterState[] {
    return this.state.canisters;
  }

  // ---- internals ---------------------------------------------------------------------------------

  private newStateManager(): StateManager {
    return new StateManager(this.disk, { checkpointIntervalRounds: this.options.checkpointInterval, keepCheckpoints: 2 });
  }

  private adopt(h: number, subnet: SubnetState, history: IngressHistoryData): void {
    this.state = decodeRoundMetadata(subnet.metadata, subnet.canisters);
    this.history = IngressHistory.fromData(history);
    this.nextHeight = height(h + 1);
  }

  private subnetState(): SubnetState {
    return { canisters: this.state.canisters, metadata: encodeRoundMetadata(this.state) };
  }

  /** An ingress message becomes a canister message, or fails at induction with a reject. */
  private induct(message: IngressMessage, batch: Batch): InductedMessage | undefined {
    const fail = (error: string): undefined => {
      this.history.set(message.id, { status: "failed", height: batch.height, error }, batch.timeNs);
      return undefined;
    };
    if (message.call === undefined) return fail("reject 3: the message names no canister");
    let target: CanisterId;
    try {
      target = canisterId(message.call.canister);
    } catch {
      return fail(`reject 3: ${message.call.canister} is not a canister id`);
    }
    if (!this.state.canisters.some((c) => c.id === target)) return fail(`reject 3: canister ${target} not found`);
    this.history.set(message.id, { status: "processing", height: batch.height }, batch.timeNs);
    return {
      canister: target,
      message: { kind: "ingress", messageId: message.id, caller: senderPrincipal(message.sender), method: message.call.method, arg: hexToBytes(message.call.argHex) },
    };
  }
}

/** A user name's principal: self-authenticating over a key derived from the name (simulation). */
export function senderPrincipal(sender: string): PrincipalText {
  return Principal.selfAuthenticating(sha256(utf8ToBytes(`subnetlab-user|${sender}`))).toText() as PrincipalText;
}

function genesisState(executor: CanisterExecutor, genesis: readonly GenesisCanister[]): ExecutionRoundState {
  const key = genesis.map((g) => `${g.id}:${bytesToHex(sha256(g.wasm))}:${g.arg === undefined ? "" : bytesToHex(g.arg)}`).join(",");
  const cached = genesisCache.get(key);
  if (cached !== undefined) return cached;
  const controller = senderPrincipal("genesis");
  const canisters = genesis.map((g) => {
    const created = lifecycle.createCanister({ id: g.id, controllers: [controller], cycles: 100_000_000_000_000n });
    const installed = executor.installCode(created, { mode: "install", wasmModule: g.wasm, arg: g.arg ?? new Uint8Array(), sender: controller }, { instructionLimit: 300_000_000_000n, timeNs: 0n });
    assert(installed.ok, `genesis install of ${g.id} failed: ${installed.ok ? "" : installed.message}`);
    return installed.canister;
  });
  const state = initialRoundState(canisters);
  genesisCache.set(key, state);
  return state;
}

/** Bumps the first byte of the first canister's highest non-zero heap page (a corrupted execution). */
function perturbHeap(state: ExecutionRoundState): ExecutionRoundState {
  const target = state.canisters.find((c) => c.execution !== undefined);
  const exec = target?.execution;
  if (target === undefined || exec === undefined) return state;
  const pages = exec.wasmMemory.nonZeroPageIndices();
  const index = pages[pages.length - 1] ?? 0;
  const page = exec.wasmMemory.readPage(index).slice();
  // Add rather than flip: flipping twice would restore the page on the next perturbed batch.
  page[0] = ((page[0] ?? 0) + 1) & 0xff;
  const corrupted: CanisterState = { ...target, execution: { ...exec, wasmMemory: exec.wasmMemory.withPages(new Map([[index, page]])) } };
  return { ...state, canisters: state.canisters.map((c) => (c === target ? corrupted : c)) };
}

function combinedHash(h: number, subnetDigest: HashHex, history: IngressHistory): HashHex {
  return bytesToHex(sha256(utf8ToBytes(`exec-state|${h}|${subnetDigest}|${history.digestHex()}|${history.size}`))) as HashHex;
}

const snapshotKey = (h: number): string => `exec-snapshot/${String(h).padStart(10, "0")}`;
const historyKey = (h: number): string => `exec-history/${String(h).padStart(10, "0")}`;
