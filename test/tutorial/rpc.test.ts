/**
 * Tutorial 6, RPC: rpc_client asks rpc_server for Fibonacci numbers over `rpc_queue`,
 * matching answers to requests by correlation_id.
 */
import * as amqplib from "amqplib";
import { beforeAll, describe, expect, test } from "vitest";
import { getBrokerUrl } from "../helpers/broker.js";
import { cleanUpPrograms, ok, deleteQueue, start } from "./programs.js";

cleanUpPrograms();

describe.sequential("tutorial 6: RPC", () => {
  beforeAll(() => deleteQueue("rpc_queue"));

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
    const conn = await amqplib.connect(await getBrokerUrl());
    await (await conn.createChannel()).assertQueue("rpc_queue", { durable: false });
    await conn.close();

    const client = await start("rpc_client", ["12"]);
    await client.line(" [x] Requesting fib(12)");

    const server = await start("rpc_server");
    await server.line(" [.] fib(12)");
    await client.line(" [.] Got 144");
    expect((await client.exited).code).toBe(0);
  });
});
