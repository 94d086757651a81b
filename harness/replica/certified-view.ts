// The certified part of a subnet's state (ic-protocol.md §5.1) kept up to date height by height:
// /time, /request_status from the ingress history's changes, /canister/<id> for canisters whose
// state object changed, /streams/<subnet> for streams that changed, /subnet/<id> for every subnet
// of the registry. Updates cost O(changes × log n) (harness/state/certified-tree.ts), so a replica
// can certify every height even with hundreds of thousands of request statuses.
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { Principal } from "@dfinity/principal";
import type { CanisterRange as TreeCanisterRange } from "../crypto/certificate.ts";
import { canisterIdFromU64, principalBytes, type CanisterId, type CanisterState } from "../execution/interfaces.ts";
import type { Registry, SubnetId } from "../routing/registry.ts";
import { encodeStreamHeader, encodeStreamMessage, type RoutingState, type Stream, type StreamMessage } from "../routing/streams.ts";
import { CertifiedState, type CanisterEntry, type RequestStatus } from "../state/certified-tree.ts";
import type { HashHex } from "../types.ts";
import { icpCustomSections, uncompressedModule, type IcpCustomSection } from "../execution/module-limits.ts";
import type { IngressHistory } from "./ingress-history.ts";
import type { IngressStatus } from "./interfaces.ts";

export function requestStatusOf(status: IngressStatus): RequestStatus {
  switch (status.status) {
    case "received":
    case "processing":
    case "done":
      return { status: status.status };
    case "completed":
      return { status: "replied", reply: hexToBytes(status.reply) };
    case "failed":
      return { status: "rejected", rejectCode: status.code, rejectMessage: status.message, errorCode: status.errorCode };
  }
}

// Stream messages are immutable objects; their encodings are computed once.
const encodedMessages = new WeakMap<StreamMessage, Uint8Array>();
function encodedMessage(m: StreamMessage): Uint8Array {
  let bytes = encodedMessages.get(m);
  if (bytes === undefined) encodedMessages.set(m, (bytes = encodeStreamMessage(m)));
  return bytes;
}

const subnetBytes = (id: SubnetId): Uint8Array => Principal.fromText(id).toUint8Array();

export interface CertifiedViewContext {
  readonly registry: Registry;
  /** DER public key of a subnet's certification key, when the harness knows it. */
  readonly publicKeyDerOf?: (id: SubnetId) => Uint8Array | undefined;
  /**
   * A subnet's nodes as (node id, 44-byte DER Ed25519 key) pairs for /subnet/<id>/node, when the
   * harness knows them: agents check query signatures against these keys.
   */
  readonly nodesOf?: (id: SubnetId) => readonly (readonly [Uint8Array, Uint8Array])[] | undefined;
}

export class CertifiedView {
  private state: CertifiedState;
  private readonly canisters = new Map<CanisterId, CanisterState>();
  private readonly streams = new Map<SubnetId, Stream>();

  constructor(private readonly context: CertifiedViewContext) {
    this.state = this.withSubnets(CertifiedState.empty());
  }

  get current(): CertifiedState {
    return this.state;
  }

  /** Applies one height's changes; returns the new certified state. */
  update(timeNs: bigint, history: IngressHistory, canisters: readonly CanisterState[], routing: RoutingState): CertifiedState {
    let next = this.state.withTime(timeNs);
    for (const id of history.takeChanged()) next = withStatus(next, id, history);
    next = this.withCanisters(next, canisters);
    next = this.withStreams(next, routing);
    this.state = next;
    return next;
  }

  /**
   * Takes the certified state another replica's view computed for the same history, canisters and
   * routing (shared execution): the history's pending changes are in it already.
   */
  adopt(state: CertifiedState, history: IngressHistory, canisters: readonly CanisterState[], routing: RoutingState): void {
    history.takeChanged();
    this.canisters.clear();
    for (const c of canisters) this.canisters.set(c.id, c);
    for (const [subnet, stream] of routing.streams) this.streams.set(subnet, stream);
    this.state = state;
  }

  /** Rebuilds everything (after a checkpoint is loaded or state-synced). */
  rebuild(timeNs: bigint, history: IngressHistory, canisters: readonly CanisterState[], routing: RoutingState): CertifiedState {
    this.canisters.clear();
    this.streams.clear();
    history.takeChanged();
    let next = this.withSubnets(CertifiedState.empty()).withTime(timeNs);
    for (const id of history.ids()) next = withStatus(next, id, history);
    next = this.withCanisters(next, canisters);
    this.state = this.withStreams(next, routing);
    return this.state;
  }

