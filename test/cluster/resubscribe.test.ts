/**
 * A consumer that heals across a node's death: a classic durable queue lives on one node; when
 * that node dies, RabbitMQ cancels the consumers that reach it through other nodes. With
 * `resubscribe`, the consumer (on c1) keeps probing until the queue's node is back, consumes
 * again, and handles every message published afterwards exactly once. The node is restarted
 * in a `finally`.
 */
import { once } from "node:events";
import { expect, test } from "vitest";
import type { Message } from "../../src/index.js";
import { eventually } from "../client/util.js";
import { uniqueName } from "../helpers/broker.js";
import { failOnUnhandledRejection } from "../helpers/leaks.js";
import { kill, restoreCluster, useCluster } from "./cluster.js";

failOnUnhandledRejection();
const { on, cleanup } = useCluster();

test("the classic queue's node dies and comes back: the consumer on another node is cancelled, resubscribes, and loses nothing published after", async () => {
  const q = uniqueName("cluster-classic");
  // Declared through c2, a classic queue lives on c2.
  await (await (await on("c2")).openChannel()).queueDeclare(q, { durable: true, queueType: "classic" });
  cleanup(async () => {
    await restoreCluster();
    await (await (await on("c1")).openChannel()).queueDelete(q);
  });
  const ch = await (await on("c1")).openChannel();
  await ch.confirmSelect();
  const handled: string[] = [];
  const cancels: string[] = [];
  ch.on("cancel", (tag) => cancels.push(tag));
  const consumer = await ch.consume(q, (m: Message) => void handled.push(m.properties.messageId!), {
    noAck: true,
    resubscribe: { initialDelay: 50, maxDelay: 500 },
  });
  const resubscribed = once(consumer, "resubscribed");
  const publish = (from: number, to: number) =>
    Promise.all(
      Array.from({ length: to - from }, (_, i) =>
        ch.publish("", q, "x", { messageId: `m${from + i}`, deliveryMode: 2 }),
      ),
    );
  await publish(0, 10);
  await eventually(() => handled.length === 10, "the first ten");
  try {
    await kill("c2");
    await eventually(() => cancels.length === 1, "the broker's cancel", 600, 50);
    expect(ch.closed).toBe(false);
  } finally {
    await restoreCluster();
  }
  await resubscribed;
  await publish(10, 30);
  await eventually(() => handled.length === 30, "all thirty", 600, 50);
  expect(handled).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
  expect(ch.closed).toBe(false);
});
