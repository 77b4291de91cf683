#!/usr/bin/env node
// Tutorial 3, Publish/Subscribe, the consumer (callback style; warren's receive_logs's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const exchange = "logs";
    channel.assertExchange(exchange, "fanout", { durable: false }, (error2) => {
      if (error2) throw error2;
      channel.assertQueue("", { exclusive: true }, (error3, q) => {
        if (error3) throw error3;
        channel.bindQueue(q.queue, exchange, "", {}, (error4) => {
          if (error4) throw error4;
          console.log(" [*] Waiting for logs. To exit press CTRL+C");
          channel.consume(q.queue, (msg) => console.log(" [x] %s", msg.content.toString()), { noAck: true });
        });
      });
    });
  });
  process.once("SIGINT", () => {
    console.log("Interrupted");
    connection.close(() => process.exit(0));
  });
});
