/**
 * consumer.pause() and resume() against the real broker, every id counted: a pause lets the
 * running handlers finish and settle and gives back what waited (a return, not a failure); the
 * consumer stays paused across a forced reconnect; resume() takes the rest; both idempotent;
 * typed errors once the consumer has ended.
 */
import { once } from "node:events";
import { afterEach, describe, expect, test } from "vitest";
import { ConnectionClosedError, ConsumerEndedError, connect, type Connection } from "../../src/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { startProxy } from "../helpers/proxy.js";
import { eventually, outcome, queueCounts, untilReady, useConnections, useDurableQueues } from "./util.js";

const open = useConnections();
const durable = useDurableQueues(open);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const N = 100;

async function recovering(): Promise<{ conn: Connection; reset: () => void }> {
  const url = await getBrokerUrl();
  const proxy = await startProxy({ target: brokerAddress(url) });
  cleanups.push(() => proxy.close());
  const conn = await connect({
    url: proxy.url(url),
    connectionName: uniqueName("pause"),
    recovery: { initialDelay: 10, maxDelay: 100 },
  });
  cleanups.push(() => conn.close());
  return { conn, reset: () => proxy.resetAll() };
}

describe("pause() and resume()", () => {
  test("paused mid-stream, through a forced reconnect, then resumed: every id handled exactly once, nothing failed", async () => {
    const queue = uniqueName("pause");
    durable(queue);
    const setup = await (await open()).openChannel();
    await setup.queueDeclare(queue, { durable: true });
    for (let i = 0; i < N; i++) await setup.publish("", queue, String(i), { messageId: String(i) });
    await untilReady(setup, queue, N);

    const { conn, reset } = await recovering();
    const ch = await conn.openChannel();
    const handled: number[] = [];
    let failedSettles = 0;
    ch.on("consumerError", () => void failedSettles++);
    let paused: Promise<void> | undefined;
    const consumer = await ch.consume(
      queue,
      async (msg) => {
        handled.push(Number(msg.properties.messageId));
        if (handled.length === 20) paused = consumer.pause({ drain: true });
        await new Promise((r) => setTimeout(r, 2));
      },
      { concurrency: 4, settle: "auto" },
    );
    await eventually(() => paused !== undefined, "the pause at the 20th delivery");
    await paused;
    const atPause = handled.length;
    expect(consumer.paused).toBe(true);
    expect(consumer.stats()).toMatchObject({ buffered: 0, handlersRunning: 0, paused: true });
    // Handled ones acked, the buffered ones back in the queue: nothing unacked, no consumer. A
    // round trip on the consumer's own channel first: the broker has taken its acks before the
    // reset below (they are on their way when pause() resolves, not necessarily arrived).
    await queueCounts(ch, queue);
    await eventually(
      async () => {
        const c = await queueCounts(setup, queue);
        return c.messageCount === N - atPause && c.consumerCount === 0;
      },
      `${N - atPause} ready and no consumer`,
    );

    reset();
    await once(conn, "reconnected");
    await eventually(() => conn.state === "open", "recovered");
    await consumer.pause(); // idempotent
    expect(await queueCounts(setup, queue)).toEqual({ messageCount: N - atPause, consumerCount: 0 });
    expect(handled.length).toBe(atPause);

    await consumer.resume();
    await consumer.resume(); // idempotent
    expect(consumer.paused).toBe(false);
    // Every id handled and every handler's run over (settle "auto" acks when the handler returns).
    await eventually(() => handled.length >= N && consumer.stats().handlersRunning === 0, `all ${N} handled`);
    await eventually(async () => (await queueCounts(setup, queue)).messageCount === 0, "the queue empty");
    expect([...handled].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(failedSettles).toBe(0);
    // Delivered: each id handled once, plus the ones the pause handed back (basic.nack, a return: nothing rejected).
    const { deliveries } = ch.stats();
    expect(deliveries.rejected).toBe(0);
    expect(consumer.stats().delivered).toBe(N + deliveries.nacked);
    expect(deliveries.acked).toBe(N);

    await consumer.cancel();
    for (const r of [await outcome(consumer.pause()), await outcome(consumer.resume())])
      expect(!r.ok && r.error instanceof ConsumerEndedError).toBe(true);
  });

  test("paused while it heals (its queue deleted and declared again): it does not consume again until resume()", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = uniqueName("pause-heal");
    durable(queue);
    await ch.queueDeclare(queue, {});
    const got: string[] = [];
    const consumer = await ch.consume(queue, (m) => void got.push(m.body.toString()), {
      noAck: true,
      resubscribe: { initialDelay: 20, maxDelay: 50, declare: {} },
    });
    const healing = once(consumer, "cancelled");
    await ch.queueDelete(queue); // the broker cancels the consumer; it heals by declaring the queue again
    await healing;
    await consumer.pause();
    // A passive declare of a missing queue closes its channel (404): each look on a channel of its own.
    const exists = async () => {
      const look = await conn.openChannel();
      const r = await outcome(queueCounts(look, queue));
      if (r.ok) await look.close();
      return r.ok;
    };
    await eventually(exists, "the queue declared again by the healing");
    await ch.publish("", queue, "while paused");
    await eventually(async () => (await queueCounts(ch, queue)).messageCount === 1, "the message waiting");
    expect((await queueCounts(ch, queue)).consumerCount).toBe(0);
    expect(got).toEqual([]);
    await consumer.resume();
    await eventually(() => got.length === 1, "the message after resume()");
    expect(got).toEqual(["while paused"]);
  });

  test("resume() after the connection closed rejects with its close error", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const consumer = await ch.consume(queue, () => undefined, { noAck: true });
    await consumer.pause();
    await conn.close();
    const r = await outcome(consumer.resume());
    expect(!r.ok && r.error instanceof ConnectionClosedError).toBe(true);
  });
});
