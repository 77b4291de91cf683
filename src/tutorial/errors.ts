/**
 * One readable line for each way a tutorial program can fail, without a stack trace:
 * the person running `receive_logs` wants to know that RabbitMQ is not running, or that
 * the password is wrong, not where in warren that was noticed.
 */
import { AuthenticationError, ChannelClosedError, ConnectionClosedError, FrameError, TimeoutError } from "../index.js";

/** Node's socket errors that mean "no broker there", with what each tells the user. */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by the server",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EPIPE: "connection closed by the server",
};

const HINT = "Is RabbitMQ running there? Set AMQP_URL to point at your broker.";

/** The socket error code under `err`, looking through `cause` and AggregateError (Happy Eyeballs). */
function socketCode(err: unknown, depth = 0): string | undefined {
  if (depth > 5 || typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && code in SOCKET_ERRORS) return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const found = socketCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return socketCode((err as { cause?: unknown }).cause, depth + 1);
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** The FrameError under `err` (itself or its `cause`), if any. */
function frameError(err: unknown, depth = 0): FrameError | undefined {
  if (depth > 5 || typeof err !== "object" || err === null) return undefined;
  if (err instanceof FrameError) return err;
  return frameError((err as { cause?: unknown }).cause, depth + 1);
}

/**
 * Describes why a tutorial program failed, in one line. `url` is already redacted.
 * `connected` tells whether the AMQP handshake had completed: a protocol error before it
 * means that whatever answered at `url` is not an AMQP 0-9-1 broker (an HTTP server, say,
 * or RabbitMQ's management port 15672 instead of 5672).
 */
export function describeError(err: unknown, url: string, connected = true): string {
  if (err instanceof AuthenticationError) {
    const reason = err.replyText.replace(/ For details see the broker logfile\.$/, "");
    return `the broker at ${url} refused the login: ${reason} Check the user name and password in AMQP_URL.`;
  }
  // Before the closed-connection errors: warren reports a failed connect as a connection
  // closed by the library, with the socket error as its cause.
  const code = socketCode(err);
  if (code) {
    return `cannot connect to ${url}: ${SOCKET_ERRORS[code] ?? code}. ${HINT}`;
  }
  const protocolError = frameError(err);
  if (protocolError && !connected) {
    return `the server at ${url} does not speak AMQP 0-9-1 (${protocolError.message}). Is that RabbitMQ's AMQP port (5672 by default)?`;
  }
  if (err instanceof TimeoutError) {
    return `${messageOf(err)}. ${HINT}`;
  }
  if ((err instanceof ChannelClosedError || err instanceof ConnectionClosedError) && err.initiatedBy === "server") {
    // The broker's reply text starts with the reply code's name: "NOT_FOUND - no exchange 'x'".
    const what = err instanceof ChannelClosedError ? "channel" : "connection";
    return err.method
      ? `the broker refused ${err.method} (${err.replyCode}): ${err.replyText}`
      : `the broker closed the ${what} (${err.replyCode}): ${err.replyText}`;
  }
  return messageOf(err).split("\n")[0] ?? "failed";
}
