/**
 * A queue deleted under its consumer, from another connection: RabbitMQ sends basic.cancel
 * (consumer_cancel_notify capability). The consumer must hear of it (callback: onCancel and the
 * channel's "cancel" event; iterator: the loop ends with ConsumerCancelledError), and the
 * channel must stay usable.
 */
import { once } from "node:events";
import { expect, test } from "vitest";
import { ConsumerCancelledError, type AmqpError, type Message } from "../../src/index.js";
import { eventually, useConnections } from "../client/util.js";
import { uniqueName } from "../helpers/broker.js";

const open = useConnections();

test("callback consumer: onCancel gets a ConsumerCancelledError, the channel emits cancel, and the channel stays usable", async () => {
  const ch = await (await open()).openChannel();
  const other = await (await open()).openChannel();
  const q = uniqueName("deleted-cb");
  await ch.queueDeclare(q);
  const got: Message[] = [];
  let cancelled: AmqpError | undefined;
  const consumer = await ch.consume(q, (m) => void got.push(m), { noAck: true, onCancel: (e) => (cancelled = e) });
  await ch.publish("", q, "before");
  await eventually(() => got.length === 1, "the first delivery");

  const cancelEvent = once(ch, "cancel") as Promise<[string]>;
  await other.queueDelete(q);
  const [tag] = await cancelEvent;
  expect(tag).toBe(consumer.consumerTag);
  expect(cancelled).toBeInstanceOf(ConsumerCancelledError);
  expect((cancelled as ConsumerCancelledError).consumerTag).toBe(consumer.consumerTag);

  // Still usable: declare, publish, get on the same channel; cancelling the dead consumer is a no-op.
  expect(ch.closed).toBe(false);
  await consumer.cancel();
  const q2 = uniqueName("deleted-cb-after");
  await ch.queueDeclare(q2, { autoDelete: false });
  await ch.publish("", q2, "after");
  const msg = await eventually(
    () => ch.get(q2, { noAck: true }).then((m) => m ?? undefined),
    "the message on the new queue",
  );
  expect(msg.body.toString()).toBe("after");
  await ch.queueDelete(q2);
  expect(got).toHaveLength(1);
});

test("iterator consumer: the loop gets what was delivered, then ends with ConsumerCancelledError; the channel stays usable", async () => {
  const ch = await (await open()).openChannel();
  const other = await (await open()).openChannel();
  const q = uniqueName("deleted-it");
  await ch.queueDeclare(q);
  await ch.prefetch(10);
  const stream = ch.consume(q);
  const tag = await stream.consumerTag;
  await ch.publish("", q, "one");
  await ch.publish("", q, "two");

  const seen: string[] = [];
  const loop = (async () => {
    for await (const m of stream) {
      seen.push(m.body.toString());
      ch.ack(m);
      if (seen.length === 2) await other.queueDelete(q);
    }
  })();
  const err = await loop.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(seen).toEqual(["one", "two"]);
  expect(err).toBeInstanceOf(ConsumerCancelledError);
  expect((err as ConsumerCancelledError).consumerTag).toBe(tag);

  expect(ch.closed).toBe(false);
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.publish("", queue, "after");
  const msg = await eventually(() => ch.get(queue, { noAck: true }).then((m) => m ?? undefined), "the message");
  expect(msg.body.toString()).toBe("after");
});
