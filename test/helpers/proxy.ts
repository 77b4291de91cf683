/**
 * A TCP proxy between a client and the broker that can misbehave on request, for fault tests:
 * reset a connection mid-frame, swallow everything (a network partition), add latency,
 * re-chunk the byte stream into tiny writes, or stop reading (a slow peer).
 *
 *   const proxy = await startProxy({ target: brokerAddress(await getBrokerUrl()) });
 *   const conn = await connect(proxy.url(await getBrokerUrl()));
 *   proxy.resetAfterBytes("down", 3);     // the broker's next 3 bytes get through, then RST
 *   ...
 *   await proxy.close();
 *
 * Directions: "up" is client -> broker, "down" is broker -> client. Each accepted connection
 * gets its own upstream connection; the controls apply to every connection, current and
 * future. Bytes are forwarded in order; FIN and RST are passed through (except while
 * blackholed, when nothing is).
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

export type Direction = "up" | "down";

export interface ProxyOptions {
  /** Where to forward to, e.g. brokerAddress(url) from ./broker.js. */
  target: { host: string; port: number };
  /** Interface to listen on; defaults to 127.0.0.1. The port is always picked by the OS. */
  host?: string;
}

export interface Proxy {
  readonly host: string;
  readonly port: number;
  /** `baseUrl` with its host and port replaced by the proxy's (credentials, vhost, query kept). */
  url(baseUrl: string): string;
  /** Bytes forwarded per direction, over all connections. */
  readonly bytes: Readonly<Record<Direction, number>>;
  /** Bytes read from the sending side per direction (forwarded, queued or dropped). */
  readonly received: Readonly<Record<Direction, number>>;
  /** Bytes swallowed by blackhole() per direction. */
  readonly dropped: Readonly<Record<Direction, number>>;
  /** Connections accepted so far, and connections with a socket still open. */
  readonly accepted: number;
  readonly open: number;
  /**
   * Forward the next `n` bytes in `dir` (counted over all connections), then reset both sockets
   * of the connection that carried the n-th byte with a TCP RST, after a pause of 20 ms in
   * which that connection forwards nothing (so the peer reads the n bytes first and sees
   * ECONNRESET, not EOF). One-shot. With n = 0 the reset comes when the next byte in `dir`
   * arrives, forwarding none of it.
   */
  resetAfterBytes(dir: Direction, n: number): void;
  /** Stop forwarding in both directions: bytes are read and dropped, no FIN, no RST, sockets stay open. */
  blackhole(): void;
  /**
   * End a blackhole: connections that lived through it lost bytes both ways, so they are reset
   * (RST); new ones are forwarded again.
   */
  heal(): void;
  /** Delay each chunk by `ms` (from when it is read), keeping order. 0 turns it off. */
  setLatency(ms: number, dir?: Direction): void;
  /** Forward in writes of at most `n` bytes, each waited for before the next. 0 turns it off. */
  setChunkSize(n: number, dir?: Direction): void;
  /** Stop reading from the sender in `dir` (its writes back up in TCP), until resumeReading. */
  pauseReading(dir: Direction): void;
  resumeReading(dir: Direction): void;
  /** Reset (RST) every open connection, both sockets, at once. The proxy keeps accepting. */
  resetAll(): void;
  /** Resolves once `predicate()` is true, re-checked after every proxy event (data, close, accept). */
  until(predicate: () => boolean): Promise<void>;
  /** Closes the listener and every socket, cancels timers. Idempotent. */
  close(): Promise<void>;
}

/** Pause the sender when this much is queued in the proxy, resume below a quarter of it. */
const HIGH_WATER = 256 * 1024;
/** Between the last byte forwarded and the RST of resetAfterBytes (see Pair.resetSoon). */
const RESET_PAUSE_MS = 20;

