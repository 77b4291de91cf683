/**
 * What `connect()` accepts, and the same options resolved: a URL's parts, defaults and checks,
 * so that a value the protocol cannot carry is refused, naming the option, before any socket is
 * opened.
 */
import type tls from "node:tls";
import type { Duplex } from "node:stream";
import type { FieldTable } from "../protocol/table.js";
import type { CredentialsProvider } from "./credentials.js";
import type { Mechanism } from "./sasl.js";
import { parseUrl } from "./url.js";
import type { HostOrder } from "./hosts.js";
import { MAX_TIMER_MS, isTimeout } from "./wait.js";

/**
 * The smallest frame_max warren proposes. The spec allows 4096 (frame-min-size), but RabbitMQ
 * 4.1 and later refuse a tune-ok below 8192 by closing the socket; 8192 works with every version.
 */
export const FRAME_MAX_FLOOR = 8192;

/** What connect() accepts besides a URL string: each option overrides the URL's part. */
export interface ConnectOptions {
  /**
   * An amqp:// or amqps:// URI; the other options override its parts. A list of URIs is tried
   * in turn until one connects (and again on each reconnect round, with `recovery`), in the order
   * `hostOrder` says.
   */
  url?: string | readonly string[];
  /**
   * With a list of URLs: "in-order" (the default) tries them as listed; "shuffle" in a new random
   * order at connect and at each reconnect round, so that a fleet spreads over the cluster. Either
   * way, recovery tries last the host it just gave up on (lost while restoring on it, or closed
   * with 541: a minority node), so it moves on to the next (hosts.ts).
   */
  hostOrder?: HostOrder;
  hostname?: string;
  port?: number;
  username?: string;
  /**
   * The password, or a function that gives it (an OAuth 2 token, say): called on every connect
   * and every reconnect. See also `credentials`.
   */
  password?: string | (() => string | Promise<string>);
  /**
   * The user name and password from a provider, called on every connect and every reconnect;
   * when it says when they expire (`expiresAt`), called again before then, and the new password
   * handed to the broker (update-secret) without reconnecting. See credentials.ts.
   */
  credentials?: CredentialsProvider;
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
  /**
   * Off unless set: when publishes wait for their confirm on a channel and no confirm at all
   * comes on it for this many ms (the broker not blocking the connection), the broker has stopped
   * confirming: the connection is lost with a ConfirmTimeoutError, as after missed heartbeats
   * (with recovery: reconnect, another host first, and republish or reject what waited). RabbitMQ
   * 4.3 leaves a publisher so when its node was cut off from its quorum queues' majority, even
   * after the partition heals. Longer than the longest a queue may rightly take to confirm.
   */
  confirmTimeout?: number;
  /**
   * TCP keep-alive (SO_KEEPALIVE), off unless set: the idle time in ms before the first probe,
   * 0 for the system's default (net.ipv4.tcp_keepalive_time). Heartbeats are AMQP's own check of
   * a silent peer; keep-alive also keeps idle connections open through NATs and firewalls that
   * forget quiet flows, with heartbeats off.
   */
  keepAlive?: number;
  /**
   * The locale of connection.start-ok (default "en_US"). The spec has the broker's error texts
   * in it; RabbitMQ offers and speaks en_US only.
   */
  locale?: string;
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

/** Options with every default filled in, for one endpoint (one URL). */
export interface ResolvedOptions {
  hostname: string;
  port: number;
  username: string;
  password: string;
  /** Asked for username and password before each connect; undefined: they are fixed. */
  credentials: CredentialsProvider | undefined;
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
  keepAlive: number | undefined;
  locale: string;
  confirmTimeout: number | undefined;
  transport: (() => Duplex) | undefined;
}

export function resolveOptions(
  input: string | (Omit<ConnectOptions, "url"> & { url?: string | undefined }) | undefined,
): ResolvedOptions {
  const o = typeof input === "string" ? { url: input } : (input ?? {});
  const u = parseUrl(o.url ?? "amqp://localhost");
  const tlsOpt = o.tls ?? u.tls;
  const tlsOptions: false | tls.ConnectionOptions = tlsOpt === false ? false : tlsOpt === true ? {} : tlsOpt;
  const hasCert = tlsOptions !== false && tlsOptions.cert !== undefined;
  return checkOptions({
    hostname: o.hostname ?? u.hostname,
    port: o.port ?? (o.tls !== undefined && o.url === undefined ? (tlsOptions ? 5671 : 5672) : u.port),
    username: o.username ?? u.username,
    password: typeof o.password === "string" ? o.password : u.password,
    credentials: credentialsOf(o),
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
    keepAlive: o.keepAlive,
    locale: o.locale ?? "en_US",
    confirmTimeout: o.confirmTimeout,
    transport: o.transport,
  });
}

/**
 * Refuse option values the protocol cannot carry, before any socket is opened, naming the
 * option: a RangeError/TypeError here beats a broker closing the connection (or a silent
 * truncation to 16 bits) later. Tune fields are short/long integers (spec connection.tune);
 * frame_max is 0 (no limit) or at least frame-min-size, 4096.
 */
function checkOptions(r: ResolvedOptions): ResolvedOptions {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max)
      throw new RangeError(`connect: ${name} must be an integer from ${min} to ${max}, got ${v}`);
  };
  int("port", r.port, 1, 65535);
  int("heartbeat", r.heartbeat, 0, 65535);
  int("channelMax", r.channelMax, 0, 65535);
  int("frameMax", r.frameMax, 0, 0xffffffff);
  if (r.frameMax !== 0 && r.frameMax < FRAME_MAX_FLOOR)
    throw new RangeError(
      `connect: frameMax must be 0 (no limit) or at least ${FRAME_MAX_FLOOR} (RabbitMQ 4.1 and later refuse less), got ${r.frameMax}`,
    );
  for (const name of ["connectionTimeout", "timeout"] as const)
    if (!isTimeout(r[name]))
      throw new RangeError(
        `connect: ${name} must be a number of ms from 1 to ${MAX_TIMER_MS} (setTimeout's limit), got ${r[name]}`,
      );
  if (r.confirmTimeout !== undefined && !isTimeout(r.confirmTimeout))
    throw new RangeError(
      `connect: confirmTimeout must be a number of ms from 1 to ${MAX_TIMER_MS} (setTimeout's limit), got ${r.confirmTimeout}`,
    );
  if (r.keepAlive !== undefined && !(r.keepAlive === 0 || isTimeout(r.keepAlive)))
    throw new RangeError(
      `connect: keepAlive must be 0 (the system's delay) or a number of ms up to ${MAX_TIMER_MS}, got ${r.keepAlive}`,
    );
  if (typeof r.locale !== "string" || Buffer.byteLength(r.locale) > 255)
    throw new TypeError(`connect: locale must be a string of at most 255 bytes (a shortstr), got ${String(r.locale)}`);
  checkCredentials(r);
  if (!["PLAIN", "AMQPLAIN", "EXTERNAL"].includes(r.mechanism))
    throw new TypeError(`connect: unknown SASL mechanism ${JSON.stringify(r.mechanism)} (PLAIN, AMQPLAIN or EXTERNAL)`);
  return r;
}

