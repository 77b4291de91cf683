/**
 * The basic class (spec 1.8): qos per consumer and global (RabbitMQ's per_consumer_qos reading
 * of the global bit), publish mandatory -> basic.return, consume (callback and iterator, the
 * iterator holding no more than the prefetch), cancel by the client, get / get-empty,
 * ack / nack / reject single and multiple, recover. A consumer cancelled by the broker (queue
 * deleted) is test/fault/queue-deleted.test.ts.
 */
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import { describe, expect, test } from "vitest";
import {
  AccessRefusedError,
  ReturnedError,
  type Channel,
  DeprecatedFeatureWarning,
  type FrameMessage,
  type Message,
  type ReturnedMessage,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { brokerAtLeast, eventually, outcome, queueCounts, take, untilReady, useConnections } from "./util.js";

const open = useConnections();

/** An exclusive queue holding `n` messages "0".."n-1", published with confirms. */
async function filledQueue(ch: Channel, n: number, body: (i: number) => string | Buffer = String): Promise<string> {
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  const pub = await ch.connection.openChannel();
  await pub.confirmSelect();
  await Promise.all(Array.from({ length: n }, (_, i) => pub.publish("", queue, body(i))));
  await pub.close();
  return queue;
}

/** A few round trips on the connection: anything the broker was going to send by now has arrived. */
async function settle(ch: Channel, queue: string): Promise<void> {
  for (let i = 0; i < 3; i++) await ch.queueDeclare(queue, { passive: true });
}

describe("basic.qos", () => {
  test("per consumer (global false): each consumer holds at most the prefetch of unacked messages; an ack lets one more in", async () => {
    const ch = await (await open()).openChannel();
    const queue = await filledQueue(ch, 20);
    await ch.prefetch(3);
    const a: Message[] = [];
    const b: Message[] = [];
    await ch.consume(queue, (m) => void a.push(m));
    await ch.consume(queue, (m) => void b.push(m));
    await eventually(() => a.length === 3 && b.length === 3, "3 deliveries to each consumer");
    await settle(ch, queue);
    expect([a.length, b.length]).toEqual([3, 3]);
    expect((await queueCounts(ch, queue)).messageCount).toBe(14);
    ch.ack(a[0]!);
    await eventually(() => a.length === 4, "one more delivery after the ack");
    await settle(ch, queue);
    expect([a.length, b.length]).toEqual([4, 3]);
  });

  // RabbitMQ 4.3 denies global_qos by default: it answers qos-ok and applies the limit per
  // consumer, which warren reports as a DeprecatedFeatureWarning. Before 4.3 the limit is shared.
  test("global (true): one limit shared by every consumer on the channel before RabbitMQ 4.3; from 4.3 a limit per consumer, and a warning", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const denied = brokerAtLeast(conn, 4, 3);
    const warnings: DeprecatedFeatureWarning[] = [];
    ch.on("warning", (w) => void (w instanceof DeprecatedFeatureWarning && warnings.push(w)));
    const q1 = await filledQueue(ch, 10);
    const q2 = await filledQueue(ch, 10);
    await ch.prefetch(4, { global: true });
    const inFlight = denied ? 8 : 4;
    const got: Message[] = [];
    await ch.consume(q1, (m) => void got.push(m));
    await ch.consume(q2, (m) => void got.push(m));
    await eventually(() => got.length === inFlight, `${inFlight} deliveries in all`);
    await settle(ch, q1);
    expect(got.length).toBe(inFlight);
    const ready = (await queueCounts(ch, q1)).messageCount + (await queueCounts(ch, q2)).messageCount;
    expect(ready).toBe(20 - inFlight);
    expect(warnings.map((w) => [w.feature, w.setting])).toEqual(
      denied ? [["global_qos", "deprecated_features.permit.global_qos = true"]] : [],
    );
    ch.ack(got.at(-1)!.fields.deliveryTag, { multiple: true });
    await eventually(() => got.length === 2 * inFlight, `${inFlight} more after acking all`);
  });
});

