#!/usr/bin/env node
// Tutorial 6, RPC, the server: fib(n) for each request, the reply to its reply_to with its
// correlation id, then the ack (callback style; warren's rpc_server's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);

function fib(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const queue = "rpc_queue";
    channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } }, (error2) => {
      if (error2) throw error2;
      channel.prefetch(1);
      console.log(" [x] Awaiting RPC requests");
      channel.consume(queue, (msg) => {
        const n = parseInt(msg.content.toString(), 10);
        console.log(" [.] fib(%d)", n);
        channel.sendToQueue(msg.properties.replyTo, Buffer.from(fib(n).toString()), {
          correlationId: msg.properties.correlationId,
        });
        channel.ack(msg);
      });
    });
  });
  process.once("SIGTERM", () => connection.close(() => process.exit(0)));
});
