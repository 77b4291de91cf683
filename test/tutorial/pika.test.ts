/**
 * warren's tutorial programs beside Python pika programs (Debian's python3-pika), both
 * directions, for tutorials 1 to 6: each side declares what the official Python program
 * declares today (durable quorum queues for hello, task_queue and rpc_queue), so either can start
 * first and neither is refused with 406 PRECONDITION_FAILED (inequivalent arg). The Python side
 * is test/tutorial/pika_peer.py.
 */
import { existsSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { Program, ROOT, cleanUpPrograms, deleteQueue, ok, start, tutorialUrl, useOwnVhost } from "./programs.js";

cleanUpPrograms();
useOwnVhost("pika");

/** Debian's python3 (the one python3-pika installs for), else whatever python3 is on PATH. */
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

async function pika(name: string, args: string[] = []): Promise<Program> {
  return new Program(name, args, { ...process.env, AMQP_URL: await tutorialUrl() }, "pipe", [
    PYTHON,
    "-u",
    `${ROOT}/test/tutorial/pika_peer.py`,
    name,
  ]);
}

async function pikaOk(name: string, args: string[] = []): Promise<string[]> {
  const p = await pika(name, args);
  const exit = await p.exited;
  if (exit.code !== 0) throw new Error(`pika ${name} exited with ${exit.code}\n${exit.stderr}`);
  return exit.stdout;
}

type Side = "warren" | "pika";
const both: [Side, Side][] = [
  ["pika", "warren"],
  ["warren", "pika"],
];
const runOn = (side: Side, name: string, args: string[] = []) =>
  side === "warren" ? ok(name, args) : pikaOk(name, args);
const startOn = (side: Side, name: string, args: string[] = []) =>
  side === "warren" ? start(name, args) : pika(name, args);

describe.sequential("the tutorials against pika", () => {
  test.each(both)("1 hello world: %s send -> %s receive", async (producer, consumer) => {
    await deleteQueue("hello");
    const receiver = await startOn(consumer, "receive");
    expect(await receiver.ready()).toBe(" [*] Waiting for messages. To exit press CTRL+C");
    expect(await runOn(producer, "send")).toEqual([" [x] Sent 'Hello World!'"]);
    await receiver.line(" [x] Received Hello World!");
    const exit = await receiver.stop("SIGINT");
    expect(exit.code).toBe(0);
    expect(exit.stdout.at(-1)).toBe("Interrupted");
  });

  test.each(both)("2 work queues: %s new_task -> %s worker, acked once done", async (producer, consumer) => {
    await deleteQueue("task_queue");
    const worker = await startOn(consumer, "worker");
    await worker.ready();
    expect(await runOn(producer, "new_task", ["A", "task."])).toEqual([" [x] Sent A task."]);
    await worker.line(" [x] Received A task.");
    await worker.line(" [x] Done");
    await worker.stop("SIGTERM");
  });

  test.each(both)("3 publish/subscribe: %s emit_log -> %s receive_logs", async (producer, consumer) => {
    const receiver = await startOn(consumer, "receive_logs");
    await receiver.ready();
    expect(await runOn(producer, "emit_log", ["info:", "from", producer])).toEqual([
      ` [x] Sent info: from ${producer}`,
    ]);
    await receiver.line(` [x] info: from ${producer}`);
    await receiver.stop("SIGINT");
  });

  test.each(both)(
    "4 routing: %s emit_log_direct -> %s receive_logs_direct, by severity",
    async (producer, consumer) => {
      const receiver = await startOn(consumer, "receive_logs_direct", ["error"]);
      await receiver.ready();
      expect(await runOn(producer, "emit_log_direct", ["info", "not for this one"])).toEqual([
        " [x] Sent info:not for this one",
      ]);
      expect(await runOn(producer, "emit_log_direct", ["error", "disk", "full"])).toEqual([
        " [x] Sent error:disk full",
      ]);
      await receiver.line(" [x] error:disk full");
      expect(receiver.lines.filter((l) => l.startsWith(" [x]"))).toEqual([" [x] error:disk full"]);
      await receiver.stop("SIGINT");
    },
  );

  test.each(both)(
    "5 topics: %s emit_log_topic -> %s receive_logs_topic; one argument means anonymous.info",
    async (producer, consumer) => {
      const receiver = await startOn(consumer, "receive_logs_topic", ["kern.*", "*.info"]);
      await receiver.ready();
      expect(await runOn(producer, "emit_log_topic", ["kern.critical", "A critical kernel error"])).toEqual([
        " [x] Sent kern.critical:A critical kernel error",
      ]);
      // As the official program: a lone argument is not a routing key.
      expect(await runOn(producer, "emit_log_topic", ["kern.lonely"])).toEqual([
        " [x] Sent anonymous.info:Hello World!",
      ]);
      await receiver.line(" [x] kern.critical:A critical kernel error");
      await receiver.line(" [x] anonymous.info:Hello World!");
      await receiver.stop("SIGINT");
    },
  );

  test.each(both)("6 RPC: %s rpc_client -> %s rpc_server", async (client, server) => {
    await deleteQueue("rpc_queue");
    const rpcServer = await startOn(server, "rpc_server");
    expect(await rpcServer.ready()).toBe(" [x] Awaiting RPC requests");
    expect(await runOn(client, "rpc_client", ["10"])).toEqual([" [x] Requesting fib(10)", " [.] Got 55"]);
    await rpcServer.line(" [.] fib(10)");
    await rpcServer.stop("SIGTERM");
  });
});
