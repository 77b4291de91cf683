#!/usr/bin/env node
// Tutorial 2, Work queues, the worker: prefetch 1, a second per dot, an ack once done (callback
// style; warren's worker's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const queue = "task_queue";
    channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } }, (error2) => {
      if (error2) throw error2;
      channel.prefetch(1);
      console.log(" [*] Waiting for messages. To exit press CTRL+C");
      channel.consume(
        queue,
        (msg) => {
          const body = msg.content.toString();
          console.log(" [x] Received %s", body);
          setTimeout(
            () => {
              console.log(" [x] Done");
              channel.ack(msg);
            },
            1000 * (body.split(".").length - 1),
          );
        },
        { noAck: false },
      );
    });
  });
  process.once("SIGTERM", () => connection.close(() => process.exit(0)));
});
