// Builds small multi-subnet ICs for the routing tests: each subnet runs the execution state machine
// with the registry of the whole IC, and users submit signed ingress to a chosen subnet.
import { IDL } from "@dfinity/candid";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { readFileSync } from "node:fs";
import { DEFAULT_CONSENSUS_CONFIG } from "../../harness/consensus/config.ts";
import { ingressId, type IngressCall, type IngressMessage } from "../../harness/consensus/ingress.ts";
import { ExecutionStateMachine, type GenesisCanister } from "../../harness/replica/execution-state-machine.ts";
import { SimIC } from "../../harness/replica/ic.ts";
import type { WireMode } from "../../harness/p2p/wire-mode.ts";
import type { IngressStatus } from "../../harness/replica/interfaces.ts";
import { Registry } from "../../harness/routing/registry.ts";
import { defaultNetworkConfig } from "../../harness/sim/network.ts";
import { Rng } from "../../harness/sim/rng.ts";
import { Trace } from "../../harness/sim/trace.ts";
import { replicaId, timeUs, type HashHex } from "../../harness/types.ts";

export const fixture = (path: string): Uint8Array => readFileSync(new URL(`../../fixtures/canisters/${path}`, import.meta.url));

export interface SubnetSpec {
  readonly name: string;
  readonly n: number;
  readonly wasm: readonly Uint8Array[];
}

export function buildIC(seed: number, specs: readonly SubnetSpec[], trace = new Trace(), crypto?: "sim" | "bls", wire?: WireMode): SimIC {
  const registry = Registry.of(specs.map((s) => ({ name: s.name, size: s.n })));
  const consensus = { ...DEFAULT_CONSENSUS_CONFIG, dkgIntervalLength: 19 };
  const icRef: { current?: SimIC } = {};
  const ic = new SimIC({
    rng: Rng.fromSeed(seed),
    trace,
    ...(wire === undefined ? {} : { wire }),
    subnets: specs.map((s) => {
      const record = registry.byName(s.name)!;
      const genesis: GenesisCanister[] = s.wasm.map((wasm, k) => ({ id: registry.canisterId(record, k), wasm }));
      return {
        name: s.name,
        n: s.n,
        consensus,
        network: defaultNetworkConfig(s.n),
        observer: { onBatchDelivered: () => {}, onStateSynced: () => {} },
        ...(crypto === undefined ? {} : { crypto }),
        makeStateMachine: (_id, disk) => new ExecutionStateMachine(disk, { genesis, checkpointInterval: consensus.dkgIntervalLength + 1, subnet: { id: record.id, registry, publicKeyDerOf: (id) => icRef.current?.publicKeyDerOf(id) } }),
      };
    }),
  });
  icRef.current = ic;
  return ic;
}

let nonce = 0;
/** Submits a call as `user` to replica 0 (or the next live one) of a subnet; returns the message id. */
export function submitCall(ic: SimIC, subnet: string, canister: string, method: string, argTypes: IDL.Type[], args: unknown[], user = "alice"): HashHex {
  const s = ic.subnet(subnet);
  const call: IngressCall = { canister, method, argHex: bytesToHex(new Uint8Array(IDL.encode(argTypes, args))) };
  const expiryUs = timeUs(ic.loop.now() + 240_000_000);
  const body = `call ${method}`;
  const n = nonce++;
  const id = ingressId(user, n, body, 256, expiryUs, call);
  const message: IngressMessage = { id, sender: user, nonce: n, body, sizeBytes: 256, expiryUs, signature: s.ingressAuth.sign(user, id), call };
  for (let i = 0; i < s.n; i++) if (s.submitIngress(replicaId(i), message).accepted) return id;
  throw new Error(`no replica of ${subnet} took the message`);
}

/** The message's status on every live replica of the subnet. */
export function statuses(ic: SimIC, subnet: string, id: HashHex): (IngressStatus | undefined)[] {
  const s = ic.subnet(subnet);
  return Array.from({ length: s.n }, (_, i) => s.replica(replicaId(i))?.stateMachine.ingressStatus(id));
}

export function decodeReply(status: IngressStatus | undefined, types: IDL.Type[]): unknown[] | string {
  if (status === undefined) return "unknown";
  if (status.status !== "completed") return status.status === "failed" ? `reject ${status.code}: ${status.message}` : status.status;
  return IDL.decode(types, hexToBytes(status.reply));
}
