/**
 * A connection: a socket at a time, read by inbound.ts and written by outbound.ts; the
 * handshake over it (handshake.ts says what to answer, this file keeps the order); channel 0,
 * heartbeats (heartbeat.ts), the channel table, update-secret, and the ways down: close, fail,
 * and suspend for automatic recovery, which runs the handshake again over a new socket on this
 * same connection. Channels reach the connection through ChannelHost (channel-host.ts); connect
 * and recovery drive it through the two interfaces declared here, RecoveryHooks and
 * ConnectionControl.
 *
 *   opening -> open -> closing -> closed
 *                \-> recovering -> restoring -> open     (recovery.ts)
 *
 * A handshake in progress (an attempt) belongs to one socket: when that socket fails, the
 * attempt fails and the connection stays where it was (opening, or recovering); connect and
 * recovery then try another.
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { FRAME_MIN_SIZE, FrameType, ReplyCode } from "../protocol/constants.js";
import { FrameError } from "../protocol/errors.js";
import type { Frame } from "../protocol/frame.js";
import type { FieldTable } from "../protocol/table.js";
import { Channel } from "./channel.js";
import type { ChannelHost, RecoverySettings } from "./channel-host.js";
import type { WaitOptions } from "./channel-options.js";
import {
  AbortError,
  AmqpError,
  CLIENT_CLOSE,
  ConfirmTimeoutError,
  ConnectionClosedError,
  clientClose,
  closeError,
  isClientClose,
} from "./errors.js";
import { callingSinks } from "./handler.js";
import { Handshake, type Tuned } from "./handshake.js";
import { ChannelTable } from "./channel-table.js";
import type { ConnectionEvents, ConnectionState } from "./connection-events.js";
import { ConfirmWatch } from "./confirm-watch.js";
import { Heartbeat } from "./heartbeat.js";
import { Inbound } from "./inbound.js";
import { FRAME_MAX_FLOOR, type ResolvedOptions } from "./options.js";
import { Outbound } from "./outbound.js";
import { Publisher, type PublisherOptions } from "./publisher.js";
import { ConnectionCounters, type ConnectionStats } from "./stats.js";
import { SyncCalls } from "./sync-calls.js";
import { Waiters, badTimeout, bounded, isTimeout } from "./wait.js";

/** Frames in and out, for tracing (diagnostics.ts): `{ connection, channel, frame }`. */
export interface FrameMessage {
  connection: Connection;
  channel: number;
  frame: Frame;
}

/**
 * @internal "recovering": lost, and automatic recovery is reconnecting; "restoring": a new
 * socket is open, and recovery is declaring the topology and opening the channels again.
 */
export type ConnectionPhase = "opening" | "open" | "closing" | "closed" | "recovering" | "restoring";

/** @internal What a connection asks of its automatic recovery (recovery.ts implements it). */
export interface RecoveryHooks extends RecoverySettings {
  /** Whether a loss for this reason is worth reconnecting after. */
  shouldRecover(reason: AmqpError): boolean;
  /** The connection was lost and is now "recovering": reconnect. */
  lost(reason: AmqpError): void;
  /** The user closed the connection: stop trying. */
  stop(reason: AmqpError): void;
  /** Resolves once a new socket is open (openChannel while recovering waits for it). */
  connected(what: string, signal: AbortSignal | undefined): Promise<void>;
}

