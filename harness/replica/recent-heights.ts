// What the execution state machine keeps of the heights it committed (harness/replica/
// execution-state-machine.ts): their state hashes and certified-tree root hashes, and — from the
// latest certified height on — their execution states, routing states and certified trees, which
// the replica's read paths are served from: queries and the ingress filter (the execution state),
// read_state and data certificates (the certified tree with the subnet's certification), and the
// XNet endpoint's stream witnesses (the certified tree with the routing state).
import type { HashTree } from "../crypto/hash-tree.ts";
import { principalBytes, type CanisterId } from "../execution/interfaces.ts";
import type { ExecutionRoundState } from "../execution/round.ts";
import type { SubnetId } from "../routing/registry.ts";
import { encodeStreamMessage, sliceOf, type RoutingState } from "../routing/streams.ts";
import { indexLabel, subnetLabel } from "../routing/xnet.ts";
import type { CertifiedState } from "../state/certified-tree.ts";
import { dataCertificate, readStateCertificate } from "../state/state-certification.ts";
import type { HashHex, Height } from "../types.ts";
import type { Certification } from "./certification.ts";

/**
 * Heights whose certified hash a replica keeps (to sign shares and to judge certifications), and
 * the most whose states (routing, execution, certified tree) it keeps while certification lags.
 * Once the subnet certifies h, the states below h are dropped: queries, read_state and the XNet
 * endpoint serve the latest certified height only. Keeping 32 full states instead doubled the
 * wall time of a 13-replica subnet at 1,000 updates/s (garbage collection over 32 versions of
 * the certified tree; docs/BENCHMARKS.md).
 */
const RECENT_HEIGHTS_KEPT = 32;

/** Heights whose state hash a replica keeps (and whose state digests its state manager keeps). */
export const STATE_HASH_KEEP = 512;

/** An execution state and the time of the batch that produced it (queries run at that time). */
export interface HeldExecution {
  readonly state: ExecutionRoundState;
  readonly timeNs: bigint;
}

/** Everything kept of one committed height. */
export interface CommittedHeight {
  readonly stateHash: HashHex;
  readonly certifiedHash: HashHex;
  readonly routing: RoutingState;
  readonly execution: HeldExecution;
  readonly certified: CertifiedState;
}

export class RecentHeights {
  private readonly stateHashes = new Map<Height, HashHex>();
  /** Certified tree root hashes of recent heights (shares are signed over them). */
  private readonly certifiedHashes = new Map<Height, HashHex>();
  private readonly routingAt = new Map<Height, RoutingState>();
  /** Execution states of recent heights: queries run against the latest certified one. */
  private readonly executionAt = new Map<Height, HeldExecution>();
  /** Certified trees of the latest certified height and later (XNet slices and read_state are served from them). */
  private readonly certifiedAt = new Map<Height, CertifiedState>();
  /** The newest certification of this subnet whose state this replica still holds. */
  private certification: Certification | undefined;

  constructor(private readonly subnetId: SubnetId) {}

  /** Keeps a committed height and forgets what fell out of the windows. */
  keep(h: Height, committed: CommittedHeight): void {
    this.stateHashes.set(h, committed.stateHash);
    this.stateHashes.delete((h - STATE_HASH_KEEP) as Height);
    this.certifiedHashes.set(h, committed.certifiedHash);
    this.certifiedHashes.delete((h - RECENT_HEIGHTS_KEPT) as Height);
    this.routingAt.set(h, committed.routing);
    this.executionAt.set(h, committed.execution);
    this.certifiedAt.set(h, committed.certified);
    this.releaseStatesBelow((h - RECENT_HEIGHTS_KEPT + 1) as Height);
  }

  /** After state sync installed a checkpoint at h: nothing older is known, only h's state hash. */
  restartAt(h: Height, stateHash: HashHex): void {
    this.stateHashes.clear();
    this.routingAt.clear();
    this.executionAt.clear();
    this.certifiedAt.clear();
    this.certifiedHashes.clear();
    this.certification = undefined;
    this.stateHashes.set(h, stateHash);
  }

  stateHashAt(h: Height): HashHex | undefined {
    return this.stateHashes.get(h);
  }

  certifiedHashAt(h: Height): HashHex | undefined {
    return this.certifiedHashes.get(h);
  }

  /** The subnet certified height h: read_state and data certificates can be served from it. */
  onCertified(cert: Certification): void {
    // Not our state (diverged), or states older than the newest certification we hold.
    if (this.certifiedHashes.get(cert.height) !== cert.hash || !this.certifiedAt.has(cert.height)) return;
    if (this.certification === undefined || cert.height > this.certification.height) {
      this.certification = cert;
      this.releaseStatesBelow(cert.height);
    }
  }

  /** The height queries run at: the latest certified one this replica holds, else `latestExecuted`. */
  queryHeight(latestExecuted: Height): Height {
    const cert = this.certification;
    return cert !== undefined && this.executionAt.has(cert.height) ? cert.height : latestExecuted;
  }

  executionAtHeight(h: Height): HeldExecution | undefined {
    return this.executionAt.get(h);
  }

  /** What ic0.data_certificate_copy returns in a query to `canister`: /time and its certified_data. */
  dataCertificateFor(canister: CanisterId): Uint8Array | undefined {
    const cert = this.certification;
    const held = cert === undefined ? undefined : this.certifiedAt.get(cert.height);
    if (cert === undefined || held === undefined) return undefined;
    return dataCertificate(held, cert, principalBytes(canister));
  }

  /**
   * A read_state response: the latest certified state pruned to `paths` (plus /time), with the
   * subnet's signature — the CBOR certificate agents verify. Undefined before the first certification.
   */
  readState(paths: readonly (readonly (string | Uint8Array)[])[]): Uint8Array | undefined {
    const cert = this.certification;
    const held = cert === undefined ? undefined : this.certifiedAt.get(cert.height);
    if (cert === undefined || held === undefined) return undefined;
    return readStateCertificate(held, cert, paths);
  }

  /** The certified tree at h pruned to our stream to `destination` from `fromIndex` on (XNet endpoint). */
  streamWitnessAt(h: Height, destination: SubnetId, fromIndex: bigint): { readonly witness: HashTree; readonly messageBytes: number } | undefined {
    const held = this.certifiedAt.get(h);
    const routing = this.routingAt.get(h);
    // No stream to the destination yet: nothing to serve (the IC's endpoint answers "no content").
    if (held === undefined || routing === undefined || !routing.streams.some(([id]) => id === destination)) return undefined;
    const slice = sliceOf(routing, this.subnetId, destination, fromIndex);
    const base = ["streams", subnetLabel(destination)];
    const paths: (string | Uint8Array)[][] = [[...base, "header"]];
    if (slice.messages.length > 0 && slice.firstIndex === slice.header.begin && slice.header.end - slice.header.begin === BigInt(slice.messages.length)) {
      paths.push([...base, "messages"]); // the whole stream: one prefix path reveals it
    } else {
      slice.messages.forEach((_, k) => paths.push([...base, "messages", indexLabel(slice.firstIndex + BigInt(k))]));
    }
    const messageBytes = slice.messages.reduce((sum, m) => sum + encodeStreamMessage(m).length, 0);
    return { witness: held.witness(paths), messageBytes };
  }

  /** Drops the routing, execution and certified states of heights below h (their hashes stay). */
  private releaseStatesBelow(h: Height): void {
    for (const held of [this.routingAt, this.executionAt, this.certifiedAt]) {
      for (const at of held.keys()) if (at < h) held.delete(at);
    }
  }
}
