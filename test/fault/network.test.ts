/**
 * Network faults between the client and the real broker, injected by the TCP fault proxy
 * (test/helpers/proxy.ts): a reset in the middle of a frame in either direction, a blackhole
 * that only the heartbeat can detect, latency with one-byte chunks, and a peer that stops
 * reading.
 *
 * For every fault the same promises are checked: each pending call (an RPC, an unconfirmed
 * publish, a basic.get, a consumer iterator waiting for its next message) rejects with the
 * connection's close reason, a ConnectionClosedError carrying the cause; the connection emits
 * "close" exactly once, with that reason; no unhandled rejection fires; and once the proxy is
 * gone no socket or timer of the client is left.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  connect,
  createRpcClient,
  ConnectionClosedError,
  TimeoutError,
  type RpcClient,
  type Channel,
  type Connection,
  type ConnectOptions,
  type Message,
} from "../../src/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import {
  expectNoLeakedResources,
  failOnUnhandledRejection,
  recordCloses,
  resourceCounts,
  settled,
} from "../helpers/leaks.js";
import { startProxy, type Proxy } from "../helpers/proxy.js";
import { eventually, queueCounts } from "../client/util.js";

failOnUnhandledRejection();

let brokerUrl: string;
/** A direct connection (no proxy) for setting up and checking broker state. */
let admin: Connection;
let adminCh: Channel;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  brokerUrl = await getBrokerUrl();
  admin = await connect(brokerUrl);
  adminCh = await admin.openChannel();
});

afterAll(async () => {
  await admin.close();
});

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function declareQueue(): Promise<string> {
  const { queue } = await adminCh.queueDeclare(uniqueName("fault-net"), { autoDelete: false });
  cleanup.push(() => adminCh.queueDelete(queue).catch(() => undefined));
  return queue;
}

interface Faulty {
  proxy: Proxy;
  conn: Connection;
  closes: unknown[];
}

/** A connection through a fresh proxy, its "close" events recorded. */
async function throughProxy(options: Omit<ConnectOptions, "url"> = {}): Promise<Faulty> {
  const proxy = await startProxy({ target: brokerAddress(brokerUrl) });
  cleanup.push(() => proxy.close());
  const conn = await connect({ url: proxy.url(brokerUrl), heartbeat: 0, ...options });
  cleanup.push(() => conn.close().catch(() => undefined));
  return { proxy, conn, closes: recordCloses(conn) };
}

/** Channels set up before the fault, each able to have one call pending across it. */
interface Parties {
  rpc: Channel;
  rpcClient: RpcClient;
  get: Channel;
  confirm: Channel;
  stream: AsyncIterator<Message>;
}

async function parties(conn: Connection, queue: string): Promise<Parties> {
  const rpc = await conn.openChannel();
  const rpcClient = await createRpcClient(await conn.openChannel());
  const get = await conn.openChannel();
  const confirm = await conn.openChannel();
  await confirm.confirmSelect();
  const consumer = await conn.openChannel();
  const messages = consumer.consume(queue);
  await messages.consumerTag;
  return { rpc, rpcClient, get, confirm, stream: messages[Symbol.asyncIterator]() };
}

/** Calls made after the fault (or queued behind it): none can be answered. */
function pendingCalls(
  p: Parties,
  queue: string,
  next: Promise<IteratorResult<Message>>,
): Record<string, Promise<unknown>> {
  return {
    rpc: p.rpc.queueDeclare(queue, { passive: true }),
    get: p.get.get(queue),
    publish: p.confirm.publish("", queue, "after the fault"),
    // Resolving would claim every publish so far was confirmed.
    waitForConfirms: p.confirm.waitForConfirms(),
    openChannel: p.rpc.connection.openChannel(),
    rpcCall: p.rpcClient.call("", queue, "a request nobody will answer"),
    next,
  };
}

/**
 * The common verdict: every pending call rejected with the close reason (a
 * ConnectionClosedError), "close" emitted exactly once with it, and the connection closed.
 */
