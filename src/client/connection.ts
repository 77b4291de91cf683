/**
 * A connection: one socket, the handshake, heartbeats, the channel table, and the single write
 * path every channel shares.
 *
 * Handshake (spec 2.2.4, 4.2.2):
 *   C: protocol header "AMQP" 0 0 9 1
 *   S: connection.start      C: connection.start-ok (client properties, SASL response)
 *  [S: connection.secure     C: connection.secure-ok]   (not used by PLAIN/AMQPLAIN)
 *   S: connection.tune       C: connection.tune-ok, connection.open (vhost)
 *   S: connection.open-ok
 *
 * Writes: every frame is encoded into one slab Writer; the bytes leave in one socket write per
 * event-loop turn (or sooner once 64 KiB are pending), so a burst of publishes costs one
 * syscall, and the frames of one publish are always contiguous.
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";
import diagnostics from "node:diagnostics_channel";
import type { Duplex } from "node:stream";
import { FRAME_MIN_SIZE, FrameType, PROTOCOL_HEADER, ReplyCode } from "../protocol/constants.js";
import { FrameError } from "../protocol/errors.js";
import { FrameParser, encodeMethodFrame, encodeHeaderFrame, encodeBodyFrames, encodeHeartbeatFrame, type Frame } from "../protocol/frame.js";
import type { Method, MethodOf } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import type { FieldTable } from "../protocol/table.js";
import { encodePublish } from "../protocol/publish.js";
import { Writer } from "../protocol/writer.js";
import { Channel, type WaitOptions } from "./channel.js";
import { AbortError, AmqpError, ConnectionClosedError, TimeoutError, closeError } from "./errors.js";
import { saslResponse, type Mechanism } from "./sasl.js";
import { parseUrl, redact } from "./url.js";
import { MAX_TIMER_MS, isTimeout } from "./timer.js";
import { Recovery, type RecoveryEvents, type RecoveryOptions } from "./recovery.js";

export interface ConnectOptions {
  /**
   * An amqp:// or amqps:// URI; the other options override its parts. A list of URIs is tried
   * in order until one connects (and again in order on each reconnect attempt, with `recovery`).
   */
  url?: string | readonly string[];
  hostname?: string;
  port?: number;
  username?: string;
  password?: string;
  /** Virtual host; default "/". */
  vhost?: string;
  /** TLS: true for defaults (certificate verification on), or node:tls options (ca, cert, key, servername, ...). */
  tls?: boolean | tls.ConnectionOptions;
  /** SASL mechanism; default PLAIN (EXTERNAL when a client certificate is given). */
  mechanism?: Mechanism;
  /** Heartbeat interval we propose, in seconds (default 60). 0 accepts the broker's value. */
  heartbeat?: number;
  /** Largest frame we propose (default 131072; 0 = no limit). A broker value below 4096 is refused. */
  frameMax?: number;
  /** Most channels we propose (default 2047; 0 = no limit, i.e. 65535). */
  channelMax?: number;
  /** Time limit in ms for the whole connect: TCP, TLS and handshake (default 10000). */
  connectionTimeout?: number;
  /** Time limit in ms for each synchronous method (declare, bind, consume, close...; default 30000). */
  timeout?: number;
  /** Largest inbound frame accepted when frame_max is 0 (no limit was negotiated); default 16 MiB. */
  maxInboundFrameSize?: number;
  /**
   * Largest message body accepted (default 512 MiB, the most RabbitMQ's max_message_size can be
   * set to). A content header declaring more closes its channel with 311 content-too-large
   * before any of the body is buffered; the connection carries on.
   */
  maxMessageSize?: number;
  /** Shown in the management UI and `rabbitmqctl list_connections client_properties`. */
  connectionName?: string;
  /** Extra client properties, merged over warren's. */
  clientProperties?: FieldTable;
  /** TCP_NODELAY (default true): without it Nagle's algorithm delays small frames by up to 40 ms. */
  noDelay?: boolean;
  /** Abort the connect. */
  signal?: AbortSignal;
  /** Run over this stream instead of a TCP/TLS socket (tests, tunnels). Called once per connect. */
  transport?: () => Duplex;
  /**
   * Automatic recovery (off by default): after a loss that trying again can fix, reconnect with
   * backoff, re-declare the topology and restore channels and consumers on the same objects.
   * `true` for the defaults. See src/client/recovery.ts.
   */
  recovery?: boolean | RecoveryOptions;
}

interface Resolved {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  tls: false | tls.ConnectionOptions;
  mechanism: Mechanism;
  heartbeat: number;
  frameMax: number;
  channelMax: number;
  connectionTimeout: number;
  timeout: number;
  maxInboundFrameSize: number;
  maxMessageSize: number;
  connectionName: string | undefined;
  clientProperties: FieldTable | undefined;
  noDelay: boolean;
  transport: (() => Duplex) | undefined;
}

