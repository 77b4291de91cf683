#!/usr/bin/env node
/**
 * Tutorial 2, Work queues: the worker. Several workers share `task_queue`, and:
 * - fair dispatch: prefetch 1 tells the broker not to give a worker a new task until it
 *   has acknowledged the previous one, so a long task does not hold up the others;
 * - manual acknowledgement: a task is acked once done, so if a worker dies mid-task the
 *   broker gives the task to another worker. Stopped with SIGTERM, it finishes its task first
 *   (closing the connection waits for running handlers); Ctrl-C stops at once.
 *
 *   worker
 */
import { setTimeout as sleep } from "node:timers/promises";
import { main } from "./run.js";

main(async ({ ch, print, untilStopped }) => {
  await ch.queueDeclare("task_queue", { durable: true, arguments: { "x-queue-type": "quorum" } });
  await ch.prefetch(1);

  print(" [*] Waiting for messages. To exit press CTRL+C");
  await ch.consume(
    "task_queue",
    async (msg) => {
      const body = msg.body.toString();
      print(` [x] Received ${body}`);
      // A second of "work" for each dot in the task.
      await sleep(1000 * (body.split(".").length - 1));
      print(" [x] Done");
    },
    // Acked once the handler is done, as the tutorial's basic_ack after " [x] Done".
    { settle: "auto" },
  );
  await untilStopped();
});
