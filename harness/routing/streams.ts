// Subnet-to-subnet streams (ic-protocol.md §3.3) as part of a subnet's replicated state:
//
// - the stream builder appends every request or response addressed to another subnet to the
//   stream for that subnet, one index per message, in the order execution produced them (that
//   keeps requests of one (sender, receiver) pair in order across subnets);
// - the destination's block makers pull certified slices of the stream (harness/routing/xnet.ts);
//   the destination inducts message `i` only when `i` is its stream's `signalsEnd` (every index
//   exactly once, in order), then advances `signalsEnd`;
// - the destination's signals travel back in the header of its own stream to the source, whose
//   induction of that header garbage-collects the acknowledged messages.
//
// Requests that cannot be delivered are answered, never dropped: no route or no such canister →
// reject 3 (DESTINATION_INVALID); a full input queue or a full stream → reject 2 (SYS_TRANSIENT).
// Responses are never refused for lack of space (the IC reserves their slot with the request);
// a response to a canister that no longer exists is dropped.
//
// Best-effort messages carry their deadline across (the callee's ic0.msg_deadline, the caller's
// expiry: harness/execution/deadlines.ts); a stream never drops one for being late.
//
// Not modelled: output queues (a message that does not fit a stream is rejected instead of
// waiting), reject signals for migrating canisters, load shedding of best-effort messages.
import { assert } from "../assert.ts";
import { MANAGEMENT_CANISTER, RejectCode, type CallbackId, type CanisterId, type CanisterMessage, type CanisterStatus, type OutgoingCall, type OutgoingResponse, type PrincipalText, type Response } from "../execution/interfaces.ts";
import { canisterNotFound, canisterNotRunningAtInduction } from "../execution/reject-codes.ts";
import type { InductedMessage } from "../execution/round.ts";
import { ByteReader, ByteWriter } from "../state/encoding.ts";
import type { Registry, SubnetId } from "./registry.ts";

export type StreamMessage =
  | {
      readonly kind: "request";
      readonly from: CanisterId;
      readonly to: CanisterId;
      readonly callerCallbackId: CallbackId;
      readonly method: string;
      readonly arg: Uint8Array;
      readonly cycles: bigint;
      /** A best-effort call's deadline (ns); absent for a guaranteed-response call. */
      readonly deadlineNs?: bigint;
    }
  | {
      readonly kind: "response";
      readonly from: CanisterId;
      readonly to: CanisterId;
      readonly callbackId: CallbackId;
      readonly response: Response;
      readonly refundedCycles: bigint;
      /** The answered call's deadline when it was a best-effort call. */
      readonly deadlineNs?: bigint;
    };

export interface Stream {
  /** Index of the first message still held; everything below was acknowledged by the peer. */
  readonly begin: bigint;
  readonly messages: readonly StreamMessage[];
  /** Our signals for the peer's stream to us: every index below this one was inducted here. */
  readonly signalsEnd: bigint;
}

export const streamEnd = (s: Stream): bigint => s.begin + BigInt(s.messages.length);

/** A call to the management canister waiting in the subnet queue (executed before the next round). */
export interface SubnetCall {
  readonly origin:
    | { readonly kind: "ingress"; readonly messageId: string; readonly caller: PrincipalText }
    | { readonly kind: "canister"; readonly caller: CanisterId; readonly callbackId: CallbackId };
  readonly method: string;
  readonly arg: Uint8Array;
  readonly cycles: bigint;
}

export interface RoutingState {
  /** Outgoing streams by destination subnet, sorted by subnet id. */
  readonly streams: readonly (readonly [SubnetId, Stream])[];
  readonly subnetQueue: readonly SubnetCall[];
  /**
   * Responses for canisters on this subnet produced outside the round (rejects for calls that
   * could not be routed, management canister answers): the IC's loopback stream. Inducted at the
   * start of the next round.
   */
  readonly loopback: readonly InductedMessage[];
}

/** IC limits (rs/config message_routing.rs, queues.rs): messages per stream, requests per input queue. */
export const MAX_STREAM_MESSAGES = 10_000;
export const INPUT_QUEUE_CAPACITY = 500;
/** Messages per XNet slice (the IC's block makers also bound a slice by bytes). */
export const MAX_SLICE_MESSAGES = 1_000;

export const EMPTY_STREAM: Stream = { begin: 0n, messages: [], signalsEnd: 0n };
export const emptyRoutingState = (): RoutingState => ({ streams: [], subnetQueue: [], loopback: [] });