/** RFC 4616: PLAIN separates its fields with NUL, so a NUL inside one would log in as someone else. */
export function checkCredentials(r: Pick<ResolvedOptions, "mechanism" | "username" | "password">): void {
  if (r.mechanism === "PLAIN" && (r.username.includes("\0") || r.password.includes("\0")))
    throw new TypeError("connect: a user name or password for SASL PLAIN cannot contain a NUL character");
}

/** `credentials`, or a `password` function as a provider of the password alone. */
function credentialsOf(o: Pick<ConnectOptions, "password" | "credentials">): CredentialsProvider | undefined {
  if (o.credentials !== undefined && typeof o.credentials !== "function")
    throw new TypeError(`connect: credentials must be a function, got ${typeof o.credentials}`);
  if (o.credentials !== undefined && o.password !== undefined)
    throw new TypeError("connect: give either password or credentials, not both");
  const password = o.password;
  if (password === undefined || typeof password === "string") return o.credentials;
  if (typeof password !== "function")
    throw new TypeError(`connect: password must be a string or a function, got ${typeof password}`);
  return async () => ({ password: await password() });
}

/** Automatic recovery's options (the `recovery` connect option): backoff, limits, what is sent again. */
export interface RecoveryOptions {
  /** Delay before the first reconnect attempt, in ms (default 100). */
  initialDelay?: number;
  /** Upper bound of the delay between attempts, in ms (default 30000). */
  maxDelay?: number;
  /** Each attempt waits `factor` times longer than the one before (default 2). */
  factor?: number;
  /**
   * Jitter, 0 to 1 (default 0.5): each delay is drawn at random from [d * (1 - jitter), d], so
   * that many clients cut off together do not all come back in the same instant.
   */
  jitter?: number;
  /** Rounds of attempts (each round tries every host in order) before giving up; default Infinity. */
  maxAttempts?: number;
  /**
   * How long calls and publishes made while the connection is down wait for it to come back,
   * in ms, before rejecting with a TimeoutError (default: the connection's `timeout`). A publish
   * can also be given `signal` to stop waiting.
   */
  waitTimeout?: number;
  /** Send unconfirmed publishes again on the new connection instead of rejecting them (default false). */
  republishUnconfirmed?: boolean;
}

/** Recovery's options with their defaults, checked. */
export type ResolvedRecovery = Required<Omit<RecoveryOptions, "waitTimeout">> & { waitTimeout: number | undefined };

export function resolveRecovery(o: RecoveryOptions): ResolvedRecovery {
  const r: ResolvedRecovery = {
    initialDelay: timerMs(o.initialDelay ?? 100, "initialDelay"),
    maxDelay: timerMs(o.maxDelay ?? 30_000, "maxDelay"),
    factor: nonNegative(o.factor ?? 2, "factor"),
    jitter: o.jitter ?? 0.5,
    maxAttempts: o.maxAttempts ?? Infinity,
    waitTimeout: o.waitTimeout === undefined ? undefined : timerMs(o.waitTimeout, "waitTimeout"),
    republishUnconfirmed: o.republishUnconfirmed ?? false,
  };
  if (!(r.jitter >= 0 && r.jitter <= 1))
    throw new RangeError(`recovery.jitter must be between 0 and 1, got ${o.jitter}`);
  if (!(r.maxAttempts >= 1)) throw new RangeError(`recovery.maxAttempts must be at least 1, got ${o.maxAttempts}`);
  return r;
}

function nonNegative(v: number, name: string): number {
  if (!(typeof v === "number" && v >= 0))
    throw new RangeError(`recovery.${name} must be a number >= 0, got ${String(v)}`);
  return v;
}

/** A delay in ms, handed to setTimeout as it is. */
function timerMs(v: number, name: string): number {
  if (nonNegative(v, name) > MAX_TIMER_MS)
    throw new RangeError(`recovery.${name} must be at most ${MAX_TIMER_MS} ms (setTimeout's limit), got ${String(v)}`);
  return v;
}
