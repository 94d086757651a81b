// `subnetlab deploy <wasm>` (issue 12 item 7): deploys a Wasm module to a running `subnetlab up`
// cluster with the official agent (@icp-sdk/core) alone — provisional_create_canister_with_cycles
// when no canister id is given, then install_code — and prints one JSON line {canisterId,
// moduleHash}, the module hash read back from the canister's certified state.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { decode } from "@dfinity/cbor";
import { encodeWithSelfDescribedTag } from "@dfinity/cbor";
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import * as agent from "@icp-sdk/core/agent";
import { Ed25519KeyIdentity } from "@icp-sdk/core/identity";
import { decodeCanisterRanges, decodeCertificate, subnetIdOfRootKey } from "../crypto/certificate.ts";
import { lookupPath } from "../crypto/hash-tree.ts";
import { EXIT } from "../report/exit-codes.ts";
import { CandidTextError, encodeCandidText } from "./candid-text.ts";
import type { ClusterInfo } from "./cluster.ts";

export const DEPLOY_HELP = `subnetlab deploy — install a Wasm module on a running \`subnetlab up\` cluster

Usage:
  subnetlab deploy <wasm> [--dir DIR [--subnet NAME] | --url URL] [--canister-id ID]
                   [--mode install|reinstall|upgrade] [--arg HEX | --arg-candid TEXT]
                   [--identity-seed TEXT] [--cycles N]

Creates a canister with cycles (provisional_create_canister_with_cycles) unless --canister-id
names one, installs the module (install_code; gzip-compressed modules are accepted, as on the
IC) with the official agent @icp-sdk/core, which verifies every certificate, and prints one JSON
line: {"canisterId": "...", "moduleHash": "<hex SHA-256 of the module as uploaded>"}.

Options:
  <wasm>              The module: a .wasm file, or one compressed with gzip.
  --dir DIR           The cluster's run directory (default reports/up): its cluster.json names
                      the replicas' URLs and each subnet's canister ranges.
  --subnet NAME       With --dir: the subnet to deploy to (default: the first, s0).
  --url URL           A replica's HTTP endpoint instead of --dir (any replica of the subnet to
                      deploy to; its subnet and ranges are asked from it).
  --canister-id ID    Install into this canister (must exist; the identity must control it).
  --mode MODE         install (default), reinstall or upgrade; reinstall and upgrade need
                      --canister-id.
  --arg HEX           The init (or post_upgrade) argument as hex bytes of Candid (default: the
                      empty argument list, 4449444c0000).
  --arg-candid TEXT   The argument as Candid text, e.g. '("alice", 1_000_000 : nat)'
                      (types from the values: numbers are nat, or int when negative, unless
                      annotated; text, bool, null, principal "…", blob "…", opt, vec, record).
  --identity-seed T   The controller's Ed25519 key is derived from T (default
                      "subnetlab-deploy": the same identity every time, so a later upgrade works).
  --cycles N          Cycles for a new canister (default 10^13).
  -h, --help          This text.

Exit codes:
  0   deployed
  1   the IC refused: create or install_code was rejected (e.g. the module traps in its init,
      the identity does not control the canister)
  2   usage error, in one line: a missing or unreadable file, not a Wasm module, a bad option,
      no cluster.json, the cluster not reachable
`;

/** A problem the user can fix (exit 2). */
export class DeployUsageError extends Error {}
/** The IC refused a step (exit 1). */
export class DeployRefused extends Error {}

export type InstallMode = "install" | "reinstall" | "upgrade";

export interface DeployOptions {
  readonly wasm: Uint8Array;
  /** A replica's HTTP endpoint. */
  readonly url: string;
  /** An effective canister id in the target subnet's range (for creating a canister); discovered from `url` when absent. */
  readonly effectiveCanisterId?: string;
  readonly canisterId?: string;
  readonly mode: InstallMode;
  readonly arg: Uint8Array;
  readonly identitySeed: string;
  readonly cycles: bigint;
}

export interface Deployed {
  readonly canisterId: string;
  readonly moduleHash: string;
}

const EMPTY_ARGS = new Uint8Array(IDL.encode([], []));
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d] as const;
const DEFAULT_IDENTITY_SEED = "subnetlab-deploy";

