// Consensus and payload limits with the IC's own numbers (ic-protocol.md §1.4, §1.9, §2), checked
// when the module loads (DESIGN.md rule 8). Per-run values that scenarios may change live in
// `ConsensusConfig`; the IC's hard limits are constants.
import { assert } from "../assert.ts";

/** rs/limits MAX_INGRESS_MESSAGES_PER_BLOCK. */
export const MAX_INGRESS_MESSAGES_PER_BLOCK = 1000;
/** rs/limits MAX_BLOCK_PAYLOAD_SIZE / MAX_INGRESS_BYTES_PER_BLOCK: 4 MiB. */
export const MAX_INGRESS_BYTES_PER_BLOCK = 4 * 1024 * 1024;
/** rs/limits MAX_INGRESS_BYTES_PER_MESSAGE_APP_SUBNET: 2 MiB. */
export const MAX_INGRESS_BYTES_PER_MESSAGE = 2 * 1024 * 1024;
/** rs/limits MAX_INGRESS_TTL: 5 minutes. */
export const MAX_INGRESS_TTL_US = 5 * 60 * 1_000_000;
/** rs/limits PERMITTED_DRIFT_AT_VALIDATOR: 30 s into the future is tolerated. */
export const PERMITTED_DRIFT_AT_VALIDATOR_US = 30 * 1_000_000;
/** rs/p2p consensus_manager: artifacts under 1 KiB are pushed, larger ones advertised. */
export const PUSH_THRESHOLD_BYTES = 1024;
/** purger.rs MINIMUM_CHAIN_LENGTH: validated artifacts kept below the CUP height. */
export const MINIMUM_CHAIN_LENGTH = 50;
/** rs/limits DKG_INTERVAL_HEIGHT (a summary block every 500 heights on the IC). */
export const IC_DKG_INTERVAL_LENGTH = 499;
/** Notarization stops when notarized − CUP height reaches this (notary.rs). */
export const ACCEPTABLE_NOTARIZATION_CUP_GAP = 130;

assert(MAX_INGRESS_BYTES_PER_MESSAGE < MAX_INGRESS_BYTES_PER_BLOCK, "a message must fit in a block");
assert(MINIMUM_CHAIN_LENGTH < ACCEPTABLE_NOTARIZATION_CUP_GAP, "purge window below the CUP gap");

export interface ConsensusConfig {
  /** Block maker delay per rank (UNIT_DELAY_APP_SUBNET = 1000 ms). */
  readonly unitDelayMs: number;
  /** INITIAL_NOTARY_DELAY = 300 ms. */
  readonly initialNotaryDelayMs: number;
  /** Heights between summary blocks, minus one (the IC uses 499; simulations use less). */
  readonly dkgIntervalLength: number;
  /** How often a replica tells its peers how far it got, so laggards can catch up. */
  readonly statusIntervalMs: number;
  readonly maxIngressMessagesPerBlock: number;
  readonly maxIngressBytesPerBlock: number;
  /**
   * A known bug switched on in the honest code, so the lab can prove it catches it (fuzz
   * --canary). Never set in a real scenario.
   */
  readonly canary?: Canary | StorageCanary | ForgeryCanary;
}

/**
 * Known bugs the lab must catch: each breaks one property class. The first two are found by their
 * consequences (a fork, a message finalized twice); the safety checker must see the third in the
 * finalized chains, the protocol-rule checkers (checks.ts) the next three on the first run that
 * exercises them, and state agreement the last.
 */
export const CANARIES = {
  /** Finalizer shares every notarized block, ignoring the finalization rule → forks (safety). */
  "finalizer-ignores-rule": "safety",
  /** Payload builder and validator skip the duplicate check → ingress finalized twice (validity). */
  "no-ingress-dedup": "validity",
  /** Batch delivery takes the lowest-ranked notarized block at heights finalized only implicitly. */
  "implicit-finalization-by-rank": "safety",
  /** Finalizer forgets "notarization-shared no other block at h" (it still wants one notarized block). */
  "finalize-after-other-notarization": "safety",
  /** Notarizations and finalizations aggregate (and validate) with 2f shares instead of 2f+1. */
  "aggregate-with-2f": "safety",
  /** Notary shares every valid proposal at a height, not only the lowest-ranked ones. */
  "notarize-two-blocks": "safety",
  /** A restarted replica mixes its restart time into its state hashes (nondeterminism). */
  "state-hash-after-restart": "state-divergence",
} as const;

