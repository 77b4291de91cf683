/**
 * warren/amqplib against amqplib under a memory alarm (connection.blocked / unblocked): the same
 * program with each, the model's "blocked" (with RabbitMQ's reason) and "unblocked" events, and
 * every message published across the alarm counted by id in the queue. Serial project: the alarm
 * blocks every publisher on the broker; it is kept short and always cleared in `finally`.
 */
import * as amqplib from "amqplib";
import { expect, test } from "vitest";
import * as warren from "../../src/amqplib/index.js";
import { eventually } from "../client/util.js";
import { getBrokerUrl, rabbitmqctl } from "../helpers/broker.js";

type Lib = Pick<typeof amqplib, "connect">;

async function run(lib: Lib, url: string): Promise<unknown[]> {
  const log: unknown[] = [];
  const model = await lib.connect(url);
  model.on("blocked", (reason: string) => log.push(["blocked", /memory/.test(reason)]));
  model.on("unblocked", () => log.push(["unblocked"]));
  const ch = await model.createConfirmChannel();
  const { queue } = await ch.assertQueue("", { exclusive: true });
  const ids = new Set<number>();
  let next = 0;
  const publish = () => {
    const id = ++next;
    ch.sendToQueue(queue, Buffer.from(String(id)), { messageId: String(id) }, (err: unknown) => {
      if (err === null) ids.add(id);
    });
  };
  try {
    await rabbitmqctl(["set_vm_memory_high_watermark", "0.0000001"]);
    await eventually(
      async () => {
        if (log.some((l) => (l as unknown[])[0] === "blocked")) return true;
        publish(); // RabbitMQ says "blocked" when the connection next publishes during the alarm
        await new Promise((r) => setTimeout(r, 100));
        return log.some((l) => (l as unknown[])[0] === "blocked");
      },
      "blocked",
      100,
      0,
    );
  } finally {
    await rabbitmqctl(["set_vm_memory_high_watermark", "0.4"]);
  }
  await eventually(() => log.some((l) => (l as unknown[])[0] === "unblocked"), "unblocked", 100, 50);
  for (let i = 0; i < 10; i++) publish();
  await ch.waitForConfirms();
  const inQueue = (await ch.checkQueue(queue)).messageCount;
  log.push(["every publish confirmed and in the queue", ids.size === next && inQueue === next]);
  await model.close();
  return log;
}

test("a memory alarm: 'blocked' with the reason, 'unblocked', and nothing lost, with warren/amqplib as with amqplib", async () => {
  const url = await getBrokerUrl();
  const expected = await run(amqplib, url);
  expect(expected).toEqual([["blocked", true], ["unblocked"], ["every publish confirmed and in the queue", true]]);
  expect(await run(warren as unknown as Lib, url)).toEqual(expected);
}, 60_000);
