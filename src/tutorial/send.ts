#!/usr/bin/env node
/**
 * Tutorial 1, "Hello World!": the producer. It declares the queue `hello`, a durable quorum
 * queue as in the official tutorial (declaring is
 * idempotent, and a message sent to a queue that does not exist is dropped) and sends one
 * message to it through the default exchange, whose routing key is a queue's name.
 *
 *   send
 */
import { main } from "./run.js";

main(async ({ ch, print }) => {
  await ch.queueDeclare("hello", { durable: true, arguments: { "x-queue-type": "quorum" } });

  await ch.publish("", "hello", "Hello World!");
  print(" [x] Sent 'Hello World!'");
});
