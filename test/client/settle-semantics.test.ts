/**
 * What a settle means to the broker, on the broker the suite runs against (CI runs this file on
 * RabbitMQ 4.3 and on 3.10): a failed handler is a failed delivery (basic.reject, counted toward
 * a quorum queue's x-delivery-limit on every version), a delivery warren hands back unprocessed
 * is a return (basic.nack, which 4.3 does not count). And what a close does to handlers: from the
 * call on none starts, the running ones are waited for (a cancelled consumer's too), and a handler
 * that closes is not waited for by its own close. Every test counts messages by id.
 */
import diagnostics from "node:diagnostics_channel";
import { describe, expect, test } from "vitest";
import {
  acquiredCount,
  deliveryCount,
  type Channel,
  type Connection,
  type FrameMessage,
  type Message,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { brokerAtLeast, eventually, queueCounts, untilReady, useConnections, useDurableQueues } from "./util.js";

const open = useConnections();
const deleteAfter = useDurableQueues(open);

/** A durable quorum queue (deleted after the test) holding messages with ids 0..n-1. */
async function quorum(ch: Channel, n: number, args: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName("settle-qq");
  await ch.queueDeclare(name, { durable: true, queueType: "quorum", arguments: args as never });
  deleteAfter(name);
  await ch.confirmSelect();
  await Promise.all(Array.from({ length: n }, (_, i) => ch.publish("", name, String(i), { messageId: String(i) })));
  return name;
}

async function drain(ch: Channel, queue: string): Promise<Message[]> {
  const out: Message[] = [];
  for (let m = await ch.get(queue); m !== null; m = await ch.get(queue)) {
    out.push(m);
    m.ack();
  }
  return out;
}

const ids = (ms: Message[]) => ms.map((m) => Number(m.properties.messageId)).sort((a, b) => a - b);

describe("a handler that always fails is a failed delivery: x-delivery-limit ends it", () => {
  for (const requeue of [true, "policy"] as const) {
    test(`deliveryLimit 2, requeue ${requeue === true ? "true" : "(err, msg) => true"}: dead-lettered after 3 handler calls, never a hot loop`, async () => {
      const conn = await open();
      const ch = await conn.openChannel();
      const dead = uniqueName("settle-dead");
      await ch.queueDeclare(dead, { durable: true, queueType: "quorum" });
      deleteAfter(dead);
      const queue = await quorum(ch, 1, {
        "x-delivery-limit": 2,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead,
      });
      const consuming = await conn.openChannel();
      consuming.on("consumerError", () => undefined);
      let calls = 0;
      await consuming.consume(
        queue,
        async () => {
          calls++;
          throw new Error("poison");
        },
        { settle: "auto", requeue: requeue === true ? true : () => true },
      );
      await untilReady(ch, dead, 1);
      const [m] = await drain(ch, dead);
      expect(m?.properties.messageId).toBe("0");
      const death = (m?.properties.headers?.["x-death"] as { reason: string }[] | undefined)?.[0];
      expect(death?.reason).toBe("delivery_limit");
      // Nothing is left to call the handler again: the count is final.
      expect((await queueCounts(ch, queue)).messageCount).toBe(0);
      expect(calls).toBe(3);
    });
  }
});

describe("what warren hands back unprocessed is a return, not a failure", () => {
  test("a consumer (concurrency 1, prefetch 10) cancelled while its first handler runs, then its channel closed: that handler finishes and is acked, the 9 others are back, none counted as failed", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await quorum(ch, 10);
    const consuming = await conn.openChannel();
    await consuming.prefetch(10);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handled: number[] = [];
    let started!: () => void;
    const first = new Promise<void>((r) => (started = r));
    const consumer = await consuming.consume(
      queue,
      async (msg) => {
        started();
        await gate;
        handled.push(Number(msg.properties.messageId));
      },
      { settle: "auto", concurrency: 1 },
    );
    await first;
    await consumer.cancel();
    const closed = consuming.close();
    release();
    await closed;
    expect(handled).toEqual([0]);
    const back = await drain(ch, queue);
    expect(ids(back)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Each was handed out once and returned: 4.3 does not count a return as a failed delivery.
    for (const m of back) expect(acquiredCount(m)).toBe(1);
    for (const m of back) expect(deliveryCount(m)).toBe(brokerAtLeast(conn, 4, 3) ? 0 : 1);
  });

  test("msg.nack() and msg.reject(): deliveryCount counts rejects on 4.3 (every return before), acquiredCount every hand-out", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await quorum(ch, 1);
    const seen: { acquired: number; delivery: number }[] = [];
    for (const settle of ["nack", "nack", "reject", "ack"] as const) {
      const m = await eventually(() => ch.get(queue).then((r) => r ?? undefined), "the message back in the queue");
      seen.push({ acquired: acquiredCount(m), delivery: deliveryCount(m) });
      expect(m[settle]()).toBeUndefined();
    }
    const on43 = brokerAtLeast(conn, 4, 3);
    expect(seen).toEqual([
      { acquired: 0, delivery: 0 },
      { acquired: 1, delivery: on43 ? 0 : 1 },
      { acquired: 2, delivery: on43 ? 0 : 2 },
      { acquired: 3, delivery: on43 ? 1 : 3 },
    ]);
  });
});

