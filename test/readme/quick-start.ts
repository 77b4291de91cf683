import { connect } from "../../src/index.js";

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
try {
  const ch = await conn.openChannel();

  // A fanout exchange, and a server-named queue that lives as long as this connection.
  await ch.exchangeDeclare("greetings", "fanout");
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.queueBind(queue, "greetings", "");

  // In confirm mode, publish resolves once the broker has taken the message.
  await ch.confirmSelect();
  await ch.publish("greetings", "", "Hello World!", { contentType: "text/plain" });

  // Consume as an async iterator (or pass a callback); leaving the loop cancels it.
  for await (const msg of ch.consume(queue)) {
    console.log(`${msg.fields.exchange}: ${msg.body.toString()} (${msg.properties.contentType})`);
    ch.ack(msg);
    break;
  }
} finally {
  await conn.close();
}
