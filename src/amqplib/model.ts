/**
 * connect() and ChannelModel, amqplib's connection (promise API), over one warren Connection:
 * amqplib's URL query parameters and socket options in warren's terms, its events ("error",
 * "close", "blocked", "unblocked", "update-secret-ok"), and its errors for a connection refused
 * or closed by the broker.
 */
import { EventEmitter } from "node:events";
import {
  AuthenticationError,
  ConnectionClosedError,
  type AmqpError,
  connect as warrenConnect,
  type ConnectOptions,
  type Connection as WarrenConnection,
  type Mechanism,
} from "../index.js";
import { Channel, ConfirmChannel, type ChannelParent, type ConnectionInfo } from "./channel.js";
import { safeEmit } from "./emit.js";
import { IllegalOperationError, connectionClosed, warnOrEmitError } from "./errors.js";
import { RecoveringChannelModel, type RecoveryOptions } from "./recovering.js";
import type { ChannelOptions, Credentials, Options, SocketOptions } from "./types.js";

/**
 * Open a connection: `connect("amqp://user:pass@host/vhost?heartbeat=30")`, or with amqplib's
 * options object. With `socketOptions.recovery`, a RecoveringChannelModel (recovering.ts).
 */
export function connect(
  url: string | Options.Connect,
  socketOptions: SocketOptions & { recovery: RecoveryOptions | true },
): Promise<RecoveringChannelModel>;
export function connect(url?: string | Options.Connect, socketOptions?: SocketOptions): Promise<ChannelModel>;
export async function connect(
  url: string | Options.Connect = "amqp://localhost",
  socketOptions: SocketOptions & { recovery?: (RecoveryOptions & { enabled?: boolean }) | boolean } = {},
): Promise<ChannelModel | RecoveringChannelModel> {
  const { recovery, ...rest } = socketOptions;
  if (RecoveringChannelModel.asked(recovery)) {
    const model = new RecoveringChannelModel(() => open(url, rest), recovery);
    return recovery === true || recovery.waitForConnect !== false ? model.waitForConnect() : model;
  }
  return open(url, rest);
}

async function open(url: string | Options.Connect, socketOptions: SocketOptions): Promise<ChannelModel> {
  let conn: WarrenConnection;
  try {
    conn = await warrenConnect(connectOptions(url, socketOptions));
  } catch (e) {
    throw connectError(e);
  }
  return new ChannelModel(conn);
}

/** What amqplib would have thrown: the socket's own error (ECONNREFUSED...), or the broker's refusal in its words. */
function connectError(e: unknown): unknown {
  if (e instanceof AuthenticationError || (e instanceof ConnectionClosedError && e.initiatedBy === "server"))
    return new Error(
      `Handshake terminated by server: ${connectionClosed(e).message.replace(/^Connection closed: /, "")}`,
    );
  const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
  return cause instanceof Error && typeof cause.code === "string" ? cause : e;
}

/**
 * amqplib's URL query parameters (camelCase) are RabbitMQ URI's (snake_case) to warren; locale
 * and maxFrameSize are options (frameLimit below).
 */
const QUERY: Record<string, string | null> = {
  heartbeat: "heartbeat",
  frameMax: "frame_max",
  channelMax: "channel_max",
  locale: null,
  maxFrameSize: null,
};

function connectOptions(url: string | Options.Connect, s: SocketOptions): ConnectOptions {
  const { noDelay, timeout, clientProperties, credentials, keepAlive, keepAliveDelay, ...tlsOptions } = s;
  const o: ConnectOptions = {};
  let secure: boolean;
  if (typeof url === "string") {
    const u = new URL(url);
    for (const [k, v] of [...u.searchParams]) {
      u.searchParams.delete(k);
      const name = QUERY[k];
      if (name) u.searchParams.set(name, v);
      if (k === "maxFrameSize") frameLimit(o, Number(v));
      if (k === "locale") o.locale = v;
    }
    o.url = u.toString();
    secure = u.protocol === "amqps:";
  } else {
    secure = url.protocol === "amqps";
    o.hostname = url.hostname ?? "localhost";
    o.port = url.port ?? (secure ? 5671 : 5672);
    o.username = url.username ?? "guest";
    o.password = url.password ?? "guest";
    o.vhost = url.vhost ?? "/";
    if (url.heartbeat !== undefined) o.heartbeat = url.heartbeat;
    if (url.frameMax !== undefined) o.frameMax = url.frameMax;
    if (url.channelMax !== undefined) o.channelMax = url.channelMax;
    if (url.maxFrameSize !== undefined) frameLimit(o, url.maxFrameSize);
    if (url.locale !== undefined) o.locale = url.locale;
    if (url.credentials !== undefined) Object.assign(o, sasl(url.credentials));
  }
  if (secure) o.tls = tlsOptions;
  if (noDelay !== undefined) o.noDelay = noDelay;
  // amqplib: setKeepAlive(true, keepAliveDelay || 0) when keepAlive is truthy.
  if (keepAlive) o.keepAlive = keepAliveDelay || 0;
  if (timeout !== undefined) o.connectionTimeout = timeout;
  if (clientProperties !== undefined)
    o.clientProperties = clientProperties as NonNullable<ConnectOptions["clientProperties"]>;
  if (credentials !== undefined) Object.assign(o, sasl(credentials));
  return o;
}