/** Counts basic.deliver frames read on `conn` (the public warren:frame:in channel). */
function deliveriesRead(conn: Connection): { readonly count: number; stop(): void } {
  let count = 0;
  const listen = (m: unknown) => {
    const f = m as FrameMessage;
    if (f.connection === conn && f.frame.type === 1 && f.frame.method.name === "basic.deliver") count++;
  };
  diagnostics.subscribe("warren:frame:in", listen);
  return {
    get count() {
      return count;
    },
    stop: () => diagnostics.unsubscribe("warren:frame:in", listen),
  };
}

describe("closing from a handler, and closing while handlers run", () => {
  for (const how of ["at once", "after an await"] as const) {
    for (const what of ["conn.close()", "ch.close()"] as const) {
      test(`${what} called in an async handler ${how} resolves without waiting for that handler; the other handler running is waited for and acked`, async () => {
        // A drain that waited for its own caller would wait this long: past the test's timeout.
        const conn = await open({ timeout: 60_000 });
        const ch = await conn.openChannel();
        const queue = await quorum(ch, 2);
        const consuming = await conn.openChannel();
        let releaseOther!: () => void;
        const other = new Promise<void>((r) => (releaseOther = r));
        const handled: number[] = [];
        let closedFromHandler!: () => void;
        const closed = new Promise<void>((r) => (closedFromHandler = r));
        await consuming.consume(
          queue,
          async (msg) => {
            const id = Number(msg.properties.messageId);
            if (id === 0) {
              await other; // running when 1, the stop message, closes
              handled.push(id);
              return;
            }
            if (how === "after an await") await new Promise((r) => setTimeout(r, 5));
            // The stop message: ack it first, or the close gives it back.
            msg.ack();
            setTimeout(releaseOther, 50);
            await (what === "conn.close()" ? conn.close() : consuming.close());
            handled.push(id);
            closedFromHandler();
          },
          { concurrency: 2 },
        );
        await closed;
        expect(handled.sort()).toEqual([0, 1]);
        const check = what === "conn.close()" ? await (await open()).openChannel() : ch;
        // 1 was acked by its handler; 0's handler finished without acking: back in the queue.
        await untilReady(check, queue, 1);
        expect(ids(await drain(check, queue))).toEqual([0]);
      });
    }
  }

  test("a callback that acks the first of 20 prefetched deliveries and calls ch.close() receives none of the other 19; they go back, not counted as failed", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await quorum(ch, 20);
    const consuming = await conn.openChannel();
    await consuming.prefetch(20);
    const received: number[] = [];
    let closing: Promise<void> | undefined;
    await consuming.consume(queue, (msg) => {
      received.push(Number(msg.properties.messageId));
      msg.ack();
      closing ??= consuming.close();
    });
    await eventually(() => closing !== undefined, "the first delivery");
    await closing;
    expect(received).toEqual([0]);
    await untilReady(ch, queue, 19);
    const back = await drain(ch, queue);
    expect(ids(back)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    // The close cancelled the consumer and returned them (nack) before closing the channel, whose
    // own requeue RabbitMQ 4.3 would count as a failed delivery.
    for (const m of back) expect(deliveryCount(m)).toBe(brokerAtLeast(conn, 4, 3) ? 0 : 1);
  });

  test("conn.close() from a callback stops every consumer of the connection at once; nothing is lost", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await quorum(ch, 50);
    const watcher = await (await open()).openChannel();
    const consuming = await conn.openChannel();
    await consuming.prefetch(50);
    const received: number[] = [];
    let closing: Promise<void> | undefined;
    await consuming.consume(queue, (msg) => {
      received.push(Number(msg.properties.messageId));
      msg.ack();
      closing ??= conn.close();
    });
    await eventually(() => closing !== undefined, "the first delivery");
    await closing;
    expect(received).toEqual([0]);
    await untilReady(watcher, queue, 49);
    const back = await drain(watcher, queue);
    expect(ids(back)).toEqual(Array.from({ length: 49 }, (_, i) => i + 1));
    for (const m of back) expect(deliveryCount(m)).toBe(brokerAtLeast(conn, 4, 3) ? 0 : 1);
  });
});

describe("a noAck consumer whose handler is slower than the broker stays bounded", () => {
  test("past highWaterMark waiting deliveries the socket is paused: what was read and not handled stays near the mark", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = uniqueName("settle-noack");
    await ch.queueDeclare(queue, { exclusive: true });
    const n = 20_000;
    await ch.confirmSelect();
    const body = Buffer.alloc(512, 1);
    for (let i = 0; i < n; i += 1000)
      await Promise.all(
        Array.from({ length: 1000 }, (_, j) => ch.publish("", queue, body, { messageId: String(i + j) })),
      );
    const consuming = await conn.openChannel();
    const read = deliveriesRead(conn);
    let handled = 0;
    let most = 0;
    const target = 300;
    let done!: () => void;
    const enough = new Promise<void>((r) => (done = r));
    await consuming.consume(
      queue,
      async () => {
        await new Promise((r) => setTimeout(r, 2));
        handled++;
        most = Math.max(most, read.count - handled);
        if (handled === target) done();
      },
      { noAck: true, highWaterMark: 100 },
    );
    await enough;
    read.stop();
    // Unbounded, the whole queue would be read while 300 handlers ran; bounded, what was read
    // and not yet handled is the mark, plus what one socket read brought past it.
    expect(most).toBeLessThan(1000);
    expect(read.count).toBeLessThan(n / 2);
  });
});