/** @internal What connect.ts and recovery.ts do to a connection beyond its public API. */
export interface ConnectionControl {
  readonly connection: Connection;
  readonly phase: ConnectionPhase;
  readonly options: ResolvedOptions;
  /**
   * The handshake over `socket` to `endpoint` (while opening, or recovering): the protocol
   * header goes out once `socket` emits `ready` (at once without), and it resolves on
   * connection.open-ok. It rejects when that socket fails or the broker refuses, leaving the
   * connection opening or recovering: another attempt may follow.
   */
  handshake(endpoint: ResolvedOptions, socket: Duplex, ready?: string): Promise<void>;
  /** Give up the handshake in progress (a connect timeout, an abort): it rejects with `reason`. */
  abandon(reason: AmqpError): void;
  /** The one way down, for good. */
  fail(reason: AmqpError): void;
  /** Recovery has restored the topology and the channels: restoring -> open. */
  restored(): void;
  /** The channels waiting to be restored, in id order. */
  recoveringChannels(): Channel[];
  /** A channel whose declarations are not recorded (recovery's own, to declare the topology again). */
  openUnrecordedChannel(): Promise<Channel>;
}

/** An open AMQP connection. Create with `connect()`. */
export class Connection extends EventEmitter<ConnectionEvents> {
  /**
   * Negotiated largest frame (0 = no limit). Until connection.tune it is frame-min-size, the
   * largest frame a peer must accept before tuning (spec 4.2.3, "frame-min-size").
   */
  frameMax = FRAME_MIN_SIZE;
  /** Negotiated most channels. */
  channelMax = 0;
  /** Negotiated heartbeat interval in seconds (0 = none). */
  heartbeat = 0;
  /** What the broker said about itself in connection.start (product, version, capabilities...). */
  serverProperties: FieldTable = {};
  /** True between connection.blocked and connection.unblocked. */
  blocked = false;

  private options: ResolvedOptions;
  private phase: ConnectionPhase = "opening";
  private readonly inbound: Inbound;
  private readonly out: Outbound;
  private readonly heartbeats: Heartbeat;
  /** The `confirmTimeout` option's watch on publishes waiting for confirms (confirm-watch.ts). */
  private readonly confirmWatch: ConfirmWatch | undefined;
  /** Channel 0's synchronous calls after the handshake: connection.update-secret. */
  private readonly calls: SyncCalls;
  /** update-secret calls that timed out: their replies, still due in order, are dropped. */
  private lateUpdateSecretOks = 0;
  /** The handshake over the current socket, while it runs (one socket's; see handshake()). */
  private attempt: { handshake: Handshake; opened: Waiters } | undefined;
  private readonly closeOk = new Waiters();
  /** Our connection.close is written: every frame but close/close-ok is discarded (spec connection.close). */
  private closeSent = false;
  private closeReason: AmqpError | undefined;
  private closeCall: Promise<void> | undefined; // what close() resolves, for every call of it
  private readonly channels = new ChannelTable<Channel>();
  private readonly recovery: RecoveryHooks | undefined;
  private readonly host: ChannelHost<Channel>;
  private readonly control: ConnectionControl;
  /** The state last reported by the "state" event. */
  private reported: ConnectionState = "connecting";
  /** What stats() adds to the open channels' counts: closed channels', recoveries, blocked periods. */
  private readonly counters = new ConnectionCounters();
  /** ping()'s channel, opened on the first ping. */
  private pingChannel: Promise<Channel> | undefined;

