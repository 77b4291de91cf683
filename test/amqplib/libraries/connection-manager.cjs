// amqp-connection-manager as its README has it: a channel wrapper with a setup, JSON publishes
// with confirms (queued while the connection is down, sent again after it comes back), and a
// consumer on a wrapper of its own. Publishes ids 1..N one awaited publish at a time; prints
// "half" midway (the test closes the connection from the broker's side then), and at the end
// what the consumer counted.
const amqp = require("amqp-connection-manager");

const [url, queue, connectionName, total] = [
  process.env.AMQP_URL,
  process.env.QUEUE,
  process.env.CONNECTION_NAME,
  Number(process.env.TOTAL),
];

async function main() {
  const connection = amqp.connect([url], {
    connectionOptions: { clientProperties: { connection_name: connectionName } },
  });
  let disconnected = false;
  connection.on("disconnect", ({ err }) => {
    disconnected = true;
    console.log(`disconnect ${err ? err.message.split(":")[0] : ""}`);
  });
  const publisher = connection.createChannel({ json: true, setup: (ch) => ch.assertQueue(queue, { durable: true }) });
  const seen = new Map();
  let allSeen;
  const done = new Promise((resolve) => (allSeen = resolve));
  const consumer = connection.createChannel({
    setup: (ch) =>
      Promise.all([
        ch.assertQueue(queue, { durable: true }),
        ch.prefetch(50),
        ch.consume(queue, (msg) => {
          const { id } = JSON.parse(msg.content.toString());
          seen.set(id, (seen.get(id) ?? 0) + 1);
          ch.ack(msg);
          if (seen.size === total) allSeen();
        }),
      ]),
  });
  await Promise.all([publisher.waitForConnect(), consumer.waitForConnect()]);
  let confirmed = 0;
  let retried = 0;
  for (let id = 1; id <= total; id++) {
    // A publish in flight when the connection goes rejects ("channel closed"): sent again, as
    // its README has users do; the queue may then hold it twice, never not at all.
    for (;;) {
      try {
        await publisher.sendToQueue(queue, { id }, { persistent: true });
        break;
      } catch {
        retried++;
      }
    }
    confirmed++;
    if (id === total / 2) console.log("half");
    // From the half on, slowly until the test has closed the connection (publishing the while).
    if (id >= total / 2 && !disconnected) await new Promise((r) => setTimeout(r, 5));
  }
  await done;
  const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
  const missing = [];
  for (let id = 1; id <= total; id++) if (!seen.has(id)) missing.push(id);
  // At least once: a publish retried may be there twice, and so may a delivery whose ack the
  // close overtook (at most the prefetch window of them), redelivered on the new connection.
  const ok = duplicates <= retried + 50;
  console.log(`confirmed ${confirmed} received ${seen.size} missing ${missing.length} duplicates bounded ${ok}`);
  await connection.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