describe("basic.publish mandatory -> basic.return", () => {
  test("an unroutable mandatory message comes back as a return event with 312 NO_ROUTE, body and properties", async () => {
    const ch = await (await open()).openChannel();
    const x = uniqueName("nowhere");
    await ch.exchangeDeclare(x, "direct", { autoDelete: true });
    const returned = once(ch, "return") as Promise<[ReturnedMessage]>;
    await ch.publish(x, "no.binding", "bounce", { mandatory: true, messageId: "m-1", headers: { a: 1 } });
    const [r] = await returned;
    expect(r.fields).toMatchObject({ replyCode: 312, replyText: "NO_ROUTE", exchange: x, routingKey: "no.binding" });
    expect(r.body.toString()).toBe("bounce");
    expect(r.properties.messageId).toBe("m-1");
    expect(r.properties.headers).toEqual({ a: 1 });
  });

  test("a routable mandatory message, or an unroutable one without mandatory, is not returned", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const returns: ReturnedMessage[] = [];
    ch.on("return", (r) => returns.push(r));
    await ch.confirmSelect();
    await ch.publish("", queue, "routed", { mandatory: true });
    await ch.publish("", uniqueName("no-such-queue"), "dropped");
    // A return comes before its ack, and the publish's promise hears it (confirm.test.ts).
    await expect(ch.publish("", uniqueName("no-such-queue"), "returned", { mandatory: true })).rejects.toBeInstanceOf(
      ReturnedError,
    );
    expect(returns.map((r) => r.body.toString())).toEqual(["returned"]);
  });
});

describe("basic.consume", () => {
  test("callback form: every message, in order, with delivery fields; consumer tag of our choosing; exclusive consumer refuses others (403)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await filledQueue(ch, 5);
    const t = take(5);
    const c = await ch.consume(queue, t.onMessage, { noAck: true, consumerTag: "my-tag ✓", exclusive: true });
    expect(c.consumerTag).toBe("my-tag ✓");
    const msgs = await t.done;
    expect(msgs.map((m) => m.body.toString())).toEqual(["0", "1", "2", "3", "4"]);
    expect(msgs.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3, 4, 5]);
    expect(msgs[0]!.fields).toMatchObject({
      consumerTag: "my-tag ✓",
      redelivered: false,
      exchange: "",
      routingKey: queue,
    });
    const other = await conn.openChannel();
    const r = await outcome(other.consume(queue, () => undefined));
    expect((r as { error: unknown }).error).toBeInstanceOf(AccessRefusedError);
  });

  test("a callback that throws or rejects is reported on consumerError, and consuming goes on", async () => {
    const ch = await (await open()).openChannel();
    const queue = await filledQueue(ch, 2);
    const errors: unknown[] = [];
    ch.on("consumerError", (e) => errors.push(e));
    let n = 0;
    await ch.consume(
      queue,
      async (m) => {
        n++;
        if (m.body.toString() === "0") throw new Error("boom");
      },
      { noAck: true },
    );
    await eventually(() => n === 2 && errors.length === 1, "both deliveries and one error");
    expect((errors[0] as Error).message).toBe("boom");
  });

  test("iterator form: messages in order; the client holds no more than the prefetch of a large queue", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await filledQueue(ch, 500);
    await ch.prefetch(10);
    const delivered: number[] = [];
    const listener = (m: unknown) => {
      const f = m as FrameMessage;
      if (f.connection === conn && f.channel === ch.id && f.frame.type === 1 && f.frame.method.name === "basic.deliver")
        delivered.push(1);
    };
    diagnostics.subscribe("warren:frame:in", listener);
    try {
      const stream = ch.consume(queue);
      const first = await stream.next();
      expect(first.value?.body.toString()).toBe("0");
      await settle(ch, queue);
      // Nothing acked: the broker has sent the prefetch and no more, and the rest waits in the queue.
      expect(delivered.length).toBe(10);
      expect((await queueCounts(ch, queue)).messageCount).toBe(490);
      let i = 0;
      ch.ack(first.value!);
      for await (const m of stream) {
        expect(m.body.toString()).toBe(String(++i));
        ch.ack(m);
        if (i === 499) break; // break cancels the consumer
      }
      expect(delivered.length).toBeGreaterThanOrEqual(500);
      await settle(ch, queue);
      expect((await queueCounts(ch, queue)).consumerCount).toBe(0);
    } finally {
      diagnostics.unsubscribe("warren:frame:in", listener);
    }
  });

  test("basic.cancel by the client: the consumer gets nothing more, later messages stay in the queue", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const got: Message[] = [];
    const c = await ch.consume(queue, (m) => void got.push(m), { noAck: true });
    await ch.confirmSelect();
    await ch.publish("", queue, "before");
    await eventually(() => got.length === 1, "the first message");
    await c.cancel();
    await ch.publish("", queue, "after");
    await untilReady(ch, queue, 1);
    expect(got.map((m) => m.body.toString())).toEqual(["before"]);
    expect((await queueCounts(ch, queue)).consumerCount).toBe(0);
  });

  test("an iterator's AbortSignal cancels the consumer and ends the loop", async () => {
    const ch = await (await open()).openChannel();
    const queue = await filledQueue(ch, 3);
    const ac = new AbortController();
    const seen: string[] = [];
    for await (const m of ch.consume(queue, { noAck: true, signal: ac.signal })) {
      seen.push(m.body.toString());
      if (seen.length === 2) ac.abort();
    }
    expect(seen.length).toBeGreaterThanOrEqual(2);
    await eventually(async () => (await queueCounts(ch, queue)).consumerCount === 0, "the consumer to be cancelled");
  });
});

