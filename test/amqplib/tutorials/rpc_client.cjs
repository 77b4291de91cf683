#!/usr/bin/env node
// Tutorial 6, RPC, the client: one request on rpc_queue, its answer on an exclusive callback queue
// (callback style; warren's rpc_client's declarations and output).
const amqp = require(process.env.AMQPLIB_MODULE);
const { randomUUID } = require("node:crypto");

const n = process.argv[2] ?? "30";
amqp.connect(process.env.AMQP_URL, (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    channel.assertQueue("", { exclusive: true }, (error2, q) => {
      if (error2) throw error2;
      const correlationId = randomUUID();
      channel.consume(
        q.queue,
        (msg) => {
          if (msg.properties.correlationId !== correlationId) return;
          console.log(" [.] Got %s", msg.content.toString());
          setTimeout(() => connection.close(() => process.exit(0)), 50);
        },
        { noAck: true },
        (error3) => {
          if (error3) throw error3;
          console.log(" [x] Requesting fib(%s)", n);
          channel.sendToQueue("rpc_queue", Buffer.from(n), { correlationId, replyTo: q.queue });
        },
      );
    });
  });
});