function resolveOptions(input: string | (Omit<ConnectOptions, "url"> & { url?: string | undefined }) | undefined): Resolved {
  const o = typeof input === "string" ? { url: input } : (input ?? {});
  const u = parseUrl(o.url ?? "amqp://localhost");
  const tlsOpt = o.tls ?? u.tls;
  const tlsOptions: false | tls.ConnectionOptions = tlsOpt === false ? false : tlsOpt === true ? {} : tlsOpt;
  const hasCert = tlsOptions !== false && tlsOptions.cert !== undefined;
  return checkOptions({
    hostname: o.hostname ?? u.hostname,
    port: o.port ?? (o.tls !== undefined && o.url === undefined ? (tlsOptions ? 5671 : 5672) : u.port),
    username: o.username ?? u.username,
    password: o.password ?? u.password,
    vhost: o.vhost ?? u.vhost,
    tls: tlsOptions,
    mechanism: o.mechanism ?? (u.mechanism as Mechanism | undefined) ?? (hasCert ? "EXTERNAL" : "PLAIN"),
    heartbeat: o.heartbeat ?? u.heartbeat ?? 60,
    frameMax: o.frameMax ?? u.frameMax ?? 131072,
    channelMax: o.channelMax ?? u.channelMax ?? 2047,
    connectionTimeout: o.connectionTimeout ?? u.connectionTimeout ?? 10000,
    timeout: o.timeout ?? 30000,
    maxInboundFrameSize: o.maxInboundFrameSize ?? 16 * 1024 * 1024,
    maxMessageSize: o.maxMessageSize ?? 512 * 1024 * 1024,
    connectionName: o.connectionName ?? u.connectionName,
    clientProperties: o.clientProperties,
    noDelay: o.noDelay ?? true,
    transport: o.transport,
  });
}

/**
 * Refuse option values the protocol cannot carry, before any socket is opened, naming the
 * option: a RangeError/TypeError here beats a broker closing the connection (or a silent
 * truncation to 16 bits) later. Tune fields are short/long integers (spec connection.tune);
 * frame_max is 0 (no limit) or at least frame-min-size, 4096.
 */
function checkOptions(r: Resolved): Resolved {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`connect: ${name} must be an integer from ${min} to ${max}, got ${v}`);
  };
  int("port", r.port, 1, 65535);
  int("heartbeat", r.heartbeat, 0, 65535);
  int("channelMax", r.channelMax, 0, 65535);
  int("frameMax", r.frameMax, 0, 0xffffffff);
  if (r.frameMax !== 0 && r.frameMax < FRAME_MAX_FLOOR) throw new RangeError(`connect: frameMax must be 0 (no limit) or at least ${FRAME_MAX_FLOOR} (RabbitMQ 4.1 and later refuse less), got ${r.frameMax}`);
  for (const name of ["connectionTimeout", "timeout"] as const) if (!isTimeout(r[name])) throw new RangeError(`connect: ${name} must be a number of ms from 1 to ${MAX_TIMER_MS} (setTimeout's limit), got ${r[name]}`);
  // RFC 4616: PLAIN separates its fields with NUL, so a NUL inside one would log in as someone else.
  if (r.mechanism === "PLAIN" && (r.username.includes("\0") || r.password.includes("\0"))) throw new TypeError("connect: a user name or password for SASL PLAIN cannot contain a NUL character");
  if (!["PLAIN", "AMQPLAIN", "EXTERNAL"].includes(r.mechanism)) throw new TypeError(`connect: unknown SASL mechanism ${JSON.stringify(r.mechanism)} (PLAIN, AMQPLAIN or EXTERNAL)`);
  return r;
}

/** Frames in and out, for tracing: `{ connection, channel, frame }`. Free when nobody subscribes. */
export const frameInChannel = diagnostics.channel("warren:frame:in");
export const frameOutChannel = diagnostics.channel("warren:frame:out");
export interface FrameMessage {
  connection: Connection;
  channel: number;
  frame: Frame;
}

export interface ConnectionEvents extends RecoveryEvents {
  /** The broker stopped reading from this connection (a resource alarm): publishes wait until "unblocked". */
  blocked: [reason: string];
  unblocked: [];
  /** The connection is closed; err is undefined for a close by this client. */
  close: [err: AmqpError | undefined];
}

/** "recovering": lost, and automatic recovery is reconnecting (see recovery.ts). */
type State = "opening" | "open" | "closing" | "closed" | "recovering";

const VERSION = "0.1.0";
/**
 * The smallest frame_max warren proposes. The spec allows 4096 (frame-min-size), but RabbitMQ
 * 4.1 and later refuse a tune-ok below 8192 by closing the socket; 8192 works with every version.
 */
