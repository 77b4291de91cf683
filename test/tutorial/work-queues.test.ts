/**
 * Tutorial 2, Work queues: new_task and worker over the durable queue `task_queue`. The
 * queue name is fixed, so its tests share this file and run in sequence.
 */
import * as amqplib from "amqplib";
import { beforeEach, describe, expect, test } from "vitest";
import { cleanUpPrograms, ok, deleteQueue, start, type Program, tutorialUrl, useOwnVhost } from "./programs.js";

const WAITING = " [*] Waiting for messages. To exit press CTRL+C";

cleanUpPrograms();
useOwnVhost("work");

async function withAmqplib<T>(use: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
  const conn = await amqplib.connect(await tutorialUrl());
  try {
    const ch = await conn.createChannel();
    ch.on("error", () => {});
    return await use(ch);
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Starts two workers and waits until both consume. */
async function twoWorkers(): Promise<[Program, Program]> {
  const workers = await Promise.all([start("worker"), start("worker")]);
  for (const w of workers) expect(await w.ready()).toBe(WAITING);
  return workers;
}

/** The worker whose output shows it received `task`, and the other one. */
async function whoGot(workers: [Program, Program], task: string): Promise<[Program, Program]> {
  const line = ` [x] Received ${task}`;
  await Promise.race(workers.map((w) => w.line(line)));
  return workers[0].lines.includes(line) ? workers : [workers[1], workers[0]];
}

describe.sequential("tutorial 2: work queues", () => {
  beforeEach(() => deleteQueue("task_queue"));

  test("new_task declares task_queue durable and sends the task persistent (delivery mode 2)", async () => {
    expect(await ok("new_task", ["First", "message."])).toEqual([" [x] Sent First message."]);
    expect(await ok("new_task")).toEqual([" [x] Sent Hello World!"]);

    await withAmqplib(async (ch) => {
      const first = await ch.get("task_queue", { noAck: true });
      const second = await ch.get("task_queue", { noAck: true });
      expect(first && first.content.toString()).toBe("First message.");
      expect(first && first.properties.deliveryMode).toBe(2);
      expect(second && second.content.toString()).toBe("Hello World!");
    });
    // The broker refuses to redeclare a queue with different flags: proof it is durable.
    await expect(withAmqplib((ch) => ch.assertQueue("task_queue", { durable: false }))).rejects.toMatchObject({
      code: 406,
    });
  });

  test("a worker works a second per dot, then acks: ' [x] Received ...', ' [x] Done'", async () => {
    const worker = await start("worker");
    await worker.ready();
    await ok("new_task", ["A", "task.."]);
    await worker.until("Done", () => worker.lines.includes(" [x] Done"));
    expect(worker.lines).toEqual([WAITING, " [x] Received A task..", " [x] Done"]);

    // Acked: nothing is left in the queue, nothing unacknowledged.
    expect((await worker.stop()).code).toBe(0);
    const { messageCount } = await withAmqplib((ch) => ch.checkQueue("task_queue"));
    expect(messageCount).toBe(0);
  });

  test("fair dispatch: while one worker is busy with a long task, the other takes every short one", async () => {
    const workers = await twoWorkers();
    await ok("new_task", ["long....."]);
    const [busy, free] = await whoGot(workers, "long.....");

    const short = ["short 1", "short 2", "short 3", "short 4"];
    // All four while the long task runs (5 s): one connection, not four new_task programs, each
    // a Node.js process that can take seconds to start on a loaded machine, after which the busy
    // worker is free again and round robin rightly hands it the last short task.
    const conn = await amqplib.connect(await tutorialUrl());
    try {
      const ch = await conn.createConfirmChannel();
      for (const task of short) ch.sendToQueue("task_queue", Buffer.from(task), { persistent: true });
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    // With prefetch 1 the broker gives the busy worker nothing more until it acks; with
    // plain round robin two of these would wait behind the long task.
    await free.until("all short tasks", () => short.every((t) => free.lines.includes(` [x] Received ${t}`)));
    await busy.until("the long task done", () => busy.lines.includes(" [x] Done"));
    expect(busy.lines).toEqual([WAITING, " [x] Received long.....", " [x] Done"]);
    expect(free.lines.filter((l) => l.startsWith(" [x] Received"))).toEqual(short.map((t) => ` [x] Received ${t}`));
  }, 60_000); // a 5 s task and seven programs started, each a Node.js process: past 30 s on a loaded machine

  test("a task is not lost when its worker is stopped mid-task: another worker gets it", async () => {
    const workers = await twoWorkers();
    await ok("new_task", ["interrupted..."]);
    const [first, second] = await whoGot(workers, "interrupted...");

    // Ctrl-C before the work is done: the task was never acked, so the broker requeues it.
    expect((await first.stop("SIGINT")).stdout).toEqual([WAITING, " [x] Received interrupted..."]);
    await second.until("the task done", () => second.lines.includes(" [x] Done"));
    expect(second.lines).toEqual([WAITING, " [x] Received interrupted...", " [x] Done"]);
  });

  test("SIGTERM mid-task: the worker finishes the task, acks it and exits 0; no other worker gets it again", async () => {
    const workers = await twoWorkers();
    await ok("new_task", ["graceful.."]);
    const [first, second] = await whoGot(workers, "graceful..");
    const exit = await first.stop("SIGTERM");
    expect(exit.code).toBe(0);
    expect(exit.stdout).toEqual([WAITING, " [x] Received graceful..", " [x] Done"]);
    // Acked before the worker left: the queue is empty, and the other worker never saw it.
    const left = await withAmqplib((ch) => ch.checkQueue("task_queue"));
    expect(left.messageCount).toBe(0);
    await ok("new_task", ["after."]); // the other worker is still serving: it gets the next one
    await second.until("the next task", () => second.lines.includes(" [x] Done"));
    expect(second.lines).toEqual([WAITING, " [x] Received after.", " [x] Done"]);
  });
});