async function expectAllFailedWith(f: Faulty, calls: Record<string, Promise<unknown>>): Promise<ConnectionClosedError> {
  const outcomes = Object.fromEntries(
    await Promise.all(Object.entries(calls).map(async ([k, p]) => [k, await settled(p)] as const)),
  );
  expect(f.closes).toHaveLength(1);
  const reason = f.closes[0];
  expect(reason).toBeInstanceOf(ConnectionClosedError);
  for (const [name, o] of Object.entries(outcomes)) {
    expect(o.ok, `${name} should have rejected`).toBe(false);
    if (!o.ok) expect(o.error, name).toBe(reason);
  }
  expect(f.conn.closed).toBe(true);
  return reason as ConnectionClosedError;
}

/** Closes proxy and connection now (not in afterEach), so the leak check sees them gone. */
async function tearDown(f: Faulty): Promise<void> {
  await f.conn.close();
  await f.proxy.close();
}

describe("reset mid-frame", () => {
  test("client -> broker, while a large publish is being written", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    const f = await throughProxy();
    const p = await parties(f.conn, queue);
    const next = p.stream.next();

    // 1 MiB goes out as method + header + 8 body frames of frame_max; the reset falls inside
    // the second body frame, and everything written after the publish never arrives.
    f.proxy.resetAfterBytes("up", 200_000);
    const big = p.confirm.publish("", queue, randomBytes(1024 * 1024));
    const calls = { big, ...pendingCalls(p, queue, next) };
    const reason = await expectAllFailedWith(f, calls);

    expect(reason.replyCode).toBe(0);
    expect(reason.initiatedBy).toBe("library");
    expect(["ECONNRESET", "EPIPE"]).toContain((reason.cause as NodeJS.ErrnoException | undefined)?.code);
    expect(f.proxy.bytes.up).toBeLessThan(1024 * 1024);
    // Nothing half-written became a message.
    expect((await queueCounts(adminCh, queue)).messageCount).toBe(0);

    await tearDown(f);
    expect(f.closes).toHaveLength(1);
    await expectNoLeakedResources(before);
  });

  test("broker -> client, while a large delivery is arriving", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    const f = await throughProxy();
    const p = await parties(f.conn, queue);
    const next = p.stream.next();

    // Nothing the client sends from here on reaches the broker, so the calls below are
    // pending for certain; the only bytes coming down are the delivery, cut after 50 000.
    f.proxy.pauseReading("up");
    const calls = pendingCalls(p, queue, next);
    f.proxy.resetAfterBytes("down", 50_000);
    await adminCh.publish("", queue, randomBytes(1024 * 1024));
    const reason = await expectAllFailedWith(f, calls);

    expect(reason.replyCode).toBe(0);
    expect((reason.cause as NodeJS.ErrnoException | undefined)?.code).toBe("ECONNRESET");
    expect(f.proxy.bytes.down).toBeGreaterThanOrEqual(50_000);
    // The broker requeues the delivery it could not finish: the message is not lost.
    await eventually(
      async () => (await queueCounts(adminCh, queue)).messageCount === 1,
      "the message back in the queue",
    );

    await tearDown(f);
    expect(f.closes).toHaveLength(1);
    await expectNoLeakedResources(before);
  });
});

describe("blackhole", () => {
  test("no bytes and no FIN: the heartbeat declares the broker dead and everything pending fails", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    const f = await throughProxy({ heartbeat: 1 });
    expect(f.conn.heartbeat).toBe(1);
    const p = await parties(f.conn, queue);
    const next = p.stream.next();

    f.proxy.blackhole();
    const calls = pendingCalls(p, queue, next);
    const reason = await expectAllFailedWith(f, calls);

    // Detected by the heartbeat (two silent intervals, spec 4.2.7), not by a socket error
    // (there was none) nor by the 30 s call timeout.
    expect(reason.message).toMatch(/missed heartbeats/);
    expect(reason.replyCode).toBe(0);
    expect(reason.initiatedBy).toBe("library");
    expect(f.proxy.dropped.up).toBeGreaterThan(0);

    await tearDown(f);
    expect(f.closes).toHaveLength(1);
    await expectNoLeakedResources(before);
  });
});