export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const host = options.host ?? "127.0.0.1";
  const state = new ProxyState(options.target);
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => state.accept(client));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    host,
    port,
    url(baseUrl) {
      const u = new URL(baseUrl);
      u.hostname = host;
      u.port = String(port);
      return u.toString();
    },
    get bytes() {
      return { ...state.forwarded };
    },
    get received() {
      return { ...state.received };
    },
    get dropped() {
      return { ...state.dropped };
    },
    get accepted() {
      return state.accepted;
    },
    get open() {
      return state.pairs.size;
    },
    resetAfterBytes(dir, n) {
      if (!Number.isInteger(n) || n < 0)
        throw new RangeError(`resetAfterBytes: n must be a non-negative integer, got ${n}`);
      state.resetBudget[dir] = n;
      if (n === 0) state.kickAll(dir);
    },
    blackhole() {
      state.blackholed = true;
      state.kickAll("up");
      state.kickAll("down");
    },
    heal() {
      if (!state.blackholed) return;
      state.blackholed = false;
      for (const pair of [...state.pairs]) pair.reset();
    },
    setLatency(ms, dir) {
      for (const d of dir !== undefined ? [dir] : DIRECTIONS) state.latency[d] = Math.max(0, ms);
    },
    setChunkSize(n, dir) {
      for (const d of dir !== undefined ? [dir] : DIRECTIONS) state.chunkSize[d] = Math.max(0, Math.floor(n));
    },
    pauseReading(dir) {
      state.readPaused[dir] = true;
      for (const pair of state.pairs) pair.pipes[dir].updateReading();
    },
    resumeReading(dir) {
      state.readPaused[dir] = false;
      for (const pair of state.pairs) pair.pipes[dir].updateReading();
    },
    resetAll() {
      for (const pair of [...state.pairs]) pair.reset();
    },
    until(predicate) {
      return state.until(predicate);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        state.shutdown();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

const DIRECTIONS: readonly Direction[] = ["up", "down"];

class ProxyState {
  readonly pairs = new Set<Pair>();
  readonly forwarded: Record<Direction, number> = { up: 0, down: 0 };
  readonly received: Record<Direction, number> = { up: 0, down: 0 };
  readonly dropped: Record<Direction, number> = { up: 0, down: 0 };
  readonly latency: Record<Direction, number> = { up: 0, down: 0 };
  readonly chunkSize: Record<Direction, number> = { up: 0, down: 0 };
  readonly readPaused: Record<Direction, boolean> = { up: false, down: false };
  readonly resetBudget: Record<Direction, number | undefined> = { up: undefined, down: undefined };
  blackholed = false;
  accepted = 0;
  closed = false;
  private waiters: { predicate: () => boolean; resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(readonly target: { host: string; port: number }) {}

  accept(client: Socket): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    this.accepted += 1;
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    const pair = new Pair(this, client, upstream);
    this.pairs.add(pair);
    this.notify();
  }

  /** Wakes the pumps of one direction (after a control changed). */
  kickAll(dir: Direction): void {
    for (const pair of this.pairs) pair.pipes[dir].pump();
  }

  until(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error("proxy closed"));
    return new Promise((resolve, reject) => this.waiters.push({ predicate, resolve, reject }));
  }

  notify(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      let done: boolean;
      try {
        done = w.predicate();
      } catch (err) {
        w.reject(err as Error);
        continue;
      }
      if (done) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  shutdown(): void {
    this.closed = true;
    for (const pair of [...this.pairs]) pair.destroy();
    for (const w of this.waiters) w.reject(new Error("proxy closed before the condition was met"));
    this.waiters = [];
  }
}

/** One accepted connection and its upstream connection. */
class Pair {
  readonly pipes: Record<Direction, Pipe>;
  private gone = false;
  private holding = false;
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly proxy: ProxyState,
    readonly client: Socket,
    readonly upstream: Socket,
  ) {
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.pipes = { up: new Pipe(this, "up", client, upstream), down: new Pipe(this, "down", upstream, client) };
    for (const socket of [client, upstream]) {
      // An error on either side (ECONNRESET, ECONNREFUSED upstream) is passed on as a reset,
      // as a transparent proxy would; while blackholed nothing is passed on.
      socket.on("error", () => {
        if (this.proxy.blackholed) socket.destroy();
        else this.reset();
      });
      socket.on("close", () => {
        if (client.destroyed && upstream.destroyed) this.finish();
        this.proxy.notify();
      });
    }
  }

  /**
   * RST both sockets after a short pause in which nothing is forwarded either way. The pause
   * lets the peer read the bytes forwarded just before: if a reset arrives while data is
   * still unread, libuv reports a clean EOF after the data (POLLHUP after a partial read)
   * instead of ECONNRESET, and the fault would look like an orderly close.
   */
  resetSoon(): void {
    if (this.gone || this.holding) return;
    this.holding = true;
    this.holdTimer = setTimeout(() => this.reset(), RESET_PAUSE_MS);
  }

  /** True while a reset is pending: the pipes forward nothing. */
  get isHolding(): boolean {
    return this.holding;
  }

  /** RST both sockets. */
  reset(): void {
    if (this.gone) return;
    this.gone = true;
    for (const socket of [this.client, this.upstream]) {
      if (socket.destroyed) continue;
      // resetAndDestroy() needs a connected handle; a socket still connecting just goes away.
      if (socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
    this.finish();
  }

  destroy(): void {
    this.gone = true;
    this.client.destroy();
    this.upstream.destroy();
    this.finish();
  }

  get isGone(): boolean {
    return this.gone;
  }

  private finish(): void {
    clearTimeout(this.holdTimer);
    this.pipes.up.cancel();
    this.pipes.down.cancel();
    this.proxy.pairs.delete(this);
    this.proxy.notify();
  }
}

/** One direction of a pair: reads `src`, queues, writes `dst` under the proxy's controls. */
class Pipe {
  private queue: { chunk: Buffer; due: number }[] = [];
  private queued = 0;
  private ended = false;
  private pumping = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly pair: Pair,
    private readonly dir: Direction,
    private readonly src: Socket,
    private readonly dst: Socket,
  ) {
    src.on("data", (chunk: Buffer) => this.onData(chunk));
    src.on("end", () => {
      this.ended = true;
      this.pump();
    });
    this.updateReading();
  }

  private get proxy(): ProxyState {
    return this.pair.proxy;
  }

  private onData(chunk: Buffer): void {
    this.proxy.received[this.dir] += chunk.length;
    if (this.proxy.blackholed) {
      this.proxy.dropped[this.dir] += chunk.length;
    } else {
      this.queue.push({ chunk, due: Date.now() + this.proxy.latency[this.dir] });
      this.queued += chunk.length;
      this.updateReading();
      this.pump();
    }
    this.proxy.notify();
  }

  /** Reads while the user has not paused this direction and the queue is not too long. */
  updateReading(): void {
    if (this.src.destroyed) return;
    const shouldPause = this.proxy.readPaused[this.dir] || this.queued >= HIGH_WATER;
    if (shouldPause) this.src.pause();
    else if (this.queued < HIGH_WATER / 4) this.src.resume();
  }

  /** Starts the pump loop if it is not running, or wakes it if it is waiting on a timer. */
  pump(): void {
    if (this.pumping) {
      // A control may have changed (blackhole, a reset budget of 0): re-evaluate now.
      if (this.wake !== undefined && (this.proxy.blackholed || this.proxy.resetBudget[this.dir] === 0)) this.wakeUp();
      return;
    }
    this.pumping = true;
    void this.run().finally(() => {
      this.pumping = false;
    });
  }

  cancel(): void {
    this.queue = [];
    this.queued = 0;
    this.wakeUp();
  }

  private wakeUp(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => this.wakeUp(), ms);
    });
  }

  private async run(): Promise<void> {
    const proxy = this.proxy;
    for (;;) {
      if (this.pair.isGone || this.pair.isHolding) return;
      if (proxy.blackholed) {
        for (const { chunk } of this.queue) proxy.dropped[this.dir] += chunk.length;
        this.queue = [];
        this.queued = 0;
        this.updateReading();
        proxy.notify();
        return;
      }
      const head = this.queue[0];
      if (head === undefined) {
        // Pass a FIN on once everything before it has been forwarded.
        if (this.ended && !this.dst.destroyed && !this.dst.writableEnded) this.dst.end();
        return;
      }
      if (proxy.resetBudget[this.dir] !== 0) {
        const wait = head.due - Date.now();
        if (wait > 0) {
          await this.sleep(wait);
          continue;
        }
      }

      let piece = head.chunk;
      const chunkSize = proxy.chunkSize[this.dir];
      if (chunkSize > 0 && piece.length > chunkSize) piece = piece.subarray(0, chunkSize);
      const budget = proxy.resetBudget[this.dir];
      const resetAfter = budget !== undefined && piece.length >= budget;
      if (resetAfter) {
        piece = piece.subarray(0, budget);
        proxy.resetBudget[this.dir] = undefined;
      } else if (budget !== undefined) {
        proxy.resetBudget[this.dir] = budget - piece.length;
      }

      if (piece.length === head.chunk.length) this.queue.shift();
      else head.chunk = head.chunk.subarray(piece.length);
      this.queued -= piece.length;

      if (piece.length > 0) {
        proxy.forwarded[this.dir] += piece.length;
        const flushed = this.write(piece);
        // Wait for the write to reach the kernel before a reset (so the bytes before it are
        // really sent) and between tiny writes (so they leave as separate segments).
        if (resetAfter || chunkSize > 0) await flushed;
        else if (this.dst.writableNeedDrain) await this.drained();
      }
      if (resetAfter) {
        this.pair.resetSoon();
        return;
      }
      this.updateReading();
      proxy.notify();
    }
  }

  private write(piece: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.dst.destroyed) {
        resolve();
        return;
      }
      this.dst.write(piece, () => resolve());
    });
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.dst.off("drain", done);
        this.dst.off("close", done);
        resolve();
      };
      this.dst.on("drain", done);
      this.dst.on("close", done);
    });
  }
}
