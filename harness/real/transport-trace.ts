// A replica process's transport counters as trace records (real mode): every few seconds one
// `transport.stats` record per peer with what changed since the last one, so a run directory shows
// where frames went — sent, received, dropped from a full queue, expired in it — next to the
// replica's own events (what a slow catch-up is diagnosed from).
import type { TraceEvent } from "../sim/env.ts";
import type { PeerStats, TcpTransport } from "./tcp-transport.ts";

export const TRANSPORT_TRACE_INTERVAL_MS = 5000;

type Counted = Pick<PeerStats, "sentFrames" | "receivedFrames" | "droppedFrames" | "expiredFrames">;

/** Traces the transport's counters every `intervalMs`; returns the function that stops it. */
export function traceTransportStats(transport: TcpTransport, trace: (event: TraceEvent) => void, intervalMs = TRANSPORT_TRACE_INTERVAL_MS): () => void {
  let last = new Map<number, Counted>();
  const timer = setInterval(() => {
    const next = new Map<number, Counted>();
    for (const peer of transport.stats().peers) {
      const before = last.get(peer.id);
      next.set(peer.id, peer);
      trace({
        kind: "transport.stats",
        detail: {
          peer: peer.id,
          connected: peer.connected,
          queued: peer.queuedFrames,
          sent: peer.sentFrames - (before?.sentFrames ?? 0),
          received: peer.receivedFrames - (before?.receivedFrames ?? 0),
          dropped: peer.droppedFrames - (before?.droppedFrames ?? 0),
          expired: peer.expiredFrames - (before?.expiredFrames ?? 0),
        },
      });
    }
    last = next;
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