describe("faults while connecting or closing", () => {
  test("a reset during the handshake: connect rejects with a ConnectionClosedError carrying the cause", async () => {
    const before = resourceCounts();
    const proxy = await startProxy({ target: brokerAddress(brokerUrl) });
    cleanup.push(() => proxy.close());
    proxy.resetAfterBytes("down", 20); // inside connection.start
    const o = await settled(connect({ url: proxy.url(brokerUrl) }));
    expect(o.ok).toBe(false);
    if (!o.ok) {
      expect(o.error).toBeInstanceOf(ConnectionClosedError);
      expect((o.error as Error).message).toMatch(/could not connect/);
      expect(((o.error as Error).cause as NodeJS.ErrnoException | undefined)?.code).toBe("ECONNRESET");
    }
    await proxy.close();
    await expectNoLeakedResources(before);
  });

  test("a blackhole during the handshake: connect fails with TimeoutError", async () => {
    const before = resourceCounts();
    const proxy = await startProxy({ target: brokerAddress(brokerUrl) });
    cleanup.push(() => proxy.close());
    proxy.blackhole();
    const o = await settled(connect({ url: proxy.url(brokerUrl), connectionTimeout: 300 }));
    expect(o.ok).toBe(false);
    if (!o.ok) expect(o.error).toBeInstanceOf(TimeoutError);
    expect(proxy.dropped.up).toBe(8); // the protocol header, and nothing came back
    await proxy.close();
    await expectNoLeakedResources(before);
  });

  test("close() into a blackhole without heartbeats: bounded by the call timeout, then everything released", async () => {
    const before = resourceCounts();
    const f = await throughProxy({ timeout: 300 });
    const ch = await f.conn.openChannel();
    f.proxy.blackhole();
    const chClose = settled(ch.close());
    await f.conn.close();
    expect(f.closes).toEqual([undefined]);
    expect((await chClose).ok).toBe(true);
    expect(ch.closed).toBe(true);
    await f.proxy.close();
    await expectNoLeakedResources(before);
  });
});

describe("latency and tiny chunks", () => {
  test("one-byte writes with added latency both ways: a whole session still works", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    const proxy = await startProxy({ target: brokerAddress(brokerUrl) });
    cleanup.push(() => proxy.close());
    proxy.setChunkSize(1);
    proxy.setLatency(3);
    // A small frame_max so a 10 KiB body crosses several body frames, each cut into bytes.
    const conn = await connect({ url: proxy.url(brokerUrl), frameMax: 8192, heartbeat: 0 });
    cleanup.push(() => conn.close().catch(() => undefined));
    const closes = recordCloses(conn);
    expect(conn.frameMax).toBe(8192);

    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const bodies = [Buffer.alloc(0), Buffer.from("small"), randomBytes(10 * 1024), Buffer.from("ü€ utf-8")];
    await Promise.all(bodies.map((b, i) => ch.publish("", queue, b, { messageId: `m${i}`, headers: { i } })));

    const got: Message[] = [];
    for await (const msg of ch.consume(queue, { noAck: false })) {
      got.push(msg);
      ch.ack(msg);
      if (got.length === bodies.length) break;
    }
    expect(got.map((m) => m.properties.messageId)).toEqual(bodies.map((_, i) => `m${i}`));
    got.forEach((m, i) => expect(m.body.equals(bodies[i]!)).toBe(true));
    expect(got.map((m) => m.properties.headers?.["i"])).toEqual([0, 1, 2, 3]);

    await ch.publish("", queue, "by get");
    const m = await eventually(
      () => ch.get(queue, { noAck: true }).then((r) => r ?? undefined),
      "a message by basic.get",
    );
    expect(m.body.toString()).toBe("by get");
    await ch.close();
    await conn.close();
    expect(closes).toEqual([undefined]);
    // Every byte went through the proxy one at a time and arrived.
    expect(proxy.bytes).toEqual(proxy.received);
    await proxy.close();
    await expectNoLeakedResources(before);
  });
});

