/**
 * Regression tests for the reliability issue: bugs found by using warren as a hostile user and
 * a hostile network would. Each test names its item; each fails on the code before its fix.
 * Most run against the real broker; the fake server stands in only where a broker will not
 * misbehave on request (a late reply, a handshake out of order).
 */
import diagnostics from "node:diagnostics_channel";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, test } from "vitest";
import {
  ConnectionClosedError,
  FrameError,
  NackError,
  NotFoundError,
  TimeoutError,
  connect,
  createRpcClient,
  type Channel,
  type Connection,
  type FieldTable,
  type FrameMessage,
  type Message,
} from "../../src/index.js";
import type { ConsumerTable } from "../../src/client/consumer-table.js";
import { eventually, outcome, queueCounts, useConnections } from "../client/util.js";
import { getBrokerUrl, uniqueName } from "../helpers/broker.js";
import {
  Connection as C,
  longstr,
  methodFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
  table,
  u16,
  u32,
  u8,
  type FakeConnection,
} from "../helpers/fake-server.js";
import { forceCloseConnection } from "../helpers/force-close.js";
import { failOnUnhandledRejection } from "../helpers/leaks.js";
import { testNeeding } from "../helpers/capabilities.js";

failOnUnhandledRejection();
const open = useConnections();

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A recovering connection with a unique name (for rabbitmqctl close_connection). */
async function openRecovering(
  options: { timeout?: number; heartbeat?: number } = {},
): Promise<{ conn: Connection; name: string }> {
  const name = uniqueName("reliability");
  const conn = await connect({
    url: await getBrokerUrl(),
    connectionName: name,
    recovery: { initialDelay: 10, maxDelay: 100 },
    ...options,
  });
  cleanups.push(() => conn.close());
  return { conn, name };
}

async function scratchQueue(ch: Channel, prefix: string, args: FieldTable = {}): Promise<string> {
  const queue = uniqueName(prefix);
  await ch.queueDeclare(queue, { arguments: args });
  cleanups.push(async () => {
    const c = await open();
    const admin = await c.openChannel();
    await admin.queueDelete(queue);
  });
  return queue;
}

async function fill(ch: Channel, queue: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `m${i}`);
  await ch.confirmSelect();
  await Promise.all(ids.map((id) => ch.publish("", queue, id, { messageId: id })));
  return ids;
}

describe("silent loss", () => {
  test("1. a publish made while confirm.select is in flight is counted: it resolves on its own ack, and a later nacked publish rejects", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    // Room for one message: the broker acks the first publish and nacks the second.
    const queue = await scratchQueue(ch, "confirm-select-race", { "x-max-length": 1, "x-overflow": "reject-publish" });
    const selecting = ch.confirmSelect();
    const first = ch.publish("", queue, "first", { messageId: "first" });
    await selecting;
    const second = ch.publish("", queue, "second", { messageId: "second" });
    expect(await outcome(first)).toEqual({ ok: true, value: undefined });
    const r = await outcome(second);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toBeInstanceOf(NackError);
    await ch.waitForConfirms({ timeout: 5000 });
    const got = await ch.get(queue, { noAck: true });
    expect(got?.properties.messageId).toBe("first");
    expect(await ch.get(queue, { noAck: true })).toBeNull();
  });

  test("1b. a publish made while confirm.select waits behind another call is held until confirm.select is written, and so it is confirmed (here: nacked)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await scratchQueue(ch, "confirm-select-queued", {
      "x-max-length": 1,
      "x-overflow": "reject-publish",
    });
    await ch.publish("", queue, "fills the queue");
    await eventually(async () => (await queueCounts(ch, queue)).messageCount === 1, "the queue full");
    const declaring = ch.queueDeclare(queue, { passive: true }); // in flight: confirm.select waits behind it
    const selecting = ch.confirmSelect();
    const held = outcome(ch.publish("", queue, "one too many"));
    await declaring;
    await selecting;
    const r = await held;
    expect(r.ok).toBe(false); // confirmed as refused, not resolved on write and dropped
    expect(!r.ok && r.error).toBeInstanceOf(NackError);
  });

  test("2. once conn.close() is called, publishes and every other call reject with ConnectionClosedError, and nothing reaches the queue", async () => {
    const setup = await open();
    const admin = await setup.openChannel();
    const queue = await scratchQueue(admin, "publish-after-close");
    const conn = await connect(await getBrokerUrl());
    const ch = await conn.openChannel();
    const closing = conn.close();
    const published = outcome(ch.publish("", queue, "after close", { messageId: "late" }));
    const declared = outcome(ch.queueDeclare(uniqueName("never")));
    const opened = outcome(conn.openChannel());
    const acked = ch.ack(1);
    await closing;
    for (const r of [await published, await declared, await opened]) {
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toBeInstanceOf(ConnectionClosedError);
    }
    expect(acked).toBeInstanceOf(ConnectionClosedError);
    expect((await queueCounts(admin, queue)).messageCount).toBe(0);
  });
});

