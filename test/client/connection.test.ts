/**
 * Connecting, against the real broker: the amqp:// URI forms of the RabbitMQ URI spec (user,
 * password and vhost percent-decoded, query options applied), the options object, the client
 * properties RabbitMQ records, SASL PLAIN/AMQPLAIN/EXTERNAL, wrong credentials and vhost,
 * connect timeout and AbortSignal, TCP_NODELAY, and a script that closes its connection exiting
 * by itself. Tune and heartbeat rules that need a server RabbitMQ will not be are in
 * tune.test.ts; closing in close.test.ts; TLS in tls.test.ts.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import {
  AbortError,
  AuthenticationError,
  ConnectionClosedError,
  NotAllowedError,
  TimeoutError,
  connect,
} from "../../src/index.js";
import { getBrokerUrl, rabbitmqctl, uniqueName } from "../helpers/broker.js";
import {
  Cursor,
  longstr,
  methodFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
  table,
  u16,
  u32,
  u8,
} from "../helpers/fake-server.js";
import { eventually, outcome, useConnections } from "./util.js";
import { describeNeeding, testNeeding } from "../helpers/capabilities.js";

const open = useConnections();

/** A TCP listener that accepts and never says a word: connect must give up by its timeout. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function hostPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5672}`;
}

describeNeeding("rabbitmqctl", "URI forms", () => {
  // A vhost and a user whose names need percent-encoding: "/" in the vhost, ":@/% " in the credentials.
  const id = randomUUID().slice(0, 8);
  const vhost = `warren/conf ${id}`;
  const user = `w:u@s/er ${id}`;
  const password = `p@ss:w/rd%${id}`;
  beforeAll(async () => {
    await rabbitmqctl(["add_vhost", vhost]);
    await rabbitmqctl(["add_user", user, password]);
    await rabbitmqctl(["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]);
  }, 60_000);
  afterAll(async () => {
    await rabbitmqctl(["delete_user", user]).catch(() => undefined);
    await rabbitmqctl(["delete_vhost", vhost]).catch(() => undefined);
  }, 60_000);

  test("user, password and vhost are percent-decoded", async () => {
    const where = hostPort(await getBrokerUrl());
    const conn = await connect(
      `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${where}/${encodeURIComponent(vhost)}`,
    );
    try {
      const ch = await conn.openChannel();
      // The queue lands in that vhost: list it there.
      const q = uniqueName("uri-vhost");
      await ch.queueDeclare(q, { autoDelete: true, exclusive: true });
      const listed = await rabbitmqctl(["list_queues", "-p", vhost, "name", "--quiet", "--no-table-headers"]);
      expect(listed.split("\n")).toContain(q);
    } finally {
      await conn.close();
    }
  });

  test("vhost %2F is the default vhost /, as are no path and a lone /", async () => {
    const where = hostPort(await getBrokerUrl());
    for (const url of [
      `amqp://guest:guest@${where}/%2F`,
      `amqp://guest:guest@${where}`,
      `amqp://guest:guest@${where}/`,
    ]) {
      const conn = await connect(url);
      const ch = await conn.openChannel();
      const q = uniqueName("uri-default");
      await ch.queueDeclare(q, { exclusive: true });
      const listed = await rabbitmqctl(["list_queues", "-p", "/", "name", "--quiet", "--no-table-headers"]);
      expect(listed.split("\n")).toContain(q);
      await conn.close();
    }
  }, 30_000);

  test("query heartbeat, frame_max and channel_max are proposed and negotiated", async () => {
    const where = hostPort(await getBrokerUrl());
    const conn = await connect(`amqp://guest:guest@${where}/%2F?heartbeat=7&frame_max=8192&channel_max=13`);
    try {
      // RabbitMQ proposes 60 s, 131072 and 2047: the lower of each wins.
      expect(conn.heartbeat).toBe(7);
      expect(conn.frameMax).toBe(8192);
      expect(conn.channelMax).toBe(13);
    } finally {
      await conn.close();
    }
  });

  test("query connection_timeout is the connect time limit", async () => {
    const silent = await silentServer();
    try {
      const r = await outcome(connect(`amqp://guest:guest@127.0.0.1:${silent.port}/?connection_timeout=150`));
      expect(r.ok).toBe(false);
      const err = (r as { error: unknown }).error;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toMatch(/within 150 ms/);
    } finally {
      await silent.close();
    }
  });

  test("the options object overrides the URI's parts", async () => {
    const where = hostPort(await getBrokerUrl());
    const [hostname, port] = where.split(":") as [string, string];
    const conn = await connect({
      url: "amqp://nobody:nothing@unused.invalid:1/nowhere",
      hostname,
      port: Number(port),
      username: "guest",
      password: "guest",
      vhost: "/",
      heartbeat: 9,
      frameMax: 16384,
      channelMax: 21,
    });
    try {
      expect([conn.heartbeat, conn.frameMax, conn.channelMax]).toEqual([9, 16384, 21]);
      const ch = await conn.openChannel();
      await ch.queueDeclare("", { exclusive: true });
    } finally {
      await conn.close();
    }
  });
});

describe("bad options", () => {
  test.each([
    [{ frameMax: 1000 }, /frameMax must be 0 \(no limit\) or at least 8192/],
    [{ frameMax: 4096 }, /RabbitMQ 4.1 and later refuse less/],
    [{ channelMax: 70000 }, /channelMax must be an integer from 0 to 65535/],
    [{ heartbeat: 1.5 }, /heartbeat must be an integer/],
    [{ timeout: 0 }, /timeout must be a number of ms from 1 to 2147483647/],
    // setTimeout would fire an infinite timeout after 1 ms: refused rather than failing every call at once.
    [{ timeout: Infinity }, /timeout must be a number of ms from 1 to 2147483647/],
    [{ connectionTimeout: 2 ** 31 }, /connectionTimeout must be a number of ms from 1 to 2147483647/],
    [{ port: 0 }, /port must be an integer from 1 to 65535/],
    [{ keepAlive: -1 }, /keepAlive must be 0 \(the system's delay\) or a number of ms/],
    [{ confirmTimeout: 0 }, /confirmTimeout must be a number of ms from 1 to 2147483647/],
  ] as const)("%o is refused with a RangeError naming it, before connecting", async (bad, message) => {
    const r = await outcome(connect({ url: "amqp://127.0.0.1:1", ...bad }));
    expect((r as { error: unknown }).error).toBeInstanceOf(RangeError);
    expect((r as { error: Error }).error.message).toMatch(message);
  });

  test("a NUL in a SASL PLAIN user name or password is a TypeError before connecting (it would split the PLAIN fields)", async () => {
    for (const creds of [{ username: "gu\0est" }, { password: "gu\0est" }]) {
      const r = await outcome(connect({ url: "amqp://127.0.0.1:1", ...creds }));
      expect((r as { error: unknown }).error).toBeInstanceOf(TypeError);
      expect((r as { error: Error }).error.message).toMatch(/NUL/);
    }
  });

  test("a locale longer than a shortstr is a TypeError", async () => {
    const r = await outcome(connect({ url: "amqp://127.0.0.1:1", locale: "x".repeat(256) }));
    expect((r as { error: unknown }).error).toBeInstanceOf(TypeError);
    expect((r as { error: Error }).error.message).toMatch(/locale must be a string of at most 255 bytes/);
  });

  test("an unknown SASL mechanism (URI auth_mechanism) is a TypeError", async () => {
    const r = await outcome(connect("amqp://127.0.0.1:1/?auth_mechanism=scram-sha-1"));
    expect((r as { error: unknown }).error).toBeInstanceOf(TypeError);
    expect((r as { error: Error }).error.message).toMatch(/SCRAM-SHA-1/);
  });
});

describe("client properties", () => {
  test("product, version, platform, connection name and the capabilities RabbitMQ understands are sent", async () => {
    let seen: Record<string, unknown> | undefined;
    const server = await startFakeServer(async (c) => {
      seen = (await standardHandshake(c)).clientProperties;
    });
    try {
      const conn = await connect({ url: server.url(), connectionName: "props ✓" });
      await server.close(); // the fake server ends the connection: no close-ok to wait for
      await conn.close();
      expect(seen).toMatchObject({
        product: "warren",
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        platform: expect.stringContaining("Node.js"),
        connection_name: "props ✓",
        capabilities: {
          publisher_confirms: true,
          exchange_exchange_bindings: true,
          "basic.nack": true,
          consumer_cancel_notify: true,
          "connection.blocked": true,
          authentication_failure_close: true,
          per_consumer_qos: true,
        },
      });
    } finally {
      await server.close();
    }
  });

  testNeeding(
    "rabbitmqctl",
    "RabbitMQ lists the connection name and product, and the negotiated frame_max and channel_max",
    async () => {
      const name = `warren-props-${randomUUID()}`;
      await open({ connectionName: name, frameMax: 32768, channelMax: 99 });
      const out = await rabbitmqctl([
        "list_connections",
        "client_properties",
        "frame_max",
        "channel_max",
        "--quiet",
        "--no-table-headers",
      ]);
      const line = out.split("\n").find((l) => l.includes(name));
      expect(line).toBeDefined();
      expect(line).toContain('{"product","warren"}');
      expect(line).toMatch(/\t32768\t99$/);
    },
  );
});

describe("authentication", () => {
  test("SASL PLAIN and AMQPLAIN both log in", async () => {
    for (const mechanism of ["PLAIN", "AMQPLAIN"] as const) {
      const conn = await open({ mechanism });
      const ch = await conn.openChannel();
      expect((await ch.queueDeclare("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
    }
  });

  test("the mechanism can be chosen in the URI (auth_mechanism)", async () => {
    let mechanism: string | undefined;
    const server = await startFakeServer(async (c) => {
      mechanism = (await standardHandshake(c)).mechanism;
    });
    try {
      const conn = await connect(server.url("auth_mechanism=amqplain"));
      await server.close();
      await conn.close();
      expect(mechanism).toBe("AMQPLAIN");
    } finally {
      await server.close();
    }
  });

  test("what each mechanism sends (fake server): PLAIN \\0user\\0pass, AMQPLAIN a LOGIN/PASSWORD table without its length, EXTERNAL nothing", async () => {
    const seen: { mechanism: string; response: Buffer }[] = [];
    const server = await startFakeServer(async (c) => {
      const r = await standardHandshake(c, { mechanisms: "PLAIN AMQPLAIN EXTERNAL" });
      seen.push({ mechanism: r.mechanism, response: r.response });
    });
    try {
      for (const mechanism of ["PLAIN", "AMQPLAIN", "EXTERNAL"] as const) {
        const conn = await connect({ url: server.url(), username: "ü", password: "p:w", mechanism });
        await eventually(() => server.connections.length === seen.length && conn.closed === false, "the handshake");
      }
      expect(seen.map((s) => s.mechanism)).toEqual(["PLAIN", "AMQPLAIN", "EXTERNAL"]);
      expect(seen[0]!.response.toString("utf8")).toBe("\u0000ü\u0000p:w");
      // AMQPLAIN: table entries (shortstr key, tag, value) with no leading table length.
      const amqplain = seen[1]!.response;
      expect(new Cursor(Buffer.concat([u32(amqplain.length), amqplain])).table()).toEqual({
        LOGIN: "ü",
        PASSWORD: "p:w",
      });
      expect(seen[2]!.response.length).toBe(0);
    } finally {
      await server.close();
    }
  });

  test("a connection.secure challenge is answered with connection.secure-ok carrying the response", async () => {
    let answer: string | undefined;
    const server = await startFakeServer(async (c) => {
      await c.send(
        methodFrame(
          0,
          10,
          10,
          Buffer.concat([u8(0), u8(9), table({ product: "fake" }), longstr("PLAIN"), longstr("en_US")]),
        ),
      );
      await c.expectMethod(10, 11); // start-ok
      await c.send(methodFrame(0, 10, 20, longstr("challenge"))); // connection.secure
      answer = new Cursor((await c.expectMethod(10, 21)).args).longstr().toString("utf8"); // secure-ok
      await c.send(methodFrame(0, 10, 30, Buffer.concat([u16(0), u32(131072), u16(0)]))); // tune
      await c.expectMethod(10, 31);
      await c.expectMethod(10, 40);
      await c.send(methodFrame(0, 10, 41, shortstr("")));
    });
    try {
      const conn = await connect({ url: server.url(), username: "who", password: "pw" });
      expect(answer).toBe("\u0000who\u0000pw");
      await server.close();
      await conn.close();
    } finally {
      await server.close();
    }
  });

  test("EXTERNAL, which this broker does not offer, is refused with a clear AuthenticationError", async () => {
    const r = await outcome(connect({ url: await getBrokerUrl(), mechanism: "EXTERNAL" }));
    expect(r.ok).toBe(false);
    const err = (r as { error: AuthenticationError }).error;
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toMatch(/EXTERNAL/);
    expect(err.message).toMatch(/PLAIN/);
  });

  test("a wrong password: AuthenticationError (403) from the broker, not a hang", async () => {
    const url = new URL(await getBrokerUrl());
    url.password = "definitely-wrong";
    const r = await outcome(connect({ url: url.toString(), connectionTimeout: 20_000 }));
    const err = (r as { error: AuthenticationError }).error;
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.replyCode).toBe(403);
    expect(err.initiatedBy).toBe("server");
    expect(err.replyText).toMatch(/ACCESS_REFUSED/);
    expect(err.recoverable).toBe(false);
  });

  test("an unknown vhost: NotAllowedError (530) naming the vhost and connection.open", async () => {
    const url = new URL(await getBrokerUrl());
    const vhost = `missing-${randomUUID()}`;
    url.pathname = `/${vhost}`;
    const r = await outcome(connect(url.toString()));
    const err = (r as { error: NotAllowedError }).error;
    expect(err).toBeInstanceOf(NotAllowedError);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.replyCode).toBe(530);
    expect(err.replyText).toContain(vhost);
    expect(err.method).toBe("connection.open");
  });
});

describe("connect waits are bounded", () => {
  test("a server that accepts and never answers: TimeoutError after connectionTimeout, socket released", async () => {
    const silent = await silentServer();
    try {
      const r = await outcome(connect({ hostname: "127.0.0.1", port: silent.port, connectionTimeout: 200 }));
      expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    } finally {
      await silent.close();
    }
  });

  test("an AbortSignal aborts a connect in progress, and an aborted one never starts", async () => {
    const silent = await silentServer();
    try {
      const ac = new AbortController();
      const pending = outcome(
        connect({ hostname: "127.0.0.1", port: silent.port, connectionTimeout: 20_000, signal: ac.signal }),
      );
      setTimeout(() => ac.abort(), 50);
      const r = await pending;
      expect((r as { error: unknown }).error).toBeInstanceOf(AbortError);

      const r2 = await outcome(connect({ url: await getBrokerUrl(), signal: AbortSignal.abort() }));
      expect((r2 as { error: unknown }).error).toBeInstanceOf(AbortError);
    } finally {
      await silent.close();
    }
  });

  test("a refused port fails at once with a ConnectionClosedError carrying the cause", async () => {
    const silent = await silentServer();
    const port = silent.port;
    await silent.close(); // nothing listens there now
    const r = await outcome(connect({ hostname: "127.0.0.1", port }));
    const err = (r as { error: ConnectionClosedError }).error;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toMatch(/could not connect/);
    expect((err.cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });
});

describe("socket options", () => {
  test("TCP_NODELAY is set on the socket by default, and left off on request", async () => {
    const spy = vi.spyOn(net.Socket.prototype, "setNoDelay");
    try {
      const a = await open();
      const afterDefault = spy.mock.calls.map((c) => c[0]);
      expect(afterDefault).toContain(true);
      spy.mockClear();
      await open({ noDelay: false });
      expect(spy.mock.calls.map((c) => c[0])).toEqual([false]);
      expect(a.closed).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("lifecycle", () => {
  test("Symbol.asyncDispose closes the connection and its channels", async () => {
    let conn: Awaited<ReturnType<typeof connect>>;
    let ch: Awaited<ReturnType<typeof conn.openChannel>>;
    {
      await using c = await connect(await getBrokerUrl());
      conn = c;
      ch = await c.openChannel();
      {
        await using inner = await c.openChannel();
        await inner.queueDeclare("", { exclusive: true });
        ch = inner;
      }
      expect(ch.closed).toBe(true);
      expect(conn.closed).toBe(false);
    }
    expect(conn.closed).toBe(true);
  });

  test("a script that connects, works and closes exits by itself (no timer or socket left behind)", async () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const script = `
      import { connect } from "./src/index.ts";
      const conn = await connect({ url: process.env.AMQP_URL, heartbeat: 1 });
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      const got = new Promise((r) => ch.consume(queue, (m) => r(m.body.toString()), { noAck: true }));
      await ch.publish("", queue, "hi");
      const rpcLike = ch.consume(queue); // an iterator left open: close must end it
      console.log(await got);
      await conn.close();
      console.log("closed");
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      env: { ...process.env, AMQP_URL: await getBrokerUrl() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    // The test's own timeout is the bound: a child kept alive by a leaked handle never exits.
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(err).toBe("");
    expect(out).toBe("hi\nclosed\n");
    expect(code).toBe(0);
  });
});
