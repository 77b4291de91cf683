#!/usr/bin/env node
/**
 * Tutorial 3, Publish/Subscribe: the subscriber. Each copy gets a fresh, empty queue
 * named by the server (amq.gen-...), exclusive to its connection so that the broker
 * deletes it when the program exits, and binds it to the fanout exchange `logs`: every
 * running receiver then gets every log published from then on.
 *
 *   receive_logs                         print the logs
 *   receive_logs > logs_from_rabbit.log  save them, line by line as they arrive
 */
import { main } from "./run.js";

main(
  async ({ ch, print, untilStopped }) => {
    await ch.exchangeDeclare("logs", "fanout");

    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, "logs", "");

    print(" [*] Waiting for logs. To exit press CTRL+C");
    await ch.consume(queue, (msg) => print(` [x] ${msg.body.toString()}`), { noAck: true });
    await untilStopped();
  },
  { onInterrupt: "Interrupted" },
);
