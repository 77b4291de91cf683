/**
 * The RPC helper over RabbitMQ's direct reply-to (pseudo-queue amq.rabbitmq.reply-to): requests
 * carry reply_to and a correlation id, replies are matched back by it, calls time out, abort,
 * and reject when the client's channel goes.
 */
import { describe, expect, test } from "vitest";
import { AbortError, AmqpError, TimeoutError, createRpcClient, type Channel, type Message } from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { outcome, useConnections } from "./util.js";

const open = useConnections();

/** A server on `queue` that answers each request with f(body), after `delay(body)` ms; records what it saw. */
async function server(
  ch: Channel,
  queue: string,
  f: (s: string) => string,
  delay: (s: string) => number = () => 0,
): Promise<Message[]> {
  const seen: Message[] = [];
  await ch.queueDeclare(queue, { exclusive: true });
  await ch.consume(
    queue,
    (m) => {
      seen.push(m);
      const body = m.body.toString();
      setTimeout(
        () =>
          void ch
            .publish("", m.properties.replyTo!, f(body), { correlationId: m.properties.correlationId })
            .catch(() => undefined),
        delay(body),
      );
    },
    { noAck: true },
  );
  return seen;
}

describe("RPC over direct reply-to", () => {
  test("requests carry amq.rabbitmq.reply-to and distinct correlation ids; concurrent replies arriving out of order match their calls", async () => {
    const conn = await open();
    const q = uniqueName("rpc");
    const seen = await server(
      await conn.openChannel(),
      q,
      (s) => s.toUpperCase(),
      (s) => (s === "slow" ? 100 : 0),
    );
    const rpc = await createRpcClient(await conn.openChannel());
    const replies = await Promise.all(["slow", "fast", "ünï"].map((s) => rpc.call("", q, s)));
    expect(replies.map((m) => m.body.toString())).toEqual(["SLOW", "FAST", "ÜNÏ"]);
    expect(
      seen.every(
        (m) =>
          m.properties.replyTo === "amq.rabbitmq.reply-to" ||
          m.properties.replyTo!.startsWith("amq.rabbitmq.reply-to."),
      ),
    ).toBe(true);
    const ids = seen.map((m) => m.properties.correlationId);
    expect(new Set(ids).size).toBe(3);
    for (const r of replies) expect(ids).toContain(r.properties.correlationId);
  });

  test("a caller's own correlation id is used", async () => {
    const conn = await open();
    const q = uniqueName("rpc-id");
    await server(await conn.openChannel(), q, (s) => `re: ${s}`);
    const rpc = await createRpcClient(await conn.openChannel());
    const reply = await rpc.call("", q, "x", { correlationId: "mine-42" });
    expect(reply.properties.correlationId).toBe("mine-42");
  });

  test("a correlation id already waiting for its reply is refused (TypeError), and the first call still gets its own reply", async () => {
    const conn = await open();
    const q = uniqueName("rpc-dup");
    await server(
      await conn.openChannel(),
      q,
      (s) => `re: ${s}`,
      () => 50,
    );
    const rpc = await createRpcClient(await conn.openChannel());
    const first = rpc.call("", q, "first", { correlationId: "same" });
    const second = await outcome(rpc.call("", q, "second", { correlationId: "same" }));
    expect((second as { error: unknown }).error).toBeInstanceOf(TypeError);
    expect((await first).body.toString()).toBe("re: first");
  });

  test("a timeout setTimeout cannot honour is refused: per call through the promise, per client at creation", async () => {
    const ch = await (await open()).openChannel();
    const rpc = await createRpcClient(ch);
    expect(
      ((await outcome(rpc.call("", "nowhere", "x", { timeout: Infinity }))) as { error: unknown }).error,
    ).toBeInstanceOf(RangeError);
    expect(((await outcome(createRpcClient(ch, { timeout: 0 }))) as { error: unknown }).error).toBeInstanceOf(
      RangeError,
    );
  });

  test("no reply in time: TimeoutError; a late reply is ignored and the client keeps working", async () => {
    const conn = await open();
    const q = uniqueName("rpc-late");
    await server(
      await conn.openChannel(),
      q,
      (s) => s,
      (s) => (s === "late" ? 300 : 0),
    );
    const rpc = await createRpcClient(await conn.openChannel(), { timeout: 50 });
    const r = await outcome(rpc.call("", q, "late"));
    expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expect((r as { error: Error }).error.message).toMatch(/correlation id/);
    await new Promise((res) => setTimeout(res, 350)); // the late reply arrives and is dropped
    expect((await rpc.call("", q, "on time", { timeout: 5000 })).body.toString()).toBe("on time");
  });

  test("an AbortSignal ends a call with AbortError", async () => {
    const conn = await open();
    const rpc = await createRpcClient(await conn.openChannel());
    const ac = new AbortController();
    const p = outcome(rpc.call("", uniqueName("nobody"), "x", { signal: ac.signal }));
    ac.abort();
    expect(((await p) as { error: unknown }).error).toBeInstanceOf(AbortError);
    expect(
      ((await outcome(rpc.call("", "q", "x", { signal: AbortSignal.abort() }))) as { error: unknown }).error,
    ).toBeInstanceOf(AbortError);
  });

  test("closing the RPC client or its channel rejects pending calls", async () => {
    const conn = await open();
    const rpc = await createRpcClient(await conn.openChannel());
    const p = outcome(rpc.call("", uniqueName("nobody"), "x"));
    await rpc.close();
    expect(((await p) as { error: unknown }).error).toBeInstanceOf(AmqpError);
    const ch = await conn.openChannel();
    const rpc2 = await createRpcClient(ch);
    const p2 = outcome(rpc2.call("", uniqueName("nobody"), "x"));
    await ch.close();
    expect(((await p2) as { error: { replyCode: number } }).error.replyCode).toBe(200);
  });
});
