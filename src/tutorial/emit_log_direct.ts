#!/usr/bin/env node
/**
 * Tutorial 4, Routing: the producer. It publishes a log to the direct exchange
 * `direct_logs` with its severity as the routing key; the exchange delivers it to the
 * queues bound with exactly that key.
 *
 *   emit_log_direct [severity] [message...]   (defaults "info" and "Hello World!")
 *   e.g. emit_log_direct error "Run. Run. Or it will explode."
 */
import { main } from "./run.js";

main(async ({ ch, args, print }) => {
  await ch.exchangeDeclare("direct_logs", "direct");

  // As the official program: the first argument is the severity only when a message follows it.
  const severity = args.length > 1 ? args[0]! : "info";
  const message = args.slice(1).join(" ") || "Hello World!";
  await ch.publish("direct_logs", severity, message);
  print(` [x] Sent ${severity}:${message}`);
});
