/**
 * The tutorials' JavaScript, as the official ones are written (amqplib's callback API), run on
 * warren/amqplib/callback_api and on amqplib, beside warren's own tutorial programs and Python
 * pika's, both ways: the same declarations (neither side is refused with 406), the same output.
 * The programs are test/amqplib/tutorials/*.cjs (the six tutorials); AMQPLIB_MODULE says which
 * library they load.
 */
import { existsSync } from "node:fs";
import { describe, expect, test } from "vitest";
import {
  Program,
  ROOT,
  cleanUpPrograms,
  deleteQueue,
  ok,
  start,
  tutorialUrl,
  useOwnVhost,
} from "../tutorial/programs.js";

cleanUpPrograms();
useOwnVhost("amqplib-js");

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const LIBRARIES = {
  amqplib: "amqplib/callback_api",
  "warren/amqplib": `${ROOT}/src/amqplib/callback_api.ts`,
};
type Library = keyof typeof LIBRARIES;
type Side = "warren" | "pika" | Library;

async function program(side: Side, name: string, args: string[] = []): Promise<Program> {
  if (side === "warren") return start(name, args);
  const env = { ...process.env, AMQP_URL: await tutorialUrl() };
  if (side === "pika")
    return new Program(name, args, env, "pipe", [PYTHON, "-u", `${ROOT}/test/tutorial/pika_peer.py`, name]);
  const command: [string, ...string[]] = [
    process.execPath,
    "--import",
    "tsx",
    `${ROOT}/test/amqplib/tutorials/${name}.cjs`,
  ];
  return new Program(name, args, { ...env, AMQPLIB_MODULE: LIBRARIES[side] }, "pipe", command);
}

async function runToEnd(side: Side, name: string, args: string[] = []): Promise<string[]> {
  if (side === "warren") return ok(name, args);
  const exit = await (await program(side, name, args)).exited;
  if (exit.code !== 0) throw new Error(`${side} ${name} exited with ${exit.code}\n${exit.stderr}`);
  return exit.stdout;
}

const pairs: [Side, Side][] = [];
for (const lib of Object.keys(LIBRARIES) as Library[])
  pairs.push([lib, "warren"], ["warren", lib], [lib, "pika"], ["pika", lib]);

describe.sequential("the tutorials' JavaScript on warren/amqplib and on amqplib", () => {
  test.each(pairs)("1 hello world: %s send -> %s receive", async (producer, consumer) => {
    await deleteQueue("hello");
    const receiver = await program(consumer, "receive");
    expect(await receiver.ready()).toBe(" [*] Waiting for messages. To exit press CTRL+C");
    expect(await runToEnd(producer, "send")).toEqual([" [x] Sent 'Hello World!'"]);
    await receiver.line(" [x] Received Hello World!");
    const exit = await receiver.stop("SIGINT");
    expect(exit.code).toBe(0);
    expect(exit.stdout).toEqual([
      " [*] Waiting for messages. To exit press CTRL+C",
      " [x] Received Hello World!",
      "Interrupted",
    ]);
  });

  test.each(pairs)("3 publish/subscribe: %s emit_log -> %s receive_logs", async (producer, consumer) => {
    const receiver = await program(consumer, "receive_logs");
    expect(await receiver.ready()).toBe(" [*] Waiting for logs. To exit press CTRL+C");
    expect(await runToEnd(producer, "emit_log", ["warning:", "disk", "almost", "full"])).toEqual([
      " [x] Sent warning: disk almost full",
    ]);
    await receiver.line(" [x] warning: disk almost full");
    expect(await runToEnd(producer, "emit_log")).toEqual([" [x] Sent info: Hello World!"]);
    await receiver.line(" [x] info: Hello World!");
    const exit = await receiver.stop("SIGINT");
    expect(exit.code).toBe(0);
    expect(exit.stdout.slice(1)).toEqual([" [x] warning: disk almost full", " [x] info: Hello World!", "Interrupted"]);
  });

  test.each(pairs)(
    "4 routing: %s emit_log_direct -> %s receive_logs_direct, by severity",
    async (producer, consumer) => {
      const receiver = await program(consumer, "receive_logs_direct", ["warning", "error"]);
      expect(await receiver.ready()).toBe(" [*] Waiting for logs. To exit press CTRL+C");
      expect(await runToEnd(producer, "emit_log_direct", ["info", "not", "for", "it"])).toEqual([
        " [x] Sent info:not for it",
      ]);
      expect(await runToEnd(producer, "emit_log_direct", ["error", "disk", "full"])).toEqual([
        " [x] Sent error:disk full",
      ]);
      await receiver.line(" [x] error:disk full");
      const exit = await receiver.stop("SIGINT");
      expect(exit.stdout.slice(1)).toEqual([" [x] error:disk full", "Interrupted"]);
    },
  );

  test.each(pairs)("5 topics: %s emit_log_topic -> %s receive_logs_topic, by pattern", async (producer, consumer) => {
    const receiver = await program(consumer, "receive_logs_topic", ["kern.*", "*.critical"]);
    expect(await receiver.ready()).toBe(" [*] Waiting for logs. To exit press CTRL+C");
    expect(await runToEnd(producer, "emit_log_topic", ["cron.info", "skipped"])).toEqual([
      " [x] Sent cron.info:skipped",
    ]);
    expect(await runToEnd(producer, "emit_log_topic", ["kern.critical", "A", "critical", "kernel", "error"])).toEqual([
      " [x] Sent kern.critical:A critical kernel error",
    ]);
    await receiver.line(" [x] kern.critical:A critical kernel error");
    const exit = await receiver.stop("SIGINT");
    expect(exit.stdout.slice(1)).toEqual([" [x] kern.critical:A critical kernel error", "Interrupted"]);
  });

  test.each(pairs)("2 work queues: %s new_task -> %s worker, acked once done", async (producer, consumer) => {
    await deleteQueue("task_queue");
    const worker = await program(consumer, "worker");
    expect(await worker.ready()).toBe(" [*] Waiting for messages. To exit press CTRL+C");
    expect(await runToEnd(producer, "new_task", ["A", "task."])).toEqual([" [x] Sent A task."]);
    await worker.line(" [x] Received A task.");
    await worker.line(" [x] Done");
    await worker.stop("SIGTERM");
    await deleteQueue("task_queue");
  });

  test.each(pairs)("6 RPC: %s rpc_client -> %s rpc_server", async (client, server) => {
    await deleteQueue("rpc_queue");
    const rpcServer = await program(server, "rpc_server");
    expect(await rpcServer.ready()).toBe(" [x] Awaiting RPC requests");
    expect(await runToEnd(client, "rpc_client", ["10"])).toEqual([" [x] Requesting fib(10)", " [.] Got 55"]);
    await rpcServer.line(" [.] fib(10)");
    await rpcServer.stop("SIGTERM");
  });
});