  /** @internal use connect() */
  constructor(options: ResolvedOptions, recovery?: (control: ConnectionControl) => RecoveryHooks) {
    super();
    this.options = options;
    this.inbound = new Inbound(this, {
      reading: () => this.phase !== "closed" && (this.phase !== "recovering" || this.attempt !== undefined),
      // Not while restoring: recovery's own calls must be answered.
      canPause: () => this.phase === "open",
      received: () => {
        this.heartbeats.received();
        this.out.readTurn();
      },
      frame: (frame) => this.onFrame(frame),
      protocolError: (e) => this.protocolError(e),
      drained: () => this.out.onDrain(),
      gone: (err) => this.onSocketGone(err),
    });
    this.out = new Outbound(this, () => this.phase === "open");
    this.heartbeats = new Heartbeat({
      takeWritten: () => this.out.takeWritten(),
      beat: () => this.out.heartbeat(),
      tick: () => this.inbound.peek(),
      silent: (s) =>
        this.lost(
          new ConnectionClosedError({
            replyCode: 0,
            replyText: `missed heartbeats: nothing from the broker for ${s} s`,
            initiatedBy: "library",
          }),
        ),
    });
    if (options.confirmTimeout !== undefined)
      this.confirmWatch = new ConfirmWatch(options.confirmTimeout, {
        progress: () =>
          this.channels.values().map((ch) => {
            const p = ch.stats().publishes;
            return [ch.id, { settled: p.confirmed + p.nacked, waiting: p.unconfirmed }];
          }),
        blocked: () => this.blocked,
        stalled: (channel, waiting) =>
          this.lost(
            new ConfirmTimeoutError({
              replyCode: 0,
              replyText: `no publisher confirm on channel ${channel} for ${options.confirmTimeout} ms while ${waiting} publishes waited for one (confirmTimeout)`,
              initiatedBy: "library",
            }),
          ),
      });
    this.calls = new SyncCalls(
      0,
      (m) => this.out.method(0, m),
      () => this.lateUpdateSecretOks++,
    );
    this.control = this.controlOf();
    this.recovery = recovery?.(this.control);
    this.host = this.channelHost();
  }

  /** @internal connect.ts: a connection, and what connect and recovery do to it. */
  static create(options: ResolvedOptions, recovery?: (control: ConnectionControl) => RecoveryHooks): ConnectionControl {
    return new Connection(options, recovery).control;
  }

  private channelHost(): ChannelHost<Channel> {
    const self = this;
    return {
      out: this.out,
      get options() {
        return self.options;
      },
      get closing() {
        return self.phase === "closing";
      },
      get closeSent() {
        return self.closeSent;
      },
      get reason() {
        return self.closeReason;
      },
      get serverProperties() {
        return self.serverProperties;
      },
      recovery: this.recovery,
      freeId: (id) => this.retire(id),
      openChannel: (recorded) => this.open(undefined, recorded),
      pauseReading: () => this.inbound.pause(),
      resumeReading: () => this.inbound.unpause(),
    };
  }

  private controlOf(): ConnectionControl {
    const self = this;
    return {
      connection: this,
      get phase() {
        return self.phase;
      },
      get options() {
        return self.options;
      },
      handshake: (endpoint, socket, ready) => this.handshake(endpoint, socket, ready),
      abandon: (reason) => this.attemptFailed(reason),
      fail: (reason) => this.fail(reason),
      restored: () => this.restored(),
      recoveringChannels: () => this.channels.values().filter((c) => c.recovering),
      openUnrecordedChannel: () => this.open(undefined, false),
    };
  }

  /** True once closed or lost; every call then fails with the close reason. */
  get closed(): boolean {
    return this.phase === "closed";
  }

  /** Where the connection is now (ConnectionState); the "state" event reports each change. */
  get state(): ConnectionState {
    switch (this.phase) {
      case "opening":
        return "connecting";
      case "open":
        return this.blocked ? "blocked" : "open";
      case "restoring":
        return "recovering";
      default:
        return this.phase;
    }
  }

  /** Emits "state" if the state changed since it was last reported. */
  private changed(): void {
    const state = this.state;
    if (state === this.reported) return;
    const previous = this.reported;
    this.reported = state;
    this.emit("state", state, previous);
  }

