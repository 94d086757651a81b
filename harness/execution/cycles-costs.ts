// What the `ic0.cost_*` System API functions answer (interface specification, "Cycle cost
// calculation"): the IC's fees for an application subnet, defined for a 13-node subnet and scaled
// linearly by the number of nodes of the subnet that does the work. Facts from dfinity/ic:
//   - rs/config/src/subnet_config.rs (`CyclesAccountManagerConfig::application_subnet`,
//     `DEFAULT_REFERENCE_SUBNET_SIZE`, `MAX_INSTRUCTIONS_PER_MESSAGE`,
//     `WASM64_INSTRUCTION_COST_OVERHEAD`, `ECDSA_SIGNATURE_FEE`, `SCHNORR_SIGNATURE_FEE`,
//     `VETKD_FEE`),
//   - rs/cycles_account_manager/src/lib.rs (`scale_cost`, `xnet_call_total_fee`,
//     `prepayment_for_response_transmission`, `prepayment_for_response_execution`,
//     `execution_cost`, `canister_creation_fee`, `http_request_fee`, `ecdsa_signature_fee`,
//     `schnorr_signature_fee`, `vetkd_fee`),
//   - rs/embedders/src/wasmtime_embedder/system_api/sandbox_safe_system_state.rs
//     (`get_key_subnet_details`: a threshold key's cost is scaled by the size of the largest
//     subnet holding that key; no subnet holds it → result 2),
//   - rs/types/types/src/messages.rs (`MAX_INTER_CANISTER_PAYLOAD_IN_BYTES`, 2 MiB).
// All arithmetic is bigint and rounds down where the replica's u128 division does.

/** The subnet size every fee below is defined for (subnet_config.rs DEFAULT_REFERENCE_SUBNET_SIZE). */
export const REFERENCE_SUBNET_SIZE = 13;

/** An application subnet's fees for the reference subnet size (subnet_config.rs). */
export const APPLICATION_SUBNET_CYCLES_FEES = {
  canisterCreation: 500_000_000_000n,
  updateMessageExecution: 5_000_000n,
  /** Per 10 instructions; a canister with a 64-bit memory pays WASM64_INSTRUCTION_COST_OVERHEAD (2) times that. */
  tenInstructionsWasm32: 10n,
  tenInstructionsWasm64: 20n,
  xnetCall: 260_000n,
  xnetBytePerByte: 1_000n,
  ecdsaSignature: 10_000_000_000n,
  schnorrSignature: 10_000_000_000n,
  vetkdDeriveKey: 10_000_000_000n,
  httpRequestLinearBaseline: 3_000_000n,
  httpRequestQuadraticBaseline: 60_000n,
  httpRequestPerByte: 400n,
  httpResponsePerByte: 800n,
} as const;

/**
 * The instruction limit of a message, which the replica's CyclesAccountManager prepays a
 * response callback for (subnet_config.rs MAX_INSTRUCTIONS_PER_MESSAGE, 40 B with DTS).
 */
export const MAX_INSTRUCTIONS_PER_MESSAGE = 40_000_000_000n;

/** The largest inter-canister payload, the response size a call prepays (messages.rs, 2 MiB). */
export const MAX_INTER_CANISTER_PAYLOAD_BYTES = 2n * 1024n * 1024n;

const FEES = APPLICATION_SUBNET_CYCLES_FEES;

/** `scale_cost`: a reference-size fee for a subnet of `subnetSize` nodes (rounded down). */
export function scaleToSubnet(cycles: bigint, subnetSize: number): bigint {
  return (cycles * BigInt(subnetSize)) / BigInt(REFERENCE_SUBNET_SIZE);
}

/** `execution_cost`: the fixed per-message fee plus the instructions' fee (rounded down per 10). */
function executionCost(instructions: bigint, wasm64: boolean, subnetSize: number): bigint {
  const perTen = wasm64 ? FEES.tenInstructionsWasm64 : FEES.tenInstructionsWasm32;
  return scaleToSubnet(FEES.updateMessageExecution + (perTen * instructions) / 10n, subnetSize);
}

