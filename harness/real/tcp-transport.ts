// Bytes between replicas over TCP (real mode). Each replica listens on one port and dials each
// peer: one outbound connection per peer carries this replica's frames to it, and the peer's own
// outbound connection carries its frames back — one connection per directed link, so that each
// direction can go through its own Toxiproxy proxy (a peer's address is any host:port, the proxy's
// or the peer's).
//
// On a new connection the dialer sends a hello (its replica id and network name) and the acceptor
// answers with its own; only then does the dialer send frames. The answer proves that the far end
// is the intended peer and alive — a proxy accepts connections even when its upstream is down, and
// frames written into such a connection would be lost.
//
// Frames wait in a bounded queue per peer while the link is down or the socket is busy. When it is
// full the OLDEST frame is dropped (and counted): the replica's gossip is periodic and newer frames
// supersede older ones (status, adverts, shares of later heights), and its retransmission recovers
// whatever was dropped, whereas dropping the newest would keep a peer that comes back fed with the
// stalest traffic first. For the same reason a frame that waited longer than `queueAgeMsMax` is
// dropped instead of sent: a peer back after a long outage (or too slow to read) would otherwise
// spend its first minutes checking signatures of shares and aggregates the subnet is long past,
// while the status exchange that brings it up to date waits behind them.
//
// Failure handling: a dial that fails or a link that breaks is retried after an exponential backoff
// (capped, with jitter drawn from a seeded stream); a connection that sends garbage, an oversize
// frame or a wrong hello is closed and logged once, and nothing else is disturbed. Frames already
// handed to a socket that then breaks are lost (the replica tolerates loss, as in the simulator).
import { createServer, connect, type Server, type Socket } from "node:net";
import { assert } from "../assert.ts";
import type { Rng } from "../sim/rng.ts";
import type { ReplicaId } from "../types.ts";
import { decodeHello, encodeFrame, encodeHello, FRAME_BYTES_LIMIT, frameHeader, FrameReader, HELLO_MAX_BYTES, type Hello } from "./frames.ts";

export type FrameHandler = (from: ReplicaId, bytes: Uint8Array) => void;

export interface PeerAddress {
  readonly id: ReplicaId;
  /**
   * `host:port` (`[::1]:port` for IPv6): the peer itself or a proxy in front of it. Absent when not
   * known yet: frames queue until `setPeerAddress` names it.
   */
  readonly address?: string;
}

export interface TcpTransportOptions {
  readonly self: ReplicaId;
  /** Both ends of a link must name the same network (e.g. the subnet id), or the link is refused. */
  readonly network?: string;
  readonly listenHost?: string;
  /** 0 picks a free port (see `start()`). */
  readonly listenPort: number;
  readonly peers: readonly PeerAddress[];
  /** Draws the backoff jitter. */
  readonly rng: Rng;
  readonly onFrame?: FrameHandler;
  readonly maxFrameBytes?: number;
  readonly queueFramesMax?: number;
  readonly queueBytesMax?: number;
  /** A queued frame older than this is dropped instead of sent. */
  readonly queueAgeMsMax?: number;
  readonly backoffMsInitial?: number;
  readonly backoffMsMax?: number;
  /** A connection that lived this long resets the backoff when it breaks. */
  readonly stableMs?: number;
  /** Time to connect and exchange hellos. */
  readonly handshakeTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface PeerStats {
  readonly id: ReplicaId;
  /** host:port, or undefined while unknown. */
  readonly address: string | undefined;
  readonly connected: boolean;
  readonly queuedFrames: number;
  readonly queuedBytes: number;
  /** Frames dropped from the full queue (the oldest first). */
  readonly droppedFrames: number;
  /** Frames dropped because they waited longer than `queueAgeMsMax`. */
  readonly expiredFrames: number;
  /** Frames handed to the socket. */
  readonly sentFrames: number;
  /** Frames received from this peer (on its connections to us). */
  readonly receivedFrames: number;
  /** Handshakes completed on the outbound link. */
  readonly connects: number;
}

export interface TransportStats {
  readonly peers: readonly PeerStats[];
  /** Inbound and outbound connections closed for garbage, oversize frames or a wrong hello. */
  readonly badConnections: number;
}

export const DEFAULTS = {
  network: "subnetlab",
  listenHost: "127.0.0.1",
  /** Above the IC's 4 MiB block and 2 MiB ingress limits with room for a bundle around them. */
  maxFrameBytes: 16 << 20,
  queueFramesMax: 4096,
  queueBytesMax: 64 << 20,
  /** A few status intervals: what is older has been superseded (see the header). */
  queueAgeMsMax: 5000,
  backoffMsInitial: 50,
  backoffMsMax: 5000,
  stableMs: 2000,
  /** Generous: a loaded machine's replica may not run for seconds (see handshakeDeadline). */
  handshakeTimeoutMs: 10_000,
} as const;

type Settings = Required<Omit<TcpTransportOptions, "onFrame" | "log" | "peers" | "rng" | "self">>;

export class TcpTransport {
  private readonly settings: Settings;
  private readonly links = new Map<ReplicaId, OutboundLink>();
  private readonly inbound = new Set<Socket>();
  private readonly received = new Map<ReplicaId, number>();
  private readonly server: Server;
  private handler: FrameHandler | undefined;
  private readonly log: (line: string) => void;
  private started = false;
  private closed = false;
  private badConnections = 0;

