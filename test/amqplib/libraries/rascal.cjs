// rascal as its README has it: the topology from configuration (an exchange, a queue, a
// binding), a publication and a subscription by name; ids 1..N published, each received
// message acked, and what the subscription counted printed at the end.
const rascal = require("rascal");

const [url, name, total] = [process.env.AMQP_URL, process.env.QUEUE, Number(process.env.TOTAL)];

async function main() {
  const config = rascal.withDefaultConfig({
    vhosts: {
      v: {
        namespace: false,
        connection: { url },
        exchanges: { [`${name}-x`]: { type: "direct" } },
        queues: { [name]: { options: { durable: true } } },
        bindings: { b: { source: `${name}-x`, destination: name, bindingKey: "k" } },
        publications: { out: { exchange: `${name}-x`, routingKey: "k" } },
        subscriptions: { in: { queue: name, prefetch: 20 } },
      },
    },
  });
  const broker = await rascal.BrokerAsPromised.create(config);
  broker.on("error", (e) => console.error("broker error", e.message));
  const seen = new Map();
  let allSeen;
  const done = new Promise((resolve) => (allSeen = resolve));
  const subscription = await broker.subscribe("in");
  subscription
    .on("message", (_message, content, ackOrNack) => {
      seen.set(content.id, (seen.get(content.id) ?? 0) + 1);
      ackOrNack();
      if (seen.size === total) allSeen();
    })
    .on("error", (e) => console.error("subscription error", e.message));
  for (let id = 1; id <= total; id++) {
    const publication = await broker.publish("out", { id });
    publication.on("error", (e) => console.error("publication error", e.message));
  }
  await done;
  const missing = [];
  for (let id = 1; id <= total; id++) if (!seen.has(id)) missing.push(id);
  console.log(
    `received ${seen.size} missing ${missing.length} duplicates ${[...seen.values()].reduce((n, c) => n + c - 1, 0)}`,
  );
  await broker.nuke();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
