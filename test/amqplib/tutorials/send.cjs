#!/usr/bin/env node
// Tutorial 1, "Hello World!", the sender, in the callback style of the official JavaScript
// tutorials, with the declarations and output of warren's own send (src/tutorial/send.ts).
// AMQPLIB_MODULE names the library: amqplib/callback_api, or warren/amqplib/callback_api.
const amqp = require(process.env.AMQPLIB_MODULE);

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const queue = "hello";
    const msg = "Hello World!";
    channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } }, (error2) => {
      if (error2) throw error2;
      channel.sendToQueue(queue, Buffer.from(msg));
      console.log(" [x] Sent '%s'", msg);
      setTimeout(() => connection.close(() => process.exit(0)), 100);
    });
  });
});