const FRAME_MAX_FLOOR = 8192;
/** Flush at once past this many pending bytes instead of waiting for the end of the turn. */
const FLUSH_AT = 64 * 1024;
/** Longest a held ack waits beyond the end of its turn (flushTick). */
const ACK_DELAY = 1;
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * An open AMQP connection. Create with `connect()`.
 */
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

  /** @internal */ options: Resolved;
  /** @internal */ state: State = "opening";
  /** @internal set by connect() when recovery is on */ recovery: Recovery<Resolved> | undefined;
  private socket: Duplex;
  private parser: FrameParser;
  private readonly writer = new Writer();
  /** Plain TCP, no TLS, no injected transport: see writeOut. */
  private readonly reuseSlabs: boolean;
  private flushScheduled = false;
  /** True from a read of the socket until the event loop's check phase: see afterWrite. */
  private readTurn = false;
  private readonly endReadTurn = () => {
    this.readTurn = false;
  };
  private readonly channels: (Channel | undefined)[] = [];
  private nextChannelHint = 1;
  private closeReason: AmqpError | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private wroteSinceTick = false;
  private receivedSinceTick = false;
  private silentTicks = 0;
  private readHolds = 0;
  /** Publishes waiting for 'drain' / connection.unblocked: called with no argument to go on, with the close reason to fail. */
  private drainWaiters: ((err?: AmqpError) => void)[] = [];
  /** The one promise every publish waiting for the current 'drain' shares (no closure per publish). */
  private drainPromise: Promise<void> | undefined;
  private ackHolders: Channel[] = [];
  private unblockWaiters: ((err?: AmqpError) => void)[] = [];
  private handshake: { resolve: () => void; reject: (e: AmqpError) => void } | undefined;
  /**
   * The handshake's next step (spec 2.2.4): start, then secure rounds or tune, then open-ok.
   * A method out of this order is 505 UNEXPECTED_FRAME.
   */
  private handshakeStep: "start" | "tune" | "open-ok" = "start";
  private channel0: { expect: string; resolve: () => void; reject: (e: AmqpError) => void; timer: NodeJS.Timeout } | undefined;
  /** update-secret calls that timed out: their replies, still due in order, are dropped. */
  private lateUpdateSecretOks = 0;
  private closeOkWaiter: (() => void) | undefined;
  /** Our connection.close is written: every frame but close/close-ok is discarded (spec connection.close). */
  private closeSent = false;
  /** Recovery is restoring channels on a new socket: read holds wait until it is done (see holdReading). */
  private restoring = false;
  private readonly flushNow = () => this.flushTick();
  /** Writes the acks flushTick held back, at the latest this long after (see flushTick). */
  private ackTimer: NodeJS.Timeout | undefined;
  private readonly ackTimerFired = () => {
    this.ackTimer = undefined;
    this.flush();
  };

  /** @internal use connect() */
  constructor(options: Resolved, socket: Duplex) {
    super();
    this.options = options;
    this.socket = socket;
    this.reuseSlabs = options.transport === undefined && options.tls === false;
    this.parser = new FrameParser(Math.max(options.frameMax || options.maxInboundFrameSize, FRAME_MIN_SIZE));
    this.bindSocket(socket);
  }

  /**
   * Listen to a socket. Each listener checks that the socket is still ours: after a recovery has
   * moved the connection to a new socket, late events of the old one (its "close" after its
   * "error") must not touch the new one. The "error" listener stays, so a late error is never
   * an uncaught exception.
   */
  private bindSocket(socket: Duplex): void {
    socket.on("data", (chunk: Buffer) => this.socket === socket && this.onData(chunk));
    socket.on("drain", () => this.socket === socket && this.onDrain());
    socket.on("error", (err: Error) => this.socket === socket && this.onSocketGone(err));
    socket.on("close", () => this.socket === socket && this.onSocketGone(undefined));
    socket.on("end", () => this.socket === socket && this.onSocketGone(undefined));
  }

  /** True once closed or lost; every call then fails with `closeReason`. */
  get closed(): boolean {
    return this.state === "closed";
  }

  // -------------------------------------------------------------------------------------------
  // handshake

  /** @internal */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.handshake = { resolve, reject };
      this.socket.write(PROTOCOL_HEADER);
    });
  }

  private onStart(m: MethodOf<"connection.start">): void {
    this.serverProperties = m.serverProperties;
    const o = this.options;
    const offered = m.mechanisms.split(" ");
    if (!offered.includes(o.mechanism)) {
      this.fail(closeError("connection", { replyCode: ReplyCode.ACCESS_REFUSED, replyText: `the broker does not offer SASL mechanism ${o.mechanism} (it offers ${m.mechanisms})`, initiatedBy: "library" }, true));
      return;
    }
    const clientProperties: FieldTable = {
      product: "warren",
      version: VERSION,
      platform: `Node.js ${process.version}`,
      information: "https://www.npmjs.com/package/warren",
      capabilities: {
        publisher_confirms: true,
        exchange_exchange_bindings: true,
        "basic.nack": true,
        consumer_cancel_notify: true,
        "connection.blocked": true,
        authentication_failure_close: true,
        per_consumer_qos: true,
      },
      ...(o.connectionName !== undefined ? { connection_name: o.connectionName } : {}),
      ...o.clientProperties,
    };
    try {
      // Before tune, frame_max is frame-min-size: RabbitMQ drops a larger start-ok
      // (frame_too_large) and the connect would only time out.
      this.sendMethod(0, {
        name: "connection.start-ok",
        clientProperties,
        mechanism: o.mechanism,
        response: saslResponse(o.mechanism, o.username, o.password) as unknown as string,
        locale: "en_US",
      });
    } catch (e) {
      const why = e instanceof RangeError ? e.message : String(e);
      this.fail(
        new ConnectionClosedError({
          replyCode: ReplyCode.FRAME_ERROR,
          replyText: `connection.start-ok cannot be sent (${why}): before connection.tune a broker accepts frames of at most ${FRAME_MIN_SIZE} bytes, so clientProperties, the user name and the password must fit in that`,
          initiatedBy: "library",
          cause: e,
        }),
      );
    }
  }

  /**
   * Tune (RabbitMQ "Connections" guide): for frame_max and channel_max the lower non-zero value
   * wins, 0 meaning no limit; for the heartbeat, the lower if both are non-zero, else the other.
   */
  private onTune(m: MethodOf<"connection.tune">): void {
    const o = this.options;
    if (m.frameMax !== 0 && m.frameMax < FRAME_MIN_SIZE) {
      this.fail(new ConnectionClosedError({ replyCode: ReplyCode.NOT_ALLOWED, replyText: `the broker proposed frame_max ${m.frameMax}, below the minimum of ${FRAME_MIN_SIZE}`, initiatedBy: "library" }));
      return;
    }
    const lower = (a: number, b: number) => (a === 0 ? b : b === 0 ? a : Math.min(a, b));
    this.frameMax = lower(o.frameMax, m.frameMax);
    this.channelMax = lower(o.channelMax, m.channelMax) || 0xffff;
    this.heartbeat = o.heartbeat === 0 || m.heartbeat === 0 ? Math.max(o.heartbeat, m.heartbeat) : Math.min(o.heartbeat, m.heartbeat);
    this.parser.maxFrameSize = this.frameMax === 0 ? o.maxInboundFrameSize : this.frameMax;
    this.sendMethod(0, { name: "connection.tune-ok", channelMax: this.channelMax, frameMax: this.frameMax, heartbeat: this.heartbeat });
    this.sendMethod(0, { name: "connection.open", virtualHost: o.vhost });
    this.startHeartbeat();
  }

  // -------------------------------------------------------------------------------------------
  // inbound

  private onData(chunk: Buffer): void {
    this.receivedSinceTick = true;
    // Held (see holdReading): this chunk was a heartbeat tick's peek; stop again after it.
    if (this.readHolds > 0 && this.holdsPause()) this.socket.pause();
    if (!this.readTurn) {
      this.readTurn = true;
      setImmediate(this.endReadTurn);
    }
    if (this.state === "closed" || this.state === "recovering") return;
    // Before the first frame, a broker that speaks another protocol version answers with its own header (4.2.2).
    if (this.state === "opening" && this.parser.buffered === 0 && chunk[0] === 0x41 /* 'A' */) {
      this.fail(new FrameError(501, `the broker refused protocol AMQP 0-9-1 and offered ${JSON.stringify(chunk.subarray(0, 8).toString("latin1"))}`));
      return;
    }
    this.parser.push(chunk);
    try {
      let frame: Frame | undefined;
      while ((frame = this.parser.next()) !== undefined) {
        if (frameInChannel.hasSubscribers) frameInChannel.publish({ connection: this, channel: frame.channel, frame } satisfies FrameMessage);
        if (frame.channel === 0) this.onChannel0(frame);
        else if (this.closeSent) continue; // spec connection.close: discard all but close/close-ok
        else {
          const ch = this.channels[frame.channel];
          if (ch === undefined) throw new FrameError(504, `frame on channel ${frame.channel}, which is not open`);
          ch.onFrame(frame);
        }
        if ((this.state as State) === "closed") return; // a frame may have closed the connection
      }
    } catch (e) {
      if (e instanceof FrameError) this.protocolError(e);
      else throw e; // a bug in warren itself: let it surface
    }
  }

  private onChannel0(frame: Frame): void {
    if (frame.type === FrameType.Heartbeat) return;
    if (frame.type !== FrameType.Method) throw new FrameError(505, `content frame on channel 0`);
    const m = frame.method;
    switch (m.name) {
      case "connection.start":
        this.expectStep(m.name, "start");
        this.handshakeStep = "tune";
        return this.onStart(m);
      case "connection.secure":
        this.expectStep(m.name, "tune");
        // PLAIN/AMQPLAIN/EXTERNAL need no challenge round: answer with the same credentials.
        return this.sendMethod(0, { name: "connection.secure-ok", response: saslResponse(this.options.mechanism, this.options.username, this.options.password) as unknown as string });
      case "connection.tune":
        this.expectStep(m.name, "tune");
        this.handshakeStep = "open-ok";
        return this.onTune(m);
      case "connection.open-ok":
        this.expectStep(m.name, "open-ok");
        this.state = "open";
        this.handshake?.resolve();
        this.handshake = undefined;
        return;
      case "connection.close": {
        // The broker closes: answer close-ok (4.2.? "closing a connection"), then the socket may go.
        const err = closeError("connection", { replyCode: m.replyCode, replyText: m.replyText, classId: m.classId, methodId: m.methodId, initiatedBy: "server" }, this.state === "opening");
        this.sendMethod(0, { name: "connection.close-ok" });
        this.flush();
        this.fail(err);
        return;
      }
      case "connection.close-ok":
        if (this.state !== "closing") throw new FrameError(505, "connection.close-ok without a close");
        this.closeOkWaiter?.();
        return;
      case "connection.blocked":
        this.blocked = true;
        this.emit("blocked", m.reason);
        return;
      case "connection.unblocked": {
        this.blocked = false;
        const waiters = this.unblockWaiters;
        this.unblockWaiters = [];
        for (const w of waiters) w();
        this.emit("unblocked");
        return;
      }
      case "connection.update-secret-ok":
        if (this.lateUpdateSecretOks > 0) {
          this.lateUpdateSecretOks--; // the reply of a call that timed out: replies come in order
          return;
        }
        if (this.channel0?.expect !== m.name) throw new FrameError(505, "unexpected connection.update-secret-ok");
        clearTimeout(this.channel0.timer);
        this.channel0.resolve();
        this.channel0 = undefined;
        return;
      default:
        throw new FrameError(503, `${m.name} is not valid on channel 0`);
    }
  }

  /** A handshake method is valid only as the step the handshake is at, and only while opening. */
  private expectStep(name: string, step: "start" | "tune" | "open-ok"): void {
    if (this.state !== "opening") throw new FrameError(505, `${name} after the handshake`);
    if (this.handshakeStep !== step) throw new FrameError(505, `${name} out of order in the handshake (expected ${this.handshakeStep === "tune" ? "connection.secure or connection.tune" : `connection.${this.handshakeStep}`})`);
  }

  // -------------------------------------------------------------------------------------------
  // outbound

  /** @internal Encode one method frame; it leaves with the next flush. Throws TypeError/RangeError on a bad argument, writing nothing. */
  sendMethod(channel: number, method: Method): void {
    if (this.state === "closed") return;
    this.encodeMethod(channel, method);
    this.afterWrite();
  }

  /** @internal Encode without scheduling a flush. */
  encodeMethod(channel: number, method: Method): void {
    encodeMethodFrame(this.writer, channel, method, this.frameMax);
    if (frameOutChannel.hasSubscribers) frameOutChannel.publish({ connection: this, channel, frame: { type: FrameType.Method, channel, method } } satisfies FrameMessage);
  }

  /** @internal A channel holds a coalesced ack: write it at the next flush. */
  holdAck(ch: Channel): void {
    this.ackHolders.push(ch);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private writeHeldAcks(): void {
    const holders = this.ackHolders;
    if (holders.length === 0) return;
    this.ackHolders = [];
    for (const ch of holders) ch.flushAck();
  }

  /** @internal A method with content (basic.publish): method, header and body frames, contiguous; all or nothing. */
  sendContent(channel: number, method: Method, properties: BasicProperties, body: Uint8Array): void {
    const w = this.writer;
    // Past the slab's free space: send what is pending first rather than grow the slab, which
    // would copy the pending bytes only to send them together (4 KiB publish: -25% client CPU).
    if (w.length > 0 && w.pos + body.length + 512 > w.buf.length) this.flush();
    const mark = w.mark();
    encodeMethodFrame(w, channel, method, this.frameMax);
    try {
      encodeHeaderFrame(w, channel, 60, body.length, properties, this.frameMax);
    } catch (e) {
      w.rewind(mark);
      throw e;
    }
    encodeBodyFrames(w, channel, body, this.frameMax);
    if (frameOutChannel.hasSubscribers) this.traceContent(channel, method, properties, body);
    this.afterWrite();
  }

  /**
   * @internal basic.publish through the dedicated encoder (protocol/publish.ts): the same frames
   * as sendContent, without building a method object per message (16 B publish: ~15% less client CPU).
   */
  sendPublish(channel: number, exchange: string, routingKey: string, mandatory: boolean, properties: BasicProperties, body: Uint8Array): void {
    const w = this.writer;
    if (w.length > 0 && w.pos + body.length + 512 > w.buf.length) this.flush();
    encodePublish(w, channel, exchange, routingKey, mandatory, properties, body, this.frameMax);
    if (frameOutChannel.hasSubscribers) this.traceContent(channel, { name: "basic.publish", exchange, routingKey, mandatory, immediate: false }, properties, body);
    this.afterWrite();
  }

  private traceContent(channel: number, method: Method, properties: BasicProperties, body: Uint8Array): void {
    const pub = (frame: Frame) => frameOutChannel.publish({ connection: this, channel, frame } satisfies FrameMessage);
    pub({ type: FrameType.Method, channel, method });
    pub({ type: FrameType.Header, channel, classId: 60, bodySize: body.length, properties });
    const max = this.frameMax ? this.frameMax - 8 : body.length || 1;
    for (let off = 0; off < body.length; off += max) pub({ type: FrameType.Body, channel, payload: Buffer.from(body.buffer, body.byteOffset + off, Math.min(max, body.length - off)) });
  }

  private afterWrite(): void {
    if (this.writer.length >= FLUSH_AT) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // The first frames of a turn leave at once: a lone publish is on the wire before publish()
      // returns, and the broker starts on it without waiting for what the same turn adds after
      // it (fanout at 2,000 msg/s: p50 0.21 -> 0.18 ms, p99 lower in 8 of 10 paired runs).
      // Not in a turn that reads this socket: what frames arriving together set off (publishes
      // in reply to confirms or deliveries) leaves together, else each batch would go as two
      // writes (pipelined confirms: 6.7 publishes per write instead of 13).
      // What follows in the turn coalesces and leaves at its end: nextTick, not setImmediate, so
      // before the event loop polls for I/O again, and ticks wait for the microtask queue, so a
      // loop of awaited publishes still writes once per FLUSH_AT, not once per publish.
      if (!this.readTurn) this.writeOut();
      process.nextTick(this.flushNow);
    }
  }

  /**
   * The end-of-turn flush. While every channel holding acks holds fewer than its ackBatch (a
   * quarter of its prefetch, so the broker's window stays at least three-quarters open), the
   * held acks wait up to ACK_DELAY ms more, or until a channel reaches its batch: one
   * basic.ack(multiple) per many socket reads instead of one per read. Other frames leave now.
   */
  private flushTick(): void {
    if (this.ackHolders.length > 0 && this.state === "open" && this.ackHolders.every((ch) => ch.pendingAck !== 0 && ch.pendingAck - ch.ackHeldFrom + 1 < ch.ackBatch)) {
      this.flushScheduled = false;
      this.ackTimer ??= setTimeout(this.ackTimerFired, ACK_DELAY);
      this.writeOut();
      return;
    }
    this.flush();
  }

  /** @internal A channel's held acks reached its batch: write them at the end of this turn. */
  scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** @internal Write out what is pending. */
  flush(): void {
    this.flushScheduled = false;
    if (this.ackTimer !== undefined) {
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
    if (this.state === "closed") return;
    this.writeHeldAcks();
    this.writeOut();
  }

  /** Hand the writer's bytes, if any, to the socket in one write. */
  private writeOut(): void {
    if (this.writer.length === 0) return;
    this.wroteSinceTick = true;
    const socket = this.socket;
    socket.write(this.writer.take());
    // A plain TCP socket with nothing left buffered has copied every byte into the kernel, so
    // the writer may write over them: one slab reused instead of a new 64 KiB per 64 KiB sent.
    // TLS and injected transports may still hold the bytes: they always get fresh slabs.
    if (this.reuseSlabs && socket.writableLength === 0) this.writer.release();
  }

  /** @internal Backpressure: resolved while the socket can take more; else a promise for the next 'drain'. */
  writable(): Promise<void> {
    if (this.blocked) return new Promise<void>((resolve, reject) => this.unblockWaiters.push((err) => (err ? reject(err) : resolve())));
    if (!this.socket.writableNeedDrain) return RESOLVED;
    return (this.drainPromise ??= new Promise<void>((resolve, reject) =>
      this.drainWaiters.push((err) => {
        this.drainPromise = undefined;
        if (err) reject(err);
        else resolve();
      }),
    ));
  }

  private onDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * @internal Stop reading from the socket (a consumer iterator's buffer is full); counted, so
   * holds nest. Not while closing (close-ok must be read) nor while recovery restores channels
   * (its own replies must be read): the hold takes effect once restored.
   */
  holdReading(): void {
    if (this.readHolds++ === 0 && this.holdsPause()) this.socket.pause();
  }

  /** Whether a read hold pauses the socket now: only while open, and not while restoring. */
  private holdsPause(): boolean {
    return this.state === "open" && !this.restoring;
  }

  /** @internal */
  releaseReading(): void {
    if (this.readHolds > 0 && --this.readHolds === 0) this.socket.resume();
  }

  // -------------------------------------------------------------------------------------------
  // heartbeats (4.2.7): sent when we have written nothing for half an interval; the peer is
  // declared dead after two intervals without a byte from it.

  private startHeartbeat(): void {
    if (this.heartbeat === 0) return;
    this.heartbeatTimer = setInterval(() => this.heartbeatTick(), (this.heartbeat * 1000) / 2);
    this.heartbeatTimer.unref();
  }

  private heartbeatTick(): void {
    // A held socket still reads one chunk per tick: a close from the broker, the end of the
    // socket or a silent peer is noticed even while a consumer iterator is behind (memory grows
    // by at most a chunk per tick).
    if (this.readHolds > 0) this.socket.resume();
    if (!this.wroteSinceTick) {
      encodeHeartbeatFrame(this.writer);
      if (frameOutChannel.hasSubscribers) frameOutChannel.publish({ connection: this, channel: 0, frame: { type: FrameType.Heartbeat, channel: 0 } } satisfies FrameMessage);
      this.flush();
    }
    this.wroteSinceTick = false;
    if (this.receivedSinceTick) this.silentTicks = 0;
    else if (++this.silentTicks >= 4) {
      this.fail(new ConnectionClosedError({ replyCode: 0, replyText: `missed heartbeats: nothing from the broker for ${this.heartbeat * 2} s`, initiatedBy: "library" }));
      return;
    }
    this.receivedSinceTick = false;
  }

  // -------------------------------------------------------------------------------------------
  // channels

  /**
   * Open a new channel; `timeout` and `signal` bound the wait for channel.open-ok (see
   * WaitOptions). While a recovering connection is reconnecting, waits for it first (bounded by
   * recovery.waitTimeout).
   */
  async openChannel(wait?: WaitOptions): Promise<Channel> {
    if (this.state === "recovering" && this.recovery) await this.recovery.connected.wait(this.recovery.waitTimeout, "openChannel", wait?.signal);
    if (this.state !== "open") throw this.closeReason ?? new ConnectionClosedError({ replyCode: 0, replyText: "connection is not open", initiatedBy: "library" });
    if (wait?.signal?.aborted) throw new AbortError("openChannel aborted");
    const id = this.allocateChannelId();
    const ch = new Channel(this, id);
    this.channels[id] = ch;
    await ch.open(wait);
    return ch;
  }

  private allocateChannelId(): number {
    const max = this.channelMax;
    for (let i = 0; i < max; i++) {
      const id = ((this.nextChannelHint - 1 + i) % max) + 1;
      if (this.channels[id] === undefined) {
        this.nextChannelHint = (id % max) + 1;
        return id;
      }
    }
    // Not a ConnectionClosedError: the connection is fine, and a channel closed later frees an id.
    throw new AmqpError(`all ${max} channels are in use (channel_max ${max} was negotiated); close one first`);
  }

  /** @internal A channel id is free again only after close-ok, sent or received. */
  releaseChannel(id: number): void {
    this.channels[id] = undefined;
  }

  /** @internal */
  get openChannels(): number {
    let n = 0;
    for (const c of this.channels) if (c !== undefined) n++;
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // update-secret (RabbitMQ extension: renew an expiring OAuth token without reconnecting)

  async updateSecret(newSecret: string, reason: string): Promise<void> {
    if (this.state !== "open") throw this.closeReason ?? new ConnectionClosedError({ replyCode: 0, replyText: "connection is not open", initiatedBy: "library" });
    if (this.channel0) throw new AmqpError("an update-secret is already in progress");
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.channel0 = undefined;
        this.lateUpdateSecretOks++;
        reject(new TimeoutError(`connection.update-secret got no answer in ${this.options.timeout} ms`));
      }, this.options.timeout);
      this.channel0 = { expect: "connection.update-secret-ok", resolve, reject, timer };
    });
    this.sendMethod(0, { name: "connection.update-secret", newSecret, reason });
    return done;
  }

  // -------------------------------------------------------------------------------------------
  // closing

  /**
   * Close the connection. From the call on, every new call on it and its channels rejects with
   * a ConnectionClosedError. Publishes still unconfirmed are waited for (at most the sync
   * timeout), then connection.close goes out and close-ok is awaited (at most the sync timeout
   * again), reading the socket even while a consumer iterator holds it. Every call still pending
   * then rejects. Resolves when all is released: no timer or socket is left, so a script exits
   * by itself.
   */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.state === "closing") return new Promise<void>((resolve) => this.once("close", () => resolve()));
    const reason = new ConnectionClosedError({ replyCode: ReplyCode.REPLY_SUCCESS, replyText: "closed by the client", initiatedBy: "client" });
    if (this.state === "recovering") this.recovery?.stop(reason);
    if (this.state === "opening" || this.state === "recovering") {
      this.fail(reason);
      return;
    }
    this.state = "closing";
    this.closeReason = reason;
    // What close needs to read (confirms, close-ok) must not wait behind a slow consumer iterator.
    this.socket.resume();
    const timeout = this.options.timeout;
    const confirms = this.channels.map((ch) => ch?.waitForConfirms({ timeout }).catch(() => undefined));
    await Promise.all(confirms);
    if ((this.state as State) === "closed") return;
    this.writeHeldAcks(); // acks the user made before close() must reach the broker before the close
    this.sendMethod(0, { name: "connection.close", replyCode: ReplyCode.REPLY_SUCCESS, replyText: "closed by the client", classId: 0, methodId: 0 });
    this.closeSent = true;
    this.flush();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout);
      this.closeOkWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.fail(reason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The peer broke the protocol: tell it why (connection.close with the code), then drop it. */
  private protocolError(e: FrameError): void {
    if (this.state === "closed") return;
    // Not during the handshake: before open-ok the spec has the client just close the socket
    // (connection.start, tune); nor while closing, when our connection.close is already out.
    if (this.state === "open") {
      this.sendMethod(0, { name: "connection.close", replyCode: e.code, replyText: e.message.slice(0, 255), classId: 0, methodId: 0 });
      this.flush();
    }
    this.fail(e);
  }

  private onSocketGone(err: Error | undefined): void {
    if (this.state === "closed" || this.state === "recovering") return; // recovering: the old socket's late events
    if (this.state === "closing" && err === undefined) {
      this.fail(new ConnectionClosedError({ replyCode: ReplyCode.REPLY_SUCCESS, replyText: "closed by the client", initiatedBy: "client" }));
      return;
    }
    const how = err ? `: ${err.message}` : ` (socket closed by the peer${this.parser.buffered > 0 ? ` in the middle of a frame, ${this.parser.buffered} bytes of it received` : ""})`;
    // Gone right after our tune-ok: the broker refused what was negotiated (it says nothing, it
    // resets the socket), so name it rather than leave the user with ECONNRESET.
    const during =
      this.state === "opening" && this.handshakeStep === "open-ok"
        ? `the broker closed the connection after tune-ok (negotiated frame_max ${this.frameMax}, channel_max ${this.channelMax}, heartbeat ${this.heartbeat}; RabbitMQ 4.1 and later refuse frame_max below ${FRAME_MAX_FLOOR})`
        : "connection lost";
    this.fail(new ConnectionClosedError({ replyCode: 0, replyText: `${during}${how}`, initiatedBy: "library", cause: err }));
  }

  /**
   * @internal The one way down: idempotent. Rejects the handshake, every channel's pending
   * calls, unconfirmed publishes and consumer iterators with the same reason; clears every
   * timer; destroys the socket; emits "close" once.
   */
  fail(reason: AmqpError): void {
    if (this.state === "closed") return;
    if (this.state === "open" && this.recovery?.shouldRecover(reason)) return this.suspend(reason);
    this.state = "closed";
    this.closeReason = reason;
    this.stopTimers(reason);
    for (const ch of this.channels) ch?.fail(reason);
    this.channels.length = 0;
    this.handshake?.reject(reason);
    this.handshake = undefined;
    this.dropSocket(reason);
    const clean = reason instanceof ConnectionClosedError && reason.initiatedBy === "client";
    this.emit("close", clean ? undefined : reason);
  }

  /** Down (closed or suspended): no heartbeat, no held-ack flush, no connection-level call waiting. */
  private stopTimers(reason: AmqpError): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.channel0) {
      clearTimeout(this.channel0.timer);
      this.channel0.reject(reason);
      this.channel0 = undefined;
    }
  }

  /**
   * Let out what the writer still holds (a close or close-ok we owe the broker), then drop the
   * socket. Publishes waiting for drain or unblock fail with the reason: their bytes were still
   * queued behind the high-water mark (or unread by a blocked broker) when the socket went, so
   * they were never delivered, and must never resolve as if sent.
   */
  private dropSocket(reason: AmqpError): void {
    for (const w of this.drainWaiters.splice(0)) w(reason);
    for (const w of this.unblockWaiters.splice(0)) w(reason);
    const s = this.socket;
    if (this.writer.length > 0 && s.writable) s.end(this.writer.take());
    else {
      this.writer.take();
      s.end();
    }
    // end() lets the close frames out; destroy soon after so no socket outlives the connection.
    setImmediate(() => s.destroy()).unref();
  }

  /** @internal Why the connection closed (undefined while open). */
  get reason(): AmqpError | undefined {
    return this.closeReason;
  }

  // -------------------------------------------------------------------------------------------
  // recovery (recovery.ts drives it; these are the parts that touch the connection's insides)

  /**
   * Lost, and recovery is on: like fail(), but the channels are kept (suspended) so that the
   * same objects carry on after the reconnect; the socket and everything written to it go.
   */
  private suspend(reason: AmqpError): void {
    this.state = "recovering";
    this.stopTimers(reason);
    this.ackHolders = [];
    for (const [id, ch] of this.channels.entries()) if (ch !== undefined && !ch.suspend(reason)) this.channels[id] = undefined;
    this.blocked = false;
    this.dropSocket(reason);
    this.recovery!.lost(reason);
  }

  /** @internal Recovery: move onto the socket of a freshly opened connection to the same broker. */
  adopt(fresh: Connection): void {
    const socket = fresh.socket;
    clearInterval(fresh.heartbeatTimer);
    fresh.state = "closed"; // its listeners now ignore the socket
    this.socket = socket;
    this.parser = fresh.parser;
    this.options = fresh.options;
    this.frameMax = fresh.frameMax;
    this.channelMax = fresh.channelMax;
    this.heartbeat = fresh.heartbeat;
    this.serverProperties = fresh.serverProperties;
    this.blocked = fresh.blocked; // RabbitMQ may send connection.blocked right after open-ok
    this.bindSocket(socket);
    // Held reading stays off until the channels are restored: recovery's own calls must be answered.
    this.restoring = true;
    this.silentTicks = 0;
    this.state = "open";
    this.startHeartbeat();
  }

  /** @internal Recovery has restored the channels: a read hold taken meanwhile now pauses the socket. */
  restored(): void {
    this.restoring = false;
    if (this.readHolds > 0 && this.holdsPause()) this.socket.pause();
  }

  /** @internal Recovery: the channels waiting to be restored, by id. */
  recoveringChannels(): Channel[] {
    return this.channels.filter((c): c is Channel => c !== undefined && c.recovering);
  }
}

