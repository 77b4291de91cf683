#!/usr/bin/env node
/**
 * Tutorial 5, Topics: the subscriber. It binds its exclusive queue to `topic_logs` with
 * each binding key it is given. In a binding key `*` stands for exactly one word and `#`
 * for zero or more words: "#" receives everything, "kern.*" all of the kernel's logs,
 * "*.critical" every critical log.
 *
 *   receive_logs_topic <binding_key>...
 */
import { main } from "./run.js";

main(
  async ({ ch, args, print, untilStopped }) => {
    await ch.exchangeDeclare("topic_logs", "topic");

    const { queue } = await ch.queueDeclare("", { exclusive: true });
    for (const bindingKey of args) {
      await ch.queueBind(queue, "topic_logs", bindingKey);
    }

    print(" [*] Waiting for logs. To exit press CTRL+C");
    await ch.consume(queue, (msg) => print(` [x] ${msg.fields.routingKey}:${msg.body.toString()}`), {
      noAck: true,
    });
    await untilStopped();
  },
  { usage: "[binding_key]...", minArgs: 1, onInterrupt: "Interrupted" },
);