/**
 * amqplib's maxFrameSize: the largest frame accepted from the broker. warren holds frames to the
 * negotiated frame_max anyway; this is its limit when none is negotiated. 0 (amqplib: no limit)
 * keeps warren's bound: memory stays bounded whatever a peer sends.
 */
function frameLimit(o: ConnectOptions, n: number): void {
  if (Number.isSafeInteger(n) && n > 0) o.maxInboundFrameSize = n;
}

function sasl(c: Credentials): Pick<ConnectOptions, "mechanism" | "username" | "password"> {
  const o: Pick<ConnectOptions, "mechanism" | "username" | "password"> = { mechanism: c.mechanism as Mechanism };
  if (c.username !== undefined) o.username = c.username;
  if (c.password !== undefined) o.password = c.password;
  return o;
}

/** amqplib's connection: createChannel(), createConfirmChannel(), close(), updateSecret(), and its events. */
export class ChannelModel extends EventEmitter {
  readonly connection: ConnectionInfo;
  readonly #conn: WarrenConnection;
  /** What amqplib says of the connection once it is closed: "Connection closed (by client)", or its error. */
  #closedAs: string | undefined;
  /** The error the connection closed with, as amqplib has it ("close" passes it on). */
  #error: Error | undefined;
  readonly #parent: ChannelParent;

  /** @internal connect() makes these. */
  constructor(conn: WarrenConnection) {
    super();
    this.#conn = conn;
    this.#parent = { conn, ended: (err) => this.#ended(err) };
    this.connection = conn as unknown as ConnectionInfo;
    conn.on("close", (err) => {
      this.#ended(err);
      safeEmit(this, "close", this.#error); // amqplib passes its (absent) error along
    });
    conn.on("blocked", (reason) => safeEmit(this, "blocked", reason));
    conn.on("unblocked", () => safeEmit(this, "unblocked"));
  }

  /**
   * The connection has ended: once, the model's "error" (amqplib emits it before its channels
   * close; they tell the model first, through ended()) and what later calls are refused with.
   */
  #ended(err: AmqpError | undefined): void {
    if (this.#closedAs !== undefined) return;
    if (err === undefined) return void (this.#closedAs = "Connection closed (by client)");
    const byServer = err instanceof ConnectionClosedError && err.initiatedBy === "server";
    const e = byServer ? connectionClosed(err) : err;
    this.#error = e;
    this.#closedAs = `Connection closed (${String(e)})`;
    // As amqplib: an operator's close (320 CONNECTION_FORCED) or a clean one (200) is no "error", only a "close" with it.
    if (!(byServer && (err.replyCode === 320 || err.replyCode === 200)))
      warnOrEmitError(this, e, "the connection closed with an error");
  }

  async close(): Promise<void> {
    this.#assertOpen();
    await this.#conn.close();
  }

  async createChannel(options?: ChannelOptions): Promise<Channel> {
    return new Channel(await this.#open(), this.#parent, options);
  }

  async createConfirmChannel(options?: ChannelOptions): Promise<ConfirmChannel> {
    const ch = await this.#open();
    await ch.confirmSelect();
    return new ConfirmChannel(ch, this.#parent, options);
  }

  #assertOpen(): void {
    if (this.#conn.closed) throw new IllegalOperationError(this.#closedAs ?? "Connection closed (by client)");
  }

  async #open() {
    this.#assertOpen();
    return this.#conn.openChannel();
  }

  async updateSecret(newSecret: Buffer, reason: string): Promise<void> {
    await this.#conn.updateSecret(newSecret.toString(), reason);
    safeEmit(this, "update-secret-ok");
  }
}
