/**
 * The fault-injection proxy, against the real broker where a real AMQP exchange is needed and
 * against the fake server where the test must decide exactly when the "broker" speaks.
 */
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { brokerAddress, getBrokerUrl } from "../helpers/broker.js";
import {
  Connection,
  Cursor,
  PROTOCOL_HEADER,
  clientClose,
  clientHandshake,
  methodFrame,
  rawConnect,
  startFakeServer,
  type FakeConnection,
  type FakeServer,
  type FrameSocket,
} from "../helpers/fake-server.js";
import { startProxy, type Proxy } from "../helpers/proxy.js";

let brokerUrl: string;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  brokerUrl = await getBrokerUrl();
});

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function proxyTo(target: { host: string; port: number }): Promise<Proxy> {
  const proxy = await startProxy({ target });
  cleanup.push(() => proxy.close());
  return proxy;
}

async function client(port: number): Promise<FrameSocket> {
  const sock = await rawConnect(port);
  cleanup.push(() => sock.destroy());
  return sock;
}

/** A fake server whose connection the test drives by hand. */
async function fakeTarget(): Promise<{ server: FakeServer; accepted: Promise<FakeConnection> }> {
  let onConn!: (c: FakeConnection) => void;
  const accepted = new Promise<FakeConnection>((resolve) => (onConn = resolve));
  const server = await startFakeServer(async (conn) => onConn(conn));
  cleanup.push(() => server.close());
  return { server, accepted };
}

describe("proxy to the real broker", () => {
  test("forwards the protocol header and the broker's connection.start", async () => {
    const proxy = await proxyTo(brokerAddress(brokerUrl));
    const sock = await client(proxy.port);
    await sock.send(PROTOCOL_HEADER);
    const start = await sock.expectMethod(Connection.classId, Connection.start);
    expect(start.channel).toBe(0);
    const args = new Cursor(start.args);
    expect([args.u8(), args.u8()]).toEqual([0, 9]);
    expect(args.table()).toHaveProperty("capabilities");
    expect(args.longstr().toString()).toContain("PLAIN");
    expect(proxy.bytes.up).toBe(8);
    expect(proxy.bytes.down).toBe(start.payload.length + 8);
    expect(proxy.accepted).toBe(1);
  });

  test("url() points at the proxy and keeps credentials, vhost and query", async () => {
    const proxy = await proxyTo(brokerAddress(brokerUrl));
    const url = new URL(proxy.url("amqp://user:secret@broker.example:5672/%2F?heartbeat=5"));
    expect(url.hostname).toBe("127.0.0.1");
    expect(url.port).toBe(String(proxy.port));
    expect([url.username, url.password, url.pathname, url.search]).toEqual(["user", "secret", "/%2F", "?heartbeat=5"]);
  });

  test("a whole handshake and close survive one-byte writes with latency", async () => {
    const proxy = await proxyTo(brokerAddress(brokerUrl));
    proxy.setChunkSize(1);
    proxy.setLatency(2);
    const sock = await client(proxy.port);
    const result = await clientHandshake(sock);
    expect(result.tune.frameMax).toBeGreaterThan(0);
    await clientClose(sock);
    await sock.closed;
    // (RabbitMQ resets the socket after close-ok even without a proxy, so no check on sock.error.)
    expect(proxy.bytes).toEqual(proxy.received);
    expect(proxy.bytes.up).toBeGreaterThan(8);
  });

  test.each(["down", "up"] as const)("resetAfterBytes(%s) resets the client mid-frame with ECONNRESET", async (dir) => {
    const proxy = await proxyTo(brokerAddress(brokerUrl));
    const sock = await client(proxy.port);
    proxy.resetAfterBytes(dir, 3);
    await sock.send(PROTOCOL_HEADER);
    await sock.closed;
    expect(sock.error?.code).toBe("ECONNRESET");
    expect(proxy.bytes[dir]).toBe(3);
    expect(sock.receivedBytes).toBeLessThanOrEqual(dir === "down" ? 3 : 0);
    await proxy.until(() => proxy.open === 0);
  });

  test("resetAll resets every connection and keeps accepting", async () => {
    const proxy = await proxyTo(brokerAddress(brokerUrl));
    const a = await client(proxy.port);
    const b = await client(proxy.port);
    await proxy.until(() => proxy.open === 2);
    proxy.resetAll();
    await Promise.all([a.closed, b.closed]);
    expect([a.error?.code, b.error?.code]).toEqual(["ECONNRESET", "ECONNRESET"]);

    const c = await client(proxy.port);
    await c.send(PROTOCOL_HEADER);
    await c.expectMethod(Connection.classId, Connection.start);
  });
});

