// A handler that closes its own connection after an `await` (a "stop" message): the close must
// resolve without waiting for that handler. Run on Bun and Deno by runtimes.test.ts.
import { connect } from "../../src/index.js";

// A drain that waited for its own caller would wait this long.
const conn = await connect({ url: process.env.AMQP_URL ?? "amqp://localhost", timeout: 60_000 });
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
await ch.confirmSelect();
await ch.publish("", queue, "stop");
const closed = new Promise<void>((resolve) => conn.once("close", () => resolve()));
await ch.consume(queue, async (msg) => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  msg.ack();
  await conn.close();
  console.log(`closed from the handler of "${msg.body}"`);
});
await closed;
