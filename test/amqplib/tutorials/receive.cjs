#!/usr/bin/env node
// Tutorial 1, "Hello World!", the receiver (callback style; warren's receive's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const queue = "hello";
    channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } }, (error2) => {
      if (error2) throw error2;
      console.log(" [*] Waiting for messages. To exit press CTRL+C");
      channel.consume(queue, (msg) => console.log(" [x] Received %s", msg.content.toString()), { noAck: true });
    });
  });
  process.once("SIGINT", () => {
    console.log("Interrupted");
    connection.close(() => process.exit(0));
  });
});
