/**
 * Automatic recovery against the real broker: connections are cut by the broker
 * (`rabbitmqctl close_connection`, 320 CONNECTION_FORCED) or by the fault proxy (TCP reset), and
 * the same Connection and Channel objects must carry on with their topology, prefetch,
 * consumers and confirm mode, without losing a confirmed publish.
 */
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  AbortError,
  AmqpError,
  ConnectionClosedError,
  PublishBatchError,
  ConnectionForcedError,
  NotFoundError,
  TimeoutError,
  connect,
  type Connection,
  type ConnectionEvents,
  type Message,
  type ReconnectingInfo,
  type RecoveryOptions,
  type ReturnedMessage,
} from "../../src/index.js";
import { backoffDelay } from "../../src/client/wait.js";
import { eventually, outcome, queueCounts, useConnections } from "../client/util.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { forceCloseConnection } from "../helpers/force-close.js";
import { startProxy, type Proxy } from "../helpers/proxy.js";
import { describeNeeding, testNeeding } from "../helpers/capabilities.js";

const openPlain = useConnections();

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);
beforeAll(() => void process.on("unhandledRejection", onUnhandled));
afterAll(() => void process.off("unhandledRejection", onUnhandled));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  expect(unhandled.splice(0), "unhandled rejections").toEqual([]);
});

const EVENTS = [
  "disconnect",
  "reconnecting",
  "reconnected",
  "queueRenamed",
  "topologyRecovered",
  "recoveryError",
  "recoveryFailed",
  "close",
] as const;

/** A recovering connection with a unique connection name, every recovery event recorded in order. */
async function openRecovering(options: { url?: string[]; recovery?: RecoveryOptions } = {}) {
  const name = uniqueName("recovery");
  const conn = await connect({
    url: options.url ?? [await getBrokerUrl()],
    connectionName: name,
    recovery: { initialDelay: 10, maxDelay: 200, ...options.recovery },
  });
  cleanups.push(() => conn.close());
  const events: { name: (typeof EVENTS)[number]; arg: unknown }[] = [];
  for (const e of EVENTS) conn.on(e, ((arg: unknown) => events.push({ name: e, arg })) as never);
  return { conn, name, events };
}

async function proxyToBroker(): Promise<Proxy> {
  const proxy = await startProxy({ target: brokerAddress(await getBrokerUrl()) });
  cleanups.push(() => proxy.close());
  return proxy;
}

function next<K extends keyof ConnectionEvents>(conn: Connection, event: K): Promise<ConnectionEvents[K]> {
  return once(conn, event) as Promise<ConnectionEvents[K]>;
}