/**
 * Connect and complete the handshake. `connect("amqp://user:pass@host/vhost?heartbeat=30")` or
 * `connect({ hostname, port, username, password, vhost, tls, ... })`. With a list of URLs, each
 * is tried in order and the first to connect is used; if none does, the last error is thrown.
 * With `recovery`, the connection reconnects by itself after a loss (see recovery.ts).
 */
export async function connect(urlOrOptions?: string | ConnectOptions): Promise<Connection> {
  const given: ConnectOptions = typeof urlOrOptions === "string" ? { url: urlOrOptions } : (urlOrOptions ?? {});
  const urls: readonly (string | undefined)[] = typeof given.url === "string" || given.url === undefined ? [given.url] : given.url;
  if (urls.length === 0) throw new TypeError("connect: url is an empty list");
  const endpoints = urls.map((url) => resolveOptions({ ...given, url }));
  const recoveryOptions = given.recovery === true ? {} : given.recovery === false ? undefined : given.recovery;
  let conn: Connection | undefined;
  let lastError: unknown;
  for (const o of endpoints) {
    try {
      conn = await connectTo(o, given.signal);
      break;
    } catch (e) {
      lastError = e;
      if (given.signal?.aborted || !(e instanceof ConnectionClosedError || e instanceof TimeoutError)) throw e;
    }
  }
  if (conn === undefined) throw lastError;
  if (recoveryOptions !== undefined) conn.recovery = new Recovery(conn, endpoints, connectTo, recoveryOptions);
  return conn;
}

