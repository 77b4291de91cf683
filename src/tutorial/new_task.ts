#!/usr/bin/env node
/**
 * Tutorial 2, Work queues: the producer. It sends a task to the durable queue
 * `task_queue`; each dot in the task stands for a second of work. The queue is a durable
 * quorum queue and the message persistent (delivery mode 2), so a task survives a broker restart.
 *
 *   new_task [task...]     (default "Hello World!"), e.g. new_task A third task...
 */
import { main } from "./run.js";

main(async ({ ch, args, print }) => {
  await ch.queueDeclare("task_queue", { durable: true, arguments: { "x-queue-type": "quorum" } });

  const message = args.join(" ") || "Hello World!";
  await ch.publish("", "task_queue", message, { deliveryMode: 2 });
  print(` [x] Sent ${message}`);
});
