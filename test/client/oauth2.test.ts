/**
 * OAuth 2 tokens and expiring credentials against RabbitMQ 4.3's rabbitmq_auth_backend_oauth2
 * (the "oauth" node of scripts/rabbitmq43.sh). The test makes its own HS256 signing key, adds it
 * to the node, and signs JWTs with node:crypto. The provider counts every call, so each test
 * says exactly when credentials were fetched: on connect, before expiry, on reconnect.
 */
import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { once } from "node:events";
import { promisify } from "node:util";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  AuthenticationError,
  ConnectionForcedError,
  NotAllowedError,
  connect,
  type AmqpError,
  type Connection,
  type ConnectOptions,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { ROOT } from "../tutorial/programs.js";
import { outcome } from "./util.js";

const script = (...args: string[]) =>
  promisify(execFile)("bash", [`${ROOT}/scripts/rabbitmq43.sh`, ...args], { timeout: 180_000 });

const key = randomBytes(32);
const kid = `warren-test-${process.pid}-${Date.now()}`;
let url: string;

beforeAll(async () => {
  await script("start", "oauth");
  await script("signing-key", "oauth", kid, JSON.stringify({ kty: "oct", alg: "HS256", k: key.toString("base64url") }));
  // No user or password in the URL: they come from the provider.
  url = (await script("url", "oauth")).stdout.trim().replace("guest:guest@", "");
}, 200_000);

const opened: Connection[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) await c.close().catch(() => undefined);
});

/**
 * A JWT for resource server "warren" with full permissions, valid for `ttl` seconds (negative:
 * expired). Its `exp` is in whole seconds: it expires up to a second before now + ttl (expiryOf).
 */
function token(ttl: number, sub = "svc"): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: "HS256", typ: "JWT", kid });
  const body = b64({
    sub,
    aud: "warren",
    scope: "warren.configure:*/* warren.read:*/* warren.write:*/*",
    iat: now,
    exp: now + ttl,
  });
  return `${head}.${body}.${createHmac("sha256", key).update(`${head}.${body}`).digest("base64url")}`;
}

/** When a token from token() expires, in ms since the epoch: its `exp` claim. */
function expiryOf(jwt: string): number {
  return (JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as { exp: number }).exp * 1000;
}

/**
 * A provider of tokens valid for `ttl` s, counting its calls. With `tell`, it says when each
 * expires: its `exp`, which the broker enforces (telling now + ttl instead, a second late at
 * worst, let the broker close the connection before warren's refresh, whenever the machine was slow).
 */
function provider(ttl: number, tell: boolean) {
  const calls: number[] = [];
  return {
    calls,
    credentials: () => {
      calls.push(Date.now());
      const password = token(ttl);
      return Promise.resolve({ password, ...(tell ? { expiresAt: expiryOf(password) } : {}) });
    },
  };
}

async function open(options: Omit<ConnectOptions, "url">): Promise<Connection> {
  const conn = await connect({ url, connectionName: uniqueName("oauth2"), ...options });
  opened.push(conn);
  return conn;
}