  /**
   * One round trip to the broker: basic.qos on a channel of its own (opened on the first ping),
   * which the broker answers at once. Resolves with the time it took (ms). Rejects with
   * TimeoutError after `timeout` (default the connection's timeout; a recovering connection is
   * waited for within it), with AbortError on `signal`, and at once on a closed connection. A
   * readiness probe tells "the socket is open" from "the broker answers" with it.
   */
  async ping(options: WaitOptions = {}): Promise<number> {
    const timeout = options.timeout ?? this.options.timeout;
    if (!isTimeout(timeout)) throw badTimeout("ping", timeout);
    if (this.phase === "closed" || this.phase === "closing") throw this.notOpen();
    const started = performance.now();
    const signal = options.signal === undefined ? {} : { signal: options.signal };
    const roundTrip = async () => {
      // One channel for every ping, concurrent ones included (the promise, not the channel, is kept).
      this.pingChannel ??= this.open(signal, false);
      let ch = await this.pingChannel.catch(() => undefined);
      if (ch === undefined || ch.closed) {
        this.pingChannel = this.open(signal, false);
        ch = await this.pingChannel;
      }
      await ch.prefetch(0, { timeout, ...signal });
    };
    await bounded(roundTrip(), { timeout, ...signal }, "ping");
    return performance.now() - started;
  }

  /**
   * Cumulative counts of this connection's publishes and deliveries (its channels', those that
   * closed included), bytes, recoveries and blocked time, and what waits or runs now (stats.ts).
   */
  stats(): ConnectionStats {
    return this.counters.snapshot(
      this.channels.values().map((ch) => ch.stats()),
      { in: this.inbound.bytes, out: this.out.bytes },
    );
  }

  /** @internal A write would wait now (warren/amqplib's publish returns false then). */
  get writeWouldWait(): boolean {
    return this.out.mustWait;
  }

  /** @internal Resolves once a write would not wait (warren/amqplib's "drain"). */
  writable(): Promise<void> {
    return this.out.writable();
  }

  /** A channel's id is free again: its counts go into the connection's total. */
  private retire(id: number): void {
    const ch = this.channels.get(id);
    if (ch !== undefined) this.counters.retire(ch.stats());
    this.channels.free(id);
  }

  // -------------------------------------------------------------------------------------------
  // handshake

  /**
   * Run the handshake over `socket` (see ConnectionControl.handshake): the socket becomes the
   * connection's, read and written from now on; while it handshakes, its failure fails only the
   * attempt (attemptFailed).
   */
  private handshake(endpoint: ResolvedOptions, socket: Duplex, ready?: string): Promise<void> {
    if (this.phase !== "opening" && this.phase !== "recovering") return Promise.reject(this.notOpen());
    this.options = endpoint;
    const opened = new Waiters();
    const handshake = new Handshake(endpoint, {
      send: (m) => this.out.method(0, m),
      tuned: (t) => this.tuned(t),
      opened: () => this.opened(),
      refuse: (err) => this.lost(err),
    });
    this.attempt = { handshake, opened };
    this.inbound.attach(socket, Math.max(endpoint.frameMax || endpoint.maxInboundFrameSize, FRAME_MIN_SIZE));
    this.out.attach(socket, endpoint.transport === undefined && endpoint.tls === false);
    const done = opened.wait("connect");
    if (ready === undefined) this.out.protocolHeader();
    else socket.once(ready, () => this.attempt?.handshake === handshake && this.out.protocolHeader());
    return done;
  }

  /** connection.open-ok: the attempt succeeded; opening -> open, or recovering -> restoring. */
  private opened(): void {
    const attempt = this.attempt!;
    this.attempt = undefined;
    this.phase = this.phase === "opening" ? "open" : "restoring";
    this.changed();
    attempt.opened.wake();
  }

  /** The socket of the handshake in progress failed (or the attempt was abandoned): it rejects; the connection stays as it was. */
  private attemptFailed(reason: AmqpError): void {
    const attempt = this.attempt;
    if (attempt === undefined) return;
    this.attempt = undefined;
    this.heartbeats.stop();
    this.confirmWatch?.stop();
    this.inbound.detach();
    this.out.drop(reason);
    attempt.opened.fail(reason);
  }

  private tuned(t: Tuned): void {
    this.frameMax = t.frameMax;
    this.channelMax = t.channelMax;
    this.heartbeat = t.heartbeat;
    this.out.frameMax = t.frameMax;
    this.inbound.maxFrameSize = t.frameMax === 0 ? this.options.maxInboundFrameSize : t.frameMax;
    this.heartbeats.start(t.heartbeat);
    this.confirmWatch?.start();
  }

