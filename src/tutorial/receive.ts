#!/usr/bin/env node
/**
 * Tutorial 1, "Hello World!": the consumer. It declares `hello` too, since it may start
 * before the producer, and prints every message the broker pushes to it.
 *
 *   receive
 */
import { main } from "./run.js";

main(
  async ({ ch, print, untilStopped }) => {
    await ch.queueDeclare("hello", { durable: true, arguments: { "x-queue-type": "quorum" } });

    print(" [*] Waiting for messages. To exit press CTRL+C");
    await ch.consume("hello", (msg) => print(` [x] Received ${msg.body.toString()}`), { noAck: true });
    await untilStopped();
  },
  { onInterrupt: "Interrupted" },
);