/** The management canister's methods deploy uses (interface spec ic.did). */
const managementIdl = ({ IDL: I }: { IDL: typeof IDL }) => {
  const settings = I.Record({ controllers: I.Opt(I.Vec(I.Principal)) });
  return I.Service({
    provisional_create_canister_with_cycles: I.Func([I.Record({ amount: I.Opt(I.Nat), settings: I.Opt(settings) })], [I.Record({ canister_id: I.Principal })], []),
    install_code: I.Func(
      [I.Record({ mode: I.Variant({ install: I.Null, reinstall: I.Null, upgrade: I.Opt(I.Record({ skip_pre_upgrade: I.Opt(I.Bool) })) }), canister_id: I.Principal, wasm_module: I.Vec(I.Nat8), arg: I.Vec(I.Nat8) })],
      [],
      [],
    ),
  });
};
interface Management {
  provisional_create_canister_with_cycles(arg: { amount: [bigint]; settings: [] }): Promise<{ canister_id: Principal }>;
  install_code(arg: { mode: Record<string, unknown>; canister_id: Principal; wasm_module: Uint8Array; arg: Uint8Array }): Promise<void>;
}

/** Reads and checks the module file: it must exist and be Wasm, or gzip of Wasm. */
export function readWasm(path: string): Uint8Array {
  if (!existsSync(path)) throw new DeployUsageError(`wasm file ${path} not found`);
  if (!statSync(path).isFile()) throw new DeployUsageError(`${path} is not a file`);
  const bytes = new Uint8Array(readFileSync(path));
  const isWasm = (b: Uint8Array): boolean => WASM_MAGIC.every((x, i) => b[i] === x);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let inner: Uint8Array;
    try {
      inner = new Uint8Array(gunzipSync(bytes));
    } catch (e) {
      throw new DeployUsageError(`${path} looks gzip-compressed but does not decompress: ${(e as Error).message}`);
    }
    if (!isWasm(inner)) throw new DeployUsageError(`${path} is gzip-compressed but not a Wasm module inside (no \\0asm magic)`);
    return bytes;
  }
  if (!isWasm(bytes)) throw new DeployUsageError(`${path} is not a Wasm module (it does not start with \\0asm, nor is it gzip-compressed)`);
  return bytes;
}

/** Deploys with the official agent; throws DeployUsageError (unreachable) or DeployRefused (the IC said no). */
export async function deploy(options: DeployOptions): Promise<Deployed> {
  const identity = Ed25519KeyIdentity.generate(sha256(utf8ToBytes(`subnetlab deploy identity|${options.identitySeed}`)));
  await checkReachable(options.url);
  let icAgent: agent.HttpAgent;
  try {
    icAgent = await agent.HttpAgent.create({ host: options.url, identity, shouldFetchRootKey: true });
  } catch (e) {
    throw new DeployUsageError(`the cluster is not reachable at ${options.url}: ${firstLine(e)} (is \`subnetlab up\` running?)`);
  }
  const managementAt = (ecid: string): Management => {
    const to = (): { effectiveCanisterId: Principal } => ({ effectiveCanisterId: Principal.fromText(ecid) });
    return agent.Actor.createActor(managementIdl as never, { agent: icAgent, canisterId: "aaaaa-aa", callTransform: to, queryTransform: to } as never) as unknown as Management;
  };
  let canisterId = options.canisterId;
  if (canisterId === undefined) {
    const ecid = options.effectiveCanisterId ?? (await effectiveCanisterIdAt(options.url));
    const created = await refusedAs("provisional_create_canister_with_cycles", () => managementAt(ecid).provisional_create_canister_with_cycles({ amount: [options.cycles], settings: [] }));
    canisterId = created.canister_id.toText();
  }
  const id = canisterId;
  await refusedAs("install_code", () =>
    managementAt(id).install_code({ mode: { [options.mode]: options.mode === "upgrade" ? [] : null }, canister_id: Principal.fromText(id), wasm_module: options.wasm, arg: options.arg }),
  );
  const status = await agent.CanisterStatus.request({ canisterId: Principal.fromText(id) as never, agent: icAgent, paths: ["module_hash"] });
  const moduleHash = status.get("module_hash");
  if (typeof moduleHash !== "string") throw new DeployRefused(`the canister ${id} reports no module hash after install_code`);
  const expected = bytesToHex(sha256(options.wasm));
  if (moduleHash !== expected) throw new DeployRefused(`the canister ${id} runs module ${moduleHash}, not the uploaded ${expected}`);
  return { canisterId: id, moduleHash };
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";

/** A plain status request first, so an unreachable cluster is one clear line (the agent would retry and print its stack). */
async function checkReachable(url: string): Promise<void> {
  let status: number;
  try {
    status = (await fetch(`${url.replace(/\/+$/, "")}/api/v2/status`, { signal: AbortSignal.timeout(30_000) })).status;
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new DeployUsageError(`the cluster is not reachable at ${url}: ${cause ?? firstLine(e)} (is \`subnetlab up\` running?)`);
  }
  if (status !== 200) throw new DeployUsageError(`${url}/api/v2/status answers HTTP ${status}: not an IC replica?`);
}

async function refusedAs<T>(step: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const message = (e as Error).message;
    if (/fetch failed|ECONNREFUSED|ECONNRESET/.test(message)) throw new DeployUsageError(`the cluster stopped answering during ${step}: ${message}`);
    throw new DeployRefused(`${step} failed: ${message.split("\n").filter((l) => l.trim() !== "").slice(0, 6).join(" | ")}`);
  }
}

