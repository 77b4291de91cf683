#!/usr/bin/env node
// Tutorial 2, Work queues, the producer (callback style; warren's new_task's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const queue = "task_queue";
    const msg = process.argv.slice(2).join(" ") || "Hello World!";
    channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } }, (error2) => {
      if (error2) throw error2;
      channel.sendToQueue(queue, Buffer.from(msg), { persistent: true });
      console.log(" [x] Sent %s", msg);
      setTimeout(() => connection.close(() => process.exit(0)), 100);
    });
  });
});
