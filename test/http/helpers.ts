// Shared pieces of the HTTP interface tests: a simulated 4-replica subnet an official agent talks to
// through the in-process gateway, the management canister's Candid as a client writes it, and
// response rewriters that tamper with what a replica signed.
import { decode, encodeWithSelfDescribedTag, type CborValue } from "@dfinity/cbor";
import { readFileSync } from "node:fs";
import { SimHttpGateway, type SimGatewayOptions } from "../../harness/http/sim-gateway.ts";
import { AGENT_CLOCK_LEAD_MS, simulatedAgentSubnet, type AgentSubnet } from "../../harness/http/sim-subnet.ts";
import type { HttpResponse } from "../../harness/http/interfaces.ts";
import { replicaId, timeUs } from "../../harness/types.ts";

export const fixture = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../fixtures/canisters/${path}`, import.meta.url)));

/**
 * A started 4-replica BLS execution subnet whose virtual clock starts AGENT_CLOCK_LEAD_MS ahead of
 * the wall clock (sim-subnet.ts explains why), run until every replica holds a certification.
 */
export function startedSubnet(seed: number): AgentSubnet {
  const startTimeUs = (Date.now() + AGENT_CLOCK_LEAD_MS) * 1000;
  const subnet = simulatedAgentSubnet({ seed, startTimeUs });
  subnet.subnet.start();
  const certified = (): boolean => Array.from({ length: subnet.subnet.n }, (_, i) => subnet.subnet.replica(replicaId(i))?.status().certifiedHeight).every((h) => h !== undefined);
  subnet.subnet.run(timeUs(startTimeUs + 30_000_000), certified);
  if (!certified()) throw new Error("the subnet certified nothing in 30 s of virtual time");
  return subnet;
}

export function gatewayFor(subnet: AgentSubnet, options: SimGatewayOptions = {}): SimHttpGateway {
  return new SimHttpGateway(subnet, options);
}

/** The parts of the IDL interface both agent lines' `IDL` objects have (they are separate copies). */
interface Idl {
  Principal: unknown;
  Nat: unknown;
  Nat8: unknown;
  Nat64: unknown;
  Bool: unknown;
  Null: unknown;
  Record(fields: Record<string, unknown>): unknown;
  Variant(fields: Record<string, unknown>): unknown;
  Opt(t: unknown): unknown;
  Vec(t: unknown): unknown;
  Func(args: unknown[], ret: unknown[], annotations: string[]): unknown;
  Service(methods: Record<string, unknown>): unknown;
}

/**
 * The management canister as a client declares it: a subset of the interface spec's ic.did,
 * written independently of harness/execution/management.ts. Its records leave out optional fields
 * the replica's newer interface has (sender_canister_version, specified_id, reserved_cycles_limit,
 * log_visibility, wasm_memory_limit, …): Candid decodes the missing opt fields as null, so an
 * older client works, which is what this checks.
 */
export const managementIdl = ({ IDL }: { IDL: Idl }) => {
  const canisterId = IDL.Principal;
  const settings = IDL.Record({
    controllers: IDL.Opt(IDL.Vec(IDL.Principal)),
    compute_allocation: IDL.Opt(IDL.Nat),
    memory_allocation: IDL.Opt(IDL.Nat),
    freezing_threshold: IDL.Opt(IDL.Nat),
  });
  const definiteSettings = IDL.Record({ controllers: IDL.Vec(IDL.Principal), compute_allocation: IDL.Nat, memory_allocation: IDL.Nat, freezing_threshold: IDL.Nat });
  const canisterOnly = IDL.Record({ canister_id: canisterId });
  return IDL.Service({
    provisional_create_canister_with_cycles: IDL.Func([IDL.Record({ amount: IDL.Opt(IDL.Nat), settings: IDL.Opt(settings) })], [IDL.Record({ canister_id: canisterId })], []),
    create_canister: IDL.Func([IDL.Record({ settings: IDL.Opt(settings) })], [IDL.Record({ canister_id: canisterId })], []),
    install_code: IDL.Func(
      [IDL.Record({ mode: IDL.Variant({ install: IDL.Null, reinstall: IDL.Null, upgrade: IDL.Opt(IDL.Record({ skip_pre_upgrade: IDL.Opt(IDL.Bool) })) }), canister_id: canisterId, wasm_module: IDL.Vec(IDL.Nat8), arg: IDL.Vec(IDL.Nat8) })],
      [],
      [],
    ),
    update_settings: IDL.Func([IDL.Record({ canister_id: canisterId, settings })], [], []),
    canister_status: IDL.Func(
      [canisterOnly],
      [IDL.Record({ status: IDL.Variant({ running: IDL.Null, stopping: IDL.Null, stopped: IDL.Null }), settings: definiteSettings, module_hash: IDL.Opt(IDL.Vec(IDL.Nat8)), memory_size: IDL.Nat, cycles: IDL.Nat, idle_cycles_burned_per_day: IDL.Nat })],
      [],
    ),
    fetch_canister_logs: IDL.Func([canisterOnly], [IDL.Record({ canister_log_records: IDL.Vec(IDL.Record({ idx: IDL.Nat64, timestamp_nanos: IDL.Nat64, content: IDL.Vec(IDL.Nat8) })) })], ["query"]),
  });
};

/** The counter fixture's interface (fixtures/canisters/motoko/counter.did). */
export const counterIdl = ({ IDL }: { IDL: Idl }) => IDL.Service({ inc: IDL.Func([], [IDL.Nat], []), get: IDL.Func([], [IDL.Nat], ["query"]), incThenTrap: IDL.Func([], [], []) });

interface PrincipalLike {
  toText(): string;
}
export interface ManagementActor {
  provisional_create_canister_with_cycles(arg: { amount: [] | [bigint]; settings: [] }): Promise<{ canister_id: PrincipalLike }>;
  create_canister(arg: { settings: [] }): Promise<{ canister_id: PrincipalLike }>;
  install_code(arg: { mode: { install: null }; canister_id: PrincipalLike; wasm_module: Uint8Array; arg: Uint8Array }): Promise<void>;
  update_settings(arg: { canister_id: PrincipalLike; settings: { controllers: [PrincipalLike[]]; compute_allocation: []; memory_allocation: []; freezing_threshold: [] } }): Promise<void>;
  canister_status(arg: { canister_id: PrincipalLike }): Promise<{ status: Record<string, null>; settings: { controllers: PrincipalLike[] }; module_hash: [] | [Uint8Array]; cycles: bigint }>;
  fetch_canister_logs(arg: { canister_id: PrincipalLike }): Promise<{ canister_log_records: { idx: bigint; timestamp_nanos: bigint; content: Uint8Array }[] }>;
}
export interface CounterActor {
  inc(): Promise<bigint>;
  get(): Promise<bigint>;
  incThenTrap(): Promise<void>;
}

/**
 * What ic-management does: calls about a canister go to the URL of that canister (the effective
 * canister id is the argument's canister_id); provisional_create_canister_with_cycles names none
 * and goes to aaaaa-aa's.
 */
export const effectiveCanisterOf = (_method: string, args: unknown[]): { effectiveCanisterId: string } => {
  const first = args[0] as { canister_id?: PrincipalLike } | undefined;
  return { effectiveCanisterId: first?.canister_id?.toText() ?? "aaaaa-aa" };
};

/** Flips bit `bit` of a copy of `bytes`. */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return out;
}

/** A 200 CBOR response with its decoded body rewritten (the body keeps its tag 55799). */
export function rewriteCborBody(response: HttpResponse, rewrite: (body: Record<string, CborValue>) => Record<string, CborValue>): HttpResponse {
  if (response.status !== 200) return response;
  const body = decode(new Uint8Array(response.body)) as Record<string, CborValue>;
  return { ...response, body: encodeWithSelfDescribedTag(rewrite(body)) };
}

/**
 * A certificate with one bit of its BLS signature flipped. (No single-bit flip of a BLS12-381 G1
 * signature is another point of the prime-order subgroup, so the agent refuses it while decoding
 * the point; `withSignature` covers a well-formed signature that does not verify.)
 */
export function withFlippedSignature(certificate: Uint8Array): Uint8Array {
  const cert = decode(new Uint8Array(certificate)) as Record<string, CborValue>;
  return encodeWithSelfDescribedTag({ ...cert, signature: flipBit(cert.signature as Uint8Array, 21) });
}

/** A certificate with another signature in place of its own. */
export function withSignature(certificate: Uint8Array, signature: Uint8Array): Uint8Array {
  const cert = decode(new Uint8Array(certificate)) as Record<string, CborValue>;
  return encodeWithSelfDescribedTag({ ...cert, signature });
}

/** The BLS signature of certificate bytes. */
export const signatureOf = (certificate: Uint8Array): Uint8Array => (decode(new Uint8Array(certificate)) as { signature: Uint8Array }).signature;

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