/**
 * Known bugs in how a replica uses its disk (issue 11, item 7): the lab must catch each on the
 * first run of a scenario whose storage fault meets it (test/lab/storage-faults.test.ts).
 */
export const STORAGE_CANARIES = {
  /** The replica sends what it signed before its pool log is synced (it syncs once per status interval). */
  "persist-after-send": "safety",
  /** A restarted replica adopts its checkpoint without checking checksums, page hashes or its state hash. */
  "skip-checksum": "state-divergence",
} as const;
export type StorageCanary = keyof typeof STORAGE_CANARIES;

/**
 * Known bugs in code that only a forged or replayed artifact reaches (issue 11, C3): each removes
 * one refusal, and the lab must catch it on the first run of a scenario whose `forge` fault sends
 * that artifact (harness/faults/forgery.ts) — as the property named here. They are not in
 * CANARIES because the fuzzer finds them only when it draws the matching forge mode (and the XNet
 * one needs two subnets).
 */
export const FORGERY_CANARIES = {
  /** The validator accepts a newer catch-up package without checking its threshold signature. */
  "cup-signature-unchecked": "safety",
  /** The block validator skips the duplicate-ingress check (the payload builder still does it). */
  "validator-skips-ingress-dedup": "validity",
  /** Peers' certifications are taken without checking signature or hash. */
  "certification-unchecked": "safety",
  /** XNet slices are taken without checking the source subnet's certification signature. */
  "xnet-slice-signature-unchecked": "invariant",
  /** State sync installs a peer's checkpoint without checking it against the CUP's state hash. */
  "state-sync-unverified": "state-divergence",
} as const;
export type Canary = keyof typeof CANARIES;
export type ForgeryCanary = keyof typeof FORGERY_CANARIES;

export const DEFAULT_CONSENSUS_CONFIG: ConsensusConfig = {
  unitDelayMs: 1000,
  initialNotaryDelayMs: 300,
  dkgIntervalLength: 49,
  statusIntervalMs: 1000,
  maxIngressMessagesPerBlock: MAX_INGRESS_MESSAGES_PER_BLOCK,
  maxIngressBytesPerBlock: MAX_INGRESS_BYTES_PER_BLOCK,
};

export function checkConsensusConfig(config: ConsensusConfig): void {
  assert(config.unitDelayMs > 0, "unitDelayMs must be positive");
  assert(config.initialNotaryDelayMs >= 0, "initialNotaryDelayMs must be non-negative");
  assert(
    config.dkgIntervalLength >= 1 && config.dkgIntervalLength + 1 < ACCEPTABLE_NOTARIZATION_CUP_GAP,
    `dkgIntervalLength must be in [1, ${ACCEPTABLE_NOTARIZATION_CUP_GAP - 2}]`,
  );
  assert(
    config.maxIngressMessagesPerBlock >= 1 &&
      config.maxIngressMessagesPerBlock <= MAX_INGRESS_MESSAGES_PER_BLOCK,
    `maxIngressMessagesPerBlock must be in [1, ${MAX_INGRESS_MESSAGES_PER_BLOCK}]`,
  );
  assert(
    config.maxIngressBytesPerBlock >= MAX_INGRESS_BYTES_PER_MESSAGE &&
      config.maxIngressBytesPerBlock <= MAX_INGRESS_BYTES_PER_BLOCK,
    "maxIngressBytesPerBlock must hold one maximal message and stay within 4 MiB",
  );
}

/** True at heights that carry a summary block (and so a checkpoint and a CUP). */
export function isSummaryHeight(h: number, config: ConsensusConfig): boolean {
  return h % (config.dkgIntervalLength + 1) === 0;
}