/** Connect to one endpoint. */
async function connectTo(o: Resolved, signal: AbortSignal | undefined): Promise<Connection> {
  if (signal?.aborted) throw new AbortError("connect aborted");
  const socket = o.transport ? o.transport() : openSocket(o);
  const conn = new Connection(o, socket);
  const where = `${o.tls ? "amqps" : "amqp"}://${o.hostname}:${o.port}`;
  let timer: NodeJS.Timeout | undefined;
  let onClose: ((err: AmqpError | undefined) => void) | undefined;
  const onAbort = () => conn.fail(new AbortError("connect aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        conn.fail(new TimeoutError(`could not connect to ${where} within ${o.connectionTimeout} ms`));
      }, o.connectionTimeout);
      const begin = () => conn.start().then(resolve, reject);
      if (o.transport) begin();
      else socket.once(o.tls ? "secureConnect" : "connect", begin);
      // Errors before the handshake starts (ECONNREFUSED, DNS, TLS) arrive through fail() too.
      onClose = (err) => reject(err ?? new ConnectionClosedError({ replyCode: 0, replyText: "closed during connect", initiatedBy: "library" }));
      conn.once("close", onClose);
    });
  } catch (e) {
    if (e instanceof ConnectionClosedError && e.initiatedBy === "library" && e.replyCode === 0) {
      throw new ConnectionClosedError({ replyCode: 0, replyText: `could not connect to ${redact(where)}: ${e.replyText.replace(/^connection lost: /, "")}`, initiatedBy: "library", cause: e.cause });
    }
    throw e;
  } finally {
    clearTimeout(timer);
    if (onClose) conn.off("close", onClose);
    signal?.removeEventListener("abort", onAbort);
  }
  return conn;
}

function openSocket(o: Resolved): Duplex {
  const socket = o.tls
    ? tls.connect({ servername: net.isIP(o.hostname) ? undefined : o.hostname, ...o.tls, host: o.hostname, port: o.port })
    : net.connect({ host: o.hostname, port: o.port });
  socket.setNoDelay(o.noDelay);
  return socket;
}