  // -------------------------------------------------------------------------------------------
  // inbound

  private onFrame(frame: Frame): void {
    if (frame.channel === 0) return this.onChannel0(frame);
    if (this.closeSent) return; // spec connection.close: discard all but close/close-ok
    const ch = this.channels.get(frame.channel);
    if (ch === undefined) throw new FrameError(504, `frame on channel ${frame.channel}, which is not open`);
    ch.onFrame(frame);
  }

  private onChannel0(frame: Frame): void {
    if (frame.type === FrameType.Heartbeat) return;
    if (frame.type !== FrameType.Method) throw new FrameError(505, `content frame on channel 0`);
    const m = frame.method;
    switch (m.name) {
      case "connection.start":
      case "connection.secure":
      case "connection.tune":
      case "connection.open-ok":
        if (this.attempt === undefined) throw new FrameError(505, `${m.name} after the handshake`);
        if (m.name === "connection.start") this.serverProperties = m.serverProperties;
        return this.attempt.handshake.onMethod(m);
      case "connection.close": {
        // The broker closes: answer close-ok (spec 2.2.4, connection.close), then the socket may go.
        const err = closeError(
          "connection",
          {
            replyCode: m.replyCode,
            replyText: m.replyText,
            classId: m.classId,
            methodId: m.methodId,
            initiatedBy: "server",
          },
          this.attempt !== undefined,
        );
        this.out.method(0, { name: "connection.close-ok" });
        this.out.flush();
        return this.lost(err);
      }
      case "connection.close-ok":
        if (this.phase !== "closing") throw new FrameError(505, "connection.close-ok without a close");
        return this.closeOk.wake();
      case "connection.blocked":
        this.setBlocked(true);
        this.emit("blocked", m.reason);
        return;
      case "connection.unblocked":
        this.setBlocked(false);
        this.emit("unblocked");
        return;
      case "connection.update-secret-ok":
        // The reply of a call that timed out: replies come in order.
        if (this.lateUpdateSecretOks > 0) return void this.lateUpdateSecretOks--;
        this.calls.expect(m);
        return this.calls.reply(m);
      default:
        throw new FrameError(503, `${m.name} is not valid on channel 0`);
    }
  }

  private setBlocked(blocked: boolean): void {
    this.counters.blocked(blocked);
    this.blocked = blocked;
    this.out.setBlocked(blocked);
    this.changed();
  }

  // -------------------------------------------------------------------------------------------
  // channels

  /**
   * Open a new channel; `timeout` and `signal` bound the wait for channel.open-ok. While a
   * recovering connection is reconnecting, waits for it first (at most recovery.waitTimeout).
   */
  openChannel(wait?: WaitOptions): Promise<Channel> {
    return this.open(wait, true);
  }

  private async open(wait: WaitOptions | undefined, recorded: boolean): Promise<Channel> {
    if (this.phase === "recovering" && this.recovery) await this.recovery.connected("openChannel", wait?.signal);
    if (!this.live) throw this.notOpen();
    if (wait?.signal?.aborted) throw new AbortError("openChannel aborted");
    const id = this.channels.allocate(this.channelMax);
    const ch = new Channel(this.host, this, id, recorded);
    this.channels.set(id, ch);
    await ch.open(wait);
    return ch;
  }

  /** @internal How many channel ids are taken (test/fault/cycles.ts). */
  get openChannels(): number {
    return this.channels.size;
  }

  /** A socket is open and the handshake done: open, or restoring after a recovery. */
  private get live(): boolean {
    return this.phase === "open" || this.phase === "restoring";
  }

  private notOpen(): AmqpError {
    return (
      this.closeReason ??
      new ConnectionClosedError({ replyCode: 0, replyText: "connection is not open", initiatedBy: "library" })
    );
  }