describe("stalls and needless deaths", () => {
  testNeeding(
    "rabbitmqctl",
    "3. after a recovery, deliveries that arrive while the channel is being restored can be acked: the consumer drains the whole queue",
    async () => {
      const { conn, name } = await openRecovering();
      const ch = await conn.openChannel();
      const queue = await scratchQueue(ch, "ack-while-restoring");
      const N = 200;
      const ids = await fill(ch, queue, N);
      const seen = new Set<string>();
      const refused: unknown[] = [];
      let holding = false;
      let halfway!: () => void;
      const reached = new Promise<void>((r) => (halfway = r));
      await ch.prefetch(5);
      await ch.consume(queue, (msg: Message) => {
        seen.add(msg.properties.messageId!);
        // At 20, the consumer holds what it has (a full prefetch window) while the operator closes
        // the connection; after the recovery the window is redelivered and must be ackable.
        if (seen.size === 20 && !msg.fields.redelivered) {
          holding = true;
          halfway();
        }
        if (holding && !msg.fields.redelivered) return;
        const err = ch.ack(msg);
        if (err !== undefined) refused.push(err);
      });
      conn.on("disconnect", () => (holding = false));
      await reached;
      await forceCloseConnection(name);
      const check = await open();
      const checkCh = await check.openChannel();
      await eventually(
        async () => {
          const c = await checkCh.queueDeclare(queue, { passive: true });
          return c.messageCount === 0 && seen.size === N;
        },
        "every message consumed and acked after the recovery",
        400,
        25,
      );
      expect(refused).toEqual([]);
      expect([...seen].sort()).toEqual([...ids].sort());
      await ch.close();
      // Nothing is left unacked: once the consumer's channel is closed nothing comes back.
      expect((await queueCounts(checkCh, queue)).messageCount).toBe(0);
    },
  );

  // The held socket notices the broker's close within a heartbeat tick (it peeks one chunk per
  // tick); recovery's own calls are then read although the stream still holds.
  testNeeding(
    "rabbitmqctl",
    "4. a slow iterator that holds the socket does not stall recovery: its channel is restored and the connection lives",
    async () => {
      const { conn, name } = await openRecovering({ timeout: 3000, heartbeat: 1 });
      const ch = await conn.openChannel();
      const queue = await scratchQueue(ch, "slow-iterator-blip");
      await fill(ch, queue, 100);
      // A small buffer, never read: the stream holds reading from the socket.
      const stream = ch.consume(queue, { noAck: true, highWaterMark: 5 });
      await stream.consumerTag;
      const admin = await (await open()).openChannel();
      await eventually(
        async () => (await queueCounts(admin, queue)).messageCount === 0,
        "the broker to have sent everything",
      );
      const recovered = new Promise<void>((resolve) => conn.once("topologyRecovered", resolve));
      const closed = new Promise<unknown>((resolve) => conn.once("close", resolve));
      const errors: unknown[] = [];
      conn.on("recoveryError", (e) => errors.push(e));
      await forceCloseConnection(name);
      const first = await Promise.race([recovered.then(() => "recovered"), closed.then(() => "closed")]);
      expect(first).toBe("recovered");
      expect(errors).toEqual([]);
      expect(conn.closed).toBe(false);
      // The channel works again: what it publishes now reaches the stream.
      await ch.publish("", queue, "after the blip");
      const bodies: string[] = [];
      for await (const msg of stream) {
        bodies.push(msg.body.toString());
        if (msg.body.toString() === "after the blip") break;
      }
      expect(bodies.at(-1)).toBe("after the blip");
    },
  );

  test("5. a reply that comes after its call timed out, and a late close-ok, cost one channel, not the connection", async () => {
    const timeout = 200;
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const ch = await openChannelOnServer(c);
      await c.expectMethod(50, 10); // queue.declare: answered only after the client gave up
      await c.expectMethod(20, 40); // the client's channel.close after the timeout
      await new Promise((r) => setTimeout(r, timeout * 3)); // past the client's close-ok wait too
      await c.send(methodFrame(ch, 50, 11, Buffer.concat([shortstr("q"), u32(0), u32(0)])));
      await c.send(methodFrame(ch, 20, 41));
      await openChannelOnServer(c);
    });
    cleanups.push(() => server.close());
    const conn = await connect({ url: server.url(), timeout });
    cleanups.push(() => conn.close());
    const closes: unknown[] = [];
    conn.on("close", (e) => closes.push(e));
    const ch = await conn.openChannel();
    const r = await outcome(ch.queueDeclare("q"));
    expect(!r.ok && r.error).toBeInstanceOf(TimeoutError);
    await eventually(() => ch.closed, "the abandoned channel to close");
    // The late frames arrive on the still-reserved id and are dropped; a new channel opens.
    const next = await conn.openChannel({ timeout: 5000 });
    await server.done();
    expect(next.id).not.toBe(0);
    expect(conn.closed).toBe(false);
    expect(closes).toEqual([]);
  });

  test.each([0, -1, Number.NaN, 1.5])(
    "6. highWaterMark %s is refused with a RangeError, before any consumer is started",
    async (hwm) => {
      const conn = await open();
      const ch = await conn.openChannel();
      const queue = await scratchQueue(ch, "hwm");
      expect(() => ch.consume(queue, { highWaterMark: hwm })).toThrow(RangeError);
      expect((await queueCounts(ch, queue)).consumerCount).toBe(0);
    },
  );

  testNeeding(
    "rabbitmqctl",
    "7. an RPC call in flight when a recovering connection is lost rejects with the loss reason, not a timeout",
    async () => {
      const { conn, name } = await openRecovering();
      const ch = await conn.openChannel();
      const queue = await scratchQueue(ch, "rpc-nobody-answers");
      const rpc = await createRpcClient(ch, { timeout: 20_000 });
      const call = outcome(rpc.call("", queue, "ping"));
      await eventually(async () => (await queueCounts(ch, queue)).messageCount === 1, "the request to be queued");
      await forceCloseConnection(name);
      const r = await call;
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toBeInstanceOf(ConnectionClosedError);
      expect(!r.ok && (r.error as ConnectionClosedError).recoverable).toBe(true);
    },
  );

  test("8. conn.close() while a for-await loop holds the socket reads the broker's close-ok instead of waiting out its timeout", async () => {
    const setup = await open();
    const admin = await setup.openChannel();
    const queue = await scratchQueue(admin, "close-busy-iterator");
    await fill(admin, queue, 200);
    const conn = await connect({ url: await getBrokerUrl(), timeout: 5000 });
    const ch = await conn.openChannel();
    let closeOk = false;
    const listener = (m: unknown) => {
      const { connection, frame } = m as FrameMessage;
      if (connection === conn && frame.type === 1 && frame.method.name === "connection.close-ok") closeOk = true;
    };
    diagnostics.subscribe("warren:frame:in", listener);
    try {
      const stream = ch.consume(queue, { noAck: true, highWaterMark: 5 });
      const first = await stream.next();
      expect(first.done).toBe(false);
      await new Promise((r) => setTimeout(r, 100)); // the buffer fills, the socket is held
      await conn.close();
      expect(closeOk).toBe(true);
      // The loop ends after what was buffered.
      let rest = 0;
      for (;;) {
        const r = await stream.next();
        if (r.done) break;
        rest++;
      }
      expect(rest).toBeGreaterThan(0);
    } finally {
      diagnostics.unsubscribe("warren:frame:in", listener);
    }
  });

  test("9. consumers that are cancelled leave nothing behind on a long-lived channel", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await scratchQueue(ch, "consume-cancel-cycles");
    const internals = (ch as unknown as { consumers: ConsumerTable }).consumers;
    for (let i = 0; i < 200; i++) {
      const c = await ch.consume(queue, () => undefined);
      await c.cancel();
    }
    expect(internals.size).toBe(0);
    expect(internals.remembered).toBeLessThanOrEqual(16);
  });

  test("9b. a consumer's AbortSignal is let go once the consumer is cancelled", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await scratchQueue(ch, "consume-signal");
    const ac = new AbortController();
    const { getEventListeners } = await import("node:events");
    for (let i = 0; i < 20; i++) {
      const c = await ch.consume(queue, () => undefined, { signal: ac.signal });
      await c.cancel();
    }
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  test("10. a connection.start-ok over 4096 bytes is refused before it is sent, with an error that says why", async () => {
    const r = await outcome(
      connect({ url: await getBrokerUrl(), clientProperties: { padding: "x".repeat(5000) }, connectionTimeout: 3000 }),
    );
    expect(r.ok).toBe(false);
    const err = !r.ok ? r.error : undefined;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err).not.toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/start-ok.*4096/);
    expect((err as ConnectionClosedError).recoverable).toBe(false);
  });
});