describe("OAuth 2 tokens (RabbitMQ 4.3, rabbitmq_auth_backend_oauth2)", () => {
  test("connects with a token from a credentials provider, and with a password function", async () => {
    const p = provider(60, false);
    const conn = await open({ credentials: p.credentials });
    const ch = await conn.openChannel();
    expect((await ch.queueDeclare("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
    expect(p.calls).toHaveLength(1);
    let asked = 0;
    const other = await open({ password: async () => (asked++, token(60)) });
    await (await other.openChannel()).queueDeclare("", { exclusive: true });
    expect(asked).toBe(1);
  });

  test("with expiresAt, the token is refreshed on the live connection (update-secret) before it expires, and the connection outlives the first token", async () => {
    // Refreshed at 80% of its life: 1 s or more before the broker would close the connection.
    const p = provider(6, true);
    const conn = await open({ credentials: p.credentials });
    const ch = await conn.openChannel();
    const [expiresAt] = (await once(conn, "secretUpdated")) as [Date];
    expect(p.calls).toHaveLength(2);
    expect(p.calls[1]! - p.calls[0]!).toBeLessThan(6000); // before the first token expired
    expect(expiresAt.getTime()).toBeGreaterThan(Date.now());
    // Past the first token's expiry: without the refresh the broker closes the connection (320 credential expired).
    await new Promise((r) => setTimeout(r, 6500 - (Date.now() - p.calls[0]!)));
    expect(conn.closed).toBe(false);
    await ch.queueDeclare("", { exclusive: true });
  });

  test("without a refresh the broker closes the connection at expiry; recovery logs in again with a new token from the provider", async () => {
    const p = provider(2, false);
    const conn = await open({ credentials: p.credentials, recovery: { initialDelay: 10 } });
    const ch = await conn.openChannel();
    const [lost] = (await once(conn, "disconnect")) as [AmqpError];
    expect(lost).toBeInstanceOf(ConnectionForcedError);
    expect(lost.message).toMatch(/credential expired/);
    await once(conn, "topologyRecovered");
    expect(p.calls).toHaveLength(2);
    await ch.queueDeclare("", { exclusive: true });
    conn.removeAllListeners("close");
  });

  test("an expired token is refused with AuthenticationError", async () => {
    const r = await outcome(open({ credentials: async () => ({ password: token(-60) }) }));
    expect(!r.ok && r.error).toBeInstanceOf(AuthenticationError);
  });

  test("a reconnect whose fresh token is refused stops recovery with AuthenticationError, instead of retrying forever", async () => {
    let calls = 0;
    // The first token is good for 2 s; every later one is already expired.
    const conn = await open({
      credentials: async () => ({ password: token(calls++ === 0 ? 2 : -60) }),
      recovery: { initialDelay: 10, maxDelay: 20 },
    });
    const failed = once(conn, "recoveryFailed") as Promise<[AmqpError]>;
    const closed = once(conn, "close") as Promise<[AmqpError]>;
    const [err] = await failed;
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((await closed)[0]).toBe(err);
    await new Promise((r) => setTimeout(r, 200));
    expect(calls).toBe(2); // the first connect and one reconnect: no more attempts
    expect(conn.closed).toBe(true);
  });

  test("a provider that fails, or gives no password, is a clear error; nothing is sent", async () => {
    const failing = await outcome(open({ credentials: () => Promise.reject(new Error("IdP unreachable")) }));
    expect(!failing.ok && (failing.error as Error).message).toMatch(/credentials provider failed: IdP unreachable/);
    const bad = await outcome(
      open({ credentials: (() => ({ token: "x" })) as unknown as NonNullable<ConnectOptions["credentials"]> }),
    );
    expect(!bad.ok && bad.error).toBeInstanceOf(TypeError);
    await expect(connect({ url, password: "p", credentials: async () => ({ password: "q" }) })).rejects.toBeInstanceOf(
      TypeError,
    );
  });

  test("a refresh the broker refuses is reported (secretUpdateFailed) with the broker's reason, 530, with which it closes the connection", async () => {
    let calls = 0;
    // Said to expire in 1.5 s (refreshed at 80% of that), though good for a minute, so that the
    // broker never closes for expiry first however slow the machine: the refresh gives a token
    // whose signature is wrong.
    const conn = await open({
      credentials: async () => ({
        password: calls++ === 0 ? token(60) : token(60).replace(/\.[^.]*$/, ".AAAA"),
        expiresAt: Date.now() + 1500,
      }),
    });
    const closed = once(conn, "close") as Promise<[AmqpError]>;
    const [err] = (await once(conn, "secretUpdateFailed")) as [AmqpError];
    expect(err).toBeInstanceOf(NotAllowedError);
    expect(err.message).toMatch(/New secret was refused/);
    expect((await closed)[0]).toBe(err);
    expect(calls).toBe(2);
  });
});