/** A TCP port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe("backoff", () => {
  test("delays grow by the factor up to maxDelay; jitter draws from [d * (1 - jitter), d]", () => {
    const o = { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, o, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 5].map((n) => backoffDelay(n, o, () => 1))).toEqual([50, 100, 500]);
    expect(backoffDelay(3, o, () => 0.5)).toBe(300);
    expect(backoffDelay(3, { ...o, jitter: 0 }, () => 0.7)).toBe(400);
  });

  test("bad options are refused at connect with a RangeError naming them", async () => {
    const url = await getBrokerUrl();
    await expect(connect({ url, recovery: { jitter: 2 } })).rejects.toThrow(/recovery\.jitter/);
    await expect(connect({ url, recovery: { maxAttempts: 0 } })).rejects.toThrow(/recovery\.maxAttempts/);
    await expect(connect({ url, recovery: { initialDelay: -1 } })).rejects.toThrow(/recovery\.initialDelay/);
    // Beyond setTimeout's 2^31 - 1 ms, Node would fire after 1 ms: a "wait forever" that waits not at all.
    await expect(connect({ url, recovery: { waitTimeout: Infinity } })).rejects.toThrow(
      /recovery\.waitTimeout must be at most/,
    );
    await expect(connect({ url, recovery: { maxDelay: 2 ** 31 } })).rejects.toThrow(
      /recovery\.maxDelay must be at most/,
    );
  });
});

describe("recovery", () => {
  testNeeding(
    "rabbitmqctl",
    "after a forced close the same Connection and Channel carry on: topology, prefetch, callback and iterator consumers restored, messages flow again",
    async () => {
      const { conn, name, events } = await openRecovering();
      const ch = await conn.openChannel();
      const ex = uniqueName("rec-x");
      const q1 = uniqueName("rec-q1");
      const q2 = uniqueName("rec-q2");
      cleanups.push(async () => (await (await openPlain()).openChannel()).exchangeDelete(ex));
      cleanups.push(async () => {
        const c = await (await openPlain()).openChannel();
        await c.queueDelete(q1);
        await c.queueDelete(q2);
      });
      await ch.exchangeDeclare(ex, "direct");
      // Durable: a named exclusive queue re-declared at once after a loss can race the broker's
      // removal of the dead connection's copy (seen with RabbitMQ 4.3); exclusive queues are
      // covered server-named below, where recovery declares them under a new name.
      await ch.queueDeclare(q1, { durable: true });
      await ch.queueBind(q1, ex, "one");
      await ch.queueDeclare(q2, { durable: true });
      await ch.queueBind(q2, ex, "two");
      await ch.prefetch(2);
      const got: Message[] = [];
      const consumer = await ch.consume(q1, (m) => void got.push(m));
      const stream = ch.consume(q2, { noAck: true });
      const streamTag = await stream.consumerTag;

      await ch.publish(ex, "one", "before");
      await ch.publish(ex, "two", "stream-before");
      await eventually(() => got.length === 1, "the first delivery");
      expect(ch.ack(got[0]!)).toBeUndefined();
      expect((await stream.next()).value?.body.toString()).toBe("stream-before");

      const recovered = next(conn, "topologyRecovered");
      await forceCloseConnection(name);
      await recovered;

      expect(events.map((e) => e.name)).toEqual(["disconnect", "reconnecting", "reconnected", "topologyRecovered"]);
      expect(events[0]!.arg).toBeInstanceOf(ConnectionForcedError);
      expect((events[1]!.arg as ReconnectingInfo).attempt).toBe(1);
      expect(conn.closed).toBe(false);
      expect(ch.closed).toBe(false);

      // Five more, none acked: prefetch 2 came back, so exactly two are delivered, three wait.
      for (let i = 0; i < 5; i++) await ch.publish(ex, "one", `after-${i}`);
      await eventually(
        async () => got.length === 3 && (await queueCounts(ch, q1)).messageCount === 3,
        "two deliveries and three ready",
      );
      expect(got.slice(1).map((m) => m.body.toString())).toEqual(["after-0", "after-1"]);
      expect(got[1]!.fields.consumerTag).toBe(consumer.consumerTag);
      expect(got[1]!.fields.deliveryTag).toBeGreaterThan(got[0]!.fields.deliveryTag);
      expect((await queueCounts(ch, q1)).consumerCount).toBe(1);
      // Acks of the new deliveries reach the broker (a wrong tag would close the channel with 406).
      expect(ch.ack(got[1]!)).toBeUndefined();
      expect(ch.ack(got[2]!)).toBeUndefined();
      await eventually(() => got.length === 5, "the rest after the acks");
      expect(got.slice(3).map((m) => m.body.toString())).toEqual(["after-2", "after-3"]);

      // The iterator keeps going under the same consumer tag.
      await ch.publish(ex, "two", "stream-after");
      const after = await stream.next();
      expect(after.value?.body.toString()).toBe("stream-after");
      expect(after.value?.fields.consumerTag).toBe(streamTag);
      await stream.return();
      expect(ch.closed).toBe(false);
    },
  );

  testNeeding(
    "rabbitmqctl",
    "a server-named queue gets a new name: queueRenamed, its bindings (direct and through an exchange-to-exchange binding) and consumer follow; unbound and deleted things stay gone",
    async () => {
      const { conn, name } = await openRecovering();
      const ch = await conn.openChannel();
      const src = uniqueName("rec-src");
      const mid = uniqueName("rec-mid");
      const goneQueue = uniqueName("rec-gone-q");
      const goneExchange = uniqueName("rec-gone-x");
      cleanups.push(async () => {
        const c = await (await openPlain()).openChannel();
        await c.exchangeDelete(src);
        await c.exchangeDelete(mid);
      });
      await ch.exchangeDeclare(src, "direct");
      await ch.exchangeDeclare(mid, "fanout");
      await ch.exchangeBind(mid, src, "via-mid");
      const { queue: old } = await ch.queueDeclare("", { exclusive: true });
      await ch.queueBind(old, src, "direct-key");
      await ch.queueBind(old, mid);
      await ch.queueBind(old, src, "unbound-key");
      await ch.queueUnbind(old, src, "unbound-key");
      await ch.queueDeclare(goneQueue);
      await ch.queueDelete(goneQueue);
      await ch.exchangeDeclare(goneExchange, "topic");
      await ch.exchangeDelete(goneExchange);
      const got: string[] = [];
      await ch.consume(old, (m) => void got.push(m.body.toString()), { noAck: true });

      const renamed = next(conn, "queueRenamed");
      const recovered = next(conn, "topologyRecovered");
      await forceCloseConnection(name);
      const [{ from, to }] = await renamed;
      await recovered;
      expect(from).toBe(old);
      expect(to).not.toBe(old);
      expect(to).toMatch(/^amq\.gen-/);

      const returned = once(ch, "return") as Promise<[ReturnedMessage]>;
      await ch.publish(src, "direct-key", "direct");
      await ch.publish(src, "via-mid", "exchange-to-exchange");
      await ch.publish(src, "unbound-key", "unbound", { mandatory: true });
      const [ret] = await returned;
      expect(ret.fields.routingKey).toBe("unbound-key");
      await eventually(() => got.length === 2, "both routed messages");
      expect(got).toEqual(["direct", "exchange-to-exchange"]);
      const counts = await queueCounts(ch, to);
      expect(counts.consumerCount).toBe(1);

      const plain = await openPlain();
      await expect((await plain.openChannel()).queueDeclare(old, { passive: true })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      await expect((await plain.openChannel()).queueDeclare(goneQueue, { passive: true })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      await expect(
        (await plain.openChannel()).exchangeDeclare(goneExchange, "topic", { passive: true }),
      ).rejects.toBeInstanceOf(NotFoundError);
    },
  );

  testNeeding(
    "rabbitmqctl",
    "auto-delete queues: one still consumed comes back with its consumer; one whose last consumer was cancelled (so the broker deleted it) is not brought back",
    async () => {
      const { conn, name } = await openRecovering();
      const ch = await conn.openChannel();
      const kept = uniqueName("rec-ad-kept");
      const dropped = uniqueName("rec-ad-dropped");
      await ch.queueDeclare(kept, { autoDelete: true });
      await ch.queueDeclare(dropped, { autoDelete: true });
      const got: string[] = [];
      await ch.consume(kept, (m) => void got.push(m.body.toString()), { noAck: true });
      const other = await ch.consume(dropped, () => undefined, { noAck: true });
      await other.cancel();
      const plain = await openPlain();
      await eventually(
        () =>
          plain
            .openChannel()
            .then((c) => c.queueDeclare(dropped, { passive: true }))
            .then(
              () => false,
              (e: unknown) => e instanceof NotFoundError,
            ),
        "the broker to auto-delete the queue",
      );

      const recovered = next(conn, "topologyRecovered");
      await forceCloseConnection(name);
      await recovered;
      expect((await queueCounts(ch, kept)).consumerCount).toBe(1);
      await ch.publish("", kept, "kept");
      await eventually(() => got.length === 1, "the message on the kept queue");
      await expect((await plain.openChannel()).queueDeclare(dropped, { passive: true })).rejects.toBeInstanceOf(
        NotFoundError,
      );
    },
  );

  test("hosts are tried in order: a closed port is skipped, the first that answers is used, the next one when it goes away", async () => {
    const brokerUrl = await getBrokerUrl();
    const proxy = await proxyToBroker();
    const closed = new URL(brokerUrl);
    closed.hostname = "127.0.0.1";
    closed.port = String(await closedPort());
    const { conn } = await openRecovering({ url: [closed.toString(), proxy.url(brokerUrl), brokerUrl] });
    expect(proxy.accepted).toBe(1); // not the closed port (first), not the broker (third)
    const ch = await conn.openChannel();
    let { queue } = await ch.queueDeclare("", { exclusive: true });
    conn.on("queueRenamed", ({ from, to }) => {
      if (from === queue) queue = to;
    });

    let reconnected = next(conn, "reconnected");
    let recovered = next(conn, "topologyRecovered");
    proxy.resetAll();
    expect((await reconnected)[0].port).toBe(proxy.port);
    await recovered;
    expect(proxy.accepted).toBe(2);

    reconnected = next(conn, "reconnected");
    recovered = next(conn, "topologyRecovered");
    await proxy.close();
    expect((await reconnected)[0].port).toBe(brokerAddress(brokerUrl).port);
    await recovered;

    await ch.publish("", queue, "still here");
    const msg = await eventually(() => ch.get(queue, { noAck: true }).then((m) => m ?? undefined), "the message");
    expect(msg.body.toString()).toBe("still here");
  });

  test("backoff: reconnecting events with growing delays, then recoveryFailed and close; calls waiting meanwhile reject with the final error, or AbortError by their signal", async () => {
    const brokerUrl = await getBrokerUrl();
    const proxy = await proxyToBroker();
    const { conn, events } = await openRecovering({
      url: [proxy.url(brokerUrl)],
      recovery: { initialDelay: 20, factor: 2, maxDelay: 100, jitter: 0, maxAttempts: 5, waitTimeout: 60_000 },
    });
    const ch = await conn.openChannel();
    const failed = next(conn, "recoveryFailed");
    const closed = next(conn, "close");
    const disconnected = next(conn, "disconnect");
    await proxy.close(); // the only host is gone: every attempt is refused
    await disconnected;

    const waiting = outcome(ch.publish("", "nowhere", "x"));
    const declaring = outcome(ch.queueDeclare(""));
    const aborter = new AbortController();
    const aborted = outcome(ch.publish("", "nowhere", "y", { signal: aborter.signal }));
    aborter.abort();

    const [err] = await failed;
    const [closeErr] = await closed;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toMatch(/gave up reconnecting after 5 attempts/);
    expect(closeErr).toBe(err);
    const attempts = events.filter((e) => e.name === "reconnecting").map((e) => e.arg as ReconnectingInfo);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(attempts.map((a) => a.delay)).toEqual([20, 40, 80, 100, 100]);
    expect(attempts[0]!.error).toBeInstanceOf(ConnectionClosedError);
    expect(attempts[1]!.error?.message).toMatch(/could not connect/);

    expect(await waiting).toEqual({ ok: false, error: err });
    expect(await declaring).toEqual({ ok: false, error: err });
    const a = await aborted;
    expect(a.ok === false && a.error).toBeInstanceOf(AbortError);
    expect(conn.closed).toBe(true);
    expect(ch.closed).toBe(true);
    await expect(conn.openChannel()).rejects.toBe(err);
  });

  test("waits are bounded: while down, publish and openChannel reject with TimeoutError after waitTimeout; close() during recovery ends it cleanly", async () => {
    const brokerUrl = await getBrokerUrl();
    const proxy = await proxyToBroker();
    const { conn, events } = await openRecovering({
      url: [proxy.url(brokerUrl)],
      recovery: { initialDelay: 60_000, maxDelay: 60_000, waitTimeout: 50 },
    });
    const ch = await conn.openChannel();
    const disconnected = next(conn, "disconnect");
    proxy.resetAll();
    await disconnected;
    await expect(ch.publish("", "nowhere", "x")).rejects.toBeInstanceOf(TimeoutError);
    await expect(conn.openChannel()).rejects.toBeInstanceOf(TimeoutError);
    expect(ch.ack(1)).toBeInstanceOf(ConnectionClosedError); // nothing to ack on: the broker requeued it
    const closed = next(conn, "close");
    await conn.close();
    expect((await closed)[0]).toBeUndefined();
    expect(conn.closed).toBe(true);
    expect(ch.closed).toBe(true);
    expect(events.filter((e) => e.name === "reconnecting")).toHaveLength(1);
    await expect(ch.publish("", "nowhere", "y")).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  test("a network partition (blackhole) is detected by heartbeats; the partitioned host times out and the next one is used", async () => {
    const brokerUrl = await getBrokerUrl();
    const proxy = await proxyToBroker();
    const name = uniqueName("recovery-partition");
    const conn = await connect({
      url: [proxy.url(brokerUrl), brokerUrl],
      connectionName: name,
      // Margins for a machine busy with the rest of the suite: with 1 s and 500 ms this test once
      // ran out its 30 s in CI (not reproduced since, beside CPU burners either). Now a broker's
      // heartbeats would have to stop for 4 s to be taken for the partition, and its handshake
      // would have to take 5 s to be taken for the blackholed host's.
      heartbeat: 2,
      connectionTimeout: 5000,
      recovery: { initialDelay: 10 },
    });
    cleanups.push(() => conn.close());
    const ch = await conn.openChannel();
    let { queue } = await ch.queueDeclare("", { exclusive: true });
    conn.on("queueRenamed", ({ from, to }) => {
      if (from === queue) queue = to;
    });
    const disconnected = next(conn, "disconnect");
    const reconnected = next(conn, "reconnected");
    const recovered = next(conn, "topologyRecovered");
    proxy.blackhole();
    const [lost] = await disconnected;
    expect(lost).toBeInstanceOf(ConnectionClosedError);
    expect(lost.message).toMatch(/heartbeat/);
    expect((await reconnected)[0].port).toBe(brokerAddress(brokerUrl).port);
    await recovered;
    await ch.publish("", queue, "across the partition");
    const msg = await eventually(() => ch.get(queue, { noAck: true }).then((m) => m ?? undefined), "the message");
    expect(msg.body.toString()).toBe("across the partition");
  }, 60_000);

  testNeeding(
    "rabbitmqctl",
    "a channel closed while the connection is down stays closed; the others come back and new channels open",
    async () => {
      const { conn, name } = await openRecovering();
      const gone = await conn.openChannel();
      const kept = await conn.openChannel();
      // Durable, not exclusive: a named exclusive queue re-declared by recovery can race the broker's
      // removal of the dead connection's copy (RabbitMQ 4.3), and this test is about channels.
      const queue = uniqueName("rec-kept");
      await kept.queueDeclare(queue, { durable: true });
      cleanups.push(async () => (await (await openPlain()).openChannel()).queueDelete(queue));
      const closedWhileDown = new Promise<void>((resolve) =>
        conn.once("disconnect", () => void gone.close().then(resolve)),
      );
      const recovered = next(conn, "topologyRecovered");
      await forceCloseConnection(name);
      await closedWhileDown;
      await recovered;
      expect(gone.closed).toBe(true);
      expect(kept.closed).toBe(false);
      await expect(gone.publish("", queue, "x")).rejects.toBeInstanceOf(AmqpError);
      const fresh = await conn.openChannel();
      await fresh.publish("", queue, "via a new channel");
      await kept.publish("", queue, "via the kept channel");
      await eventually(async () => (await queueCounts(kept, queue)).messageCount === 2 || undefined, "both messages");
    },
  );

  testNeeding(
    "rabbitmqctl",
    "a delivery unacked at the loss is redelivered; acking the stale one is refused with an error, the new one is acked on the new channel",
    async () => {
      const { conn, name } = await openRecovering();
      const ch = await conn.openChannel();
      const q = uniqueName("rec-stale");
      cleanups.push(async () => (await (await openPlain()).openChannel()).queueDelete(q));
      await ch.queueDeclare(q);
      await ch.prefetch(1);
      const got: Message[] = [];
      await ch.consume(q, (m) => void got.push(m));
      await ch.publish("", q, "first");
      await ch.publish("", q, "second");
      await eventually(() => got.length === 1, "the first delivery");

      const recovered = next(conn, "topologyRecovered");
      await forceCloseConnection(name);
      await recovered;
      await eventually(() => got.length === 2, "the redelivery");
      expect(got[1]!.body.toString()).toBe("first");
      expect(got[1]!.fields.redelivered).toBe(true);

      const stale = ch.ack(got[0]!);
      expect(stale).toBeInstanceOf(AmqpError);
      expect(stale?.message).toMatch(/before the connection was recovered/);
      expect(ch.ack(got[1]!)).toBeUndefined();
      await eventually(() => got.length === 3, "the second message, once the first is acked (prefetch 1)");
      expect(got[2]!.body.toString()).toBe("second");
      expect(ch.ack(got[2]!)).toBeUndefined();
      await eventually(async () => (await queueCounts(ch, q)).messageCount === 0 || undefined, "an empty queue");
      expect(ch.closed).toBe(false);
    },
  );
});

// rabbitmqctl boots an Erlang VM for each call: on a loaded 2-core machine the forced close lands
// after up to 30 s, the default bound of a test, while the publisher goes on.
describeNeeding(
  "rabbitmqctl",
  "publishes across a reconnect (counted)",
  () => {
    /**
     * Publish in windows of 50 with confirms to a durable queue, force-close the connection after
     * 500, and go on until 500 more have been published after recovery. Every publish settles;
     * returns the outcome of each (by sequence number) and the sequence numbers in the queue.
     */
    /** Publishes in windows of 50 (each by publish(), or as one publishBatch) until well past a forced reconnect. */
    async function publishThroughReconnect(recovery: RecoveryOptions, batched = false) {
      const { conn, name } = await openRecovering({ recovery });
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      const q = uniqueName("rec-counted");
      cleanups.push(async () => (await (await openPlain()).openChannel()).queueDelete(q));
      await ch.queueDeclare(q, { durable: true });

      const resolved = new Set<number>();
      const rejected: unknown[] = [];
      let seq = 0;
      let recoveredAt = -1;
      conn.once("topologyRecovered", () => (recoveredAt = seq));
      let forced: Promise<number> | undefined;
      while (recoveredAt < 0 || seq < recoveredAt + 500) {
        const window: Promise<unknown>[] = [];
        const first = seq + 1;
        if (batched) {
          const batch = Array.from({ length: 50 }, () => ({
            exchange: "",
            routingKey: q,
            body: String(++seq),
            options: { deliveryMode: 2 },
          }));
          window.push(
            ch.publishBatch(batch).then(
              () => batch.forEach((_, i) => resolved.add(first + i)),
              (e: unknown) => {
                if (!(e instanceof PublishBatchError)) throw e;
                const failed = new Set(e.failures.map((f) => f.index));
                batch.forEach((_, i) => (failed.has(i) ? undefined : resolved.add(first + i)));
                for (const f of e.failures) rejected.push(f.error);
              },
            ),
          );
        } else {
          for (let i = 0; i < 50; i++) {
            const n = ++seq;
            window.push(
              ch.publish("", q, String(n), { deliveryMode: 2 }).then(
                () => resolved.add(n),
                (e: unknown) => rejected.push(e),
              ),
            );
          }
        }
        await Promise.all(window); // each handles its own outcome: this waits until all 50 settled
        if (seq >= 500) forced ??= forceCloseConnection(name);
        // Until the close lands (rabbitmqctl takes seconds on a loaded machine), a window every
        // 10 ms: unpaced, the loop published 300,000 messages meanwhile, more than a drain can take.
        if (forced !== undefined && recoveredAt < 0) await new Promise((r) => setTimeout(r, 10));
        if (seq > 500_000) throw new Error("recovery never completed");
      }
      expect(await forced).toBe(1);

      // Count with a passive declare, then drain to check which ones are there.
      const plain = await (await openPlain()).openChannel();
      const { messageCount } = await queueCounts(plain, q);
      const inQueue: number[] = [];
      await plain.prefetch(1000);
      await plain.consume(q, (m) => void inQueue.push(Number(m.body.toString())), { noAck: true });
      await eventually(() => inQueue.length === messageCount, `${messageCount} messages drained`);
      return { seq, resolved, rejected, messageCount, inQueue: new Set(inQueue), recoveredAt };
    }

    test("unconfirmed at the loss: rejected with a typed, recoverable error; every resolved publish is in the queue, none pending", async () => {
      const r = await publishThroughReconnect({});
      expect(r.resolved.size + r.rejected.length).toBe(r.seq); // every promise settled
      for (const e of r.rejected) {
        expect(e).toBeInstanceOf(ConnectionClosedError);
        expect((e as ConnectionClosedError).recoverable).toBe(true);
      }
      expect(r.resolved.size).toBeGreaterThanOrEqual(500 + 500 - r.rejected.length);
      const missing = [...r.resolved].filter((n) => !r.inQueue.has(n));
      expect(missing).toEqual([]);
      expect(r.messageCount).toBeGreaterThanOrEqual(r.resolved.size);
      expect(r.messageCount).toBeLessThanOrEqual(r.seq);
    });

    test.each([false, true])(
      "with republishUnconfirmed, no publish rejects and every one is in the queue (at least once); batched: %s",
      async (batched) => {
        const r = await publishThroughReconnect({ republishUnconfirmed: true }, batched);
        expect(r.rejected).toEqual([]);
        expect(r.resolved.size).toBe(r.seq);
        const missing = [...r.resolved].filter((n) => !r.inQueue.has(n));
        expect(missing).toEqual([]);
        expect(r.messageCount).toBeGreaterThanOrEqual(r.seq);
      },
    );

    test("batched, unconfirmed at the loss: each such message is named by the batch's error, typed and recoverable; every other is in the queue", async () => {
      const r = await publishThroughReconnect({}, true);
      expect(r.resolved.size + r.rejected.length).toBe(r.seq); // every message settled
      for (const e of r.rejected) {
        expect(e).toBeInstanceOf(ConnectionClosedError);
        expect((e as ConnectionClosedError).recoverable).toBe(true);
      }
      const missing = [...r.resolved].filter((n) => !r.inQueue.has(n));
      expect(missing).toEqual([]);
      expect(r.messageCount).toBeLessThanOrEqual(r.seq);
    });
  },
  { timeout: 120_000 },
);
