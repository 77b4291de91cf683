/**
 * Consumers that heal (the `resubscribe` consume option): after a broker-sent basic.cancel the
 * consumer consumes again with backoff, on the same channel, and says so ("resubscribed"), or
 * gives up and says that ("resubscribeFailed", onCancel). Deliveries are counted by message id:
 * every message published to the queue once it is back is handled exactly once.
 */
import { once } from "node:events";
import { describe, expect, test } from "vitest";
import {
  AmqpError,
  ConsumerCancelledError,
  NotFoundError,
  PreconditionFailedError,
  type Channel,
  type Message,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { eventually, useConnections } from "./util.js";

const open = useConnections();

async function publish(ch: Channel, queue: string, ids: number[]): Promise<void> {
  await Promise.all(ids.map((i) => ch.publish("", queue, String(i), { messageId: String(i) })));
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * A channel in confirm mode, a second one that deletes and declares the queue (as another client
 * would), and a durable queue, deleted after `use`.
 */
async function withQueue(use: (s: { ch: Channel; other: Channel; queue: string }) => Promise<void>): Promise<void> {
  const conn = await open();
  const ch = await conn.openChannel();
  const other = await conn.openChannel();
  await ch.confirmSelect();
  const queue = uniqueName("resubscribe");
  await ch.queueDeclare(queue, { durable: true });
  try {
    await use({ ch, other, queue });
  } finally {
    await other.queueDelete(queue).catch(() => undefined);
  }
}

describe("resubscribe after a broker-sent basic.cancel", () => {
  test("the queue deleted, then declared again by someone else: the consumer comes back and handles every later message once", () =>
    withQueue(async ({ ch, other, queue }) => {
      const handled: number[] = [];
      const cancels: string[] = [];
      ch.on("cancel", (tag) => cancels.push(tag));
      const consumer = await ch.consume(queue, (msg) => void handled.push(Number(msg.properties.messageId)), {
        noAck: true,
        resubscribe: { initialDelay: 20, maxDelay: 100 },
      });
      const first = consumer.consumerTag;
      await publish(ch, queue, range(0, 5));
      await eventually(() => handled.length === 5, "the first five");
      const resubscribed = once(consumer, "resubscribed") as Promise<
        [{ queue: string; from: string; to: string; channel: Channel }]
      >;
      await other.queueDelete(queue);
      await eventually(() => cancels.length === 1, "the broker's cancel");
      await new Promise((r) => setTimeout(r, 150)); // a few attempts find no queue (on a side channel)
      expect(ch.closed).toBe(false);
      await other.queueDeclare(queue, { durable: true });
      const [info] = await resubscribed;
      expect(info).toMatchObject({ queue, from: first });
      expect(info.channel).toBe(ch);
      expect(consumer.consumerTag).toBe(info.to);
      expect(info.to).not.toBe(first);
      await publish(ch, queue, range(5, 15));
      await eventually(() => handled.length === 15, "all fifteen");
      expect(handled).toEqual(range(0, 15));
      await consumer.cancel();
    }));

  test("with declare, it declares the queue again itself", () =>
    withQueue(async ({ ch, other, queue }) => {
      const handled: number[] = [];
      const consumer = await ch.consume(queue, (msg) => void handled.push(Number(msg.properties.messageId)), {
        noAck: true,
        resubscribe: { initialDelay: 10, declare: { durable: true } },
      });
      const resubscribed = once(consumer, "resubscribed");
      await other.queueDelete(queue);
      await resubscribed;
      await publish(ch, queue, range(0, 10));
      await eventually(() => handled.length === 10, "ten");
      expect(handled).toEqual(range(0, 10));
    }));

  test("it gives up after maxAttempts: resubscribeFailed and onCancel hear it, and the channel stays open", () =>
    withQueue(async ({ ch, other, queue }) => {
      const onCancel: AmqpError[] = [];
      const consumer = await ch.consume(queue, () => undefined, {
        noAck: true,
        onCancel: (e) => onCancel.push(e),
        resubscribe: { initialDelay: 5, maxAttempts: 3 },
      });
      const cancelled = once(consumer, "cancelled") as Promise<[AmqpError]>;
      const failed = once(consumer, "resubscribeFailed") as Promise<[AmqpError]>;
      await other.queueDelete(queue);
      expect((await cancelled)[0]).toBeInstanceOf(ConsumerCancelledError);
      const [err] = await failed;
      expect(err.message).toMatch(/gave up resubscribing .* after 3 attempts: queue .* does not exist/);
      expect(onCancel).toEqual([err]);
      expect(ch.closed).toBe(false);
      await ch.queueDeclare("", { exclusive: true }); // and works
    }));

  test("without resubscribe, the broker's cancel ends the consumer (onCancel), as before", () =>
    withQueue(async ({ ch, other, queue }) => {
      let onCancel!: (err: AmqpError) => void;
      const ended = new Promise<AmqpError>((resolve) => (onCancel = resolve));
      const consumer = await ch.consume(queue, () => undefined, { noAck: true, onCancel });
      let resubscribed = false;
      consumer.on("resubscribed", () => (resubscribed = true));
      await new Promise((r) => setTimeout(r, 20));
      await other.queueDelete(queue);
      expect(await ended).toBeInstanceOf(ConsumerCancelledError);
      await other.queueDeclare(queue, { durable: true });
      await new Promise((r) => setTimeout(r, 300));
      expect(resubscribed).toBe(false);
    }));

  test("cancel() while it waits to resubscribe stops it for good", () =>
    withQueue(async ({ ch, other, queue }) => {
      let resubscribed = false;
      const consumer = await ch.consume(queue, () => undefined, { noAck: true, resubscribe: { initialDelay: 100 } });
      consumer.on("resubscribed", () => (resubscribed = true));
      await other.queueDelete(queue);
      await new Promise((r) => setTimeout(r, 20));
      await consumer.cancel();
      await other.queueDeclare(queue, { durable: true });
      await new Promise((r) => setTimeout(r, 400));
      expect(resubscribed).toBe(false);
      expect((await other.queueDeclare(queue, { passive: true })).consumerCount).toBe(0);
    }));

  test("bad options are refused", async () => {
    const ch = await (await open()).openChannel();
    await expect(ch.consume("q", () => undefined, { resubscribe: { maxAttempts: 0 } })).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(ch.consume("q", () => undefined, { resubscribe: { initialDelay: -1 } })).rejects.toBeInstanceOf(
      RangeError,
    );
  });
});

describe("resubscribe after its channel is closed under it", () => {
  test("a 406 on its channel (a declare with other arguments): it consumes again on a new channel, cancelled then resubscribed, and handles every later message once", () =>
    withQueue(async ({ ch, other, queue }) => {
      const consuming = await ch.connection.openChannel();
      const handled: number[] = [];
      const consumer = await consuming.consume(queue, (msg) => void handled.push(Number(msg.properties.messageId)), {
        noAck: true,
        resubscribe: { initialDelay: 10 },
      });
      const cancelled = once(consumer, "cancelled") as Promise<[AmqpError]>;
      const resubscribed = once(consumer, "resubscribed") as Promise<
        [{ queue: string; from: string; to: string; channel: Channel }]
      >;
      await publish(ch, queue, range(0, 5));
      await eventually(() => handled.length === 5, "the first five");
      await expect(consuming.queueDeclare(queue, { durable: false })).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(consuming.closed).toBe(true);
      const [why] = await cancelled;
      expect(why).toBeInstanceOf(PreconditionFailedError);
      const [info] = await resubscribed;
      expect(info.channel).not.toBe(consuming);
      expect(info.channel.closed).toBe(false);
      expect(consumer.channel).toBe(info.channel);
      expect(consumer.consumerTag).toBe(info.to);
      await publish(ch, queue, range(5, 15));
      await eventually(() => handled.length === 15, "all fifteen");
      expect(handled).toEqual(range(0, 15));
      expect((await other.queueDeclare(queue, { passive: true })).consumerCount).toBe(1);
      await consumer.cancel();
      expect((await other.queueDeclare(queue, { passive: true })).consumerCount).toBe(0);
    }));

  test("a 404 on its channel, with acks and a prefetch: the new channel has the same prefetch; every id is handled, only unacked ones twice, and redelivered", () =>
    withQueue(async ({ ch, other, queue }) => {
      const consuming = await ch.connection.openChannel();
      await consuming.prefetch(2);
      const seen: { id: number; redelivered: boolean }[] = [];
      let hold = true;
      const held: Message[] = [];
      const consumer = await consuming.consume(
        queue,
        (msg) => {
          seen.push({ id: Number(msg.properties.messageId), redelivered: msg.fields.redelivered });
          if (hold) held.push(msg);
          else msg.ack();
        },
        { resubscribe: { initialDelay: 10 } },
      );
      await publish(ch, queue, range(0, 6));
      await eventually(() => held.length === 2, "two held (prefetch 2)");
      const resubscribed = once(consumer, "resubscribed") as Promise<[{ channel: Channel }]>;
      await expect(consuming.queueDeclare(uniqueName("missing"), { passive: true })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      const [{ channel }] = await resubscribed;
      // The two held ones came back to the queue; the new channel again gets two at a time.
      await eventually(() => held.length === 4, "two more held on the new channel");
      await new Promise((r) => setTimeout(r, 100));
      expect(held.length).toBe(4);
      expect((await other.queueDeclare(queue, { passive: true })).messageCount).toBe(4);
      hold = false;
      for (const msg of held.slice(2)) expect(msg.ack()).toBeUndefined();
      expect(held[0]!.ack()).toBeInstanceOf(AmqpError); // its channel is gone
      await eventually(() => seen.length === 8, "all six handled, two of them twice");
      await eventually(
        async () => (await other.queueDeclare(queue, { passive: true })).messageCount === 0,
        "the queue empty",
      );
      const ids = seen.map((s) => s.id).sort((a, b) => a - b);
      // Only the two held on the closed channel came twice, the second time redelivered.
      expect(ids).toEqual([0, 0, 1, 1, 2, 3, 4, 5]);
      expect(
        seen
          .filter((s) => s.redelivered)
          .map((s) => s.id)
          .sort(),
      ).toEqual([0, 1]);
      await consumer.cancel();
      await channel.close();
      expect((await other.queueDeclare(queue, { passive: true })).messageCount).toBe(0);
    }));

  test("the connection closing ends it for good: onCancel hears it, nothing resubscribes", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const onCancel: AmqpError[] = [];
    const consumer = await ch.consume(queue, () => undefined, {
      noAck: true,
      onCancel: (e) => onCancel.push(e),
      resubscribe: { initialDelay: 5 },
    });
    let resubscribed = false;
    consumer.on("resubscribed", () => (resubscribed = true));
    await conn.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(resubscribed).toBe(false);
    expect(onCancel).toEqual([]); // closed by this client: not an end it has to hear about
  });
});