/**
 * `ic0.cost_call`: what a call must be able to pay above the freezing threshold
 * (`xnet_call_total_fee`): the call fee, the request's bytes (method name + argument), the
 * transmission of the largest response and the execution of the longest response callback.
 */
export function costCall(methodNameSize: bigint, payloadSize: bigint, subnetSize: number, wasm64: boolean): bigint {
  const requestBytes = methodNameSize + payloadSize;
  const transmission =
    scaleToSubnet(FEES.xnetCall, subnetSize) +
    scaleToSubnet(FEES.xnetBytePerByte * requestBytes, subnetSize) +
    scaleToSubnet(FEES.xnetBytePerByte * MAX_INTER_CANISTER_PAYLOAD_BYTES, subnetSize);
  return transmission + executionCost(MAX_INSTRUCTIONS_PER_MESSAGE, wasm64, subnetSize);
}

/** `ic0.cost_create_canister`: `create_canister` on the caller's subnet (`canister_creation_fee`). */
export function costCreateCanister(subnetSize: number): bigint {
  return scaleToSubnet(FEES.canisterCreation, subnetSize);
}

/**
 * `ic0.cost_http_request` (`http_request_fee`): per node a baseline linear in the subnet size
 * plus the request and the largest response bytes, times the number of nodes — not `scale_cost`.
 */
export function costHttpRequest(requestSize: bigint, maxResponseBytes: bigint, subnetSize: number): bigint {
  const n = BigInt(subnetSize);
  const perNode =
    FEES.httpRequestLinearBaseline +
    FEES.httpRequestQuadraticBaseline * n +
    FEES.httpRequestPerByte * requestSize +
    FEES.httpResponsePerByte * maxResponseBytes;
  return perNode * n;
}

/** The threshold schemes of `ic0.cost_sign_with_ecdsa`, `_schnorr` and `cost_vetkd_derive_key`. */
export type ThresholdScheme = "ecdsa" | "schnorr" | "vetkd";

/** The i32 each scheme's cost function takes and what it names (spec "Cycle cost calculation"). */
export const THRESHOLD_CURVES: Readonly<Record<ThresholdScheme, readonly string[]>> = {
  ecdsa: ["secp256k1"],
  schnorr: ["bip340secp256k1", "ed25519"],
  vetkd: ["bls12_381_g2"],
};

/**
 * A threshold key some subnet of the simulated IC holds, as the registry's
 * `chain_key_enabled_subnets` would list it: the scheme, the curve or algorithm (its name in
 * THRESHOLD_CURVES), the key's name and the size of the (largest) subnet holding it.
 */
export interface ThresholdKey {
  readonly scheme: ThresholdScheme;
  readonly curve: string;
  readonly name: string;
  readonly subnetSize: number;
}

export type ThresholdKeyCost =
  | { readonly kind: "cost"; readonly cycles: bigint }
  /** Result 1: the i32 names no curve or algorithm of the scheme. */
  | { readonly kind: "unknown-curve" }
  /** Result 2: no subnet holds a key of that name for the curve. */
  | { readonly kind: "unknown-key" };

const SCHEME_FEES: Readonly<Record<ThresholdScheme, bigint>> = {
  ecdsa: FEES.ecdsaSignature,
  schnorr: FEES.schnorrSignature,
  vetkd: FEES.vetkdDeriveKey,
};

/**
 * `ic0.cost_sign_with_ecdsa` / `_schnorr` / `cost_vetkd_derive_key`: the scheme's fee scaled by
 * the size of the largest subnet that holds the named key; result codes as the spec gives them.
 */
export function costThresholdKey(
  scheme: ThresholdScheme,
  curveCode: number,
  keyName: string,
  keys: readonly ThresholdKey[],
): ThresholdKeyCost {
  const curve = THRESHOLD_CURVES[scheme][curveCode];
  if (curve === undefined) return { kind: "unknown-curve" };
  const holders = keys.filter((k) => k.scheme === scheme && k.curve === curve && k.name === keyName);
  if (holders.length === 0) return { kind: "unknown-key" };
  const largest = Math.max(...holders.map((k) => k.subnetSize));
  return { kind: "cost", cycles: scaleToSubnet(SCHEME_FEES[scheme], largest) };
}
