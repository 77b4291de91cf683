/**
 * Where warren/amqplib differs from amqplib on purpose (src/amqplib/README.md): what would end the
 * process or close the channel there is a process warning here, and the program goes on. Held
 * the way users write it: an async consumer that throws, a second ack of a message.
 */
import { expect, test } from "vitest";
import * as warren from "../../src/amqplib/index.js";
import { getBrokerUrl } from "../helpers/broker.js";

function warnings(): { seen: string[]; stop: () => void } {
  const seen: string[] = [];
  const on = (w: Error) => void seen.push(w.message);
  process.on("warning", on);
  return { seen, stop: () => void process.off("warning", on) };
}

const until = async (done: () => boolean) => {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
};

test("an async consumer that rejects, and a second ack: warnings, every message still handled, the channel open", async () => {
  const w = warnings();
  const model = await warren.connect(await getBrokerUrl());
  try {
    const ch = await model.createChannel();
    const { queue } = await ch.assertQueue("", { exclusive: true });
    const handled: string[] = [];
    await ch.consume(queue, async (msg) => {
      if (msg === null) return;
      handled.push(msg.content.toString());
      ch.ack(msg);
      if (msg.content.toString() === "2") {
        ch.ack(msg); // a second ack: amqplib sends it and the broker closes the channel (406)
        throw new Error("the handler failed");
      }
    });
    for (const id of ["1", "2", "3"]) ch.sendToQueue(queue, Buffer.from(id));
    await until(() => handled.length === 3 && w.seen.length >= 2);
    expect(handled).toEqual(["1", "2", "3"]);
    expect(w.seen.some((m) => /ack not sent: .*settled already/.test(m))).toBe(true);
    expect(w.seen.some((m) => /consumer callback of .* failed: Error: the handler failed/.test(m))).toBe(true);
    expect((await ch.checkQueue(queue)).messageCount).toBe(0); // open, and nothing left unacked
  } finally {
    w.stop();
    await model.close();
  }
});
