import { PublishRefusedError, connect } from "../../src/index.js";

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });

// Confirm mode on a channel of its own; a publish that closes it (here a missing exchange, 404)
// is refused, and the next ones go out on a fresh channel, in order.
const publisher = await conn.createPublisher({ republish: true });
const messages = [
  { exchange: "", routingKey: queue, body: "first" },
  { exchange: "no-such-exchange", routingKey: "orders", body: "lost?" },
  { exchange: "", routingKey: queue, body: "second" },
];
for (const { exchange, routingKey, body } of messages) {
  try {
    await publisher.publish(exchange, routingKey, body);
    console.log(`confirmed: ${body}`);
  } catch (e) {
    if (!(e instanceof PublishRefusedError)) throw e;
    console.log(`refused: exchange "${e.exchange}", key "${e.routingKey}", ${e.replyCode}`);
  }
}
console.log(`in the queue: ${(await ch.queueDeclare(queue, { passive: true })).messageCount}`);
await publisher.close();
await conn.close();