describe("basic.get", () => {
  test("get-ok carries the message and the count left; get-empty is null", async () => {
    const ch = await (await open()).openChannel();
    const queue = await filledQueue(ch, 2);
    const m = await ch.get(queue, { noAck: true });
    expect(m?.body.toString()).toBe("0");
    expect(m?.fields).toMatchObject({ messageCount: 1, redelivered: false, exchange: "", routingKey: queue });
    expect((await ch.get(queue, { noAck: true }))?.body.toString()).toBe("1");
    expect(await ch.get(queue)).toBeNull();
  });
});

describe("ack / nack / reject", () => {
  async function fetch(ch: Channel, queue: string, n: number): Promise<Message[]> {
    const out: Message[] = [];
    for (let i = 0; i < n; i++) out.push((await ch.get(queue))!);
    return out;
  }
  /** Closing the channel requeues whatever it left unacked: then count what is ready. */
  async function readyAfterClose(ch: Channel, queue: string, expected: number): Promise<void> {
    const probe = await ch.connection.openChannel();
    await ch.close();
    await untilReady(probe, queue, expected);
  }

  test("ack single and multiple remove exactly those messages", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await filledQueue(ch, 6);
    const ms = await fetch(ch, queue, 6);
    ch.ack(ms[3]!, { multiple: true }); // 0..3
    ch.ack(ms[5]!); // 5 alone; 4 left unacked
    await readyAfterClose(ch, queue, 1);
    const probe = await conn.openChannel();
    expect((await probe.get(queue, { noAck: true }))?.body.toString()).toBe("4");
  });

  test("nack single and multiple: requeue puts back, requeue false drops", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await filledQueue(ch, 5);
    const ms = await fetch(ch, queue, 5);
    ch.nack(ms[1]!, { multiple: true, requeue: false }); // 0, 1 dropped
    ch.nack(ms[2]!, { requeue: true }); // 2 back
    ch.nack(ms[4]!, { requeue: false }); // 4 dropped; 3 unacked
    const probe = await conn.openChannel();
    const back = await eventually(
      () => probe.get(queue, { noAck: true }).then((m) => m ?? undefined),
      "the requeued message",
    );
    expect(back.body.toString()).toBe("2");
    expect(back.fields.redelivered).toBe(true);
    await readyAfterClose(ch, queue, 1); // only 3 comes back
    expect((await probe.get(queue, { noAck: true }))?.body.toString()).toBe("3");
  });

  test("reject: requeue puts back (redelivered), requeue false drops", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const queue = await filledQueue(ch, 2);
    const [a, b] = await fetch(ch, queue, 2);
    ch.reject(a!, { requeue: false });
    ch.reject(b!); // requeue by default
    const again = await eventually(
      () => ch.get(queue, { noAck: true }).then((m) => m ?? undefined),
      "the requeued message",
    );
    expect(again.body.toString()).toBe("1");
    expect(again.fields.redelivered).toBe(true);
    expect(await ch.get(queue)).toBeNull();
  });
});

describe("basic.recover", () => {
  test("recover requeue: unacked messages are redelivered, flagged redelivered, and can then be acked", async () => {
    const ch = await (await open()).openChannel();
    const queue = await filledQueue(ch, 3);
    const got: Message[] = [];
    await ch.consume(queue, (m) => void got.push(m));
    await eventually(() => got.length === 3, "three deliveries");
    await ch.recover();
    await eventually(() => got.length === 6, "three redeliveries");
    const again = got.slice(3);
    expect(again.map((m) => m.body.toString()).sort()).toEqual(["0", "1", "2"]);
    expect(again.every((m) => m.fields.redelivered)).toBe(true);
    for (const m of again) expect(ch.ack(m)).toBeUndefined();
    await settle(ch, queue);
    expect(ch.closed).toBe(false);
  });
});