export function streamTo(state: RoutingState, subnet: SubnetId): Stream {
  return state.streams.find(([id]) => id === subnet)?.[1] ?? EMPTY_STREAM;
}

/** A slice of a stream as the destination receives it (decoded from a certified witness). */
export interface StreamSlice {
  readonly source: SubnetId;
  readonly destination: SubnetId;
  /** The source's stream header when it was certified. */
  readonly header: { readonly begin: bigint; readonly end: bigint; readonly signalsEnd: bigint };
  /** Consecutive messages starting at `firstIndex` (may be empty: a header-only slice carries signals). */
  readonly firstIndex: bigint;
  readonly messages: readonly StreamMessage[];
}

/** What induction needs to know about the receiving subnet's canisters. */
export interface InductionHost {
  hasCanister(id: CanisterId): boolean;
  /** A hosted canister's status (requests to a stopped or stopping one are refused); running when absent. */
  statusOf?(id: CanisterId): CanisterStatus | undefined;
  /** Requests from `from` already waiting in `to`'s input queue. */
  queuedRequests(to: CanisterId, from: CanisterId): number;
}

/**
 * A known bug switched on in the inductor, for tests only (like ConsensusConfig.canary): the
 * stream check (harness/checks/streams.ts) must catch it on the first run that reaches `index`.
 * `skip-index` advances the signals past the message without inducting it (the message is lost);
 * `double-induct` inducts the message twice.
 */
export interface InductionCanary {
  readonly bug: "skip-index" | "double-induct";
  readonly index: bigint;
}

export interface InductionResult {
  readonly state: RoutingState;
  readonly inducted: readonly InductedMessage[];
  /**
   * The stream index of every message this induction took from the slice (inducted, or answered
   * with a reject, or a response dropped), in order; the stream check's observation.
   */
  readonly indices: readonly bigint[];
  /** Messages skipped as already inducted, reject responses generated, responses dropped. */
  readonly skipped: number;
  readonly rejected: number;
  readonly dropped: number;
  /** Messages garbage-collected from our stream to the slice's source. */
  readonly collected: number;
}

