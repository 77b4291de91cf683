/**
 * createRpcServer: a handler per request, the reply to reply_to with the correlation id, the
 * request acked once the reply is confirmed, handler errors as RpcError at the caller, and a
 * request without reply_to rejected to the dead-letter queue. Counted by id on both sides.
 */
import { describe, expect, test } from "vitest";
import { RpcError, createRpcClient, createRpcServer, type Message } from "../../src/index.js";
import { eventually, queueCounts, useConnections, outcome } from "./util.js";

const open = useConnections();

describe("createRpcServer", () => {
  test("answers every call, with at most `concurrency` handlers at once; every request is acked", async () => {
    const conn = await open();
    const serverCh = await conn.openChannel();
    const { queue } = await serverCh.queueDeclare("", { exclusive: true });
    let running = 0;
    let most = 0;
    const handled: number[] = [];
    const server = await createRpcServer(
      serverCh,
      queue,
      async (req) => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        const n = Number(req.body.toString());
        handled.push(n);
        return { body: String(n * n), properties: { contentType: "text/plain" } };
      },
      { concurrency: 4 },
    );
    const client = await createRpcClient(await conn.openChannel());
    const N = 40;
    const replies = await Promise.all(Array.from({ length: N }, (_, i) => client.call("", queue, String(i))));
    expect(replies.map((r) => r.body.toString())).toEqual(Array.from({ length: N }, (_, i) => String(i * i)));
    expect(replies.every((r) => r.properties.contentType === "text/plain")).toBe(true);
    expect([...handled].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(most).toBe(4);
    await server.close();
    // Acked, not merely delivered: closing the server's channel requeues nothing.
    await serverCh.close();
    expect((await queueCounts(await conn.openChannel(), queue)).messageCount).toBe(0);
  });

  test("a handler that throws answers with an error the caller gets as RpcError; the others are answered", async () => {
    const conn = await open();
    const serverCh = await conn.openChannel();
    const { queue } = await serverCh.queueDeclare("", { exclusive: true });
    serverCh.on("consumerError", () => undefined);
    await createRpcServer(serverCh, queue, (req: Message) => {
      const n = Number(req.body.toString());
      if (n % 3 === 0) throw new Error(`no answer for ${n}`);
      return String(n + 1);
    });
    const client = await createRpcClient(await conn.openChannel());
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => outcome(client.call("", queue, String(i)))));
    results.forEach((r, i) => {
      if (i % 3 === 0) {
        expect(!r.ok && r.error).toBeInstanceOf(RpcError);
        expect(!r.ok && (r.error as Error).message).toMatch(new RegExp(`no answer for ${i}$`));
      } else expect(r.ok && (r.value as Message).body.toString()).toBe(String(i + 1));
    });
  });

  test("a request without reply_to is rejected, without requeue: it lands in the dead-letter queue", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue: dead } = await ch.queueDeclare("", { exclusive: true });
    const { queue } = await ch.queueDeclare("", {
      exclusive: true,
      arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead },
    });
    const errors: unknown[] = [];
    const serverCh = await conn.openChannel();
    serverCh.on("consumerError", (e) => errors.push(e));
    let called = 0;
    await createRpcServer(serverCh, queue, () => String(++called));
    await ch.publish("", queue, "no reply_to", { messageId: "orphan" });
    await eventually(async () => (await queueCounts(ch, dead)).messageCount === 1, "dead-lettered");
    expect((await ch.get(dead, { noAck: true }))?.properties.messageId).toBe("orphan");
    expect(called).toBe(0);
    expect(errors).toHaveLength(1);
  });
});
