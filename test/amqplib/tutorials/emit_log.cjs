#!/usr/bin/env node
// Tutorial 3, Publish/Subscribe, the producer (callback style; warren's emit_log's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const exchange = "logs";
    const msg = process.argv.slice(2).join(" ") || "info: Hello World!";
    channel.assertExchange(exchange, "fanout", { durable: false }, (error2) => {
      if (error2) throw error2;
      channel.publish(exchange, "", Buffer.from(msg));
      console.log(" [x] Sent %s", msg);
      setTimeout(() => connection.close(() => process.exit(0)), 100);
    });
  });
});
