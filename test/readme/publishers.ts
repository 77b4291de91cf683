import { connect, NackError, PublishBatchError, ReturnedError } from "../../src/index.js";

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });

// Confirm mode, with at most 100 publishes awaiting their confirm: the 101st waits for room.
await ch.confirmSelect({ maxUnconfirmed: 100 });
const sent: Promise<void>[] = [];
for (let i = 0; i < 1000; i++) sent.push(ch.publish("", queue, `message ${i}`, { messageId: String(i) }));
await Promise.all(sent); // each resolved on the broker's ack (a NackError on its nack)
const { messageCount } = await ch.queueDeclare(queue, { passive: true });
console.log(`${messageCount} confirmed and queued`);

// Many at once, one promise for all: nothing is made per message to wait on. It settles once
// every message has; a failure names each message that failed by its index.
const batch = Array.from({ length: 1000 }, (_, i) => ({ exchange: "", routingKey: queue, body: `batch ${i}` }));
try {
  await ch.publishBatch(batch);
} catch (err) {
  if (!(err instanceof PublishBatchError)) throw err;
  for (const { index, error } of err.failures) console.log(`#${index}: ${String(error)}`); // to publish again
}
console.log(`${(await ch.queueDeclare(queue, { passive: true })).messageCount} confirmed and queued`);

// A pipeline, one by one: each publish's outcome comes to a callback, not to a promise that
// waits for its confirm (a small record waits per message); awaiting publish() paces the loop
// by the socket, and never throws with onConfirm: a refusal comes to the callback too.
let acked = 0;
const onConfirm = (err: Error | undefined) => {
  if (err === undefined) acked++;
  else console.log(`not confirmed: ${err.message}`); // to publish again
};
for (let i = 0; i < 1000; i++) await ch.publish("", queue, `piped ${i}`, { onConfirm });
await ch.waitForConfirms();
console.log(`${acked} acked through onConfirm`);

// A mandatory publish that no queue takes comes back: its promise rejects.
try {
  await ch.publish("", "no such queue", "hello?", { mandatory: true });
} catch (err) {
  if (err instanceof ReturnedError) console.log(`returned: ${err.replyCode} ${err.replyText}`);
  else if (err instanceof NackError) console.log("nacked");
  else throw err;
}
await conn.close();