  /**
   * A publisher that heals (publisher.ts): confirm-mode publishes on a channel of its own; when
   * a publish closes that channel (404 missing exchange, 406 too large, 403), that publish
   * rejects with PublishRefusedError and the publisher carries on, in order, on a fresh channel.
   * Resolves once its first channel is in confirm mode.
   */
  createPublisher(options: PublisherOptions = {}): Promise<Publisher> {
    return new Publisher(() => this.openChannel(), options).start();
  }

  /** connection.update-secret (RabbitMQ's): a new OAuth 2 token before the old one expires, without reconnecting. */
  async updateSecret(newSecret: string, reason: string): Promise<void> {
    if (!this.live) throw this.notOpen();
    if (this.calls.busy) throw new AmqpError("an update-secret is already in progress");
    await this.calls.call({ name: "connection.update-secret", newSecret, reason }, this.options.timeout, {});
  }

  // -------------------------------------------------------------------------------------------
  // closing

  /**
   * Close the connection. From the call on, no delivery reaches a handler or callback. Consumers
   * with handlers running are cancelled first, and the handlers waited for, so their acks and
   * replies go out (`drain: false` skips that: the broker requeues what they hold); a handler
   * that calls close() itself is not waited for (it waits for the close). Then every new call on the connection and its channels rejects with a
   * ConnectionClosedError; unconfirmed publishes are waited for, then connection.close goes out
   * and close-ok is read, even while a consumer iterator holds the socket (each wait at most the
   * sync timeout). Resolves when no timer or socket is left. Later calls share the first's.
   */
  close(options: { drain?: boolean } = {}): Promise<void> {
    const callers = callingSinks(this.channels.values().flatMap((ch) => ch.sinks));
    if (this.closeCall === undefined) {
      for (const ch of this.channels.values()) ch.stopConsumers();
      // With no handler running, the close begins now: calls made after close() fail.
      const busy = options.drain === false ? [] : this.channels.values().filter((ch) => ch.handlersRunning);
      this.closeCall =
        busy.length === 0
          ? this.shutdown()
          : Promise.all(busy.map((ch) => ch.stopHandlers())).then(() => this.shutdown());
    }
    // A handler that closes the connection waits for the close: the drain must not wait for it.
    for (const sink of callers) sink.closing?.(this.closeCall);
    return this.closeCall;
  }

  private async shutdown(): Promise<void> {
    if (this.phase === "closed") return;
    const reason = clientClose("connection");
    if (this.phase === "recovering") this.recovery?.stop(reason);
    if (this.phase === "opening" || this.phase === "recovering") return this.fail(reason);
    this.phase = "closing";
    this.closeReason = reason;
    this.changed();
    // What close needs to read (confirms, close-ok) must not wait behind a slow consumer iterator.
    this.inbound.resume();
    const timeout = this.options.timeout;
    await Promise.all(this.channels.values().map((ch) => ch.waitForConfirms({ timeout }).catch(() => undefined)));
    if ((this.phase as ConnectionPhase) === "closed") return;
    // What consumers were sent and no handler took goes back as a return before the close
    // (Channel.stopHandlers says why): cancel them, and their sinks give it back.
    await Promise.all(this.channels.values().map((ch) => ch.cancelConsumers()));
    if ((this.phase as ConnectionPhase) === "closed") return;
    // Deferred acks first (flush writes them): the broker discards what follows connection.close.
    this.out.flush();
    this.out.method(0, {
      name: "connection.close",
      replyCode: ReplyCode.REPLY_SUCCESS,
      replyText: CLIENT_CLOSE,
      classId: 0,
      methodId: 0,
    });
    this.closeSent = true;
    this.out.flush();
    await this.closeOk.wait("connection.close", { timeout }).catch(() => undefined);
    this.fail(reason);
  }