class StreamEditor {
  private readonly streams: Map<SubnetId, Stream>;
  constructor(state: RoutingState) {
    this.streams = new Map(state.streams);
  }
  get(subnet: SubnetId): Stream {
    return this.streams.get(subnet) ?? EMPTY_STREAM;
  }
  set(subnet: SubnetId, stream: Stream): void {
    this.streams.set(subnet, stream);
  }
  push(subnet: SubnetId, message: StreamMessage): void {
    const s = this.get(subnet);
    this.set(subnet, { ...s, messages: [...s.messages, message] });
  }
  result(rest: Omit<RoutingState, "streams">): RoutingState {
    return { ...rest, streams: [...this.streams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
  }
}

/**
 * Inducts one slice from `slice.source` (Demux, ic-protocol.md §3.1): garbage-collects our stream
 * to the source up to its signals, then inducts the messages at our `signalsEnd` in order.
 * Messages below it are duplicates (an older slice already delivered them); a gap stops induction.
 */
export function inductSlice(state: RoutingState, slice: StreamSlice, host: InductionHost, canary?: InductionCanary): InductionResult {
  const streams = new StreamEditor(state);
  const back = streams.get(slice.source);
  // Garbage collection: the peer inducted everything below its signalsEnd.
  const acknowledged = minBig(slice.header.signalsEnd, streamEnd(back));
  const collected = acknowledged > back.begin ? Number(acknowledged - back.begin) : 0;
  let signalsEnd = back.signalsEnd;
  const replies: StreamMessage[] = [];
  const inducted: InductedMessage[] = [];
  const indices: bigint[] = [];
  let skipped = 0;
  let rejected = 0;
  let dropped = 0;
  const queued = new Map<string, number>();
  const take = (message: StreamMessage, index: bigint): void => {
    indices.push(index);
    if (message.kind === "response") {
      if (host.hasCanister(message.to)) inducted.push({ canister: message.to, message: responseMessage(message) });
      else dropped++;
      return;
    }
    const refusal = refuseRequest(message, host, queued);
    if (refusal === undefined) {
      inducted.push({ canister: message.to, message: requestMessage(message) });
      return;
    }
    rejected++;
    replies.push(rejectFor(message, refusal.code, refusal.message));
  };
  slice.messages.forEach((message, offset) => {
    const index = slice.firstIndex + BigInt(offset);
    if (index < signalsEnd) {
      skipped++;
      return;
    }
    if (index > signalsEnd) return; // gap: a later slice will bring the missing messages first
    signalsEnd++;
    if (canary?.index === index && canary.bug === "skip-index") return;
    take(message, index);
    if (canary?.index === index && canary.bug === "double-induct") take(message, index);
  });
  streams.set(slice.source, {
    begin: back.begin + BigInt(collected),
    messages: [...back.messages.slice(collected), ...replies],
    signalsEnd,
  });
  return { state: streams.result(state), inducted, indices, skipped, rejected, dropped, collected };
}

function refuseRequest(
  message: Extract<StreamMessage, { kind: "request" }>,
  host: InductionHost,
  queued: Map<string, number>,
): { code: RejectCode; message: string } | undefined {
  // The IC's push_input refusals, told as StateError's display (rs/replicated_state replicated_state.rs).
  if (!host.hasCanister(message.to)) return { code: RejectCode.DestinationInvalid, message: canisterNotFound(message.to).description };
  const status = host.statusOf?.(message.to) ?? "running";
  if (status !== "running") {
    const refusal = canisterNotRunningAtInduction(message.to, status);
    return { code: RejectCode.CanisterError, message: refusal.description };
  }
  const pair = `${message.to}|${message.from}`;
  const waiting = (queued.get(pair) ?? host.queuedRequests(message.to, message.from)) + 1;
  if (waiting > INPUT_QUEUE_CAPACITY) return { code: RejectCode.SysTransient, message: `Maximum queue capacity ${INPUT_QUEUE_CAPACITY} reached` };
  queued.set(pair, waiting);
  return undefined;
}

export interface StreamBuildResult {
  readonly state: RoutingState;
  readonly pushed: number;
  /** Calls answered with a reject here (no route, no such canister, stream full). */
  readonly rejectedLocally: number;
}

/**
 * The stream builder (ic-protocol.md §3.3): routes the round's calls and responses for canisters
 * not on this subnet. Calls to the management canister join the subnet queue.
 */
export function buildStreams(
  state: RoutingState,
  self: SubnetId,
  registry: Registry,
  calls: readonly { readonly from: CanisterId; readonly call: OutgoingCall }[],
  responses: readonly { readonly from: CanisterId; readonly response: OutgoingResponse }[],
): StreamBuildResult {
  const streams = new StreamEditor(state);
  const subnetQueue = [...state.subnetQueue];
  const loopback = [...state.loopback];
  let pushed = 0;
  const rejectLocally = (from: CanisterId, call: OutgoingCall, code: RejectCode, text: string): void => {
    loopback.push({ canister: from, message: { kind: "response", callbackId: call.callbackId, response: { kind: "reject", code, message: text }, refundedCycles: call.cycles } });
  };
  for (const { from, call } of calls) {
    if (call.callee === (MANAGEMENT_CANISTER as string)) {
      subnetQueue.push({ origin: { kind: "canister", caller: from, callbackId: call.callbackId }, method: call.method, arg: call.arg, cycles: call.cycles });
      continue;
    }
    const destination = registry.route(call.callee);
    if (destination === undefined) {
      rejectLocally(from, call, RejectCode.DestinationInvalid, `No route to canister ${call.callee}`);
      continue;
    }
    if (destination.id === self) {
      rejectLocally(from, call, RejectCode.DestinationInvalid, canisterNotFound(call.callee).description);
      continue;
    }
    if (streams.get(destination.id).messages.length >= MAX_STREAM_MESSAGES) {
      rejectLocally(from, call, RejectCode.SysTransient, `The stream to subnet ${destination.name} is full (${MAX_STREAM_MESSAGES} messages)`);
      continue;
    }
    streams.push(destination.id, { kind: "request", from, to: call.callee, callerCallbackId: call.callbackId, method: call.method, arg: call.arg, cycles: call.cycles, ...deadlineOf(call) });
    pushed++;
  }
  for (const { from, response } of responses) {
    if (response.origin.kind !== "canister") continue;
    const destination = registry.route(response.origin.caller);
    if (destination === undefined || destination.id === self) continue; // the caller is gone: dropped
    streams.push(destination.id, { kind: "response", from, to: response.origin.caller, callbackId: response.origin.callbackId, response: response.response, refundedCycles: response.refundedCycles, ...deadlineOf(response.origin) });
    pushed++;
  }
  return { state: streams.result({ subnetQueue, loopback }), pushed, rejectedLocally: loopback.length - state.loopback.length };
}

/** Takes the subnet queue and the loopback responses (both are handled before the next round). */
export function takeLocalWork(state: RoutingState): { state: RoutingState; calls: readonly SubnetCall[]; loopback: readonly InductedMessage[] } {
  return { state: { ...state, subnetQueue: [], loopback: [] }, calls: state.subnetQueue, loopback: state.loopback };
}

export function withLoopback(state: RoutingState, messages: readonly InductedMessage[]): RoutingState {
  return messages.length === 0 ? state : { ...state, loopback: [...state.loopback, ...messages] };
}

export function withSubnetCall(state: RoutingState, call: SubnetCall): RoutingState {
  return { ...state, subnetQueue: [...state.subnetQueue, call] };
}

/** The slice of our stream to `destination` from `fromIndex` on (at most `max` messages). */
export function sliceOf(state: RoutingState, self: SubnetId, destination: SubnetId, fromIndex: bigint, max = MAX_SLICE_MESSAGES): StreamSlice {
  const s = streamTo(state, destination);
  const first = maxBig(fromIndex, s.begin);
  const offset = first > streamEnd(s) ? s.messages.length : Number(first - s.begin);
  return {
    source: self,
    destination,
    header: { begin: s.begin, end: streamEnd(s), signalsEnd: s.signalsEnd },
    firstIndex: first > streamEnd(s) ? streamEnd(s) : first,
    messages: s.messages.slice(offset, offset + max),
  };
}

// ---- conversions ---------------------------------------------------------------------------------

/** `{ deadlineNs }` of a best-effort message, `{}` of a guaranteed one (absent fields stay absent). */
function deadlineOf(m: { readonly deadlineNs?: bigint }): { deadlineNs?: bigint } {
  return m.deadlineNs === undefined ? {} : { deadlineNs: m.deadlineNs };
}

function requestMessage(m: Extract<StreamMessage, { kind: "request" }>): CanisterMessage {
  return { kind: "request", caller: m.from, callerCallbackId: m.callerCallbackId, method: m.method, arg: m.arg, cycles: m.cycles, ...deadlineOf(m) };
}

function responseMessage(m: Extract<StreamMessage, { kind: "response" }>): CanisterMessage {
  return { kind: "response", callbackId: m.callbackId, response: m.response, refundedCycles: m.refundedCycles, ...deadlineOf(m) };
}

function rejectFor(m: Extract<StreamMessage, { kind: "request" }>, code: RejectCode, message: string): StreamMessage {
  return { kind: "response", from: m.to, to: m.from, callbackId: m.callerCallbackId, response: { kind: "reject", code, message }, refundedCycles: m.cycles, ...deadlineOf(m) };
}

const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

// ---- canonical encoding (state hash, checkpoints, certified /streams values) ------------------------

export function encodeStreamMessage(m: StreamMessage): Uint8Array {
  const w = new ByteWriter();
  writeStreamMessage(w, m);
  return w.finish();
}

export function decodeStreamMessage(bytes: Uint8Array): StreamMessage {
  const r = new ByteReader(bytes);
  const m = readStreamMessage(r);
  r.expectDone("stream message");
  return m;
}

/** The certified `/streams/<subnet>/header` value: begin, end, signals_end. */
export function encodeStreamHeader(s: Stream): Uint8Array {
  return new ByteWriter().u64(s.begin).u64(streamEnd(s)).u64(s.signalsEnd).finish();
}

export function decodeStreamHeader(bytes: Uint8Array): StreamSlice["header"] {
  const r = new ByteReader(bytes);
  const header = { begin: r.u64(), end: r.u64(), signalsEnd: r.u64() };
  r.expectDone("stream header");
  assert(header.begin <= header.end, "stream header with begin > end");
  return header;
}

// Tags: 0 request, 1 response; 2 and 3 the same followed by a best-effort deadline (guaranteed
// messages keep the bytes they had before best-effort calls existed).
function writeStreamMessage(w: ByteWriter, m: StreamMessage): void {
  if (m.kind === "request") {
    w.u8(m.deadlineNs === undefined ? 0 : 2).str(m.from).str(m.to).u64(m.callerCallbackId).str(m.method).bytes(m.arg).nat(m.cycles);
  } else {
    w.u8(m.deadlineNs === undefined ? 1 : 3).str(m.from).str(m.to).u64(m.callbackId).nat(m.refundedCycles);
    writeResponse(w, m.response);
  }
  if (m.deadlineNs !== undefined) w.u64(m.deadlineNs);
}

function writeResponse(w: ByteWriter, response: Response): void {
  if (response.kind === "reply") w.u8(0).bytes(response.data);
  else w.u8(1).u8(response.code).str(response.message);
}

function readResponse(r: ByteReader): Response {
  return r.u8() === 0 ? { kind: "reply", data: r.bytes() } : { kind: "reject", code: r.u8() as RejectCode, message: r.str() };
}

function readStreamMessage(r: ByteReader): StreamMessage {
  const tag = r.u8();
  assert(tag <= 3, `invalid stream message tag ${tag}`);
  const bestEffort = tag >= 2;
  let m: StreamMessage;
  if (tag === 0 || tag === 2) {
    m = { kind: "request", from: r.str() as CanisterId, to: r.str() as CanisterId, callerCallbackId: r.u64() as CallbackId, method: r.str(), arg: r.bytes(), cycles: r.nat() };
  } else {
    const from = r.str() as CanisterId;
    const to = r.str() as CanisterId;
    const callbackId = r.u64() as CallbackId;
    const refundedCycles = r.nat();
    m = { kind: "response", from, to, callbackId, response: readResponse(r), refundedCycles };
  }
  return bestEffort ? { ...m, deadlineNs: r.u64() } : m;
}

function writeSubnetCall(w: ByteWriter, c: SubnetCall): void {
  if (c.origin.kind === "ingress") w.u8(0).str(c.origin.messageId).str(c.origin.caller);
  else w.u8(1).str(c.origin.caller).u64(c.origin.callbackId);
  w.str(c.method).bytes(c.arg).nat(c.cycles);
}

function readSubnetCall(r: ByteReader): SubnetCall {
  const origin: SubnetCall["origin"] =
    r.u8() === 0 ? { kind: "ingress", messageId: r.str(), caller: r.str() as PrincipalText } : { kind: "canister", caller: r.str() as CanisterId, callbackId: r.u64() as CallbackId };
  return { origin, method: r.str(), arg: r.bytes(), cycles: r.nat() };
}

/** Canonical bytes of the routing state (part of the subnet's state hash and checkpoints). */
export function encodeRoutingState(state: RoutingState): Uint8Array {
  const w = new ByteWriter().domain("subnetlab-routing-v1");
  w.u32(state.streams.length);
  for (const [subnet, s] of state.streams) {
    w.str(subnet).u64(s.begin).u64(s.signalsEnd).u32(s.messages.length);
    for (const m of s.messages) writeStreamMessage(w, m);
  }
  w.u32(state.subnetQueue.length);
  for (const c of state.subnetQueue) writeSubnetCall(w, c);
  w.u32(state.loopback.length);
  for (const m of state.loopback) {
    assert(m.message.kind === "response", "only responses travel on the loopback stream");
    w.str(m.canister).u64(m.message.callbackId).nat(m.message.refundedCycles);
    writeResponse(w, m.message.response);
  }
  return w.finish();
}

export function decodeRoutingState(bytes: Uint8Array): RoutingState {
  const r = new ByteReader(bytes);
  const domain = new TextDecoder().decode(r.raw(r.u8()));
  assert(domain === "subnetlab-routing-v1", `unknown routing state encoding ${domain}`);
  const streams: [SubnetId, Stream][] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const subnet = r.str() as SubnetId;
    const begin = r.u64();
    const signalsEnd = r.u64();
    const messages: StreamMessage[] = [];
    for (let k = r.u32(), j = 0; j < k; j++) messages.push(readStreamMessage(r));
    streams.push([subnet, { begin, messages, signalsEnd }]);
  }
  const subnetQueue: SubnetCall[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) subnetQueue.push(readSubnetCall(r));
  const loopback: InductedMessage[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const canister = r.str() as CanisterId;
    const callbackId = r.u64() as CallbackId;
    const refundedCycles = r.nat();
    loopback.push({ canister, message: { kind: "response", callbackId, refundedCycles, response: readResponse(r) } });
  }
  r.expectDone("routing state");
  return { streams, subnetQueue, loopback };
}