describe("smaller, same standard", () => {
  test("two next() calls at once on a stream both settle, in order", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await scratchQueue(ch, "two-next");
    const stream = ch.consume(queue, { noAck: true });
    await stream.consumerTag;
    const a = stream.next();
    const b = stream.next();
    await ch.publish("", queue, "one");
    await ch.publish("", queue, "two");
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.value?.body.toString()).toBe("one");
    expect(rb.value?.body.toString()).toBe("two");
    await stream.return();
  });

  test("the error that ends a stream while next() waits is reported once, then done", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const stream = ch.consume(uniqueName("missing"));
    const waiting = outcome(stream.next()); // waits before the 404 arrives
    const r = await waiting;
    expect(!r.ok && r.error).toBeInstanceOf(NotFoundError);
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  test("a consumer callback returning a rejecting promise of another realm is reported as consumerError, never unhandled", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await scratchQueue(ch, "other-realm");
    const failed = new Promise<unknown>((resolve) => ch.once("consumerError", (err) => resolve(err)));
    await ch.consume(queue, () => runInNewContext("Promise.reject(new Error('from another realm'))"), { noAck: true });
    await ch.publish("", queue, "x");
    expect(String(await failed)).toMatch(/from another realm/);
  });

  describe("the handshake in order: start, secure*, tune, open-ok", () => {
    async function start(c: FakeConnection): Promise<void> {
      await c.send(
        methodFrame(
          0,
          C.classId,
          C.start,
          Buffer.concat([u8(0), u8(9), table({ product: "fake" }), longstr("PLAIN"), longstr("en_US")]),
        ),
      );
      await c.expectMethod(C.classId, C.startOk);
    }
    const tune = methodFrame(0, C.classId, C.tune, Buffer.concat([u16(2047), u32(131072), u16(60)]));

    test("open-ok without tune is 505", async () => {
      const server = await startFakeServer(async (c) => {
        await start(c);
        await c.send(methodFrame(0, C.classId, C.openOk, shortstr("")));
      });
      cleanups.push(() => server.close());
      const r = await outcome(connect({ url: server.url(), connectionTimeout: 3000 }));
      expect(!r.ok && r.error).toBeInstanceOf(FrameError);
      expect(!r.ok && (r.error as FrameError).code).toBe(505);
    });

    test("a second tune is 505, and no heartbeat timer is left behind", async () => {
      const server = await startFakeServer(async (c) => {
        await start(c);
        await c.send(tune);
        await c.expectMethod(C.classId, C.tuneOk);
        await c.send(tune);
      });
      cleanups.push(() => server.close());
      const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      const r = await outcome(connect({ url: server.url(), connectionTimeout: 3000 }));
      expect(!r.ok && r.error).toBeInstanceOf(FrameError);
      expect(!r.ok && (r.error as FrameError).code).toBe(505);
      await eventually(
        () => process.getActiveResourcesInfo().filter((x) => x === "Timeout").length <= before,
        "no timer left",
      );
    });
  });

  test("breaking out of a for-await gives the buffered deliveries back to the queue at once", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await scratchQueue(ch, "break-requeues");
    const N = 50;
    await fill(ch, queue, N);
    await ch.prefetch(N);
    let taken: Message | undefined;
    const stream = ch.consume(queue);
    for await (const msg of stream) {
      await new Promise((r) => setTimeout(r, 50)); // let the rest of the prefetch window arrive
      taken = msg;
      break;
    }
    expect(taken).toBeDefined();
    // The channel is still open: only the one the loop took is unacked, the rest are ready again.
    await eventually(
      async () => (await queueCounts(ch, queue)).messageCount === N - 1,
      `${N - 1} messages ready again`,
    );
    expect(ch.ack(taken!)).toBeUndefined();
    await eventually(
      async () => (await ch.queueDeclare(queue, { passive: true })).messageCount === N - 1,
      "the ack to be taken",
    );
  });

  test("a late connection.update-secret-ok, after the call timed out, is dropped instead of closing the connection", async () => {
    const timeout = 200;
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      await c.expectMethod(10, 70); // update-secret
      await new Promise((r) => setTimeout(r, timeout * 2));
      await c.send(methodFrame(0, 10, 71));
      await openChannelOnServer(c);
    });
    cleanups.push(() => server.close());
    const conn = await connect({ url: server.url(), timeout });
    cleanups.push(() => conn.close());
    const r = await outcome(conn.updateSecret("token", "refresh"));
    expect(!r.ok && r.error).toBeInstanceOf(TimeoutError);
    await conn.openChannel({ timeout: 5000 }); // the late reply came first, in order, and was dropped
    await server.done();
    expect(conn.closed).toBe(false);
  });
});

async function openChannelOnServer(c: FakeConnection): Promise<number> {
  const m = await c.expectMethod(20, 10);
  await c.send(methodFrame(m.channel, 20, 11, longstr("")));
  return m.channel;
}