describe("proxy to the fake server", () => {
  test("blackhole() drops bytes both ways and keeps both sockets open", async () => {
    const { server, accepted } = await fakeTarget();
    const proxy = await proxyTo({ host: "127.0.0.1", port: server.port });
    const sock = await client(proxy.port);
    await sock.send(PROTOCOL_HEADER);
    const conn = await accepted;
    const hello = methodFrame(0, Connection.classId, Connection.start);
    await conn.send(hello);
    await sock.readFrame();

    proxy.blackhole();
    await conn.send(hello);
    await sock.send(hello);
    await proxy.until(() => proxy.dropped.down === hello.length && proxy.dropped.up === hello.length);
    expect(proxy.bytes).toEqual({ up: 8, down: hello.length });
    expect(sock.available).toBe(0);
    expect(conn.available).toBe(0);
    expect(sock.peerGone || conn.peerGone).toBe(false);
    expect(proxy.open).toBe(1);
  });

  test("pauseReading holds one direction while the other flows; resumeReading delivers in order", async () => {
    const { server, accepted } = await fakeTarget();
    const proxy = await proxyTo({ host: "127.0.0.1", port: server.port });
    const sock = await client(proxy.port);
    await sock.send(PROTOCOL_HEADER);
    const conn = await accepted;

    proxy.pauseReading("down");
    const held = Buffer.alloc(64 * 1024, 7);
    await conn.send(held);
    // The up direction still flows while down is paused.
    await sock.send(Buffer.from("ping"));
    expect((await conn.read()).toString()).toBe("ping");
    expect(proxy.bytes.down).toBe(0);

    proxy.resumeReading("down");
    await proxy.until(() => proxy.bytes.down === held.length);
    let got = Buffer.alloc(0);
    while (got.length < held.length) got = Buffer.concat([got, await sock.read()]);
    expect(got.equals(held)).toBe(true);
  });

  test("setChunkSize re-chunks without losing or reordering bytes", async () => {
    const { server, accepted } = await fakeTarget();
    const proxy = await proxyTo({ host: "127.0.0.1", port: server.port });
    proxy.setChunkSize(5, "up");
    const sock = await client(proxy.port);
    const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
    await sock.send(Buffer.concat([PROTOCOL_HEADER, payload]));
    const conn = await accepted;
    let got = Buffer.alloc(0);
    while (got.length < payload.length) got = Buffer.concat([got, await conn.read()]);
    expect(got.equals(payload)).toBe(true);
  });

  test("FIN is passed on after the bytes before it", async () => {
    const { server, accepted } = await fakeTarget();
    const proxy = await proxyTo({ host: "127.0.0.1", port: server.port });
    proxy.setLatency(1);
    const sock = await client(proxy.port);
    await sock.send(Buffer.concat([PROTOCOL_HEADER, Buffer.from("last words")]));
    sock.end();
    const conn = await accepted;
    let got = Buffer.alloc(0);
    while (!conn.peerGone || conn.available > 0) {
      try {
        got = Buffer.concat([got, await conn.read()]);
      } catch {
        break;
      }
    }
    expect(got.toString()).toBe("last words");
    expect(conn.error).toBeUndefined();
  });

  test("close() closes the listener and every socket", async () => {
    const { server, accepted } = await fakeTarget();
    const proxy = await startProxy({ target: { host: "127.0.0.1", port: server.port } });
    const sock = await client(proxy.port);
    await sock.send(PROTOCOL_HEADER);
    const conn = await accepted;
    await proxy.close();
    await Promise.all([sock.closed, conn.closed]);
    expect(proxy.open).toBe(0);
    await expect(rawConnect(proxy.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
