/**
 * connect(): resolve the options (one endpoint per URL), try the endpoints in order, and with
 * `recovery` give the connection its reconnect loop. The only file that knows both the
 * connection (connection.ts) and recovery (recovery.ts).
 */
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { Connection, type ConnectionControl } from "./connection.js";
import { SecretRefresh, fetchCredentials } from "./credentials.js";
import { AbortError, AmqpError, ConnectionClosedError, TimeoutError, emitOrWarn } from "./errors.js";
import {
  checkCredentials,
  resolveOptions,
  resolveRecovery,
  type ConnectOptions,
  type ResolvedOptions,
} from "./options.js";
import { Recovery } from "./recovery.js";
import { hostOrder, hostsToTry } from "./hosts.js";
import { redactUrl } from "./url.js";

/**
 * Connect and complete the handshake. `connect("amqp://user:pass@host/vhost?heartbeat=30")` or
 * `connect({ hostname, port, username, password, vhost, tls, ... })`. With a list of URLs, each
 * is tried in turn (as listed, or shuffled: `hostOrder`) and the first to connect is used; if
 * none does, the last error is thrown.
 * With `recovery`, the connection reconnects by itself after a loss (see recovery.ts).
 */
export async function connect(urlOrOptions?: string | ConnectOptions): Promise<Connection> {
  const given: ConnectOptions = typeof urlOrOptions === "string" ? { url: urlOrOptions } : (urlOrOptions ?? {});
  const urls: readonly (string | undefined)[] =
    typeof given.url === "string" || given.url === undefined ? [given.url] : given.url;
  if (urls.length === 0) throw new TypeError("connect: url is an empty list");
  const endpoints = urls.map((url) => resolveOptions({ ...given, url }));
  const order = hostOrder(given.hostOrder);
  const options =
    given.recovery === undefined || given.recovery === false
      ? undefined
      : resolveRecovery(given.recovery === true ? {} : given.recovery);
  const provider = endpoints[0]!.credentials;
  const refresh = provider && new SecretRefresh(provider);
  let recovering: Recovery | undefined;
  const control = Connection.create(
    endpoints[0]!,
    options &&
      ((c) =>
        (recovering = new Recovery(
          c,
          endpoints,
          (endpoint, signal) => attempt(c, endpoint, signal, refresh),
          options,
          order,
        ))),
  );
  let lastError: unknown;
  for (const o of hostsToTry(endpoints, order)) {
    try {
      await attempt(control, o, given.signal, refresh);
      recovering?.connectedTo(o);
      if (refresh) keepFresh(control, refresh);
      return control.connection;
    } catch (e) {
      lastError = e;
      if (given.signal?.aborted || !(e instanceof ConnectionClosedError || e instanceof TimeoutError)) break;
    }
  }
  control.fail(lastError instanceof AmqpError ? lastError : new AmqpError(String(lastError), { cause: lastError }));
  throw lastError;
}

/**
 * One attempt at one endpoint, on `control`'s connection (connecting, or recovering): fresh
 * credentials when they come from a provider (credentials.ts), then the socket (or transport),
 * then the handshake, within connectionTimeout. A failed attempt leaves the connection as it was.
 */
async function attempt(
  control: ConnectionControl,
  given: ResolvedOptions,
  signal: AbortSignal | undefined,
  refresh?: SecretRefresh,
): Promise<void> {
  if (signal?.aborted) throw new AbortError("connect aborted");
  let o = given;
  if (given.credentials !== undefined) {
    const c = await fetchCredentials(given.credentials);
    o = { ...given, username: c.username ?? given.username, password: c.password };
    checkCredentials(o);
    refresh?.fetched(c.expiresAt);
    if (signal?.aborted) throw new AbortError("connect aborted");
  }
  const socket = o.transport ? o.transport() : openSocket(o);
  const where = `${o.tls ? "amqps" : "amqp"}://${o.hostname}:${o.port}`;
  const timer = setTimeout(
    () => control.abandon(new TimeoutError(`could not connect to ${where} within ${o.connectionTimeout} ms`)),
    o.connectionTimeout,
  );
  const onAbort = () => control.abandon(new AbortError("connect aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // Errors before the handshake starts (ECONNREFUSED, DNS, TLS) fail the attempt too.
    await control.handshake(o, socket, o.transport ? undefined : o.tls ? "secureConnect" : "connect");
  } catch (e) {
    if (e instanceof ConnectionClosedError && e.initiatedBy === "library" && e.replyCode === 0) {
      throw new ConnectionClosedError({
        replyCode: 0,
        replyText: `could not connect to ${redactUrl(where)}: ${e.replyText.replace(/^connection lost: /, "")}`,
        initiatedBy: "library",
        cause: e.cause,
      });
    }
    throw e;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Refresh the secret of `control`'s connection before it expires, until the connection closes. */
function keepFresh(control: ConnectionControl, refresh: SecretRefresh): void {
  const conn = control.connection;
  refresh.attach({
    get closed() {
      return conn.closed;
    },
    get open() {
      return control.phase === "open" || control.phase === "restoring";
    },
    updateSecret: (secret, reason) => conn.updateSecret(secret, reason),
    updated: (expiresAt) => conn.emit("secretUpdated", expiresAt),
    failed: (err) =>
      emitOrWarn(
        conn,
        "secretUpdateFailed",
        [err],
        () => `warren: refreshing the connection's secret failed: ${err.message}`,
      ),
  });
  conn.once("close", () => refresh.stop());
}

function openSocket(o: ResolvedOptions): Duplex {
  const socket = o.tls
    ? tls.connect({
        servername: net.isIP(o.hostname) ? undefined : o.hostname,
        ...o.tls,
        host: o.hostname,
        port: o.port,
      })
    : net.connect({ host: o.hostname, port: o.port });
  socket.setNoDelay(o.noDelay);
  if (o.keepAlive !== undefined) socket.setKeepAlive(true, o.keepAlive);
  return socket;
}
