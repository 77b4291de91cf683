#!/usr/bin/env node
/**
 * Tutorial 4, Routing: the subscriber. It binds its own exclusive queue to `direct_logs`
 * once for each severity it is given, so it receives only logs of those severities.
 *
 *   receive_logs_direct [info] [warning] [error]
 *   e.g. receive_logs_direct warning error > logs_from_rabbit.log
 */
import { main } from "./run.js";

main(
  async ({ ch, args, print, untilStopped }) => {
    await ch.exchangeDeclare("direct_logs", "direct");

    const { queue } = await ch.queueDeclare("", { exclusive: true });
    for (const severity of args) {
      await ch.queueBind(queue, "direct_logs", severity);
    }

    print(" [*] Waiting for logs. To exit press CTRL+C");
    await ch.consume(queue, (msg) => print(` [x] ${msg.fields.routingKey}:${msg.body.toString()}`), {
      noAck: true,
    });
    await untilStopped();
  },
  { usage: "[info] [warning] [error]", minArgs: 1, onInterrupt: "Interrupted" },
);
