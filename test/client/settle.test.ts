/**
 * A delivery settles itself (msg.ack(), msg.nack(), msg.reject()) on the channel it came from,
 * and warren refuses, with an AmqpError it returns, what the broker would punish by closing the
 * channel with 406 PRECONDITION_FAILED: a second settle of the same delivery, a settle covered
 * by an earlier multiple ack, one of a noAck delivery, one on another channel.
 */
import { describe, expect, test } from "vitest";
import { AmqpError, type Channel, type Message } from "../../src/index.js";
import { eventually, queueCounts, useConnections } from "./util.js";

const open = useConnections();

async function deliveries(ch: Channel, n: number, noAck = false): Promise<{ queue: string; msgs: Message[] }> {
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  await Promise.all(Array.from({ length: n }, (_, i) => ch.publish("", queue, String(i), { messageId: String(i) })));
  const msgs: Message[] = [];
  await ch.consume(queue, (m) => void msgs.push(m), { noAck });
  await eventually(() => msgs.length === n, `${n} deliveries`);
  return { queue, msgs };
}

/** The channel is still open on the broker: a round trip on it succeeds. */
async function stillOpen(ch: Channel, queue: string): Promise<void> {
  await queueCounts(ch, queue);
  expect(ch.closed).toBe(false);
}

describe("a delivery settles itself", () => {
  test("msg.ack(), msg.reject({ requeue: false }), msg.nack(): the broker ends up holding exactly the nacked one", async () => {
    const ch = await (await open()).openChannel();
    const { queue, msgs } = await deliveries(ch, 3);
    expect(msgs[0]!.ack()).toBeUndefined();
    expect(msgs[1]!.reject({ requeue: false })).toBeUndefined();
    expect(msgs[2]!.nack()).toBeUndefined(); // requeued: comes straight back to the consumer
    await eventually(() => msgs.length === 4, "the nacked one redelivered");
    expect(msgs[3]!.properties.messageId).toBe("2");
    expect(msgs[3]!.fields.redelivered).toBe(true);
    await stillOpen(ch, queue);
  });
});

describe("what would close the channel with 406 is refused instead", () => {
  test("a second ack of the same delivery", async () => {
    const ch = await (await open()).openChannel();
    const { queue, msgs } = await deliveries(ch, 2);
    expect(msgs[1]!.ack()).toBeUndefined(); // out of order: not covered by acked-through
    const again = msgs[1]!.ack();
    expect(again).toBeInstanceOf(AmqpError);
    expect(again?.message).toMatch(/settled already/);
    expect(ch.reject(msgs[1]!)).toBeInstanceOf(AmqpError);
    await stillOpen(ch, queue);
    expect(msgs[0]!.ack()).toBeUndefined(); // the other is still ours to ack
    await stillOpen(ch, queue);
  });

  test("a settle covered by an earlier multiple ack, by message or by tag", async () => {
    const ch = await (await open()).openChannel();
    const { queue, msgs } = await deliveries(ch, 3);
    expect(ch.ack(msgs[2]!, { multiple: true })).toBeUndefined();
    expect(msgs[0]!.ack()).toBeInstanceOf(AmqpError);
    expect(ch.nack(msgs[1]!.fields.deliveryTag)).toBeInstanceOf(AmqpError);
    await stillOpen(ch, queue);
  });

  test("an ack of a noAck delivery", async () => {
    const ch = await (await open()).openChannel();
    const { queue, msgs } = await deliveries(ch, 1, true);
    expect(msgs[0]!.ack()).toBeInstanceOf(AmqpError);
    await stillOpen(ch, queue);
  });

  test("an ack on another channel of the same connection", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const { queue, msgs } = await deliveries(ch, 1);
    const err = other.ack(msgs[0]!);
    expect(err?.message).toMatch(/another channel/);
    await stillOpen(other, queue);
    expect(msgs[0]!.ack()).toBeUndefined(); // on its own channel it is fine
    await stillOpen(ch, queue);
  });

  test('settle "auto" after the handler acked by itself: one ack, no 406', async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.publish("", queue, "x");
    let handled = 0;
    await ch.consume(queue, (m) => void (handled++, m.ack()), { settle: "auto" });
    await eventually(() => handled === 1, "handled");
    await stillOpen(ch, queue);
    await ch.close(); // nothing unacked: nothing requeued
    expect((await queueCounts(await ch.connection.openChannel(), queue)).messageCount).toBe(0);
  });
});

describe("ackAll and nackAll: every delivery outstanding, however some were settled ahead", () => {
  test("ackAll after an out-of-order ack: nothing left unacked, the channel stays open, each counted once", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue, msgs } = await deliveries(ch, 5);
    expect(msgs[3]!.ack()).toBeUndefined(); // settled ahead of the others
    expect(ch.ackAll()).toBeUndefined();
    expect(ch.ackAll()).toBeUndefined(); // nothing outstanding: an ack of none, harmless
    await stillOpen(ch, queue);
    expect(ch.stats().deliveries.acked).toBe(5);
    // Had one been left unacked, closing the channel would put it back in the queue.
    await ch.close();
    expect((await queueCounts(await conn.openChannel(), queue)).messageCount).toBe(0);
  });

  test("nackAll requeues every outstanding delivery: all come back, redelivered", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue, msgs } = await deliveries(ch, 4);
    expect(ch.nackAll()).toBeUndefined();
    await eventually(() => msgs.length === 8, "the 4 redelivered");
    expect(msgs.slice(4).map((m) => [m.properties.messageId, m.fields.redelivered])).toEqual([
      ["0", true],
      ["1", true],
      ["2", true],
      ["3", true],
    ]);
    expect(ch.stats().deliveries.nacked).toBe(4);
    expect(ch.ackAll()).toBeUndefined();
    expect(ch.stats().deliveries.acked).toBe(4);
    await stillOpen(ch, queue);
    expect((await queueCounts(ch, queue)).messageCount).toBe(0);
  });
});
