/**
 * Consumers that heal (the `resubscribe` consume option): after a broker-sent basic.cancel the
 * consumer consumes again with backoff, on the same channel, and says so ("resubscribed"), or
 * gives up and says that ("resubscribeFailed", onCancel). Deliveries are counted by message id:
 * every message published to the queue once it is back is handled exactly once.
 */
import { once } from "node:events";
import { describe, expect, test } from "vitest";
import { ConsumerCancelledError, type AmqpError, type Channel } from "../../src/index.js";
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
      const consumer = await ch.consume(queue, (msg) => void handled.push(Number(msg.properties.messageId)), { noAck: true, resubscribe: { initialDelay: 20, maxDelay: 100 } });
      const first = consumer.consumerTag;
      await publish(ch, queue, range(0, 5));
      await eventually(() => handled.length === 5, "the first five");
      const resubscribed = once(ch, "resubscribed") as Promise<[{ queue: string; from: string; to: string }]>;
      await other.queueDelete(queue);
      await eventually(() => cancels.length === 1, "the broker's cancel");
      await new Promise((r) => setTimeout(r, 150)); // a few attempts find no queue (on a side channel)
      expect(ch.closed).toBe(false);
      await other.queueDeclare(queue, { durable: true });
      const [info] = await resubscribed;
      expect(info).toMatchObject({ queue, from: first });
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
      await ch.consume(queue, (msg) => void handled.push(Number(msg.properties.messageId)), { noAck: true, resubscribe: { initialDelay: 10, declare: { durable: true } } });
      const resubscribed = once(ch, "resubscribed");
      await other.queueDelete(queue);
      await resubscribed;
      await publish(ch, queue, range(0, 10));
      await eventually(() => handled.length === 10, "ten");
      expect(handled).toEqual(range(0, 10));
    }));

  test("it gives up after maxAttempts: resubscribeFailed and onCancel hear it, and the channel stays open", () =>
    withQueue(async ({ ch, other, queue }) => {
      const onCancel: AmqpError[] = [];
      const failed = once(ch, "resubscribeFailed") as Promise<[AmqpError, string]>;
      await ch.consume(queue, () => undefined, { noAck: true, onCancel: (e) => onCancel.push(e), resubscribe: { initialDelay: 5, maxAttempts: 3 } });
      await other.queueDelete(queue);
      const [err, q] = await failed;
      expect(q).toBe(queue);
      expect(err.message).toMatch(/gave up resubscribing .* after 3 attempts: queue .* does not exist/);
      expect(onCancel).toEqual([err]);
      expect(ch.closed).toBe(false);
      await ch.queueDeclare("", { exclusive: true }); // and works
    }));

  test("without resubscribe, the broker's cancel ends the consumer (onCancel), as before", () =>
    withQueue(async ({ ch, other, queue }) => {
      const ended = new Promise<AmqpError>((resolve) => void ch.consume(queue, () => undefined, { noAck: true, onCancel: resolve }));
      let resubscribed = false;
      ch.on("resubscribed", () => (resubscribed = true));
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
      ch.on("resubscribed", () => (resubscribed = true));
      const consumer = await ch.consume(queue, () => undefined, { noAck: true, resubscribe: { initialDelay: 100 } });
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
    await expect(ch.consume("q", () => undefined, { resubscribe: { maxAttempts: 0 } })).rejects.toBeInstanceOf(RangeError);
    await expect(ch.consume("q", () => undefined, { resubscribe: { initialDelay: -1 } })).rejects.toBeInstanceOf(RangeError);
  });
});
