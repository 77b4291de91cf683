/**
 * amqp:// and amqps:// URIs, as RabbitMQ documents them ("RabbitMQ URI Specification"):
 *
 *   amqp[s]://[user[:password]@]host[:port][/vhost][?heartbeat=..&frame_max=..&channel_max=..&connection_timeout=..]
 *
 * User, password and vhost are percent-decoded ("%2F" is the vhost "/"). No path means the
 * default vhost "/"; a path of just "/" means the vhost "" (per that spec), which RabbitMQ does
 * not have, so it is taken as "/" too, as every client does in practice.
 */

/** An amqp:// or amqps:// URI taken apart, with RabbitMQ's defaults filled in. */
export interface ParsedUrl {
  tls: boolean;
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  heartbeat?: number;
  frameMax?: number;
  channelMax?: number;
  connectionTimeout?: number;
  connectionName?: string;
  mechanism?: string;
}

const QUERY_NUMBERS: Record<string, "heartbeat" | "frameMax" | "channelMax" | "connectionTimeout"> = {
  heartbeat: "heartbeat",
  frame_max: "frameMax",
  channel_max: "channelMax",
  connection_timeout: "connectionTimeout",
};

/** Parse an amqp:// or amqps:// URI (RabbitMQ's URI spec, query parameters included); throws TypeError on a malformed one. */
export function parseUrl(url: string): ParsedUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`not a valid AMQP URI: ${JSON.stringify(redactUrl(url))}`);
  }
  const proto = u.protocol;
  if (proto !== "amqp:" && proto !== "amqps:")
    throw new TypeError(`AMQP URI must start with amqp:// or amqps://, got ${JSON.stringify(proto)}`);
  const tls = proto === "amqps:";
  const path = u.pathname;
  const vhost = path === "" || path === "/" ? "/" : decode(path.slice(1), "vhost");
  const out: ParsedUrl = {
    tls,
    hostname: u.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost",
    port: u.port ? Number(u.port) : tls ? 5671 : 5672,
    username: u.username ? decode(u.username, "user") : "guest",
    password: u.password ? decode(u.password, "password") : u.username ? "" : "guest",
    vhost,
  };
  for (const [key, value] of u.searchParams) {
    // Own keys only: "?constructor=1" must not find Object.prototype.constructor.
    const field = Object.hasOwn(QUERY_NUMBERS, key) ? QUERY_NUMBERS[key] : undefined;
    if (field) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0)
        throw new TypeError(`URI option ${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
      out[field] = n;
    } else if (key === "connection_name") {
      out.connectionName = value;
    } else if (key === "auth_mechanism") {
      out.mechanism = value.toUpperCase();
    }
    // Other options (TLS file paths, etc.) are for other clients; they are ignored, as RabbitMQ's URI spec allows.
  }
  return out;
}

/**
 * Percent-decodes one part of the URI. new URL() lets a malformed escape ("%ZZ") through
 * untouched, and decodeURIComponent would then throw a bare URIError: name the part instead
 * (but not its value, which may be the password).
 */
function decode(part: string, what: "user" | "password" | "vhost"): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new TypeError(`AMQP URI: the ${what} has a malformed percent-escape`);
  }
}

/** The URL with its password hidden (`amqp://user:***@host`), for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}