  constructor(private readonly options: TcpTransportOptions) {
    this.settings = {
      network: options.network ?? DEFAULTS.network,
      listenHost: options.listenHost ?? DEFAULTS.listenHost,
      listenPort: options.listenPort,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      queueFramesMax: options.queueFramesMax ?? DEFAULTS.queueFramesMax,
      queueBytesMax: options.queueBytesMax ?? DEFAULTS.queueBytesMax,
      queueAgeMsMax: options.queueAgeMsMax ?? DEFAULTS.queueAgeMsMax,
      backoffMsInitial: options.backoffMsInitial ?? DEFAULTS.backoffMsInitial,
      backoffMsMax: options.backoffMsMax ?? DEFAULTS.backoffMsMax,
      stableMs: options.stableMs ?? DEFAULTS.stableMs,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
    };
    checkSettings(this.settings);
    this.handler = options.onFrame;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    for (const peer of options.peers) {
      assert(peer.id !== options.self, `replica ${options.self} lists itself as a peer`);
      assert(!this.links.has(peer.id), `peer ${peer.id} listed twice`);
      this.links.set(peer.id, new OutboundLink(peer.id, peer.address === undefined ? undefined : parseHostPort(peer.address), this.linkContext()));
      this.received.set(peer.id, 0);
    }
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Who receives incoming frames (replaces the `onFrame` option). */
  setFrameHandler(handler: FrameHandler): void {
    this.handler = handler;
  }

  /** Listens and starts dialing every peer; resolves with the port listened on. */
  async start(): Promise<number> {
    assert(!this.started && !this.closed, "TcpTransport started twice");
    this.started = true;
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.settings.listenPort, this.settings.listenHost, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.server.on("error", (error) => this.log(`transport r${this.options.self}: listener error: ${error.message}`));
    for (const link of this.links.values()) link.start();
    const address = this.server.address();
    assert(address !== null && typeof address === "object", "server has no TCP address");
    return address.port;
  }

  /**
   * Queues `bytes` as one frame to `to`. The transport keeps the array until it is written: do not
   * change it afterwards. Throws on an unknown peer or a frame above the maximum.
   */
  send(to: ReplicaId, bytes: Uint8Array): void {
    assert(!this.closed, "send on a closed TcpTransport");
    if (bytes.length > this.settings.maxFrameBytes) throw new RangeError(`frame of ${bytes.length} bytes to r${to} exceeds the maximum of ${this.settings.maxFrameBytes} (maxFrameBytes)`);
    const link = this.links.get(to);
    if (link === undefined) throw new RangeError(`r${this.options.self} has no peer r${to}`);
    link.enqueue(bytes);
  }

  /** Points a peer's link at a new address (e.g. a proxy): the current connection is dropped and the new address dialed at once. */
  setPeerAddress(id: ReplicaId, address: string): void {
    const link = this.links.get(id);
    if (link === undefined) throw new RangeError(`r${this.options.self} has no peer r${id}`);
    link.retarget(parseHostPort(address));
  }

  stats(): TransportStats {
    return {
      peers: [...this.links.values()].sort((a, b) => a.id - b.id).map((link) => ({ ...link.stats(), receivedFrames: this.received.get(link.id) ?? 0 })),
      badConnections: this.badConnections,
    };
  }

  /** Stops listening, drops every connection and every queued frame. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links.values()) link.close();
    for (const socket of this.inbound) socket.destroy();
    if (this.started) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private linkContext(): LinkContext {
    return {
      self: { replica: this.options.self, network: this.settings.network },
      settings: this.settings,
      rng: this.options.rng,
      log: (line) => this.log(`transport r${this.options.self}: ${line}`),
      bad: () => this.badConnections++,
    };
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    const where = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
    const reader = new FrameReader(this.settings.maxFrameBytes, HELLO_MAX_BYTES);
    let from: ReplicaId | undefined;
    const refuse = (reason: string): void => {
      this.badConnections++;
      this.log(`transport r${this.options.self}: closing inbound connection from ${from === undefined ? where : `r${from} (${where})`}: ${reason}`);
      socket.destroy();
    };
    const timer = handshakeDeadline(this.settings.handshakeTimeoutMs, () => refuse("no hello in time"));
    socket.on("data", (chunk: Buffer) => {
      if (socket.destroyed) return;
      const read = reader.push(chunk);
      for (const frame of read.frames) {
        if (socket.destroyed) return;
        if (from === undefined) {
          const problem = this.checkHello(frame);
          if (typeof problem === "string") return refuse(problem);
          timer.cancel();
          from = problem.replica;
          socket.write(encodeFrame(encodeHello({ replica: this.options.self, network: this.settings.network })));
          continue;
        }
        this.received.set(from, (this.received.get(from) ?? 0) + 1);
        this.handler?.(from, frame);
      }
      if (!read.ok) refuse(read.reason);
    });
    // Resets and other socket errors end only this connection; 'close' follows.
    socket.on("error", () => undefined);
    socket.on("close", () => {
      timer.cancel();
      this.inbound.delete(socket);
    });
  }

  /** The peer's hello, or why it is refused. */
  private checkHello(frame: Uint8Array): Hello | string {
    const read = decodeHello(frame);
    if (!read.ok) return read.reason;
    if (read.hello.network !== this.settings.network) return `hello from network ${JSON.stringify(read.hello.network)}, this is ${JSON.stringify(this.settings.network)}`;
    if (!this.links.has(read.hello.replica)) return `hello from r${read.hello.replica}, which is not a peer`;
    return read.hello;
  }
}

function checkSettings(s: Settings): void {
  const positive = (name: keyof Settings, value: number): void => assert(Number.isInteger(value) && value > 0, `TcpTransport: ${name} must be a positive integer, got ${value}`);
  positive("maxFrameBytes", s.maxFrameBytes);
  positive("queueFramesMax", s.queueFramesMax);
  positive("queueBytesMax", s.queueBytesMax);
  positive("queueAgeMsMax", s.queueAgeMsMax);
  positive("backoffMsInitial", s.backoffMsInitial);
  positive("backoffMsMax", s.backoffMsMax);
  positive("handshakeTimeoutMs", s.handshakeTimeoutMs);
  assert(Number.isInteger(s.stableMs) && s.stableMs >= 0, `TcpTransport: stableMs must be a non-negative integer, got ${s.stableMs}`);
  assert(Number.isInteger(s.listenPort) && s.listenPort >= 0 && s.listenPort <= 65535, `TcpTransport: listenPort ${s.listenPort} out of range`);
  assert(s.maxFrameBytes <= FRAME_BYTES_LIMIT, `TcpTransport: maxFrameBytes ${s.maxFrameBytes} exceeds the u32 length prefix`);
  assert(s.maxFrameBytes <= s.queueBytesMax, `TcpTransport: maxFrameBytes ${s.maxFrameBytes} exceeds queueBytesMax ${s.queueBytesMax}: a largest frame could never be queued`);
  assert(s.backoffMsInitial <= s.backoffMsMax, `TcpTransport: backoffMsInitial ${s.backoffMsInitial} exceeds backoffMsMax ${s.backoffMsMax}`);
}

/**
 * A handshake's deadline. Its verdict waits one more turn of the event loop (setImmediate): after
 * the loop was blocked — a replica busy checking signatures for seconds on a loaded machine — an
 * expired timer runs before the I/O that arrived meanwhile, and would refuse a hello that came in
 * time; links to a busy replica then never came up.
 */
export function handshakeDeadline(timeoutMs: number, expire: () => void): { cancel(): void } {
  let cancelled = false;
  const timer = setTimeout(() => setImmediate(() => {
    if (!cancelled) expire();
  }), timeoutMs);
  return {
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `host:port` or `[v6]:port`; throws with the offending text otherwise. */
export function parseHostPort(address: string): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (match === null || !(port >= 1 && port <= 65535)) throw new RangeError(`peer address ${JSON.stringify(address)} is not host:port (port 1-65535; IPv6 as [addr]:port)`);
  return { host: match[1] ?? match[2]!, port };
}

export const formatHostPort = (target: HostPort): string => `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;

/**
 * The wait before dial number `attempt` + 1 after a failure: the step doubles from
 * `backoffMsInitial` up to `backoffMsMax`, and the wait is the step's upper half plus a draw from its
 * lower half ("equal jitter"), so peers that failed together do not retry in lockstep.
 */
export function backoffMs(attempt: number, settings: { readonly backoffMsInitial: number; readonly backoffMsMax: number }, rng: Rng): number {
  const step = Math.min(settings.backoffMsMax, settings.backoffMsInitial * 2 ** Math.min(attempt, 30));
  const half = Math.floor(step / 2);
  return step - half + rng.below(half + 1);
}

interface LinkContext {
  readonly self: Hello;
  readonly settings: Settings;
  readonly rng: Rng;
  readonly log: (line: string) => void;
  readonly bad: () => void;
}

type LinkState = "idle" | "handshake" | "open" | "closed";

/** This replica's frames to one peer: the queue, the connection and its retries. */
class OutboundLink {
  private state: LinkState = "idle";
  private socket: Socket | undefined;
  private readonly queue: QueuedFrame[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private blocked = false;
  private attempt = 0;
  private openedAtMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  /** Logged that the peer is unreachable; the next successful connect says so again. */
  private reportedDown = false;
  private dropped = 0;
  private expired = 0;
  private sent = 0;
  private connects = 0;

  constructor(
    readonly id: ReplicaId,
    private target: HostPort | undefined,
    private readonly ctx: LinkContext,
  ) {}

  start(): void {
    this.started = true;
    if (this.target !== undefined) this.dial();
  }

  enqueue(bytes: Uint8Array): void {
    const s = this.ctx.settings;
    while (this.queueLength() >= s.queueFramesMax || this.queuedBytes + bytes.length > s.queueBytesMax) {
      this.shift();
      this.dropped++;
    }
    this.queue.push({ bytes, queuedAtMs: performance.now() });
    this.queuedBytes += bytes.length;
    this.flush();
  }

  private dial(): void {
    const target = this.target;
    if (this.state === "closed" || target === undefined) return;
    this.timer = undefined;
    this.state = "handshake";
    const socket = connect({ host: target.host, port: target.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    const reader = new FrameReader(HELLO_MAX_BYTES);
    const deadline = handshakeDeadline(this.ctx.settings.handshakeTimeoutMs, () => this.fail(socket, "no hello answer in time", false));
    socket.on("connect", () => socket.write(encodeFrame(encodeHello(this.ctx.self))));
    socket.on("data", (chunk: Buffer) => {
      if (socket !== this.socket) return;
      // The acceptor says one thing, its hello, and nothing after it.
      if (this.state === "open") return this.fail(socket, "sent data after its hello", true);
      const read = reader.push(chunk);
      const frame = read.frames[0];
      if (frame !== undefined && (read.frames.length > 1 || reader.pendingBytes > 0 || !read.ok)) return this.fail(socket, "sent data after its hello", true);
      if (!read.ok) return this.fail(socket, read.reason, true);
      if (frame === undefined) return;
      const hello = decodeHello(frame);
      if (!hello.ok) return this.fail(socket, hello.reason, true);
      if (hello.hello.replica !== this.id || hello.hello.network !== this.ctx.self.network) {
        return this.fail(socket, `answered as r${hello.hello.replica} of ${JSON.stringify(hello.hello.network)}, expected r${this.id} of ${JSON.stringify(this.ctx.self.network)}`, true);
      }
      deadline.cancel();
      this.opened();
    });
    socket.on("drain", () => {
      this.blocked = false;
      this.flush();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => this.fail(socket, error.code ?? error.message, false));
    socket.on("close", () => {
      deadline.cancel();
      this.fail(socket, "connection closed", false);
    });
  }

  retarget(target: HostPort): void {
    if (this.state === "closed") return;
    this.target = target;
    if (this.socket !== undefined) this.fail(this.socket, "address changed", false);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.attempt = 0;
    if (this.started) this.dial();
  }

  close(): void {
    this.state = "closed";
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = undefined;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
  }

  stats(): Omit<PeerStats, "receivedFrames"> {
    return {
      id: this.id,
      address: this.target === undefined ? undefined : formatHostPort(this.target),
      connected: this.state === "open",
      queuedFrames: this.queueLength(),
      queuedBytes: this.queuedBytes,
      droppedFrames: this.dropped,
      expiredFrames: this.expired,
      sentFrames: this.sent,
      connects: this.connects,
    };
  }

  private opened(): void {
    this.state = "open";
    this.openedAtMs = performance.now();
    this.connects++;
    if (this.reportedDown) this.ctx.log(`r${this.id} at ${this.stats().address} reachable again`);
    this.reportedDown = false;
    this.blocked = false;
    this.flush();
  }

  /** Ends the current connection (once) and schedules the next dial. */
  private fail(socket: Socket, reason: string, garbage: boolean): void {
    if (socket !== this.socket || this.state === "closed") return;
    this.socket = undefined;
    socket.destroy();
    if (garbage) {
      this.ctx.bad();
      this.ctx.log(`closing the link to r${this.id} at ${this.stats().address}: ${reason}`);
    } else if (!this.reportedDown) {
      this.ctx.log(`r${this.id} at ${this.stats().address} unreachable (${reason}); retrying with backoff`);
    }
    this.reportedDown = true;
    if (this.state === "open" && performance.now() - this.openedAtMs >= this.ctx.settings.stableMs) this.attempt = 0;
    this.state = "idle";
    this.timer = setTimeout(() => this.dial(), this.backoffMs());
  }

  private backoffMs(): number {
    return backoffMs(this.attempt++, this.ctx.settings, this.ctx.rng);
  }

  private flush(): void {
    const socket = this.socket;
    if (this.state !== "open" || socket === undefined) return;
    const oldestMs = performance.now() - this.ctx.settings.queueAgeMsMax;
    while (!this.blocked && this.queueLength() > 0) {
      const { bytes: frame, queuedAtMs } = this.shift();
      if (queuedAtMs < oldestMs) {
        this.expired++;
        continue;
      }
      socket.cork();
      socket.write(frameHeader(frame.length));
      const more = socket.write(frame);
      socket.uncork();
      this.sent++;
      if (!more) this.blocked = true;
    }
  }

  private queueLength(): number {
    return this.queue.length - this.queueHead;
  }

  private shift(): QueuedFrame {
    const queued = this.queue[this.queueHead];
    assert(queued !== undefined, "shift from an empty queue");
    this.queue[this.queueHead] = EMPTY;
    this.queueHead++;
    this.queuedBytes -= queued.bytes.length;
    // Compact once the consumed head is most of the array.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    return queued;
  }
}

interface QueuedFrame {
  readonly bytes: Uint8Array;
  /** performance.now() when it was queued. */
  readonly queuedAtMs: number;
}

const EMPTY: QueuedFrame = { bytes: new Uint8Array(0), queuedAtMs: 0 };