  /** `await using conn = await connect(...)`: closed at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The peer broke the protocol: tell it why (connection.close with the code), then drop it. */
  private protocolError(e: FrameError): void {
    if (this.phase === "closed") return;
    // Not during the handshake: before open-ok the spec has the client just close the socket
    // (connection.start, tune); nor while closing, when our connection.close is already out.
    if (this.live) {
      this.out.method(0, {
        name: "connection.close",
        replyCode: e.code,
        replyText: e.message.slice(0, 255),
        classId: 0,
        methodId: 0,
      });
      this.out.flush();
    }
    this.lost(e);
  }

  private onSocketGone(err: Error | undefined): void {
    if (this.phase === "closed") return;
    if (this.phase === "closing" && err === undefined) return this.fail(clientClose("connection"));
    const how = err
      ? `: ${err.message}`
      : ` (socket closed by the peer${this.inbound.buffered > 0 ? ` in the middle of a frame, ${this.inbound.buffered} bytes of it received` : ""})`;
    // Gone right after our tune-ok: the broker refused what was negotiated (it says nothing, it
    // resets the socket), so name it rather than leave the user with ECONNRESET.
    const during =
      this.attempt?.handshake.step === "open-ok"
        ? `the broker closed the connection after tune-ok (negotiated frame_max ${this.frameMax}, channel_max ${this.channelMax}, heartbeat ${this.heartbeat}; RabbitMQ 4.1 and later refuse frame_max below ${FRAME_MAX_FLOOR})`
        : "connection lost";
    this.lost(
      new ConnectionClosedError({ replyCode: 0, replyText: `${during}${how}`, initiatedBy: "library", cause: err }),
    );
  }

  /**
   * The socket is lost (it failed, the broker closed the connection or broke the protocol, or
   * went silent): the attempt on it fails, if it was handshaking; an open connection with
   * recovery on suspends, when the reason is worth reconnecting after; otherwise the connection
   * fails.
   */
  private lost(reason: AmqpError): void {
    if (this.attempt !== undefined) return this.attemptFailed(reason);
    if (this.phase === "recovering" || this.phase === "opening") return; // between attempts: nothing is read
    if (this.live && this.recovery?.shouldRecover(reason)) return this.suspend(reason);
    this.fail(reason);
  }

  /**
   * The one way down, for good: idempotent. Rejects the handshake, every channel's pending
   * calls, unconfirmed publishes and consumer iterators with the same reason; clears every
   * timer; drops the socket; emits "close" once.
   */
  private fail(reason: AmqpError): void {
    if (this.phase === "closed") return;
    this.attemptFailed(reason);
    this.phase = "closed";
    this.closeReason = reason;
    this.counters.blocked(false);
    this.blocked = false;
    this.down(reason);
    for (const ch of this.channels.values()) ch.fail(reason);
    for (const ch of this.channels.values()) this.retire(ch.id);
    this.closeOk.fail(reason);
    this.changed();
    this.emit("close", isClientClose(reason) ? undefined : reason);
  }

  /** Closed or suspended: no heartbeat, no call on channel 0, no socket. */
  private down(reason: AmqpError): void {
    this.heartbeats.stop();
    this.confirmWatch?.stop();
    this.calls.fail(reason);
    this.inbound.detach();
    this.out.drop(reason);
  }

  /** Lost, with recovery on: like fail(), but the channels are kept (suspended) to carry on after the reconnect. */
  private suspend(reason: AmqpError): void {
    this.phase = "recovering";
    this.counters.lost();
    for (const ch of this.channels.values()) if (!ch.suspend(reason)) this.retire(ch.id);
    this.down(reason);
    this.setBlocked(false);
    this.recovery!.lost(reason);
  }

  /** Recovery has restored the topology and the channels: a read pause taken meanwhile now pauses the socket. */
  private restored(): void {
    if (this.phase !== "restoring") return;
    this.phase = "open";
    this.counters.restored();
    this.changed();
    this.inbound.reapply();
  }
}