describe("slow reader", () => {
  test("a broker that stops reading: publishes wait, the client's queued bytes stay bounded, nothing is lost", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    const proxy = await startProxy({ target: brokerAddress(brokerUrl) });
    cleanup.push(() => proxy.close());
    // Own the socket, to look at what the client has queued in it.
    let socket!: net.Socket;
    const conn = await connect({
      url: brokerUrl,
      heartbeat: 0,
      transport: () => (socket = net.connect({ host: proxy.host, port: proxy.port })),
    });
    cleanup.push(() => conn.close().catch(() => undefined));
    const ch = await conn.openChannel();

    const size = 64 * 1024;
    const body = randomBytes(size);
    proxy.pauseReading("up");
    let written = 0;
    let stop = false;
    let waiting: Promise<void> | undefined;
    const loop = (async () => {
      while (!stop) {
        waiting = ch.publish("", queue, body);
        await waiting;
        written += 1;
      }
    })();

    // The kernel's buffers fill, then the socket's; from then on the publish in hand waits.
    await eventually(() => socket.writableNeedDrain, "the socket to report backpressure", 2000, 5);
    const stalledAt = written;
    let resolved = false;
    void waiting!.then(() => (resolved = true));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(false);
    expect(written).toBe(stalledAt);
    // Bounded: what the client holds is the socket's high-water mark plus at most the one
    // publish that crossed it (and the frame overhead of its 1 + 1 + 1 frames).
    expect(socket.writableLength).toBeLessThanOrEqual(socket.writableHighWaterMark + size + 1024);

    proxy.resumeReading("up");
    await eventually(() => written > stalledAt + 5, "publishing to resume", 2000, 5);
    stop = true;
    await loop;
    // Every publish that resolved reached the queue.
    await eventually(
      async () => (await queueCounts(adminCh, queue)).messageCount === written || undefined,
      `${written} messages in the queue`,
    );

    await conn.close();
    await proxy.close();
    await expectNoLeakedResources(before);
  });

  test("a consumer that stops iterating: the client stops reading its socket, then catches up; nothing lost, order kept", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    const N = 300;
    const pub = await admin.openChannel();
    await pub.confirmSelect();
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        pub.publish("", queue, Buffer.alloc(1024, i % 251), { messageId: String(i) }),
      ),
    );
    await pub.close();
    let socket!: net.Socket;
    const conn = await connect({
      url: brokerUrl,
      heartbeat: 0,
      transport: () => (socket = net.connect(brokerAddress(brokerUrl))),
    });
    cleanup.push(() => conn.close().catch(() => undefined));
    const ch = await conn.openChannel();
    // noAck: the broker has no prefetch limit to stop it, only TCP backpressure can.
    const stream = ch.consume(queue, { noAck: true, highWaterMark: 20 });
    await stream.consumerTag;
    await eventually(() => socket.isPaused(), "the client to stop reading its socket");

    const ids: string[] = [];
    for await (const msg of stream) {
      ids.push(msg.properties.messageId!);
      if (ids.length === N) break;
    }
    expect(ids).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    expect(socket.isPaused()).toBe(false);
    await conn.close();
    await expectNoLeakedResources(before);
  });

  test("a publish waiting for the socket to drain rejects when the connection is lost", async () => {
    const before = resourceCounts();
    const queue = await declareQueue();
    let socket!: net.Socket;
    const proxy = await startProxy({ target: brokerAddress(brokerUrl) });
    cleanup.push(() => proxy.close());
    const conn = await connect({
      url: brokerUrl,
      heartbeat: 0,
      transport: () => (socket = net.connect({ host: proxy.host, port: proxy.port })),
    });
    cleanup.push(() => conn.close().catch(() => undefined));
    const closes = recordCloses(conn);
    const ch = await conn.openChannel();

    proxy.pauseReading("up");
    const body = randomBytes(64 * 1024);
    const publishes: Promise<void>[] = [];
    // Without confirms a publish resolves once its bytes are below the high-water mark: the
    // ones still above it when the socket dies were never sent, and must not resolve.
    while (!socket.writableNeedDrain) {
      publishes.push(ch.publish("", queue, body));
      await new Promise((r) => setImmediate(r));
    }
    const last = publishes[publishes.length - 1]!;
    proxy.resetAll();
    const o = await settled(last);
    expect(o.ok).toBe(false);
    expect(closes).toHaveLength(1);
    if (!o.ok) expect(o.error).toBe(closes[0]);
    expect(closes[0]).toBeInstanceOf(ConnectionClosedError);
    await Promise.allSettled(publishes);

    await conn.close();
    await proxy.close();
    await expectNoLeakedResources(before);
  });
});
