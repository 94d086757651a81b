// What replicas send each other. Every step of a replica flushes at most one `Bundle` per peer, so
// the simulated network (and the event loop) sees one message per peer per step however many
// artifacts it carries; sizes still add up item by item for the bandwidth model.
import type { ArtifactType, ConsensusArtifact } from "../consensus/artifacts.ts";
import type { IngressMessage } from "../consensus/ingress.ts";
import type { Certification, CertificationShare } from "../replica/certification.ts";
import type { StateSnapshot } from "../replica/interfaces.ts";
import type { Height } from "../types.ts";

/** Where a replica stands; peers answer with what it is missing (catch-up and retransmission). */
export interface StatusReport {
  readonly finalizedHeight: Height;
  readonly notarizedHeight: Height;
  readonly beaconHeight: Height;
  readonly cupHeight: Height;
  /** Latest certified height (execution subnets only): peers send a newer certification. */
  readonly certifiedHeight?: Height;
}

export type WireItem =
  | { readonly kind: "artifact"; readonly artifact: ConsensusArtifact }
  | { readonly kind: "advert"; readonly id: string; readonly type: ArtifactType; readonly height: Height; readonly sizeBytes: number }
  | { readonly kind: "request"; readonly id: string; readonly height: Height }
  | { readonly kind: "ingress"; readonly message: IngressMessage }
  | { readonly kind: "status"; readonly status: StatusReport }
  | { readonly kind: "state-request"; readonly height: Height }
  | { readonly kind: "state-response"; readonly snapshot: StateSnapshot }
  | { readonly kind: "certification-share"; readonly share: CertificationShare }
  | { readonly kind: "certification"; readonly certification: Certification };

export interface Bundle {
  readonly items: readonly WireItem[];
  readonly sizeBytes: number;
}

const ADVERT_BYTES = 64;
const STATUS_BYTES = 48;
/** Height, 32-byte hash, signer and a 48-byte BLS signature (share or combined). */
const CERTIFICATION_BYTES = 96;
/** Framing overhead of one bundle on the wire. */
export const BUNDLE_OVERHEAD_BYTES = 32;

export function wireItemSize(item: WireItem): number {
  switch (item.kind) {
    case "artifact":
      return item.artifact.sizeBytes;
    case "advert":
    case "request":
      return ADVERT_BYTES;
    case "ingress":
      return item.message.sizeBytes + 96;
    case "status":
    case "state-request":
      return STATUS_BYTES;
    case "state-response":
      return item.snapshot.sizeBytes;
    case "certification-share":
    case "certification":
      return CERTIFICATION_BYTES;
  }
}

export function wireItemLabel(item: WireItem): string {
  switch (item.kind) {
    case "artifact":
      return item.artifact.type;
    case "advert":
      return `advert:${item.type}`;
    default:
      return item.kind;
  }
}
