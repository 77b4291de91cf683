/**
 * Tutorial 6, RPC: rpc_client asks rpc_server for Fibonacci numbers over `rpc_queue`,
 * matching answers to requests by correlation_id.
 */
import { randomUUID } from "node:crypto";
import * as amqplib from "amqplib";
import { beforeEach, describe, expect, test } from "vitest";
import { cleanUpPrograms, ok, deleteQueue, start, tutorialUrl, useOwnVhost } from "./programs.js";

cleanUpPrograms();
useOwnVhost("rpc");

describe.sequential("tutorial 6: RPC", () => {
  // Each test starts from an empty rpc_queue: the cleanup SIGKILLs the server the moment a test
  // ends, and under CI's load that once fell between its reply and its ack, so the request
  // came back for the next test's server (at-least-once, as the broker promises).
  beforeEach(() => deleteQueue("rpc_queue"));

  test("rpc_client gets fib(30) = 832040 from rpc_server", async () => {
    const server = await start("rpc_server");
    expect(await server.ready()).toBe(" [x] Awaiting RPC requests");

    expect(await ok("rpc_client")).toEqual([" [x] Requesting fib(30)", " [.] Got 832040"]);
    await server.line(" [.] fib(30)");
    expect((await server.stop()).code).toBe(0);
  });

  test("concurrent clients each get the answer to their own request", async () => {
    const server = await start("rpc_server");
    await server.ready();

    const expected: Record<number, number> = { 0: 0, 1: 1, 2: 1, 10: 55, 20: 6765, 25: 75025 };
    const answers = await Promise.all(Object.keys(expected).map((n) => ok("rpc_client", [n])));
    for (const [i, n] of Object.keys(expected).entries()) {
      expect(answers[i]).toEqual([` [x] Requesting fib(${n})`, ` [.] Got ${expected[Number(n)]}`]);
    }
    for (const n of Object.keys(expected)) await server.line(` [.] fib(${n})`);
  });

  test("a request sent before the server starts waits in rpc_queue and is answered", async () => {
    // rpc_queue as rpc_server declares it; the client publishes to it without declaring it.
    const conn = await amqplib.connect(await tutorialUrl());
    await (
      await conn.createChannel()
    ).assertQueue("rpc_queue", { durable: true, arguments: { "x-queue-type": "quorum" } });
    await conn.close();

    const client = await start("rpc_client", ["12"]);
    await client.line(" [x] Requesting fib(12)");

    const server = await start("rpc_server");
    await server.line(" [.] fib(12)");
    await client.line(" [.] Got 144");
    expect((await client.exited).code).toBe(0);
  });

  test("interop: an amqplib client calling warren's rpc_server gets the answer, correlation_id kept", async () => {
    const server = await start("rpc_server");
    await server.ready();

    const conn = await amqplib.connect(await tutorialUrl());
    try {
      const ch = await conn.createChannel();
      const { queue: callbackQueue } = await ch.assertQueue("", { exclusive: true });
      const correlationId = randomUUID();
      const reply = new Promise<amqplib.ConsumeMessage>((resolve) => {
        void ch.consume(callbackQueue, (msg) => msg && resolve(msg), { noAck: true });
      });
      ch.sendToQueue("rpc_queue", Buffer.from("30"), { correlationId, replyTo: callbackQueue });

      const msg = await reply;
      expect(msg.content.toString()).toBe("832040");
      expect(msg.properties.correlationId).toBe(correlationId);
      await server.line(" [.] fib(30)");
    } finally {
      await conn.close();
    }
  });

  test("interop: warren's rpc_client gets its answer from an amqplib server", async () => {
    const conn = await amqplib.connect(await tutorialUrl());
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue("rpc_queue", { durable: true, arguments: { "x-queue-type": "quorum" } });
      await ch.prefetch(1);
      const requests: amqplib.ConsumeMessage[] = [];
      await ch.consume("rpc_queue", (msg) => {
        if (!msg) return;
        requests.push(msg);
        // The answer the tutorial's server would give for 7, computed on amqplib's side.
        const answer = msg.content.toString() === "7" ? "13" : "unexpected request";
        ch.sendToQueue(msg.properties.replyTo as string, Buffer.from(answer), {
          correlationId: msg.properties.correlationId as string,
        });
        ch.ack(msg);
      });

      expect(await ok("rpc_client", ["7"])).toEqual([" [x] Requesting fib(7)", " [.] Got 13"]);
      expect(requests).toHaveLength(1);
      expect(requests[0]?.properties.replyTo).toMatch(/^amq\.gen-/);
      expect(requests[0]?.properties.correlationId).toEqual(expect.any(String));
    } finally {
      await conn.close();
    }
  });
});
