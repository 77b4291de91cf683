#!/usr/bin/env node
/**
 * Tutorial 3, Publish/Subscribe: the producer. It publishes one log message to the fanout
 * exchange `logs`, which copies it to every queue bound to it. Publishing to an exchange
 * that does not exist is forbidden, so it declares the exchange first; with no receiver
 * bound yet the message is dropped, and for logs that is fine.
 *
 *   emit_log [message...]      (default "info: Hello World!")
 */
import { main } from "./run.js";

main(async ({ ch, args, print }) => {
  await ch.exchangeDeclare("logs", "fanout");

  const message = args.join(" ") || "info: Hello World!";
  // A fanout exchange ignores the routing key.
  await ch.publish("logs", "", message);
  print(` [x] Sent ${message}`);
});
