// Tutorials 4 (Routing: direct_logs) and 5 (Topics: topic_logs) share everything but the exchange:
// the producer and the consumer, in the callback style of the official JavaScript tutorials, with
// the declarations and output of warren's own programs (src/tutorial/*_direct.ts, *_topic.ts).
const amqp = require(process.env.AMQPLIB_MODULE);

/** Publish one message; the first argument is the routing key only when a message follows it. */
exports.emit = (exchange, type, defaultKey) => {
  const args = process.argv.slice(2);
  const key = args.length > 1 ? args[0] : defaultKey;
  const msg = args.slice(1).join(" ") || "Hello World!";
  amqp.connect(process.env.AMQP_URL, (error0, connection) => {
    if (error0) throw error0;
    connection.createChannel((error1, channel) => {
      if (error1) throw error1;
      channel.assertExchange(exchange, type, { durable: false }, (error2) => {
        if (error2) throw error2;
        channel.publish(exchange, key, Buffer.from(msg));
        console.log(" [x] Sent %s:%s", key, msg);
        setTimeout(() => connection.close(() => process.exit(0)), 100);
      });
    });
  });
};

/** Bind a temporary queue with each argument as a key, and print what comes. */
exports.receive = (exchange, type, usage) => {
  const keys = process.argv.slice(2);
  if (keys.length === 0) {
    console.error(`Usage: ${usage}`);
    process.exit(1);
  }
  amqp.connect(process.env.AMQP_URL, (error0, connection) => {
    if (error0) throw error0;
    connection.createChannel((error1, channel) => {
      if (error1) throw error1;
      channel.assertExchange(exchange, type, { durable: false }, (error2) => {
        if (error2) throw error2;
        channel.assertQueue("", { exclusive: true }, (error3, q) => {
          if (error3) throw error3;
          let bound = 0;
          for (const key of keys)
            channel.bindQueue(q.queue, exchange, key, {}, (error4) => {
              if (error4) throw error4;
              if (++bound < keys.length) return;
              console.log(" [*] Waiting for logs. To exit press CTRL+C");
              channel.consume(
                q.queue,
                (msg) => console.log(" [x] %s:%s", msg.fields.routingKey, msg.content.toString()),
                { noAck: true },
              );
            });
        });
      });
    });
    process.once("SIGINT", () => {
      console.log("Interrupted");
      connection.close(() => process.exit(0));
    });
  });
};