/**
 * An effective canister id that routes a create call to the subnet of the replica at `url`: the
 * first id of its range. Only a routing hint (read without verification): the agent verifies the
 * certificates of every call made with it, so a wrong hint fails the call, it is not trusted.
 */
async function effectiveCanisterIdAt(url: string): Promise<string> {
  const readState = async (paths: (string | Uint8Array)[][]): Promise<Uint8Array> => {
    const body = encodeWithSelfDescribedTag({
      content: { request_type: "read_state", sender: new Uint8Array([4]), paths: paths.map((p) => p.map((l) => (typeof l === "string" ? utf8ToBytes(l) : l))), ingress_expiry: BigInt(Date.now() + 120_000) * 1_000_000n },
    });
    const response = await fetch(`${url.replace(/\/+$/, "")}/api/v2/canister/aaaaa-aa/read_state`, { method: "POST", headers: { "content-type": "application/cbor" }, body });
    if (response.status !== 200) throw new DeployUsageError(`${url} answers read_state with HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
    return (decode(new Uint8Array(await response.arrayBuffer())) as { certificate: Uint8Array }).certificate;
  };
  const status = decode(new Uint8Array(await (await fetch(`${url.replace(/\/+$/, "")}/api/v2/status`)).arrayBuffer())) as { root_key: Uint8Array };
  const outer = decodeCertificate(await readState([["time"]]));
  if (outer === undefined) throw new DeployUsageError(`${url} answers read_state with something that is not a certificate`);
  const subnetId = outer.delegation?.subnetId ?? subnetIdOfRootKey(status.root_key);
  const rangesIn = async (): Promise<Uint8Array | undefined> => {
    if (outer.delegation !== undefined) {
      const inner = decodeCertificate(outer.delegation.certificate);
      const found = inner === undefined ? undefined : lookupPath(["subnet", subnetId, "canister_ranges"], inner.tree);
      return found?.status === "found" ? found.value : undefined;
    }
    const own = decodeCertificate(await readState([["subnet", subnetId, "canister_ranges"]]));
    const found = own === undefined ? undefined : lookupPath(["subnet", subnetId, "canister_ranges"], own.tree);
    return found?.status === "found" ? found.value : undefined;
  };
  const bytes = await rangesIn();
  const first = bytes === undefined ? undefined : decodeCanisterRanges(bytes)?.[0];
  if (first === undefined) throw new DeployUsageError(`${url} does not state its subnet's canister ranges; pass --dir or --canister-id`);
  return Principal.fromUint8Array(first[0]).toText();
}

// ---- the command line ---------------------------------------------------------------------------

/** `subnetlab deploy …`: answers the exit code; the JSON line goes to stdout, errors to stderr in one line. */
export async function runDeploy(args: readonly string[], io: DeployIo = PROCESS_IO): Promise<number> {
  try {
    const options = await parseDeployArgs(args);
    if (options === "help") {
      io.out(DEPLOY_HELP);
      return EXIT.pass;
    }
    const deployed = await deploy(options);
    io.out(`${JSON.stringify(deployed)}\n`);
    return EXIT.pass;
  } catch (e) {
    if (e instanceof DeployUsageError || e instanceof CandidTextError) {
      io.err(`subnetlab: deploy: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof DeployRefused) {
      io.err(`subnetlab: deploy: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** Where the command writes (tests collect it). */
export interface DeployIo {
  out(text: string): void;
  err(text: string): void;
}
const PROCESS_IO: DeployIo = { out: (text) => void process.stdout.write(text), err: (text) => void process.stderr.write(text) };

async function parseDeployArgs(args: readonly string[]): Promise<DeployOptions | "help"> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        dir: { type: "string" },
        subnet: { type: "string" },
        url: { type: "string" },
        "canister-id": { type: "string" },
        mode: { type: "string" },
        arg: { type: "string" },
        "arg-candid": { type: "string" },
        "identity-seed": { type: "string" },
        cycles: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new DeployUsageError(`${(e as Error).message} (see subnetlab deploy --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return "help";
  if (positionals.length !== 1) throw new DeployUsageError(`deploy takes one Wasm file, got ${positionals.length === 0 ? "none" : positionals.join(" ")} (see subnetlab deploy --help)`);
  const mode = values.mode ?? "install";
  if (mode !== "install" && mode !== "reinstall" && mode !== "upgrade") throw new DeployUsageError(`--mode takes install, reinstall or upgrade, got ${JSON.stringify(mode)}`);
  if (mode !== "install" && values["canister-id"] === undefined) throw new DeployUsageError(`--mode ${mode} needs --canister-id (the canister to ${mode})`);
  if (values.arg !== undefined && values["arg-candid"] !== undefined) throw new DeployUsageError("give the argument once: --arg HEX or --arg-candid TEXT");
  if (values.url !== undefined && values.subnet !== undefined) throw new DeployUsageError("--subnet picks a subnet of --dir's cluster; with --url the replica's own subnet is used");
  const canisterId = values["canister-id"];
  if (canisterId !== undefined) checkPrincipal("--canister-id", canisterId);
  const cycles = values.cycles ?? "10000000000000";
  if (!/^\d+$/.test(cycles)) throw new DeployUsageError(`--cycles takes a whole number, got ${JSON.stringify(cycles)}`);
  const arg = values["arg-candid"] !== undefined ? encodeCandidText(values["arg-candid"]) : values.arg !== undefined ? parseHexArg(values.arg) : EMPTY_ARGS;
  const wasm = readWasm(positionals[0] as string);
  const target = values.url !== undefined ? { url: values.url } : clusterTarget(values.dir ?? join("reports", "up"), values.subnet);
  return {
    wasm,
    ...target,
    ...(canisterId === undefined ? {} : { canisterId }),
    mode,
    arg,
    identitySeed: values["identity-seed"] ?? DEFAULT_IDENTITY_SEED,
    cycles: BigInt(cycles),
  };
}

function parseHexArg(text: string): Uint8Array {
  const hex = text.replace(/^0x/, "");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new DeployUsageError(`--arg takes hex bytes (an even number of 0-9a-f digits), got ${JSON.stringify(text.slice(0, 40))}`);
  return hexToBytes(hex);
}

function checkPrincipal(option: string, text: string): void {
  try {
    Principal.fromText(text);
  } catch {
    throw new DeployUsageError(`${option} takes a principal such as rwlgt-iiaaa-aaaaa-aaaaa-cai, got ${JSON.stringify(text)}`);
  }
}

/** The URL of the chosen subnet's first replica and an effective canister id in its range, from DIR/cluster.json. */
function clusterTarget(dir: string, subnetName: string | undefined): { readonly url: string; readonly effectiveCanisterId: string } {
  const path = join(dir, "cluster.json");
  if (!existsSync(path)) throw new DeployUsageError(`no cluster in ${dir} (no ${path}); start one with subnetlab up --out ${dir}, or pass --url`);
  let info: ClusterInfo;
  try {
    info = JSON.parse(readFileSync(path, "utf8")) as ClusterInfo;
  } catch (e) {
    throw new DeployUsageError(`${path} is not JSON: ${(e as Error).message}`);
  }
  const subnets = Array.isArray(info.subnets) ? info.subnets : [];
  const subnet = subnetName === undefined ? subnets[0] : subnets.find((s) => s.name === subnetName || s.id === subnetName);
  if (subnet === undefined) throw new DeployUsageError(`${path} has no subnet ${subnetName ?? ""} (subnets: ${subnets.map((s) => s.name).join(", ") || "none"})`);
  const url = subnet.replicas?.[0]?.httpUrl;
  const ecid = subnet.canisterRanges?.[0]?.[0];
  if (url === undefined || ecid === undefined) throw new DeployUsageError(`${path} lists no replica or canister range for subnet ${subnet.name}`);
  return { url, effectiveCanisterId: ecid };
}