  private withSubnets(state: CertifiedState): CertifiedState {
    let next = state;
    for (const s of this.context.registry.subnets) {
      const publicKeyDer = this.context.publicKeyDerOf?.(s.id);
      if (publicKeyDer === undefined) continue;
      const ranges: TreeCanisterRange[] = [[principalBytes(canisterIdFromU64(s.canisterRange.start)), principalBytes(canisterIdFromU64(s.canisterRange.end))]];
      const nodes = this.context.nodesOf?.(s.id);
      next = next.withSubnet(subnetBytes(s.id), { publicKeyDer, canisterRanges: ranges, ...(nodes === undefined ? {} : { nodes }) });
    }
    return next;
  }

  private withCanisters(state: CertifiedState, canisters: readonly CanisterState[]): CertifiedState {
    let next = state;
    const present = new Set<CanisterId>();
    for (const c of canisters) {
      present.add(c.id);
      const previous = this.canisters.get(c.id);
      if (previous === c) continue;
      this.canisters.set(c.id, c);
      if (previous !== undefined && sameCertifiedFields(previous, c)) continue;
      next = next.withCanister(principalBytes(c.id), canisterEntry(c));
    }
    for (const id of [...this.canisters.keys()]) {
      if (present.has(id)) continue;
      this.canisters.delete(id);
      next = next.withoutCanister(principalBytes(id));
    }
    return next;
  }

  private withStreams(state: CertifiedState, routing: RoutingState): CertifiedState {
    let next = state;
    for (const [subnet, stream] of routing.streams) {
      if (this.streams.get(subnet) === stream) continue;
      this.streams.set(subnet, stream);
      next = next.withStream(subnetBytes(subnet), {
        header: encodeStreamHeader(stream),
        messages: stream.messages.map((m, k) => [stream.begin + BigInt(k), encodedMessage(m)] as const),
      });
    }
    return next;
  }
}

function withStatus(state: CertifiedState, id: HashHex, history: IngressHistory): CertifiedState {
  const status = history.status(id);
  const key = hexToBytes(id);
  return status === undefined ? state.withoutRequestStatus(key) : state.withRequestStatus(key, requestStatusOf(status));
}

function canisterEntry(c: CanisterState): CanisterEntry {
  const controllers = c.controllers.map((p) => principalBytes(p));
  if (c.execution === undefined) return { controllers, certifiedData: c.certifiedData };
  const metadata = metadataOf(c.execution.moduleHash, c.execution.wasmModule).map((s) => [s.name, s.contents] as const);
  return { controllers, certifiedData: c.certifiedData, moduleHash: hexToBytes(c.execution.moduleHash), metadata };
}

/**
 * /canister/<id>/metadata/<name>: the module's icp:public and icp:private custom sections (the
 * HTTP interface serves the private ones to controllers only). A pure function of the module,
 * kept per module hash.
 */
export const metadataOf: (moduleHash: HashHex, wasmModule: Uint8Array) => readonly IcpCustomSection[] = (() => {
  const known = new Map<HashHex, readonly IcpCustomSection[]>();
  return (moduleHash, wasmModule) => {
    let sections = known.get(moduleHash);
    if (sections === undefined) {
      // One entry per name (a module naming a section twice keeps the first; the IC refuses such modules).
      const names = new Set<string>();
      sections = icpCustomSections(uncompressedModule(wasmModule)).filter((x) => !names.has(x.name) && names.add(x.name) !== undefined);
      if (known.size >= 256) known.delete(known.keys().next().value as HashHex);
      known.set(moduleHash, sections);
    }
    return sections;
  };
})();

function sameCertifiedFields(a: CanisterState, b: CanisterState): boolean {
  return (
    a.execution?.moduleHash === b.execution?.moduleHash &&
    bytesToHex(a.certifiedData) === bytesToHex(b.certifiedData) &&
    a.controllers.length === b.controllers.length &&
    a.controllers.every((p, i) => p === b.controllers[i])
  );
}

/** A short fingerprint of a certified state's root (traces, reports). */
export const rootHex = (state: CertifiedState): HashHex => bytesToHex(state.rootHash()) as HashHex;
