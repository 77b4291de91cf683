/**
 * Streams over AMQP 0-9-1: a stream queue read with `x-stream-offset` (first, last, next, a
 * numeric offset, a timestamp), prefetch required, manual ack. After a recovery a stream
 * consumer resumes after the last offset it was given (from the deliveries' `x-stream-offset`
 * header), not at the offset it was started with: every offset comes exactly once.
 */
import { afterEach, describe, expect, test } from "vitest";
import { connect, typed, type Channel, type Connection, type FieldValue, type Message } from "../../src/index.js";
import { eventually, useConnections } from "../client/util.js";
import { getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { forceCloseConnection } from "../helpers/force-close.js";
import { failOnUnhandledRejection } from "../helpers/leaks.js";
import { testNeeding } from "../helpers/capabilities.js";

failOnUnhandledRejection();
const open = useConnections();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function stream(ch: Channel, n: number): Promise<string> {
  const queue = uniqueName("stream");
  await ch.queueDeclare(queue, { durable: true, queueType: "stream" });
  cleanups.push(async () => (await (await open()).openChannel()).queueDelete(queue));
  await ch.confirmSelect();
  for (let i = 0; i < n; i += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, j) =>
        ch.publish("", queue, `m${i + j}`, { messageId: `m${i + j}` }),
      ),
    );
  return queue;
}

const offsetOf = (m: Message): number => Number(m.properties.headers?.["x-stream-offset"]);

/** Reads `count` messages from `queue` starting at `offset`, acking each. */
async function read(ch: Channel, queue: string, offset: FieldValue, count: number): Promise<Message[]> {
  await ch.prefetch(100);
  const got: Message[] = [];
  for await (const m of ch.consume(queue, { arguments: { "x-stream-offset": offset } })) {
    got.push(m);
    ch.ack(m);
    if (got.length === count) break;
  }
  return got;
}

describe("x-stream-offset", () => {
  test("first, a numeric offset, last and next start where they say", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await stream(ch, 50);
    expect((await read(ch, queue, "first", 50)).map(offsetOf)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect((await read(ch, queue, 30, 20)).map((m) => m.body.toString())).toEqual(
      Array.from({ length: 20 }, (_, i) => `m${30 + i}`),
    );
    // "last" starts at the last chunk, which holds the newest message; "next" only sees new ones.
    expect((await read(ch, queue, "last", 1))[0]!.body.toString()).toMatch(/^m\d+$/);
    const other = await conn.openChannel();
    await other.prefetch(10);
    const next = other.consume(queue, { arguments: { "x-stream-offset": "next" } });
    await next.consumerTag; // attached: only what is published from now on comes
    await ch.publish("", queue, "new one");
    const r = await next.next();
    expect(r.value?.body.toString()).toBe("new one");
    await next.return();
  });

  // A timestamp attaches at the start of the chunk that holds the first message from then on
  // (RabbitMQ "Streams": offsets by timestamp have a chunk's grain), so what comes before that
  // message in its chunk may come too; nothing after it is skipped.
  test("a timestamp starts at or before the first message published from then on, and misses nothing after it", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await stream(ch, 10);
    await new Promise((r) => setTimeout(r, 1100)); // timestamps have a second's grain
    const from = new Date();
    await ch.publish("", queue, "after the timestamp");
    await ch.publish("", queue, "and one more");
    const got: Message[] = [];
    await ch.prefetch(100);
    for await (const m of ch.consume(queue, {
      arguments: { "x-stream-offset": typed("T", new Date(from.getTime() - 200)) },
    })) {
      got.push(m);
      ch.ack(m);
      if (m.body.toString() === "and one more") break;
    }
    const offsets = got.map(offsetOf);
    expect(offsets).toEqual(Array.from({ length: got.length }, (_, i) => offsets[0]! + i)); // contiguous
    expect(got.slice(-2).map((m) => m.body.toString())).toEqual(["after the timestamp", "and one more"]);
    // The epoch is before everything: it starts at offset 0, as "first" does.
    expect(offsetOf((await read(ch, queue, typed("T", new Date(0)), 1))[0]!)).toBe(0);
  });
});

describe("recovery of a stream consumer", () => {
  testNeeding(
    "rabbitmqctl",
    "after a forced reconnect it resumes after the last offset it delivered: 500 offsets, each exactly once",
    async () => {
      const N = 500;
      const setup = await open();
      const queue = await stream(await setup.openChannel(), N);
      const name = uniqueName("stream-recovery");
      const conn: Connection = await connect({
        url: await getBrokerUrl(),
        connectionName: name,
        recovery: { initialDelay: 10, maxDelay: 100 },
      });
      cleanups.push(() => conn.close());
      const ch = await conn.openChannel();
      await ch.prefetch(50);
      const seen: number[] = [];
      let forced: Promise<number> | undefined;
      // At 150 the consumer stops acking (the broker stops at the prefetch window) while the
      // operator closes the connection; after the reconnect it acks again.
      let holding = false;
      conn.on("disconnect", () => (holding = false));
      await ch.consume(
        queue,
        (m) => {
          seen.push(offsetOf(m));
          if (seen.length === 150 && forced === undefined) {
            holding = true;
            forced = forceCloseConnection(name);
          }
          if (!holding) ch.ack(m);
        },
        { arguments: { "x-stream-offset": "first" } },
      );
      // The forced close first: rabbitmqctl may take many seconds on a loaded machine.
      await eventually(() => forced !== undefined, "the 150th delivery", 400, 25);
      await forced;
      await eventually(() => seen.length >= N, `${N} deliveries`, 400, 25);
      await new Promise((r) => setTimeout(r, 300)); // anything duplicated would arrive by now
      expect(seen).toHaveLength(N);
      expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    },
    90_000,
  );

  // A soak found it (issue "Chaos"): after a node was killed the broker refused to restore a
  // stream consumer's channel (406), and the consumer, healing on a new channel, consumed again
  // from its original "first": every offset it had been given came twice. Here its channel is
  // closed under it by a 404 (a passive declare of a queue that does not exist), which heals the
  // same way, without recovery, and then with it.
  for (const recovery of [false, true]) {
    test(`healing onto a new channel (resubscribe${recovery ? ", with recovery" : ""}) resumes after the last offset it was given: 300 offsets, each exactly once`, async () => {
      const N = 300;
      const setup = await open();
      const queue = await stream(await setup.openChannel(), N);
      const conn = await open(recovery ? { recovery: { initialDelay: 10 } } : {});
      const ch = await conn.openChannel();
      await ch.prefetch(50);
      const seen: number[] = [];
      let closedUnder: Promise<unknown> | undefined;
      const consumer = await ch.consume(
        queue,
        (m) => {
          seen.push(offsetOf(m));
          m.ack();
          if (seen.length === 120 && closedUnder === undefined)
            closedUnder = ch.queueDeclare(uniqueName("missing"), { passive: true }).catch((e: unknown) => e);
        },
        { arguments: { "x-stream-offset": "first" }, resubscribe: { initialDelay: 10 } },
      );
      const resubscribed = new Promise<{ channel: Channel }>((resolve) => consumer.once("resubscribed", resolve));
      expect((await resubscribed).channel).not.toBe(ch);
      await eventually(() => seen.length >= N, `${N} deliveries`, 400, 25);
      await new Promise((r) => setTimeout(r, 300)); // anything replayed would arrive by now
      expect(seen).toHaveLength(N);
      expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    });
  }
});
