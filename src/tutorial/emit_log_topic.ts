#!/usr/bin/env node
/**
 * Tutorial 5, Topics: the producer. It publishes a log to the topic exchange
 * `topic_logs` with a routing key of dot-separated words, "<facility>.<severity>" here.
 *
 *   emit_log_topic [routing_key] [message...]   (defaults "anonymous.info" and "Hello World!")
 *   e.g. emit_log_topic kern.critical "A critical kernel error"
 */
import { main } from "./run.js";

main(async ({ ch, args, print }) => {
  await ch.exchangeDeclare("topic_logs", "topic");

  // As the official program: the first argument is the routing key only when a message follows it.
  const routingKey = args.length > 1 ? args[0]! : "anonymous.info";
  const message = args.slice(1).join(" ") || "Hello World!";
  await ch.publish("topic_logs", routingKey, message);
  print(` [x] Sent ${routingKey}:${message}`);
});
